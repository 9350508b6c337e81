"""Export a model as a TensorFlow SavedModel in TF Serving's layout, checked, and load it back.

``export(model)`` writes ``<export_dir>/<name>/<version>/`` (``saved_model.pb`` and
``variables/``), the layout TensorFlow Serving watches: ``name`` defaults to the model's
name (``mmzoo.build`` names a model after its registry key), ``version`` to the next
integer after the highest one there (1 first; gaps are not refilled, so the new export is
always the latest, the one TF Serving serves).

How a version appears (so that TF Serving, or anyone else, never sees a half-written or
unchecked one):

1. the SavedModel is written to a temporary directory inside ``<export_dir>/<name>/``
   whose name starts with ``.tmp-`` (TF Serving only loads directories named by an
   integer);
2. it is loaded back with ``tf.saved_model.load`` and its ``serve`` function and
   ``serving_default`` signature are run on a batch of 3 examples (``mmzoo.dummy_batch``;
   the signature is traced with a dynamic batch, never at 3): their outputs must equal
   the model's to ``1e-5``;
3. the temporary directory is fsynced (every file and folder in it, and
   ``<export_dir>/<name>/``), then renamed to ``<version>`` in one step, the folder
   fsynced again after the rename so that the new version survives a power cut: with
   ``renameat2(RENAME_NOREPLACE)`` on Linux, which fails when the name exists, else
   ``os.rename`` after a check (a non-empty directory is never replaced). When an
   automatic version was taken meanwhile (another export, another process), the next
   number is tried; an explicit ``version`` that exists raises ``VersionExistsError``.

Any exception on the way (in writing, in the check, in the rename, or an interrupt)
removes the temporary directory and leaves no version directory. A process killed
outright (SIGKILL) can leave a ``.tmp-*`` directory behind, which TF Serving ignores.

The serving signature
---------------------
``serve`` (also the ``serving_default`` signature, which TF Serving uses) takes one
argument, a dict keyed by the model's input names (the names of ``model.input``), each a
``tf.TensorSpec`` of the model's dtype with a dynamic batch: ``{"text": (None, 10) int32,
"audio": (None, 128) float32, ...}``; the signature's input names are the same keys. It
returns what the model returns: a dict keyed by the output names for a dict-output model
(``multitask_*``, ``face_recognition``, ...); for a single-output model ``serve(x)``
returns the tensor, which the SavedModel *signature* (TF Serving's REST and gRPC
responses) names ``output_0``, TensorFlow's fixed key for a lone output.

With ``include_preprocessing=True`` and ``preprocessors={input name: Keras layer}``, the
inputs with a preprocessor take raw data instead and the layer runs inside the serving
function, its state (a ``TextVectorization``'s vocabulary) saved with the model:

- a ``TextVectorization`` (or ``StringLookup``): raw strings, ``tf.string`` ``(None,)``;
  its ``int64`` token ids are cast to the model's ``int32``;
- an audio feature layer with a ``hop_length`` (``mmzoo.layers.MFCC``,
  ``LogMelSpectrogram``): raw waveforms, ``float32`` ``(None, None)``: any number of
  samples that gives the model's number of frames (``frames = samples // hop_length + 1``;
  other lengths fail with an error that gives the accepted range);
- any other layer: ``float32`` batches of the shape the layer was built on
  (``layer.build((None, ...))`` or a first call), batch dynamic.

``export`` checks that each preprocessor's output fits its model input (shape, and an
integer or a float dtype like the input's; a vectorizer's ``output_mode="int"``,
``output_sequence_length`` and vocabulary size against the model's sequence length and
token range) and raises ``ValueError`` before writing anything otherwise.

``load_saved_model(path)`` gives a callable that takes the same dict of NumPy arrays or
tensors, at any batch size, and returns NumPy (a dict, or an array for a single-output
model), with errors that name missing or unexpected inputs and list the expected ones.

Class names and loader settings
-------------------------------
The SavedModel can carry what it takes to name its predictions and to read new files
the way its training data was read, inside it (written and checked before the version is
published, like the rest):

- ``class_names`` (``export(..., class_names=[...])``; by default the model's own
  ``model.class_names``, e.g. ``fusion_classifier``'s, when it has them): an endpoint
  ``class_names`` (also a signature, no inputs) that returns them as a ``tf.string``
  vector; label ``i`` is ``class_names[i]``;
- ``loader_options`` (``export(..., loader_options={...})``, a JSON-serialisable dict):
  an endpoint ``loader_options`` that returns it as one JSON ``tf.string``. ``mmzoo train
  --data DIR`` stores the :func:`mmzoo.data.from_directory` arguments it read the folder
  with (modalities, input names, image size and color mode, sample rate and audio length,
  sequence length, video frames), which ``mmzoo predict`` uses.

``ServedModel.class_names`` and ``ServedModel.loader_options`` read them back (None for an
export without them).

Example::

    model = mmzoo.build("emotion")
    path = mmzoo.export(model)             # 'saved_models/emotion/1'
    served = mmzoo.load_saved_model(path)  # or "saved_models/emotion": its latest version
    probabilities = served(mmzoo.dummy_batch(model, batch_size=4)[0])

Requires the TensorFlow backend.
"""

