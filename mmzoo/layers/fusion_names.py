"""Fusion operators by name: the one place that turns ``fusion="gating"`` into layers; modality tokens.

Models whose fusion step is a choice (``fusion_classifier(fusion=...)``) call
:func:`apply_fusion` on their modality vectors; every operator takes vectors of one
width (``width``) and returns one vector, and, given ``present`` flags, leaves the missing
modalities out (see :mod:`mmzoo.layers.fusion`).
"""

from keras import layers

from mmzoo.layers.fusion import ConcatFusion, ElementwiseProductFusion, WeightedSumFusion
from mmzoo.layers.gating import ModalityGating
from mmzoo.layers.graph import GraphMessagePassing
from mmzoo.layers.literature_fusion import (
    CrossModalAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankFusion,
    TensorFusion,
)
from mmzoo.layers.pooling import AttentionPooling, PresenceGate
from mmzoo.validation import check_choice

FUSIONS = {
    "concat": "concatenation of the modality vectors",
    "weighted": "a learned convex combination, the same for every example",
    "product": "element-wise product",
    "attention": "attention pooling over the modality vectors as tokens (per-example weights)",
    "graph": "one round of message passing over a learned graph of modalities, then concatenation",
    "gating": "a policy network's per-example weights (document 004 §4.1), then a weighted sum",
    "tensor": "outer product of [1, z_m] over the modalities (Zadeh et al. 2017), each first projected small",
    "low_rank": "low-rank multimodal fusion, rank 4 (Liu et al. 2018)",
    "gmu": "gated multimodal unit: per-unit gates over tanh projections (Arevalo et al. 2017)",
    "film": "the first modality scaled and shifted by the others (FiLM, Perez et al. 2018)",
    "cross_attention": "each modality attends to the others, MulT-style (Tsai et al. 2019), concatenated",
}
# Tensor fusion's outer product has prod_m (k + 1) features: each modality is first projected
# to the k that keeps it within this many (63 for two modalities, 15 for three, 7 for four).
TENSOR_FEATURES = 4096


def apply_fusion(fusion, vectors, width, name="fusion", present=None):
    """Fuse ``vectors`` (a list of ``(batch, width)`` tensors) with the operator named ``fusion``.

    Args:
        fusion: a key of :data:`FUSIONS`.
        vectors: the modality vectors, in a fixed order.
        width: their common width (and the width of the operators that need one).
        name: prefix of the layers' names.
        present: None, or one ``(batch,)`` flag per vector (1 present, 0 missing): a missing
            modality contributes nothing, whatever its vector holds (averages and softmaxes
            run over the present ones; attention never attends to a missing one).

    Returns:
        The fused ``(batch, features)`` tensor; a single vector is returned unchanged (zeroed
        where it is missing).
    """
    check_choice("fusion", fusion, tuple(FUSIONS))
    if present is not None and len(present) != len(vectors):
        raise ValueError(
            f"apply_fusion got {len(vectors)} modality vectors but {len(present)} presence flags; "
            f"pass one (batch,) flag per vector. Received: {len(present)} flags"
        )
    if len(vectors) == 1:
        return vectors[0] if present is None else PresenceGate(name=f"{name}_present0")(vectors[0], present[0])
    # Every operator below leaves a missing modality out itself, given the flags.
    flags = {} if present is None else {"present": list(present)}
    if fusion == "concat":
        return ConcatFusion(name=name)(vectors, **flags)
    if fusion == "weighted":
        return WeightedSumFusion(learn_weights=True, name=name)(vectors, **flags)
    if fusion == "product":
        return ElementwiseProductFusion(name=name)(vectors, **flags)
    if fusion == "gating":
        fused, _ = ModalityGating(hidden_units=width, name=name)(vectors, **flags)
        return fused
    if fusion == "tensor":
        size = max(1, int(round(TENSOR_FEATURES ** (1 / len(vectors)))) - 1)
        while (size + 1) ** len(vectors) > TENSOR_FEATURES and size > 1:
            size -= 1
        small = [layers.Dense(size, activation="relu", name=f"{name}_in{index}")(v) for index, v in enumerate(vectors)]
        return TensorFusion(name=name)(small, **flags)
    if fusion == "low_rank":
        return LowRankFusion(width, rank=4, name=name)(vectors, **flags)
    if fusion == "gmu":
        return GatedMultimodalUnit(width, name=name)(vectors, **flags)
    if fusion == "film":
        return FiLM(name=name)(vectors, **flags)
    tokens = stack_modalities(vectors, fusion=fusion)
    mask = None if present is None else stack_flags(present, name=f"{name}_mask")
    if fusion == "cross_attention":
        count = len(vectors)
        attended = []
        for index, token in enumerate(unstack_modalities(tokens, count)):
            others = [v for other, v in enumerate(vectors) if other != index]
            query = layers.Reshape((1, width), name=f"{name}_query{index}")(token)
            context = stack_modalities(others, fusion=fusion)
            key_mask = None
            if present is not None:
                key_mask = stack_flags([p for other, p in enumerate(present) if other != index], f"{name}_keys{index}")
            out = CrossModalAttention(num_heads=4, name=f"{name}_{index}")(query, context, key_mask=key_mask)
            if present is not None:  # a missing modality asks nothing
                out = PresenceGate(name=f"{name}_asked{index}")(out, present[index])
            attended.append(out)
        return layers.Flatten(name=f"{name}_flatten")(layers.Concatenate(axis=1, name=name)(attended))
    if fusion == "attention":
        return AttentionPooling(width, name=name)(tokens, mask=mask)
    nodes = GraphMessagePassing(width, learn_adjacency=True, name=name)(tokens, mask=mask)
    return layers.Flatten(name=f"{name}_flatten")(nodes)


def stack_flags(present, name=None):
    """``(batch,)`` presence flags as one ``(batch, len(present))`` tensor."""
    columns = [layers.Reshape((1,))(p) for p in present]
    return columns[0] if len(columns) == 1 else layers.Concatenate(axis=-1, name=name)(columns)


def stack_modalities(vectors, fusion=None):
    """``(batch, width)`` vectors as a ``(batch, len(vectors), width)`` sequence of modality tokens.

    Raises ValueError naming the widths when they differ (tokens need one width).
    """
    widths = [v.shape[-1] for v in vectors]
    if len(set(widths)) > 1:
        what = f"fusion {fusion!r}" if fusion else "stacking modality tokens"
        raise ValueError(
            f"{what} needs modality vectors of one width (project them first, e.g. with a Dense). "
            f"Received: widths {widths}"
        )
    width = widths[0]
    return layers.Concatenate(axis=1)([layers.Reshape((1, width))(v) for v in vectors])


def unstack_modalities(sequence, count):
    """Split a ``(batch, count, width)`` sequence of modality tokens back into ``count`` vectors."""
    width = sequence.shape[-1]
    return [
        layers.Reshape((width,))(layers.Cropping1D((index, count - 1 - index))(sequence))
        for index in range(count)
    ]
