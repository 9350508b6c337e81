"""The embedded dataset: a small learnable multimodal world, generated in seconds, no files or network.

Every example has a latent class, the label. Each modality renders a latent code with
noise:

- images: a shape (square, disk, bar, column) whose colour (or grey level), kind and
  position depend on the code, on a noisy background;
- token sequences: words from a block of the vocabulary that belongs to the code, mixed
  with random words, then padding (id 0);
- audio: a tone (with a slight chirp) at a code-dependent pitch, as a raw waveform (a 1-D
  input of more than 512 samples) or turned into the features the model takes: a
  log-spectrum vector, frames of log-spectra, or a spectrogram image;
- video: a blob moving in a code-dependent direction;
- other feature vectors: a code prototype plus noise.

What each modality's code is depends on the task (``task=``), each a different reason to
fuse, so that the tasks rank fusion methods (``benchmarks/fusion_tasks.py``):

- ``"redundant"`` (the default): every modality shows the class;
- ``"interaction"``: modality ``m`` shows its own code ``c_m``, drawn uniformly, and the
  label is ``(c_1 + ... + c_M) mod classes`` (for two classes: the parity of one bit per
  modality). Any ``M - 1`` of the modalities are independent of the label, so each
  modality alone is at chance, and so is every additive fusion followed by a linear head
  (a sum of per-modality scores cannot compute a parity); fusions that multiply
  modalities (product, tensor, ...) or a non-linear head can read it;
- ``"unreliable"``: every modality shows the class, but in each example only one
  modality, drawn uniformly, is clean; each other one shows a random class under heavy
  noise (a visibly corrupted rendering: noisy pixels, waveform or features, mostly random
  words). Which modality to trust changes from example to example and can be seen in the
  input. A per-example gate (weights computed from the input) follows it directly; with
  fixed modality weights, each modality's encoder has to learn to silence its own
  corrupted renderings, which takes more examples.

In every task, each modality is also missing from an example with probability
``1 - reliability`` (0.25 by default), independently of the others: all zeros, as a
dropped modality in an ablation. In the redundant task that is what fusion makes up for:
each modality alone is informative but degraded, and with ``M`` modalities the class is
missing from all of them only with probability ``(1 - reliability) ** M``. Pass
``reliability=1.0`` to see the interaction and unreliable tasks alone. With a single
modality every task is the redundant one.

The Bayes-optimal accuracy, when each present, clean modality shows its code
unambiguously (``K`` classes, ``M >= 2`` modalities, ``r`` the reliability):

- ``"redundant"``: ``1 - (1 - r) ** M * (1 - 1 / K)``; one modality alone
  ``r + (1 - r) / K``;
- ``"interaction"``: ``r ** M + (1 - r ** M) / K`` (1 at ``r = 1``); one modality alone,
  or any ``M - 1`` of them, ``1 / K``;
- ``"unreliable"``: ``r + (1 - r) / K``, the clean modality being present (1 at
  ``r = 1``); one modality alone ``r / M + (1 - r / M) / K``.

The renderers add noise, so the accuracy reachable on rendered data is a little below
these (``benchmarks/fusion_tasks.py`` computes it for feature vectors). The same seed
gives the same data; the splits use independent random streams, so they never share
examples.
"""

import numbers
import zlib

import numpy as np

from mmzoo.registry import build, tensor_specs
from mmzoo.validation import check_choice, check_positive_int

SPLITS = ("train", "validation", "test")
TASKS = ("redundant", "interaction", "unreliable")
SAMPLE_RATE = 8000
CLIP_SAMPLES = 2048
WAVEFORM_MIN_SAMPLES = 512  # a 1-D audio input wider than this is a raw waveform, not a feature vector
DEFAULT_CLASSES = 10  # the latent classes of models without a classification output
RETRIEVAL_CLASSES = 64  # many concepts, so that retrieval has to find the right one
PALETTE = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0.5, 0], [0.5, 0, 1]],
    dtype=np.float32,
)
MAX_CHUNK_ELEMENTS = 2**23  # floats generated at once (32 MiB)


