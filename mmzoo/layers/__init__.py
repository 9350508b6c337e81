"""Serializable layers shared by the models of the zoo."""

from mmzoo.layers.fusion import ConcatFusion, ElementwiseProductFusion, WeightedSumFusion
from mmzoo.layers.pooling import AttentionPooling, MaskedPooling
from mmzoo.layers.preprocessing import CaffeImagePreprocessing
from mmzoo.layers.projection import ModalityProjection

__all__ = [
    "AttentionPooling",
    "CaffeImagePreprocessing",
    "ConcatFusion",
    "ElementwiseProductFusion",
    "MaskedPooling",
    "ModalityProjection",
    "WeightedSumFusion",
]
