"""mmzoo: a Keras 3 model zoo for multimodal deep learning.

>>> import mmzoo
>>> "attention_fusion" in mmzoo.list_models("*fusion*")
True
"""

__version__ = "0.1.0"

from mmzoo import layers, metrics, models, optimizers  # noqa: F401  (importing models registers them)
from mmzoo.presets import save_preset
from mmzoo.registry import build, describe, dummy_batch, list_models, register_model

__all__ = [
    "build",
    "data",
    "describe",
    "dummy_batch",
    "export",
    "finetune",
    "freeze",
    "layers",
    "list_models",
    "load_saved_model",
    "metrics",
    "models",
    "register_model",
    "save_preset",
    "train",
    "unfreeze",
]

# These import TensorFlow, so they load on first use: `import mmzoo` works with Keras
# on JAX and no TensorFlow installed.
_LAZY = {
    "data": ("mmzoo.data", None),
    "train": ("mmzoo.training", "train"),
    "finetune": ("mmzoo.training.finetune", "finetune"),
    "freeze": ("mmzoo.training.finetune", "freeze"),
    "unfreeze": ("mmzoo.training.finetune", "unfreeze"),
    "export": ("mmzoo.serving", "export"),
    "load_saved_model": ("mmzoo.serving", "load_saved_model"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
