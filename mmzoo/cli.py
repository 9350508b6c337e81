"""The ``mmzoo`` command line (also ``python -m mmzoo``).

    mmzoo list [PATTERN] [--markdown]
    mmzoo info NAME|PRESET_DIR [--summary]
    mmzoo train NAME [--data synthetic|cifar10|DIR] [--test-fraction F | --test-data DIR] [--epochs N] ...
                [--weights PRESET_OR_FILE] [--head-epochs N] [--save-preset DIR] [--task T] [--reliability R]
    mmzoo evaluate MODEL.keras [--data synthetic|cifar10|DIR] [--test-fraction F | --test-data DIR]
                   [--task T] [--reliability R]
    mmzoo export MODEL.keras [--export-dir saved_models] [--name NAME] [--version N]
    mmzoo predict EXPORT_PATH --data DIR [--batch-size N]

Errors in arguments are one line on stderr and exit code 2, never a traceback.

The embedded data (``--data synthetic``, the default)
----------------------------------------------------
:func:`mmzoo.data.synthetic`, shaped for the model: ``--samples`` training examples, a
quarter as many for validation and for the test. ``--task`` says what its modalities show
(``redundant``, the default: each the class; ``interaction``: the class is a function of
all of them together; ``unreliable``: one clean modality per example, the others
corrupted), ``--reliability`` the probability that each modality is in an example (0.75).
``make run`` trains on ``--task unreliable --reliability 1``: on the redundant data a
document model reaches its best validation accuracy in the first epoch, here it keeps
learning over five.

Class-folder directories (``--data DIR``)
-----------------------------------------
``DIR/<class>/<stem>.<ext>``, read by :func:`mmzoo.data.from_directory`: the files of one
example share a stem, their extension gives the modality (``.png/.jpg`` image, ``.txt``
text, ``.wav/.flac/.ogg`` audio, ``.npy`` or a ``<stem>.frames/`` folder video).

- ``mmzoo train fusion_classifier --data DIR`` reads the modalities the folder has (or
  ``--modalities``) as ``--image-size``, ``--color-mode``, ``--sample-rate``,
  ``--audio-length``, ``--sequence-length``, ``--num-frames`` say, and builds the model for
  what it read (``mmzoo.train(name, splits)``: its inputs, classes and vocabulary;
  ``--width`` and ``--filters`` size it).
- A document model's fixed inputs shape the loader instead: images ``(H, W, C)``,
  token-id texts, video ``(frames, H, W, C)``, and audio inputs of MFCC features, ``(n,)``
  (the mean over the frames) or ``(frames, n)`` (with an ``audio_mask`` input: the mask of
  the frames centred on real samples), computed in the ``tf.data`` pipeline from the
  waveforms read at ``--sample-rate`` and trimmed or padded to ``--audio-length`` samples
  (the same layer goes into the export). Other inputs: a one-line error.

An audio file at another sample rate is resampled to ``--sample-rate``. An example that
lacks one of the modalities read (``a.png`` but no ``a.wav``), or has an unreadable file,
is skipped with one warning line naming every skipped file (``--strict``: an error
naming the first); a class folder left without a readable example is an error. The
examples are split three ways, seeded by ``--seed`` and per class: a test split of
``--test-fraction`` of them (0.15 by default), a validation split of 20%, and the rest to
train on; the three are disjoint, and the same seed gives the same split. With
``--test-data DIR2`` the test examples are all of another folder instead (and ``DIR`` is
only split into training and validation): it must have the same class folders, and it
is read with the training run's class order and text vocabulary, never adapted again.
The ``TextVectorization`` of the text is adapted on the training texts alone.

A directory run prints ``validation: ...`` and ``test: ...`` metrics (the final weights on
the validation and test examples). What it leaves, so that the model reads text and
names classes as it was trained to:

- ``--save MODEL.keras`` also writes ``MODEL.data.json`` beside it: the class names (label
  ``i`` is ``class_names[i]``), the vectorizer's settings and vocabulary, the loader's
  settings (``from_directory`` arguments), the split (seed and fractions) and the SHA-256
  of the ``.keras`` file it belongs to. A ``.keras`` file cannot carry the vocabulary
  itself: the model takes token ids, and the vectorizer (strings to ids) runs before it,
  outside its graph. ``mmzoo evaluate MODEL.keras --data DIR`` (or
  ``--test-data DIR``) reads that file: the same class order and token ids, and, unless
  ``--seed`` or ``--test-fraction`` say otherwise, the training run's split, so it measures
  the same test examples and prints the same metrics as training did. A model with a text
  input and no such file (or a file written for another ``.keras``) is refused.
- the exported SavedModel (``--export-dir``, and ``mmzoo export MODEL.keras`` when the
  data file is there) takes **raw strings** for the text input, ``tf.string`` ``(None,)``:
  the training vectorizer runs inside its serving function (``mmzoo.export(...,
  include_preprocessing=True)``), its vocabulary saved in the SavedModel. It takes what
  the loader reads: images float32 in [0, 1] at the training size, audio float32
  waveforms ``(batch, samples)`` at the training sample rate (the MFCC of a document
  model computed inside; ``audio_mask`` if the model has one), video float32 ``(batch,
  frames, H, W, C)``. The class names and the loader settings travel inside it
  (``ServedModel.class_names`` and ``.loader_options``, see :mod:`mmzoo.serving`).
- ``mmzoo predict EXPORT_PATH --data DIR`` reads ``DIR`` with those settings (raw text)
  and prints one line per example, ``<path without extension>\t<class>\t<probability>``,
  then ``accuracy: ...`` when ``DIR`` holds class folders named like the model's classes
  (some of them will do). ``DIR`` may instead hold the example files themselves, without
  class folders: predictions, no accuracy. An export without loader settings (not made
  from a directory run) is refused.

Presets and fine-tuning
-----------------------
``--save-preset DIR`` writes the trained model as a preset folder (:func:`mmzoo.save_preset`:
its config, weights, class names, text vocabulary, loader settings, and the validation
and test metrics); ``mmzoo info DIR`` prints its card. ``--weights PRESET_OR_FILE`` starts
a run from a preset (a folder with other classes gives the model a new head: one line
says how many weight tensors were loaded), a ``.weights.h5`` file or ``imagenet``.
``--head-epochs N`` fine-tunes (:func:`mmzoo.finetune`): N epochs of the head with the
encoders frozen, then ``--epochs`` of everything at a tenth of the learning rate.

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
TASKS = ("redundant", "interaction", "unreliable")  # mmzoo.data.embedded.TASKS (not imported: no TensorFlow yet)
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
    from mmzoo import presets

    if args.name not in mmzoo.list_models() and (presets.is_preset(args.name) or os.sep in args.name
                                                  or os.path.isdir(args.name)):
        print(preset_card(presets.read_preset(args.name)))
        if args.summary:
            print()
            mmzoo.build(args.name).summary(expand_nested=False)
        return
    print(mmzoo.describe(args.name))
    if args.summary:
        print()
        mmzoo.build(args.name).summary(expand_nested=False)


def preset_card(preset):
    """The card of a preset: the model, what it was trained on, its metrics, its classes and loader settings."""
    import mmzoo

    entry = mmzoo.registry.get_entry(preset["model"])
    preprocessing, metadata = preset["preprocessing"], preset["metadata"]
    lines = [
        f"preset: {preset['directory']}",
        f"model: {preset['model']} ({entry.summary})",
        f"source: document {entry.source}",
        f"saved: {metadata.get('saved', '?')} with mmzoo {preset.get('mmzoo_version')}, "
        f"Keras {preset.get('keras_version')} ({metadata.get('backend', '?')})",
    ]
    if metadata.get("trained_on") is not None:
        lines.append(f"trained on: {metadata['trained_on']}")
    for split, values in (metadata.get("metrics") or {}).items():
        shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in values.items()) \
            if isinstance(values, dict) else str(values)
        lines.append(f"{split}: {shown}")
    classes = preprocessing.get("class_names")
    if classes:
        lines.append(f"classes ({len(classes)}): {', '.join(classes)}")
    for key, document in (preprocessing.get("vectorizers") or {}).items():
        lines.append(f"text input {key!r}: a vocabulary of {len(document.get('vocabulary', []))} tokens")
    if preprocessing.get("loader"):
        lines.append("loader: " + ", ".join(f"{k}={v!r}" for k, v in preprocessing["loader"].items()))
    lines.append("arguments:")
    lines += [f"  {key}={value!r}" for key, value in preset["config"].items()]
    return "\n".join(lines)


# --- data --------------------------------------------------------------------------------


@dataclasses.dataclass
class Data:
    """The datasets of a run, and what a directory run must keep to read data again the same way.

    ``train`` and ``validation`` are None for ``mmzoo evaluate``. ``class_names`` and
    ``vectorizers`` (``{input name: TextVectorization}``) are those of a directory run
    (None and ``{}`` otherwise); ``split`` records how the examples were split;
    ``summary`` is the line that says so. ``loader`` holds the ``from_directory`` arguments
    the files were read with (JSON), ``layers`` the ``{input name: layer}`` that finish the
    inputs in the pipeline (MFCC features of document models) and go into the export.
    """

    train: object
    validation: object
    test: object
    class_names: list = None
    vectorizers: dict = dataclasses.field(default_factory=dict)
    split: dict = None
    summary: str = None
    loader: dict = None
    layers: dict = dataclasses.field(default_factory=dict)


def data_file_path(model_path):
    """``MODEL.data.json`` for ``MODEL.keras``: where a directory run keeps class names and vocabulary."""
    return pathlib.Path(model_path).with_suffix(".data.json")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_data_file(model_path, data):
    """Write ``MODEL.data.json`` (atomically) for the ``.keras`` file just saved at ``model_path``."""
    from mmzoo.data.text import _atomic_write_text
    from mmzoo.presets import vectorizer_document

    document = {
        "format": DATA_FILE_FORMAT,
        "version": DATA_FILE_VERSION,
        "model_file": pathlib.Path(model_path).name,
        "model_sha256": _sha256(model_path),
        "class_names": list(data.class_names),
        "split": data.split,
        "vectorizers": {key: vectorizer_document(layer) for key, layer in data.vectorizers.items()},
        "loader": data.loader,
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
    name: TextVectorization}`` with the training vocabulary), ``split`` and ``loader`` (the
    ``from_directory`` arguments; None in a file written before they were kept). Raises
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
        from mmzoo.presets import vectorizer_from_document

        try:
            return Data(
                train=None,
                validation=None,
                test=None,
                class_names=[str(name) for name in document["class_names"]],
                vectorizers={key: vectorizer_from_document(doc) for key, doc in document["vectorizers"].items()},
                split=document.get("split") if isinstance(document.get("split"), dict) else {},
                loader=document.get("loader") if isinstance(document.get("loader"), dict) else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            problem = f"its contents are malformed ({type(error).__name__}: {error})"
    raise CommandError(f"cannot use {path}, the class names and vocabulary of {model_path}: {problem}")


FUSION_MODEL = "fusion_classifier"  # built for the data it is given (mmzoo.training.split_build_arguments)
MODALITY_ORDER = ("image", "text", "audio", "video")
FUSION_DEFAULTS = {"image_size": (48, 48), "sequence_length": 32, "max_tokens": 10000, "num_frames": 16}
_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


@dataclasses.dataclass
class _Feed:
    """How a folder feeds a model: ``from_directory`` arguments, and layers that finish its inputs.

    ``loader`` is JSON-serialisable (it is stored in ``MODEL.data.json`` and in the
    SavedModel). ``layers`` maps an input name to a Keras layer applied, in the ``tf.data``
    pipeline and in the exported serving function, to what the loader yields under that
    name: the MFCC features of a waveform, or the frame mask of a sample mask.
    """

    loader: dict
    layers: dict = dataclasses.field(default_factory=dict)


_LAYER_CLASSES = []


def _feature_layer_classes():
    """``(WaveformMFCC,)``, defined on first use (Keras is imported lazily here)."""
    if _LAYER_CLASSES:
        return _LAYER_CLASSES
    import keras

    from mmzoo.layers import MFCC

    class WaveformMFCC(keras.layers.Layer):
        """Waveforms ``(batch, samples)`` -> MFCC frames ``(batch, frames, n)``, or their mean ``(batch, n)``."""

        def __init__(self, frames, num_mfcc, sample_rate, hop, fft, **kwargs):
            super().__init__(dtype="float32", **kwargs)
            self.frames = frames
            self.mfcc = MFCC(num_mfcc, sample_rate=sample_rate, fft_length=fft, hop_length=hop,
                             num_mel_bins=max(num_mfcc, 40), dtype="float32", name="mfcc")

        def build(self, input_shape):
            self.mfcc.build(input_shape)

        def call(self, waveforms):
            features = self.mfcc(waveforms)
            return keras.ops.mean(features, axis=1) if self.frames is None else features[:, : self.frames]

    _LAYER_CLASSES.append(WaveformMFCC)
    return _LAYER_CLASSES


def _mfcc_layers(key, shape, sample_rate, audio_length, mask_key=None):
    """``{input name: layer}`` computing an MFCC input ``(n,)`` or ``(frames, n)`` (and its frame mask)."""
    (waveform_mfcc,) = _feature_layer_classes()
    num_mfcc = shape[-1]
    frames = shape[0] if len(shape) == 2 else None
    if frames is None:
        hop = 512  # librosa's defaults: a 2048-sample window every 512 samples, averaged over the clip
    else:
        hop = audio_length // (frames - 1) if frames > 1 else audio_length + 1
        if hop < 1:
            raise CommandError(
                f"--audio-length {audio_length} is too short for the {frames} MFCC frames of input {key!r}"
            )
    fft = max(2048 if frames is None else 512, 1 << (2 * hop - 1).bit_length())
    if audio_length <= fft // 2:
        raise CommandError(
            f"--audio-length {audio_length} is too short for the MFCC of input {key!r}: it takes more than "
            f"{fft // 2} samples (half its {fft}-sample window)"
        )
    layer = waveform_mfcc(frames, num_mfcc, sample_rate, hop, fft, name=f"{key}_mfcc")
    layer.build((None, audio_length))
    layers = {key: layer}
    if mask_key is not None:
        from mmzoo.layers.encoders import SampleMaskFrames

        mask = SampleMaskFrames(hop, frames, dtype="float32", name=f"{mask_key}_frames")
        mask.build((None, audio_length))
        layers[mask_key] = mask
    return layers


def _given(args, name):
    return getattr(args, name, None) if args is not None else None


def _model_feed(model, args=None, loader=None):
    """The :class:`_Feed` of a built model: its fixed inputs shape the loader.

    Images ``(H, W, C)``, token-id texts ``(length,)``, video ``(frames, H, W, C)`` and, for
    an input named ``audio*``: a raw waveform ``(samples,)`` for models built from raw inputs
    (``fusion_classifier``), else MFCC features, ``(n_mfcc,)`` (the mean over frames) or
    ``(frames, n_mfcc)``, computed from the waveforms at ``--sample-rate`` trimmed or padded
    to ``--audio-length`` samples (``loader``, a training run's settings, wins over ``args``).
    ``K_mask`` inputs of audio and video inputs are fed the loader's masks, and the
    ``<modality>_present`` inputs of a model built with ``missing_modalities=True`` its flags
    (``missing="mask"``). Anything else is a CommandError.
    """
    from mmzoo.models.presence import is_presence_flag
    from mmzoo.registry import tensor_specs

    specs = tensor_specs(model.input)
    loader = dict(loader or {})
    config = model.get_config() if model.__class__.__name__ == "FusionClassifier" else None
    sample_rate = loader.get("sample_rate") or _given(args, "sample_rate") or 16000
    audio_length = loader.get("audio_length") or _given(args, "audio_length") or sample_rate
    masks = {key: key[: -len("_mask")] for key in specs if key.endswith("_mask") and key[: -len("_mask")] in specs}
    names, options, audio = {}, {}, None
    colors = {}
    flags = [key for key, (shape, _) in specs.items() if is_presence_flag(key, shape)]
    if flags:  # built with missing_modalities=True: examples lacking a modality are kept, with flags
        options["missing"] = "mask"
    for key, (shape, dtype) in specs.items():
        if key in masks or key in flags:
            continue
        integer = "int" in dtype
        if len(shape) == 3 and not integer:
            modality = "image"
            options["image_size"] = list(shape[:2])
            colors[key] = shape[2]
        elif len(shape) == 1 and integer:
            modality = "text"
            options.update(sequence_length=shape[0], max_tokens=model.token_ranges.get(key, (1, 10000))[1])
        elif len(shape) in (1, 2) and not integer and "audio" in key.lower():
            modality, audio = "audio", (key, shape)
            if config is not None:
                options.update(sample_rate=config["sample_rate"], audio_length=shape[0])
            else:
                options.update(sample_rate=sample_rate, audio_length=audio_length)
        elif len(shape) == 4 and not integer:
            modality = "video"
            options.update(num_frames=shape[0], frame_size=list(shape[1:3]))
            colors[key] = shape[3]
        else:
            raise CommandError(
                f"input {key!r} {shape} {dtype} of {model.name} cannot be read from a directory; "
                "directories feed image inputs (H, W, C), token-id text inputs, audio inputs (MFCC features "
                "(n,) or (frames, n) computed from the audio files) and video inputs (frames, H, W, C)"
            )
        if modality in names:
            raise CommandError(
                f"inputs {names[modality]!r} and {key!r} of {model.name} would both be read as the {modality} "
                f"of a directory example; directories feed one input of each modality"
            )
        names[modality] = key
    if len(set(colors.values())) > 1:
        raise CommandError(
            f"the inputs {', '.join(colors)} of {model.name} have {' and '.join(map(str, colors.values()))} "
            "channels; a directory's images and video frames are read in one color mode"
        )
    if colors:
        channels = next(iter(colors.values()))
        if channels not in _COLOR_MODES:
            raise CommandError(f"{model.name}'s images have {channels} channels; directories read 1, 3 or 4")
        options["color_mode"] = _COLOR_MODES[channels]
    rename = {modality: key for modality, key in names.items() if key != modality}
    layers = {}
    if audio is not None:
        mask_key = next((mask for mask, owner in masks.items() if owner == audio[0]), None)
        options["audio_mask"] = mask_key is not None
        if mask_key is not None and mask_key != "audio_mask":
            rename["audio_mask"] = mask_key
        if config is None:
            frame_mask = mask_key if len(audio[1]) == 2 else None
            layers = _mfcc_layers(audio[0], audio[1], sample_rate, audio_length, frame_mask)
    for mask, owner in masks.items():
        if owner == names.get("video"):
            options["video_pad"] = "zeros"  # zero-padded clips come with `<video input>_mask`
        elif owner != names.get("audio"):
            raise CommandError(f"input {mask!r} of {model.name} cannot be read from a directory")
    modalities = [m for m in MODALITY_ORDER if m in names]
    _check_fixed_options(model, args, modalities, options)
    return _Feed({"modalities": modalities, "input_names": rename, **options}, layers)


def _check_fixed_options(model, args, modalities, options):
    """A document model's inputs are fixed: loader options that say otherwise are refused."""
    if args is None or model.__class__.__name__ == "FusionClassifier":
        return
    wanted = _given(args, "modalities")
    if wanted and sorted(wanted) != sorted(modalities):
        raise CommandError(
            f"{model.name} reads {', '.join(modalities)} from every example; --modalities applies to "
            f"{FUSION_MODEL} (received --modalities {','.join(wanted)})"
        )
    size = _given(args, "image_size")
    for option, value, have, what in (
        ("--image-size", size and list(size), options.get("image_size"), "images"),
        ("--image-size", size and list(size), options.get("frame_size"), "video frames"),
        ("--sequence-length", _given(args, "sequence_length"), options.get("sequence_length"), "tokens"),
        ("--color-mode", _given(args, "color_mode"), options.get("color_mode"), "images"),
        ("--num-frames", _given(args, "num_frames"), options.get("num_frames"), "video frames"),
    ):
        if value is not None and have is not None and value != have:
            shown = "x".join(map(str, have)) if isinstance(have, list) else have
            raise CommandError(
                f"{model.name} takes {shown} {what}; {option} applies to {FUSION_MODEL} "
                f"(a document model's inputs are fixed; received {option} "
                f"{','.join(map(str, value)) if isinstance(value, list) else value})"
            )


def _folder_modalities(root):
    """The modalities of the files under ``root``'s class folders, in :data:`MODALITY_ORDER`."""
    from mmzoo.data.loaders import FRAME_FOLDER_SUFFIX, _modality_of

    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if any(d.lower().endswith(FRAME_FOLDER_SUFFIX) for d in dirnames):
            found.add("video")
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not d.lower().endswith(FRAME_FOLDER_SUFFIX)]
        found.update(_modality_of(f) for f in filenames if not f.startswith("."))
        if found >= set(MODALITY_ORDER):
            break
    return [m for m in MODALITY_ORDER if m in found]


