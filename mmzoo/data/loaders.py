"""Multimodal ``tf.data`` loaders: a class-folder tree, a CSV/JSONL manifest, and CIFAR-10.

Corrects the data loading of documents 000 §5.2 (CIFAR-10 images given alone to a
three-input model) and 001 §5.2 (``ImageDataGenerator(color_mode=3)``, a validation
subset without a split, captions never loaded).

What the datasets yield
-----------------------
``(features, label)`` with ``features`` a dict holding the modalities the data has:

- ``"image"``: float32 (height, width, channels) in [0, 1];
- ``"text"``: int32 (sequence_length,) token ids from a ``TextVectorization`` adapted on
  the **training split only** (0 padding, 1 out-of-vocabulary), or with
  ``text_mode="raw"`` the stripped UTF-8 text as a scalar ``tf.string``;
- ``"audio"``: float32 (audio_length,) mono waveform in [-1, 1] at ``sample_rate``,
  trimmed or zero-padded, and ``"audio_mask"``: float32 (audio_length,), 1.0 on real
  samples and 0.0 on padding (left out with ``audio_mask=False``);
- ``"video"``: float32 (num_frames, height, width, channels) in [0, 1];

and ``label`` an int32 class id (``label_mode="categorical"``: float32 one-hot). With a
``batch_size`` every shape gains a leading batch dimension (the last batch may be
smaller). ``input_names`` renames the keys to a model's inputs, e.g.
``{"text": "text_input"}`` for ``image_text_classifier``.

Unreadable files
----------------
Every file is checked **up front**, before the datasets are built, by decoding it
completely (images, audio, video clips) or reading it as UTF-8 (text; an empty text is
unreadable). Missing modality files (a stem with ``a.png`` but no ``a.txt``) and
ambiguous ones (``a.png`` and ``a.jpg``) count as unreadable too. By default each such
example is dropped and ONE warning (``warnings.warn`` and the ``mmzoo.data`` logger)
counts and names every file; with ``strict=True`` the first one raises
``UnreadableFileError`` naming it. The datasets then only hold files that decoded, so an
epoch does not stop on bad data. Texts are read once, up front. Where TensorFlow decodes
the format, files are decoded again each epoch by graph ops, in parallel
(``map(..., num_parallel_calls=AUTOTUNE)``, no Python and no GIL), after checking a hash
of their bytes against the one taken up front: images, 16-bit PCM WAV
(``tf.audio.decode_wav``, channels averaged; a file at another rate is resampled by the
same soxr call as :func:`mmzoo.data.audio.read_audio`, in ``tf.numpy_function``) and the
frames of frame folders (listed and sampled once, up front). The other formats (FLAC,
OGG, MP3, other WAV encodings, ``.npy`` clips) are read by the Python readers
(``tf.numpy_function``) that raise ``UnreadableFileError``. Either way, a file changed
on disk after loading stops the epoch with an error naming it (graph ops: "... changed
since the loader checked it: PATH"); both give the same arrays. The loaders write no
files (``cache=True`` caches in memory).

Example:
>>> data = from_directory("captioned_images/", image_size=(32, 32), sequence_length=16)
...                                                                 # doctest: +SKIP
>>> train, validation = data                                        # doctest: +SKIP
>>> data.class_names                                                # doctest: +SKIP
['cat', 'dog']
"""

import concurrent.futures
import csv
import dataclasses
import json
import os
import pathlib
import re
import warnings

import keras
import numpy as np
import tensorflow as tf

from mmzoo.data import audio as audio_io
from mmzoo.data.errors import SkippedFiles, UnreadableFileError
from mmzoo.data.image import COLOR_MODES, IMAGE_EXTENSIONS, INTERPOLATIONS, decode_image, fingerprint, read_image
from mmzoo.data.text import SPLITS as TEXT_SPLITS
from mmzoo.data.text import STANDARDIZE, make_text_vectorizer, read_text
from mmzoo.data.video import PADS, VIDEO_EXTENSIONS, frame_plan, read_video
from mmzoo.models.presence import modality_of_input
from mmzoo.validation import (
    check_bool,
    check_choice,
    check_positive_int,
    check_rate,
    check_shape,
)

MISSING_MODES = ("skip", "mask")
MODALITIES = ("image", "text", "audio", "video")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
TEXT_EXTENSIONS = (".txt",)
FRAME_FOLDER_SUFFIX = ".frames"
EXTENSIONS = {
    "image": IMAGE_EXTENSIONS,
    "text": TEXT_EXTENSIONS,
    "audio": AUDIO_EXTENSIONS,
    "video": VIDEO_EXTENSIONS,
}
TEXT_MODES = ("tokens", "raw")
LABEL_MODES = ("int", "categorical")
MANIFEST_FORMATS = ("csv", "jsonl")
MANIFEST_COLUMNS = {"image": "image", "text": "text", "text_path": "text_path", "audio": "audio", "video": "video"}
CIFAR10_CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
VALIDATION_THREADS = 8


