"""Audio: reading files, fixed-length clips, SpecAugment, log-mel/MFCC layers (parity with librosa).

Every file is written into ``tmp_path`` here (soundfile, the ``wave`` module); no network.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
import wave

import keras
import librosa
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from mmzoo.data import audio as audio_data
from mmzoo.data.audio import pad_or_trim, read_audio, spec_augment, waveform_dataset
from mmzoo.data.errors import SkippedFiles, UnreadableFileError
from mmzoo.layers.audio import MFCC, LogMelSpectrogram, SpecAugment

RATE = 16000


def tone(frequency, seconds=1.0, rate=RATE, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(waveform, rate):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return np.argmax(spectrum) * rate / len(waveform)


def write_wav16(path, samples, rate=RATE):
    """16-bit PCM through the standard library, channels on the last axis."""
    samples = np.atleast_2d(np.asarray(samples).T).T
    ints = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(samples.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(ints.tobytes())
    return ints.astype(np.float32) / 32768.0


def has_ogg():
    return "OGG" in soundfile.available_formats() and "VORBIS" in soundfile.available_subtypes("OGG")


# --- read_audio ----------------------------------------------------------------------------


def test_16bit_wav_is_decoded_by_tensorflow(tmp_path, monkeypatch):
    path = tmp_path / "tone.wav"
    expected = write_wav16(path, tone(440))[:, 0]

    def no_soundfile(data):
        raise AssertionError("a 16-bit PCM WAV must not need soundfile")

    monkeypatch.setattr(audio_data, "_decode_soundfile", no_soundfile)
    waveform = read_audio(path, sample_rate=RATE)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    np.testing.assert_allclose(waveform, expected, atol=1e-6)


@pytest.mark.parametrize("subtype, atol", [("FLOAT", 0.0), ("PCM_24", 1e-6), ("PCM_U8", 1 / 64)])
def test_other_wav_encodings_go_through_soundfile(tmp_path, subtype, atol):
    path = tmp_path / f"{subtype}.wav"
    signal = tone(440, seconds=0.25)
    soundfile.write(path, signal, RATE, subtype=subtype)
    waveform = read_audio(path, sample_rate=RATE)
    assert waveform.dtype == np.float32 and waveform.shape == signal.shape
    np.testing.assert_allclose(waveform, signal, atol=atol)


def test_float_wav_beyond_full_scale_is_clipped_to_one(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, np.array([0.5, 1.5, -2.0, 0.0] * 100, np.float32), RATE, subtype="FLOAT")
    waveform = read_audio(path, RATE)
    assert waveform.max() == 1.0 and waveform.min() == -1.0 and waveform[0] == 0.5


def test_flac_is_lossless(tmp_path):
    path = tmp_path / "tone.flac"
    signal = np.round(tone(440, seconds=0.5) * 32767) / 32768  # exactly representable in 16 bits
    soundfile.write(path, signal, RATE, subtype="PCM_16")
    np.testing.assert_allclose(read_audio(path, RATE), signal, atol=1e-6)


@pytest.mark.skipif(not has_ogg(), reason="this libsndfile has no OGG/Vorbis")
def test_ogg_vorbis_keeps_the_tone(tmp_path):
    path = tmp_path / "tone.ogg"
    signal = tone(440, seconds=1.0)
    soundfile.write(path, signal, RATE, format="OGG", subtype="VORBIS")
    waveform = read_audio(path, RATE)
    assert waveform.shape == signal.shape  # Vorbis is lossy, but not in length
    assert abs(peak_frequency(waveform, RATE) - 440) <= 1.0
    rms = np.sqrt(np.mean(waveform**2))
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.02


def test_stereo_is_mixed_down_to_the_mean_of_the_channels(tmp_path):
    left, right = tone(440, seconds=0.25), tone(1000, seconds=0.25, amplitude=0.3)
    path = tmp_path / "stereo.wav"
    written = write_wav16(path, np.stack([left, right], axis=1))
    waveform = read_audio(path, RATE)
    np.testing.assert_allclose(waveform, written.mean(axis=1), atol=1e-6)
    flac = tmp_path / "stereo.flac"
    soundfile.write(flac, np.stack([left, right], axis=1), RATE)
    # soundfile scales by 32768 where write_wav16 scales by 32767: within one 16-bit step.
    np.testing.assert_allclose(read_audio(flac, RATE), waveform, atol=2 / 32768)


@pytest.mark.parametrize("file_rate", [22050, 8000, 44100])
def test_resampling_gives_the_right_length_and_keeps_the_frequency(tmp_path, file_rate):
    path = tmp_path / f"tone_{file_rate}.wav"
    write_wav16(path, tone(1000, seconds=1.0, rate=file_rate), rate=file_rate)
    waveform = read_audio(path, sample_rate=RATE)
    assert waveform.shape == (RATE,)  # ceil(file_rate * 1 s * RATE / file_rate)
    assert abs(peak_frequency(waveform, RATE) - 1000) <= 1.0
    # The amplitude survives too (soxr high quality: flat pass band).
    middle = waveform[RATE // 4 : -RATE // 4]
    assert abs(np.abs(middle).max() - 0.5) < 0.01


def _truncated(source_writer):
    def make(tmp_path):
        full = source_writer(tmp_path)
        data = full.read_bytes()
        path = full.with_name("truncated" + full.suffix)
        path.write_bytes(data[: int(len(data) * 0.6)])
        return path

    return make


def _wav16(tmp_path):
    path = tmp_path / "a.wav"
    write_wav16(path, tone(440, 0.5))
    return path


def _float_wav(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(440, 0.5), RATE, subtype="FLOAT")
    return path


def _flac(tmp_path):
    path = tmp_path / "a.flac"
    soundfile.write(path, tone(440, 0.5), RATE)
    return path


def _ogg(tmp_path):
    if not has_ogg():
        pytest.skip("this libsndfile has no OGG/Vorbis")
    path = tmp_path / "a.ogg"
    soundfile.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, RATE).astype(np.float32), RATE, format="OGG")
    return path


def _write(name, data):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


def _header_only(tmp_path):
    path = _wav16(tmp_path)
    path.write_bytes(path.read_bytes()[:44 - 8])  # fmt chunk, no data chunk
    return path


CORRUPT = {
    "truncated 16-bit wav": (_truncated(_wav16), "truncated"),
    "truncated float wav": (_truncated(_float_wav), "truncated"),
    "truncated flac": (_truncated(_flac), ""),
    "truncated ogg": (_truncated(_ogg), "truncated"),
    "empty": (_write("empty.wav", b""), "empty"),
    "wrong header": (_write("noise.wav", b"RIFX" + bytes(range(256)) * 8), "not a readable audio file"),
    "text named flac": (_write("notes.flac", b"this is not audio\n" * 50), "not a readable audio file"),
    "header only": (_header_only, "data"),
    "missing": (lambda tmp_path: tmp_path / "missing.wav", "No such file"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_unreadable_files_raise_naming_the_file(tmp_path, case):
    make, reason = CORRUPT[case]
    path = make(tmp_path)
    with pytest.raises(UnreadableFileError) as raised:
        read_audio(path, RATE)
    assert str(path) in str(raised.value) and raised.value.path == str(path)
    assert reason in raised.value.reason
    assert isinstance(raised.value, ValueError)


def test_non_finite_samples_are_unreadable(tmp_path):
    path = tmp_path / "nan.wav"
    samples = tone(440, 0.1)
    samples[10] = np.nan
    soundfile.write(path, samples, RATE, subtype="FLOAT")
    with pytest.raises(UnreadableFileError, match="non-finite"):
        read_audio(path, RATE)


def test_public_names_are_exported():
    import mmzoo

    assert mmzoo.data.read_audio is read_audio and mmzoo.data.spec_augment is spec_augment
    assert mmzoo.layers.LogMelSpectrogram is LogMelSpectrogram and mmzoo.layers.MFCC is MFCC
    assert {"LogMelSpectrogram", "MFCC", "SpecAugment"} <= set(mmzoo.layers.__all__)


def test_a_directory_is_unreadable(tmp_path):
    with pytest.raises(UnreadableFileError, match=str(tmp_path)):
        read_audio(tmp_path, RATE)


# --- pad_or_trim ---------------------------------------------------------------------------


def test_pad_or_trim_in_numpy_both_ways():
    short, mask = pad_or_trim(np.array([1, 2, 3], np.float32), 5)
    assert short.tolist() == [1, 2, 3, 0, 0] and mask.tolist() == [1, 1, 1, 0, 0]
    assert short.dtype == np.float32 and mask.dtype == np.float32
    long, mask = pad_or_trim(np.arange(8, dtype=np.float32), 5)
    assert long.tolist() == [0, 1, 2, 3, 4] and mask.tolist() == [1] * 5
    batch, mask = pad_or_trim(np.ones((2, 3), np.int16), 4)
    assert batch.shape == mask.shape == (2, 4) and batch.dtype == np.float32
    assert mask.sum(axis=1).tolist() == [3, 3]


def test_pad_or_trim_inside_a_tf_data_pipeline():
    lengths = [3, 7, 5, 12, 1]
    clips = [np.arange(1, n + 1, dtype=np.float32) for n in lengths]
    ds = tf.data.Dataset.from_generator(
        lambda: iter(clips), output_signature=tf.TensorSpec((None,), tf.float32)
    )
    ds = ds.map(lambda w: pad_or_trim(w, 6), num_parallel_calls=tf.data.AUTOTUNE).batch(2).prefetch(2)
    assert ds.element_spec[0].shape.as_list() == [None, 6]  # static length after the map
    waveforms, masks = (np.concatenate(parts) for parts in zip(*[(w.numpy(), m.numpy()) for w, m in ds]))
    for clip, waveform, mask in zip(clips, waveforms, masks):
        expected_waveform, expected_mask = pad_or_trim(clip, 6)
        np.testing.assert_array_equal(waveform, expected_waveform)
        np.testing.assert_array_equal(mask, expected_mask)
    assert masks.sum(axis=1).tolist() == [3, 6, 5, 6, 1]


def test_pad_or_trim_in_a_tf_function_with_unknown_rank_and_length():
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def fixed(waveform):
        return pad_or_trim(waveform, 4)

    waveform, mask = fixed(tf.ones((2, 3)))
    assert waveform.shape == (2, 4) and mask.numpy().tolist() == [[1, 1, 1, 0]] * 2


# --- spec_augment (tf.data) ------------------------------------------------------------------


def assert_band_masks(masked, original, max_freq, max_time, mask_value=0.0):
    """Masked entries are exactly the union of <=1 contiguous column band of width <= max_freq
    and <=1 contiguous row band of width <= max_time; everything else is unchanged."""
    masked, original = np.asarray(masked), np.asarray(original)
    is_masked = masked == mask_value
    columns = np.flatnonzero(is_masked.all(axis=0))
    rows = np.flatnonzero(is_masked.all(axis=1))
    for band, widest in ((columns, max_freq), (rows, max_time)):
        assert len(band) <= widest
        if len(band):
            assert band[-1] - band[0] + 1 == len(band), f"not contiguous: {band}"
    expected = np.zeros_like(is_masked)
    expected[:, columns] = True
    expected[rows, :] = True
    np.testing.assert_array_equal(is_masked, expected)
    np.testing.assert_array_equal(masked[~expected], original[~expected])
    return len(columns), len(rows)


def implementations():
    available = audio_data._tfio_audio() is not None
    return ["tf", pytest.param("tfio", marks=pytest.mark.skipif(not available, reason="tfio masking unavailable"))]


@pytest.mark.parametrize("implementation", implementations())
def test_spec_augment_masks_contiguous_bands_within_the_limits(implementation):
    tf.random.set_seed(0)
    features = tf.random.uniform((60, 24), 1.0, 2.0)  # no zeros of its own
    widths = [
        assert_band_masks(spec_augment(features, 5, 9, implementation=implementation), features, 5, 9)
        for _ in range(40)
    ]
    freq_widths, time_widths = zip(*widths)
    # Widths are drawn from [0, F] and [0, T]: over 40 draws both the empty and the widest occur.
    assert set(freq_widths) == set(range(6)) and max(time_widths) >= 7 and min(time_widths) <= 1


@pytest.mark.parametrize("implementation", implementations())
def test_spec_augment_clips_bands_to_a_small_matrix_and_takes_any_mask_value(implementation):
    features = tf.ones((4, 3))
    for _ in range(20):
        out = spec_augment(features, 50, 50, mask_value=-80.0, implementation=implementation)
        assert_band_masks(out, features, 3, 4, mask_value=-80.0)


def test_spec_augment_in_a_tf_data_map():
    features = tf.random.uniform((8, 50, 16), 1.0, 2.0)
    ds = tf.data.Dataset.from_tensor_slices(features)
    ds = ds.map(lambda f: spec_augment(f, 4, 10), num_parallel_calls=tf.data.AUTOTUNE).batch(4).prefetch(1)
    out = np.concatenate([batch.numpy() for batch in ds])
    assert out.shape == (8, 50, 16)
    for masked, original in zip(out, features.numpy()):
        assert_band_masks(masked, original, 4, 10)
    assert (out == 0).any()


def test_spec_augment_refuses_bad_arguments():
    with pytest.raises(ValueError, match="features"):
        spec_augment(tf.ones((2, 3, 4)), 1, 1)
    with pytest.raises(ValueError, match="freq_mask_param"):
        spec_augment(tf.ones((2, 3)), -1, 1)
    with pytest.raises(ValueError, match="implementation"):
        spec_augment(tf.ones((2, 3)), 1, 1, implementation="numpy")


# --- waveform_dataset: the pieces composed -------------------------------------------------


def test_waveform_dataset_to_batched_log_mel(tmp_path):
    paths = []
    for index, seconds in enumerate([0.5, 1.2, 0.8]):
        paths.append(tmp_path / f"clip{index}.wav")
        write_wav16(paths[-1], tone(300 * (index + 1), seconds))
    (tmp_path / "broken.wav").write_bytes(b"RIFF")
    paths.insert(1, tmp_path / "broken.wav")
    skipped = SkippedFiles()
    layer = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=32)
    ds = waveform_dataset(paths, [0, 9, 1, 2], sample_rate=RATE, length=RATE, skipped=skipped)
    ds = ds.batch(2).map(
        lambda x, y: ((layer(x["waveform"]), x["mask"]), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
    batches = list(ds)
    features = np.concatenate([f.numpy() for (f, _), _ in batches])
    masks = np.concatenate([m.numpy() for (_, m), _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert features.shape == (3, 101, 32) and labels.tolist() == [0, 1, 2]
    assert masks.sum(axis=1).tolist() == [8000, 16000, 12800]
    assert skipped.paths == [str(tmp_path / "broken.wav")]
    # The loudest band of each clip is the one holding its tone.
    centres = librosa.mel_frequencies(34, fmin=0.0, fmax=RATE / 2, htk=True)[1:-1]
    for clip, frequency in zip(features, [300, 600, 900]):
        assert abs(centres[np.argmax(clip[10:40].mean(axis=0))] - frequency) < 150


def test_waveform_dataset_strict_stops_at_the_unreadable_file(tmp_path):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    write_wav16(good, tone(440, 0.1))
    bad.write_bytes(b"")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"UnreadableFileError: Cannot read .*bad\.wav: empty file"):
        list(waveform_dataset([good, bad], strict=True))


# --- LogMelSpectrogram / MFCC: parity with librosa ------------------------------------------

# Parameter sets: (sample_rate, fft_length, hop_length, window_length, num_mel_bins, min_freq, max_freq)
CONFIGS = {
    "speech": (16000, 512, 160, 400, 64, 0.0, None),
    "music": (22050, 2048, 512, None, 128, 20.0, 8000.0),
}


def chirp_signal(rate):
    """A chirp, a tone, noise, and a silent stretch (which exercises the top_db floor)."""
    t = np.arange(rate) / rate
    rng = np.random.default_rng(0)
    y = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t) + 0.2 * np.sin(2 * np.pi * 440 * t)
    y += 0.05 * rng.standard_normal(rate)
    y[int(0.4 * rate) : int(0.6 * rate)] = 0.0
    return y.astype(np.float32)


def librosa_kwargs(rate, fft_length, hop_length, window_length, mels, fmin, fmax):
    """The librosa parameters that match Keras' MelSpectrogram: HTK mel scale with peak-1
    triangles (htk=True, norm=None), centred frames with *reflect* padding (librosa's default
    is constant), periodic Hann window, power 2."""
    return dict(
        sr=rate, n_fft=fft_length, hop_length=hop_length, win_length=window_length, window="hann",
        center=True, pad_mode="reflect", power=2.0, n_mels=mels, fmin=fmin,
        fmax=fmax if fmax is not None else rate / 2, htk=True,
    )


# Tolerance, in dB (and in MFCC units, which are dB: the orthonormal DCT of dB vectors).
# Keras draws the mel triangles linear in mel, librosa linear in hertz, between the same
# HTK edges: the two filter banks differ by up to 0.005 (of a peak of 1), which moves a band
# by up to ~0.07 dB on this signal (measured: 0.070 dB "speech", 0.031 dB "music"; MFCC
# 0.069 / 0.03). Everything else (STFT, window, padding, dB, top_db) agrees to 1e-3 dB, see
# the test below that swaps in Keras' filter bank. 0.25 dB leaves margin for float32
# round-off yet fails on any real mismatch (measured on this signal: librosa's default
# constant padding 7-8 dB, Slaney filters 54 dB, a Hamming window 15-24 dB, the signal
# shifted by one sample 0.5-0.8 dB).
PARITY_DB = 0.25


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_log_mel_matches_librosa(config):
    rate, fft_length, hop, window_length, mels, fmin, fmax = CONFIGS[config]
    y = chirp_signal(rate)
    layer = LogMelSpectrogram(
        sample_rate=rate, fft_length=fft_length, hop_length=hop, window_length=window_length,
        num_mel_bins=mels, min_freq=fmin, max_freq=fmax, top_db=80.0,
    )
    ours = np.asarray(layer(y[None]))[0]
    kwargs = librosa_kwargs(*CONFIGS[config])
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, norm=None, **kwargs), ref=1.0, amin=1e-10, top_db=80.0
    ).T
    assert ours.shape == reference.shape == (len(y) // hop + 1, mels)
    assert np.abs(ours - reference).max() < PARITY_DB
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.9999
    assert ours.min() == pytest.approx(ours.max() - 80.0, abs=1e-3)  # the silence sits on the floor

    # With Keras' own filter bank on librosa's STFT, the rest agrees to round-off.
    power = np.abs(librosa.stft(y, n_fft=fft_length, hop_length=hop, win_length=window_length,
                                center=True, pad_mode="reflect")) ** 2
    bank = np.asarray(layer.mel.linear_to_mel_weight_matrix(
        mels, fft_length // 2 + 1, rate, fmin, kwargs["fmax"]))
    same_bank = librosa.power_to_db(bank.T @ power, ref=1.0, amin=1e-10, top_db=80.0).T
    assert np.abs(ours - same_bank).max() < 2e-3


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_mfcc_matches_librosa(config):
    rate, fft_length, hop, window_length, mels, fmin, fmax = CONFIGS[config]
    y = chirp_signal(rate)
    layer = MFCC(
        20, sample_rate=rate, fft_length=fft_length, hop_length=hop, window_length=window_length,
        num_mel_bins=mels, min_freq=fmin, max_freq=fmax,
    )
    ours = np.asarray(layer(y[None]))[0]
    # mfcc's `norm` is the DCT's ("ortho", its default); the filter bank's is `mel_norm`.
    reference = librosa.feature.mfcc(
        y=y, n_mfcc=20, dct_type=2, norm="ortho", mel_norm=None, **librosa_kwargs(*CONFIGS[config])
    ).T
    assert ours.shape == reference.shape == (len(y) // hop + 1, 20)
    assert np.abs(ours - reference).max() < PARITY_DB


def test_top_db_floor_is_per_example_not_per_batch():
    loud = chirp_signal(RATE)
    quiet = 1e-2 * tone(440)  # 40 dB below: the batch maximum would lift its floor by 40 dB
    layer = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=40)
    batch = np.asarray(layer(np.stack([loud, quiet])))
    for row, clip in zip(batch, (loud, quiet)):
        np.testing.assert_allclose(row, np.asarray(layer(clip[None]))[0], atol=1e-4)
        assert row.min() == pytest.approx(row.max() - 80.0, abs=1e-3)
    # keras.layers.MelSpectrogram alone floors the batch at its global maximum minus 80 dB.
    keras_layer = keras.layers.MelSpectrogram(
        fft_length=512, sequence_stride=160, sampling_rate=RATE, num_mel_bins=40, min_freq=0.0, top_db=80.0
    )
    keras_db = np.asarray(keras_layer(np.stack([loud, quiet])))
    assert keras_db[1].min() > batch[1].min() + 10


@pytest.mark.parametrize("samples", [16000, 16159, 1000, 257])
def test_output_shape_is_the_computed_shape(samples):
    layer = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=8)
    expected = (2, samples // 160 + 1, 8)
    assert tuple(layer.compute_output_shape((2, samples))) == expected
    assert tuple(layer(keras.Input((samples,), batch_size=2)).shape) == expected
    assert np.asarray(layer(np.zeros((2, samples), np.float32))).shape == expected
    mfcc = MFCC(5, sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=8)
    assert np.asarray(mfcc(np.zeros((2, samples), np.float32))).shape == expected[:2] + (5,)


def test_features_compute_in_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    layer = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=40)
    out = layer(chirp_signal(RATE)[None])
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    keras.config.set_dtype_policy("float32")
    exact = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=40)
    np.testing.assert_allclose(np.asarray(out, np.float32), exact(chirp_signal(RATE)[None]), atol=0.1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: LogMelSpectrogram(fft_length=0), "fft_length"),
        (lambda: LogMelSpectrogram(window="kaiser"), "window"),
        (lambda: LogMelSpectrogram(fft_length=256, window_length=400), "window_length"),
        (lambda: LogMelSpectrogram(sample_rate=16000, max_freq=9000.0), "max_freq"),
        (lambda: LogMelSpectrogram(min_freq=4000.0, max_freq=2000.0), "min_freq"),
        (lambda: LogMelSpectrogram(top_db=-1.0), "top_db"),
        (lambda: MFCC(num_mfcc=50, num_mel_bins=40), "num_mfcc"),
        (lambda: SpecAugment(freq_mask_param=-1), "freq_mask_param"),
        (lambda: SpecAugment(seed="x"), "`seed` must be an integer or None. Received: seed='x'"),
    ],
)
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- SpecAugment layer ----------------------------------------------------------------------


def test_spec_augment_layer_masks_only_in_training():
    features = keras.random.uniform((6, 40, 20), 1.0, 2.0, seed=0)
    layer = SpecAugment(freq_mask_param=5, time_mask_param=8, seed=3)
    np.testing.assert_array_equal(layer(features), features)
    np.testing.assert_array_equal(layer(features, training=False), features)
    masked = np.asarray(layer(features, training=True))
    widths = [assert_band_masks(m, f, 5, 8) for m, f in zip(masked, np.asarray(features))]
    assert len(set(widths)) > 1  # each example draws its own bands
    assert (masked == 0).any()
    again = SpecAugment(freq_mask_param=5, time_mask_param=8, seed=3)
    np.testing.assert_array_equal(again(features, training=True), masked)  # seeded


def test_spec_augment_layer_masks_during_fit_not_predict():
    inputs = keras.Input((30, 10))
    outputs = SpecAugment(4, 6, num_freq_masks=2, num_time_masks=2, seed=1)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.ones((8, 30, 10), np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    masked = np.asarray(model(x, training=True))
    for example in masked:
        zero_columns, zero_rows = (example == 0).all(axis=0).sum(), (example == 0).all(axis=1).sum()
        assert zero_columns <= 8 and zero_rows <= 12


def test_layers_survive_a_keras_file_in_safe_mode(tmp_path):
    waveforms = np.stack([chirp_signal(RATE), tone(440)])
    inputs = keras.Input((RATE,), name="waveform")
    log_mel = LogMelSpectrogram(sample_rate=RATE, fft_length=512, hop_length=160, num_mel_bins=32,
                                min_freq=20.0, max_freq=7600.0, top_db=60.0)(inputs)
    augmented = SpecAugment(freq_mask_param=4, time_mask_param=10, num_time_masks=2, mask_value=-1.0, seed=7)(log_mel)
    mfcc = MFCC(13, sample_rate=RATE, fft_length=400, hop_length=160, num_mel_bins=40)(inputs)
    model = keras.Model(inputs, {"log_mel": augmented, "mfcc": mfcc})
    path = str(tmp_path / "audio.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for original, reloaded in zip(model.layers[1:], loaded.layers[1:]):
        assert type(reloaded) is type(original)
        assert reloaded.get_config() == original.get_config()
    expected, actual = model(waveforms), loaded(waveforms)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-5, atol=1e-4)
    assert keras.saving.get_registered_name(LogMelSpectrogram) == "mmzoo>LogMelSpectrogram"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_layers_run_on_the_jax_backend():
    script = textwrap.dedent(
        """
        import numpy as np, keras
        assert keras.backend.backend() == "jax"
        from mmzoo.layers.audio import LogMelSpectrogram, MFCC, SpecAugment
        y = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4000)).astype("float32")
        features = LogMelSpectrogram(fft_length=256, hop_length=100, num_mel_bins=20)(y)
        assert features.shape == (2, 41, 20), features.shape
        assert MFCC(8, fft_length=256, hop_length=100, num_mel_bins=20)(y).shape == (2, 41, 8)
        masked = np.asarray(SpecAugment(4, 8, seed=0)(features, training=True))
        assert (masked == 0).any() and masked.shape == (2, 41, 20)
        print("ok")
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
