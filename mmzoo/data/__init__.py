"""Data for mmzoo models: the embedded synthetic dataset, tf.data pipelines and real loaders.

- ``synthetic`` / ``synthetic_arrays``: the embedded learnable dataset for any model.
- ``from_directory``, ``from_manifest``, ``cifar10``: real data as ``tf.data`` pipelines.
- Per-modality pieces: ``decode_image``/``image_augmentation``, ``make_text_vectorizer``
  (``TextVectorization``, saved and restored with its vocabulary), ``read_audio``/
  ``pad_or_trim``/``spec_augment`` (features: ``mmzoo.layers.LogMelSpectrogram``, ``MFCC``),
  ``read_video``.
- ``to_arrays`` / ``save_arrays`` / ``load_arrays`` (``mmzoo.data.arrays``): a loaded split
  as NumPy arrays in one ``.npz``, read back with NumPy only (for Keras on JAX).
- Unreadable files raise ``UnreadableFileError`` naming the file (``strict=True``) or are
  skipped with one warning that counts and names them (``SkippedFiles``).
"""

import importlib

# Loaded on first use, so that ``mmzoo`` (and ``synthetic_arrays``) import without
# TensorFlow, e.g. on a machine with Keras on JAX.
_EXPORTS = {
    "mmzoo.data.arrays": ("load_arrays", "save_arrays", "to_arrays"),
    "mmzoo.data.audio": ("pad_or_trim", "read_audio", "spec_augment", "waveform_dataset"),
    "mmzoo.data.errors": ("SkippedFiles", "UnreadableFileError"),
    "mmzoo.data.image": ("decode_image", "image_augmentation", "load_image", "read_image"),
    "mmzoo.data.loaders": ("DatasetSplits", "cifar10", "from_directory", "from_manifest"),
    "mmzoo.data.embedded": ("synthetic", "synthetic_arrays"),
    "mmzoo.data.text": ("load_text_vectorizer", "make_text_vectorizer", "read_text", "save_text_vectorizer"),
    "mmzoo.data.video": ("read_video",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


_SUBMODULES = ("arrays",)  # ``mmzoo.data.arrays.load_arrays`` without importing the submodule first


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"mmzoo.data.{name}")
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'mmzoo.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)


def __dir__():
    return sorted(__all__)


__all__ = [
    "DatasetSplits",
    "SkippedFiles",
    "UnreadableFileError",
    "cifar10",
    "decode_image",
    "from_directory",
    "from_manifest",
    "image_augmentation",
    "load_arrays",
    "load_image",
    "load_text_vectorizer",
    "make_text_vectorizer",
    "pad_or_trim",
    "read_audio",
    "read_image",
    "read_text",
    "read_video",
    "save_arrays",
    "save_text_vectorizer",
    "spec_augment",
    "synthetic",
    "synthetic_arrays",
    "to_arrays",
    "waveform_dataset",
]
