"""Precision and compilation: the dtype policy ``mixed_precision`` stands for, and XLA.

``mixed_precision="auto"`` is ``mixed_float16`` when a GPU is visible and float32 on CPU.
``jit_compile`` goes to ``compile``; with ``jit_compile=True`` on a model that has a layer XLA
cannot compile, :func:`mmzoo.train` warns once (:func:`xla_warning`) and trains without XLA.
"""

import warnings

MIXED_PRECISION_CHOICES = ("auto", "mixed_float16", "mixed_bfloat16", "float32")
JIT_CHOICES = ("auto", True, False)

_KERAS_JIT_WARNING = "Model doesn't support `jit_compile=True`"


def resolve_mixed_precision(mixed_precision):
    """The dtype policy name ``mixed_precision`` stands for.

    ``"auto"`` is ``"mixed_float16"`` when TensorFlow sees a GPU, ``"float32"`` otherwise.
    Anything but :data:`MIXED_PRECISION_CHOICES` raises ``ValueError``.
    """
    if not isinstance(mixed_precision, str) or mixed_precision not in MIXED_PRECISION_CHOICES:
        raise ValueError(
            f"`mixed_precision` must be one of {', '.join(map(repr, MIXED_PRECISION_CHOICES))}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    if mixed_precision != "auto":
        return mixed_precision
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


# --- XLA ------------------------------------------------------------------------------------


def xla_blockers(model):
    """``[(layer name, class name)]`` of the model's layers XLA cannot compile (``supports_jit=False``).

    An LSTM or GRU is one of them when it runs on the cuDNN kernel (a GPU, default
    arguments): Keras then turns XLA off for the whole model.
    """
    return [
        (layer.name, type(layer).__name__)
        for layer in model._flatten_layers(include_self=False)
        if not getattr(layer, "supports_jit", True)
    ]


def xla_warning(model, blockers):
    if not blockers:
        return (
            f"jit_compile=True was asked but Keras turned XLA off for {model.name!r} "
            "(op determinism enabled, or XLA not supported on this platform); training without XLA."
        )
    names = ", ".join(f"{name!r} ({cls})" for name, cls in blockers)
    message = (
        f"jit_compile=True was asked, but {model.name!r} has layers XLA cannot compile "
        f"(supports_jit=False): {names}. Keras trains it without XLA."
    )
    recurrent = sorted({cls for _, cls in blockers if cls in ("LSTM", "GRU")})
    if recurrent:
        variants = " / ".join(f"{cls}(use_cudnn=False)" for cls in recurrent)
        message += (
            f" The {'/'.join(recurrent)} runs on the cuDNN kernel, which XLA cannot compile; "
            f"build it as {variants} for an XLA-compilable model."
        )
    return message


def compile_quietly(model, jit_compile, **arguments):
    """``model.compile`` with Keras' own 'does not support jit' warning silenced (train warns once itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*" + _KERAS_JIT_WARNING.replace("`", ".") + ".*")
        model.compile(**arguments, jit_compile=jit_compile)


__all__ = ["JIT_CHOICES", "MIXED_PRECISION_CHOICES", "compile_quietly", "resolve_mixed_precision", "xla_blockers", "xla_warning"]
