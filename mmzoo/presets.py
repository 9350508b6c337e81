"""Presets: a trained model as a plain folder, and weights loaded into any zoo model.

A preset (KerasHub's layout) is a folder that fully describes a trained model::

    PRESET_DIR/
      config.json         the registry name, the constructor arguments, mmzoo and Keras versions
      model.weights.h5    every weight (Keras' own format: no pickle, no code)
      preprocessing.json  what feeding it needs: class names, text vectorizers (settings and
                          vocabulary), loader options (image size, sample rate, ...)
      metadata.json       what it was trained on, its metrics, the date

:func:`save_preset` writes it through a temporary folder renamed into place (fsynced, as
the export), so an interrupted save never leaves a folder that looks like a preset.
:func:`load_weights` puts a preset's (or a ``.weights.h5`` file's) weights into a model;
``mmzoo.build(PRESET_DIR, **overrides)`` and ``mmzoo.build(name, weights=...)`` use it.

Loading reads JSON and HDF5 only. A config naming a class outside the zoo or a ``Lambda``
layer is refused before anything is built.

Head swap (timm's ``reset_classifier``, KerasHub's ``from_preset(num_classes=...)``): when
the model asked for differs from the preset only in its head (other classes), every other
weight is loaded, the head keeps its fresh initialisation, and one line says so::

    loaded 31 of 33 weight tensors; new head for 5 classes

Any other difference (another model, other input shapes) is refused with an error naming
the first weight tensor that does not fit.

Example:
>>> import tempfile, numpy as np, mmzoo
>>> model = mmzoo.build("mlp", input_shape=(8,), units=4)
>>> folder = mmzoo.save_preset(model, tempfile.mkdtemp() + "/mlp-preset")
>>> again = mmzoo.build(folder)
>>> x = np.ones((2, 8), "float32")
>>> bool(np.allclose(model.predict(x, verbose=0), again.predict(x, verbose=0)))
True
"""

import datetime
import json
import os
import pathlib
import secrets
import shutil

from mmzoo._atomic import make_directories, replace

PRESET_FORMAT = "mmzoo-preset"
PRESET_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
PREPROCESSING_FILE = "preprocessing.json"
METADATA_FILE = "metadata.json"


class PresetError(ValueError):
    """A folder that is not a usable preset, or weights that do not fit a model."""


# --- text vectorizers as JSON ----------------------------------------------------------------


def vectorizer_document(vectorizer):
    """A ``TextVectorization`` as JSON: its settings and its vocabulary."""
    config = dict(vectorizer.get_config())
    config.update(vocabulary=None, idf_weights=None)
    config.pop("vocabulary_size", None)
    return {"config": config, "vocabulary": [str(token) for token in vectorizer.get_vocabulary()]}


def vectorizer_from_document(document):
    """The ``TextVectorization`` that :func:`vectorizer_document` described."""
    import keras

    vectorizer = keras.layers.TextVectorization.from_config(dict(document["config"]))
    vectorizer.set_vocabulary(list(document["vocabulary"]))
    return vectorizer


# --- writing ---------------------------------------------------------------------------------


def _registered_name(model):
    from mmzoo.registry import list_models

    name = getattr(model, "name", None)
    if name not in list_models() or not hasattr(model, "_constructor_arguments"):
        raise ValueError(
            "save_preset() saves models built by mmzoo.build (their name is their registry name and "
            f"their config their constructor arguments). Received: a model named {name!r}"
            + (f" of class {type(model).__name__}" if model is not None else "")
        )
    return name


def _json_ready(value, where):
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} must be JSON-serialisable ({error}). Received: {value!r}") from None