def _check_folder_has(option, root, modalities, needed_by):
    found = _folder_modalities(root)
    absent = [m for m in modalities if m not in found]
    if absent:
        has = f"it has {', '.join(found)} files" if found else "it has no image, text, audio or video files"
        raise CommandError(f"{needed_by} {', '.join(absent)}, which {option} {str(root)!r} does not have: {has}")


def _folder_feed(args):
    """The :class:`_Feed` of ``fusion_classifier`` on ``--data DIR``: what the folder has, as the options say."""
    found = _folder_modalities(args.data)
    modalities = list(args.modalities) if args.modalities else found
    if not modalities:
        raise CommandError(f"--data {args.data!r} has no image, text, audio or video files in class folders")
    _check_folder_has("--data", args.data, modalities, "--modalities names" if args.modalities else "")
    size = list(args.image_size or FUSION_DEFAULTS["image_size"])
    sample_rate = args.sample_rate or 16000
    loader = {
        "modalities": [m for m in MODALITY_ORDER if m in modalities],
        "input_names": {},
        "image_size": size,
        "color_mode": args.color_mode or "rgb",
        "sample_rate": sample_rate,
        "audio_length": args.audio_length or sample_rate,
        "audio_mask": True,
        "sequence_length": args.sequence_length or FUSION_DEFAULTS["sequence_length"],
        "max_tokens": args.max_tokens or FUSION_DEFAULTS["max_tokens"],
        "num_frames": args.num_frames or FUSION_DEFAULTS["num_frames"],
        "frame_size": size,
    }
    if getattr(args, "missing", None) == "mask":
        loader["missing"] = "mask"
    return _Feed(loader)


