"""The model registry: ``@register_model`` on plain builder functions (timm style).

The builder's function name is the registry key, its docstring's first line the
model's summary. ``register_model`` records where the model comes from and what was
corrected, and appends both to the builder's docstring so that ``help()`` shows them.
"""

import dataclasses
import fnmatch
import functools
import os

import numpy as np

from mmzoo.validation import check_bool, check_positive_int, closest

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: object
    source: str
    task: str
    corrections: tuple
    test_config: dict

    @property
    def summary(self):
        return (self.builder.__doc__ or "").strip().splitlines()[0]


def register_model(*, source, task, corrections, test_config=None):
    """Register the decorated builder under its function name.

    Args:
        source: the document and section the model comes from, e.g. ``"003 program 2"``.
        task: what the model does, in a few words.
        corrections: one line per thing the document got wrong and mmzoo corrects.
        test_config: keyword arguments giving a small, fast variant of the model,
            used by the test suite; the document defaults stay the defaults.
    """

    def decorator(builder):
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is registered already.")
        entry = ModelEntry(
            name=name,
            builder=builder,
            source=source,
            task=task,
            corrections=tuple(corrections),
            test_config=dict(test_config or {}),
        )
        lines = [f"Source: document {source}.", "", "Corrections of the document:"]
        lines += [f"    - {correction}" for correction in entry.corrections]
        builder.__doc__ = (builder.__doc__ or "").rstrip() + "\n\n    " + "\n    ".join(lines) + "\n"
        _REGISTRY[name] = entry
        return builder

    return decorator


def list_models(pattern="*"):
    """Sorted names of the registered models matching an fnmatch ``pattern`` ("*fusion*")."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def get_entry(name):
    """The registry entry of ``name``; an unknown name raises with the closest names."""
    if name not in _REGISTRY:
        hint = closest(name, _REGISTRY)
        raise ValueError(
            f"Unknown model name {name!r}."
            + (f" Did you mean {', '.join(map(repr, hint))}?" if hint else "")
            + f" Registered models: {', '.join(list_models())}."
        )
    return _REGISTRY[name]


def _compile(model):
    """Compile with the model's defaults and ``jit_compile="auto"`` as :func:`mmzoo.train` decides it."""
    from mmzoo.training.precision import compile_quietly

    compile_quietly(model, "auto", **model.default_compile_arguments())


def build(name, *args, compile=True, weights=None, **kwargs):
    """Build the registered model ``name`` (or the preset at a folder), compiled with its document's optimizer, loss and metrics.

    Args:
        name: a name from ``list_models()``, or a preset folder written by
            :func:`mmzoo.save_preset` (the model is rebuilt from its config, ``kwargs``
            override it, and its weights are loaded).
        compile: compile the model (Adam, one loss and accuracy per output).
        weights: None (fresh initialisation), a preset folder, a ``.weights.h5`` file, or
            ``"imagenet"`` for the models with ``keras.applications`` backbones (Keras
            downloads them into its cache on first use). From a preset of the same model
            with another number of classes, every weight but the head's is loaded and the
            head is new; one line says so (``loaded 31 of 33 weight tensors; new head for 5
            classes``). Anything else that does not fit is refused, naming the tensor.
        **kwargs: the model's arguments; see ``describe(name).defaults``.

    Returns:
        A ``keras.Model``.

    Example:
    >>> model = build("concat_fusion")
    >>> sorted(model.input)
    ['image_input', 'text_input']
    """
    from mmzoo import presets

    if args:
        raise ValueError(
            f"build() takes a model's arguments by keyword, e.g. build({name!r}, units=64); see "
            f"describe({name!r}).defaults. Received: positional arguments {args!r}"
        )
    check_bool("compile", compile)
    if not isinstance(name, str) and not hasattr(name, "__fspath__"):
        raise ValueError(f"`name` must be a registered model name or a preset folder. Received: name={name!r}")
    if str(name) not in _REGISTRY and (presets.is_preset(name) or _looks_like_path(name)):
        if weights is not None:
            raise ValueError(
                f"build({str(name)!r}) loads that preset's weights; `weights` applies to a model name. "
                f"Received: weights={weights!r}"
            )
        preset = presets.read_preset(name)
        model = presets.instantiate(preset, kwargs)
        _report_head_swap(presets.load_preset_weights(model, preset))
        if compile:
            _compile(model)
        return model
    entry = get_entry(name)
    if weights == "imagenet":
        kwargs = {**kwargs, ("image_weights" if name == "fusion_classifier" else "weights"): "imagenet"}
    try:
        model = entry.builder(**{"name": name, **kwargs})
    except ValueError as error:
        if weights == "imagenet" and "has no argument `weights`" in str(error):
            raise ValueError(
                f"{name!r} has no keras.applications backbone: weights='imagenet' applies to the models that "
                "have one (vgg16_features, pretrained_fusion, fusion_classifier with image_encoder=...). "
                "Use None, a preset folder or a .weights.h5 file."
            ) from None
        raise
    if weights is not None and weights != "imagenet":
        _report_head_swap(presets.load_weights(model, weights, verbose=False))
    if compile:
        _compile(model)
    return model


