"""Pooling of a sequence ``(batch, time, features)`` into a vector, respecting padding, and
zeroing the vector of a missing modality.

The mask of a pooling layer is either the Keras mask of its input (``Embedding(mask_zero=True)``)
or one passed explicitly, ``layer(frames, mask=frame_mask)``: a ``(batch, time)`` tensor, bool or
float, whose values above 0.5 mark the real steps (1 real, 0 padding), such as the
``video_mask`` the loaders yield for zero-padded clips. Padded steps take no part whatever
they hold.
"""

import keras
from keras import layers, ops

from mmzoo.validation import check_choice, check_positive_int


def _float_mask(inputs, mask):
    """``(batch, time, 1)`` mask of 0.0 and 1.0 (values above 0.5 are real steps), all ones without a mask."""
    if mask is None:
        return ops.ones_like(inputs[..., :1])
    real = ops.greater(ops.cast(mask, "float32"), 0.5)
    return ops.expand_dims(ops.cast(real, inputs.dtype), axis=-1)


def _real_steps(inputs, weights):
    """``inputs`` with the padded steps set to 0, so that no value they hold (however large) leaks."""
    return ops.where(weights > 0, inputs, ops.zeros_like(inputs))


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedPooling(layers.Layer):
    """Mean or max over time of the steps the Keras mask marks as real.

    Padded steps (mask False, e.g. token id 0 after ``Embedding(mask_zero=True)``, or 0 in
    a frame mask passed as ``mask=``) take no part. A sequence with no real step pools to zeros.

    Args:
        mode: ``"mean"`` or ``"max"``.

    Example:
    >>> tokens = keras.ops.convert_to_tensor([[3, 4, 0, 0]])
    >>> embedded = keras.layers.Embedding(10, 2, mask_zero=True)
    >>> pooled = MaskedPooling()(embedded(tokens), mask=embedded.compute_mask(tokens))
    >>> tuple(pooled.shape)
    (1, 2)
    >>> frames = keras.ops.convert_to_tensor([[[1.0], [3.0], [99.0]]])
    >>> pooled = MaskedPooling()(frames, mask=keras.ops.convert_to_tensor([[1.0, 1.0, 0.0]]))
    >>> keras.ops.convert_to_numpy(pooled).tolist()
    [[2.0]]
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, ("mean", "max"))
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        weights = _float_mask(inputs, mask)
        if self.mode == "mean":
            total = ops.sum(_real_steps(inputs, weights), axis=1)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            return total / count
        lowest = ops.cast(-1e4, inputs.dtype)
        pooled = ops.max(ops.where(weights > 0, inputs, lowest), axis=1)
        return ops.where(ops.sum(weights, axis=1) > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="mmzoo")
class AttentionPooling(layers.Layer):
    """Learned attention pooling: ``sum_t softmax_t(v^T tanh(W x_t)) x_t`` over real steps.

    The mask is the input's Keras mask or one passed as ``mask=`` (see :class:`MaskedPooling`).

    Args:
        units: width of the scoring layer.

    Example:
    >>> tuple(AttentionPooling(8)(keras.ops.ones((2, 5, 3))).shape)
    (2, 3)
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        self.units = units
        self.supports_masking = True
        self.hidden = layers.Dense(units, activation="tanh", name="hidden")
        self.score = layers.Dense(1, use_bias=False, name="score")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.score.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, inputs, mask=None):
        scores = self.score(self.hidden(inputs))
        weights = _float_mask(inputs, mask)
        scores = ops.where(weights > 0, scores, ops.cast(-1e4, scores.dtype))
        attention = ops.softmax(scores, axis=1) * weights
        return ops.sum(attention * _real_steps(inputs, weights), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="mmzoo")
class PresenceGate(layers.Layer):
    """A modality's vector where it is present, zeros where it is missing.

    ``gate(vectors, present)``: ``vectors`` is ``(batch, ...)``, ``present`` a ``(batch,)``
    flag, 1 when the example has the modality and 0 when it is missing (values above 0.5
    count as present). A missing modality then contributes nothing to a fusion, whatever
    its (zero-filled, or any) input holds. ``present`` may also cover more leading axes,
    e.g. a ``(batch, frames)`` mask of a ``(batch, frames, h, w, c)`` clip or a
    ``(batch, samples)`` mask of waveforms: padded steps become zeros. The gate has no weights;
    a Keras mask on ``vectors`` (padding of a token sequence) passes through unchanged.

    Example:
    >>> vectors = keras.ops.convert_to_tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> gated = PresenceGate()(vectors, keras.ops.convert_to_tensor([1.0, 0.0]))
    >>> keras.ops.convert_to_numpy(gated).tolist()
    [[1.0, 2.0], [0.0, 0.0]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, vectors, present):
        present = ops.greater(ops.cast(present, "float32"), 0.5)
        for _ in range(len(vectors.shape) - len(present.shape)):
            present = ops.expand_dims(present, -1)
        return ops.where(present, vectors, ops.zeros_like(vectors))

    def compute_output_shape(self, vectors_shape, present_shape):
        return tuple(vectors_shape)


@keras.saving.register_keras_serializable(package="mmzoo")
class AllPresent(layers.Layer):
    """``(batch,)`` ones, one per example of its input: every modality present (no flags given).

    What :mod:`mmzoo.models.presence` gates with when a model drops modalities while
    training (``modality_dropout``) but takes no ``<modality>_present`` flags.

    Example:
    >>> keras.ops.convert_to_numpy(AllPresent()(keras.ops.zeros((3, 2)))).tolist()
    [1.0, 1.0, 1.0]
    """

    def call(self, inputs):
        return ops.ones((ops.shape(inputs)[0],), "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0],), dtype="float32")