def _apply_layers(dataset, layers):
    """``dataset`` with ``layers[key]`` applied to its batches' ``key`` features (in the pipeline)."""
    if dataset is None or not layers:
        return dataset
    import tensorflow as tf

    def finish(features, label):
        return {key: layers[key](value) if key in layers else value for key, value in features.items()}, label

    return dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class _LoaderWarnings:
    """Collects the loader's warnings (skipped files) and prints each as one line, once the data is accepted.

    The ``mmzoo.data`` logger's copy of the same message is silenced meanwhile (it would
    reach stderr through logging's last-resort handler).
    """

    def __init__(self, command):
        self.command = command

    def __enter__(self):
        import logging
        import warnings

        self._catcher = warnings.catch_warnings(record=True)
        self.records = self._catcher.__enter__()
        warnings.simplefilter("always")
        self._logger, self._handler = logging.getLogger("mmzoo.data"), logging.NullHandler()
        self._logger.addHandler(self._handler)
        self._propagate, self._logger.propagate = self._logger.propagate, False
        return self

    def __exit__(self, kind, error, trace):
        self._logger.removeHandler(self._handler)
        self._logger.propagate = self._propagate
        self._catcher.__exit__(kind, error, trace)
        if kind is None:
            for record in self.records:
                message = " ".join(str(record.message).split())
                message = message.replace("Pass strict=True to raise instead.", "Pass --strict to stop instead.")
                print(f"mmzoo {self.command}: warning: {message}", file=sys.stderr, flush=True)
        return False


def _check_classes_readable(root, class_names, splits, option="--data"):
    """Every class folder must have at least one readable example, else CommandError naming its files."""
    root = os.path.abspath(root)
    names = splits.train_examples + splits.validation_examples + splits.test_examples
    counts = {name: 0 for name in class_names}
    for example in names:
        folder = os.path.relpath(os.path.abspath(example), root).split(os.sep)[0]
        if folder in counts:
            counts[folder] += 1
    for name, count in counts.items():
        if count:
            continue
        folder = os.path.join(root, name)
        skipped = [p for p in splits.skipped if os.path.abspath(p).startswith(folder + os.sep)]
        what = f"its unreadable or incomplete files: {', '.join(skipped)}" if skipped else "it holds no example files"
        raise CommandError(
            f"class folder {name!r} has no readable example in {option} {str(root)!r} ({what}); every class "
            "needs at least one (remove the folder, or fix its files)"
        )


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


def _directory_data(feed, args, stored=None, evaluate=False, model=None):
    """The datasets of ``--data DIR`` (and ``--test-data DIR``), read as ``feed`` and ``stored`` say.

    Training: ``from_directory`` splits ``DIR`` into training, validation and (without
    ``--test-data``) a seeded test split, and adapts the vectorizer on the training texts.
    ``--test-data`` is read with that vectorizer and class order. ``stored`` (from a data
    file) gives the class order and vocabulary instead; ``evaluate`` only needs the test data.
    ``feed.layers`` (MFCC features) are applied to every dataset. ``model``: the model built
    already (a document model), whose output must have room for the classes.
    """
    from mmzoo.data import from_directory
    from mmzoo.data.image import image_augmentation

    loader = feed.loader
    modalities = loader["modalities"]
    text_key = loader["input_names"].get("text", "text") if "text" in modalities else None
    class_names, vectorizer = None, None
    preset_vectorizers = getattr(args, "preset_vectorizers", None) or {}
    if stored is None and text_key is not None and text_key in preset_vectorizers:
        vectorizer = preset_vectorizers[text_key]  # --weights PRESET: its token ids, whatever the new texts
    if stored is not None:
        class_names = stored.class_names
        if text_key is not None:
            vectorizer = stored.vectorizers.get(text_key)
            if vectorizer is None:
                raise CommandError(
                    f"the data file of {args.model} has no vocabulary for the text input {text_key!r} of {model.name}"
                )
    common = dict(loader, batch_size=args.batch_size, vectorizer=vectorizer, strict=bool(_given(args, "strict")))
    if model is not None:
        needed_by = f"{model.name} reads"
    else:
        needed_by = "--modalities names" if _given(args, "modalities") else "the training run reads"
    seed, fraction = _seed(args, stored), _test_fraction(args, stored)
    validation = _stored_split(stored, "validation_fraction", float, VALIDATION_FRACTION)
    test_data = args.test_data
    command = "evaluate" if evaluate else "train"

    def finish(data):
        data.loader, data.layers = loader, dict(feed.layers)
        data.train, data.validation, data.test = (
            _apply_layers(d, feed.layers) for d in (data.train, data.validation, data.test)
        )
        return data

    if evaluate and test_data:
        if class_names is not None:
            _check_class_folders("--test-data", test_data, class_names)
        else:
            class_names = _class_folders(test_data)
        if model is not None:
            _check_output_classes(model, class_names)
        _check_folder_has("--test-data", test_data, modalities, needed_by)
        with _LoaderWarnings(command):
            test = from_directory(
                test_data, class_names=class_names, validation_split=0.0, shuffle=False, seed=seed, **common
            )
            _check_classes_readable(test_data, class_names, test, "--test-data")
        summary = f"data: {len(test.train_examples)} test examples from {test_data}"
        return finish(Data(None, None, test.train, class_names, {}, None, summary))
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
    elif model is not None:
        _check_output_classes(model, _class_folders(root))
    _check_folder_has("--data", root, modalities, needed_by)
    if test_data:
        _check_folder_has("--test-data", test_data, modalities, needed_by)
    augment = image_augmentation(seed=seed) if _given(args, "augment") and not evaluate else None
    with _LoaderWarnings(command):
        splits = from_directory(
            root, class_names=class_names, validation_split=validation, test_split=fraction, seed=seed,
            augment=augment, **common,
        )
        class_names = splits.class_names
        _check_classes_readable(root, class_names, splits)
        if test_data:
            _check_class_folders("--test-data", test_data, class_names)
            test = from_directory(
                test_data, class_names=class_names, validation_split=0.0, shuffle=False, seed=seed,
                **{**common, "vectorizer": splits.vectorizer},
            )
            _check_classes_readable(test_data, class_names, test, "--test-data")
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
        if not splits.test_examples:
            raise CommandError(
                f"the test split ({how}) of {root!r} has no example: its classes are too small; raise "
                "--test-fraction or pass --test-data DIR"
            )
        summary = f"data: {counts}, {len(splits.test_examples)} test examples from {root} (test: {how})"
        return finish(Data(splits.train, splits.validation, splits.test, class_names, vectorizers, split, summary))
    summary = f"data: {counts} examples from {root}; {len(test.train_examples)} test examples from {test_data}"
    return finish(Data(splits.train, splits.validation, test.train, class_names, vectorizers, split, summary))


def _check_data_arguments(args):
    """Refuse data options that do not go together, before anything is built."""
    is_directory = args.data not in ("synthetic", "cifar10")
    if is_directory and not pathlib.Path(args.data).is_dir():
        raise CommandError(f"--data must be 'synthetic', 'cifar10' or a directory; {args.data!r} is none of them")
    given = [option for option, value in (("--task", args.task), ("--reliability", args.reliability))
             if value is not None]
    if given and (args.data != "synthetic" or args.test_data is not None):
        received = f"--data {args.data!r}" + (f" --test-data {args.test_data!r}" if args.test_data else "")
        raise CommandError(f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --data synthetic; "
                           f"received {received}")
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
        loader = stored.loader if stored is not None else None
        return _directory_data(_model_feed(model, args, loader), args, stored, evaluate, model)
    seed, batch_size = _seed(args), args.batch_size
    if args.data == "synthetic":
        from mmzoo.data import synthetic

        task = args.task or "redundant"
        reliability = 0.75 if args.reliability is None else args.reliability

        def split(name, n):
            return synthetic(model, n=n, split=name, seed=seed, batch_size=batch_size, task=task,
                             reliability=reliability)

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


_LOADER_OPTIONS = ("modalities", "image_size", "color_mode", "sample_rate", "audio_length", "sequence_length",
                   "max_tokens", "num_frames", "missing")


def _fusion_build_arguments(args, loader):
    """``fusion_classifier``'s build arguments from the options (its inputs and classes come from the data)."""
    arguments = {"sample_rate": loader["sample_rate"]}
    if args.width is not None:
        arguments["width"] = args.width
    if args.filters is not None:
        arguments.update(image_filters=tuple(args.filters), audio_filters=tuple(args.filters))
    return arguments


def _check_model_options(args, is_directory):
    """Options that apply to fusion_classifier, or to --data DIR, refused elsewhere (before any work)."""
    if args.name != FUSION_MODEL:
        for option in ("width", "filters"):
            if getattr(args, option) is not None:
                raise CommandError(
                    f"--{option} applies to {FUSION_MODEL} (built for the data); {args.name}'s size is fixed"
                )
    if not is_directory:
        given = [f"--{name.replace('_', '-')}" for name in _LOADER_OPTIONS if getattr(args, name) is not None]
        given += ["--augment"] * bool(args.augment) + ["--strict"] * bool(args.strict)
        if given:
            raise CommandError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --data DIR; "
                               f"received --data {args.data!r}")


