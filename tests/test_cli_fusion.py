"""From a folder of files to a served model on the command line (issue 14 items 2 and 3).

``mmzoo train fusion_classifier --data DIR`` builds the model for the folder (inputs, classes,
vocabulary), tests it, exports a SavedModel that takes what the loader reads (images in
[0, 1], waveforms, raw strings) and carries its class names and loader settings;
``mmzoo predict EXPORT --data DIR`` reads a folder with those settings. Document models
with MFCC audio inputs train from WAV files, their features computed in the graph.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mmzoo
from mmzoo.cli import main

CLASSES = ("high", "low", "mid")  # sorted: label i is CLASSES[i]
RATE = 8000
SMALL = ["--width", "8", "--filters", "4,8"]


def write_folder(root, per_class=6, classes=CLASSES, rate=RATE, modalities=("png", "wav", "txt"), seed=0):
    """``root/<class>/<i>.png|.wav|.txt``: a bar, a tone and a word that show the class."""
    import soundfile
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            if "png" in modalities:
                image = (rng.random((20, 20, 1)) * 60).astype("uint8")
                image[:, 3 + 5 * label : 6 + 5 * label] = 255
                (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
            if "wav" in modalities:
                t = np.arange(int(rate * rng.uniform(0.3, 0.5))) / rate
                soundfile.write(folder / f"{index}.wav", 0.5 * np.sin(2 * np.pi * 300 * (label + 1) * t), rate)
            if "txt" in modalities:
                (folder / f"{index}.txt").write_text(f"a {name} example number {index}", encoding="utf-8")
    return root


def _mmzoo(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "mmzoo", *args], capture_output=True, text=True, timeout=600, env=env
    )


def _one_line_error(capsys, command="train"):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"mmzoo {command}: error: "), err
    return err


# --- bad input: one-line errors before any work, nothing written -----------------------------


def _train_args(data, tmp_path, *more):
    return ["train", "fusion_classifier", "--data", str(data), "--image-size", "16,16", "--sample-rate",
            str(RATE), "--audio-length", "4000", "--sequence-length", "6", "--epochs", "1", *SMALL,
            "--export-dir", str(tmp_path / "exports"), "--save", str(tmp_path / "model.keras"), *more]


def _nothing_written(tmp_path):
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "model.data.json").exists()
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("*"))


@pytest.mark.parametrize("value", ["0,5", "16", "a,b", "-1,4"])
def test_image_size_must_be_two_positive_integers(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "fusion_classifier", f"--image-size={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --image-size: must be HEIGHT,WIDTH" in err and "Traceback" not in err, err


def test_modalities_the_folder_does_not_have_are_refused(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=2)
    assert main(_train_args(data, tmp_path, "--modalities", "image,video")) == 2
    err = _one_line_error(capsys)
    assert "--modalities names video" in err and "it has image, text, audio" in err, err
    _nothing_written(tmp_path)


def test_unknown_modality_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "fusion_classifier", "--modalities", "image,smell"])
    assert exit_info.value.code == 2
    assert "argument --modalities" in capsys.readouterr().err


def test_a_class_folder_without_a_readable_example_is_refused(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=3)
    broken = data / "zzz"
    broken.mkdir()
    (broken / "0.png").write_bytes(b"not a png")
    (broken / "0.wav").write_bytes(b"not a wav")
    (broken / "0.txt").write_text("fine text", encoding="utf-8")
    assert main(_train_args(data, tmp_path)) == 2
    err = _one_line_error(capsys)
    assert "class folder 'zzz' has no readable example" in err and "0.png" in err, err
    _nothing_written(tmp_path)


def test_an_empty_class_folder_is_refused(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=3)
    (data / "empty").mkdir()
    assert main(_train_args(data, tmp_path)) == 2
    assert "class folder 'empty' has no readable example" in _one_line_error(capsys)
    _nothing_written(tmp_path)


def test_strict_stops_at_a_stem_without_all_its_modalities(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=3)
    (data / "low" / "1.wav").unlink()
    assert main(_train_args(data, tmp_path, "--strict")) == 2
    err = _one_line_error(capsys)
    assert "1.{wav,flac,ogg}" in err and "missing audio file" in err, err
    _nothing_written(tmp_path)


def test_fusion_options_are_refused_for_document_models(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=2)
    assert main(["train", "emotion", "--data", str(data), "--width", "8", "--export-dir", ""]) == 2
    assert "--width applies to fusion_classifier" in _one_line_error(capsys)
    assert main(["train", "emotion", "--data", str(data), "--image-size", "16,16", "--export-dir", ""]) == 2
    assert "emotion takes 48x48 images" in _one_line_error(capsys)


def test_help_documents_skipping_strict_and_resampling(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "skipped with one warning naming every skipped file" in text
    assert "resampled to this rate" in text
    assert "--strict" in text


# --- document models: audio and video inputs fed from files -----------------------------------


def _fed(model, data, **options):
    import argparse

    from mmzoo.cli import _directory_data, _model_feed

    args = argparse.Namespace(data=str(data), test_data=None, test_fraction=None, seed=0, batch_size=4,
                              sample_rate=RATE, audio_length=4000, strict=False, augment=False, model=None,
                              **options)
    return _directory_data(_model_feed(model, args), args, model=model)


def test_mfcc_frame_inputs_and_their_mask_are_computed_from_the_waveforms(tmp_path):
    from helpers import build_small

    data = write_folder(tmp_path / "data", per_class=4)
    model = build_small("emotion", mfcc_frames=20, audio_mask=True)
    fed = _fed(model, data)
    x, y = next(iter(fed.train))
    assert {key: tuple(value.shape[1:]) for key, value in x.items()} == {
        key: tuple(t.shape[1:]) for key, t in model.input.items()}
    assert x["audio"].dtype == "float32" and x["audio_mask"].dtype == "float32"
    mask = np.asarray(x["audio_mask"])
    assert set(np.unique(mask)) <= {0.0, 1.0} and (mask[:, 0] == 1).all() and (mask[:, -1] == 0).all()
    assert model.evaluate(fed.train, verbose=0, return_dict=True)["loss"] > 0  # it runs on the features


def test_a_video_input_is_read_from_npy_clips(tmp_path):
    from helpers import build_small

    data = write_folder(tmp_path / "data", per_class=4)
    rng = np.random.default_rng(0)
    for wav in data.rglob("*.wav"):
        np.save(wav.with_suffix(".npy"), rng.random((5, 12, 12, 3), dtype=np.float32))
    model = build_small("face_recognition", num_faces=3)
    fed = _fed(model, data)
    x, _ = next(iter(fed.train))
    assert {key: tuple(value.shape[1:]) for key, value in x.items()} == {
        key: tuple(t.shape[1:]) for key, t in model.input.items()}


# --- the export carries class names and loader settings --------------------------------------


def test_export_carries_the_class_names_and_loader_options(tmp_path):
    from helpers import build_small

    model = build_small("fusion_classifier", class_names=["b", "a", "c"])
    path = mmzoo.export(model, export_dir=tmp_path, verbose=False, loader_options={"image_size": [16, 16]})
    served = mmzoo.load_saved_model(path)
    assert served.class_names == ["b", "a", "c"]
    assert served.loader_options == {"image_size": [16, 16]}
    plain = mmzoo.load_saved_model(mmzoo.export(build_small("mlp"), export_dir=tmp_path, verbose=False))
    assert plain.class_names is None and plain.loader_options is None
    named = mmzoo.export(build_small("mlp"), export_dir=tmp_path, verbose=False, class_names=["x", "y"])
    assert mmzoo.load_saved_model(named).class_names == ["x", "y"]
    with pytest.raises(ValueError, match="`class_names` must be a list of strings"):
        mmzoo.export(build_small("mlp"), export_dir=tmp_path, verbose=False, class_names="xy")
    with pytest.raises(ValueError, match="`loader_options` must be a JSON-serialisable dict"):
        mmzoo.export(build_small("mlp"), export_dir=tmp_path, verbose=False, loader_options={"x": object()})


# --- end to end -------------------------------------------------------------------------------

# In a new process: the SavedModel fed the raw arrays the loader reads from the files.
SERVE = """
import json, sys
import numpy as np
import mmzoo
from mmzoo.data import from_directory