import ctypes
import dataclasses
import errno
import json
import numbers
import os
import shutil
import secrets
import sys
import threading

import keras
import numpy as np

from mmzoo.registry import dummy_batch, tensor_specs
from mmzoo.validation import closest

SERVING_ENDPOINT = "serve"
CLASS_NAMES_ENDPOINT = "class_names"
LOADER_OPTIONS_ENDPOINT = "loader_options"
SINGLE_OUTPUT_KEY = "output_0"  # TensorFlow's signature key for a function's lone output
TEMPORARY_PREFIX = ".tmp-"
CHECK_BATCH_SIZE = 3
CHECK_ATOL = 1e-5
CHECK_RTOL = 1e-6
_MAX_VERSION_ATTEMPTS = 1000

# Keras layers and tf.saved_model.save are not documented as safe to trace and save
# from several threads at once: exports in one process take turns to write and check;
# the version each gets is settled by the atomic rename, across threads and processes.
_WRITE_LOCK = threading.Lock()


class VersionExistsError(FileExistsError, ValueError):
    """An explicit export ``version`` whose directory exists already."""


class ExportCheckError(RuntimeError):
    """The SavedModel loaded back does not serve what the model computes."""


# --- argument checks ------------------------------------------------------------------------


def _check_name(name):
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"`name` must be a non-empty string (a directory name). Received: name={name!r}")
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(s in name for s in separators) or "\0" in name or name in (".", ".."):
        raise ValueError(
            "`name` must be a single directory name: no path separators, not '.' or '..'. "
            f"Received: name={name!r}"
        )
    if name.startswith("."):
        raise ValueError(f"`name` must not start with '.' (a hidden directory). Received: name={name!r}")
    return name


def _check_version(version):
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, numbers.Integral) or version <= 0:
        raise ValueError(
            f"`version` must be a positive integer or None (the next one). Received: version={version!r}"
        )
    return int(version)


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet; build or call it before exporting it.")
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "mmzoo.export writes TensorFlow SavedModels and needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow). Current backend: {keras.backend.backend()!r}"
        )


def _check_class_names(model, class_names):
    """The class names to store: given, else the model's own (``model.class_names``), else None."""
    if class_names is None:
        class_names = getattr(model, "class_names", None)
        if class_names is None:
            return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, (list, tuple)) or not all(
        isinstance(name, str) for name in class_names
    ) or not class_names:
        raise ValueError(
            "`class_names` must be a list of strings (label i named class_names[i]) or None. "
            f"Received: class_names={class_names!r}"
        )
    return [str(name) for name in class_names]


def _check_loader_options(loader_options):
    if loader_options is None:
        return None
    try:
        if not isinstance(loader_options, dict):
            raise TypeError(type(loader_options).__name__)
        return json.loads(json.dumps(loader_options, sort_keys=True))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`loader_options` must be a JSON-serialisable dict or None ({error}). "
            f"Received: loader_options={loader_options!r}"
        ) from None


def _model_directory(export_dir, name):
    """``<export_dir>/<name>``, created (with its parents) if missing; anything else in the way raises."""
    export_dir = os.fspath(export_dir)
    for path in (export_dir, os.path.join(export_dir, name)):
        if os.path.lexists(path) and not os.path.isdir(path):
            raise ValueError(f"Cannot export to {path!r}: it exists and is not a directory.")
    model_dir = os.path.join(export_dir, name)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise ValueError(
            f"Cannot create the export directory {model_dir!r}: {error.strerror} ({error.filename})."
        ) from None
    return model_dir


# --- model inputs and preprocessors ---------------------------------------------------------


@dataclasses.dataclass
class _Preprocessor:
    layer: object
    kind: str  # "text", "waveform" or "tensor"
    raw_shape: tuple  # without the batch dimension; None marks a dynamic size
    raw_dtype: str
    probe: object  # (rng, batch_size) -> a raw NumPy batch that the layer maps onto the model input
    lengths: tuple = None  # waveforms: the fewest and most samples that give the model's frames


@dataclasses.dataclass
class _Plan:
    """What the serving function takes and how it feeds the model."""

    model_specs: dict  # input name -> (shape without batch, dtype), the model's own inputs
    dict_input: bool  # the model takes a dict (else one tensor, keyed by its name here)
    preprocessors: dict  # input name -> _Preprocessor
    class_names: list = None  # stored in the SavedModel (endpoint ``class_names``)
    loader_options: dict = None  # stored in the SavedModel as JSON (endpoint ``loader_options``)

    def signature(self):
        import tensorflow as tf

        specs = {}
        for key, (shape, dtype) in self.model_specs.items():
            if key in self.preprocessors:
                shape, dtype = self.preprocessors[key].raw_shape, self.preprocessors[key].raw_dtype
            specs[key] = tf.TensorSpec((None,) + tuple(shape), tf.as_dtype(dtype), name=key)
        return specs


