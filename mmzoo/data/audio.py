"""Audio input: reading files into waveforms, fixed-length clips, SpecAugment for ``tf.data``.

Replaces document 004 §3.3, whose "audio" was a 3x4 array of decibels handed positionally
to ``librosa.feature.melspectrogram`` (its arguments are keyword-only). Here a file becomes
a mono ``float32`` waveform in [-1, 1] at a fixed sample rate (:func:`read_audio`), a clip
of fixed length with a mask of its real samples (:func:`pad_or_trim`), and features are
computed in the graph, batched, by :class:`mmzoo.layers.LogMelSpectrogram` or
:class:`mmzoo.layers.MFCC`. :func:`spec_augment` masks a (time, bins) feature matrix
inside ``tf.data``. The pieces compose::

    ds = waveform_dataset(paths, labels, sample_rate=16000, length=16000)
    ds = ds.batch(32).map(
        lambda x, y: (LogMelSpectrogram(sample_rate=16000)(x["waveform"]), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.prefetch(tf.data.AUTOTUNE)

tensorflow-io's ``decode_wav``/``resample`` do not load on TF 2.21 (compiled ops), so WAV
goes through ``tf.audio.decode_wav`` and resampling through librosa (soxr).
"""

import io
import logging
import os
import re
import struct
import typing
import warnings

import numpy as np
import tensorflow as tf

from mmzoo.data.errors import UnreadableFileError
from mmzoo.validation import check_choice, check_int, check_positive_int

logger = logging.getLogger("mmzoo.data")

__all__ = ["decode_wav", "inspect_audio", "pad_or_trim", "read_audio", "spec_augment", "waveform_dataset"]

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_UNKNOWN_DATA_SIZE = 0xFFFFFFFF  # streaming writers that never went back to fill in the size
TF_WAV_DECODER = "tf.audio.decode_wav"


class _Corrupt(Exception):
    """Internal: the file's own header shows that it is damaged."""