def save_preset(model, directory, *, class_names=None, vectorizers=None, loader_options=None, metadata=None,
                overwrite=False):
    """Write ``model`` as a preset folder at ``directory`` (see :mod:`mmzoo.presets`).

    Args:
        model: a model built by ``mmzoo.build`` (trained or not).
        directory: the folder to create. Its parent is created if needed.
        class_names: the name of each class (label ``i`` is ``class_names[i]``); by
            default the model's own ``class_names`` (``fusion_classifier``), if any.
        vectorizers: ``{input name: TextVectorization}`` that made the model's token ids
            (e.g. ``{"text": splits.vectorizer}``); kept with their vocabularies.
        loader_options: the loader arguments the model expects (``image_size``,
            ``sample_rate``, ``audio_length``, ``sequence_length``, ...), JSON-serialisable.
        metadata: anything to keep about the training: ``{"trained_on": ..., "metrics":
            {...}}``; the date and the versions are added.
        overwrite: replace an existing preset at ``directory`` (a folder that is not a
            preset is never replaced).

    Returns:
        ``directory`` as a ``pathlib.Path``.

    Raises:
        ValueError: a model not built by ``mmzoo.build``, arguments that are not
            JSON-serialisable, or an existing ``directory`` (without ``overwrite``, or not a
            preset). Nothing is written then, and a failure while writing leaves no folder.
    """
    import keras

    import mmzoo

    name = _registered_name(model)
    directory = pathlib.Path(directory)
    if directory.exists():
        if not overwrite:
            raise ValueError(f"{directory} exists already; pass overwrite=True to replace the preset there.")
        if not (directory / CONFIG_FILE).is_file():
            raise ValueError(f"{directory} exists and is not a preset (no {CONFIG_FILE}): it is never replaced.")
    arguments = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")}
    config = {
        "format": PRESET_FORMAT,
        "version": PRESET_VERSION,
        "model": name,
        "class_name": f"{type(model).__module__}.{type(model).__name__}",
        "config": _json_ready(arguments, f"The constructor arguments of {name!r}"),
        "mmzoo_version": mmzoo.__version__,
        "keras_version": keras.__version__,
    }
    if class_names is None and getattr(model, "class_names", None) is not None:
        class_names = list(model.class_names)
    preprocessing = {
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "vectorizers": {key: vectorizer_document(v) for key, v in (vectorizers or {}).items()},
        "loader": _json_ready(loader_options, "`loader_options`") if loader_options is not None else None,
    }
    meta = {
        **(_json_ready(metadata, "`metadata`") if metadata is not None else {}),
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": keras.backend.backend(),
    }
    make_directories(directory.parent)
    temporary = directory.parent / f".{directory.name}.{secrets.token_hex(6)}.tmp"
    previous = None
    try:
        temporary.mkdir()
        for file, document in ((CONFIG_FILE, config), (PREPROCESSING_FILE, preprocessing), (METADATA_FILE, meta)):
            (temporary / file).write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
        model.save_weights(str(temporary / WEIGHTS_FILE))
        if directory.exists():
            previous = directory.parent / f".{directory.name}.{secrets.token_hex(6)}.old"
            os.replace(directory, previous)
        replace(temporary, directory)
    except BaseException:
        if previous is not None and not directory.exists():
            os.replace(previous, directory)
            previous = None
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    return directory


# --- reading ---------------------------------------------------------------------------------


def is_preset(path):
    """Whether ``path`` is a folder holding a preset's ``config.json``."""
    return isinstance(path, (str, os.PathLike)) and (pathlib.Path(path) / CONFIG_FILE).is_file()


