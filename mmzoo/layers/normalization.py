"""Input standardisation whose statistics are weights: adapted once on training data, saved with the model."""

import keras
import numpy as np
from keras import layers, ops

from mmzoo.validation import check_positive_number


@keras.saving.register_keras_serializable(package="mmzoo")
class Standardization(layers.Layer):
    """``(x - mean) / sqrt(variance + epsilon)`` per feature of the last axis, with adapted statistics.

    Like ``keras.layers.Normalization(axis=-1)``, but the statistics are read from the
    layer's (non-trainable) weights at every call, never folded into constants: after
    ``set_weights``, ``load_weights``, a strategy copy or a preset load, the layer uses the
    weights it holds. A third weight, ``adapted`` (0 or 1), records whether ``adapt`` ran,
    so ``mmzoo.train`` adapts only layers that have no statistics yet, and a model loaded
    from a file keeps the statistics it was trained with. Before ``adapt`` the layer is the
    identity (mean 0, variance 1).

    Args:
        epsilon: added to the variance.

    Example:
    >>> layer = Standardization()
    >>> layer.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
    >>> keras.ops.convert_to_numpy(layer(np.array([[1.0, 20.0]]))).round(3).tolist()
    [[0.0, 0.0]]
    >>> bool(layer.is_adapted)
    True
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        check_positive_number("epsilon", epsilon)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError(
                f"{type(self).__name__} needs a known last dimension. Received input shape: {tuple(input_shape)}"
            )
        self.mean = self.add_weight(name="mean", shape=(width,), initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=(width,), initializer="ones", trainable=False)
        self.adapted = self.add_weight(name="adapted", shape=(), initializer="zeros", trainable=False)

    @property
    def is_adapted(self):
        return self.built and float(ops.convert_to_numpy(self.adapted)) > 0.5

    def adapt(self, data):
        """Set the statistics from ``data``: an array, or an iterable of batches (arrays or tensors).

        Every axis but the last is reduced. Statistics are accumulated in float64 (Chan's
        parallel update), so any number of batches gives the same result as one array.
        """
        batches = [data] if hasattr(data, "shape") else data
        count, mean, m2 = 0, None, None
        for batch in batches:
            values = np.asarray(ops.convert_to_numpy(batch), dtype="float64")
            values = values.reshape(-1, values.shape[-1])
            if not len(values):
                continue
            batch_mean = values.mean(axis=0)
            batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
            if mean is None:
                count, mean, m2 = len(values), batch_mean, batch_m2
                continue
            total = count + len(values)
            delta = batch_mean - mean
            mean = mean + delta * len(values) / total
            m2 = m2 + batch_m2 + delta**2 * count * len(values) / total
            count = total
        if mean is None:
            raise ValueError(f"{self.name}: adapt() received no values to compute statistics from.")
        if not self.built:
            self.build((None, len(mean)))
        if len(mean) != self.mean.shape[0]:
            raise ValueError(
                f"{self.name} standardises {self.mean.shape[0]} features; adapt() received data with "
                f"{len(mean)} in its last axis."
            )
        self.mean.assign(mean.astype("float32"))
        self.variance.assign((m2 / count).astype("float32"))
        self.adapted.assign(1.0)

    def call(self, inputs):
        mean = ops.cast(self.mean, inputs.dtype)
        scale = ops.cast(ops.rsqrt(self.variance + self.epsilon), inputs.dtype)
        return (inputs - mean) * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="mmzoo")
class UnitNormalization(layers.UnitNormalization):
    """``keras.layers.UnitNormalization`` (L2) whose gradient stays finite at a zero vector.

    Keras computes ``x * min(rsqrt(sum(x²)), 1 / epsilon)``: at ``x = 0`` the ``rsqrt`` is
    infinite, and JAX's gradient through the ``min`` is ``0 * inf = NaN`` (TensorFlow's
    happens to be finite). A projection whose bias starts at zero gives exactly that for
    an example whose features are all zero after a ReLU: one such example made every
    weight of ``cross_modal_retrieval``'s projections NaN after the first step on JAX.
    Here the sum is clamped first, ``x * rsqrt(max(sum(x²), epsilon²))``: the same
    output wherever ``|x| > epsilon``, zero at zero, and a finite gradient everywhere
    (at zero, ``1 / epsilon`` times the upstream gradient, as Keras gives on TensorFlow).

    Args:
        axis: the axis or axes normalised (default -1).

    Example:
    >>> layer = UnitNormalization()
    >>> keras.ops.convert_to_numpy(layer(np.array([[3.0, 4.0], [0.0, 0.0]]))).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """

    epsilon = 1e-12

    def call(self, inputs):
        square_sum = ops.sum(ops.square(inputs), axis=self.axis, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(square_sum, self.epsilon**2))