def _model_input_specs(model):
    try:
        structure = model.input
    except (AttributeError, ValueError):
        raise ValueError(
            f"Model {model.name!r} has no defined inputs (a subclassed model that was never called?); "
            "export needs a functional model, such as those mmzoo.build returns."
        ) from None
    if isinstance(structure, dict):
        return tensor_specs(structure), True
    if isinstance(structure, (list, tuple)):
        if len(structure) != 1:
            raise ValueError(
                f"Model {model.name!r} takes a list of {len(structure)} inputs; export needs named "
                "(dict) inputs, e.g. keras.Model(inputs={'image': ..., 'text': ...}, ...)."
            )
        structure = structure[0]
    history = getattr(structure, "_keras_history", None)
    key = getattr(getattr(history, "operation", None), "name", None) or "input"
    return tensor_specs(structure, key), False


def _dtype_kind(dtype):
    name = keras.backend.standardize_dtype(dtype)
    if name == "string":
        return "string"
    if name == "bool":
        return "bool"
    return "int" if "int" in name else "float"


def _describe(shape, dtype):
    dims = ["None" if d is None else str(d) for d in shape]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''}) {dtype}"


def _text_probe(layer):
    vocabulary = [str(t) for t in layer.get_vocabulary()] if hasattr(layer, "get_vocabulary") else []
    tokens = [t for t in vocabulary if t and t != "[UNK]" and " " not in t] or ["mmzoo"]
    separator = "" if layer.get_config().get("split") == "character" else " "

    def probe(rng, batch_size):
        texts = []
        for _ in range(batch_size):
            picks = rng.choice(len(tokens), size=min(len(tokens), 5), replace=False)
            texts.append(separator.join(tokens[i] for i in picks))
        return np.array(texts, dtype=object)

    return probe


