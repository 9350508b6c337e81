#!/usr/bin/env python
"""Generate a REAL multimodal check set, offline, from material nobody here drew.

Each example is one English word (a class: "zero" ... "nine") in three modalities that
share a file stem in a class folder, the layout :func:`mmzoo.data.from_directory` reads::

    OUT_DIR/train/<class>/<stem>.png   the word rendered in a real font (Debian font packages)
    OUT_DIR/train/<class>/<stem>.wav   the word spoken by espeak-ng, in noise
    OUT_DIR/train/<class>/<stem>.txt   a short caption of words associated with the class
    OUT_DIR/test/<class>/...           the same for the test split
    OUT_DIR/info.json                  the settings, fonts, voices and caption vocabularies

- image: grayscale PNG (image-size x image-size): the class word in one of 36 font files
  (serif, sans, mono, condensed; regular, bold, italic/oblique), at a random size, position,
  rotation and shear, stroke width, foreground/background intensity (sometimes inverted),
  a background gradient, clutter strokes, Gaussian noise and a partial occlusion (a bar or
  a blob; in a fraction of the examples a large one that hides most of the word).
- audio: 16-bit mono WAV of exactly clip-seconds at sample-rate: the word spoken by
  ``espeak-ng`` with a random English voice and voice variant, pitch, speed and amplitude,
  resampled, placed at a random offset, in white/pink/brown noise at a random SNR (a
  fraction of the clips at a very low SNR).
- text: a caption of 4-6 lowercase words from /usr/share/dict/american-english: some drawn
  from the class's own set of 15 associated words, sometimes one from another class's set,
  the rest random words. The class word itself never appears.

Every modality is drawn from its own random stream given the class (the modalities are
conditionally independent given the class) and each is imperfect alone, so fusing them
helps. The set is deterministic for a seed (per-example streams: the same bytes whatever
``--jobs``). It is written into ``OUT_DIR.tmp-XXXX`` beside OUT_DIR and renamed at the end,
so an interrupted run never leaves a set that looks complete.

Needs the Debian packages espeak-ng, wamerican, fonts-dejavu-core, fonts-dejavu-extra,
fonts-liberation and fonts-freefont-ttf (``make system-deps``), and Pillow, soundfile,
scipy; ``--check`` also needs scikit-learn and librosa. tqdm is used when installed.

Usage::

    python benchmarks/make_real_data.py /tmp/realset --jobs 2 --check
    python benchmarks/make_real_data.py /tmp/realset --check-only   # baselines of an existing set
"""

import argparse
import functools
import io
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CLASS_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("train", "test")
MODALITY_EXTENSIONS = {"image": ".png", "audio": ".wav", "text": ".txt"}

WORD_LIST = "/usr/share/dict/american-english"
WORD_LIST_PACKAGE = "wamerican"
ESPEAK = "espeak-ng"
ESPEAK_PACKAGE = "espeak-ng"
FONT_DIR = "/usr/share/fonts/truetype"
# Debian package -> its font files used here (paths under FONT_DIR). A fixed list rather than
# "whatever is installed", so that the set a seed gives does not depend on other fonts.
FONTS = {
    "fonts-dejavu-core": (
        "dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSansMono.ttf",
        "dejavu/DejaVuSansMono-Bold.ttf", "dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf",
    ),
    "fonts-dejavu-extra": (
        "dejavu/DejaVuSans-Oblique.ttf", "dejavu/DejaVuSans-ExtraLight.ttf", "dejavu/DejaVuSansCondensed.ttf",
        "dejavu/DejaVuSansMono-Oblique.ttf", "dejavu/DejaVuSerif-Italic.ttf",
        "dejavu/DejaVuSerifCondensed-Italic.ttf",
    ),
    "fonts-liberation": tuple(
        f"liberation/Liberation{family}-{style}.ttf"
        for family in ("Sans", "Serif", "Mono")
        for style in ("Regular", "Bold", "Italic", "BoldItalic")
    ),
    "fonts-freefont-ttf": tuple(
        f"freefont/Free{family}{style}.ttf"
        for family in ("Sans", "Serif", "Mono")
        for style in ("", "Bold", "Oblique" if family != "Serif" else "Italic",
                      "BoldOblique" if family != "Serif" else "BoldItalic")
    ),
}
SYSTEM_PACKAGES = (ESPEAK_PACKAGE, WORD_LIST_PACKAGE, *FONTS)
# espeak-ng voice variants (``-v VOICE+VARIANT``) drawn from, when installed ("" = none).
VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "croak", "whisper", "Alex", "Andy", "Annie", "belinda",
    "benjamin", "john", "linda", "max", "paul", "robert", "steph", "quincy",
)

