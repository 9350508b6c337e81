"""Audio features as layers: log-mel spectrogram, MFCC, SpecAugment.

They replace document 004 §3.3 (``melspectrogram(audio, sr=...)`` on a 3x4 array of
decibels): features are computed in the model (or in ``tf.data``), on a batch of
waveforms, with ``keras.ops`` only, so they run on any Keras backend and a model that
contains them saves to a ``.keras`` file that loads with ``safe_mode=True``.
With the TensorFlow backend they also run inside ``tf.data.Dataset.map``.

The features match librosa's for the same parameters (``tests/test_data_audio.py``)::

    librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=sample_rate, n_fft=fft_length, hop_length=hop_length, win_length=window_length,
        window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=num_mel_bins,
        fmin=min_freq, fmax=max_freq, htk=True, norm=None), ref=1.0, amin=1e-10, top_db=80.0)

to about 0.1 dB (Keras' triangles are linear in mel, librosa's in hertz).
"""

import math

import keras
import numpy as np
from keras import layers, ops

from mmzoo.validation import (
    check_choice,
    check_finite_number,
    check_int,
    check_positive_int,
    check_positive_number,
    check_seed,
)


@keras.saving.register_keras_serializable(package="mmzoo")
class LogMelSpectrogram(layers.Layer):
    """Log-mel spectrogram in decibels of a batch of waveforms: ``(batch, frames, mel)``.

    Built on ``keras.layers.MelSpectrogram`` (centred STFT with reflect padding, periodic
    Hann window, HTK mel filters of peak 1), with two corrections for batched use: the
    output is transposed to (frames, mel), the layout sequence layers expect, and the
    ``top_db`` floor is taken per example (``MelSpectrogram`` takes the maximum over the
    whole batch, so one loud clip would change the features of a quiet one). Decibels are
    ``10 * log10(max(power, min_power) / ref_power)``, clipped below at the example's
    maximum minus ``top_db``, as ``librosa.power_to_db``. The layer computes in float32
    whatever the dtype policy (inputs are not auto-cast) and returns its compute dtype.

    Input shape: ``(batch, samples)`` or ``(samples,)``, float waveforms.
    Output shape: ``(batch, frames, num_mel_bins)`` (or ``(frames, num_mel_bins)``) with
    ``frames = samples // hop_length + 1``. ``samples`` must exceed ``fft_length // 2``.

    Args:
        sample_rate: the waveforms' sample rate in Hz.
        fft_length: FFT size (librosa's ``n_fft``).
        hop_length: samples between successive frames.
        window_length: samples in each windowed frame, at most ``fft_length``
            (``None``: ``fft_length``).
        window: ``"hann"`` or ``"hamming"``.
        num_mel_bins: mel bands.
        min_freq: lowest frequency of the mel filters in Hz.
        max_freq: highest frequency in Hz (``None``: ``sample_rate / 2``).
        top_db: dynamic range kept below each example's maximum; ``None`` keeps all.
        min_power: floor on the power before the logarithm (librosa's ``amin``).
        ref_power: the power that maps to 0 dB.

    Example:
    >>> layer = LogMelSpectrogram(sample_rate=16000, fft_length=512, hop_length=160, num_mel_bins=40)
    >>> tuple(layer(keras.random.uniform((2, 16000), -1.0, 1.0)).shape)
    (2, 101, 40)
    """

    def __init__(
        self,
        sample_rate=16000,
        fft_length=2048,
        hop_length=512,
        window_length=None,
        window="hann",
        num_mel_bins=128,
        min_freq=0.0,
        max_freq=None,
        top_db=80.0,
        min_power=1e-10,
        ref_power=1.0,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)  # a float16 waveform would lose ~40 dB of range
        super().__init__(**kwargs)
        check_positive_int("sample_rate", sample_rate)
        check_positive_int("fft_length", fft_length)
        check_positive_int("hop_length", hop_length)
        if window_length is not None:
            check_positive_int("window_length", window_length)
            if window_length > fft_length:
                raise ValueError(
                    "`window_length` must be at most `fft_length`. "
                    f"Received: window_length={window_length!r}, fft_length={fft_length!r}"
                )
        check_choice("window", window, ("hann", "hamming"))
        check_positive_int("num_mel_bins", num_mel_bins)
        check_finite_number("min_freq", min_freq)
        nyquist = sample_rate / 2
        if max_freq is not None:
            check_positive_number("max_freq", max_freq)
            if max_freq > nyquist:
                raise ValueError(
                    f"`max_freq` must be at most sample_rate / 2 = {nyquist}. Received: max_freq={max_freq!r}"
                )
        if not 0 <= min_freq < (max_freq if max_freq is not None else nyquist):
            raise ValueError(
                "`min_freq` must be at least 0 and below `max_freq` (or sample_rate / 2). "
                f"Received: min_freq={min_freq!r}, max_freq={max_freq!r}, sample_rate={sample_rate!r}"
            )
        if top_db is not None:
            check_positive_number("top_db", top_db)
        check_positive_number("min_power", min_power)
        check_positive_number("ref_power", ref_power)
        self.sample_rate = sample_rate
        self.fft_length = fft_length
        self.hop_length = hop_length
        self.window_length = window_length
        self.window = window
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq
        self.top_db = top_db
        self.min_power = min_power
        self.ref_power = ref_power
        self._ref_db = 10.0 * math.log10(max(ref_power, min_power))
        self.mel = layers.MelSpectrogram(
            fft_length=fft_length,
            sequence_stride=hop_length,
            sequence_length=window_length,
            window=window,
            sampling_rate=sample_rate,
            num_mel_bins=num_mel_bins,
            min_freq=float(min_freq),
            max_freq=float(max_freq if max_freq is not None else nyquist),
            power_to_db=False,
            mag_exp=2.0,
            dtype="float32",
            name="mel",
        )

    def build(self, input_shape):
        if len(input_shape) not in (1, 2):
            raise ValueError(
                f"{type(self).__name__} takes waveforms (batch, samples) or (samples,). "
                f"Received input shape: {tuple(input_shape)}"
            )
        self.mel.build(input_shape)
        super().build(input_shape)

    def _log_mel(self, inputs):
        power = self.mel(ops.cast(inputs, "float32"))  # (..., mel, frames)
        db = 10.0 * ops.log10(ops.maximum(power, self.min_power)) - self._ref_db
        if self.top_db is not None:
            peak = ops.max(db, axis=(-2, -1), keepdims=True)
            db = ops.maximum(db, peak - self.top_db)
        return ops.swapaxes(db, -1, -2)

    def call(self, inputs):
        return ops.cast(self._log_mel(inputs), self.compute_dtype)

    def _frames(self, samples):
        return None if samples is None else samples // self.hop_length + 1

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return input_shape[:-1] + (self._frames(input_shape[-1]), self.num_mel_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "fft_length": self.fft_length,
            "hop_length": self.hop_length,
            "window_length": self.window_length,
            "window": self.window,
            "num_mel_bins": self.num_mel_bins,
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
            "top_db": self.top_db,
            "min_power": self.min_power,
            "ref_power": self.ref_power,
        }