def _waveform_lengths(layer, frames):
    """The range of sample counts that give ``frames`` frames (``samples // hop + 1``, centred STFT)."""
    hop = layer.hop_length
    shortest = max((frames - 1) * hop, getattr(layer, "fft_length", 0) // 2 + 1)
    longest = frames * hop - 1
    return shortest, longest


def _make_preprocessor(key, layer, model_shape, model_dtype):
    name = f"the preprocessor of input {key!r} ({type(layer).__name__})"
    if isinstance(layer, (keras.layers.TextVectorization, keras.layers.StringLookup)):
        if isinstance(layer, keras.layers.TextVectorization):
            config = layer.get_config()
            if config.get("output_mode") != "int":
                raise ValueError(
                    f"{name} must have output_mode='int' (token ids) to feed the model. "
                    f"Received: output_mode={config.get('output_mode')!r}"
                )
            length = config.get("output_sequence_length")
            if len(model_shape) != 1 or length != model_shape[0]:
                raise ValueError(
                    f"{name} gives sequences of output_sequence_length={length!r} tokens, but the model's "
                    f"input {key!r} takes {_describe(model_shape, model_dtype)}: "
                    f"make it with sequence_length={model_shape[0] if len(model_shape) == 1 else '...'}."
                )
        return _Preprocessor(layer, "text", (), "string", _text_probe(layer))
    if isinstance(getattr(layer, "hop_length", None), int):
        if len(model_shape) < 1 or model_shape[0] is None:
            raise ValueError(
                f"{name} makes feature frames, but the model's input {key!r} takes "
                f"{_describe(model_shape, model_dtype)}, not (frames, features)."
            )
        shortest, longest = _waveform_lengths(layer, model_shape[0])
        if shortest > longest:
            raise ValueError(
                f"No waveform length gives the {model_shape[0]} frames of input {key!r} with {name}: "
                f"hop_length={layer.hop_length}, fft_length={getattr(layer, 'fft_length', None)}."
            )

        def probe(rng, batch_size):
            return rng.uniform(-0.5, 0.5, size=(batch_size, shortest)).astype("float32")

        return _Preprocessor(layer, "waveform", (None,), "float32", probe, (shortest, longest))
    build_shape = (getattr(layer, "_build_shapes_dict", None) or {}).get("input_shape")
    if not layer.built or not build_shape or any(d is None for d in tuple(build_shape)[1:]):
        raise ValueError(
            f"Cannot tell what raw input {name} takes: build it on the raw shape first, "
            "e.g. layer.build((None, 16000)), or use a TextVectorization (strings) or an audio layer "
            "with a hop_length (waveforms)."
        )
    raw_shape = tuple(build_shape)[1:]

    def probe(rng, batch_size):
        return rng.random((batch_size,) + raw_shape, dtype=np.float32)

    return _Preprocessor(layer, "tensor", raw_shape, "float32", probe)


def _check_fit(key, preprocessor, model, model_shape, model_dtype):
    """Run the preprocessor on a probe batch; its output must fit the model input (else ValueError)."""
    import tensorflow as tf

    layer = preprocessor.layer
    name = f"The preprocessor of input {key!r} ({type(layer).__name__})"
    probe = preprocessor.probe(np.random.default_rng(0), 2)
    try:
        output = layer(tf.constant(probe, dtype=tf.as_dtype(preprocessor.raw_dtype)))
    except Exception as error:
        raise ValueError(
            f"{name} failed on raw input {_describe((None,) + preprocessor.raw_shape, preprocessor.raw_dtype)}: "
            f"{type(error).__name__}: {error}"
        ) from error
    shape, dtype = tuple(output.shape[1:]), keras.backend.standardize_dtype(output.dtype)
    fits = len(shape) == len(model_shape) and all(m is None or s == m for s, m in zip(shape, model_shape))
    out_kind, model_kind = _dtype_kind(dtype), _dtype_kind(model_dtype)
    if not fits or out_kind != model_kind:
        raise ValueError(
            f"{name} gives {_describe((None,) + shape, dtype)}, but the model's input {key!r} takes "
            f"{_describe((None,) + tuple(model_shape), model_dtype)}."
        )
    token_range = getattr(model, "token_ranges", {}).get(key)
    if token_range is not None and hasattr(layer, "vocabulary_size"):
        size = layer.vocabulary_size()
        if size > token_range[1]:
            raise ValueError(
                f"{name} has a vocabulary of {size} tokens (ids 0..{size - 1}), but the model's input "
                f"{key!r} takes token ids below {token_range[1]}: make it with max_tokens={token_range[1]} "
                "or build the model with a larger vocabulary."
            )


def _plan(model, include_preprocessing, preprocessors):
    model_specs, dict_input = _model_input_specs(model)
    if not isinstance(include_preprocessing, bool):
        raise ValueError(f"`include_preprocessing` must be True or False. Received: {include_preprocessing!r}")
    if preprocessors is not None and not hasattr(preprocessors, "items"):
        raise ValueError(
            "`preprocessors` must be a dict {input name: Keras layer}. "
            f"Received: {type(preprocessors).__name__}"
        )
    preprocessors = dict(preprocessors or {})
    if not include_preprocessing:
        if preprocessors:
            raise ValueError(
                f"`preprocessors` were given ({', '.join(map(repr, preprocessors))}) but "
                "include_preprocessing=False: pass include_preprocessing=True to put them in the SavedModel."
            )
        return _Plan(model_specs, dict_input, {})
    if not preprocessors:
        raise ValueError(
            "include_preprocessing=True needs `preprocessors`, a dict {input name: Keras layer}, e.g. "
            "{'text': vectorizer, 'audio': mmzoo.layers.MFCC(...)}. "
            f"Model inputs: {', '.join(model_specs)}."
        )
    plan = {}
    for key, layer in preprocessors.items():
        if key not in model_specs:
            hint = closest(key, model_specs)
            raise ValueError(
                f"`preprocessors` has no model input named {key!r}"
                + (f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else "")
                + f". Model inputs: {', '.join(model_specs)}."
            )
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"The preprocessor of input {key!r} must be a Keras layer. Received: {type(layer).__name__}"
            )
        shape, dtype = model_specs[key]
        plan[key] = _make_preprocessor(key, layer, shape, dtype)
        _check_fit(key, plan[key], model, shape, dtype)  # also builds the layer
    return _Plan(model_specs, dict_input, plan)


# --- writing, checking, publishing ----------------------------------------------------------


def _fit_features(key, features, preprocessor, shape, dtype):
    """In the serving graph: check the preprocessed batch's shape at run time, cast to the model dtype."""
    import tensorflow as tf

    known = [(i + 1, d) for i, d in enumerate(shape) if d is not None]
    if known:
        message = f"input {key!r}: the preprocessed batch must be {_describe((None,) + tuple(shape), dtype)}"
        if preprocessor.kind == "waveform":
            low, high = preprocessor.lengths
            message += f"; send waveforms of {low} to {high} samples"
        actual = tf.gather(tf.shape(features), [i for i, _ in known])
        wanted = tf.constant([d for _, d in known], actual.dtype)
        check = tf.debugging.assert_equal(actual, wanted, message=message)
        with tf.control_dependencies([check]):
            features = tf.ensure_shape(features, (None,) + tuple(shape))
    if features.dtype != tf.as_dtype(dtype):
        features = tf.cast(features, dtype)
    return features