export, root, out = sys.argv[1:4]
served = mmzoo.load_saved_model(export)
files = from_directory(root, modalities=["image", "audio", "text"], image_size=(16, 16), color_mode="grayscale",
                       sample_rate=8000, audio_length=4000, text_mode="raw", validation_split=0.0, shuffle=False,
                       batch_size=None, class_names=served.class_names)
rows = [x for x, _ in files.train.as_numpy_iterator()]
raw = {"image": np.stack([r["image"] for r in rows]), "audio": np.stack([r["audio"] for r in rows]),
       "audio_mask": np.stack([r["audio_mask"] for r in rows]),
       "text": np.array([r["text"].decode("utf-8") for r in rows], dtype=object)}
assert 0.0 <= raw["image"].min() and raw["image"].max() <= 1.0
np.save(out, served(raw))
print(json.dumps({"class_names": served.class_names, "inputs": {k: [list(s), d] for k, (s, d) in served.inputs.items()},
                  "examples": files.train_examples}))
"""


@pytest.mark.slow
def test_fusion_classifier_from_a_folder_to_a_served_model(tmp_path):
    import keras
    import soundfile

    from mmzoo.cli import load_data_file
    from mmzoo.data import from_directory

    data = write_folder(tmp_path / "data", per_class=6)
    # A stem without its WAV is skipped with one warning; a WAV at 16 kHz is resampled to 8 kHz.
    (data / "mid" / "odd.png").write_bytes((data / "mid" / "0.png").read_bytes())
    (data / "mid" / "odd.txt").write_text("a mid example", encoding="utf-8")
    t = np.arange(6000) / 16000
    soundfile.write(data / "low" / "5.wav", 0.5 * np.sin(2 * np.pi * 600 * t), 16000)
    exports, saved = tmp_path / "exports", tmp_path / "model.keras"
    trained = _mmzoo(
        "train", "fusion_classifier", "--data", str(data), "--modalities", "image,audio,text", "--image-size",
        "16,16", "--color-mode", "grayscale", "--sample-rate", "8000", "--audio-length", "4000",
        "--sequence-length", "6", "--epochs", "2", "--batch-size", "8", "--seed", "1", *SMALL,
        "--export-dir", str(exports), "--save", str(saved), "--verbose", "0",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = trained.stdout
    assert "Traceback" not in trained.stderr
    warnings = [line for line in trained.stderr.splitlines() if "odd.{wav,flac,ogg}" in line]
    assert len(warnings) == 1 and warnings[0].startswith("mmzoo train: warning: Skipped 1 unreadable files"), (
        trained.stderr)
    test_lines = [line for line in out.splitlines() if line.startswith("test: accuracy=")]
    assert len(test_lines) == 1 and ", loss=" in test_lines[0], out
    assert "val_accuracy" in out or "validation" in out, out
    version = exports / "fusion_classifier" / "1"
    assert f"exported and reloaded the SavedModel: {version}" in out, out
    # The Keras model saved, with its class names and vocabulary beside it.
    model = keras.saving.load_model(saved, safe_mode=True)
    stored = load_data_file(saved)
    assert stored.class_names == list(CLASSES) == model.class_names
    assert stored.loader["sample_rate"] == 8000 and stored.loader["image_size"] == [16, 16]
    inputs = {key: list(shape) for key, shape in model.get_config()["inputs"].items()}
    assert inputs == {"image": [16, 16, 1], "audio": [4000], "audio_mask": [4000], "text": [6]}
    # A new process: the SavedModel on raw arrays read from the files.
    reloaded = subprocess.run(
        [sys.executable, "-c", SERVE, str(version), str(data), str(tmp_path / "served.npy")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]
    report = json.loads(reloaded.stdout.strip().splitlines()[-1])
    assert report["class_names"] == list(CLASSES)
    assert report["inputs"] == {"audio": [[None, 4000], "float32"], "audio_mask": [[None, 4000], "float32"],
                                "image": [[None, 16, 16, 1], "float32"], "text": [[None], "string"]}
    files = from_directory(data, modalities=["image", "audio", "text"], image_size=(16, 16),
                           color_mode="grayscale", sample_rate=8000, audio_length=4000, text_mode="raw",
                           validation_split=0.0, shuffle=False, batch_size=None, class_names=list(CLASSES))
    rows = [x for x, _ in files.train.as_numpy_iterator()]
    x = {key: np.stack([r[key] for r in rows]) for key in ("image", "audio", "audio_mask")}
    x["text"] = np.asarray(stored.vectorizers["text"](np.array([r["text"] for r in rows], dtype=object)), "int32")
    expected = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, atol=1e-5)
    # mmzoo predict: one line per example (the skipped stem left out), then the accuracy.
    predicted = _mmzoo("predict", str(exports / "fusion_classifier"), "--data", str(data), "--batch-size", "5")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = predicted.stdout.strip().splitlines()
    assert len(lines) == 18 + 1, predicted.stdout
    by_stem = {}
    for line in lines[:-1]:
        stem, name, probability = line.split("\t")
        by_stem[stem] = (name, float(probability))
    names = [os.path.relpath(e, data) for e in report["examples"]]
    assert sorted(by_stem) == sorted(names)
    for index, stem in enumerate(names):
        name, probability = by_stem[stem]
        assert name == CLASSES[int(expected[index].argmax())]
        assert abs(probability - float(expected[index].max())) < 1e-4
    labels = np.array([CLASSES.index(n.split("/")[0]) for n in names])
    accuracy = float((expected.argmax(-1) == labels).mean())
    assert lines[-1] == f"accuracy: {accuracy:.4f} (18 examples of {len(CLASSES)} classes)", lines[-1]
    # A folder of files without class sub-folders: predictions, no accuracy.
    flat = tmp_path / "flat"
    flat.mkdir()
    for suffix in ("png", "wav", "txt"):
        (flat / f"a.{suffix}").write_bytes((data / "high" / f"0.{suffix}").read_bytes())
    predicted = _mmzoo("predict", str(version), "--data", str(flat))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    (line,) = predicted.stdout.strip().splitlines()
    assert line.split("\t")[:2] == ["a", by_stem["high/0"][0]]


def test_predict_errors_are_one_line(tmp_path, capsys):
    from helpers import build_small

    assert main(["predict", str(tmp_path / "none"), "--data", str(tmp_path)]) == 2
    assert "no SavedModel at" in _one_line_error(capsys, "predict")
    path = mmzoo.export(build_small("mlp"), export_dir=tmp_path / "exports", verbose=False)
    assert main(["predict", path, "--data", str(tmp_path)]) == 2
    assert "has no loader options" in _one_line_error(capsys, "predict")


@pytest.mark.slow
@pytest.mark.parametrize("missing", [None, "mask"])
def test_a_document_model_with_an_mfcc_input_trains_from_wav_files(tmp_path, monkeypatch, capsys, missing):
    import mmzoo.training
    from mmzoo.registry import get_entry

    build = mmzoo.training.fit.build

    def small_build(name, **kwargs):
        return build(name, **{**get_entry(name).test_config, **kwargs})

    monkeypatch.setattr(mmzoo.training.fit, "build", small_build)
    data = write_folder(tmp_path / "data", per_class=6)
    if missing:  # --missing mask: the model takes <modality>_present flags, incomplete examples are kept
        (data / "low" / "2.wav").unlink()
    exports = tmp_path / "exports"
    assert main(["train", "emotion", "--data", str(data), "--sample-rate", "8000", "--audio-length", "4000",
                 "--epochs", "1", "--batch-size", "8", "--export-dir", str(exports), "--verbose", "0"]
                + (["--missing", missing] if missing else [])) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("test: accuracy=")]) == 1, out
    served = mmzoo.load_saved_model(exports / "emotion")
    assert served.inputs["audio"] == ((None, 4000), "float32")  # waveforms: the MFCC runs in the SavedModel
    assert served.inputs["text"] == ((None,), "string")
    assert served.class_names == list(CLASSES)
    assert served.loader_options["sample_rate"] == 8000
    assert served.loader_options.get("missing") == missing
    assert ("audio_present" in served.inputs) == bool(missing)
    assert main(["predict", str(exports / "emotion"), "--data", str(data)]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 19 and lines[-1].startswith("accuracy: ")


def test_missing_mask_trains_exports_and_predicts_examples_that_lack_a_modality(tmp_path, capsys):
    """--missing mask (issue 16): incomplete examples are kept, in training, in the export and in predict."""
    import keras

    data = write_folder(tmp_path / "data", per_class=6)
    for path in (data / "high" / "1.txt", data / "low" / "2.wav", data / "mid" / "3.png"):
        path.unlink()
    assert main(_train_args(data, tmp_path, "--missing", "mask")) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "skipped" not in (captured.out + captured.err).lower(), captured.err
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert model.get_config()["missing_modalities"] is True
    assert sorted(k for k in model.input if k.endswith("_present")) == ["audio_present", "image_present",
                                                                         "text_present"]
    assert main(["predict", str(tmp_path / "exports" / "fusion_classifier"), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 18 + 1, lines  # every example, the three incomplete ones too
    stems = {line.split("\t")[0] for line in lines[:-1]}
    assert {"high/1", "low/2", "mid/3"} <= stems
    assert lines[-1].startswith("accuracy: ") and "(18 examples of 3 classes)" in lines[-1]
    # Without --missing mask the incomplete examples are skipped, as before.
    other = tmp_path / "plain"
    other.mkdir()
    assert main(_train_args(data, other, "--epochs", "1")) == 0
    err = capsys.readouterr().err
    assert "Skipped 3 unreadable files" in err and "missing text file for this example" in err, err


def test_fusion_option_picks_the_fusion_of_a_model_that_has_the_choice(tmp_path, capsys):
    """--fusion NAME: fusion_classifier and the document models whose fusion step is a choice (issue 16)."""
    import keras

    assert main(["train", "cifar_multimodal", "--fusion", "gmu", "--epochs", "1", "--samples", "32",
                 "--batch-size", "16", "--verbose", "0", "--save", str(tmp_path / "model.keras"),
                 "--export-dir", ""]) == 0, (
        capsys.readouterr().err)
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert model.get_config()["fusion"] == "gmu"
    assert any(type(layer).__name__ == "GatedMultimodalUnit" for layer in model.layers)
    capsys.readouterr()
    assert main(["train", "emotion", "--fusion", "sum"]) == 2
    err = _one_line_error(capsys)
    assert "--fusion must be one of concat, weighted, product" in err and "received --fusion 'sum'" in err, err
    assert main(["train", "concat_fusion", "--fusion", "gmu", "--save", str(tmp_path / "other.keras")]) == 2
    err = _one_line_error(capsys)
    assert "ConcatFusionClassifier has no argument `fusion`" in err, err
    assert not (tmp_path / "other.keras").exists()
