"""The ``mmzoo`` command line (also ``python -m mmzoo``).

    mmzoo list [PATTERN] [--markdown]
    mmzoo info NAME [--summary]
    mmzoo train NAME [--data synthetic|cifar10|DIR] [--test-fraction F | --test-data DIR] [--epochs N] ...
    mmzoo evaluate MODEL.keras [--data synthetic|cifar10|DIR] [--test-fraction F | --test-data DIR]
    mmzoo export MODEL.keras [--export-dir saved_models] [--name NAME] [--version N]

Errors in arguments are one line on stderr and exit code 2, never a traceback.

Class-folder directories (``--data DIR``)
-----------------------------------------
``DIR/<class>/<stem>.png`` (images) and ``DIR/<class>/<stem>.txt`` (texts), read by
:func:`mmzoo.data.from_directory` for a model's image and token-id text inputs. The
examples are split three ways, seeded by ``--seed`` and per class: a test split of
``--test-fraction`` of them (0.15 by default), a validation split of 20%, and the rest to
train on; the three are disjoint, and the same seed gives the same split. With
``--test-data DIR2`` the test examples are all of another folder instead (and ``DIR`` is
only split into training and validation): it must have the same class folders, and it
is read with the training run's class order and text vocabulary, never adapted again.
The ``TextVectorization`` of the text is adapted on the training texts alone.

What a directory run leaves, so that the model reads text and names classes as it was
trained to:

- ``--save MODEL.keras`` also writes ``MODEL.data.json`` beside it: the class names (label
  ``i`` is ``class_names[i]``), the vectorizer's settings and vocabulary, the split (seed and
  fractions) and the SHA-256 of the ``.keras`` file it belongs to. A ``.keras`` file cannot
  carry the vocabulary itself: the model takes token ids, and the vectorizer (strings to
  ids) runs before it, outside its graph. ``mmzoo evaluate MODEL.keras --data DIR`` (or
  ``--test-data DIR``) reads that file: the same class order and token ids, and, unless
  ``--seed`` or ``--test-fraction`` say otherwise, the training run's split, so it measures
  the same test examples and prints the same metrics as training did. A model with a text
  input and no such file (or a file written for another ``.keras``) is refused.
- the exported SavedModel (``--export-dir``, and ``mmzoo export MODEL.keras`` when the
  data file is there) takes **raw strings** for the text input, ``tf.string`` ``(None,)``:
  the training vectorizer runs inside its serving function (``mmzoo.export(...,
  include_preprocessing=True)``), its vocabulary saved in the SavedModel. Images are
  float32 in [0, 1] at the model's size, as the loader decodes them.

Multi-worker training (``--strategy multi_worker``)
---------------------------------------------------
Run the same command in every worker process, each with its ``TF_CONFIG``. Every worker
trains; then the chief alone (the ``chief`` task, else worker 0) evaluates on the test
data, prints the results, saves (``--save``) and exports (``--export-dir``), so the
model is written once and one version is published. The chief works on a copy of the
trained model outside the strategy (same weights): Keras' ``evaluate`` does not run
under ``MultiWorkerMirroredStrategy``, and the copy needs no collective op, so the other
workers can exit once training is done.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import sys
import zipfile

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
VALIDATION_FRACTION = 0.2  # of a --data DIR's examples
TEST_FRACTION = 0.15  # of a --data DIR's examples, without --test-data
DATA_FILE_FORMAT = "mmzoo.cli.data"
DATA_FILE_VERSION = 1


class CommandError(Exception):
    """A problem with what the user asked for: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``mmzoo train: error: ...`` (exit code 2), no usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def model_table(pattern="*"):
    """The Markdown table of the models (name, source, inputs, task) that the README shows."""
    import mmzoo

    rows = ["| model | source | inputs | task |", "|---|---|---|---|"]
    for name in mmzoo.list_models(pattern):
        card = mmzoo.describe(name)
        inputs = ", ".join(
            f"`{key}` {'x'.join(map(str, shape))} {dtype}" for key, (shape, dtype) in card.inputs.items()
        )
        rows.append(f"| `{name}` | {card.source} | {inputs} | {card.task} |")
    return "\n".join(rows)


