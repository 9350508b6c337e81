"""Fusion operators of document 002 §4.1.3: concatenation, weighted sum, element-wise product.

Each takes a list of modality vectors ``(batch, width_i)`` and returns one vector.
Weighted sum and element-wise product need one width: when the widths differ, each
input whose width is not the common one goes through its own ``Dense`` projection.
"""

import math

import keras
from keras import layers, ops

from mmzoo.validation import check_rate


class _ProjectingFusion(layers.Layer):
    """Base for fusion operators that need every input at one common width."""

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        if units is not None and (not isinstance(units, int) or units <= 0):
            raise ValueError(
                f"`units` must be a positive integer or None. Received: units={units!r}"
            )
        self.units = units

    def _check_inputs(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2:
            raise ValueError(
                f"{type(self).__name__} fuses a list of at least two modality "
                f"tensors. Received input shape: {input_shape}"
            )

    def build(self, input_shape):
        self._check_inputs(input_shape)
        widths = [shape[-1] for shape in input_shape]
        self.common_width = self.units or max(widths)
        self.projections = [
            None
            if width == self.common_width
            else layers.Dense(self.common_width, name=f"projection_{index}")
            for index, width in enumerate(widths)
        ]
        for projection, shape in zip(self.projections, input_shape):
            if projection is not None:
                projection.build(shape)

    def _project(self, inputs):
        return [
            x if projection is None else projection(x)
            for projection, x in zip(self.projections, inputs)
        ]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.units or max(s[-1] for s in input_shape),)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="mmzoo")
class ConcatFusion(layers.Layer):
    """Concatenation fusion, ``Concat(h_1, ..., h_n) = [h_1, ..., h_n]``.

    Example:
    >>> fused = ConcatFusion()([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))])
    >>> tuple(fused.shape)
    (2, 8)
    """

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (sum(s[-1] for s in input_shape),)


@keras.saving.register_keras_serializable(package="mmzoo")
class WeightedSumFusion(_ProjectingFusion):
    """Weighted sum fusion, ``sum_i w_i h_i`` with ``sum_i w_i = 1``, for any number of modalities.

    Document 002 writes ``alpha*h1 + (1-alpha)*h2 + alpha*h3``: weights that do not sum
    to one, over vectors of different sizes. Here the weights are always normalised,
    and inputs of other widths are projected to a common width first.

    Args:
        modality_weights: one positive weight per modality, normalised to sum to 1.
            None gives equal weights.
        learn_weights: if True, the weights are ``softmax(logits)`` with the logits
            trained along with the model and initialised from ``modality_weights``.
        units: the common width. None: the largest input width.

    Example:
    >>> fusion = WeightedSumFusion(modality_weights=[0.5, 0.5, 0.5])
    >>> fused = fusion([keras.ops.ones((2, 4)), keras.ops.zeros((2, 4)), keras.ops.ones((2, 4))])
    >>> [round(float(w), 3) for w in fusion.normalized_weights()]
    [0.333, 0.333, 0.333]
    """

    def __init__(self, modality_weights=None, learn_weights=False, units=None, **kwargs):
        super().__init__(units=units, **kwargs)
        if modality_weights is not None:
            modality_weights = [float(w) for w in modality_weights]
            if not modality_weights or min(modality_weights) <= 0 or not all(
                math.isfinite(w) for w in modality_weights
            ):
                raise ValueError(
                    "`modality_weights` must be positive finite numbers, one per "
                    f"modality. Received: modality_weights={modality_weights!r}"
                )
        self.modality_weights = modality_weights
        self.learn_weights = bool(learn_weights)

    def build(self, input_shape):
        super().build(input_shape)
        count = len(input_shape)
        initial = self.modality_weights or [1.0] * count
        if len(initial) != count:
            raise ValueError(
                f"WeightedSumFusion got {count} modalities but "
                f"{len(initial)} weights. Received: modality_weights={self.modality_weights}"
            )
        total = sum(initial)
        log_weights = [math.log(w / total) for w in initial]
        self.weight_logits = self.add_weight(
            name="weight_logits",
            shape=(count,),
            initializer=keras.initializers.Constant(log_weights),
            trainable=self.learn_weights,
        )

    def normalized_weights(self):
        """The weights applied to each modality; they sum to 1."""
        return ops.softmax(ops.cast(self.weight_logits, "float32"))

    def call(self, inputs):
        projected = ops.stack(self._project(inputs), axis=-1)
        weights = ops.cast(self.normalized_weights(), projected.dtype)
        return ops.sum(projected * weights, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "modality_weights": self.modality_weights,
            "learn_weights": self.learn_weights,
        }


@keras.saving.register_keras_serializable(package="mmzoo")
class ElementwiseProductFusion(_ProjectingFusion):
    """Element-wise product fusion, ``h_1 ⊙ h_2 ⊙ ... ⊙ h_n``.

    Args:
        units: the common width; inputs of another width are projected to it.
            None: the largest input width.

    Example:
    >>> fused = ElementwiseProductFusion()([keras.ops.ones((2, 4)) * 2, keras.ops.ones((2, 4)) * 3])
    >>> float(fused[0, 0])
    6.0
    """

    def call(self, inputs):
        projected = self._project(inputs)
        result = projected[0]
        for x in projected[1:]:
            result = result * x
        return result


@keras.saving.register_keras_serializable(package="mmzoo")
class ModalityDropout(layers.Layer):
    """Drops whole modalities while training: each example's modality vector is zeroed with probability ``rate``.

    A list of modality vectors in, the same list out. While training, every (example,
    modality) pair is kept with probability ``1 - rate`` and zeroed otherwise, never all
    of one example's modalities (an example that would lose every modality keeps them
    all). Kept vectors are not rescaled, so a dropped modality looks exactly like a missing
    one (a zero vector, e.g. after :class:`mmzoo.layers.pooling.PresenceGate`) and the
    model learns to predict from what is there. At inference the layer does nothing.

    Modality dropout (ModDrop; Neverova et al., 2015) keeps one easy modality from
    carrying the whole fit: without it a branch that memorises the training set early
    (text, on a few thousand examples) leaves the others little gradient to learn from.

    Args:
        rate: probability of dropping each modality of each example, in [0, 1).
        seed: seed of the random draws.

    Example:
    >>> layer = ModalityDropout(0.5, seed=1)
    >>> a, b = keras.ops.ones((4, 3)), keras.ops.ones((4, 2))
    >>> [tuple(v.shape) for v in layer([a, b], training=True)]
    [(4, 3), (4, 2)]
    >>> bool(keras.ops.all(layer([a, b])[0] == a))
    True
    """

    def __init__(self, rate=0.25, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(check_rate("rate", rate))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0 or len(inputs) < 2:
            return list(inputs)
        batch = ops.shape(inputs[0])[0]
        keep = keras.random.uniform((batch, len(inputs)), seed=self.seed_generator) >= self.rate
        none_kept = ops.logical_not(ops.any(keep, axis=1, keepdims=True))
        keep = ops.logical_or(keep, none_kept)
        return [x * ops.cast(keep[:, index : index + 1], x.dtype) for index, x in enumerate(inputs)]

    def compute_output_shape(self, input_shape):
        return list(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
