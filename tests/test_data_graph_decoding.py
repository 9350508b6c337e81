"""The loaders decode 16-bit PCM WAV and frame folders in graph ops: the same arrays as the Python readers.

``from_directory`` reads a file again each epoch by graph ops where TensorFlow decodes the
format (``tf.audio.decode_wav``, ``tf.io.decode_image``), and through the Python readers
(``read_audio``, ``read_video`` in ``tf.numpy_function``) otherwise. These tests check that
both give the same arrays, that the graph path is the one taken (the Python readers are
made to fail while the dataset is iterated), and that a file changed after loading stops
the epoch with an error naming it.
"""

import numpy as np
import pytest
import soundfile
import tensorflow as tf

import mmzoo.data.audio as audio_io
import mmzoo.data.loaders as loaders
from mmzoo.data.audio import decode_wav, inspect_audio, pad_or_trim, read_audio
from mmzoo.data.loaders import from_directory
from mmzoo.data.video import frame_plan, read_video

RATE = 8000
LENGTH = 1200


def write_png(path, array):
    path.write_bytes(tf.io.encode_png(np.asarray(array, np.uint8)).numpy())


def signal(seed, frames, channels):
    return np.random.default_rng(seed).uniform(-0.8, 0.8, (frames, channels)).astype(np.float32)


def unbatched(dataset, key):
    return [features[key] for features, _ in dataset.unbatch().as_numpy_iterator()]


def python_clip(path):
    """What the Python reader path yields for an audio file: read_audio, then pad_or_trim."""
    return pad_or_trim(read_audio(path, RATE), LENGTH)


def fail(*args, **kwargs):
    raise AssertionError("the Python reader ran where graph ops should have decoded the file")


@pytest.mark.parametrize(
    "file_rate, channels, frames",
    [(RATE, 1, 1000), (RATE, 1, 2000), (16000, 1, 1500), (22050, 2, 3000), (RATE, 2, 900), (11025, 3, 700)],
    ids=["target-rate-padded", "target-rate-trimmed", "resampled", "resampled-stereo", "stereo", "three-channels"],
)
def test_decode_wav_gives_read_audios_waveform(tmp_path, file_rate, channels, frames):
    path = tmp_path / "clip.wav"
    soundfile.write(path, signal(0, frames, channels), file_rate, subtype="PCM_16")
    found = inspect_audio(path, RATE)
    assert found.graph_decodable and found.sample_rate == file_rate and found.channels == channels
    expected = read_audio(path, RATE)
    np.testing.assert_array_equal(found.waveform, expected)
    graph = tf.function(lambda contents: decode_wav(contents, RATE))(tf.io.read_file(str(path))).numpy()
    assert graph.dtype == np.float32 and graph.shape == expected.shape
    np.testing.assert_allclose(graph, expected, atol=1e-6)


@pytest.mark.parametrize("subtype, extension", [("FLOAT", "wav"), ("PCM_24", "wav"), ("PCM_16", "flac")])
def test_formats_tensorflow_cannot_decode_stay_with_the_python_reader(tmp_path, subtype, extension):
    path = tmp_path / f"clip.{extension}"
    soundfile.write(path, signal(1, 500, 1), RATE, subtype=subtype)
    assert not inspect_audio(path, RATE).graph_decodable


def audio_tree(root):
    """Per class: 16-bit WAV at the target rate, at other rates (resampled), stereo, padded and trimmed."""
    specs = {
        "a": [("target", RATE, 1, 1000), ("long", RATE, 1, 2000), ("resampled", 16000, 1, 1500)],
        "b": [("stereo", RATE, 2, 900), ("stereo-resampled", 22050, 2, 3000), ("short", 11025, 1, 300)],
    }
    paths = []
    for label, (name, files) in enumerate(specs.items()):
        (root / name).mkdir(parents=True)
        for index, (stem, rate, channels, frames) in enumerate(files):
            path = root / name / f"{stem}.wav"
            soundfile.write(path, signal(10 * label + index, frames, channels), rate, subtype="PCM_16")
            paths.append(path)
    return paths


