"""Examples per second: ``from_directory`` on real-format files against what training ``fusion_classifier`` consumes.

The benchmark writes a temporary folder of real-format files (deleted at the end), one
class sub-folder per class, one example per stem, at the sizes ``fusion_classifier``'s
defaults use:

- image: ``<stem>.png``, 8-bit grayscale 48x48 (a bright square whose corner depends on
  the class, in noise);
- audio: ``<stem>.wav``, 16-bit PCM mono, 1 s at 16 kHz (a tone whose pitch depends on the
  class, in noise);
- text: ``<stem>.txt``, a UTF-8 caption of six words, two of them the class's;
- video: ``<stem>.frames/frame_<i>.png``, ``--frames`` grayscale 48x48 PNG frames (a square
  moving in a class-dependent direction). fusion_classifier has no default video input;
  the frames take the image's size.

For each modality mix (``--mixes``: ``image``, ``image+audio``, ``image+audio+text``,
``video``), ``from_directory(folder, modalities=MIX, image_size=(48, 48),
color_mode="grayscale", audio_length=16000, sequence_length=32, num_frames=F,
frame_size=(48, 48), validation_split=0, batch_size=B)`` builds the training dataset
(the up-front check of every file is not timed), and ``mmzoo.train("fusion_classifier",
splits, epochs=1, verbose=0, early_stopping_patience=None, reduce_lr_patience=None)``
builds, adapts and trains the model once (untimed). The training examples are then also
materialised once into NumPy arrays, and three sides are timed, interleaved (the order
rotating each round), after one untimed warm-up each, ``--repeats`` rounds, medians:

- loader: one epoch of ``splits.train`` iterated with no model (read, check, decode,
  resample, pad, batch, prefetch) -> examples/s;
- training from memory: ``model.fit`` for one epoch on the same examples held in memory
  (``from_tensor_slices(arrays)`` -> ``cache`` -> ``shuffle`` -> ``batch`` -> ``prefetch``)
  -> samples/s, what training consumes when the input costs nothing;
- training from files: ``model.fit`` for one epoch on ``splits.train`` itself (uncached)
  -> samples/s.

Two rows per mix, named with ``loader``:

- ``loader MIX: from_directory vs fusion_classifier training``: ours = the loader's
  examples/s, baseline = training from memory, ratio = the loader's headroom (target:
  at least 2, the loader never starves training);
- ``loader MIX: training from files vs from memory``: ratio = the samples/s of training
  from the loader over training from memory (target: at least 0.95, i.e. at most 5%
  slower). Either target met means the loader does not hold training back.

All of it runs on the same CPU cores: the loader's decoding competes with the model for
them, so the second ratio also shows what the loader's CPU time costs training.

    python benchmarks/loader.py                 # 384 examples, 5 repeats, all four mixes (about 3-4 minutes)
    python benchmarks/loader.py --quick         # 256 examples, 3 repeats (about 2 minutes)
    python benchmarks/loader.py --mixes image+audio --examples 1024 --json rows.json
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import interleaved, median, run_benchmark, speed_row  # noqa: E402

MIXES = ("image", "image+audio", "image+audio+text", "video")
IMAGE_SIZE = (48, 48)
SAMPLE_RATE = 16000
AUDIO_SECONDS = 1.0
SEQUENCE_LENGTH = 32
WORDS = ("red", "green", "blue", "black", "white", "small", "large", "round", "square", "bright",
         "dark", "loud", "quiet", "fast", "slow", "near", "far", "soft", "hard", "warm")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mixes", nargs="+", default=list(MIXES), choices=MIXES, help="modality mixes")
    parser.add_argument("--examples", type=int, default=384, help="training examples (default 384)")
    parser.add_argument("--classes", type=int, default=4, help="classes (default 4)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video clip (default 8)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="256 examples, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.repeats = min(args.examples, 256), min(args.repeats, 3)
    for name in ("examples", "classes", "frames", "batch_size", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.examples < args.classes:
        parser.error("--examples must be at least --classes")
    return args


# --- the files --------------------------------------------------------------------------------


def _square(rng, size, corner, brightness=0.8):
    image = rng.normal(0.25, 0.08, size)
    height, width = size
    side = height // 3
    top = (corner // 2) * (height - side)
    left = (corner % 2) * (width - side)
    image[top : top + side, left : left + side] += brightness
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def write_files(root, examples, classes, frames, mixes, seed=0):
    """Write ``examples`` examples (round-robin over ``classes``) of the modalities ``mixes`` need."""
    import soundfile
    from PIL import Image

    modalities = {m for mix in mixes for m in mix.split("+")}
    rng = np.random.default_rng(seed)
    samples = int(SAMPLE_RATE * AUDIO_SECONDS)
    time = np.arange(samples) / SAMPLE_RATE
    for index in range(examples):
        label = index % classes
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, f"example_{index:05d}")
        if "image" in modalities:
            Image.fromarray(_square(rng, IMAGE_SIZE, label % 4), mode="L").save(stem + ".png")
        if "audio" in modalities:
            tone = 0.3 * np.sin(2 * np.pi * (220 * (1 + label)) * time) + rng.normal(0, 0.1, samples)
            soundfile.write(stem + ".wav", np.clip(tone, -1, 1).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        if "text" in modalities:
            words = list(rng.choice(WORDS, 4)) + [WORDS[(2 * label) % len(WORDS)], WORDS[(2 * label + 1) % len(WORDS)]]
            rng.shuffle(words)
            with open(stem + ".txt", "w", encoding="utf-8") as handle:
                handle.write(" ".join(words) + "\n")
        if "video" in modalities:
            clip = stem + ".frames"
            os.makedirs(clip, exist_ok=True)
            height, width = IMAGE_SIZE
            side = height // 4
            for frame in range(frames):
                image = rng.normal(0.25, 0.08, IMAGE_SIZE)
                step = frame * (height - side) // max(frames - 1, 1)
                top, left = [(step, step), (step, 0), (0, step), (height - side - step, step)][label % 4]
                image[top : top + side, left : left + side] += 0.8
                pixels = np.clip(image * 255, 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(os.path.join(clip, f"frame_{frame}.png"))


# --- the measurements -------------------------------------------------------------------------


def load_splits(root, mix, args):
    import mmzoo

    return mmzoo.data.from_directory(
        root,
        modalities=tuple(mix.split("+")),
        image_size=IMAGE_SIZE,
        color_mode="grayscale",
        sample_rate=SAMPLE_RATE,
        audio_length=int(SAMPLE_RATE * AUDIO_SECONDS),
        sequence_length=SEQUENCE_LENGTH,
        num_frames=args.frames,
        frame_size=IMAGE_SIZE,
        validation_split=0.0,
        batch_size=args.batch_size,
        seed=0,
    )


def in_memory(dataset, batch_size, seed=0):
    """The dataset's examples materialised once (``mmzoo.data.arrays.to_arrays``), then
    train_throughput's pipeline: cached, reshuffled each epoch, batched, prefetched."""
    from mmzoo.data.arrays import to_arrays
    from train_throughput import pipeline

    features, labels = to_arrays(dataset)
    return pipeline(features, labels, batch_size, seed), len(labels)


