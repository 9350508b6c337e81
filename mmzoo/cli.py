"""The ``mmzoo`` command line (also ``python -m mmzoo``).

    mmzoo list [PATTERN] [--markdown]
    mmzoo info NAME [--summary]
    mmzoo train NAME [--data synthetic|cifar10|DIR] [--epochs N] [--batch-size N] ...
    mmzoo evaluate MODEL.keras [--data ...]
    mmzoo export MODEL.keras [--export-dir saved_models] [--name NAME] [--version N]

Errors in arguments are one line on stderr and exit code 2, never a traceback.
"""

import argparse
import os
import pathlib
import sys
import zipfile

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


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


def _directory_datasets(model, root, batch_size, seed):
    """Train and validation datasets from a class-folder tree, shaped for ``model``'s inputs."""
    from mmzoo.data import from_directory
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
        names[modality] = key
    splits = from_directory(
        root, modalities=sorted(names), input_names=names, batch_size=batch_size, seed=seed, **options
    )
    return splits.train, splits.validation, splits.validation


def _datasets(model, data, samples, batch_size, seed):
    """``(train, validation, test)`` datasets for ``model`` from the ``--data`` choice."""
    if data == "synthetic":
        from mmzoo.data import synthetic

        def split(name, n):
            return synthetic(model, n=n, split=name, seed=seed, batch_size=batch_size)

        held_out = max(batch_size, samples // 4)
        return split("train", samples), split("validation", held_out), split("test", held_out)
    if data == "cifar10":
        from mmzoo.data import cifar10

        return (
            cifar10(split="train[:90%]", batch_size=batch_size, seed=seed),
            cifar10(split="train[90%:]", batch_size=batch_size, shuffle=False),
            cifar10(split="test", batch_size=batch_size, shuffle=False),
        )
    if not pathlib.Path(data).is_dir():
        raise CommandError(f"--data must be 'synthetic', 'cifar10' or a directory; {data!r} is none of them")
    return _directory_datasets(model, data, batch_size, seed)


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


def _train(args):
    import keras

    import mmzoo

    keras.utils.set_random_seed(args.seed)
    mmzoo.registry.get_entry(args.name)  # an unknown name fails before any work
    # Paths are checked before training, so that a bad one does not cost a training run.
    if args.save:
        _check_save_path(args.save)
    if args.checkpoint_dir:
        _check_directory("--checkpoint-dir", args.checkpoint_dir)
    if args.export_dir:
        _check_directory("--export-dir", args.export_dir)
    datasets = {}

    def split(index):
        # `train` calls these with the model it built (in the strategy's scope, under the
        # policy), so the data is made once, after the strategy starts (multi-worker needs that).
        def make(model):
            if not datasets:
                datasets.update(enumerate(_datasets(model, args.data, args.samples, args.batch_size, args.seed)))
            return datasets[index]

        return make

    history = mmzoo.train(
        args.name,
        split(0),
        validation_data=split(1),
        epochs=args.epochs,
        mixed_precision=args.mixed_precision,
        jit_compile=True if args.xla else "auto",
        strategy=args.strategy,
        checkpoint_dir=args.checkpoint_dir,
        verbose=args.verbose,
    )
    model = history.model
    _print_metrics("test", model.evaluate(split(2)(model), verbose=0, return_dict=True))
    if args.save:
        from mmzoo.checkpoints import save_model_atomically

        save_model_atomically(model, args.save)
        print(f"saved the trained model to {args.save}")
    if args.export_dir:
        path = mmzoo.export(model, export_dir=args.export_dir, name=args.name, verbose=False)
        print(f"exported and reloaded the SavedModel: {path}")


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
    model = _load_keras_model(args.model)
    _, _, test_data = _datasets(model, args.data, args.samples, args.batch_size, args.seed)
    _print_metrics(f"{model.name} test", model.evaluate(test_data, verbose=0, return_dict=True))


def _export(args):
    import mmzoo

    model = _load_keras_model(args.model)
    path = mmzoo.export(model, export_dir=args.export_dir, name=args.name, version=args.version, verbose=False)
    print(f"exported and reloaded the SavedModel: {path}")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _add_data_arguments(parser, samples=2048):
    parser.add_argument("--data", default="synthetic", help="'synthetic' (default), 'cifar10' or a directory")
    parser.add_argument("--samples", type=_positive_int, default=samples, help="training examples of --data synthetic")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--seed", type=int, default=0)


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
    train.add_argument("--strategy", choices=("mirrored", "multi_worker"), default=None)
    train.add_argument("--checkpoint-dir", default=None, help="resume from here if a run was interrupted")
    train.add_argument("--export-dir", default="saved_models", help="'' to skip the export")
    train.add_argument("--save", default=None, help="also save the trained model as a .keras file (atomically)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved .keras model on a test split")
    evaluate.add_argument("model", help="a .keras file")
    _add_data_arguments(evaluate, samples=512)
    evaluate.set_defaults(run=_evaluate)

    export = commands.add_parser("export", help="export a saved .keras model as a versioned SavedModel")
    export.add_argument("model", help="a .keras file")
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