@dataclasses.dataclass
class DatasetSplits:
    """What :func:`from_directory` and :func:`from_manifest` return.

    Unpacks as ``train, validation = splits`` (the test split, when one is drawn, is ``splits.test``).

    Attributes:
        train: the training ``tf.data.Dataset`` (shuffled each epoch when ``shuffle``).
        validation: the validation ``tf.data.Dataset`` (fixed order), ``None`` when
            ``validation_split=0``.
        class_names: class names; label ``i`` is ``class_names[i]``.
        vectorizer: the ``TextVectorization`` adapted on the training texts (or the one
            passed in), ``None`` without text or with ``text_mode="raw"``.
        train_examples / validation_examples: the examples kept in each split, in
            dataset order before shuffling: the path without extension of a directory
            example, ``"manifest.csv:LINE"`` for a manifest row.
        skipped: the unreadable files skipped (empty with ``strict=True``).
        test: the test ``tf.data.Dataset`` (fixed order) of ``from_directory(...,
            test_split=...)``, ``None`` without a test split.
        test_examples: the examples kept in the test split, like ``train_examples``.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list
    vectorizer: object = None
    train_examples: list = dataclasses.field(default_factory=list)
    validation_examples: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    test: tf.data.Dataset | None = None
    test_examples: list = dataclasses.field(default_factory=list)

    def __iter__(self):
        return iter((self.train, self.validation))


@dataclasses.dataclass
class _Example:
    name: str
    label: int
    files: dict  # modality -> path (str); "text" may be inline instead
    inline_text: str | None = None
    errors: list = dataclasses.field(default_factory=list)  # found while listing (missing, ambiguous)
    text: str | None = None  # filled in by the check
    absent: list = dataclasses.field(default_factory=list)  # modalities missing under missing="mask"
    image_fingerprint: int = 0  # hash of the image bytes the check decoded
    audio_fingerprint: int = 0  # hash of the audio bytes the check decoded
    audio_in_graph: bool = False  # 16-bit PCM WAV: decoded by graph ops (tf.audio.decode_wav) each epoch
    video_frames: list | None = None  # a frame folder's frame file per output frame ("" black), decoded in graph
    video_fingerprints: dict = dataclasses.field(default_factory=dict)  # frame file -> hash of its bytes
    video_mask: object = None  # float32 (num_frames,) of a frame folder: 1 real frame, 0 padding


@dataclasses.dataclass
class _Options:
    modalities: tuple
    image_size: tuple
    channels: int
    interpolation: str
    text_mode: str
    vectorizer: object
    max_tokens: int
    sequence_length: int
    text_split: str
    standardize: str
    sample_rate: int
    audio_length: int
    audio_mask: bool
    num_frames: int
    frame_size: tuple
    video_pad: str
    validation_split: float
    seed: int
    stratify: bool
    batch_size: int | None
    shuffle: bool
    augment: object
    cache: bool
    label_mode: str
    input_names: dict
    strict: bool
    missing: str = "skip"


def _options(**kw):
    """Check every loader argument before touching the data."""
    if kw["modalities"] is not None:
        modalities = tuple(kw["modalities"]) if not isinstance(kw["modalities"], str) else (kw["modalities"],)
        for modality in modalities:
            check_choice("modalities", modality, MODALITIES)
        if not modalities:
            raise ValueError("`modalities` must name at least one modality. Received: modalities=()")
        kw["modalities"] = tuple(m for m in MODALITIES if m in modalities)
    kw["image_size"] = check_shape("image_size", kw["image_size"], rank=2)
    check_choice("color_mode", kw["color_mode"], tuple(COLOR_MODES))
    kw["channels"] = COLOR_MODES[kw.pop("color_mode")]
    check_choice("interpolation", kw["interpolation"], INTERPOLATIONS)
    check_choice("text_mode", kw["text_mode"], TEXT_MODES)
    check_positive_int("max_tokens", kw["max_tokens"])
    if kw["max_tokens"] < 3:
        raise ValueError(
            f"`max_tokens` must be at least 3 (padding, OOV, one token). Received: max_tokens={kw['max_tokens']}"
        )
    vectorizer = kw["vectorizer"]
    if vectorizer is not None:
        config = vectorizer.get_config() if isinstance(vectorizer, keras.layers.TextVectorization) else {}
        if config.get("output_mode") != "int" or not config.get("output_sequence_length"):
            raise ValueError(
                "`vectorizer` must be an adapted keras.layers.TextVectorization with output_mode='int' and "
                f"an output_sequence_length (e.g. from make_text_vectorizer). Received: {vectorizer!r}"
            )
    check_positive_int("sequence_length", kw["sequence_length"])
    check_choice("text_split", kw["text_split"], TEXT_SPLITS)
    check_choice("standardize", kw["standardize"], STANDARDIZE)
    check_positive_int("sample_rate", kw["sample_rate"])
    check_positive_int("audio_length", kw["audio_length"])
    check_bool("audio_mask", kw["audio_mask"])
    check_positive_int("num_frames", kw["num_frames"])
    kw["frame_size"] = check_shape("frame_size", kw["frame_size"], rank=2)
    check_choice("video_pad", kw["video_pad"], PADS)
    check_rate("validation_split", kw["validation_split"])
    if isinstance(kw["seed"], bool) or not isinstance(kw["seed"], int):
        raise ValueError(f"`seed` must be an integer. Received: seed={kw['seed']!r}")
    check_bool("stratify", kw["stratify"])
    if kw["batch_size"] is not None:
        check_positive_int("batch_size", kw["batch_size"])
    check_bool("shuffle", kw["shuffle"])
    if kw["augment"] is not None and not callable(kw["augment"]):
        raise ValueError(f"`augment` must be callable (e.g. image_augmentation()) or None. Received: {kw['augment']!r}")
    check_bool("cache", kw["cache"])
    check_choice("label_mode", kw["label_mode"], LABEL_MODES)
    names = dict(kw["input_names"] or {})
    for key, value in names.items():
        check_choice("input_names", key, MODALITIES + ("audio_mask",))
        if not isinstance(value, str) or not value:
            raise ValueError(f"`input_names` values must be non-empty strings. Received: {key!r}: {value!r}")
    kw["input_names"] = names
    check_bool("strict", kw["strict"])
    check_choice("missing", kw["missing"], MISSING_MODES)
    return _Options(**kw)


# --- listing ------------------------------------------------------------------------------


def _modality_of(name):
    suffix = os.path.splitext(name)[1].lower()
    for modality, extensions in EXTENSIONS.items():
        if suffix in extensions:
            return modality
    return None


def _missing(base, modality):
    if modality == "text":
        expected = f"{base}.txt"
    else:
        expected = f"{base}.{{{','.join(e[1:] for e in EXTENSIONS[modality])}}}"
        if modality == "video":
            expected = f"{base}{{.npy,{FRAME_FOLDER_SUFFIX}/}}"
    return UnreadableFileError(expected, f"missing {modality} file for this example")


def _list_directory(root, modalities, class_names, follow_links, missing="skip"):
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"`root` must be a directory. Received: root={str(root)!r}")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_names = folders
    else:
        class_names = [str(name) for name in class_names]
        absent = [name for name in class_names if name not in folders]
        if absent or len(set(class_names)) != len(class_names):
            raise ValueError(
                f"`class_names` must be distinct sub-folders of {root}. Received: {class_names!r}; "
                f"sub-folders: {folders!r}"
            )
    if not class_names:
        raise ValueError(f"No class sub-folders in {root}: expected root/<class>/<example files>.")
    wanted = set(modalities or MODALITIES)
    groups = []  # (label, base path, {modality: [paths]})
    found = set()
    for label, name in enumerate(class_names):
        stems = {}
        for dirpath, dirnames, filenames in os.walk(root / name, followlinks=follow_links):
            dirnames.sort()
            clips = [d for d in dirnames if d.lower().endswith(FRAME_FOLDER_SUFFIX)]
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in clips]
            entries = [(d[: -len(FRAME_FOLDER_SUFFIX)], "video", d) for d in clips]
            entries += [(os.path.splitext(f)[0], _modality_of(f), f) for f in filenames if not f.startswith(".")]
            for stem, modality, entry in entries:
                if modality is None or modality not in wanted:
                    continue
                found.add(modality)
                base = os.path.join(dirpath, stem)
                stems.setdefault(base, {}).setdefault(modality, []).append(os.path.join(dirpath, entry))
        groups += [(label, base, stems[base]) for base in sorted(stems)]
    modalities = modalities or tuple(m for m in MODALITIES if m in found)
    if not groups:
        raise ValueError(f"No example files under {root} (looked for {', '.join(modalities or MODALITIES)} files).")
    examples = []
    for label, base, files in groups:
        example = _Example(name=base, label=label, files={})
        for modality in modalities:
            paths = sorted(files.get(modality, []))
            if not paths and missing == "mask":
                example.absent.append(modality)
            elif not paths:
                example.errors.append(_missing(base, modality))
            elif len(paths) > 1:
                listing = ", ".join(os.path.basename(p) for p in paths)
                reason = f"ambiguous: several {modality} files for one example ({listing})"
                example.errors.append(UnreadableFileError(paths[0], reason))
            else:
                example.files[modality] = paths[0]
        examples.append(example)
    return examples, list(class_names), modalities


def _read_manifest(path, manifest_format):
    path = pathlib.Path(path)
    if manifest_format is None:
        suffix = path.suffix.lower()
        manifest_format = "csv" if suffix == ".csv" else "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else None
        if manifest_format is None:
            raise ValueError(f"Cannot tell the manifest format of {path}: pass format='csv' or format='jsonl'.")
    check_choice("format", manifest_format, MANIFEST_FORMATS)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ValueError(f"Cannot read the manifest {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"The manifest {path} is not UTF-8 (byte {error.start}).") from None
    rows = []
    if manifest_format == "csv":
        reader = csv.DictReader(content.splitlines())
        columns = list(reader.fieldnames or [])
        for row in reader:
            rows.append((reader.line_num, {key: value for key, value in row.items() if key is not None}))
    else:
        columns = []
        for line_number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number}: not a JSON object ({error.msg}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_number}: each line must be a JSON object.")
            columns += [key for key in row if key not in columns]
            rows.append((line_number, row))
    if not rows:
        raise ValueError(f"The manifest {path} has no rows.")
    return rows, columns


def _is_blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _integer_label(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    return None


def _list_manifest(path, manifest_format, columns, label_column, modalities, class_names, missing="skip"):
    path = pathlib.Path(path)
    rows, header = _read_manifest(path, manifest_format)
    names = {**MANIFEST_COLUMNS, **(columns or {})}
    for key in names:
        check_choice("columns", key, tuple(MANIFEST_COLUMNS))
    if label_column not in header:
        raise ValueError(f"The manifest {path} has no label column {label_column!r}; columns: {header!r}")
    present = {m for m in MODALITIES if names[m] in header} | ({"text"} if names["text_path"] in header else set())
    if modalities is None:
        modalities = tuple(m for m in MODALITIES if m in present)
        if not modalities:
            raise ValueError(
                f"The manifest {path} has no modality column (looked for {sorted(set(names.values()))}); "
                f"columns: {header!r}"
            )
    else:
        absent = [m for m in modalities if m not in present]
        if absent:
            raise ValueError(f"The manifest {path} has no column for {absent!r}; columns: {header!r}")
    raw_labels = []
    for line_number, row in rows:
        value = row.get(label_column)
        if _is_blank(value):
            raise ValueError(f"{path}:{line_number}: no label in column {label_column!r}.")
        raw_labels.append(value)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        index = {name: i for i, name in enumerate(class_names)}
        labels = []
        for (line_number, _), value in zip(rows, raw_labels):
            key = str(value).strip()
            if key not in index:
                raise ValueError(f"{path}:{line_number}: label {value!r} is not in class_names {class_names!r}.")
            labels.append(index[key])
    elif all(_integer_label(v) is not None for v in raw_labels):
        labels = [_integer_label(v) for v in raw_labels]
        class_names = [str(i) for i in range(max(labels) + 1)]
    else:
        class_names = sorted({str(v).strip() for v in raw_labels})
        labels = [class_names.index(str(v).strip()) for v in raw_labels]
    folder = path.parent
    examples = []
    for (line_number, row), label in zip(rows, labels):
        example = _Example(name=f"{path}:{line_number}", label=label, files={})
        for modality in modalities:
            if modality == "text":
                file_value = row.get(names["text_path"])
                inline = row.get(names["text"])
                if not _is_blank(file_value):
                    example.files["text"] = str(folder / str(file_value).strip())
                elif not _is_blank(inline):
                    example.inline_text = str(inline).strip()
                elif missing == "mask":
                    example.absent.append("text")
                else:
                    missing = f"{path}:{line_number}"
                    example.errors.append(UnreadableFileError(missing, "missing text for this row (empty text)"))
                continue
            value = row.get(names[modality])
            if _is_blank(value) and missing == "mask":
                example.absent.append(modality)
            elif _is_blank(value):
                reason = f"missing {modality} file for this row (column {names[modality]!r} is empty)"
                example.errors.append(UnreadableFileError(f"{path}:{line_number}", reason))
            else:
                example.files[modality] = str(folder / str(value).strip())
        if missing == "mask" and len(example.absent) == len(modalities):
            example.errors.append(UnreadableFileError(f"{path}:{line_number}", "no modality at all in this row"))
        examples.append(example)
    return examples, class_names, modalities


# --- checking files -----------------------------------------------------------------------


def _check_example(example, opts):
    """Read every file of an example; return the errors (the text is kept on the example)."""
    errors = list(example.errors)
    for modality, path in example.files.items():
        try:
            if modality == "image":
                _, example.image_fingerprint = read_image(path, channels=opts.channels, return_fingerprint=True)
            elif modality == "text":
                example.text = read_text(path)
            elif modality == "audio":
                if not os.path.isfile(path):
                    raise UnreadableFileError(path, "no such file")
                found = audio_io.inspect_audio(path, sample_rate=opts.sample_rate)
                if np.size(found.waveform) == 0:
                    raise UnreadableFileError(path, "no audio samples")
                example.audio_fingerprint, example.audio_in_graph = found.fingerprint, found.graph_decodable
            elif modality == "video" and os.path.isdir(path):
                # Decode the frames read_video would, keeping a hash of each: graph ops decode them each epoch.
                files, mask = frame_plan(path, opts.num_frames, opts.video_pad)
                fingerprints = {}
                for frame in dict.fromkeys(f for f in files if f):
                    _, fingerprints[frame] = read_image(
                        frame, opts.frame_size, opts.channels, opts.interpolation, return_fingerprint=True
                    )
                example.video_frames, example.video_fingerprints, example.video_mask = files, fingerprints, mask
            elif modality == "video":
                read_video(path, opts.num_frames, opts.frame_size, opts.channels, opts.video_pad, opts.interpolation)
        except UnreadableFileError as error:
            errors.append(error)
        except Exception as error:  # noqa: BLE001 - a reader failing any other way: name the file
            errors.append(UnreadableFileError(path, f"{type(error).__name__}: {error}"))
    if example.inline_text is not None:
        example.text = example.inline_text
    return errors


def _check_all(examples, opts, skipped):
    """Check every example (in threads); the kept ones, in order. Strict raises the first error."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=min(VALIDATION_THREADS, os.cpu_count() or 1))
    try:
        kept = []
        for example, errors in zip(examples, executor.map(lambda e: _check_example(e, opts), examples)):
            for error in errors:
                skipped.add(error)  # raises under strict=True
            if not errors:
                kept.append(example)
        return kept
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _split(examples, fraction, seed, stratify):
    """Indices of the validation examples: a seeded draw (per class when ``stratify``)."""
    if fraction == 0:
        return set()
    rng = np.random.default_rng(seed)
    labels = np.array([example.label for example in examples])
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify else [np.arange(len(examples))]
    chosen = set()
    for group in groups:
        count = int(np.floor(fraction * len(group) + 0.5))
        chosen.update(int(i) for i in rng.permutation(group)[:count])
    return chosen


