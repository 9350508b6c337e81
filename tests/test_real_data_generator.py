"""benchmarks/make_real_data.py: a real multimodal check set (fonts, espeak-ng, a word list).

The generation tests need the Debian packages of ``make system-deps`` (which ``make test``
installs) and are skipped, naming the missing one, without them, except in CI (``CI`` set),
where a missing package fails them; the tests of the one-line errors for missing
packages, of the argument checks and of the refusal of a non-empty folder run anywhere.
"""

import importlib
import os
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Imported by name from benchmarks/ (not from a file spec) so that the generator's spawned
# worker processes, which inherit sys.path, can import it too.
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
make_real_data = importlib.import_module("make_real_data")

SMALL = dict(classes=2, per_class=3, test_per_class=1, seed=7, image_size=48, sample_rate=16000,
             clip_seconds=1.0, quiet=True)
WORDS = ("zero", "one")
MODALITY_FILES = (".png", ".wav", ".txt")


def _system_dependency_missing():
    try:
        make_real_data.find_espeak()
        make_real_data.find_fonts()
        make_real_data.read_word_list()
    except make_real_data.GeneratorError as error:
        return str(error)
    return None


MISSING = _system_dependency_missing()
needs_system_deps = pytest.mark.skipif(MISSING is not None and not os.environ.get("CI"), reason=f"{MISSING}")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "set"
    info = make_real_data.generate(root, jobs=1, **SMALL)
    return root, info


def _stems(folder):
    return sorted({p.stem for p in folder.iterdir()})