def _list(args):
    import mmzoo

    if args.markdown:
        print(model_table(args.pattern))
        return
    for name in mmzoo.list_models(args.pattern):
        print(f"{name:24s} {mmzoo.registry.get_entry(name).summary}")


def _info(args):
    import mmzoo

    print(mmzoo.describe(args.name))
    if args.summary:
        print()
        mmzoo.build(args.name).summary(expand_nested=False)


# --- data --------------------------------------------------------------------------------


@dataclasses.dataclass
class Data:
    """The datasets of a run, and what a directory run must keep to read data again the same way.

    ``train`` and ``validation`` are None for ``mmzoo evaluate``. ``class_names`` and
    ``vectorizers`` (``{input name: TextVectorization}``) are those of a directory run
    (None and ``{}`` otherwise); ``split`` records how the examples were split;
    ``summary`` is the line that says so.
    """

    train: object
    validation: object
    test: object
    class_names: list = None
    vectorizers: dict = dataclasses.field(default_factory=dict)
    split: dict = None
    summary: str = None


def data_file_path(model_path):
    """``MODEL.data.json`` for ``MODEL.keras``: where a directory run keeps class names and vocabulary."""
    return pathlib.Path(model_path).with_suffix(".data.json")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _vectorizer_document(vectorizer):
    config = dict(vectorizer.get_config())
    config.update(vocabulary=None, idf_weights=None)
    config.pop("vocabulary_size", None)
    return {"config": config, "vocabulary": [str(token) for token in vectorizer.get_vocabulary()]}


def _vectorizer_from_document(document):
    import keras

    vectorizer = keras.layers.TextVectorization.from_config(dict(document["config"]))
    vectorizer.set_vocabulary(list(document["vocabulary"]))
    return vectorizer


def _write_data_file(model_path, data):
    """Write ``MODEL.data.json`` (atomically) for the ``.keras`` file just saved at ``model_path``."""
    from mmzoo.data.text import _atomic_write_text

    document = {
        "format": DATA_FILE_FORMAT,
        "version": DATA_FILE_VERSION,
        "model_file": pathlib.Path(model_path).name,
        "model_sha256": _sha256(model_path),
        "class_names": list(data.class_names),
        "split": data.split,
        "vectorizers": {key: _vectorizer_document(layer) for key, layer in data.vectorizers.items()},
    }
    return _atomic_write_text(data_file_path(model_path), json.dumps(document, ensure_ascii=False, indent=1))


def _remove_stale_data_file(model_path):
    """A ``MODEL.data.json`` of an earlier directory run no longer describes a model saved from other data."""
    path = data_file_path(model_path)
    try:
        stale = json.loads(path.read_text(encoding="utf-8")).get("format") == DATA_FILE_FORMAT
    except (OSError, ValueError, AttributeError):
        return
    if stale:
        path.unlink(missing_ok=True)