def dct_matrix(num_inputs, num_outputs):
    """``(num_inputs, num_outputs)`` orthonormal DCT-II matrix: ``x @ D`` is
    ``scipy.fft.dct(x, type=2, norm="ortho")[..., :num_outputs]``."""
    m = np.arange(num_inputs)[:, None]
    k = np.arange(num_outputs)[None, :]
    matrix = np.sqrt(2.0 / num_inputs) * np.cos(np.pi * k * (2 * m + 1) / (2 * num_inputs))
    matrix[:, 0] /= np.sqrt(2.0)
    return matrix.astype("float32")


@keras.saving.register_keras_serializable(package="mmzoo")
class MFCC(LogMelSpectrogram):
    """Mel-frequency cepstral coefficients of a batch of waveforms: ``(batch, frames, num_mfcc)``.

    The orthonormal DCT-II of the log-mel spectrogram in dB (librosa's default
    ``librosa.feature.mfcc``, ``dct_type=2, norm="ortho", lifter=0``), applied as a
    product with a constant matrix; coefficient 0 is the scaled frame energy.

    Args:
        num_mfcc: coefficients kept (at most ``num_mel_bins``).
        **kwargs: the :class:`LogMelSpectrogram` arguments (``sample_rate``,
            ``fft_length``, ``hop_length``, ``window_length``, ``window``,
            ``num_mel_bins``, ``min_freq``, ``max_freq``, ``top_db``, ``min_power``,
            ``ref_power``) and the base layer's.

    Example:
    >>> layer = MFCC(13, sample_rate=16000, fft_length=512, hop_length=160, num_mel_bins=40)
    >>> tuple(layer(keras.random.uniform((2, 16000), -1.0, 1.0)).shape)
    (2, 101, 13)
    """

    def __init__(self, num_mfcc=20, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_mfcc", num_mfcc)
        if num_mfcc > self.num_mel_bins:
            raise ValueError(
                "`num_mfcc` must be at most `num_mel_bins`. "
                f"Received: num_mfcc={num_mfcc!r}, num_mel_bins={self.num_mel_bins!r}"
            )
        self.num_mfcc = num_mfcc
        self._dct = dct_matrix(self.num_mel_bins, num_mfcc)

    def call(self, inputs):
        log_mel = self._log_mel(inputs)
        dct = ops.convert_to_tensor(self._dct, dtype=log_mel.dtype)
        return ops.cast(ops.matmul(log_mel, dct), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(super().compute_output_shape(input_shape)[:-1]) + (self.num_mfcc,)

    def get_config(self):
        return {**super().get_config(), "num_mfcc": self.num_mfcc}


@keras.saving.register_keras_serializable(package="mmzoo")
class SpecAugment(layers.Layer):
    """SpecAugment (Park et al., 2019) frequency and time masking, in training only.

    For each example of a ``(batch, frames, bins)`` batch, sets ``num_freq_masks`` bands of
    consecutive bins and ``num_time_masks`` bands of consecutive frames to ``mask_value``.
    Each band's width is uniform in ``[0, param]`` (clipped to the axis), its start uniform
    among the positions where it fits; every example draws its own bands, from Keras'
    seeded random ops. Outside training (``training`` False or not set) the input passes
    unchanged. Put it after :class:`LogMelSpectrogram` or :class:`MFCC`.

    Args:
        freq_mask_param: the widest frequency band (``F`` in the paper).
        time_mask_param: the widest time band (``T`` in the paper).
        num_freq_masks: frequency bands per example.
        num_time_masks: time bands per example.
        mask_value: the value written into the bands.
        seed: optional integer seed, for repeatable masks.

    Example:
    >>> augment = SpecAugment(freq_mask_param=4, time_mask_param=10, seed=0)
    >>> features = keras.ops.ones((2, 50, 16))
    >>> bool(keras.ops.all(augment(features) == features))
    True
    >>> float(keras.ops.min(augment(features, training=True))) <= 1.0
    True
    """

    def __init__(
        self,
        freq_mask_param=10,
        time_mask_param=20,
        num_freq_masks=1,
        num_time_masks=1,
        mask_value=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_int("freq_mask_param", freq_mask_param, 0)
        check_int("time_mask_param", time_mask_param, 0)
        check_int("num_freq_masks", num_freq_masks, 0)
        check_int("num_time_masks", num_time_masks, 0)
        check_finite_number("mask_value", mask_value)
        check_seed("seed", seed)
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.num_freq_masks = num_freq_masks
        self.num_time_masks = num_time_masks
        self.mask_value = mask_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"SpecAugment takes (batch, frames, bins) features. Received input shape: {tuple(input_shape)}"
            )
        super().build(input_shape)

    def _keep_band(self, batch, size, max_width):
        """``(batch, size)`` float: 0.0 on one random band per example, 1.0 elsewhere."""
        size_f = ops.cast(size, "float32")
        widest = ops.minimum(ops.cast(max_width, "float32"), size_f)
        width = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator) * (widest + 1.0))
        start = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator) * (size_f - width + 1.0))
        positions = ops.cast(ops.arange(size), "float32")[None, :]
        outside = ops.logical_or(positions < start[:, None], positions >= (start + width)[:, None])
        return ops.cast(outside, "float32")

    def call(self, inputs, training=None):
        if not training or (self.num_freq_masks == 0 and self.num_time_masks == 0):
            return inputs
        shape = ops.shape(inputs)
        batch, frames, bins = shape[0], shape[1], shape[2]
        keep = ops.ones((batch, frames, bins), "float32")
        for _ in range(self.num_freq_masks):
            keep = keep * self._keep_band(batch, bins, self.freq_mask_param)[:, None, :]
        for _ in range(self.num_time_masks):
            keep = keep * self._keep_band(batch, frames, self.time_mask_param)[:, :, None]
        return ops.where(keep > 0, inputs, ops.cast(self.mask_value, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "freq_mask_param": self.freq_mask_param,
            "time_mask_param": self.time_mask_param,
            "num_freq_masks": self.num_freq_masks,
            "num_time_masks": self.num_time_masks,
            "mask_value": self.mask_value,
            "seed": self.seed,
        }