def bench_mix(root, mix, args, log=print):
    import keras

    import mmzoo

    keras.utils.set_random_seed(0)
    splits = load_splits(root, mix, args)
    history = mmzoo.train("fusion_classifier", splits, epochs=1, verbose=0,
                          early_stopping_patience=None, reduce_lr_patience=None)
    model = history.model
    memory, examples = in_memory(splits.train, args.batch_size)

    def loader_epoch():
        for _ in splits.train:
            pass

    sides = {
        "loader": loader_epoch,
        "training from memory": lambda: model.fit(memory, epochs=1, shuffle=False, verbose=0),
        "training from files": lambda: model.fit(splits.train, epochs=1, shuffle=False, verbose=0),
    }
    times = interleaved(sides, args.repeats)
    rates = {side: examples / median(times[side]) for side in sides}
    keras.backend.clear_session()
    for side in sides:
        log(f"  {mix:17s} {side:21s} {rates[side]:8.1f} examples/s  [{', '.join(f'{t:.3f}' for t in times[side])}] s")
    return [
        speed_row(f"loader {mix}: from_directory vs fusion_classifier training", rates["loader"],
                  rates["training from memory"], "examples/s"),
        speed_row(f"loader {mix}: training from files vs from memory", rates["training from files"],
                  rates["training from memory"], "samples/s"),
    ]


def measure(args, log=print):
    root = tempfile.mkdtemp(prefix="mmzoo-loader-bench-")
    try:
        write_files(root, args.examples, args.classes, args.frames, args.mixes)
        log(
            f"loader against training: {args.examples} examples ({args.classes} classes) of 48x48 grayscale PNG, "
            f"1 s 16 kHz 16-bit WAV, 6-word TXT, {args.frames}-frame PNG folders; batch {args.batch_size}; "
            f"median of {args.repeats} interleaved rounds after a warm-up; loader: one epoch of "
            "from_directory's training dataset, no model; training: fusion_classifier.fit, one epoch, "
            "from the examples in memory and from the loader"
        )
        rows = []
        for mix in args.mixes:
            rows += bench_mix(root, mix, args, log)
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None):
    footnote = "ratio = ours / baseline; headroom rows: target >= 2; files vs memory rows: target >= 0.95"
    return run_benchmark(parse_args, measure, footnote, argv)


if __name__ == "__main__":
    main()