def _forbidden_classes(value, path="config"):
    """``(where, class name)`` of the first ``Lambda`` (or other code-carrying) entry in a config, or None."""
    if isinstance(value, dict):
        class_name = value.get("class_name")
        if isinstance(class_name, str) and class_name.split(".")[-1] in ("Lambda", "TFOpLambda", "function"):
            return path, class_name
        for key, item in value.items():
            found = _forbidden_classes(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _forbidden_classes(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _read_json(path, what):
    try:
        document = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path} is missing: a preset folder holds {what}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(f"{path} cannot be read as JSON ({error}).") from None
    if not isinstance(document, dict):
        raise PresetError(f"{path} is not a JSON object.")
    return document


def read_preset(directory):
    """The parts of the preset at ``directory`` as a dict: ``model``, ``config``, ``preprocessing``,
    ``metadata``, ``weights`` (the weight file's path), ``directory``, and the versions.

    Raises:
        PresetError: ``directory`` is not a folder, has no valid ``config.json``, names a
            model outside the zoo or a ``Lambda`` layer, or has no weight file.
    """
    from mmzoo.registry import list_models

    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise PresetError(f"{directory} is not a preset: no such folder.")
    if not (directory / CONFIG_FILE).is_file():
        raise PresetError(
            f"{directory} is not a preset: it has no {CONFIG_FILE} (presets are written by mmzoo.save_preset)."
        )
    config = _read_json(directory / CONFIG_FILE, "the model's config")
    if config.get("format") != PRESET_FORMAT:
        raise PresetError(f"{directory / CONFIG_FILE} is not an mmzoo preset config (no format {PRESET_FORMAT!r}).")
    if config.get("version") != PRESET_VERSION:
        raise PresetError(
            f"{directory / CONFIG_FILE} has preset version {config.get('version')!r}; this mmzoo reads {PRESET_VERSION}."
        )
    name = config.get("model")
    if name not in list_models():
        raise PresetError(
            f"{directory / CONFIG_FILE} names the model {name!r}, which is not in the zoo "
            f"(registered: {', '.join(list_models())})."
        )
    class_name = config.get("class_name", "")
    if not isinstance(class_name, str) or not class_name.startswith("mmzoo."):
        raise PresetError(f"{directory / CONFIG_FILE} names the class {class_name!r}, which is not an mmzoo class.")
    arguments = config.get("config")
    if not isinstance(arguments, dict):
        raise PresetError(f"{directory / CONFIG_FILE} has no 'config' object of constructor arguments.")
    forbidden = _forbidden_classes(arguments)
    if forbidden:
        raise PresetError(
            f"{directory / CONFIG_FILE} holds a {forbidden[1]} layer at {forbidden[0]}: presets carry no code, "
            "and loading one would run it."
        )
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise PresetError(f"{weights} is missing: the preset at {directory} has no weights.")
    preprocessing = (
        _read_json(directory / PREPROCESSING_FILE, "preprocessing")
        if (directory / PREPROCESSING_FILE).exists() else {}
    )
    metadata = _read_json(directory / METADATA_FILE, "metadata") if (directory / METADATA_FILE).exists() else {}
    return {
        "directory": directory,
        "model": name,
        "class_name": class_name,
        "config": arguments,
        "preprocessing": preprocessing,
        "metadata": metadata,
        "weights": weights,
        "mmzoo_version": config.get("mmzoo_version"),
        "keras_version": config.get("keras_version"),
    }


def instantiate(preset, overrides=None):
    """The model a :func:`read_preset` result describes (``overrides`` on its arguments), not yet loaded.

    Built from the model class the config names (an mmzoo ``MultimodalModel``), as
    ``.keras`` loading does: a registry builder may fix arguments that the config holds.
    ImageNet weights named in the config are not fetched again: the preset's replace them.
    """
    import importlib

    from mmzoo.models.base import MultimodalModel

    module_name, _, class_name = preset["class_name"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, MultimodalModel)):
        raise PresetError(
            f"{preset['directory'] / CONFIG_FILE} names the class {preset['class_name']!r}, which is not an mmzoo model."
        )
    arguments = dict(preset["config"])
    for key in ("weights", "image_weights"):
        if arguments.get(key) == "imagenet":
            arguments[key] = None
    return cls(**{**arguments, **(overrides or {}), "name": preset["model"]})


def _load_h5(model, path):
    """``model.load_weights(path)``, its failures as a PresetError naming the file."""
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        raise PresetError(f"{path} is not a readable weight file (truncated or another format: {error}).") from None
    try:
        model.load_weights(str(path))
    except (ValueError, KeyError, OSError) as error:
        raise PresetError(f"The weights in {path} do not fit {model.name!r}: {error}") from None


# --- loading into a model --------------------------------------------------------------------


def head_weights(model):
    """The weight variables of the model's head (the layers a head swap re-initialises)."""
    from mmzoo.models.anatomy import head_layers

    return [variable for layer in head_layers(model) for variable in layer.weights]


def _head_size(model):
    from mmzoo.models.anatomy import head_layers

    sizes = [int(layer.output.shape[-1]) for layer in head_layers(model)]
    return sizes[0] if len(sizes) == 1 else sizes


