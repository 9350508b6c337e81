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

from mmzoo.layers.gating import ModalityGating  # noqa: E402
from mmzoo.layers.graph import GraphMessagePassing  # noqa: E402

__all__ += ["GraphMessagePassing", "ModalityGating"]

from mmzoo.layers.contrastive import LogitScale  # noqa: E402

__all__ += ["LogitScale"]