def _train(args):
    import keras

    import mmzoo
    from mmzoo.training import is_chief

    _check_data_arguments(args)
    keras.utils.set_random_seed(args.seed)
    mmzoo.registry.get_entry(args.name)  # an unknown name fails before any work
    is_directory = args.test_data is not None or args.data not in ("synthetic", "cifar10")
    _check_model_options(args, is_directory)
    # Paths are checked before training, so that a bad one does not cost a training run.
    if args.save:
        _check_save_path(args.save)
    if args.checkpoint_dir:
        _check_directory("--checkpoint-dir", args.checkpoint_dir)
    if args.export_dir:
        _check_directory("--export-dir", args.export_dir)
    build_extra = _check_weights_arguments(args)
    if args.fusion is not None:
        _check_fusion_option(args)
        build_extra["fusion"] = args.fusion
    if getattr(args, "missing", None) == "mask" and args.name != FUSION_MODEL:  # fusion_classifier: from the data's flags
        build_extra["missing_modalities"] = True
    made = []
    arguments = dict(
        epochs=args.epochs,
        mixed_precision=args.mixed_precision,
        jit_compile=True if args.xla else "auto",
        strategy=args.strategy,
        checkpoint_dir=args.checkpoint_dir,
        verbose=args.verbose,
    )
    if args.name == FUSION_MODEL and is_directory:
        # Built for the folder: its inputs, classes and vocabulary come from the data, read first
        # (a multi-worker strategy must exist before the data's first TensorFlow op).
        from mmzoo.data.loaders import DatasetSplits
        from mmzoo.training import resolve_strategy

        if args.strategy == "multi_worker":
            arguments["strategy"] = resolve_strategy(args.strategy)
        feed = _folder_feed(args)
        made.append(_directory_data(feed, args))
        data = made[0]
        strategy = arguments["strategy"]
        if strategy is None or isinstance(strategy, str) or is_chief(strategy):
            print(data.summary, flush=True)
        splits = DatasetSplits(
            train=data.train, validation=data.validation, class_names=data.class_names,
            vectorizer=next(iter(data.vectorizers.values()), None),
        )
        fusion_arguments = _fusion_build_arguments(args, feed.loader)
        if args.head_epochs is not None:
            from mmzoo.training import split_build_arguments

            derived = split_build_arguments(args.name, splits.train, splits.class_names, splits.vectorizer)
            model = mmzoo.build(args.name, compile=False, **{**derived, **fusion_arguments}, **build_extra)
            history = _finetune(model, splits.train, splits.validation, args)
        else:
            history = mmzoo.train(args.name, splits, **arguments, **fusion_arguments, **build_extra)
    elif args.head_epochs is not None:
        model = mmzoo.build(args.name, compile=False, **build_extra)
        made.append(_datasets(model, args))
        if made[0].summary:
            print(made[0].summary, flush=True)
        history = _finetune(model, made[0].train, made[0].validation, args)
    else:

        def split(name):
            # `train` calls these with the model it built (in the strategy's scope, under the
            # policy), so the data is made once, after the strategy starts (multi-worker needs that).
            def make(model):
                if not made:
                    made.append(_datasets(model, args))
                    if made[0].summary and is_chief(model.distribute_strategy):
                        print(made[0].summary, flush=True)
                return getattr(made[0], name)

            return make

        history = mmzoo.train(
            args.name, split("train"), validation_data=split("validation"), **arguments, **build_extra
        )
    model, data = history.model, made[0]
    if args.strategy == "multi_worker":
        strategy = model.distribute_strategy
        if not is_chief(strategy):
            resolver = strategy.cluster_resolver
            print(
                f"{resolver.task_type} {resolver.task_id}: trained; the chief evaluates, saves and exports the model"
            )
            return
        model = _local_copy(model)
    metrics = {}
    if data.validation is not None and is_directory:
        metrics["validation"] = model.evaluate(data.validation, verbose=0, return_dict=True)
        _print_metrics("validation", metrics["validation"])
    metrics["test"] = model.evaluate(data.test, verbose=0, return_dict=True)
    _print_metrics("test", metrics["test"])
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
    if args.save_preset:
        trained_on = args.data + (f" (test: {args.test_data})" if args.test_data else "")
        path = mmzoo.save_preset(
            model, args.save_preset, class_names=data.class_names, vectorizers=data.vectorizers,
            loader_options=data.loader,
            metadata={"trained_on": trained_on, "epochs": len(history.epoch), "weights": args.weights,
                      "metrics": {split: {k: float(v) for k, v in values.items()} for split, values in metrics.items()}},
        )
        print(f"saved the preset to {path} (mmzoo info {path}; mmzoo.build({str(path)!r}))")
    if args.export_dir:
        path = mmzoo.export(model, export_dir=args.export_dir, name=args.name, verbose=False, **_preprocessing(data))
        print(f"exported and reloaded the SavedModel: {path}")


def _check_fusion_option(args):
    """--fusion: a known name (a model without the choice refuses it when it is built, before the data)."""
    from mmzoo.layers.fusion_names import FUSIONS

    if args.fusion not in FUSIONS:
        raise CommandError(f"--fusion must be one of {', '.join(FUSIONS)}; received --fusion {args.fusion!r}")


def _check_weights_arguments(args):
    """``--weights``, ``--head-epochs`` and ``--save-preset`` checked before any work; the build's ``weights``.

    A preset's text vectorizers go to ``args.preset_vectorizers``: ``--data DIR`` is then read with them.
    """
    from mmzoo.presets import is_preset, read_preset

    if args.head_epochs is not None and args.strategy is not None:
        raise CommandError("--head-epochs fine-tunes on one machine: it does not combine with --strategy")
    if args.save_preset:
        target = pathlib.Path(args.save_preset)
        if target.exists():
            raise CommandError(f"--save-preset {args.save_preset}: it exists already; name a new folder")
        _check_directory("--save-preset", target.parent, args.save_preset)
    args.preset_vectorizers = {}
    if args.weights is None:
        return {}
    if args.weights == "imagenet":
        return {"weights": "imagenet"}
    path = pathlib.Path(args.weights)
    if path.is_dir():
        if not is_preset(path):
            raise CommandError(f"--weights {args.weights}: the folder is not a preset (it has no config.json)")
        from mmzoo.presets import vectorizer_from_document

        preset = read_preset(path)  # a damaged preset fails here, before any work
        documents = (preset["preprocessing"].get("vectorizers") or {}).items()
        # The new texts are read with the preset's vocabulary: the embeddings it loads mean those token ids.
        args.preset_vectorizers = {key: vectorizer_from_document(document) for key, document in documents}
    elif not (path.is_file() and path.name.endswith(".weights.h5")):
        raise CommandError(
            f"--weights {args.weights}: expected a preset folder (mmzoo train --save-preset), a .weights.h5 file "
            "or 'imagenet'"
        )
    return {"weights": str(path)}