# --- datasets -----------------------------------------------------------------------------


def _audio_reader(opts):
    def read(path):
        path = path.decode("utf-8") if isinstance(path, bytes) else str(path)
        if not path:  # a missing modality (missing="mask")
            return np.zeros(opts.audio_length, np.float32), np.zeros(opts.audio_length, np.float32)
        waveform = audio_io.read_audio(path, sample_rate=opts.sample_rate)
        waveform, mask = audio_io.pad_or_trim(np.asarray(waveform, np.float32), opts.audio_length)
        return np.asarray(waveform, np.float32), np.asarray(mask, np.float32)

    return read


def _video_reader(opts):
    def read(path):
        path = path.decode("utf-8") if isinstance(path, bytes) else str(path)
        if not path:  # a missing modality (missing="mask")
            clip = np.zeros((opts.num_frames, *opts.frame_size, opts.channels), np.float32)
            return clip, np.zeros(opts.num_frames, np.float32)
        return read_video(
            path, opts.num_frames, opts.frame_size, opts.channels, opts.video_pad, opts.interpolation, return_mask=True
        )

    return read


def _read_unchanged(path, expected, what):
    """The bytes of ``path`` (graph ops), failing the step, naming the file, when their hash is not ``expected``."""
    contents = tf.io.read_file(path)
    unchanged = tf.debugging.Assert(
        tf.equal(fingerprint(contents), expected), [f"{what} changed since the loader checked it:", path]
    )
    with tf.control_dependencies([unchanged]):
        return tf.identity(contents)


