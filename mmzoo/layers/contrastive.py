"""The learnable temperature of contrastive (InfoNCE) training, as a serializable layer."""

import math

import keras
from keras import layers, ops

from mmzoo.validation import check_positive_number


@keras.saving.register_keras_serializable(package="mmzoo")
class LogitScale(layers.Layer):
    """Multiplies similarities by a learned logit scale ``min(exp(t), max_scale)`` (CLIP's 1 / temperature).

    The trained variable is ``log_scale`` = t; the scale is clamped to at most
    ``max_scale`` in the forward pass, so a very low temperature cannot make the
    logits overflow (past the clamp the scale stops learning). Computes in float32.

    Args:
        initial_scale: the starting scale, ``1 / temperature`` (CLIP: 1 / 0.07).
        max_scale: the largest scale allowed (CLIP: 100).

    Example:
    >>> scale = LogitScale(initial_scale=10.0)
    >>> float(scale(keras.ops.ones((2, 2)))[0, 0])
    10.0
    >>> float(LogitScale(initial_scale=1000.0).scale())
    100.0
    """

    def __init__(self, initial_scale=1 / 0.07, max_scale=100.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_positive_number("initial_scale", initial_scale)
        check_positive_number("max_scale", max_scale)
        self.initial_scale = float(initial_scale)
        self.max_scale = float(max_scale)

    def build(self, input_shape=None):
        self.log_scale = self.add_weight(
            name="log_scale",
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_scale)),
        )
        self.built = True

    def scale(self):
        """The current scale, ``min(exp(log_scale), max_scale)``."""
        if not self.built:
            self.build()
        return ops.minimum(ops.exp(ops.cast(self.log_scale, "float32")), self.max_scale)

    def call(self, similarities):
        return ops.cast(similarities, "float32") * self.scale()

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial_scale": self.initial_scale, "max_scale": self.max_scale}