def _serving_function(model, plan):
    keys = list(plan.model_specs)

    def serve(inputs):
        features = {}
        for key in keys:
            value = inputs[key]
            if key in plan.preprocessors:
                preprocessor = plan.preprocessors[key]
                shape, dtype = plan.model_specs[key]
                value = _fit_features(key, preprocessor.layer(value), preprocessor, shape, dtype)
            features[key] = value
        return model(features if plan.dict_input else features[keys[0]], training=False)

    return serve


def _constant_endpoint(value):
    import tensorflow as tf

    def constant():
        return tf.constant(value, tf.string)

    return constant


def _write_saved_model(model, plan, path):
    """Write the SavedModel (endpoint ``serve``, also ``serving_default``) into the directory ``path``.

    With ``plan.class_names`` / ``plan.loader_options``, also the endpoints ``class_names``
    (a ``tf.string`` vector) and ``loader_options`` (a JSON ``tf.string``), without inputs.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for preprocessor in plan.preprocessors.values():
        archive.track(preprocessor.layer)  # TextVectorization's lookup table is saved with it
    archive.add_endpoint(SERVING_ENDPOINT, _serving_function(model, plan), input_signature=[plan.signature()])
    if plan.class_names is not None:
        archive.add_endpoint(CLASS_NAMES_ENDPOINT, _constant_endpoint(list(plan.class_names)), input_signature=[])
    if plan.loader_options is not None:
        document = json.dumps(plan.loader_options, sort_keys=True)
        archive.add_endpoint(LOADER_OPTIONS_ENDPOINT, _constant_endpoint(document), input_signature=[])
    archive.write_out(path, verbose=False)


def _as_output_dict(outputs):
    if isinstance(outputs, dict):
        return {key: np.asarray(value) for key, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return {f"output_{i}": np.asarray(value) for i, value in enumerate(outputs)}
    return {SINGLE_OUTPUT_KEY: np.asarray(outputs)}


def _compare(expected, actual, where):
    expected, actual = _as_output_dict(expected), _as_output_dict(actual)
    if sorted(expected) != sorted(actual):
        raise ExportCheckError(f"{where} returns outputs {sorted(actual)}, the model {sorted(expected)}.")
    for key in expected:
        if expected[key].shape != actual[key].shape:
            raise ExportCheckError(
                f"{where}: output {key!r} has shape {actual[key].shape}, the model's {expected[key].shape}."
            )
        if not np.allclose(actual[key], expected[key], atol=CHECK_ATOL, rtol=CHECK_RTOL, equal_nan=True):
            difference = np.nanmax(np.abs(actual[key].astype("float64") - expected[key].astype("float64")))
            raise ExportCheckError(
                f"{where}: output {key!r} differs from the model's by up to {difference:.3g} "
                f"(tolerance {CHECK_ATOL})."
            )


def _check_batch(model, plan, batch_size=CHECK_BATCH_SIZE, seed=7):
    """``(served inputs, model inputs)``: raw data for preprocessed inputs, the same features for the model."""
    import tensorflow as tf

    if hasattr(model, "targets"):
        inputs = dummy_batch(model, batch_size=batch_size, seed=seed)[0]
    else:  # a plain keras.Model: the same random inputs dummy_batch makes
        rng = np.random.default_rng(seed)
        inputs = {}
        for key, (shape, dtype) in plan.model_specs.items():
            size = (batch_size,) + shape
            inputs[key] = (rng.integers(0, 2, size) if "int" in dtype else rng.random(size)).astype(dtype)
    if not plan.dict_input:
        inputs = {next(iter(plan.model_specs)): next(iter(inputs.values()))}
    served = {key: tf.constant(value) for key, value in inputs.items()}
    features = dict(served)
    rng = np.random.default_rng(seed)
    for key, preprocessor in plan.preprocessors.items():
        raw = tf.constant(preprocessor.probe(rng, batch_size), dtype=tf.as_dtype(preprocessor.raw_dtype))
        served[key] = raw
        features[key] = tf.cast(preprocessor.layer(raw), plan.model_specs[key][1])
    return served, features


def _check_reload(model, plan, path):
    """Load ``path`` back: ``serve`` and ``serving_default`` must give the model's outputs, else ExportCheckError."""
    import tensorflow as tf

    served_inputs, features = _check_batch(model, plan)
    expected = model(features if plan.dict_input else next(iter(features.values())), training=False)
    loaded = tf.saved_model.load(path)
    _compare(expected, getattr(loaded, SERVING_ENDPOINT)(served_inputs), f"The reloaded `{SERVING_ENDPOINT}`")
    if "serving_default" not in loaded.signatures:
        raise ExportCheckError("The reloaded SavedModel has no `serving_default` signature.")
    _compare(expected, loaded.signatures["serving_default"](**served_inputs), "The `serving_default` signature")
    if _read_class_names(loaded) != plan.class_names:
        raise ExportCheckError(f"The reloaded class names are {_read_class_names(loaded)}, not {plan.class_names}.")
    if _read_loader_options(loaded) != plan.loader_options:
        raise ExportCheckError("The reloaded loader options differ from those exported.")


