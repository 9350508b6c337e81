"""mmzoo: a Keras 3 model zoo for multimodal deep learning.

>>> import mmzoo
>>> "attention_fusion" in mmzoo.list_models("*fusion*")
True
"""

__version__ = "0.1.0"

from mmzoo import layers, metrics, models  # noqa: F401  (importing models registers them)
from mmzoo.registry import build, describe, dummy_batch, list_models, register_model

__all__ = ["build", "data", "describe", "dummy_batch", "layers", "list_models", "metrics", "models", "register_model"]


def __getattr__(name):
    if name == "data":  # imports TensorFlow: loaded on first use
        import importlib

        return importlib.import_module("mmzoo.data")
    raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")
