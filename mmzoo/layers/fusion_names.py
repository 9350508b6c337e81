"""Fusion operators by name: the one place that turns ``fusion="gating"`` into layers; modality tokens.

Models whose fusion step is a choice (``fusion_classifier(fusion=...)``) call
:func:`apply_fusion` on their modality vectors; every operator takes vectors of one
width (``width``) and returns one vector.
"""

from keras import layers

from mmzoo.layers.fusion import ConcatFusion, ElementwiseProductFusion, WeightedSumFusion
from mmzoo.layers.gating import ModalityGating
from mmzoo.layers.graph import GraphMessagePassing
from mmzoo.layers.pooling import AttentionPooling
from mmzoo.validation import check_choice

FUSIONS = {
    "concat": "concatenation of the modality vectors",
    "weighted": "a learned convex combination, the same for every example",
    "product": "element-wise product",
    "attention": "attention pooling over the modality vectors as tokens (per-example weights)",
    "graph": "one round of message passing over a learned graph of modalities, then concatenation",
    "gating": "a policy network's per-example weights (document 004 §4.1), then a weighted sum",
}


def apply_fusion(fusion, vectors, width, name="fusion"):
    """Fuse ``vectors`` (a list of ``(batch, width)`` tensors) with the operator named ``fusion``.

    Args:
        fusion: a key of :data:`FUSIONS`.
        vectors: the modality vectors, in a fixed order.
        width: their common width (and the width of the operators that need one).
        name: prefix of the layers' names.

    Returns:
        The fused ``(batch, features)`` tensor; a single vector is returned unchanged.
    """
    check_choice("fusion", fusion, tuple(FUSIONS))
    if len(vectors) == 1:
        return vectors[0]
    if fusion == "concat":
        return ConcatFusion(name=name)(vectors)
    if fusion == "weighted":
        return WeightedSumFusion(learn_weights=True, name=name)(vectors)
    if fusion == "product":
        return ElementwiseProductFusion(name=name)(vectors)
    if fusion == "gating":
        fused, _ = ModalityGating(hidden_units=width, name=name)(vectors)
        return fused
    tokens = stack_modalities(vectors)
    if fusion == "attention":
        return AttentionPooling(width, name=name)(tokens)
    nodes = GraphMessagePassing(width, learn_adjacency=True, name=name)(tokens)
    return layers.Flatten(name=f"{name}_flatten")(nodes)


def stack_modalities(vectors):
    """``(batch, width)`` vectors as a ``(batch, len(vectors), width)`` sequence of modality tokens."""
    width = vectors[0].shape[-1]
    return layers.Concatenate(axis=1)([layers.Reshape((1, width))(v) for v in vectors])


def unstack_modalities(sequence, count):
    """Split a ``(batch, count, width)`` sequence of modality tokens back into ``count`` vectors."""
    width = sequence.shape[-1]
    return [
        layers.Reshape((width,))(layers.Cropping1D((index, count - 1 - index))(sequence))
        for index in range(count)
    ]