def _read_constant(loaded, endpoint_name):
    """What a constant endpoint of a loaded SavedModel returns, as NumPy; None without the endpoint."""
    endpoint = getattr(loaded, endpoint_name, None)
    return endpoint().numpy() if callable(endpoint) else None


def _read_class_names(loaded):
    names = _read_constant(loaded, CLASS_NAMES_ENDPOINT)
    return None if names is None else [name.decode("utf-8") for name in names.tolist()]


def _read_loader_options(loaded):
    document = _read_constant(loaded, LOADER_OPTIONS_ENDPOINT)
    return None if document is None else json.loads(document.decode("utf-8"))


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_no_replace(source, target):
    """Rename the directory ``source`` to ``target`` atomically; FileExistsError if ``target`` exists."""
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), target)
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # those: no RENAME_NOREPLACE here
            raise OSError(code, os.strerror(code), source, None, target)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    try:
        os.rename(source, target)  # never replaces a non-empty directory
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target) from None
        raise


def _existing_versions(model_dir):
    return sorted(int(entry) for entry in os.listdir(model_dir) if entry.isascii() and entry.isdigit())


def _next_version(model_dir):
    return max(_existing_versions(model_dir), default=0) + 1


def _make_temporary(model_dir):
    """An empty directory ``.tmp-<random>`` in ``model_dir``, with the umask's permissions.

    (``tempfile.mkdtemp`` makes it 0700, which the version directory would keep: a TF
    Serving process running as another user could not read it.)
    """
    while True:
        path = os.path.join(model_dir, TEMPORARY_PREFIX + secrets.token_hex(8))
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return path


def _publish(temporary, model_dir, version=None):
    """Rename ``temporary`` to ``<model_dir>/<version>``; ``version`` None: the next free one, retried.

    Durable: every file and folder of ``temporary``, and ``model_dir``, are fsynced before
    the rename; ``model_dir`` (and its parent, which names it if it is new) after it, so
    that a power cut never leaves a version directory of missing or empty files.
    Returns the version directory's path.
    """
    from mmzoo._atomic import fsync_directory, fsync_tree

    fsync_tree(temporary)
    fsync_directory(model_dir)

    def published(target):
        fsync_directory(model_dir)
        fsync_directory(os.path.dirname(os.path.abspath(model_dir)))
        return target

    if version is not None:
        target = os.path.join(model_dir, str(version))
        try:
            _rename_no_replace(temporary, target)
        except FileExistsError:
            raise VersionExistsError(
                f"Version {version} of {os.path.basename(model_dir)!r} exists already: {target}. "
                "Pass another version, or version=None for the next one."
            ) from None
        return published(target)
    for _ in range(_MAX_VERSION_ATTEMPTS):
        target = os.path.join(model_dir, str(_next_version(model_dir)))
        try:
            _rename_no_replace(temporary, target)
        except FileExistsError:  # taken since we looked: another export got there first
            continue
        return published(target)
    raise RuntimeError(f"Could not find a free version number in {model_dir} after {_MAX_VERSION_ATTEMPTS} tries.")