# Difficulty knobs (tuned so that a logistic regression gets roughly: image 40-70%,
# audio 40-75%, text 55-75% on the test split, and clearly more on all three together).
IMAGE = {
    "supersample": 3,             # render at 3x, then downsample (anti-aliasing)
    "size": (0.30, 0.50),         # font size as a fraction of the image side
    "max_width": 0.98,            # the word (after rotation and shear) fits in this fraction of the side
    "jitter": 0.25,               # centre offset, as a fraction of the free room on each side
    "rotation": 8.0,              # degrees, uniform +-
    "shear": 0.30,                # horizontal shear, uniform +-
    "stroke": (0, 1),             # extra stroke width (pixels at the final size), uniform integer
    "invert": 0.10,               # probability of light text on a dark background
    "contrast": (70, 200),        # |foreground - background| in grey levels
    "gradient": 40.0,             # background gradient amplitude, uniform +-
    "clutter": (0, 2),            # number of random clutter strokes
    "noise": (4.0, 25.0),         # Gaussian noise standard deviation, grey levels
    "occlusion": (0.05, 0.25),    # fraction of the word's box an occluder covers (usual case)
    "hard": 0.20,                 # probability of a large occluder
    "hard_occlusion": (0.60, 0.95),
}
AUDIO = {
    "pitch": (15, 85),            # espeak-ng -p (0-99)
    "speed": (120, 230),          # espeak-ng -s, words per minute
    "amplitude": (60, 160),       # espeak-ng -a
    "peak": (0.2, 0.9),           # speech peak level after scaling
    "snr_db": (-4.0, 10.0),       # usual signal-to-noise ratio
    "hard": 0.25,                 # probability of a very low SNR
    "hard_snr_db": (-16.0, -9.0),
}
TEXT = {
    "associated": 15,             # associated words per class
    "length": (4, 6),             # words per caption
    "own": (0.30, 0.50, 0.20),    # P(0, 1, 2 words from the class's own set)
    "other": (0.60, 0.40),        # P(0, 1 words from another class's set)
    "word_length": (3, 10),       # letters of the words used
}


class GeneratorError(Exception):
    """An error reported as one line (a missing system package, a bad argument)."""


# --- system dependencies ---------------------------------------------------------------------


def _missing_package(what, package):
    return GeneratorError(f"{what}: install the Debian package {package} (make system-deps)")


def find_espeak():
    """The espeak-ng executable's path; GeneratorError naming the package if it is absent."""
    path = shutil.which(ESPEAK)
    if path is None:
        raise _missing_package(f"{ESPEAK} not found on PATH", ESPEAK_PACKAGE)
    return path


def find_fonts(font_dir=None):
    """The font files, in a fixed order; GeneratorError naming the package of a missing one."""
    font_dir = FONT_DIR if font_dir is None else font_dir
    paths = []
    for package, files in FONTS.items():
        for name in files:
            path = os.path.join(font_dir, name)
            if not os.path.isfile(path):
                raise _missing_package(f"font file {path} not found", package)
            paths.append(path)
    return paths


def read_word_list(path=None):
    """The lowercase alphabetic words of the word list, sorted and distinct."""
    path = WORD_LIST if path is None else path
    if not os.path.isfile(path):
        raise _missing_package(f"word list {path} not found", WORD_LIST_PACKAGE)
    with open(path, encoding="utf-8", errors="replace") as handle:
        words = {line.strip() for line in handle}
    return sorted(w for w in words if re.fullmatch(r"[a-z]+", w))


