"""Serializable layers shared by the models of the zoo (keras.layers and keras.ops only)."""

from mmzoo.layers.audio import MFCC, LogMelSpectrogram, SpecAugment
from mmzoo.layers.contrastive import LogitScale
from mmzoo.layers.encoders import PositionEmbedding, RealSteps
from mmzoo.layers.fusion import ConcatFusion, ElementwiseProductFusion, ModalityDropout, WeightedSumFusion
from mmzoo.layers.gating import ModalityGating
from mmzoo.layers.fusion_names import FUSIONS, apply_fusion
from mmzoo.layers.graph import GraphMessagePassing
from mmzoo.layers.literature_fusion import (
    CrossModalAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankFusion,
    TensorFusion,
)
from mmzoo.layers.normalization import Standardization, UnitNormalization
from mmzoo.layers.pooling import AttentionPooling, MaskedPooling
from mmzoo.layers.preprocessing import CaffeImagePreprocessing
from mmzoo.layers.projection import ModalityProjection

__all__ = [
    "AttentionPooling",
    "FUSIONS",
    "CaffeImagePreprocessing",
    "ConcatFusion",
    "CrossModalAttention",
    "ElementwiseProductFusion",
    "FiLM",
    "GatedMultimodalUnit",
    "GraphMessagePassing",
    "LogMelSpectrogram",
    "LogitScale",
    "LowRankFusion",
    "MFCC",
    "MaskedPooling",
    "ModalityDropout",
    "ModalityGating",
    "ModalityProjection",
    "PositionEmbedding",
    "RealSteps",
    "SpecAugment",
    "Standardization",
    "TensorFusion",
    "UnitNormalization",
    "WeightedSumFusion",
    "apply_fusion",
]