def export(
    model,
    export_dir="saved_models",
    name=None,
    version=None,
    include_preprocessing=False,
    preprocessors=None,
    verbose=True,
    class_names=None,
    loader_options=None,
):
    """Export ``model`` as a checked SavedModel in ``<export_dir>/<name>/<version>/`` (TF Serving's layout).

    The SavedModel is written to a temporary directory beside the versions, loaded back
    and checked (its outputs equal the model's to 1e-5 on a batch of 3), then renamed to
    its version in one atomic step; on any failure no version directory appears and the
    temporary one is removed. Concurrent exports (threads or processes) get distinct
    versions. See the module docstring for the serving signature.

    Args:
        model: a built ``keras.Model`` with named (dict) inputs, or a single input.
        export_dir: the export root, created if missing.
        name: the model's directory name; ``model.name`` by default (the registry name
            for ``mmzoo.build`` models). No path separators.
        version: a positive integer; ``None``: one more than the highest version there
            (1 first). An existing version raises ``VersionExistsError`` (a ``ValueError``
            and a ``FileExistsError``).
        include_preprocessing: put ``preprocessors`` in the serving function, so that the
            SavedModel takes raw strings / waveforms for those inputs.
        preprocessors: ``{input name: Keras layer}``: a ``TextVectorization`` for token
            inputs (raw ``tf.string`` ``(None,)``), ``mmzoo.layers.MFCC`` or
            ``LogMelSpectrogram`` for feature-frame inputs (raw ``float32`` ``(None, None)``
            waveforms), or another built layer (raw ``float32`` of the shape it was built on).
        verbose: print where the export went and its signature.
        class_names: the name of each class (label ``i`` is ``class_names[i]``), stored in
            the SavedModel (endpoint ``class_names``); None: the model's own
            ``class_names`` (``fusion_classifier``'s config), if any.
        loader_options: a JSON-serialisable dict stored in the SavedModel (endpoint
            ``loader_options``), e.g. the ``from_directory`` arguments that read its
            training files; None: none stored.

    Returns:
        The version directory's path, a ``str``.

    Raises:
        ValueError: a bad argument, a preprocessor whose output does not fit its input,
            or a file where a directory must be.
        VersionExistsError: ``version`` exists already.
        ExportCheckError: the reloaded SavedModel does not serve the model's outputs.
    """
    _check_model(model)
    name = _check_name(model.name if name is None else name)
    version = _check_version(version)
    plan = _plan(model, include_preprocessing, preprocessors)
    plan.class_names = _check_class_names(model, class_names)
    plan.loader_options = _check_loader_options(loader_options)
    model_dir = _model_directory(export_dir, name)
    if version is not None and os.path.lexists(os.path.join(model_dir, str(version))):
        raise VersionExistsError(
            f"Version {version} of {name!r} exists already: {os.path.join(model_dir, str(version))}. "
            "Pass another version, or version=None for the next one."
        )
    temporary = _make_temporary(model_dir)
    try:
        with _WRITE_LOCK:
            _write_saved_model(model, plan, temporary)
            _check_reload(model, plan, temporary)
        path = _publish(temporary, model_dir, version)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if verbose:
        signature = plan.signature()
        print(f"Exported {name!r} version {os.path.basename(path)} to {path}")
        print(
            f"  {SERVING_ENDPOINT} / serving_default inputs: "
            + ", ".join(f"{k} {_describe(tuple(s.shape), s.dtype.name)}" for k, s in signature.items())
        )
        outputs = model.output
        if isinstance(outputs, (list, tuple)):
            outputs = {f"output_{i}": output for i, output in enumerate(outputs)}
        elif not isinstance(outputs, dict):
            outputs = {SINGLE_OUTPUT_KEY: outputs}
        standardize = keras.backend.standardize_dtype
        described = [f"{k} {_describe(tuple(t.shape), standardize(t.dtype))}" for k, t in outputs.items()]
        print("  outputs: " + ", ".join(described))
        print(f"  checked: reloaded outputs equal the model's (atol {CHECK_ATOL}, batch {CHECK_BATCH_SIZE})")
        if plan.class_names is not None:
            print(f"  {CLASS_NAMES_ENDPOINT}: {', '.join(plan.class_names)}")
    return path


# --- loading --------------------------------------------------------------------------------