def _finetune(model, train, validation, args):
    """``mmzoo.finetune``: the head for ``--head-epochs`` with the encoders frozen, then ``--epochs`` of everything."""
    import mmzoo

    return mmzoo.finetune(
        model, train, validation, head_epochs=args.head_epochs, epochs=args.epochs, verbose=args.verbose,
        jit_compile=True if args.xla else "auto", checkpoint_dir=args.checkpoint_dir,
    )


def _preprocessing(data):
    """``export`` arguments: the text vectorizers and feature layers in the SavedModel (raw strings and
    waveforms in), the class names and the loader settings of a directory run."""
    if data is None:
        return {}
    arguments = {}
    layers = {**data.vectorizers, **data.layers}
    if layers:
        arguments.update(include_preprocessing=True, preprocessors=layers)
    if data.class_names is not None:
        arguments["class_names"] = list(data.class_names)
    if data.loader is not None:
        arguments["loader_options"] = _served_loader_options(data.loader)
    return arguments


def _served_loader_options(loader):
    """The loader settings stored in a SavedModel: how ``mmzoo predict`` reads files for it (raw text)."""
    return {key: value for key, value in loader.items() if key != "max_tokens"}


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
        if stored is None and "text" in _model_feed(model).loader["modalities"]:
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
    if stored is not None and stored.loader is not None:
        feed = _model_feed(model, loader=stored.loader)
        stored.loader, stored.layers = feed.loader, feed.layers
    path = mmzoo.export(
        model, export_dir=args.export_dir, name=args.name, version=args.version, verbose=False,
        **_preprocessing(stored),
    )
    print(f"exported and reloaded the SavedModel: {path}")
    if stored is not None and stored.vectorizers:
        print(f"its text input{'s' * (len(stored.vectorizers) > 1)} {', '.join(stored.vectorizers)} take raw "
              f"strings, through the vocabulary of {data_file_path(args.model)}")


def _predict_folder(root, class_names):
    """``(folder to read, class names to read it with, root of the example names)`` for ``mmzoo predict``.

    A folder of class sub-folders (those of the model, or some of them) is read with the
    model's class order; a folder of files without sub-folders is read as one unlabelled
    class (through a link in a temporary folder: from_directory needs class folders).
    """
    import tempfile

    from mmzoo.data.loaders import FRAME_FOLDER_SUFFIX

    root = pathlib.Path(root)
    folders = [f for f in _class_folders(root) if not f.lower().endswith(FRAME_FOLDER_SUFFIX)]
    if folders:
        if class_names is None:
            return root, folders, root, None
        unknown = [f for f in folders if f not in class_names]
        if unknown:
            raise CommandError(
                f"--data {str(root)!r} has sub-folders {unknown} that are not classes of the model "
                f"({', '.join(class_names)}); pass a folder of class folders, or a folder of files"
            )
        return root, [c for c in class_names if c in folders], root, None
    scratch = tempfile.TemporaryDirectory(prefix="mmzoo-predict-")
    link = pathlib.Path(scratch.name) / "unlabelled"
    os.symlink(os.path.abspath(root), link, target_is_directory=True)
    return pathlib.Path(scratch.name), ["unlabelled"], link, scratch


def _probabilities(outputs):
    import numpy as np

    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise CommandError(
                f"mmzoo predict reads a model with one output (class probabilities); this one has {sorted(outputs)}"
            )
        outputs = next(iter(outputs.values()))
    outputs = np.asarray(outputs, "float64")
    if outputs.ndim != 2:
        raise CommandError(f"mmzoo predict reads class probabilities (batch, classes); received shape {outputs.shape}")
    if outputs.shape[1] == 1:  # a sigmoid: the probability of class 1
        outputs = np.concatenate([1 - outputs, outputs], axis=1)
    return outputs


def _predict(args):
    import mmzoo
    from mmzoo.data import from_directory

    if not pathlib.Path(args.data).is_dir():
        raise CommandError(f"--data {args.data!r} is not a directory")
    try:
        served = mmzoo.load_saved_model(args.model)
    except FileNotFoundError:
        raise CommandError(f"no SavedModel at {args.model}") from None
    options = served.loader_options
    if options is None:
        raise CommandError(
            f"the SavedModel {served.path} has no loader options (how its training files were read): export "
            "it with mmzoo train --data DIR, or mmzoo export MODEL.keras with the MODEL.data.json of such a run"
        )
    class_names = served.class_names
    folder, read_classes, names_root, scratch = _predict_folder(args.data, class_names)
    try:
        if options.get("missing") != "mask":  # a masked modality may be absent from every example
            _check_folder_has("--data", args.data, options["modalities"], "the model reads")
        kwargs = {key: value for key, value in options.items() if key != "max_tokens"}
        kwargs.update(text_mode="raw", validation_split=0.0, shuffle=False, batch_size=args.batch_size,
                      strict=args.strict)
        with _LoaderWarnings("predict"):
            files = from_directory(folder, class_names=read_classes, **kwargs)
            if scratch is None:
                _check_classes_readable(folder, read_classes, files)
        labelled = scratch is None and class_names is not None
        correct = seen = 0
        examples = iter(files.train_examples)
        for features, labels in files.train.as_numpy_iterator():
            probabilities = _probabilities(served(features))
            for row, label in zip(probabilities, labels):
                index = int(row.argmax())
                name = class_names[index] if class_names is not None and index < len(class_names) else str(index)
                stem = os.path.relpath(next(examples), names_root)
                print(f"{stem}\t{name}\t{row[index]:.4f}")
                if labelled:
                    correct += int(name == read_classes[int(label)])
                seen += 1
    finally:
        if scratch is not None:
            scratch.cleanup()
    if labelled and seen:
        print(f"accuracy: {correct / seen:.4f} ({seen} examples of {len(read_classes)} classes)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer of 0 or more, got {text!r}")
    return value