@needs_system_deps
def test_layout_shared_stems_and_formats(small_set):
    import soundfile
    from PIL import Image

    root, info = small_set
    assert sorted(p.name for p in root.iterdir()) == ["info.json", "test", "train"]
    assert info["classes"] == list(WORDS)
    assert not list(root.parent.glob("set.tmp-*")), "the staging folder was left behind"
    for split, count in (("train", 3), ("test", 1)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(WORDS)
        for word in WORDS:
            folder = root / split / word
            stems = _stems(folder)
            assert len(stems) == count
            assert sorted(p.name for p in folder.iterdir()) == sorted(s + e for s in stems for e in MODALITY_FILES)
            for stem in stems:
                with Image.open(folder / f"{stem}.png") as image:
                    assert image.format == "PNG" and image.mode == "L" and image.size == (48, 48)
                    pixels = np.asarray(image)
                assert pixels.std() > 5, "a blank image"
                details = soundfile.info(str(folder / f"{stem}.wav"))
                assert (details.samplerate, details.channels, details.frames) == (16000, 1, 16000)
                assert details.subtype == "PCM_16"
                waveform, _ = soundfile.read(folder / f"{stem}.wav", dtype="float32")
                assert 0.01 < np.abs(waveform).max() <= 1.0
                caption = (folder / f"{stem}.txt").read_text(encoding="utf-8")
                tokens = caption.split()
                assert 4 <= len(tokens) <= 6, caption
                assert all(t.isalpha() and t.islower() for t in tokens), caption
                for class_word in make_real_data.CLASS_WORDS:  # no class word, nor a word built on one
                    assert not any(t.startswith(class_word) for t in tokens), caption


@needs_system_deps
def test_same_seed_same_files_whatever_the_jobs(small_set, tmp_path):
    import soundfile

    first, _ = small_set
    second = tmp_path / "again"
    make_real_data.generate(second, jobs=2, **SMALL)  # worker processes: the same bytes
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        a, b = first / relative, second / relative
        if relative.suffix == ".wav":
            np.testing.assert_array_equal(soundfile.read(a)[0], soundfile.read(b)[0])
        else:
            assert a.read_bytes() == b.read_bytes(), relative

    other = tmp_path / "other"
    make_real_data.generate(other, jobs=1, **{**SMALL, "seed": SMALL["seed"] + 1})
    pngs = [p.relative_to(first) for p in first.rglob("*.png")]
    assert any((first / p).read_bytes() != (other / p).read_bytes() for p in pngs)
    texts = [p.relative_to(first) for p in first.rglob("*.txt")]
    assert any((first / p).read_text() != (other / p).read_text() for p in texts)


@needs_system_deps
def test_from_directory_loads_the_set(small_set):
    import mmzoo

    root, _ = small_set
    data = mmzoo.data.from_directory(
        root / "train", modalities=["image", "audio", "text"], image_size=(48, 48), color_mode="grayscale",
        sequence_length=8, validation_split=0.0, batch_size=None, shuffle=False, strict=True,
    )
    assert data.class_names == sorted(WORDS)
    assert data.skipped == []
    examples = list(data.train.as_numpy_iterator())
    assert len(examples) == 6
    labels = sorted(int(label) for _, label in examples)
    assert labels == [0, 0, 0, 1, 1, 1]
    features, _ = examples[0]
    assert features["image"].shape == (48, 48, 1) and 0.0 <= features["image"].min() <= features["image"].max() <= 1.0
    assert features["audio"].shape == (16000,) and features["audio_mask"].shape == (16000,)
    assert features["text"].shape == (8,) and (features["text"] > 0).sum() >= 4


@needs_system_deps
def test_missing_rate_leaves_out_one_modality_file(tmp_path):
    root = tmp_path / "gaps"
    info = make_real_data.generate(root, jobs=1, **{**SMALL, "classes": 1, "test_per_class": 0, "missing_rate": 1.0})
    folder = root / "train" / "zero"
    left_out = []
    for stem in _stems(folder):
        present = sorted(p.suffix for p in folder.glob(f"{stem}.*"))
        assert len(present) == 2, present
        left_out.append(f"train/zero/{stem}{(set(MODALITY_FILES) - set(present)).pop()}")
    assert sorted(left_out) == info["left_out"]


@needs_system_deps
def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    made = []

    def failing(task):
        if len(made) == 2:
            raise KeyboardInterrupt
        made.append(task)
        return real(task)

    real = make_real_data.make_example
    monkeypatch.setattr(make_real_data, "make_example", failing)
    with pytest.raises(KeyboardInterrupt):
        make_real_data.generate(tmp_path / "cut", jobs=1, **SMALL)
    assert list(tmp_path.iterdir()) == []


def _error_line(capsys):
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_refuses_a_non_empty_out_dir(tmp_path, capsys):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert make_real_data.main([str(out), "--per-class", "1", "--test-per-class", "0", "--quiet"]) == 1
    err = _error_line(capsys)
    assert str(out) in err and "not empty" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_missing_espeak_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_real_data.shutil, "which", lambda name, *a, **k: None)
    assert make_real_data.main([str(tmp_path / "out"), "--quiet"]) == 1
    assert "Debian package espeak-ng" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("present, package", [
    ((), "fonts-dejavu-core"),
    (("fonts-dejavu-core", "fonts-dejavu-extra"), "fonts-liberation"),
])
def test_missing_fonts_name_the_package(tmp_path, monkeypatch, capsys, present, package):
    fonts = tmp_path / "fonts"
    for name in present:
        for relative in make_real_data.FONTS[name]:
            (fonts / relative).parent.mkdir(parents=True, exist_ok=True)
            (fonts / relative).write_bytes(b"")
    monkeypatch.setattr(make_real_data, "FONT_DIR", str(fonts))
    monkeypatch.setattr(make_real_data.shutil, "which", lambda name, *a, **k: "/usr/bin/" + name)
    assert make_real_data.main([str(tmp_path / "out"), "--quiet"]) == 1
    assert f"Debian package {package} " in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_missing_word_list_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(make_real_data, "WORD_LIST", str(tmp_path / "no-such-words"))
    with pytest.raises(make_real_data.GeneratorError, match="Debian package wamerican"):
        make_real_data.read_word_list()


@pytest.mark.parametrize("argv, fragment", [
    (["--classes", "11"], "--classes"),
    (["--missing-rate", "1.5"], "--missing-rate"),
    (["--jobs", "0"], "--jobs"),
    (["--per-class", "0", "--test-per-class", "0"], "nothing to generate"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, argv, fragment):
    assert make_real_data.main([str(tmp_path / "out"), *argv]) == 1
    assert fragment in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_caption_never_holds_a_class_word():
    vocabulary = make_real_data.caption_vocabulary(["seven", "sevens", "eighty", "apple", "tree", "ab", "onerous"])
    assert vocabulary == ["apple", "tree"]
    sets, filler = make_real_data.associated_words(
        [f"w{chr(97 + i)}{chr(97 + j)}" for i in range(26) for j in range(26)], ["zero", "one"], seed=1
    )
    assert set(sets["zero"]).isdisjoint(sets["one"]) and len(sets["zero"]) == make_real_data.TEXT["associated"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = make_real_data.make_caption("zero", rng, sets, filler).split()
        assert 4 <= len(words) <= 6 and "zero" not in words