def load_data_file(model_path):
    """What ``mmzoo train --data DIR --save MODEL.keras`` kept in ``MODEL.data.json``, or None without one.

    Returns a :class:`Data` without datasets: ``class_names``, ``vectorizers`` (``{input
    name: TextVectorization}`` with the training vocabulary) and ``split``. Raises
    CommandError when the file is not one, or was written for another ``.keras`` file.
    """
    path = data_file_path(model_path)
    if not path.exists():
        return None
    problem = None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        document, problem = None, f"it cannot be read as JSON ({error})"
    if problem is None and (not isinstance(document, dict) or document.get("format") != DATA_FILE_FORMAT):
        problem = f"it is not an mmzoo data file (no format {DATA_FILE_FORMAT!r})"
    elif problem is None and document.get("version") != DATA_FILE_VERSION:
        problem = f"its version {document.get('version')!r} is not {DATA_FILE_VERSION}"
    elif problem is None and document.get("model_sha256") != _sha256(model_path):
        problem = (
            f"it was written for another {pathlib.Path(model_path).name} (the SHA-256 of the model file differs); "
            "save the model and its data file together again with mmzoo train --save"
        )
    if problem is None:
        try:
            return Data(
                train=None,
                validation=None,
                test=None,
                class_names=[str(name) for name in document["class_names"]],
                vectorizers={key: _vectorizer_from_document(doc) for key, doc in document["vectorizers"].items()},
                split=document.get("split") if isinstance(document.get("split"), dict) else {},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            problem = f"its contents are malformed ({type(error).__name__}: {error})"
    raise CommandError(f"cannot use {path}, the class names and vocabulary of {model_path}: {problem}")


def _directory_inputs(model):
    """``({modality: input name}, from_directory options)`` for ``model``, or CommandError."""
    from mmzoo.registry import tensor_specs

    options, names = {}, {}
    for key, (shape, dtype) in tensor_specs(model.input).items():
        if len(shape) == 3 and "int" not in dtype:
            modality = "image"
            options.update(image_size=shape[:2], color_mode="grayscale" if shape[2] == 1 else "rgb")
        elif len(shape) == 1 and "int" in dtype:
            modality = "text"
            options.update(sequence_length=shape[0], max_tokens=model.token_ranges.get(key, (1, 10000))[1])
        else:
            raise CommandError(
                f"input {key!r} {shape} {dtype} of {model.name} cannot be read from a directory; "
                "directories feed image inputs (H, W, C) and token-id text inputs"
            )
        if modality in names:
            raise CommandError(
                f"inputs {names[modality]!r} and {key!r} of {model.name} would both be read as the {modality} "
                "of a directory example; directories feed one image and one text input"
            )
        names[modality] = key
    return names, options


def _class_folders(root):
    return sorted(p.name for p in pathlib.Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_class_folders(option, root, class_names):
    folders = _class_folders(root)
    if sorted(folders) != sorted(class_names):
        raise CommandError(
            f"{option} {str(root)!r} has class folders {folders}, not the training classes {list(class_names)}"
        )


def _check_output_classes(model, class_names):
    """The model's single softmax (or sigmoid) output must have room for every class."""
    output = model.output
    if isinstance(output, (dict, list, tuple)):
        return
    units = output.shape[-1]
    room = 2 if units == 1 else units
    if units is not None and len(class_names) > room:
        raise CommandError(
            f"{model.name}'s output has {units} unit{'s' * (units != 1)}, too few for the "
            f"{len(class_names)} classes of the directory ({', '.join(class_names)})"
        )


def _stored_split(stored, key, kind, default):
    """``stored.split[key]`` (what the training run used, from its data file) if it is a ``kind``, else ``default``."""
    value = (stored.split or {}).get(key) if stored is not None else None
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def _test_fraction(args, stored=None):
    """The --test-fraction to use: given, else the training run's (from its data file), else the default."""
    if args.test_fraction is not None:
        return args.test_fraction
    if args.test_data:
        return 0.0
    return _stored_split(stored, "test_fraction", (int, float), TEST_FRACTION)


def _seed(args, stored=None):
    """The --seed to use: given, else the training run's (from its data file), else 0."""
    return args.seed if args.seed is not None else _stored_split(stored, "seed", int, 0)


def _directory_data(model, args, stored=None, evaluate=False):
    """The datasets of ``--data DIR`` (and ``--test-data DIR``), read as ``stored`` says when given.

    Training: ``from_directory`` splits ``DIR`` into training, validation and (without
    ``--test-data``) a seeded test split, and adapts the vectorizer on the training texts.
    ``--test-data`` is read with that vectorizer and class order. ``stored`` (from a data
    file) gives the class order and vocabulary instead; ``evaluate`` only needs the test data.
    """
    from mmzoo.data import from_directory

    names, options = _directory_inputs(model)
    text_key = names.get("text")
    class_names, vectorizer = None, None
    if stored is not None:
        class_names = stored.class_names
        if text_key is not None:
            vectorizer = stored.vectorizers.get(text_key)
            if vectorizer is None:
                raise CommandError(
                    f"the data file of {args.model} has no vocabulary for the text input {text_key!r} of {model.name}"
                )
    common = dict(
        modalities=sorted(names), input_names=names, batch_size=args.batch_size, vectorizer=vectorizer, **options
    )
    seed, fraction = _seed(args, stored), _test_fraction(args, stored)
    validation = _stored_split(stored, "validation_fraction", float, VALIDATION_FRACTION)
    test_data = args.test_data
    if evaluate and test_data:
        if class_names is not None:
            _check_class_folders("--test-data", test_data, class_names)
        else:
            class_names = _class_folders(test_data)
        _check_output_classes(model, class_names)
        test = from_directory(
            test_data, class_names=class_names, validation_split=0.0, shuffle=False, seed=seed, **common
        )
        summary = f"data: {len(test.train_examples)} test examples from {test_data}"
        return Data(None, None, test.train, class_names, {}, None, summary)
    root = args.data
    if not fraction and not test_data:
        trained_on = _stored_split(stored, "test_data", str, None)
        if trained_on:
            raise CommandError(
                f"{args.model} was trained on all of its --data but the validation split, and tested on "
                f"--test-data {trained_on!r}: evaluate it with --test-data DIR (or give --test-fraction)"
            )
        raise CommandError(
            f"--test-fraction 0 leaves no test examples in {root!r}; pass --test-data DIR for a separate test folder"
        )
    if class_names is not None:
        _check_class_folders("--data", root, class_names)
    else:
        _check_output_classes(model, _class_folders(root))
    splits = from_directory(
        root, class_names=class_names, validation_split=validation, test_split=fraction, seed=seed, **common
    )
    class_names = splits.class_names
    vectorizers = {text_key: splits.vectorizer} if text_key is not None else {}
    split = {
        "data": os.path.abspath(root),
        "seed": seed,
        "validation_fraction": validation,
        "test_fraction": fraction,
        "test_data": os.path.abspath(test_data) if test_data else None,
    }
    counts = f"{len(splits.train_examples)} train, {len(splits.validation_examples)} validation"
    if not test_data:
        how = f"a seeded {fraction:.0%} split, seed {seed}"
        summary = f"data: {counts}, {len(splits.test_examples)} test examples from {root} (test: {how})"
        return Data(splits.train, splits.validation, splits.test, class_names, vectorizers, split, summary)
    _check_class_folders("--test-data", test_data, class_names)
    test = from_directory(
        test_data, class_names=class_names, validation_split=0.0, shuffle=False, seed=seed,
        **{**common, "vectorizer": splits.vectorizer},
    )
    summary = f"data: {counts} examples from {root}; {len(test.train_examples)} test examples from {test_data}"
    return Data(splits.train, splits.validation, test.train, class_names, vectorizers, split, summary)


def _check_data_arguments(args):
    """Refuse data options that do not go together, before anything is built."""
    is_directory = args.data not in ("synthetic", "cifar10")
    if is_directory and not pathlib.Path(args.data).is_dir():
        raise CommandError(f"--data must be 'synthetic', 'cifar10' or a directory; {args.data!r} is none of them")
    if args.test_data is not None:
        if args.command == "train" and not is_directory:
            raise CommandError(
                f"--test-data needs --data DIR (a class-folder directory to train on); received --data {args.data!r}"
            )
        if not pathlib.Path(args.test_data).is_dir():
            raise CommandError(f"--test-data {args.test_data!r} is not a directory")
        if args.test_fraction:
            raise CommandError(
                "--test-fraction and --test-data exclude each other (a test split of --data, or a separate test "
                f"folder); received --test-fraction {args.test_fraction} and --test-data {args.test_data!r}"
            )
        if args.command == "train":
            _check_class_folders("--test-data", args.test_data, _class_folders(args.data))
    elif args.test_fraction is not None and not is_directory:
        raise CommandError(f"--test-fraction applies to --data DIR; received --data {args.data!r}")
    elif args.command == "train" and is_directory and args.test_fraction == 0:
        raise CommandError(
            f"--test-fraction 0 leaves no test examples in {args.data!r}; pass --test-data DIR for a separate "
            "test folder"
        )


def _datasets(model, args, stored=None, evaluate=False):
    """The :class:`Data` of ``--data`` (and ``--test-data``) for ``model``."""
    if args.test_data is not None or args.data not in ("synthetic", "cifar10"):
        return _directory_data(model, args, stored, evaluate)
    seed, batch_size = _seed(args), args.batch_size
    if args.data == "synthetic":
        from mmzoo.data import synthetic

        def split(name, n):
            return synthetic(model, n=n, split=name, seed=seed, batch_size=batch_size)

        held_out = max(batch_size, args.samples // 4)
        if evaluate:
            return Data(None, None, split("test", held_out))
        return Data(split("train", args.samples), split("validation", held_out), split("test", held_out))
    from mmzoo.data import cifar10

    test = cifar10(split="test", batch_size=batch_size, shuffle=False)
    if evaluate:
        return Data(None, None, test)
    return Data(
        cifar10(split="train[:90%]", batch_size=batch_size, seed=seed),
        cifar10(split="train[90%:]", batch_size=batch_size, shuffle=False),
        test,
    )


# --- commands ----------------------------------------------------------------------------


def _print_metrics(title, logs):
    print(f"{title}: " + ", ".join(f"{key}={value:.4f}" for key, value in sorted(logs.items())))


def _check_directory(option, path, value=None):
    """``path`` can be a directory (it is one, or can be created): else CommandError naming what is in the way."""
    path = pathlib.Path(path)
    value = str(path) if value is None else str(value)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise CommandError(f"{option} {value!r}: {str(candidate)!r} is a file, not a directory")
            if not os.access(candidate, os.W_OK | os.X_OK):
                raise CommandError(f"{option} {value!r}: the directory {str(candidate)!r} is not writable")
            return


def _check_save_path(value):
    path = pathlib.Path(value)
    if path.suffix != ".keras":
        raise CommandError(f"--save must be a .keras file path, e.g. model.keras; received {str(value)!r}")
    if path.is_dir():
        raise CommandError(f"--save {str(value)!r} is a directory; pass a .keras file path")
    _check_directory("--save", path.parent, value)


def _local_copy(model):
    """The trained multi-worker model as a model of this process alone: same config, weights and optimizer state.

    Keras' ``evaluate`` does not run under ``MultiWorkerMirroredStrategy``; the copy
    evaluates, saves and exports with no collective op, on the chief alone.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(model.dtype_policy)
    try:
        copy = type(model).from_config(model.get_config())
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    copy.compile(**model.default_compile_arguments())
    source = model.optimizer
    if source is not None and source.built:
        copy.optimizer.build(copy.trainable_variables)
        if len(copy.optimizer.variables) == len(source.variables):
            for target, value in zip(copy.optimizer.variables, source.variables):
                target.assign(keras.ops.convert_to_numpy(value))
    return copy


def _train(args):
    import keras

    import mmzoo
    from mmzoo.training import _is_chief

    _check_data_arguments(args)
    keras.utils.set_random_seed(args.seed)
    mmzoo.registry.get_entry(args.name)  # an unknown name fails before any work
    # Paths are checked before training, so that a bad one does not cost a training run.
    if args.save:
        _check_save_path(args.save)
    if args.checkpoint_dir:
        _check_directory("--checkpoint-dir", args.checkpoint_dir)
    if args.export_dir:
        _check_directory("--export-dir", args.export_dir)
    made = []

    def split(name):
        # `train` calls these with the model it built (in the strategy's scope, under the
        # policy), so the data is made once, after the strategy starts (multi-worker needs that).
        def make(model):
            if not made:
                made.append(_datasets(model, args))
                if made[0].summary and _is_chief(model.distribute_strategy):
                    print(made[0].summary, flush=True)
            return getattr(made[0], name)

        return make

    history = mmzoo.train(
        args.name,
        split("train"),
        validation_data=split("validation"),
        epochs=args.epochs,
        mixed_precision=args.mixed_precision,
        jit_compile=True if args.xla else "auto",
        strategy=args.strategy,
        checkpoint_dir=args.checkpoint_dir,
        verbose=args.verbose,
    )
    model, data = history.model, made[0]
    if args.strategy == "multi_worker":
        strategy = model.distribute_strategy
        if not _is_chief(strategy):
            resolver = strategy.cluster_resolver
            print(
                f"{resolver.task_type} {resolver.task_id}: trained; the chief evaluates, saves and exports the model"
            )
            return
        model = _local_copy(model)
    _print_metrics("test", model.evaluate(data.test, verbose=0, return_dict=True))
    if args.save:
        from mmzoo.checkpoints import save_model_atomically

        save_model_atomically(model, args.save)
        if data.class_names is not None:
            path = _write_data_file(args.save, data)
            kept = "class names and text vocabulary" if data.vectorizers else "class names"
            print(f"saved the trained model to {args.save} (its {kept}: {path})")
        else:
            _remove_stale_data_file(args.save)
            print(f"saved the trained model to {args.save}")
    if args.export_dir:
        path = mmzoo.export(model, export_dir=args.export_dir, name=args.name, verbose=False, **_preprocessing(data))
        print(f"exported and reloaded the SavedModel: {path}")


def _preprocessing(data):
    """``export`` arguments that put the text vectorizers in the SavedModel (raw strings in)."""
    if data is None or not data.vectorizers:
        return {}
    return {"include_preprocessing": True, "preprocessors": dict(data.vectorizers)}


def _load_keras_model(path):
    import keras

    import mmzoo  # noqa: F401  (registers mmzoo's layers and models for loading)

    if not pathlib.Path(path).is_file():
        raise CommandError(f"no model file at {path}")
    if not zipfile.is_zipfile(path):
        raise CommandError(f"cannot load {path} as a Keras model: it is not a .keras file (a zip archive)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:
        raise CommandError(f"cannot load {path} as a Keras model: {error}") from None


def _evaluate(args):
    _check_data_arguments(args)
    model = _load_keras_model(args.model)
    stored = None
    if args.test_data is not None or args.data not in ("synthetic", "cifar10"):
        stored = load_data_file(args.model)
        if stored is None and "text" in _directory_inputs(model)[0]:
            raise CommandError(
                f"{args.model} has a text input but no {data_file_path(args.model)} beside it: the class names "
                "and the text vocabulary it was trained with (mmzoo train --data DIR --save writes it); "
                "without it the token ids of the texts would not be the ones it learnt"
            )
    data = _datasets(model, args, stored, evaluate=True)
    if data.summary:
        print(data.summary)
    _print_metrics(f"{model.name} test", model.evaluate(data.test, verbose=0, return_dict=True))


def _export(args):
    import mmzoo

    model = _load_keras_model(args.model)
    stored = load_data_file(args.model)
    path = mmzoo.export(
        model, export_dir=args.export_dir, name=args.name, version=args.version, verbose=False,
        **_preprocessing(stored),
    )
    print(f"exported and reloaded the SavedModel: {path}")
    if stored is not None and stored.vectorizers:
        print(f"its text input{'s' * (len(stored.vectorizers) > 1)} {', '.join(stored.vectorizers)} take raw "
              f"strings, through the vocabulary of {data_file_path(args.model)}")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text!r}")
    return value


def _add_data_arguments(parser, samples=2048, evaluate=False):
    parser.add_argument(
        "--data", default="synthetic",
        help="'synthetic' (default), 'cifar10' or a directory of class folders (DIR/<class>/<stem>.png, .txt)",
    )
    parser.add_argument(
        "--test-fraction", type=_fraction, default=None, metavar="F",
        help=(
            "--data DIR: the fraction of its examples held out for the test metrics, a seeded split per class, "
            f"disjoint from training and validation ({TEST_FRACTION} by default"
            + ("; by default the training run's, from MODEL.data.json)" if evaluate else ")")
        ),
    )
    parser.add_argument(
        "--test-data", default=None, metavar="DIR",
        help=(
            "a separate folder of test examples with the same class folders, read with the training "
            + ("run's class order and vocabulary (MODEL.data.json); evaluates all of it" if evaluate
               else "class order and text vocabulary (then --data DIR is only split into training and validation)")
        ),
    )
    parser.add_argument("--samples", type=_positive_int, default=samples, help="training examples of --data synthetic")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument(
        "--seed", type=int, default=None if evaluate else 0,
        help="seeds the data and its splits" + (" (by default the training run's, from MODEL.data.json, or 0)"
                                                 if evaluate else " (and the weights)"),
    )


def make_parser():
    parser = _Parser(prog="mmzoo", description="A Keras 3 multimodal model zoo.")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list the registered models")
    listing.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. '*fusion*'")
    listing.add_argument("--markdown", action="store_true", help="a Markdown table with sources and inputs")
    listing.set_defaults(run=_list)

    info = commands.add_parser("info", help="show a model's card (source, inputs, outputs, corrections)")
    info.add_argument("name")
    info.add_argument("--summary", action="store_true", help="also build the model and print its layers")
    info.set_defaults(run=_info)

    train = commands.add_parser("train", help="train a model, evaluate it and export it")
    train.add_argument("name")
    _add_data_arguments(train)
    train.add_argument("--epochs", type=_positive_int, default=5)
    train.add_argument("--mixed-precision", choices=PRECISIONS, default="auto")
    train.add_argument("--xla", action="store_true", help="compile with XLA (jit_compile=True)")
    train.add_argument(
        "--strategy", choices=("mirrored", "multi_worker"), default=None,
        help="multi_worker: run in every worker with its TF_CONFIG; the chief alone evaluates, saves and exports",
    )
    train.add_argument("--checkpoint-dir", default=None, help="resume from here if a run was interrupted")
    train.add_argument("--export-dir", default="saved_models", help="'' to skip the export")
    train.add_argument(
        "--save", default=None,
        help=(
            "also save the trained model as a .keras file (atomically); with --data DIR also MODEL.data.json "
            "beside it: the class names, text vocabulary and split that evaluate and export read"
        ),
    )
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved .keras model on a test split")
    evaluate.add_argument("model", help="a .keras file")
    _add_data_arguments(evaluate, samples=512, evaluate=True)
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser("export", help="export a saved .keras model as a versioned SavedModel")
    export.add_argument("model", help="a .keras file (with MODEL.data.json beside it: text inputs take raw strings)")
    export.add_argument("--export-dir", default="saved_models")
    export.add_argument("--name", default=None, help="the model's name by default")
    export.add_argument("--version", type=_positive_int, default=None, help="the next free version by default")
    export.set_defaults(run=_export)
    return parser


def main(argv=None):
    args = make_parser().parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ValueError, FileExistsError) as error:
        message = " ".join(str(error).split())  # one line, whatever the error's own layout
        print(f"mmzoo {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
