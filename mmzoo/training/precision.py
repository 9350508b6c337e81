"""Precision and compilation: the dtype policy ``mixed_precision`` stands for, and XLA.

``mixed_precision="auto"`` is ``mixed_float16`` when TensorFlow sees a GPU,
``mixed_bfloat16`` when JAX does, and float32 on CPU. ``jit_compile="auto"`` is decided per
model by :func:`resolve_jit_compile` from what ``benchmarks/xla.py`` measured; with
``jit_compile=True`` on a model that has a layer XLA cannot compile, :func:`mmzoo.train`
warns once (:func:`xla_warning`) and trains without XLA. Nothing here imports TensorFlow
unless Keras runs on it.
"""

import warnings

import keras

MIXED_PRECISION_CHOICES = ("auto", "mixed_float16", "mixed_bfloat16", "float32")
JIT_CHOICES = ("auto", True, False)

_KERAS_JIT_WARNING = "Model doesn't support `jit_compile=True`"


def resolve_mixed_precision(mixed_precision):
    """The dtype policy name ``mixed_precision`` stands for.

    ``"auto"`` is ``"mixed_float16"`` on a GPU under TensorFlow (Keras scales the loss),
    ``"mixed_bfloat16"`` on a GPU under JAX (no loss scaling needed; what XLA runs fastest
    on recent GPUs), ``"float32"`` otherwise. Anything but :data:`MIXED_PRECISION_CHOICES`
    raises ``ValueError``.
    """
    if not isinstance(mixed_precision, str) or mixed_precision not in MIXED_PRECISION_CHOICES:
        raise ValueError(
            f"`mixed_precision` must be one of {', '.join(map(repr, MIXED_PRECISION_CHOICES))}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    if mixed_precision != "auto":
        return mixed_precision
    if not gpu_visible():
        return "float32"
    return "mixed_bfloat16" if keras.backend.backend() == "jax" else "mixed_float16"


def gpu_visible():
    """Whether the Keras backend sees a GPU (TensorFlow, JAX or PyTorch; imports only that one)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


# --- XLA ------------------------------------------------------------------------------------

# What benchmarks/xla.py measured on this project's 2-core CPU under TensorFlow 2.21, float32,
# batch 32, document defaults (the README's table, "XLA where it pays"): the registered
# models that XLA sped up by 1.1x or more in each of three runs. It slowed the
# convolutional models on 224x224 and 32x32 images (0.4-0.9x) and did nothing for
# fusion_classifier's raw-audio CNN (0.8-1.0x); the other small models moved either way
# from run to run (0.8-1.9x: the spread of a shared machine), so "auto" leaves them off.
CPU_XLA_MODELS = frozenset(
    {"attention_fusion", "cross_modal_retrieval", "dynamic_fusion", "emotion", "mha_fusion"}
)


def check_jit_compile(jit_compile):
    """Raise ``ValueError`` unless ``jit_compile`` is one of :data:`JIT_CHOICES` (``1`` is not True)."""
    if not isinstance(jit_compile, (bool, str)) or jit_compile not in JIT_CHOICES:
        raise ValueError(f"`jit_compile` must be 'auto', True or False. Received: jit_compile={jit_compile!r}")


def _has_recurrent_layer(model):
    return any(isinstance(layer, keras.layers.RNN) for layer in model._flatten_layers(include_self=False))


def resolve_jit_compile(model, jit_compile="auto"):
    """What ``compile(jit_compile=...)`` gets for ``model``: True, False, or Keras' own ``"auto"``.

    ``True`` and ``False`` are kept. ``"auto"`` is decided per model from measurements
    (``benchmarks/xla.py``; its table is in the README):

    - TensorFlow on a CPU: XLA for the registered models it measurably speeds up
      (:data:`CPU_XLA_MODELS`, found by the model's registry name), and for any other model
      with a recurrent layer (an ``RNN``: LSTM, GRU: every one measured gained 1.4x or more);
      none for the rest (XLA slowed the convolutional ones);
    - TensorFlow on a GPU, and JAX: Keras' ``"auto"`` (XLA whenever every layer supports
      it; on JAX without it every operation is dispatched from Python);
    - PyTorch: False (Keras' choice too).
    """
    check_jit_compile(jit_compile)
    if jit_compile != "auto":
        return jit_compile
    backend = keras.backend.backend()
    if backend == "torch":
        return False
    if backend == "tensorflow" and not gpu_visible():
        return model.name in CPU_XLA_MODELS or _has_recurrent_layer(model)
    return "auto"


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
    """``model.compile`` with ``jit_compile`` resolved (:func:`resolve_jit_compile`) and Keras'
    own 'does not support jit' warning silenced (train warns once itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*" + _KERAS_JIT_WARNING.replace("`", ".") + ".*")
        model.compile(**arguments, jit_compile=resolve_jit_compile(model, jit_compile))


__all__ = [
    "CPU_XLA_MODELS",
    "JIT_CHOICES",
    "check_jit_compile",
    "MIXED_PRECISION_CHOICES",
    "compile_quietly",
    "gpu_visible",
    "resolve_jit_compile",
    "resolve_mixed_precision",
    "xla_blockers",
    "xla_warning",
]