def _switch(index, branches, row):
    """``branches[index](row)``; a single branch is called directly (no conditional in the graph)."""
    if len(branches) == 1:
        return branches[0](row)
    return tf.switch_case(index, [lambda branch=branch: branch(row) for branch in branches])


def _frame_slots(examples, num_frames):
    """The frame folders' plans as columns: each clip's distinct frame files and their hashes in
    slots (``""`` after the last), each output frame's slot (``num_frames``: a black frame),
    and the mask of real frames. Examples without a frame folder get black frames, mask 0."""
    count = len(examples)
    slots = np.full((count, num_frames), b"", dtype=object)
    fingerprints = np.zeros((count, num_frames), np.int64)
    order = np.full((count, num_frames), num_frames, np.int32)
    masks = np.zeros((count, num_frames), np.float32)
    for row, example in enumerate(examples):
        if example.video_frames is None:
            continue
        distinct = list(dict.fromkeys(f for f in example.video_frames if f))
        for slot, frame in enumerate(distinct):
            slots[row, slot] = frame.encode("utf-8")
            fingerprints[row, slot] = example.video_fingerprints[frame]
        order[row] = [distinct.index(f) if f else num_frames for f in example.video_frames]
        masks[row] = example.video_mask
    return slots, fingerprints, order, masks