def transfer_weights(source, target, *, where="the preset"):
    """Copy ``source``'s weights into ``target`` (same model, perhaps another head).

    Every weight tensor of ``target`` gets the one at the same place in ``source``; a head
    tensor (``target.head``) of another shape keeps its fresh initialisation. Returns
    ``(loaded, total, new head tensors)``.

    Raises:
        PresetError: another model, or a tensor that is not in the head and does not fit,
            named.
    """
    if source.name != target.name:
        raise PresetError(f"{where} is a {source.name!r} model; it cannot be loaded into {target.name!r}.")
    sources, targets = source.weights, target.weights
    head = {id(variable) for variable in head_weights(target)}
    skipped = []
    for index, variable in enumerate(targets):
        if index >= len(sources) or sources[index].path != variable.path:
            found = sources[index].path if index < len(sources) else "nothing"
            raise PresetError(
                f"{where} does not fit {target.name!r}: weight tensor {index} is {variable.path!r} in the model "
                f"and {found!r} in {where} (built with other arguments)."
            )
        if tuple(sources[index].shape) == tuple(variable.shape):
            continue
        if id(variable) not in head:
            raise PresetError(
                f"{where} does not fit {target.name!r}: weight tensor {variable.path!r} is "
                f"{tuple(sources[index].shape)} in {where} and {tuple(variable.shape)} in the model "
                "(only the head may change shape, for another number of classes)."
            )
        skipped.append(index)
    if len(sources) != len(targets):
        raise PresetError(
            f"{where} does not fit {target.name!r}: it has {len(sources)} weight tensors, the model {len(targets)}."
        )
    for index, (value, variable) in enumerate(zip(source.get_weights(), targets)):
        if index not in skipped:
            variable.assign(value)
    return len(targets) - len(skipped), len(targets), len(skipped)


def load_preset_weights(model, preset):
    """Load the weights of ``preset`` (a :func:`read_preset` result) into ``model``; the one-line summary.

    The same model with the same arguments loads the file directly; with other arguments
    (another head) the preset's model is built and its weights transferred
    (:func:`transfer_weights`).
    """
    if preset["model"] != model.name:
        raise PresetError(
            f"the preset at {preset['directory']} is a {preset['model']!r} model; it cannot be loaded "
            f"into {model.name!r}."
        )
    arguments = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable")}
    if _same(preset["config"], arguments):
        _load_h5(model, preset["weights"])
        return f"loaded {len(model.weights)} of {len(model.weights)} weight tensors from {preset['directory']}"
    source = instantiate(preset)
    _load_h5(source, preset["weights"])
    loaded, total, new = transfer_weights(source, model, where=f"the preset at {preset['directory']}")
    message = f"loaded {loaded} of {total} weight tensors from {preset['directory']}"
    return message + (f"; new head for {_head_size(model)} classes" if new else "")


def load_weights(model, weights, *, verbose=True):
    """Load ``weights`` into ``model``: a preset folder or a ``.weights.h5`` file.

    From a preset of the same model, every weight that fits is loaded; when only the head
    differs (another number of classes), it keeps its fresh initialisation and one line
    says so (``verbose``). A ``.weights.h5`` file must fit the model exactly.

    Returns:
        A one-line summary, e.g. ``"loaded 31 of 33 weight tensors; new head for 5 classes"``.

    Raises:
        PresetError: not a preset or weight file, a damaged file, or weights that do not fit
            (the first tensor that does not is named).
    """
    if isinstance(weights, (str, os.PathLike)) and pathlib.Path(weights).is_dir():
        message = load_preset_weights(model, read_preset(weights))
    elif isinstance(weights, (str, os.PathLike)) and str(weights).endswith(".weights.h5") and (
        pathlib.Path(weights).exists()
    ):
        path = pathlib.Path(weights)
        _load_h5(model, path)
        message = f"loaded {len(model.weights)} of {len(model.weights)} weight tensors from {path}"
    else:
        raise PresetError(
            "`weights` must be None, a preset folder (written by mmzoo.save_preset), a .weights.h5 file, or "
            f"'imagenet' for models with keras.applications backbones. Received: weights={weights!r}"
            + (" (no such file or folder)" if isinstance(weights, (str, os.PathLike))
               and not pathlib.Path(weights).exists() else "")
        )
    if verbose:
        print(message)
    return message


def _same(a, b):
    """Whether two configs are equal once both are JSON (tuples and lists alike)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


__all__ = [
    "PresetError",
    "head_weights",
    "is_preset",
    "load_preset_weights",
    "load_weights",
    "read_preset",
    "instantiate",
    "save_preset",
    "transfer_weights",
    "vectorizer_document",
    "vectorizer_from_document",
]