def _wav_header(data):
    """``None`` when ``data`` is not RIFF/WAVE, else a dict of the header fields we need.

    Raises ``_Corrupt`` when the RIFF structure is damaged (no ``fmt``/``data`` chunk, or a
    ``data`` chunk that declares more bytes than the file holds: a truncated file, which
    libsndfile would otherwise read silently as a shorter clip).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, header = 12, {}
    while position + 8 <= len(data):
        chunk_id, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        body = position + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise _Corrupt("truncated WAV 'fmt ' chunk")
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if fmt == _WAVE_FORMAT_EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                fmt = struct.unpack("<H", data[body + 24 : body + 26])[0]  # the sub-format GUID's tag
            header.update(format=fmt, channels=channels, sample_rate=rate, bits=bits)
        elif chunk_id == b"data":
            if "format" not in header:
                raise _Corrupt("WAV 'data' chunk before its 'fmt ' chunk")
            available = len(data) - body
            if size != _UNKNOWN_DATA_SIZE and size > available:
                raise _Corrupt(
                    f"truncated WAV: the header declares {size} bytes of audio, the file holds {available}"
                )
            header["data_bytes"] = min(size, available)
            return header
        position = body + size + (size & 1)  # chunks are padded to an even size
    raise _Corrupt("WAV file without a 'data' chunk" if header else "WAV file without a 'fmt ' chunk")


def _check_ogg(data):
    """Raises ``_Corrupt`` when an Ogg file does not end with a complete end-of-stream page.

    An Ogg stream declares no length up front, and libsndfile decodes a truncated one
    silently as a shorter clip; walking the page headers finds the truncation.
    """
    position, last_flags = 0, None
    while position < len(data):
        if position + 27 > len(data):
            raise _Corrupt("truncated Ogg file (incomplete last page)")
        if data[position : position + 4] != b"OggS":
            raise _Corrupt(f"damaged Ogg file (no page header at byte {position})")
        segments = data[position + 26]
        table_end = position + 27 + segments
        if table_end > len(data):
            raise _Corrupt("truncated Ogg file (incomplete last page)")
        page_end = table_end + sum(data[position + 27 : table_end])
        if page_end > len(data):
            raise _Corrupt("truncated Ogg file (incomplete last page)")
        last_flags, position = data[position + 5], page_end
    if last_flags is None or not last_flags & 0x04:
        raise _Corrupt("truncated Ogg file (no end-of-stream page)")


def _decode_tf_wav(data):
    """16-bit PCM WAV through ``tf.audio.decode_wav``: ``((samples, channels) float32, rate)``."""
    samples, rate = tf.audio.decode_wav(data)
    return samples.numpy(), int(rate.numpy())


def _decode_soundfile(data):
    import soundfile

    with soundfile.SoundFile(io.BytesIO(data)) as handle:
        declared, container = handle.frames, handle.format
        samples = handle.read(dtype="float32", always_2d=True)
        rate = handle.samplerate
    # Only where the header's frame count is exact (MP3/OGG give estimates; for WAV,
    # libsndfile shrinks it to what is there, hence _wav_header's own check).
    if container in ("FLAC", "AIFF", "CAF") and 0 < declared < 2**62 and len(samples) < declared:
        raise _Corrupt(f"truncated: the header declares {declared} frames, {len(samples)} could be decoded")
    return samples, int(rate)


def _decode_librosa(path):
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PySoundFile failed. Trying audioread instead."
        samples, rate = librosa.load(path, sr=None, mono=False, dtype=np.float32)
    samples = np.atleast_2d(samples).T  # librosa gives (channels, samples)
    return samples, int(rate)


def _short(error):
    text = str(error).strip()
    text = re.sub(r"Error opening <[^>]*>: ", "", text.splitlines()[-1]) if text else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_audio(path, sample_rate=16000):
    """Reads an audio file into a mono ``float32`` waveform in [-1, 1] at ``sample_rate``.

    16-bit PCM WAV is decoded by ``tf.audio.decode_wav``; other WAV encodings (8/24/32-bit
    integer, float), FLAC, OGG/Vorbis, Opus, MP3 and the rest of what libsndfile reads go
    through ``soundfile``, and ``librosa.load`` (audioread) is the last resort. Several
    channels are averaged into one; a file at another rate is resampled with librosa
    (soxr, high quality), giving ``ceil(samples * sample_rate / file_rate)`` samples.

    Args:
        path: the file (``str`` or path-like).
        sample_rate: the rate of the returned waveform, in Hz.

    Returns:
        A 1-D ``np.float32`` array.

    Raises:
        UnreadableFileError: (a ``ValueError``) naming the file, when it is missing, empty,
            truncated, not audio, holds no samples or non-finite samples.

    Example:
    >>> import soundfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> soundfile.write(path, np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    >>> waveform = read_audio(path, sample_rate=16000)
    >>> waveform.dtype, waveform.shape
    (dtype('float32'), (16000,))
    """
    return _read_audio_file(path, sample_rate)[0]


class AudioFile(typing.NamedTuple):
    """What :func:`inspect_audio` found in an audio file."""

    waveform: np.ndarray  # what read_audio returns
    fingerprint: int  # mmzoo.data.image.fingerprint of the file's bytes
    decoder: str  # "tf.audio.decode_wav", "soundfile" or "librosa"
    sample_rate: int  # the file's own rate
    channels: int

    @property
    def graph_decodable(self):
        """Whether :func:`decode_wav` reads the file in graph ops (16-bit PCM WAV)."""
        return self.decoder == TF_WAV_DECODER


def inspect_audio(path, sample_rate=16000):
    """:func:`read_audio`, and what the loaders need to read the file again in graph ops.

    Returns:
        An :class:`AudioFile`: the waveform, a fingerprint of the bytes decoded (to notice a
        file changed since), the decoder that read it, the file's rate and channels.

    Raises:
        UnreadableFileError: like :func:`read_audio`.
    """
    from mmzoo.data.image import fingerprint

    waveform, data, decoder, rate, channels = _read_audio_file(path, sample_rate)
    return AudioFile(waveform, int(fingerprint(data)), decoder, rate, channels)


def _read_audio_file(path, sample_rate):
    """``(waveform, the file's bytes, decoder name, file rate, channels)``; see :func:`read_audio`."""
    check_positive_int("sample_rate", sample_rate)
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise UnreadableFileError(path, error.strerror or _short(error)) from error
    if not data:
        raise UnreadableFileError(path, "empty file")

    try:
        header = _wav_header(data)
        if data[:4] == b"OggS":
            _check_ogg(data)
    except _Corrupt as error:
        raise UnreadableFileError(path, str(error)) from None

    failures = []
    samples = rate = None
    decoders = []
    if header is not None and header["format"] == _WAVE_FORMAT_PCM and header["bits"] == 16:
        decoders.append((TF_WAV_DECODER, lambda: _decode_tf_wav(data)))
    decoders.append(("soundfile", lambda: _decode_soundfile(data)))
    decoders.append(("librosa", lambda: _decode_librosa(path)))
    decoder = None
    for name, decode in decoders:
        try:
            samples, rate = decode()
            decoder = name
            break
        except _Corrupt as error:  # the decoder understood the file and found it damaged
            raise UnreadableFileError(path, str(error)) from None
        except Exception as error:  # noqa: BLE001  (decoders raise anything, even UnicodeDecodeError)
            failures.append(f"{name}: {_short(error)}")
    if samples is None:
        # The first decoder that claims the format has the most telling message.
        raise UnreadableFileError(path, "not a readable audio file (" + "; ".join(failures[:2]) + ")")

    if samples.size == 0 or rate <= 0:
        raise UnreadableFileError(path, "no audio samples")
    if not np.all(np.isfinite(samples)):
        raise UnreadableFileError(path, "non-finite samples (NaN or infinity)")
    waveform = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    waveform = _resample(waveform, rate, sample_rate)
    return waveform, data, decoder, int(rate), int(samples.shape[1])


def _resample(waveform, rate, sample_rate):
    """``waveform`` (float32, mono) at ``rate`` resampled to ``sample_rate`` (soxr, high quality), in [-1, 1]."""
    waveform = np.asarray(waveform, np.float32)
    if rate != sample_rate:
        import librosa

        waveform = librosa.resample(waveform, orig_sr=int(rate), target_sr=int(sample_rate), res_type="soxr_hq")
    return np.clip(waveform, -1.0, 1.0).astype(np.float32, copy=False)


def decode_wav(contents, sample_rate=16000):
    """A 16-bit PCM WAV file's bytes to a mono float32 waveform at ``sample_rate``, in graph ops.

    The same waveform as :func:`read_audio` gives for such a file (within float round-off):
    ``tf.audio.decode_wav``, channels averaged, and, at another rate, the same soxr
    resampling (the one step that is not a TensorFlow op: it runs in ``tf.numpy_function``).
    Usable eagerly and inside ``tf.data`` ``map`` (parallel calls decode in parallel). It
    does not check the file the way :func:`read_audio` does (truncation, other encodings):
    give it files :func:`inspect_audio` read with ``graph_decodable`` True.

    Args:
        contents: a scalar ``tf.string`` tensor holding the file's bytes.
        sample_rate: the rate of the returned waveform, in Hz.

    Returns:
        A float32 ``(samples,)`` tensor in [-1, 1].
    """
    check_positive_int("sample_rate", sample_rate)
    samples, rate = tf.audio.decode_wav(contents)
    waveform = tf.reduce_mean(samples, axis=1)  # mono; a no-op on one channel

    def resample():
        out = tf.numpy_function(
            lambda w, r: _resample(w, int(r), sample_rate), [waveform, rate], tf.float32, stateful=False
        )
        out.set_shape([None])
        return out

    return tf.cond(tf.equal(rate, sample_rate), lambda: tf.clip_by_value(waveform, -1.0, 1.0), resample)


def pad_or_trim(waveform, length):
    """Cuts or zero-pads the last axis to ``length``; returns ``(waveform, mask)``.

    The mask has the waveform's shape and is 1.0 for real samples, 0.0 for padding. A
    longer waveform keeps its first ``length`` samples. NumPy input (or anything that is
    not a ``tf.Tensor``) gives NumPy arrays; a ``tf.Tensor`` (eager, or symbolic inside
    ``tf.data.Dataset.map`` / ``tf.function``) is handled with TensorFlow ops, and the
    result has the static length ``length``.

    Args:
        waveform: samples on the last axis, e.g. ``(samples,)`` or ``(batch, samples)``.
        length: the number of samples to return.

    Returns:
        ``(waveform, mask)``: the waveform in its dtype (``float32`` if it was not a
        float), the mask ``float32``.

    Example:
    >>> clip, mask = pad_or_trim(np.ones(3, np.float32), 5)
    >>> clip.tolist(), mask.tolist()
    ([1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0])
    """
    check_positive_int("length", length)
    if isinstance(waveform, (tf.Tensor, tf.Variable)):
        return _pad_or_trim_tf(waveform, length)
    waveform = np.asarray(waveform)
    if not np.issubdtype(waveform.dtype, np.floating):
        waveform = waveform.astype(np.float32)
    if waveform.ndim == 0:
        raise ValueError(f"`waveform` must have a samples axis. Received a scalar: {waveform!r}")
    real = min(waveform.shape[-1], length)
    out = np.zeros(waveform.shape[:-1] + (length,), waveform.dtype)
    out[..., :real] = waveform[..., :real]
    mask = np.zeros(out.shape, np.float32)
    mask[..., :real] = 1.0
    return out, mask


def _pad_or_trim_tf(waveform, length):
    if not waveform.dtype.is_floating:
        waveform = tf.cast(waveform, tf.float32)
    if waveform.shape.rank == 0:
        raise ValueError(f"`waveform` must have a samples axis. Received shape {waveform.shape}")
    samples = tf.shape(waveform)[-1]
    real = tf.minimum(samples, length)
    trimmed = waveform[..., :length]
    rank = tf.rank(waveform)
    paddings = tf.concat(
        [tf.zeros([rank - 1, 2], tf.int32), [[0, length - real]]], axis=0
    )
    out = tf.pad(trimmed, paddings)
    out = tf.ensure_shape(out, waveform.shape[:-1].concatenate([length]))
    mask = tf.cast(tf.range(length) < real, tf.float32)
    mask = tf.broadcast_to(mask, tf.shape(out))
    mask = tf.ensure_shape(mask, out.shape)
    return out, mask


# --- SpecAugment -------------------------------------------------------------------------

_TFIO_STATE = {}


def _tfio_audio():
    """``tensorflow_io.audio`` when it imports and its masking ops run here, else ``None``."""
    if "audio" not in _TFIO_STATE:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the plugin .so files do not load on TF 2.21
                import tensorflow_io as tfio

            probe = tf.ones((4, 3))
            tfio.audio.freq_mask(probe, param=2)
            tfio.audio.time_mask(probe, param=2)
            _TFIO_STATE["audio"] = tfio.audio
        except Exception as error:  # noqa: BLE001  (ImportError, NotImplementedError, ...)
            logger.info("tensorflow-io masking unavailable (%s); using mmzoo's own", _short(error))
            _TFIO_STATE["audio"] = None
    return _TFIO_STATE["audio"]


def _band_mask(size, max_width, axis_length_first):
    """mmzoo's own mask: 0.0 on one band of width uniform in [0, max_width], else 1.0.

    ``size`` is the (dynamic) length of the masked axis; the band is clipped to it.
    """
    width = tf.random.uniform((), 0, tf.minimum(max_width + 1, size + 1), dtype=tf.int32)
    start = tf.random.uniform((), 0, size - width + 1, dtype=tf.int32)
    positions = tf.range(size)
    keep = tf.logical_or(positions < start, positions >= start + width)
    keep = tf.cast(keep, tf.float32)
    return tf.reshape(keep, (-1, 1) if axis_length_first else (1, -1))


def spec_augment(
    features,
    freq_mask_param,
    time_mask_param,
    num_freq_masks=1,
    num_time_masks=1,
    mask_value=0.0,
    implementation="auto",
):
    """SpecAugment (Park et al., 2019) masking of one ``(time, bins)`` feature matrix.

    Sets ``num_freq_masks`` bands of consecutive bins and ``num_time_masks`` bands of
    consecutive frames to ``mask_value``; each band's width is drawn uniformly from
    ``[0, param]`` (clipped to the axis) and its start uniformly among the positions where
    it fits. Meant for ``tf.data.Dataset.map`` on training data (it draws from TensorFlow's
    global random state, so ``tf.random.set_seed`` makes it repeatable). For a batch inside
    a model, use the :class:`mmzoo.layers.SpecAugment` layer instead.

    Args:
        features: a ``(time, bins)`` float tensor or array, e.g. a log-mel spectrogram.
        freq_mask_param: the widest frequency band (``F`` in the paper), at least 0.
        time_mask_param: the widest time band (``T`` in the paper), at least 0.
        num_freq_masks, num_time_masks: how many bands of each kind.
        mask_value: the value written into the bands (0.0, or e.g. the features' mean).
        implementation: ``"auto"`` (tensorflow-io's ``tfio.audio.freq_mask``/``time_mask``
            when ``tensorflow_io`` imports and they run, else mmzoo's own), ``"tfio"`` or
            ``"tf"`` (mmzoo's own, TensorFlow ops only).

    Returns:
        A tensor of the features' shape and dtype.

    Example:
    >>> masked = spec_augment(tf.ones((100, 40)), freq_mask_param=8, time_mask_param=20)
    >>> tuple(masked.shape), float(tf.reduce_max(masked))
    ((100, 40), 1.0)
    """
    for name, value in (
        ("freq_mask_param", freq_mask_param),
        ("time_mask_param", time_mask_param),
        ("num_freq_masks", num_freq_masks),
        ("num_time_masks", num_time_masks),
    ):
        check_int(name, value, 0)
    check_choice("implementation", implementation, ("auto", "tfio", "tf"))
    features = tf.convert_to_tensor(features)
    if features.shape.rank is not None and features.shape.rank != 2:
        raise ValueError(f"`features` must be (time, bins). Received shape {features.shape}")
    tfio_audio = None
    if implementation != "tf":
        tfio_audio = _tfio_audio()
        if tfio_audio is None and implementation == "tfio":
            raise ValueError("implementation='tfio' but tensorflow-io's masking ops do not run here")

    shape = tf.shape(features)
    frames, bins = shape[0], shape[1]
    keep = tf.ones((frames, bins), tf.float32)
    if tfio_audio is not None:
        # tfio draws the width from [0, param) and needs param <= the axis length: param + 1
        # gives the paper's [0, F], clipped to the axis. It masks the ones, which gives the
        # band whatever the features hold (zeros included) and allows any mask_value.
        for _ in range(num_freq_masks):
            keep = tfio_audio.freq_mask(keep, param=tf.minimum(freq_mask_param + 1, bins))
        for _ in range(num_time_masks):
            keep = tfio_audio.time_mask(keep, param=tf.minimum(time_mask_param + 1, frames))
    else:
        for _ in range(num_freq_masks):
            keep = keep * _band_mask(bins, freq_mask_param, axis_length_first=False)
        for _ in range(num_time_masks):
            keep = keep * _band_mask(frames, time_mask_param, axis_length_first=True)
    return tf.where(keep > 0, features, tf.cast(mask_value, features.dtype))


# --- A dataset of clips ------------------------------------------------------------------


def waveform_dataset(
    paths,
    labels=None,
    sample_rate=16000,
    length=None,
    strict=False,
    skipped=None,
    num_parallel_calls=tf.data.AUTOTUNE,
):
    """A ``tf.data.Dataset`` of ``{"waveform", "mask"}`` read from audio files (in order).

    Files are decoded by :func:`read_audio` in parallel threads (``tf.numpy_function``),
    then cut or padded to ``length`` samples by :func:`pad_or_trim` in the graph.

    Args:
        paths: the audio files.
        labels: optional, one per file; elements are then ``(features, label)``.
        sample_rate: the rate every waveform is resampled to.
        length: samples per clip; ``None`` keeps each file's length (mask all ones; batch
            with ``padded_batch``).
        strict: if True an unreadable file stops the iteration with an error naming it;
            if False (default) it is logged, added to ``skipped`` and left out.
        skipped: a :class:`mmzoo.data.errors.SkippedFiles` that collects the files left
            out (call its ``warn()`` after iterating); optional.
        num_parallel_calls: parallelism of the decoding map.

    Returns:
        A dataset of ``{"waveform": (length,), "mask": (length,)}`` float32 dicts, or of
        ``(dict, label)`` pairs when ``labels`` is given.

    Example:
    >>> import soundfile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> soundfile.write(path, np.zeros(100, np.float32), 16000, subtype="PCM_16")
    >>> ds = waveform_dataset([path], [1], length=160).batch(4)
    >>> x, y = next(iter(ds))
    >>> tuple(x["waveform"].shape), float(tf.reduce_sum(x["mask"])), y.numpy().tolist()
    ((1, 160), 100.0, [1])
    """
    check_positive_int("sample_rate", sample_rate)
    if length is not None:
        check_positive_int("length", length)
    paths = [os.fspath(p) for p in paths]
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"`labels` must have one label per path: {len(labels)} labels for {len(paths)} paths")

    def load(path):
        path = path.decode() if isinstance(path, bytes) else str(path)
        try:
            return read_audio(path, sample_rate), np.bool_(True)
        except UnreadableFileError as error:
            if strict:
                raise
            logger.warning("Skipping %s", error)
            if skipped is not None:
                skipped.add(error)
            return np.zeros(0, np.float32), np.bool_(False)

    def decode(path):
        waveform, ok = tf.numpy_function(load, [path], (tf.float32, tf.bool))
        waveform.set_shape([None])
        ok.set_shape([])
        return waveform, ok

    def finish(waveform):
        if length is None:
            return {"waveform": waveform, "mask": tf.ones_like(waveform)}
        clip, mask = pad_or_trim(waveform, length)
        return {"waveform": clip, "mask": mask}

    def readable(waveform, ok, *label):
        return ok

    def to_clip(waveform, ok, *label):
        return (finish(waveform), *label) if label else finish(waveform)

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    if labels is not None:
        ds = tf.data.Dataset.zip(ds, tf.data.Dataset.from_tensor_slices(np.asarray(labels)))
    ds = ds.map(lambda path, *label: (*decode(path), *label), num_parallel_calls=num_parallel_calls)
    return ds.filter(readable).map(to_clip)