def _resolve_saved_model_dir(path):
    """``path`` itself when it holds a SavedModel, else its highest numeric version (a model directory)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"No SavedModel at {path!r}: it does not exist", path)
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a SavedModel directory (it is a file).")
    if not any(os.path.exists(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
        versions = _existing_versions(path)
        if not versions:
            raise ValueError(
                f"{path!r} is not a complete SavedModel: it has no saved_model.pb (an export that was "
                "interrupted, or the wrong directory) and no numbered version directories."
            )
        path = os.path.join(path, str(versions[-1]))
        if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(
                f"{path!r}, the latest version, is not a complete SavedModel: it has no saved_model.pb."
            )
    if not os.path.isdir(os.path.join(path, "variables")):
        raise ValueError(f"{path!r} is not a complete SavedModel: its variables/ directory is missing.")
    return path


class ServedModel:
    """A SavedModel loaded by :func:`load_saved_model`: call it on a dict of inputs, get NumPy back.

    Attributes:
        path: the SavedModel directory.
        inputs: ``{name: (shape with None for the batch, dtype name)}`` from its signature.
        loaded: the object ``tf.saved_model.load`` returned.
        class_names: the class names stored in the export (label ``i`` is
            ``class_names[i]``), or None for an export without them.
        loader_options: the loader settings stored in the export (a dict: the
            ``from_directory`` arguments of ``mmzoo train --data DIR``), or None.
    """

    def __init__(self, path, loaded):
        self.path = path
        self.loaded = loaded
        self.class_names = _read_class_names(loaded)
        self.loader_options = _read_loader_options(loaded)
        self._function, self._specs, self._dict_input = self._serving_function(loaded)
        self.inputs = {key: (tuple(spec.shape), spec.dtype.name) for key, spec in sorted(self._specs.items())}

    def _serving_function(self, loaded):
        import tensorflow as tf

        endpoint = getattr(loaded, SERVING_ENDPOINT, None)
        concrete = getattr(endpoint, "concrete_functions", None) or []
        if concrete:
            args, kwargs = concrete[0].structured_input_signature
            if len(args) == 1 and not kwargs:
                if isinstance(args[0], dict) and all(isinstance(s, tf.TensorSpec) for s in args[0].values()):
                    return endpoint, dict(args[0]), True
                if isinstance(args[0], tf.TensorSpec):
                    return endpoint, {args[0].name or "input": args[0]}, False
        if "serving_default" in loaded.signatures:
            signature = loaded.signatures["serving_default"]
            return (lambda x: signature(**x)), dict(signature.structured_input_signature[1]), True
        raise ValueError(f"{self.path!r} has no `{SERVING_ENDPOINT}` function and no `serving_default` signature.")

    def expected_inputs(self):
        return ", ".join(f"{key}: {_describe(shape, dtype)}" for key, (shape, dtype) in self.inputs.items())

    def _convert(self, key, value, spec):
        import tensorflow as tf

        expected = f"input {key!r} must be {_describe(tuple(spec.shape), spec.dtype.name)}"
        if spec.dtype == tf.string:
            try:
                value = value if tf.is_tensor(value) else np.asarray(value, dtype=object)
                tensor = tf.convert_to_tensor(value, tf.string)
            except (TypeError, ValueError, tf.errors.InvalidArgumentError):
                raise ValueError(f"{expected} (strings); received {type(value).__name__}.") from None
        else:
            tensor = value if tf.is_tensor(value) else tf.convert_to_tensor(np.asarray(value))
            have, want = _dtype_kind(tensor.dtype), _dtype_kind(spec.dtype)
            if have not in ("int", "float") or (want == "int" and have != "int"):
                raise ValueError(f"{expected}; received {tensor.dtype.name}.")
            tensor = tf.cast(tensor, spec.dtype)
        shape = tuple(tensor.shape)
        if len(shape) != len(spec.shape) or any(w is not None and s != w for s, w in zip(shape, spec.shape)):
            raise ValueError(f"{expected}; received shape {shape}.")
        if spec.dtype.is_floating and shape and not bool(tf.reduce_all(tf.math.is_finite(tensor))):
            finite = tf.reduce_all(tf.reshape(tf.math.is_finite(tensor), (shape[0], -1)), axis=1).numpy()
            rows = np.flatnonzero(~finite).tolist()
            listed = rows if len(rows) <= 10 else rows[:10] + ["..."]
            raise ValueError(
                f"input {key!r} has NaN or infinite values in example(s) {listed} of {shape[0]}; "
                "the model takes finite numbers."
            )
        return tensor

    def __call__(self, inputs):
        if not isinstance(inputs, dict):
            if len(self._specs) != 1:
                raise ValueError(
                    f"Pass a dict of inputs. The SavedModel at {self.path!r} expects: {self.expected_inputs()}."
                )
            inputs = {next(iter(self._specs)): inputs}
        missing = sorted(key for key in self._specs if key not in inputs)
        unexpected = sorted(str(key) for key in inputs if key not in self._specs)
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(f"Missing input(s) {', '.join(map(repr, missing))}")
            if unexpected:
                problems.append(f"Unexpected input(s) {', '.join(map(repr, unexpected))}")
            raise ValueError(
                "; ".join(problems) + f". The SavedModel at {self.path!r} expects: {self.expected_inputs()}."
            )
        tensors = {key: self._convert(key, inputs[key], spec) for key, spec in self._specs.items()}
        batches = {key: int(t.shape[0]) for key, t in tensors.items() if t.shape.rank}
        if len(set(batches.values())) > 1:
            raise ValueError(f"All inputs must have the same batch size. Received: {batches}")
        import tensorflow as tf

        outputs = self._function(tensors if self._dict_input else next(iter(tensors.values())))
        return tf.nest.map_structure(lambda t: t.numpy(), outputs)

    def __repr__(self):
        return f"ServedModel({self.path!r}, inputs: {self.expected_inputs()})"


def load_saved_model(path):
    """Load a SavedModel written by :func:`export` (or ``model.export``) as a NumPy callable.

    Args:
        path: a version directory (``saved_models/emotion/2``), or a model directory
            (``saved_models/emotion``): its highest version.

    Returns:
        A :class:`ServedModel`: ``served(inputs)`` takes a dict keyed like the model's
        inputs (NumPy arrays, lists or tensors, any batch size; numbers are cast to the
        signature's dtype, floats are not truncated to integers) and returns NumPy
        outputs: a dict for a dict-output model, an array for a single output.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a complete SavedModel, or has no serving function;
            calls with missing, unexpected or ill-shaped inputs name them and list the
            expected inputs with their shapes and dtypes; NaN or infinite values in a
            float input are refused, naming the input and the examples (the kernels of a
            SavedModel can map NaN to finite outputs). An empty batch gives empty outputs.
    """
    import tensorflow as tf

    path = _resolve_saved_model_dir(path)
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"{path!r} could not be loaded as a SavedModel: {error}") from error
    return ServedModel(path, loaded)


__all__ = ["ExportCheckError", "ServedModel", "VersionExistsError", "export", "load_saved_model"]