def _report_head_swap(message):
    """Print the loading summary when the head was new (a full load says nothing)."""
    if "new head" in message:
        print(message)


def _looks_like_path(name):
    text = str(name)
    return hasattr(name, "__fspath__") or "/" in text or os.sep in text or os.path.exists(text)


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What ``describe`` returns: everything a user needs to pick and feed a model."""

    name: str
    summary: str
    source: str
    task: str
    inputs: dict  # input name -> (shape without batch, dtype)
    outputs: dict  # output name -> (shape without batch, dtype)
    defaults: dict
    corrections: tuple

    def __str__(self):
        def specs(spec):
            return [f"  {key}: shape {shape}, {dtype}" for key, (shape, dtype) in spec.items()]

        lines = [f"{self.name}: {self.summary}", f"source: document {self.source}", f"task: {self.task}"]
        lines += ["inputs:", *specs(self.inputs), "outputs:", *specs(self.outputs), "defaults:"]
        lines += [f"  {key}={value!r}" for key, value in self.defaults.items()]
        lines += ["corrections:", *[f"  - {c}" for c in self.corrections]]
        return "\n".join(lines)


def tensor_specs(structure, default_key="input"):
    """``{name: (shape without batch, dtype)}`` of a model's inputs or outputs (``model.input``)."""
    if not isinstance(structure, dict):
        structure = {default_key: structure}
    return {key: (tuple(t.shape[1:]), str(t.dtype)) for key, t in structure.items()}


@functools.lru_cache(maxsize=None)
def describe(name):
    """The model card of ``name`` (its document defaults, inputs, outputs and corrections)."""
    entry = get_entry(name)
    model = entry.builder()
    defaults = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")}
    return ModelCard(
        name=name,
        summary=entry.summary,
        source=entry.source,
        task=entry.task,
        inputs=tensor_specs(model.input, "input"),
        outputs=tensor_specs(model.output, "output"),
        defaults=defaults,
        corrections=entry.corrections,
    )


def _random_input(rng, shape, dtype, value_range, key=""):
    if key.endswith("_present"):  # 1 present, 0 missing
        return rng.integers(0, 2, size=shape).astype(dtype)
    if key.endswith("_mask"):  # 1 for the real steps, a prefix of at least one; 0 for the padding after them
        lengths = rng.integers(1, shape[-1] + 1, size=shape[:-1])
        return (np.arange(shape[-1]) < lengths[..., None]).astype(dtype)
    if "int" in dtype:
        low, high = value_range or (0, 2)
        return rng.integers(low, high, size=shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _random_target(rng, batch_size, kind, output):
    if kind == "binary":
        return rng.integers(0, 2, size=(batch_size, 1)).astype("float32")
    if kind == "multiclass":
        return rng.integers(0, output.shape[-1], size=(batch_size,)).astype("int32")
    if kind == "regression":
        return rng.random((batch_size,) + tuple(output.shape[1:]), dtype=np.float32)
    raise ValueError(f"No dummy target for outputs of kind {kind!r}.")


def dummy_batch(name_or_model, batch_size=2, seed=0):
    """Random ``(inputs, targets)`` that fit a model: inputs a dict keyed like the model's.

    Float inputs are uniform in [0, 1), except masks: ``*_present`` inputs are 0 or 1 and
    ``*_mask`` inputs are 1 over a random prefix (at least one step) and 0 after it;
    integer inputs (token ids) lie in the model's token range; targets follow each output's kind (0/1 floats for binary outputs,
    integer class ids for softmax outputs, floats for regression). Outputs without
    a target are left out of the targets, which are None when no output has one.

    Args:
        name_or_model: a registered name (its default model) or a built model.
        batch_size: examples in the batch.
        seed: seed of the random generator; the same seed gives the same batch.
    """
    model = build(name_or_model, compile=False) if isinstance(name_or_model, str) else name_or_model
    check_positive_int("batch_size", batch_size)
    rng = np.random.default_rng(seed)
    token_ranges = getattr(model, "token_ranges", {})
    inputs = {
        key: _random_input(rng, (batch_size,) + shape, dtype, token_ranges.get(key), key)
        for key, (shape, dtype) in tensor_specs(model.input, "input").items()
    }
    targets = model.targets
    if not isinstance(targets, dict):
        return inputs, targets and _random_target(rng, batch_size, targets, model.output)
    y = {
        key: _random_target(rng, batch_size, kind, model.output[key])
        for key, kind in targets.items()
        if kind is not None
    }
    return inputs, y or None


__all__ = ["ModelCard", "build", "describe", "dummy_batch", "list_models", "register_model"]