def _stable_seed(*parts):
    """A seed from strings and integers that does not change between Python runs."""
    return [zlib.crc32(str(part).encode()) for part in parts]


def _modality(key, shape, dtype):
    """Which renderer draws an input, from its name, rank and dtype."""
    name = key.lower()
    if "int" in dtype:
        return "tokens"
    if "video" in name and len(shape) == 4:
        return "video"
    if "audio" in name:
        return "audio"
    if len(shape) == 3:
        return "image"
    return "vector"


# --- renderers: (codes (n,), shape, rng, classes, fixed) -> (n, *shape) arrays -------------


def _shape_layout(labels):
    """The kind of shape (0-3) and the quadrant it sits in (0-3) for each class label.

    With the colour (``labels % 8``), they give up to 128 classes each their own look:
    for a fixed colour the other two run through all 16 combinations. Both vary among the
    first classes already, so that two classes differ in position too.
    """
    labels = np.asarray(labels)
    kind = (labels + labels // 8) % 4
    quadrant = (labels + (labels % 8) // 2 + labels // 32) % 4
    return kind, quadrant


def _render_image(labels, shape, rng, classes, fixed):
    height, width, channels = shape
    n = len(labels)
    rows = np.arange(height, dtype=np.float32)[None, :, None] / height
    cols = np.arange(width, dtype=np.float32)[None, None, :] / width
    kind, quadrant = _shape_layout(labels)
    centre_r = (0.3 + 0.4 * (quadrant // 2) + rng.uniform(-0.05, 0.05, n)).astype(np.float32)[:, None, None]
    centre_c = (0.3 + 0.4 * (quadrant % 2) + rng.uniform(-0.05, 0.05, n)).astype(np.float32)[:, None, None]
    dr, dc = np.abs(rows - centre_r), np.abs(cols - centre_c)
    masks = np.stack([
        (dr < 0.18) & (dc < 0.18),  # square
        dr**2 + dc**2 < 0.2**2,  # disk
        (dr < 0.07) & (dc < 0.25),  # bar
        (dr < 0.25) & (dc < 0.07),  # column
    ])
    mask = masks[kind, np.arange(n)].astype(np.float32)[..., None]
    colour = _colour(labels, channels)[:, None, None, :]
    background = rng.uniform(0.0, 0.35, size=(n, height, width, channels)).astype(np.float32)
    return np.clip(background * (1 - mask) + colour * mask + rng.normal(0, 0.08, background.shape), 0, 1)


def _colour(indices, channels):
    """A palette colour per index; with other than 3 channels, one of 8 grey levels."""
    if channels == 3:
        return PALETTE[indices % len(PALETTE)] * 0.6 + 0.4
    spread = (3 * indices) % len(PALETTE)  # neighbouring classes get distant grey levels
    grey = 0.4 + 0.6 * spread.astype(np.float32) / (len(PALETTE) - 1)
    return np.repeat(grey[:, None], channels, axis=-1)


def _render_video(labels, shape, rng, classes, fixed):
    frames, height, width, channels = shape
    n = len(labels)
    angle = 2 * np.pi * (labels % 8) / 8
    t = np.linspace(-0.3, 0.3, frames, dtype=np.float32)[None, :, None, None]
    centre_r = 0.5 + t * np.sin(angle)[:, None, None, None]
    centre_c = 0.5 + t * np.cos(angle)[:, None, None, None]
    rows = np.arange(height, dtype=np.float32)[None, None, :, None] / height
    cols = np.arange(width, dtype=np.float32)[None, None, None, :] / width
    mask = ((rows - centre_r) ** 2 + (cols - centre_c) ** 2 < 0.15**2).astype(np.float32)[..., None]
    colour = _colour(labels // 8 + labels, channels)[:, None, None, None, :]
    noise = rng.uniform(0, 0.3, size=(n, frames, height, width, channels)).astype(np.float32)
    return np.clip(noise * (1 - mask) + colour * mask, 0, 1)


def _render_tokens(labels, shape, rng, classes, fixed, vocabulary):
    (length,) = shape
    low, high = vocabulary
    span = max(1, high - low)
    block = max(1, min(20, span // max(classes, 1)))
    n = len(labels)
    class_words = low + (labels[:, None] * block + rng.integers(0, block, size=(n, length))) % span
    random_words = rng.integers(low, high, size=(n, length))
    tokens = np.where(rng.random((n, length)) < 0.6, class_words, random_words)
    lengths = rng.integers(max(1, length // 2), length + 1, size=n)
    tokens[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return tokens.astype(np.int32)


def _tones(labels, rng, classes, samples=CLIP_SAMPLES):
    """A tone per example at a pitch set by its view, log-spaced over four octaves, with noise."""
    n = len(labels)
    frequency = 150.0 * 2.0 ** (4.0 * labels / max(classes, 1)) * rng.uniform(0.97, 1.03, n)
    t = np.arange(samples, dtype=np.float32)[None, :] / SAMPLE_RATE
    phase = 2 * np.pi * (frequency[:, None] * t + 20.0 * t**2)  # a slight upward chirp
    return (np.sin(phase) + rng.normal(0, 0.5, size=(n, samples))).astype(np.float32)


def _log_spectra(waves, frames, bins):
    """``(n, frames, bins)`` log-magnitude spectra of ``frames`` windows, pooled into ``bins`` bands.

    The window is 256 samples, or the power of two that gives at least ``bins`` frequencies
    (every band then has one, e.g. ``pretrained_fusion``'s 224-bin spectrogram).
    """
    window = min(max(256, 1 << int(np.ceil(np.log2(2 * bins)))), waves.shape[1])
    if window // 2 < bins:
        raise ValueError(f"{bins} frequency bands need clips of at least {2 * bins} samples; these have {waves.shape[1]}.")
    starts = np.linspace(0, waves.shape[1] - window, frames).astype(int)
    segments = np.stack([waves[:, s : s + window] for s in starts], axis=1) * np.hanning(window)
    spectrum = np.abs(np.fft.rfft(segments, axis=-1))[..., 1:]
    edges = np.linspace(0, spectrum.shape[-1], bins + 1).astype(int)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
    pooled = np.stack(
        [spectrum[..., a : min(b, spectrum.shape[-1])].mean(-1) for a, b in zip(edges[:-1], edges[1:])], -1
    )
    return np.log1p(pooled).astype(np.float32)


def _render_audio(labels, shape, rng, classes, fixed):
    if len(shape) == 1 and shape[0] > WAVEFORM_MIN_SAMPLES:  # a raw waveform, e.g. fusion_classifier's
        return 0.3 * _tones(labels, rng, classes, samples=shape[0])
    waves = _tones(labels, rng, classes)
    if len(shape) == 1:
        features = _log_spectra(waves, 1, shape[0])[:, 0]
    elif len(shape) == 2:
        features = _log_spectra(waves, shape[0], shape[1])
    else:  # a spectrogram image (bins, frames, channels), low frequencies at the bottom
        spectra = _log_spectra(waves, shape[1], shape[0])
        image = np.flip(np.transpose(spectra, (0, 2, 1)), axis=1)
        return np.repeat((image / max(image.max(), 1e-6))[..., None], shape[2], axis=-1)
    axes = tuple(range(1, features.ndim))
    mean, std = features.mean(axis=axes, keepdims=True), features.std(axis=axes, keepdims=True)
    return (features - mean) / (std + 1e-6)


def _render_vector(labels, shape, rng, classes, fixed):
    prototypes = fixed.normal(size=(classes,) + tuple(shape)).astype(np.float32)
    return prototypes[labels] + rng.normal(0, 1.0, size=(len(labels),) + tuple(shape)).astype(np.float32)


RENDERERS = {
    "image": _render_image,
    "video": _render_video,
    "audio": _render_audio,
    "vector": _render_vector,
}


# --- targets ----------------------------------------------------------------------------


def _class_count(kind, output_shape):
    return 2 if kind == "binary" else output_shape[-1]


def _label_plan(model):
    """How each targeted output reads the latent class, and how many latent classes there are.

    Per-modality heads (outputs named like an input, as in MIMO) and metric-only
    outputs share one label; other classification outputs (tasks) are independent
    digits of the latent class. Regression outputs regress a class prototype.
    """
    targets = model.targets
    outputs = model.output if isinstance(model.output, dict) else {"output": model.output}
    if not isinstance(targets, dict):
        targets = {"output": targets}
    input_keys = set(tensor_specs(model.input, "input"))
    metric_only = set(getattr(model, "metric_only_outputs", ()))
    shared, independent, regression = [], [], []
    for key, kind in targets.items():
        if kind == "regression":
            regression.append(key)
        elif kind is not None:
            (shared if key in input_keys or key in metric_only else independent).append(key)
    radix = {key: _class_count(targets[key], outputs[key].shape) for key in shared + independent}
    plan = {}
    stride = 1
    if shared:
        for key in shared:
            plan[key] = (targets[key], stride, radix[shared[0]])
        stride *= radix[shared[0]]
    for key in independent:
        plan[key] = (targets[key], stride, radix[key])
        stride *= radix[key]
    if not plan:
        stride = RETRIEVAL_CLASSES if not regression else DEFAULT_CLASSES
    for key in regression:
        plan[key] = ("regression", None, tuple(outputs[key].shape[1:]))
    return plan, stride, not isinstance(model.targets, dict)


def _targets(plan, single_output, labels, fixed_rngs):
    y = {}
    for key, (kind, stride, size) in plan.items():
        if kind == "regression":
            prototypes = fixed_rngs[key].normal(size=(labels.max() + 1,) + size).astype(np.float32)
            y[key] = prototypes[labels]
        else:
            digit = (labels // stride) % size
            y[key] = digit.astype(np.float32)[:, None] if kind == "binary" else digit.astype(np.int32)
    if not y:
        return None
    return y["output"] if single_output else y


# --- the dataset -------------------------------------------------------------------------


def _model_of(name_or_model):
    if isinstance(name_or_model, str):
        return build(name_or_model, compile=False)
    if not hasattr(name_or_model, "targets"):
        raise ValueError(
            "`name_or_model` must be a registered model name or a model built by mmzoo. "
            f"Received: {type(name_or_model).__name__}"
        )
    return name_or_model


def _check_dropped(drop_modalities, specs):
    dropped = tuple(drop_modalities)
    unknown = [key for key in dropped if key not in specs]
    if unknown:
        raise ValueError(
            f"Cannot drop {unknown}: the model's inputs are {sorted(specs)}. "
            f"Received: drop_modalities={dropped!r}"
        )
    return dropped


def _latent_codes(task, labels, keys, classes, rng):
    """Per input, the code it shows and whether its rendering is corrupted: ``({key: codes}, {key: corrupted})``.

    ``"redundant"``: every input shows the label. ``"interaction"``: every input but the last
    shows a uniform code; the last shows the code that makes their sum ``labels`` modulo
    ``classes``, so that any ``len(keys) - 1`` codes are uniform and independent of the label.
    ``"unreliable"``: one input per example, drawn uniformly, shows the label; each other one
    shows a uniform random class and is corrupted.
    """
    n, count = len(labels), len(keys)
    never = np.zeros(n, dtype=bool)
    if task == "redundant" or count == 1:
        return {key: labels for key in keys}, {key: never for key in keys}
    if task == "interaction":
        codes = rng.integers(0, classes, size=(n, count))
        codes[:, -1] = (labels - codes[:, :-1].sum(axis=1)) % classes
        return {key: codes[:, index] for index, key in enumerate(keys)}, {key: never for key in keys}
    clean = rng.integers(0, count, size=n)
    decoys = rng.integers(0, classes, size=(n, count))
    corrupted = {key: clean != index for index, key in enumerate(keys)}
    codes = {key: np.where(corrupted[key], decoys[:, index], labels) for index, key in enumerate(keys)}
    return codes, corrupted


# Corrupted renderings ("unreliable"): noise this strong, or this share of the words random.
IMAGE_CORRUPTION_NOISE = 0.5  # on [0, 1] pixels, then clipped
FEATURE_CORRUPTION_NOISE = 1.5  # on prototype + N(0, 1) vectors and standardised audio features
WAVEFORM_CORRUPTION_NOISE = 1.0  # on waveforms of amplitude 0.3
CORRUPTED_WORDS = 0.7


def _corrupt(values, modality, shape, rng, vocabulary):
    """``values`` (a rendering of random classes) made visibly corrupted: heavy noise, or mostly random words."""
    if modality == "tokens":
        low, high = vocabulary
        replace = (rng.random(values.shape) < CORRUPTED_WORDS) & (values != 0)
        return np.where(replace, rng.integers(low, high, size=values.shape), values).astype(values.dtype)
    if modality in ("image", "video") or (modality == "audio" and len(shape) == 3):
        return np.clip(values + rng.normal(0, IMAGE_CORRUPTION_NOISE, values.shape), 0, 1).astype(values.dtype)
    waveform = modality == "audio" and len(shape) == 1 and shape[0] > WAVEFORM_MIN_SAMPLES
    scale = WAVEFORM_CORRUPTION_NOISE if waveform else FEATURE_CORRUPTION_NOISE
    return (values + rng.normal(0, scale, values.shape)).astype(values.dtype)


def _check_task_arguments(task, reliability):
    """ValueError for a task that is not one of :data:`TASKS`, or a reliability outside (0, 1]."""
    check_choice("task", task, TASKS)
    if isinstance(reliability, bool) or not isinstance(reliability, numbers.Real) or not 0 < reliability <= 1:
        raise ValueError(f"`reliability` must be in (0, 1]. Received: reliability={reliability!r}")


def synthetic_arrays(
    name_or_model, n=1024, split="train", seed=0, drop_modalities=(), reliability=0.75, task="redundant"
):
    """The embedded dataset as NumPy arrays ``(inputs, targets)``; see :func:`synthetic`.

    Example:
    >>> from mmzoo.data import synthetic_arrays
    >>> x, y = synthetic_arrays("concat_fusion", n=8, task="interaction")
    >>> sorted(x), y.shape
    (['image_input', 'text_input'], (8, 1))
    """
    x, y, _ = _generate(name_or_model, n, split, seed, drop_modalities, reliability, task)
    return x, y


def _generate(name_or_model, n, split, seed, drop_modalities, reliability, task):
    """``(inputs, targets, latents)``; ``latents`` holds the labels, each input's code, and
    whether it is corrupted or missing (what the tests and the benchmarks check the data against)."""
    model = _model_of(name_or_model)
    check_positive_int("n", n)
    check_choice("split", split, SPLITS)
    _check_task_arguments(task, reliability)
    specs = tensor_specs(model.input, "input")
    dropped = _check_dropped(drop_modalities, specs)
    plan, classes, single_output = _label_plan(model)
    # `<modality>_present` flags (missing_modalities=True) are not modalities: they say which are missing.
    from mmzoo.models.presence import is_presence_flag, modalities_of

    flags = {key: spec for key, spec in specs.items() if is_presence_flag(key, spec[0])}
    specs = {key: spec for key, spec in specs.items() if key not in flags}
    rng = np.random.default_rng(_stable_seed(seed, split, "examples"))
    labels = rng.integers(0, classes, size=n)
    if task == "redundant":
        codes, corrupted = _latent_codes(task, labels, list(specs), classes, rng)
    else:  # a stream of its own, so that the redundant task's data stays as it always was
        codes, corrupted = _latent_codes(task, labels, list(specs), classes,
                                         np.random.default_rng(_stable_seed(seed, split, task, "codes")))
    inputs, missing_of = {}, {}
    for key, (shape, dtype) in specs.items():
        missing = rng.random(n) >= reliability
        fixed = np.random.default_rng(_stable_seed(seed, key, "prototypes"))
        modality = _modality(key, shape, dtype)
        vocabulary = model.token_ranges.get(key, (1, 2)) if modality == "tokens" else None
        if modality == "tokens":
            values = _render_tokens(codes[key], shape, rng, classes, fixed, vocabulary)
        else:
            values = _render_in_chunks(RENDERERS[modality], codes[key], shape, rng, classes, fixed)
        if corrupted[key].any():
            values[corrupted[key]] = _corrupt(values[corrupted[key]], modality, shape, rng, vocabulary)
        values[missing] = 0
        inputs[key] = np.zeros_like(values) if key in dropped else values.astype(dtype)
        missing_of[key] = missing | (key in dropped)
    if flags:
        owners = modalities_of(list(specs))
        for key, (_, dtype) in flags.items():
            gone = [missing_of[k] for k, owner in owners.items() if f"{owner}_present" == key]
            inputs[key] = (~np.any(gone, axis=0)).astype(dtype) if gone else np.ones(n, dtype)
    fixed_rngs = {key: np.random.default_rng(_stable_seed(seed, key, "targets")) for key in plan}
    latents = {"labels": labels, "classes": classes, "codes": codes, "corrupted": corrupted, "missing": missing_of}
    return inputs, _targets(plan, single_output, labels, fixed_rngs), latents


def _render_in_chunks(render, labels, shape, rng, classes, fixed):
    chunk = max(1, MAX_CHUNK_ELEMENTS // int(np.prod(shape)))
    parts = [render(labels[i : i + chunk], shape, rng, classes, fixed) for i in range(0, len(labels), chunk)]
    return np.concatenate(parts).astype(np.float32)


def synthetic(
    name_or_model,
    n=1024,
    split="train",
    seed=0,
    drop_modalities=(),
    batch_size=None,
    shuffle=None,
    reliability=0.75,
    task="redundant",
):
    """The embedded dataset for a model: a ``tf.data.Dataset`` of ``(inputs, targets)``.

    Shaped for any registered model's inputs and outputs: binary and multi-class
    labels, multi-task dicts, regression targets; for models without targets
    (retrieval) the elements are the inputs alone, matching examples across
    modalities sharing one concept (in the redundant task: in the two others the
    modalities of an example show codes of their own).

    Args:
        name_or_model: a registered name (its default shapes) or a built mmzoo model.
        n: number of examples.
        split: ``"train"``, ``"validation"`` or ``"test"``; splits never share examples.
        seed: the same seed gives the same data.
        drop_modalities: input names to zero-fill (ablations, missing-modality tests).
        batch_size: if given, the dataset is batched and prefetched.
        shuffle: shuffle each epoch (default: for the training split only).
        reliability: the probability that a modality is present in an example (else it is
            all zeros for that example), in every task. ``1.0`` shows the interaction and
            unreliable tasks alone: a missing modality there leaves only a guess.
        task: ``"redundant"``, ``"interaction"`` or ``"unreliable"``: what each modality
            shows (see :mod:`mmzoo.data.embedded`).

    Example:
    >>> import mmzoo
    >>> from mmzoo.data import synthetic
    >>> model = mmzoo.build("attention_fusion")
    >>> history = model.fit(synthetic(model, n=256, batch_size=32), epochs=1, verbose=0)
    >>> parity = synthetic(model, n=256, batch_size=32, task="interaction")  # no modality alone tells
    """
    import tensorflow as tf

    x, y = synthetic_arrays(
        name_or_model, n, split, seed, drop_modalities=drop_modalities, reliability=reliability, task=task
    )
    dataset = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle if shuffle is not None else split == "train":
        dataset = dataset.shuffle(min(n, 4096), seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
        dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset
