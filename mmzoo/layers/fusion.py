"""Fusion operators of document 002 §4.1.3: concatenation, weighted sum, element-wise product.

Each takes a list (or dict) of modality vectors ``(batch, width_i)`` and returns one vector.
Weighted sum and element-wise product need one width: when the widths differ, each
input whose width is not the common one goes through its own ``Dense`` projection.

**Missing modalities.** Every fusion layer of mmzoo (these, :class:`ModalityGating` and
those of :mod:`mmzoo.layers.literature_fusion`) is called as ``layer(vectors, present=None)``:
``present`` holds one ``(batch,)`` flag per modality (a list or dict in the order of
``vectors``, or one ``(batch, modalities)`` tensor), 1 where the example has the modality
and 0 where it is missing (values above 0.5 count as present). A missing modality
contributes nothing, whatever its vector holds: each layer documents how it renormalises
over the present ones (means and weights over present modalities only, softmaxes that
never pick a missing one). An example with every modality missing gets the layer's
documented all-missing output (zeros for the averaging layers), never NaN.
"""

import math

import keras
from keras import layers, ops

from mmzoo.validation import check_rate


def modality_list(inputs):
    """The modality tensors (or shapes) as a list: a dict's values in order, a list or tuple as is."""
    if isinstance(inputs, dict):
        return list(inputs.values())
    return list(inputs) if isinstance(inputs, (list, tuple)) else inputs


def presence_flags(present, count, dtype, layer_name="fusion"):
    """``present`` as ``count`` ``(batch, 1)`` tensors of 0.0 and 1.0 in ``dtype``; None stays None.

    ``present`` is a list or dict of ``count`` flags shaped ``(batch,)`` or ``(batch, 1)``, or
    one ``(batch, count)`` tensor; values above 0.5 are present.
    """
    if present is None:
        return None
    if isinstance(present, dict):
        present = list(present.values())
    if isinstance(present, (list, tuple)):
        if len(present) != count:
            raise ValueError(
                f"{layer_name} fuses {count} modalities but got {len(present)} presence flags; pass one "
                f"(batch,) flag per modality, in the order of the inputs. Received: {len(present)} flags"
            )
        flags = [ops.reshape(ops.cast(p, "float32"), (-1, 1)) for p in present]
    else:
        if len(present.shape) != 2 or present.shape[-1] not in (None, count):
            raise ValueError(
                f"{layer_name} takes `present` as one (batch,) flag per modality or a (batch, {count}) "
                f"tensor. Received: present of shape {tuple(present.shape)}"
            )
        flags = [ops.cast(present[:, index : index + 1], "float32") for index in range(count)]
    return [ops.cast(ops.greater(flag, 0.5), dtype) for flag in flags]


def masked_softmax(logits, present, axis=-1):
    """``softmax(logits)`` over the entries where ``present`` (0/1, broadcastable) is 1; 0 elsewhere.

    In float32 whatever the logits' dtype. Where no entry is present the result is all zeros.
    """
    logits = ops.cast(logits, "float32")
    present = ops.cast(present, "float32")
    weights = ops.softmax(ops.where(present > 0, logits, ops.full_like(logits, -1e9)), axis=axis)
    return weights * present


def gate_vectors(vectors, flags):
    """Each vector where its modality is present, zeros where it is missing (flags from :func:`presence_flags`)."""
    if flags is None:
        return list(vectors)
    return [ops.where(flag > 0, x, ops.zeros_like(x)) for x, flag in zip(vectors, flags)]


class ModalityFusion(layers.Layer):
    """Base of the fusion layers: a list or dict of modality vectors in, presence flags understood.

    Subclasses implement ``fuse(vectors, flags)``, where ``vectors`` is a list and ``flags``
    None or one ``(batch, 1)`` 0/1 tensor per modality (see the module docstring).
    """

    min_modalities = 2

    def _shapes(self, input_shape):
        shapes = modality_list(input_shape)
        if (
            not isinstance(shapes, list)
            or len(shapes) < self.min_modalities
            or not all(isinstance(shape, (list, tuple)) for shape in shapes)
        ):
            raise ValueError(
                f"{type(self).__name__} fuses a list of at least {self.min_modalities} modality "
                f"tensors. Received input shape: {input_shape}"
            )
        return shapes

    def call(self, inputs, present=None):
        vectors = modality_list(inputs)
        flags = presence_flags(present, len(vectors), vectors[0].dtype, type(self).__name__)
        return self.fuse(vectors, flags)

    def fuse(self, vectors, flags):
        raise NotImplementedError


class _ProjectingFusion(ModalityFusion):
    """Base for fusion operators that need every input at one common width."""

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        if units is not None and (not isinstance(units, int) or units <= 0):
            raise ValueError(
                f"`units` must be a positive integer or None. Received: units={units!r}"
            )
        self.units = units

    def build(self, input_shape):
        input_shape = self._shapes(input_shape)
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
        input_shape = modality_list(input_shape)
        return tuple(input_shape[0][:-1]) + (self.units or max(s[-1] for s in input_shape),)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="mmzoo")
