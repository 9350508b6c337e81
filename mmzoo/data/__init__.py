"""Data for mmzoo models: the embedded synthetic dataset, tf.data pipelines and loaders."""

from mmzoo.data.errors import SkippedFiles, UnreadableFileError
from mmzoo.data.synthetic import synthetic, synthetic_arrays

__all__ = ["SkippedFiles", "UnreadableFileError", "synthetic", "synthetic_arrays"]