def _image_size(text):
    parts = text.split(",")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be HEIGHT,WIDTH, two positive integers (e.g. 48,48), got {text!r}")
    return tuple(values)


def _modalities(text):
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [value for value in values if value not in MODALITY_ORDER]
    if not values or unknown or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(
            f"must be distinct modalities among {','.join(MODALITY_ORDER)}, comma-separated; got {text!r}"
        )
    return values


def _filters(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be positive integers, comma-separated (e.g. 16,32,64), got {text!r}")
    return values


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text!r}")
    return value


def _reliability(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a probability in (0, 1], got {text!r}")
    return value


def _add_strict_argument(parser):
    parser.add_argument(
        "--strict", action="store_true",
        help=(
            "--data DIR: stop with an error naming the first unreadable file, or the first example that lacks "
            "one of the modalities read (a stem with a .png but no .wav). By default such an example is "
            "skipped with one warning naming every skipped file; a class folder left without a readable "
            "example is an error either way"
        ),
    )


def _add_loader_arguments(parser):
    """How ``--data DIR`` is read for fusion_classifier (a document model's inputs fix them instead)."""
    group = parser.add_argument_group(
        "reading --data DIR",
        f"{FUSION_MODEL} is built for the folder: these options shape what is read (defaults in brackets). "
        "A document model's fixed inputs shape it instead (its image size, sequence length, frames); for its "
        "MFCC audio inputs, --sample-rate and --audio-length say how the waveforms are read before the "
        "MFCC is computed",
    )
    group.add_argument(
        "--modalities", type=_modalities, default=None, metavar="M,M",
        help="the modalities to read, among image,text,audio,video [those the folder has]",
    )
    group.add_argument("--image-size", type=_image_size, default=None, metavar="H,W",
                       help="images and video frames are resized to HEIGHT,WIDTH [48,48]")
    group.add_argument("--color-mode", choices=("rgb", "grayscale", "rgba"), default=None, help="[rgb]")
    group.add_argument(
        "--sample-rate", type=_positive_int, default=None, metavar="HZ",
        help="audio files are read at this rate: a file at another rate is resampled to this rate "
             "(librosa, soxr), not refused [16000]",
    )
    group.add_argument("--audio-length", type=_positive_int, default=None, metavar="SAMPLES",
                       help="clips are trimmed or zero-padded to this many samples (with a mask) "
                            "[the sample rate: 1 s]")
    group.add_argument("--sequence-length", type=_positive_int, default=None, metavar="N",
                       help="tokens per text [32]")
    group.add_argument("--max-tokens", type=_positive_int, default=None, metavar="N",
                       help="the largest vocabulary the text vectorizer keeps [10000]")
    group.add_argument("--num-frames", type=_positive_int, default=None, metavar="N",
                       help="frames per video clip [16]")
    group.add_argument(
        "--missing", choices=("skip", "mask"), default=None,
        help="an example that lacks a modality file: skip it (with one warning), or keep it with the modality "
             "masked: the model is built with missing_modalities=True and reads <modality>_present flags, "
             "and the export and mmzoo predict take such examples too [skip]",
    )
    group.add_argument("--augment", action="store_true",
                       help="random flips, rotations, zooms and contrast on the training images")
    group.add_argument("--width", type=_positive_int, default=None,
                       help=f"{FUSION_MODEL}: the width of its encoders and head [128]")
    group.add_argument("--filters", type=_filters, default=None, metavar="F,F",
                       help=f"{FUSION_MODEL}: the filters of its image and audio CNN blocks [16,32,64]")


def _add_data_arguments(parser, samples=2048, evaluate=False):
    parser.add_argument(
        "--data", default="synthetic",
        help=(
            "'synthetic' (default), 'cifar10' or a directory of class folders (DIR/<class>/<stem>.png, .txt, "
            ".wav, .npy ...)"
        ),
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
    parser.add_argument(
        "--task", choices=TASKS, default=None,
        help="--data synthetic: what its modalities show: each the class (redundant, the default), the class only "
             "all together (interaction), or the class in one clean modality per example (unreliable)",
    )
    parser.add_argument(
        "--reliability", type=_reliability, default=None, metavar="R",
        help="--data synthetic: the probability that each modality is in an example (else all zeros) [0.75]",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    _add_strict_argument(parser)
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

    info = commands.add_parser(
        "info", help="show a model's card (source, inputs, outputs, corrections), or a preset's (model, data, metrics)"
    )
    info.add_argument("name", help="a registered model name, or a preset folder")
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
    train.add_argument(
        "--fusion", default=None, metavar="NAME",
        help=(
            "the fusion operator, for fusion_classifier and the document models whose fusion step is a choice: "
            "concat, weighted, product, attention, graph, gating, tensor, low_rank, gmu, film, cross_attention "
            "[the model's own]"
        ),
    )
    train.add_argument(
        "--weights", default=None, metavar="PRESET_OR_FILE",
        help=(
            "start from these weights: a preset folder (another number of classes gets a new head), a "
            ".weights.h5 file, or 'imagenet' (models with keras.applications backbones)"
        ),
    )
    train.add_argument(
        "--head-epochs", type=_non_negative_int, default=None, metavar="N",
        help="fine-tune: N epochs of the head with the encoders frozen, then --epochs of everything at a tenth of the rate",
    )
    train.add_argument(
        "--save-preset", default=None, metavar="DIR",
        help="also save the trained model as a preset folder (config, weights, classes, vocabulary, metrics)",
    )
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    _add_loader_arguments(train)
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

    predict = commands.add_parser(
        "predict", help="predict the class of every example of a folder with an exported SavedModel",
        description=(
            "Reads --data DIR with the loader settings stored in the export (mmzoo train --data DIR stores "
            "them, with the class names) and prints, per example, its path without extension, the predicted "
            "class and its probability (tab-separated), then the accuracy when DIR holds class folders named "
            "like the model's classes. DIR may also be a folder of example files without class folders "
            "(then no accuracy)."
        ),
    )
    predict.add_argument("model", help="a SavedModel version directory, or its model directory (the latest version)")
    predict.add_argument("--data", required=True, metavar="DIR", help="a folder of class folders, or of files")
    predict.add_argument("--batch-size", type=_positive_int, default=32)
    _add_strict_argument(predict)
    predict.set_defaults(run=_predict)
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