class ConcatFusion(ModalityFusion):
    """Concatenation fusion, ``Concat(h_1, ..., h_n) = [h_1, ..., h_n]``.

    A missing modality's part is zeros (``present``; see the module docstring); with every
    modality missing the output is all zeros. One input is accepted (returned as is).

    Example:
    >>> fused = ConcatFusion()([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))])
    >>> tuple(fused.shape)
    (2, 8)
    """

    min_modalities = 1

    def fuse(self, vectors, flags):
        return ops.concatenate(gate_vectors(vectors, flags), axis=-1)

    def compute_output_shape(self, input_shape):
        input_shape = self._shapes(input_shape)
        return tuple(input_shape[0][:-1]) + (sum(s[-1] for s in input_shape),)


@keras.saving.register_keras_serializable(package="mmzoo")
class WeightedSumFusion(_ProjectingFusion):
    """Weighted sum fusion, ``sum_i w_i h_i`` with ``sum_i w_i = 1``, for any number of modalities.

    Document 002 writes ``alpha*h1 + (1-alpha)*h2 + alpha*h3``: weights that do not sum
    to one, over vectors of different sizes. Here the weights are always normalised,
    and inputs of other widths are projected to a common width first.

    With ``present``, the weights are renormalised over the present modalities of each
    example, ``w_m p_m / sum_k w_k p_k``; with every modality missing the output is zeros.

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
        count = len(modality_list(input_shape))
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

    def fuse(self, vectors, flags):
        projected = ops.stack(self._project(vectors), axis=-1)
        weights = self.normalized_weights()[None, :]
        if flags is not None:
            weights = masked_softmax(ops.log(weights), ops.concatenate(flags, axis=-1))
        weights = ops.cast(weights, projected.dtype)
        return ops.sum(projected * ops.expand_dims(weights, -2), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "modality_weights": self.modality_weights,
            "learn_weights": self.learn_weights,
        }


@keras.saving.register_keras_serializable(package="mmzoo")
class ElementwiseProductFusion(_ProjectingFusion):
    """Element-wise product fusion, ``h_1 ⊙ h_2 ⊙ ... ⊙ h_n``.

    With ``present``, the product runs over the present modalities only (a missing one
    counts as a vector of ones); with every modality missing the output is zeros.

    Args:
        units: the common width; inputs of another width are projected to it.
            None: the largest input width.

    Example:
    >>> fused = ElementwiseProductFusion()([keras.ops.ones((2, 4)) * 2, keras.ops.ones((2, 4)) * 3])
    >>> float(fused[0, 0])
    6.0
    """

    def fuse(self, vectors, flags):
        projected = self._project(vectors)
        if flags is not None:
            projected = [ops.where(flag > 0, x, ops.ones_like(x)) for x, flag in zip(projected, flags)]
        result = projected[0]
        for x in projected[1:]:
            result = result * x
        if flags is not None:
            any_present = ops.max(ops.concatenate(flags, axis=-1), axis=-1, keepdims=True)
            result = ops.where(any_present > 0, result, ops.zeros_like(result))
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

    Called with ``present`` (one ``(batch,)`` flag per modality, see the module docstring),
    it returns ``(vectors, present)``: the flags after the drop, for a fusion layer that
    renormalises over the modalities left; it never drops an example's last present one.

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

    def call(self, inputs, present=None, training=None):
        vectors = modality_list(inputs)
        flags = presence_flags(present, len(vectors), "float32", "ModalityDropout")
        if not training or self.rate == 0.0 or len(vectors) < 2:
            return vectors if flags is None else (vectors, [flag[:, 0] for flag in flags])
        batch = ops.shape(vectors[0])[0]
        keep = ops.cast(keras.random.uniform((batch, len(vectors)), seed=self.seed_generator) >= self.rate, "float32")
        available = ops.ones_like(keep) if flags is None else ops.concatenate(flags, axis=-1)
        kept = keep * available
        # An example left with nothing keeps what it has (all its modalities, or its present ones).
        none_kept = ops.max(kept, axis=1, keepdims=True) <= 0
        kept = ops.where(none_kept, available, kept)
        dropped = [ops.where(kept[:, i : i + 1] > 0, x, ops.zeros_like(x)) for i, x in enumerate(vectors)]
        return dropped if flags is None else (dropped, [kept[:, i] for i in range(len(vectors))])

    def compute_output_shape(self, input_shape):
        return modality_list(input_shape)

    def compute_output_spec(self, inputs, present=None, training=None):
        vectors = [keras.KerasTensor(x.shape, dtype=x.dtype) for x in modality_list(inputs)]
        if present is None:
            return vectors
        batch = vectors[0].shape[:1]
        return vectors, [keras.KerasTensor(batch, dtype="float32") for _ in vectors]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