def test_from_directory_decodes_pcm_wav_in_the_graph_as_the_python_reader_does(tmp_path, monkeypatch):
    paths = audio_tree(tmp_path / "data")
    data = from_directory(tmp_path / "data", sample_rate=RATE, audio_length=LENGTH, validation_split=0.0,
                          shuffle=False, batch_size=4)
    by_name = {str(path.with_suffix("")): path for path in paths}
    assert sorted(data.train_examples) == sorted(by_name)
    expected = [python_clip(by_name[name]) for name in data.train_examples]
    monkeypatch.setattr(audio_io, "read_audio", fail)  # what the Python reader path calls
    waveforms, masks = unbatched(data.train, "audio"), unbatched(data.train, "audio_mask")
    for (waveform, mask), got_waveform, got_mask in zip(expected, waveforms, masks):
        np.testing.assert_allclose(got_waveform, waveform, atol=1e-6)
        np.testing.assert_array_equal(got_mask, mask)


def test_mixed_formats_and_missing_audio_take_each_its_reader(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    soundfile.write(root / "a" / "pcm.wav", signal(0, 1000, 1), RATE, subtype="PCM_16")
    soundfile.write(root / "a" / "float.wav", signal(1, 700, 2), 16000, subtype="FLOAT")
    soundfile.write(root / "a" / "lossless.flac", signal(2, 1500, 1), RATE, subtype="PCM_16")
    for stem in ("pcm", "float", "lossless", "silent"):
        write_png(root / "a" / f"{stem}.png", np.full((4, 4, 3), 100))
    data = from_directory(root, modalities=("image", "audio"), image_size=(4, 4), sample_rate=RATE,
                          audio_length=LENGTH, validation_split=0.0, shuffle=False, batch_size=3, missing="mask")
    names = [name.rsplit("/", 1)[-1] for name in data.train_examples]
    assert names == ["float", "lossless", "pcm", "silent"]
    files = {"float": root / "a" / "float.wav", "lossless": root / "a" / "lossless.flac", "pcm": root / "a" / "pcm.wav"}
    waveforms, masks = unbatched(data.train, "audio"), unbatched(data.train, "audio_mask")
    present = unbatched(data.train, "audio_present")
    for name, waveform, mask, flag in zip(names, waveforms, masks, present):
        if name == "silent":
            assert flag == 0.0 and not waveform.any() and not mask.any()
            continue
        expected_waveform, expected_mask = python_clip(files[name])
        assert flag == 1.0
        np.testing.assert_allclose(waveform, expected_waveform, atol=1e-6)
        np.testing.assert_array_equal(mask, expected_mask)


def frame_tree(root):
    """Frame folders of 2, 3, 6 and 9 frames (fewer, as many as, and more than the 6 output frames)."""
    clips = {}
    for label, (name, counts) in enumerate({"run": (2, 6), "jump": (3, 9)}.items()):
        for index, count in enumerate(counts):
            folder = root / name / f"clip{index}.frames"
            folder.mkdir(parents=True)
            rng = np.random.default_rng(10 * label + index)
            for frame in range(count):
                write_png(folder / f"f_{frame}.png", rng.integers(0, 256, (7 + label, 9, 3)))
            clips[folder] = count
    return clips


@pytest.mark.parametrize("pad", ["repeat", "zeros"])
@pytest.mark.parametrize("color_mode, interpolation", [("rgb", "bilinear"), ("grayscale", "area")])
def test_from_directory_decodes_frame_folders_in_the_graph_as_read_video_does(
    tmp_path, monkeypatch, pad, color_mode, interpolation
):
    clips = frame_tree(tmp_path / "data")
    data = from_directory(tmp_path / "data", num_frames=6, frame_size=(5, 6), video_pad=pad, color_mode=color_mode,
                          interpolation=interpolation, validation_split=0.0, shuffle=False, batch_size=3)
    channels = 1 if color_mode == "grayscale" else 3
    order = [tmp_path / "data" / name for name in data.train_examples]
    expected = [
        read_video(f"{path}.frames", 6, (5, 6), channels, pad, interpolation, return_mask=True) for path in order
    ]
    monkeypatch.setattr(loaders, "read_video", fail)  # the Python reader path
    clips_out = unbatched(data.train, "video")
    masks_out = unbatched(data.train, "video_mask") if pad == "zeros" else [None] * len(order)
    assert len(clips_out) == len(clips) == 4
    for (clip, mask), got, got_mask in zip(expected, clips_out, masks_out):
        assert got.shape == (6, 5, 6, channels)
        np.testing.assert_allclose(got, clip, atol=1e-6)
        if pad == "zeros":
            np.testing.assert_array_equal(got_mask, mask)


def test_frame_plan_names_the_frames_read_video_samples(tmp_path):
    folder = tmp_path / "clip.frames"
    folder.mkdir()
    for frame in (1, 2, 10):
        write_png(folder / f"frame_{frame}.png", np.full((3, 3, 3), frame))
    files, mask = frame_plan(folder, num_frames=5, pad="zeros")
    assert [f.rsplit("/", 1)[-1] for f in files[:3]] == ["frame_1.png", "frame_2.png", "frame_10.png"]
    assert files[3:] == ["", ""] and mask.tolist() == [1, 1, 1, 0, 0]
    files, mask = frame_plan(folder, num_frames=5)
    assert [f.rsplit("/", 1)[-1][6:-4] for f in files] == ["1", "1", "2", "10", "10"] and mask.all()  # round(0.5) = 0


def test_npy_clips_and_frame_folders_mix_in_one_split(tmp_path):
    root = tmp_path / "data"
    frame_tree(root)
    np.save(root / "run" / "array.npy", np.full((4, 5, 6, 3), 200, np.uint8))
    data = from_directory(root, num_frames=6, frame_size=(5, 6), validation_split=0.0, shuffle=False, batch_size=2)
    for name, clip in zip(data.train_examples, unbatched(data.train, "video")):
        source = f"{name}.npy" if name.endswith("array") else f"{name}.frames"
        np.testing.assert_allclose(clip, read_video(source, 6, (5, 6)), atol=1e-6)


def test_a_wav_changed_after_loading_fails_naming_it(tmp_path):
    paths = audio_tree(tmp_path / "data")
    data = from_directory(tmp_path / "data", sample_rate=RATE, audio_length=LENGTH, validation_split=0.0,
                          shuffle=False, batch_size=2)
    assert len(unbatched(data.train, "audio")) == 6  # an epoch runs while the files are intact
    changed = tmp_path / "data" / "b" / "stereo.wav"  # at the target rate: decoded in the graph
    assert changed in paths
    soundfile.write(changed, signal(99, 900, 2), RATE, subtype="PCM_16")  # a valid WAV, other samples
    message = f"Audio file changed since the loader checked it.*{changed.name}"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        for _ in data.train:
            pass


def test_a_frame_changed_or_removed_after_loading_fails_naming_it(tmp_path):
    frame_tree(tmp_path / "data")
    data = from_directory(tmp_path / "data", num_frames=6, frame_size=(5, 6), validation_split=0.0, batch_size=2)
    assert len(unbatched(data.train, "video")) == 4
    changed = tmp_path / "data" / "jump" / "clip1.frames" / "f_5.png"  # sampled: 0, 2, 3, 5, 6, 8
    write_png(changed, np.zeros((8, 9, 3)))
    message = f"Video frame changed since the loader checked it.*{changed.name}"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        for _ in data.train:
            pass
    removed = tmp_path / "data" / "run" / "clip0.frames" / "f_1.png"
    removed.unlink()
    data = from_directory(tmp_path / "data", num_frames=6, frame_size=(5, 6), validation_split=0.0, batch_size=2,
                          class_names=["run"])
    (tmp_path / "data" / "run" / "clip1.frames" / "f_5.png").unlink()
    with pytest.raises(tf.errors.NotFoundError, match="f_5.png"):
        for _ in data.train:
            pass