def _build(examples, opts, class_names, vectorizer, training):
    modalities = opts.modalities
    columns = {"label": np.array([e.label for e in examples], np.int32)}
    for modality in ("image", "audio", "video"):
        if modality in modalities:
            paths = [e.files.get(modality, "") for e in examples]  # "" where missing (missing="mask")
            columns[modality] = np.array([p.encode("utf-8") for p in paths], dtype=object)
    masked = opts.missing == "mask"
    if masked:
        for modality in modalities:
            columns[f"{modality}_present"] = np.array([modality not in e.absent for e in examples], np.float32)
    if "image" in modalities:
        columns["image_fingerprint"] = np.array([e.image_fingerprint for e in examples], np.int64)
    # How each example's audio and video are read: by graph ops where TensorFlow decodes the
    # format (16-bit PCM WAV, frame folders), else by the Python readers (tf.numpy_function).
    audio_readers = video_readers = ()
    if "audio" in modalities:
        kinds = [
            "absent" if "audio" not in e.files else "graph" if e.audio_in_graph else "python" for e in examples
        ]
        audio_readers = tuple(k for k in ("graph", "python", "absent") if k in kinds) or ("absent",)  # or empty
        columns["audio_reader"] = np.array([audio_readers.index(k) for k in kinds], np.int32)
        columns["audio_fingerprint"] = np.array([e.audio_fingerprint for e in examples], np.int64)
    if "video" in modalities:
        kinds = ["python" if "video" in e.files and e.video_frames is None else "graph" for e in examples]
        video_readers = tuple(k for k in ("graph", "python") if k in kinds) or ("python",)  # or empty
        columns["video_reader"] = np.array([video_readers.index(k) for k in kinds], np.int32)
        if "graph" in video_readers:
            slots, slot_fingerprints, order, masks = _frame_slots(examples, opts.num_frames)
            columns.update(video_slots=slots, video_slot_fingerprints=slot_fingerprints, video_order=order,
                           video_mask=masks)
    if "text" in modalities:
        texts = [e.text or "" for e in examples]  # "" (all padding) where missing
        if opts.text_mode == "raw":
            columns["text"] = np.array([t.encode("utf-8") for t in texts], dtype=object)
        elif texts:
            columns["text"] = np.asarray(vectorizer(tf.constant(texts, tf.string)), np.int32)
        else:
            columns["text"] = np.zeros((0, opts.sequence_length), np.int32)
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: tf.constant(v, tf.string) if v.dtype == object else tf.constant(v) for k, v in columns.items()}
    )
    shuffle = training and opts.shuffle and len(examples) > 1
    if shuffle and not opts.cache:
        dataset = dataset.shuffle(len(examples), seed=opts.seed, reshuffle_each_iteration=True)

    read_audio_clip, read_video_clip = _audio_reader(opts), _video_reader(opts)
    num_classes = len(class_names)
    rename = opts.input_names

    def read_image_file(row):
        contents = _read_unchanged(row["image"], row["image_fingerprint"], "Image file")
        return decode_image(contents, opts.image_size, opts.channels, opts.interpolation)

    def audio_in_graph(row):
        contents = _read_unchanged(row["audio"], row["audio_fingerprint"], "Audio file")
        return audio_io.pad_or_trim(audio_io.decode_wav(contents, opts.sample_rate), opts.audio_length)

    def audio_in_python(row):
        waveform, mask = tf.numpy_function(read_audio_clip, [row["audio"]], [tf.float32, tf.float32], stateful=False)
        waveform.set_shape((opts.audio_length,))
        mask.set_shape((opts.audio_length,))
        return waveform, mask

    def no_audio(row):
        return tf.zeros((opts.audio_length,), tf.float32), tf.zeros((opts.audio_length,), tf.float32)

    def video_in_graph(row):
        blank = tf.zeros((*opts.frame_size, opts.channels), tf.float32)
        frames = []
        for slot in range(opts.num_frames):  # the clip's distinct frames, "" after the last
            path, expected = row["video_slots"][slot], row["video_slot_fingerprints"][slot]
            frames.append(tf.cond(
                tf.strings.length(path) > 0,
                lambda path=path, expected=expected: decode_image(
                    _read_unchanged(path, expected, "Video frame"), opts.frame_size, opts.channels, opts.interpolation
                ),
                lambda: blank,
            ))
        clip = tf.gather(tf.stack([*frames, blank]), row["video_order"])  # slot num_frames: a black frame
        clip.set_shape((opts.num_frames, *opts.frame_size, opts.channels))
        return clip, row["video_mask"]

    def video_in_python(row):
        clip, frame_mask = tf.numpy_function(read_video_clip, [row["video"]], [tf.float32, tf.float32], stateful=False)
        clip.set_shape((opts.num_frames, *opts.frame_size, opts.channels))
        frame_mask.set_shape((opts.num_frames,))
        return clip, frame_mask

    audio_branches = {"graph": audio_in_graph, "python": audio_in_python, "absent": no_audio}
    video_branches = {"graph": video_in_graph, "python": video_in_python}

    def load(row):
        features = {}
        if "image" in row and masked:
            features["image"] = tf.cond(
                row["image_present"] > 0,
                lambda: read_image_file(row),
                lambda: tf.zeros((*opts.image_size, opts.channels), tf.float32),
            )
        elif "image" in row:
            features["image"] = read_image_file(row)
        if "text" in row:
            features["text"] = row["text"]
        if "audio" in row:
            waveform, mask = _switch(row["audio_reader"], [audio_branches[k] for k in audio_readers], row)
            features["audio"] = waveform
            if opts.audio_mask:
                features["audio_mask"] = mask
        if "video" in row:
            clip, frame_mask = _switch(row["video_reader"], [video_branches[k] for k in video_readers], row)
            features["video"] = clip
        label = row["label"]
        if opts.label_mode == "categorical":
            label = tf.one_hot(label, num_classes, dtype=tf.float32)
        features = {rename.get(key, key): value for key, value in features.items()}
        if masked:
            for modality in modalities:
                name = rename.get(modality, modality)
                features[f"{modality_of_input(name, {name})}_present"] = row[f"{modality}_present"]
        if "video" in row and opts.video_pad == "zeros":
            # Zero-padded clips end in black frames: "<video input>_mask" (1 real frame, 0 padding)
            # says which, for a model built with video_mask=True (face_recognition) to leave them out.
            # Repeated frames ("repeat") are real frames: no mask.
            features[f"{rename.get('video', 'video')}_mask"] = frame_mask
        return features, label

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if opts.cache:
        dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(len(examples), seed=opts.seed, reshuffle_each_iteration=True)
    if opts.batch_size is not None:
        dataset = dataset.batch(opts.batch_size)
    if training and opts.augment is not None and "image" in modalities:
        image_key = rename.get("image", "image")
        augment = opts.augment

        def augment_images(features, label):
            return {**features, image_key: tf.cast(augment(features[image_key], training=True), tf.float32)}, label

        dataset = dataset.map(augment_images, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.class_names = list(class_names)
    dataset.example_names = [e.name for e in examples]
    return dataset


def _test_and_validation_indices(examples, opts, test_split):
    """``(test indices, validation indices)``: the test split drawn first, then the validation split.

    Both fractions are of all the examples, each drawn with the seed (per class when
    ``stratify``); without a test split the validation draw is exactly the one it always was.
    """
    if not test_split:
        return set(), _split(examples, opts.validation_split, opts.seed, opts.stratify)
    test = _split(examples, test_split, [opts.seed, 1], opts.stratify)  # its own seeded stream
    rest = [i for i in range(len(examples)) if i not in test]
    fraction = opts.validation_split / (1 - test_split)  # of what the test split leaves
    chosen = _split([examples[i] for i in rest], fraction, opts.seed, opts.stratify)
    return test, {rest[j] for j in chosen}


def _load(examples, class_names, opts, what, test_split=0.0):
    """Split, check every file, adapt the vectorizer on the training texts, build the datasets."""
    test_indices, validation_indices = _test_and_validation_indices(examples, opts, test_split)
    skipped = SkippedFiles(strict=opts.strict)
    kept = _check_all(examples, opts, skipped)
    skipped.warn(what)
    kept_ids = {id(e) for e in kept}
    held_out = validation_indices | test_indices
    train = [e for i, e in enumerate(examples) if i not in held_out and id(e) in kept_ids]
    validation = [e for i, e in enumerate(examples) if i in validation_indices and id(e) in kept_ids]
    test = [e for i, e in enumerate(examples) if i in test_indices and id(e) in kept_ids]
    if not train:
        raise ValueError(
            f"No readable training examples ({len(examples)} found, {len(skipped.errors)} unreadable files skipped)."
        )
    vectorizer = None
    if "text" in opts.modalities and opts.text_mode == "tokens":
        vectorizer = opts.vectorizer or make_text_vectorizer(
            [e.text for e in train if e.text is not None],
            max_tokens=opts.max_tokens,
            sequence_length=opts.sequence_length,
            split=opts.text_split,
            standardize=opts.standardize,
        )
        length = vectorizer.get_config().get("output_sequence_length")
        if opts.vectorizer is not None and length != opts.sequence_length:
            opts.sequence_length = length
    train_ds = _build(train, opts, class_names, vectorizer, training=True)
    validation_ds = None
    if opts.validation_split > 0:
        validation_ds = _build(validation, opts, class_names, vectorizer, training=False)
    test_ds = _build(test, opts, class_names, vectorizer, training=False) if test_split else None
    return DatasetSplits(
        train=train_ds,
        validation=validation_ds,
        class_names=list(class_names),
        vectorizer=vectorizer,
        train_examples=[e.name for e in train],
        validation_examples=[e.name for e in validation],
        skipped=skipped.paths,
        test=test_ds,
        test_examples=[e.name for e in test],
    )


def _common(**kw):
    return dict(
        image_size=kw["image_size"], color_mode=kw["color_mode"], interpolation=kw["interpolation"],
        text_mode=kw["text_mode"], vectorizer=kw["vectorizer"], max_tokens=kw["max_tokens"],
        sequence_length=kw["sequence_length"], text_split=kw["text_split"], standardize=kw["standardize"],
        sample_rate=kw["sample_rate"], audio_length=kw["audio_length"], audio_mask=kw["audio_mask"],
        num_frames=kw["num_frames"], frame_size=kw["frame_size"], video_pad=kw["video_pad"],
        validation_split=kw["validation_split"], seed=kw["seed"], stratify=kw["stratify"],
        batch_size=kw["batch_size"], shuffle=kw["shuffle"], augment=kw["augment"], cache=kw["cache"],
        label_mode=kw["label_mode"], input_names=kw["input_names"], strict=kw["strict"], missing=kw["missing"],
    )


def from_directory(
    root,
    *,
    modalities=None,
    class_names=None,
    image_size=(224, 224),
    color_mode="rgb",
    interpolation="bilinear",
    text_mode="tokens",
    vectorizer=None,
    max_tokens=10000,
    sequence_length=256,
    text_split="whitespace",
    standardize="lower_and_strip_punctuation",
    sample_rate=16000,
    audio_length=16000,
    audio_mask=True,
    num_frames=16,
    frame_size=(64, 64),
    video_pad="repeat",
    validation_split=0.2,
    seed=0,
    stratify=True,
    batch_size=32,
    shuffle=True,
    augment=None,
    cache=False,
    label_mode="int",
    input_names=None,
    strict=False,
    follow_links=False,
    test_split=0.0,
    missing="skip",
):
    """Train and validation (and optionally test) datasets from a tree ``root/<class>/<stem>.<ext>``.

    Like ``keras.utils.image_dataset_from_directory`` (sorted class sub-folders, searched
    recursively; a seeded validation split), for several modalities: the files of one
    example share a stem, and their extension gives the modality: ``.png/.jpg/.jpeg``
    image, ``.txt`` text (UTF-8), ``.wav/.flac/.ogg`` audio, ``.npy`` or a ``<stem>.frames/``
    folder of frames video. Other files are ignored. Every example must have every
    modality of ``modalities`` (by default, every modality found anywhere under ``root``).

    Args:
        root: the folder holding one sub-folder per class.
        modalities: the modalities to load (a subset of "image", "text", "audio",
            "video"); ``None``: all those found.
        class_names: sub-folders to use, in label order (``None``: all, sorted).
        image_size: (height, width) of the images; color_mode: "rgb", "grayscale" or "rgba".
        interpolation: resize method for images and video frames.
        text_mode: "tokens" (int ids via a vectorizer adapted on the training split only)
            or "raw" (the text as a ``tf.string``).
        vectorizer: an already adapted ``TextVectorization`` to use instead (not re-adapted;
            e.g. from :func:`mmzoo.data.text.load_text_vectorizer`).
        max_tokens, sequence_length, text_split, standardize: the vectorizer's settings
            (``text_split="character"`` for Chinese).
        sample_rate: audio is resampled to this rate; audio_length: samples per clip.
        audio_mask: also yield ``audio_mask``.
        num_frames, frame_size, video_pad: see :func:`mmzoo.data.video.read_video`.
        validation_split: fraction of the examples in the validation split (0: none).
        seed: seeds the split and the shuffling: the same seed gives the same split.
        stratify: draw the validation fraction within each class.
        batch_size: batch size, or ``None`` for unbatched examples.
        shuffle: reshuffle the training split every epoch.
        augment: a callable applied to training image batches (e.g.
            :func:`mmzoo.data.image.image_augmentation`).
        cache: cache the decoded examples in memory after the first epoch.
        label_mode: "int" (int32 ids) or "categorical" (float32 one-hot).
        input_names: renames of the feature keys, e.g. ``{"text": "text_input"}``.
        strict: raise ``UnreadableFileError`` on the first unreadable or missing file
            instead of skipping its example with one warning.
        follow_links: follow symbolic links to folders.
        missing: what to do with an example that lacks a modality file: ``"skip"`` (default:
            drop it, with the warning about unreadable files) or ``"mask"``: keep it, with zeros
            in place of the missing input (zero token ids, a silent clip, black frames) and
            ``<modality>_present`` flags, float32, 1.0 present and 0.0 missing, for every
            modality (named after the renamed input, less ``_input``: ``text_present`` for
            ``text_input``), the inputs of a model built with ``missing_modalities=True``.
            An unreadable file still drops its example.
        test_split: fraction of the examples held out in a test split (``.test``), drawn
            before the validation split, seeded by ``seed`` and per class when ``stratify``
            like it, and disjoint from the training and validation splits; with a test
            split, ``validation_split`` is a fraction of all the examples too (their sum
            must be below 1). 0 (default): no test split, and the other splits are what
            they are without the argument. The vectorizer never sees the test texts.

    Returns:
        A :class:`DatasetSplits` (``train, validation = ...``; ``.test``, ``.class_names``,
        ``.vectorizer``, ``.skipped``); see the module docstring for what they yield.
    """
    opts = _options(modalities=modalities, **_common(**locals()))
    check_bool("follow_links", follow_links)
    check_rate("test_split", test_split)
    if test_split and validation_split + test_split >= 1:
        raise ValueError(
            "`validation_split` + `test_split` must be below 1 (training examples must be left). "
            f"Received: validation_split={validation_split!r}, test_split={test_split!r}"
        )
    examples, class_names, opts.modalities = _list_directory(
        root, opts.modalities, class_names, follow_links, opts.missing
    )
    return _load(examples, class_names, opts, "files", test_split=test_split)


def from_manifest(
    path,
    *,
    format=None,  # noqa: A002 - the natural name
    columns=None,
    label_column="label",
    modalities=None,
    class_names=None,
    image_size=(224, 224),
    color_mode="rgb",
    interpolation="bilinear",
    text_mode="tokens",
    vectorizer=None,
    max_tokens=10000,
    sequence_length=256,
    text_split="whitespace",
    standardize="lower_and_strip_punctuation",
    sample_rate=16000,
    audio_length=16000,
    audio_mask=True,
    num_frames=16,
    frame_size=(64, 64),
    video_pad="repeat",
    validation_split=0.2,
    seed=0,
    stratify=True,
    batch_size=32,
    shuffle=True,
    augment=None,
    cache=False,
    label_mode="int",
    input_names=None,
    strict=False,
    missing="skip",
):
    """Train and validation datasets from a CSV or JSONL manifest, one example per row.

    Columns (renamable with ``columns={"image": "img", ...}``): ``image``, ``audio``,
    ``video`` hold file paths; ``text`` holds the text inline and ``text_path`` a UTF-8
    text file (used when both are given). Relative paths are resolved against the
    manifest's folder. ``label_column`` holds a class name or an integer id; integer
    labels are kept as they are (``class_names`` = "0".."max"), names are numbered in
    sorted order unless ``class_names`` is given. The modalities are the columns present
    (or ``modalities``); a row with an empty cell for one of them is treated like an
    unreadable file (skipped with the warning, or raised with ``strict=True``), or with
    ``missing="mask"`` a missing modality (see :func:`from_directory`).

    A malformed manifest (not UTF-8, a line that is not a JSON object, a row without a
    label) raises ``ValueError`` naming the line.

    Args:
        path: the ``.csv`` or ``.jsonl`` (``.ndjson``) file.
        format: "csv" or "jsonl"; ``None`` picks it from the extension.
        columns: column names for "image", "text", "text_path", "audio", "video".
        label_column: the label column.
        The other arguments are those of :func:`from_directory`.

    Returns:
        A :class:`DatasetSplits`; examples are named ``"<manifest>:<line>"``.
    """
    opts = _options(modalities=modalities, **_common(**locals()))
    if not isinstance(label_column, str) or not label_column:
        raise ValueError(f"`label_column` must be a column name. Received: label_column={label_column!r}")
    examples, class_names, opts.modalities = _list_manifest(
        path, format, columns, label_column, opts.modalities, class_names, opts.missing
    )
    return _load(examples, class_names, opts, "files")


def cifar10(
    split="train",
    batch_size=64,
    include_presence=False,
    shuffle=None,
    seed=0,
    text_dim=128,
    audio_dim=128,
    data_dir=None,
    download=True,
    shuffle_buffer=10000,
    include_masks=None,
):
    """CIFAR-10 through ``tensorflow_datasets``, shaped for the ``cifar_multimodal`` model.

    Document 000 §5.2 feeds the three-input model images only. CIFAR-10 has no text or
    audio, so ``text`` and ``audio`` are zero vectors (never derived from the label);
    with ``include_presence=True`` the presence flags say so explicitly:
    ``image_present`` 1.0, ``text_present`` and ``audio_present`` 0.0, the inputs of
    ``cifar_multimodal`` built with ``missing_modalities=True``, which then ignores the
    absent text and audio entirely.

    Args:
        split: a TFDS split: "train", "test", or a slice such as "train[:90%]".
        batch_size: batch size, or ``None`` for unbatched examples.
        include_presence: also yield ``image_present`` (1.0), ``text_present`` and
            ``audio_present`` (0.0), float32 scalars per example, for
            ``mmzoo.build("cifar_multimodal", missing_modalities=True)``.
        shuffle: shuffle each epoch (default: for splits starting with "train").
        seed: shuffling seed.
        text_dim, audio_dim: widths of the zero ``text`` and ``audio`` vectors.
        data_dir: the TFDS data folder (``None``: TFDS's default, ~/tensorflow_datasets).
        download: let TFDS download and prepare CIFAR-10 when it is not there (network).
        shuffle_buffer: examples held by the shuffle buffer.
        include_masks: deprecated alias of ``include_presence`` (it yielded ``text_mask``
            and ``audio_mask``, which no model read); warns ``DeprecationWarning``.

    Returns:
        A ``tf.data.Dataset`` of ``({"image": float32 (32, 32, 3) in [0, 1], "text":
        float32 (text_dim,) zeros, "audio": float32 (audio_dim,) zeros[, "image_present":
        1.0, "text_present", "audio_present": float32 0.0]}, int32 label)``, batched when
        ``batch_size``; its ``class_names`` attribute lists the ten classes.
    """
    import tensorflow_datasets as tfds  # imported here: slow to import, only this loader needs it

    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a TFDS split string such as 'train'. Received: split={split!r}")
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
    check_bool("include_presence", include_presence)
    if include_masks is not None:
        check_bool("include_masks", include_masks)
        warnings.warn(
            "cifar10(include_masks=...) is deprecated: use include_presence=..., which yields "
            "image_present, text_present and audio_present (no model read text_mask and audio_mask) "
            "for mmzoo.build('cifar_multimodal', missing_modalities=True).",
            DeprecationWarning,
            stacklevel=2,
        )
        include_presence = include_presence or include_masks
    if shuffle is None:
        shuffle = split.startswith("train")
    check_bool("shuffle", shuffle)
    check_positive_int("text_dim", text_dim)
    check_positive_int("audio_dim", audio_dim)
    check_bool("download", download)
    check_positive_int("shuffle_buffer", shuffle_buffer)
    dataset = tfds.load(
        "cifar10",
        split=split,
        data_dir=data_dir,
        download=download,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )

    def to_features(example):
        features = {
            "image": tf.cast(example["image"], tf.float32) / 255.0,
            "text": tf.zeros((text_dim,), tf.float32),
            "audio": tf.zeros((audio_dim,), tf.float32),
        }
        if include_presence:
            features["image_present"] = tf.constant(1.0, tf.float32)
            features["text_present"] = tf.constant(0.0, tf.float32)
            features["audio_present"] = tf.constant(0.0, tf.float32)
        return features, tf.cast(example["label"], tf.int32)

    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(to_features, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        dataset = dataset.batch(batch_size)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.class_names = list(CIFAR10_CLASS_NAMES)
    return dataset