def espeak_voices(espeak):
    """English voices (espeak-ng's own, not MBROLA ones that need another program) and variants."""
    def listing(option):
        result = subprocess.run([espeak, option], capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise GeneratorError(f"`{espeak} {option}` failed: {result.stderr.strip() or result.returncode}")
        return [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]

    voices = sorted({row[4] for row in listing("--voices=en") if len(row) >= 5 and not row[4].startswith("mb/")})
    installed = {row[4][3:] for row in listing("--voices=variant") if len(row) >= 5 and row[4].startswith("!v/")}
    variants = [v for v in VARIANTS if v == "" or v in installed]
    if not voices:
        raise _missing_package(f"{espeak} lists no English voice", "espeak-ng-data")
    return voices, variants


def espeak_version(espeak):
    result = subprocess.run([espeak, "--version"], capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"text-to-speech:\s*(\S+)", result.stdout)
    return match.group(1) if match else result.stdout.strip()


# --- the three modalities ----------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _font(path, size):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def render_image(word, rng, fonts, image_size):
    """A grayscale uint8 (image_size, image_size) array: ``word`` rendered and degraded."""
    from PIL import Image, ImageDraw

    k = IMAGE["supersample"]
    side = image_size * k
    font_path = fonts[rng.integers(len(fonts))]
    size = max(4, int(round(rng.uniform(*IMAGE["size"]) * side)))
    stroke = int(rng.integers(IMAGE["stroke"][0], IMAGE["stroke"][1] + 1))
    angle = math.radians(rng.uniform(-IMAGE["rotation"], IMAGE["rotation"]))
    shear = rng.uniform(-IMAGE["shear"], IMAGE["shear"])

    # The word as a white-on-black mask, with a margin for the stroke.
    font = _font(font_path, size)
    left, top, right, bottom = font.getbbox(word, stroke_width=stroke * k)
    pad = 2 * k
    glyphs = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(glyphs).text((pad - left, pad - top), word, fill=255, font=font, stroke_width=stroke * k,
                                stroke_fill=255)
    width, height = glyphs.size

    # Forward map: shear, then rotate, then scale down to fit the canvas.
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    corners = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2.0
    extent = np.abs(corners @ forward.T).max(axis=0) * 2.0  # (w, h) of the transformed box
    scale = min(1.0, IMAGE["max_width"] * side / extent.max())
    forward = forward * scale
    extent = extent * scale
    room = np.maximum(side - extent, 0.0) / 2.0
    centre = side / 2.0 + rng.uniform(-1.0, 1.0, size=2) * room * IMAGE["jitter"]
    inverse = np.linalg.inv(forward)
    # PIL's affine maps each output pixel (x, y) to the input pixel a*x + b*y + c, d*x + e*y + f.
    offset = np.array([width / 2.0, height / 2.0]) - inverse @ centre
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    mask = glyphs.transform((side, side), Image.AFFINE, coefficients, resample=Image.BICUBIC, fillcolor=0)

    # Clutter strokes, drawn at the same resolution, a little fainter than the word.
    clutter = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(clutter)
    for _ in range(int(rng.integers(IMAGE["clutter"][0], IMAGE["clutter"][1] + 1))):
        points = [tuple(rng.uniform(0, side, size=2)) for _ in range(int(rng.integers(2, 4)))]
        draw.line(points, fill=int(rng.integers(90, 200)), width=int(rng.integers(1, 3)) * k)

    def shrink(layer):
        return np.asarray(layer.resize((image_size, image_size), Image.BOX), dtype=np.float64) / 255.0

    text_mask, clutter_mask = shrink(mask), shrink(clutter)

    contrast = rng.uniform(*IMAGE["contrast"])
    background = rng.uniform(0.0, 255.0 - contrast)
    foreground = background + contrast
    if rng.random() < IMAGE["invert"]:
        background, foreground = foreground, background
    yy, xx = np.mgrid[0:image_size, 0:image_size] / max(image_size - 1, 1) - 0.5
    gx, gy = rng.uniform(-IMAGE["gradient"], IMAGE["gradient"], size=2)
    image = background + gx * xx + gy * yy
    ink = np.maximum(text_mask, clutter_mask)
    image = image * (1.0 - ink) + foreground * ink

    # Occlusion: a bar or a blob over part of the word's box, in a random grey.
    hard = rng.random() < IMAGE["hard"]
    cover = rng.uniform(*(IMAGE["hard_occlusion"] if hard else IMAGE["occlusion"]))
    box_w, box_h = extent / k
    cx, cy = centre / k
    occluder = Image.new("L", (image_size * 4, image_size * 4), 0)  # 4x for smooth edges
    draw = ImageDraw.Draw(occluder)
    if rng.random() < 0.5:  # a bar: full height of the word's box, covering a fraction of its width
        bar_w = cover * box_w
        x0 = cx - box_w / 2.0 + rng.uniform(0.0, max(box_w - bar_w, 0.0))
        tilt = rng.uniform(-0.3, 0.3) * box_h
        y0, y1 = cy - box_h / 2.0 - 1.0, cy + box_h / 2.0 + 1.0
        polygon = [(x0 + tilt, y0), (x0 + bar_w + tilt, y0), (x0 + bar_w - tilt, y1), (x0 - tilt, y1)]
        draw.polygon([(4 * x, 4 * y) for x, y in polygon], fill=255)
    else:  # a blob: an ellipse whose area is the fraction of the box
        area = cover * box_w * box_h
        aspect = rng.uniform(0.6, 1.6)
        rx = math.sqrt(area * aspect / math.pi)
        ry = area / (math.pi * rx)
        ox = cx + rng.uniform(-0.3, 0.3) * box_w
        oy = cy + rng.uniform(-0.2, 0.2) * box_h
        draw.ellipse([4 * (ox - rx), 4 * (oy - ry), 4 * (ox + rx), 4 * (oy + ry)], fill=255)
    cover_mask = np.asarray(occluder.resize((image_size, image_size), Image.BOX), dtype=np.float64) / 255.0
    occluder_grey = rng.uniform(0.0, 255.0)
    image = image * (1.0 - cover_mask) + occluder_grey * cover_mask

    image = image + rng.normal(0.0, rng.uniform(*IMAGE["noise"]), size=image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def speak(espeak, word, voice, pitch, speed, amplitude):
    """espeak-ng's waveform (float32) and sample rate for ``word``."""
    import soundfile

    command = [espeak, "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude), "--stdout", word]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    if result.returncode != 0 or len(result.stdout) <= 44:
        message = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        raise GeneratorError(f"`{' '.join(command)}` failed: {message}")
    waveform, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    if waveform.ndim > 1:
        waveform = waveform.mean(axis=1)
    return waveform, rate


def _coloured_noise(rng, n, colour):
    white = rng.normal(0.0, 1.0, size=n)
    if colour == "white":
        return white
    spectrum = np.fft.rfft(white)
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0
    spectrum = spectrum / (np.sqrt(frequencies) if colour == "pink" else frequencies)
    noise = np.fft.irfft(spectrum, n=n)
    return noise / (noise.std() + 1e-12)


def render_audio(word, rng, espeak, voices, variants, sample_rate, clip_samples):
    """A float64 clip of ``clip_samples`` in [-1, 1]: ``word`` spoken, placed, in noise."""
    from scipy.signal import resample_poly

    voice = voices[rng.integers(len(voices))]
    variant = variants[rng.integers(len(variants))]
    pitch = int(rng.integers(AUDIO["pitch"][0], AUDIO["pitch"][1] + 1))
    speed = int(rng.integers(AUDIO["speed"][0], AUDIO["speed"][1] + 1))
    amplitude = int(rng.integers(AUDIO["amplitude"][0], AUDIO["amplitude"][1] + 1))
    waveform, rate = speak(espeak, word, voice + (f"+{variant}" if variant else ""), pitch, speed, amplitude)
    waveform = waveform.astype(np.float64)
    loud = np.flatnonzero(np.abs(waveform) > 0.02 * (np.abs(waveform).max() + 1e-12))
    if loud.size:
        waveform = waveform[loud[0] : loud[-1] + 1]
    if rate != sample_rate:
        g = math.gcd(int(rate), int(sample_rate))
        waveform = resample_poly(waveform, sample_rate // g, rate // g)
    waveform = waveform / (np.abs(waveform).max() + 1e-12) * rng.uniform(*AUDIO["peak"])

    clip = np.zeros(clip_samples)
    if len(waveform) >= clip_samples:  # longer than the clip: a random window of it
        start = int(rng.integers(0, len(waveform) - clip_samples + 1))
        speech = waveform[start : start + clip_samples]
        clip[:] = speech
    else:
        start = int(rng.integers(0, clip_samples - len(waveform) + 1))
        speech = waveform
        clip[start : start + len(waveform)] = waveform
    hard = rng.random() < AUDIO["hard"]
    snr_db = rng.uniform(*(AUDIO["hard_snr_db"] if hard else AUDIO["snr_db"]))
    colour = ("white", "pink", "brown")[rng.integers(3)]
    noise = _coloured_noise(rng, clip_samples, colour)
    speech_power = float(np.mean(speech**2)) + 1e-12
    clip = clip + noise * math.sqrt(speech_power / 10.0 ** (snr_db / 10.0))
    peak = np.abs(clip).max()
    if peak > 0.99:
        clip = clip * (0.99 / peak)
    return clip


def associated_words(vocabulary, class_words, seed):
    """Each class's own set of associated words (disjoint), and the remaining filler words."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7E47]))
    picked = rng.choice(len(vocabulary), size=TEXT["associated"] * len(class_words), replace=False)
    sets = {
        word: sorted(vocabulary[i] for i in picked[c * TEXT["associated"] : (c + 1) * TEXT["associated"]])
        for c, word in enumerate(class_words)
    }
    chosen = set(vocabulary[i] for i in picked)
    return sets, [w for w in vocabulary if w not in chosen]


def caption_vocabulary(words):
    """The caption words: lowercase, alphabetic, of a few letters, never starting with a class
    word (which would leak it: "sevens", "eighty", "nineteen")."""
    low, high = TEXT["word_length"]
    return [w for w in words if low <= len(w) <= high and not any(w.startswith(c) for c in CLASS_WORDS)]


def make_caption(word, rng, sets, filler):
    """4-6 words: 0-2 from the class's own set, maybe one from another class's, random others."""
    n = int(rng.integers(TEXT["length"][0], TEXT["length"][1] + 1))
    own = int(rng.choice(len(TEXT["own"]), p=TEXT["own"]))
    other = int(rng.choice(len(TEXT["other"]), p=TEXT["other"]))
    others = [c for c in sets if c != word]
    chosen = list(rng.choice(sets[word], size=own, replace=False)) if own else []
    for _ in range(other if others else 0):
        chosen.append(sets[others[rng.integers(len(others))]][rng.integers(TEXT["associated"])])
    while len(chosen) < n:
        chosen.append(filler[rng.integers(len(filler))])
    chosen = [str(w) for w in chosen[:n]]
    rng.shuffle(chosen)
    return " ".join(chosen)


# --- one example, and the whole set ---------------------------------------------------------------


def example_seed(seed, split, label, index):
    return np.random.SeedSequence([seed, SPLITS.index(split), label, index])


def make_example(task):
    """Writes one example's files; ``task`` is a picklable dict. Returns the files left out."""
    import soundfile
    from PIL import Image

    streams = example_seed(task["seed"], task["split"], task["label"], task["index"]).spawn(4)
    image_rng, audio_rng, text_rng, missing_rng = (np.random.default_rng(s) for s in streams)
    word, folder, stem = task["word"], pathlib.Path(task["folder"]), task["stem"]
    left_out = None
    if missing_rng.random() < task["missing_rate"]:
        left_out = ("image", "audio", "text")[missing_rng.integers(3)]
    if left_out != "image":
        pixels = render_image(word, image_rng, task["fonts"], task["image_size"])
        Image.fromarray(pixels).save(folder / f"{stem}.png", optimize=False)
    if left_out != "audio":
        clip = render_audio(word, audio_rng, task["espeak"], task["voices"], task["variants"],
                            task["sample_rate"], task["clip_samples"])
        soundfile.write(folder / f"{stem}.wav", clip, task["sample_rate"], subtype="PCM_16", format="WAV")
    if left_out != "text":
        caption = make_caption(word, text_rng, task["sets"], task["filler"])
        (folder / f"{stem}.txt").write_text(caption + "\n", encoding="utf-8")
    return None if left_out is None else str(pathlib.PurePosixPath(
        task["split"], word, stem + MODALITY_EXTENSIONS[left_out]))


def _init_worker(filler):
    global _FILLER
    _FILLER = filler


def _make_example_in_worker(task):
    return make_example({**task, "filler": _FILLER})


class _Progress:
    """tqdm when installed, else a line every 10%."""

    def __init__(self, total, quiet):
        self.total, self.done, self.quiet, self.bar, self.next_report = total, 0, quiet, None, 0.1
        if not quiet:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="ex", desc="examples", file=sys.stderr)
            except ImportError:
                print(f"generating {total} examples", file=sys.stderr)

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif not self.quiet and self.done >= self.next_report * self.total:
            print(f"  {self.done}/{self.total} examples", file=sys.stderr, flush=True)
            self.next_report += 0.1

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _check_out_dir(out_dir):
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise GeneratorError(f"{out_dir} already exists and is not empty: choose a new folder or remove it")


def generate(out_dir, *, classes=10, per_class=300, test_per_class=100, seed=0, image_size=48,
             sample_rate=16000, clip_seconds=1.0, jobs=2, missing_rate=0.0, quiet=False):
    """Writes the set into ``out_dir`` (which must not exist or be empty) and returns its info dict."""
    out_dir = pathlib.Path(out_dir)
    if not 1 <= classes <= len(CLASS_WORDS):
        raise GeneratorError(f"--classes must be between 1 and {len(CLASS_WORDS)}, got {classes}")
    for name, value in (("--per-class", per_class), ("--test-per-class", test_per_class)):
        if value < 0:
            raise GeneratorError(f"{name} must be >= 0, got {value}")
    if per_class + test_per_class < 1:
        raise GeneratorError("--per-class and --test-per-class are both 0: nothing to generate")
    for name, value in (("--image-size", image_size), ("--sample-rate", sample_rate), ("--jobs", jobs)):
        if value < 1:
            raise GeneratorError(f"{name} must be >= 1, got {value}")
    if image_size < 16:
        raise GeneratorError(f"--image-size must be at least 16, got {image_size}")
    if not clip_seconds > 0:
        raise GeneratorError(f"--clip-seconds must be > 0, got {clip_seconds}")
    if not 0.0 <= missing_rate <= 1.0:
        raise GeneratorError(f"--missing-rate must be in [0, 1], got {missing_rate}")
    _check_out_dir(out_dir)
    # Every system dependency is checked before anything is written.
    espeak = find_espeak()
    fonts = find_fonts()
    vocabulary = caption_vocabulary(read_word_list())
    voices, variants = espeak_voices(espeak)

    class_words = list(CLASS_WORDS[:classes])
    sets, filler = associated_words(vocabulary, class_words, seed)
    clip_samples = int(round(clip_seconds * sample_rate))
    counts = {"train": per_class, "test": test_per_class}
    info = {
        "generator": "benchmarks/make_real_data.py",
        "seed": seed, "classes": class_words, "per_class": counts,
        "image": {"size": image_size, "mode": "L", "format": "png"},
        "audio": {"sample_rate": sample_rate, "samples": clip_samples, "subtype": "PCM_16", "format": "wav"},
        "missing_rate": missing_rate,
        "espeak_ng": espeak_version(espeak), "voices": voices, "variants": variants,
        "fonts": [os.path.relpath(f, FONT_DIR) for f in fonts],
        "caption_sets": sets,
        "difficulty": {"image": IMAGE, "audio": AUDIO, "text": TEXT},
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tasks = []
        for split in SPLITS:
            for label, word in enumerate(class_words):
                folder = staging / split / word
                folder.mkdir(parents=True)
                for index in range(counts[split]):
                    tasks.append({
                        "seed": seed, "split": split, "label": label, "index": index, "word": word,
                        "folder": str(folder), "stem": f"{index:05d}", "fonts": fonts, "image_size": image_size,
                        "espeak": espeak, "voices": voices, "variants": variants, "sample_rate": sample_rate,
                        "clip_samples": clip_samples, "sets": sets, "missing_rate": missing_rate,
                    })
        progress = _Progress(len(tasks), quiet)
        left_out = []
        try:
            if jobs == 1:
                for task in tasks:
                    left_out.append(make_example({**task, "filler": filler}))
                    progress.update()
            else:
                import multiprocessing

                # spawn, not fork: safe in a process that already runs threads (TensorFlow, pytest).
                context = multiprocessing.get_context("spawn")
                with context.Pool(jobs, initializer=_init_worker, initargs=(filler,)) as pool:
                    for result in pool.imap_unordered(_make_example_in_worker, tasks, chunksize=8):
                        left_out.append(result)
                        progress.update()
        finally:
            progress.close()
        info["left_out"] = sorted(p for p in left_out if p)
        (staging / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _check_out_dir(out_dir)
        try:
            os.rename(staging, out_dir)  # atomic; replaces an empty folder
        except OSError as error:
            raise GeneratorError(f"cannot move the finished set to {out_dir}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


# --- calibration: logistic regression per modality and on all of them -----------------------------


def _load_split(root):
    """Lists of (label, {modality: path or None}) for one split folder, in sorted order."""
    root = pathlib.Path(root)
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rows = []
    for label, name in enumerate(class_names):
        stems = sorted({p.stem for p in (root / name).iterdir() if p.suffix in MODALITY_EXTENSIONS.values()})
        for stem in stems:
            files = {}
            for modality, extension in MODALITY_EXTENSIONS.items():
                path = root / name / f"{stem}{extension}"
                files[modality] = path if path.exists() else None
            rows.append((label, files))
    return class_names, rows


def _features(rows, image_size, sample_rate):
    import librosa
    import soundfile
    from PIL import Image

    images, audio, texts = [], [], []
    for _, files in rows:
        if files["image"] is not None:
            with Image.open(files["image"]) as image:
                images.append(np.asarray(image.convert("L"), dtype=np.float32).reshape(-1) / 255.0)
        else:
            images.append(np.full(image_size * image_size, np.nan, np.float32))
        if files["audio"] is not None:
            waveform, rate = soundfile.read(files["audio"], dtype="float32")
            mfcc = librosa.feature.mfcc(y=waveform, sr=rate, n_mfcc=20)
            audio.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
        else:
            audio.append(np.full(40, np.nan, np.float32))
        texts.append(files["text"].read_text(encoding="utf-8") if files["text"] is not None else "")
    return np.stack(images), np.stack(audio), texts


def quick_baselines(out_dir, quiet=False):
    """Test accuracy of a scikit-learn logistic regression per modality and on all three.

    Features: image raw pixels; audio MFCC mean and standard deviation over time (librosa);
    text bag of words (CountVectorizer). "all" concatenates the standardised image and audio
    features with the word counts; "late" multiplies the three single-modality models'
    probabilities (what conditional independence makes the natural fusion). A missing file
    (``--missing-rate``) gives the training mean (image, audio) or no words (text).
    Returns ``{"image": acc, "audio": acc, "text": acc, "all": acc, "late": acc, "chance": ...}``.
    """
    import scipy.sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    out_dir = pathlib.Path(out_dir)
    info = json.loads((out_dir / "info.json").read_text(encoding="utf-8"))
    image_size, sample_rate = info["image"]["size"], info["audio"]["sample_rate"]
    start = time.perf_counter()
    class_names, train_rows = _load_split(out_dir / "train")
    _, test_rows = _load_split(out_dir / "test")
    y_train = np.array([label for label, _ in train_rows])
    y_test = np.array([label for label, _ in test_rows])
    train_image, train_audio, train_text = _features(train_rows, image_size, sample_rate)
    test_image, test_audio, test_text = _features(test_rows, image_size, sample_rate)

    def standardise(train, test):
        mean = np.nanmean(train, axis=0)
        train, test = np.where(np.isnan(train), mean, train), np.where(np.isnan(test), mean, test)
        scaler = StandardScaler().fit(train)
        return scaler.transform(train), scaler.transform(test)

    features = {
        "image": standardise(train_image, test_image),
        "audio": standardise(train_audio, test_audio),
    }
    vectorizer = CountVectorizer(token_pattern=r"[a-z]+", binary=True).fit(train_text)
    features["text"] = (vectorizer.transform(train_text), vectorizer.transform(test_text))
    # Regularisation per modality, chosen once for this feature size (no search on the test split).
    strengths = {"image": 0.002, "audio": 1.0, "text": 1.0}

    results, probabilities = {"chance": 1.0 / len(class_names)}, {}
    for modality, (train, test) in features.items():
        model = LogisticRegression(C=strengths[modality], max_iter=3000, tol=1e-3).fit(train, y_train)
        results[modality] = float(model.score(test, y_test))
        probabilities[modality] = model.predict_log_proba(test)

    # One model on the concatenation; scaling a block by sqrt(C_m) under C=1 gives it the same
    # regularisation as its single-modality model (the 2304 pixels would otherwise swamp the rest).
    def concatenate(part):
        return scipy.sparse.hstack(
            [scipy.sparse.csr_matrix(features[m][part] * math.sqrt(strengths[m])) for m in features]
        ).tocsr()

    model = LogisticRegression(C=1.0, max_iter=3000, tol=1e-3).fit(concatenate(0), y_train)
    test_all = concatenate(1)
    results["all"] = float(model.score(test_all, y_test))
    results["late"] = float(np.mean(np.argmax(sum(probabilities.values()), axis=1) == y_test))
    results["train_examples"], results["test_examples"] = len(y_train), len(y_test)
    results["seconds"] = round(time.perf_counter() - start, 1)
    if not quiet:
        print(f"logistic regression, test accuracy ({len(y_train)} train / {len(y_test)} test examples, "
              f"chance {results['chance']:.3f}):")
        for key in ("image", "audio", "text", "all", "late"):
            label = {"all": "all (concatenated)", "late": "all (product of the 3)"}.get(key, key)
            print(f"  {label:24s} {results[key]:.3f}")
    return results


# --- command line -------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="the folder to create (must not exist, or be empty)")
    parser.add_argument("--classes", type=int, default=10, help="number of classes, 1-10 (default 10)")
    parser.add_argument("--per-class", type=int, default=300, help="training examples per class (300)")
    parser.add_argument("--test-per-class", type=int, default=100, help="test examples per class (100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--clip-seconds", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--missing-rate", type=float, default=0.0,
                        help="fraction of examples that lose one random modality file (default 0)")
    parser.add_argument("--check", action="store_true",
                        help="then print logistic-regression test accuracies per modality and fused")
    parser.add_argument("--check-only", action="store_true",
                        help="only print those accuracies for an existing set in OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.check_only:
            if not (pathlib.Path(args.out_dir) / "info.json").is_file():
                raise GeneratorError(f"{args.out_dir} holds no generated set (no info.json)")
            quick_baselines(args.out_dir)
            return 0
        start = time.perf_counter()
        info = generate(
            args.out_dir, classes=args.classes, per_class=args.per_class, test_per_class=args.test_per_class,
            seed=args.seed, image_size=args.image_size, sample_rate=args.sample_rate,
            clip_seconds=args.clip_seconds, jobs=args.jobs, missing_rate=args.missing_rate, quiet=args.quiet,
        )
        total = len(info["classes"]) * sum(info["per_class"].values())
        print(f"wrote {total} examples ({len(info['classes'])} classes) to {args.out_dir} "
              f"in {time.perf_counter() - start:.1f} s")
        if args.check:
            quick_baselines(args.out_dir)
    except GeneratorError as error:
        print(f"make_real_data.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
