"""Pooling of a sequence ``(batch, time, features)`` into a vector, respecting padding."""

import keras
from keras import layers, ops

from mmzoo.validation import check_choice, check_positive_int


def _float_mask(inputs, mask):
    """``(batch, time, 1)`` float mask, all ones when there is no mask."""
    if mask is None:
        return ops.ones_like(inputs[..., :1])
    return ops.expand_dims(ops.cast(mask, inputs.dtype), axis=-1)


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedPooling(layers.Layer):
    """Mean or max over time of the steps the Keras mask marks as real.

    Padded steps (mask False, e.g. token id 0 after ``Embedding(mask_zero=True)``)
    take no part. A sequence with no real step pools to zeros.

    Args:
        mode: ``"mean"`` or ``"max"``.

    Example:
    >>> tokens = keras.ops.convert_to_tensor([[3, 4, 0, 0]])
    >>> embedded = keras.layers.Embedding(10, 2, mask_zero=True)
    >>> pooled = MaskedPooling()(embedded(tokens), mask=embedded.compute_mask(tokens))
    >>> tuple(pooled.shape)
    (1, 2)
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        check_choice("mode", mode, ("mean", "max"))
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        weights = _float_mask(inputs, mask)
        if self.mode == "mean":
            total = ops.sum(inputs * weights, axis=1)
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
        return ops.sum(attention * inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}
