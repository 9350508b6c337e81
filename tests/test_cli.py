"""The `mmzoo` command line: listing, cards, and one-line errors with a non-zero exit."""

import subprocess
import sys

import pytest

import mmzoo
from helpers import free_ports, worker_env
from mmzoo.cli import main


def test_list_prints_every_model_with_its_summary(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == mmzoo.list_models()


def test_list_filters_with_a_pattern(capsys):
    assert main(["list", "mha*"]) == 0
    assert capsys.readouterr().out.split()[0] == "mha_fusion"


def test_info_prints_the_card(capsys):
    assert main(["info", "concat_fusion", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "source: document 003 program 1" in out and "image_input: shape (128,), float32" in out
    assert "Total params" in out


def test_unknown_model_is_one_line_and_exit_code_2(capsys):
    assert main(["info", "concat_fusoin"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Did you mean 'concat_fusion'" in err


def test_bad_command_exits_non_zero():
    with pytest.raises(SystemExit) as exit_info:
        main(["trian"])
    assert exit_info.value.code == 2


def test_python_dash_m_mmzoo_runs():
    result = subprocess.run(
        [sys.executable, "-m", "mmzoo", "list", "attention_*"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("attention_fusion")


def test_readme_model_table_is_the_registry():
    from pathlib import Path

    from mmzoo.cli import model_table

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- models -->\n")[1].split("\n<!-- /models -->")[0]
    assert table == model_table(), "README is stale: paste the output of `python -m mmzoo list --markdown`"


def _mmzoo(*args, cwd=None):
    import os

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "mmzoo", *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env
    )


@pytest.mark.slow
def test_train_evaluate_export_end_to_end(tmp_path):
    exports, saved = tmp_path / "exports", str(tmp_path / "model.keras")
    stale = tmp_path / "model.data.json"  # an earlier directory run's class names and vocabulary
    stale.write_text('{"format": "mmzoo.cli.data", "version": 1}', encoding="utf-8")
    trained = _mmzoo(
        "train", "concat_fusion", "--samples", "256", "--epochs", "2", "--batch-size", "32",
        "--export-dir", str(exports), "--save", saved, "--verbose", "0",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "test: accuracy=" in trained.stdout
    assert f"exported and reloaded the SavedModel: {exports / 'concat_fusion' / '1'}" in trained.stdout
    assert not stale.exists()  # it described another model
    evaluated = _mmzoo("evaluate", saved, "--samples", "128")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "concat_fusion test: accuracy=" in evaluated.stdout
    exported = _mmzoo("export", saved, "--export-dir", str(exports))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert str(exports / "concat_fusion" / "2") in exported.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "concat_fusoin"], "Did you mean 'concat_fusion'"),
        (["train", "concat_fusion", "--data", "/no/such/dir"], "--data must be 'synthetic', 'cifar10' or a directory"),
        (["evaluate", "/no/such/model.keras"], "no model file at /no/such/model.keras"),
        (["export", "/no/such/model.keras"], "no model file"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    "argv", [["train", "mlp", "--epochs", "0"], ["train", "mlp", "--mixed-precision", "fp8"], ["list", "--bogus"]]
)
def test_malformed_options_exit_2_without_a_traceback(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_directory_of_unsupported_inputs_is_refused(tmp_path, capsys):
    assert main(["train", "mimo", "--data", str(tmp_path)]) == 2
    assert "cannot be read from a directory" in capsys.readouterr().err


# --- directory data: a held-out test split, the vocabulary and class names kept ------------

WORDS = {"cat": ("whiskers", "purr", "meow", "fur"), "dog": ("bark", "fetch", "wag", "bone")}


def write_class_folders(root, per_class, seed=0, classes=("cat", "dog")):
    """``root/<class>/exN.png`` (a tiny image, coloured by class) and ``exN.txt`` (class words)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        words = WORDS.get(name, ("moo", "grass", "milk", "barn"))
        for index in range(per_class):
            image = rng.integers(0, 60, (8, 8, 3), dtype=np.uint8)
            image[..., label % 3] += 180
            (folder / f"ex{index}.png").write_bytes(tf.io.encode_png(image).numpy())
            text = " ".join(rng.choice(words, 3)) + f" w{seed}{name}{index}"  # a word of its own
            (folder / f"ex{index}.txt").write_text(text, encoding="utf-8")
    return root


def test_from_directory_draws_a_seeded_stratified_test_split_disjoint_from_the_others(tmp_path):
    from collections import Counter

    from mmzoo.data import from_directory

    root = write_class_folders(tmp_path / "data", per_class=10)
    options = dict(modalities=["image", "text"], image_size=(8, 8), sequence_length=6, batch_size=None)
    splits = from_directory(root, validation_split=0.2, test_split=0.2, seed=3, **options)
    train, validation, test = (set(splits.train_examples), set(splits.validation_examples), set(splits.test_examples))
    assert not train & validation and not train & test and not validation & test
    assert len(train | validation | test) == 20
    assert Counter(name.split("/")[-2] for name in test) == {"cat": 2, "dog": 2}  # stratified
    assert Counter(name.split("/")[-2] for name in validation) == {"cat": 2, "dog": 2}  # of all examples
    assert len(list(splits.test)) == 4 and splits.test.example_names == splits.test_examples
    again = from_directory(root, validation_split=0.2, test_split=0.2, seed=3, **options)
    assert (again.train_examples, again.validation_examples, again.test_examples) == (
        splits.train_examples, splits.validation_examples, splits.test_examples)
    other = from_directory(root, validation_split=0.2, test_split=0.2, seed=4, **options)
    assert other.test_examples != splits.test_examples
    # The vocabulary is adapted on the training texts only.
    vocabulary = set(splits.vectorizer.get_vocabulary())

    def own_word(name):  # the word only this example's text has
        return "w0" + name.split("/")[-2] + name.split("/ex")[-1]

    assert all(own_word(name) not in vocabulary for name in splits.test_examples + splits.validation_examples)
    assert all(own_word(name) in vocabulary for name in splits.train_examples)
    # Without a test split: no test dataset.
    plain = from_directory(root, validation_split=0.2, seed=3, **options)
    assert plain.test is None and plain.test_examples == []
    with pytest.raises(ValueError, match="test_split"):
        from_directory(root, validation_split=0.5, test_split=0.5, **options)


def _test_split_arguments_cases():
    return [
        (["train", "mlp", "--test-data", "/no/such/dir"], "--test-data needs --data DIR"),
        (["train", "image_text_classifier", "--data", "{data}", "--test-data", "/no/such/dir"],
         "--test-data '/no/such/dir' is not a directory"),
        (["train", "image_text_classifier", "--data", "{data}", "--test-fraction", "0"],
         "--test-fraction 0 leaves no test examples"),
        (["train", "image_text_classifier", "--data", "{data}", "--test-fraction", "0.2", "--test-data", "{data}"],
         "--test-fraction and --test-data"),
        (["train", "image_text_classifier", "--data", "{data}", "--test-data", "{other}"],
         "has class folders ['cat', 'cow'], not the training classes ['cat', 'dog']"),
        (["train", "image_text_classifier", "--data", "{many}"], "output has 10 units, too few for the 11 classes"),
    ]


@pytest.mark.parametrize("argv, message", _test_split_arguments_cases())
def test_bad_test_split_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    data = write_class_folders(tmp_path / "data", per_class=2)
    other = write_class_folders(tmp_path / "other", per_class=2, classes=("cat", "cow"))
    many = tmp_path / "many"
    if "{many}" in argv:
        write_class_folders(many, per_class=1, classes=[f"c{i:02d}" for i in range(11)])
    argv = [a.format(data=data, other=other, many=many) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mmzoo train: error: ") and message in err, err


@pytest.mark.parametrize("value", ["1", "-0.1", "abc"])
def test_test_fraction_must_be_a_fraction(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "mlp", "--test-fraction", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --test-fraction: must be a fraction in [0, 1)" in err and "Traceback" not in err


class _Spy:
    """Records what ``mmzoo.train`` returns and every ``from_directory`` call of an in-process run.

    ``train`` builds the registered model at its small test configuration (32x32 images, 12
    tokens of a 50-word vocabulary), so that saving, exporting and reloading take seconds.
    """

    def __init__(self, monkeypatch):
        import mmzoo.data
        import mmzoo.training
        from mmzoo.registry import get_entry

        self.history, self.calls = None, []
        train, from_directory, build = mmzoo.train, mmzoo.data.from_directory, mmzoo.training.fit.build

        def small_build(name, **kwargs):
            return build(name, **{**get_entry(name).test_config, **kwargs})

        monkeypatch.setattr(mmzoo.training.fit, "build", small_build)

        def spy_train(*args, **kwargs):
            self.history = train(*args, **kwargs)
            return self.history

        def spy_from_directory(root, **kwargs):
            splits = from_directory(root, **kwargs)
            self.calls.append((str(root), kwargs, splits))
            return splits

        monkeypatch.setattr(mmzoo, "train", spy_train)
        monkeypatch.setattr(mmzoo.data, "from_directory", spy_from_directory)


def _metrics(line):
    return line.split(": ", 1)[1]


def _line(out, prefix):
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out
    return lines[0]


# In a new process: `mmzoo evaluate MODEL.keras --data DIR`, then the reloaded model's predictions.
RELOAD = """
import sys
import numpy as np
import keras
import mmzoo
from mmzoo.cli import load_data_file, main
from mmzoo.data import from_directory

saved, root, out = sys.argv[1:4]
assert main(["evaluate", saved, "--data", root, "--batch-size", "8"]) == 0
model = keras.saving.load_model(saved, safe_mode=True)
data = load_data_file(saved)
files = from_directory(root, modalities=["image", "text"], image_size=model.input["image"].shape[1:3], text_mode="raw",
                       validation_split=0.0, shuffle=False, batch_size=None, class_names=data.class_names)
images, texts = zip(*[(x["image"], x["text"]) for x, _ in files.train.as_numpy_iterator()])
tokens = data.vectorizers["text_input"](np.array(texts, dtype=object))
np.save(out, np.asarray(model.predict({"image": np.stack(images), "text_input": np.asarray(tokens, "int32")},
                                      verbose=0)))
"""


def _raw_files(root, image_size):
    import numpy as np

    from mmzoo.data import from_directory

    files = from_directory(root, modalities=["image", "text"], image_size=image_size, text_mode="raw",
                           validation_split=0.0, shuffle=False, batch_size=None)
    images, texts = zip(*[(x["image"], x["text"]) for x, _ in files.train.as_numpy_iterator()])
    return np.stack(images), np.array([t.decode("utf-8") for t in texts], dtype=object)


@pytest.mark.slow
def test_a_directory_run_tests_on_a_held_out_split_and_keeps_its_vocabulary(tmp_path, monkeypatch, capsys):
    import os

    import numpy as np

    import mmzoo

    root = write_class_folders(tmp_path / "data", per_class=8)
    saved, exports = tmp_path / "model.keras", tmp_path / "exports"
    spy = _Spy(monkeypatch)
    assert main(["train", "image_text_classifier", "--data", str(root), "--epochs", "1", "--batch-size", "8",
                 "--seed", "3", "--save", str(saved), "--export-dir", str(exports), "--verbose", "0"]) == 0, (
        capsys.readouterr().err)
    out = capsys.readouterr().out
    # 16 examples: per class 1 test (15% of 8), 2 validation (20% of 8), 5 training.
    summary = f"data: 10 train, 4 validation, 2 test examples from {root} (test: a seeded 15% split, seed 3)"
    assert summary in out, out
    (_, _, splits), = spy.calls
    assert len(splits.test_examples) == 2
    assert not set(splits.test_examples) & set(splits.train_examples + splits.validation_examples)
    test_line = _line(out, "test: ")
    # The class names and the vocabulary travel with the saved model.
    data = mmzoo.cli.load_data_file(saved)
    assert data.class_names == ["cat", "dog"]
    assert data.vectorizers["text_input"].get_vocabulary() == splits.vectorizer.get_vocabulary()
    # Reloaded in a new process: the same metrics on the same test split (the seed and fraction
    # of the training run, from the data file), the same predictions.
    reloaded = subprocess.run(
        [sys.executable, "-c", RELOAD, str(saved), str(root), str(tmp_path / "predictions.npy")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]
    assert summary in reloaded.stdout, reloaded.stdout
    assert _metrics(_line(reloaded.stdout, "image_text_classifier test: ")) == _metrics(test_line)
    model = spy.history.model
    images, texts = _raw_files(root, model.input["image"].shape[1:3])
    tokens = np.asarray(splits.vectorizer(texts), "int32")
    expected = np.asarray(model({"image": images, "text_input": tokens}, training=False))
    np.testing.assert_allclose(np.load(tmp_path / "predictions.npy"), expected, atol=1e-5)
    # The SavedModel takes raw strings for the text, through the training vocabulary; so does
    # the export of the saved model (its data file beside it).
    assert main(["export", str(saved), "--export-dir", str(exports)]) == 0
    assert "text input text_input take raw strings" in capsys.readouterr().out
    for version in ("1", "2"):
        served = mmzoo.load_saved_model(exports / "image_text_classifier" / version)
        assert served.inputs["text_input"] == ((None,), "string")
        np.testing.assert_allclose(served({"image": images, "text_input": texts}), expected, atol=1e-5)


@pytest.mark.slow
def test_test_data_is_read_with_the_training_vocabulary_and_class_names(tmp_path, monkeypatch, capsys):
    import json
    import shutil

    root = write_class_folders(tmp_path / "data", per_class=6)
    held_out = write_class_folders(tmp_path / "held_out", per_class=3, seed=1)
    saved = tmp_path / "model.keras"
    spy = _Spy(monkeypatch)
    assert main(["train", "image_text_classifier", "--data", str(root), "--test-data", str(held_out),
                 "--epochs", "1", "--batch-size", "8", "--save", str(saved), "--export-dir", "",
                 "--verbose", "0"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"data: 10 train, 2 validation examples from {root}; 6 test examples from {held_out}" in out, out
    (train_root, _, train_splits), (test_root, test_kwargs, test_splits) = spy.calls
    assert (train_root, test_root) == (str(root), str(held_out))
    assert test_kwargs["vectorizer"] is train_splits.vectorizer  # not adapted again on the test texts
    assert test_kwargs["class_names"] == ["cat", "dog"]
    assert len(test_splits.train_examples) == 6
    test_line = _line(out, "test: ")
    # evaluate --test-data: the whole folder, with the saved vocabulary: the same metrics.
    assert main(["evaluate", str(saved), "--test-data", str(held_out), "--batch-size", "8"]) == 0
    assert _metrics(_line(capsys.readouterr().out, "image_text_classifier test: ")) == _metrics(test_line)
    # Other class folders than the model's, or a text model without its data file: one-line errors.
    cows = write_class_folders(tmp_path / "cows", per_class=2, classes=("cat", "cow"))
    assert main(["evaluate", str(saved), "--test-data", str(cows)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'cow'" in err and "['cat', 'dog']" in err, err
    bare = tmp_path / "bare.keras"
    shutil.copy(saved, bare)
    assert main(["evaluate", str(bare), "--data", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bare.data.json" in err and "vocabulary" in err, err
    # A data file written for another model file is refused too.
    document = json.loads((tmp_path / "model.data.json").read_text(encoding="utf-8"))
    (tmp_path / "bare.data.json").write_text(json.dumps({**document, "model_sha256": "0" * 64}), encoding="utf-8")
    assert main(["evaluate", str(bare), "--test-data", str(held_out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "it was written for another bare.keras" in err, err
    # Trained on all of --data but validation: its test split is not a held-out one.
    assert main(["evaluate", str(saved), "--data", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--test-data {str(held_out)!r}" in err, err


# --- multi-worker: only the chief writes ---------------------------------------------------


@pytest.mark.slow
def test_multi_worker_training_saves_and_exports_once(tmp_path):
    import os

    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    exports, saved = tmp_path / "exports", tmp_path / "saved" / "model.keras"
    processes = []
    try:
        for index in range(2):
            env = worker_env(workers, index)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "mmzoo", "train", "mlp", "--samples", "64", "--epochs", "1",
                 "--batch-size", "16", "--strategy", "multi_worker", "--export-dir", str(exports),
                 "--save", str(saved), "--verbose", "0"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    report = "\n\n".join(f"worker {i}:\n{out[-1500:]}\n{err[-2500:]}" for i, (out, err) in enumerate(outputs))
    assert [process.returncode for process in processes] == [0, 0], report
    chief, other = (out for out, _ in outputs)
    assert os.listdir(exports / "mlp") == ["1"], report  # one version, no temporary directory left
    assert sorted(os.listdir(saved.parent)) == ["model.keras"], report
    assert "test: " in chief and "saved the trained model" in chief and "exported and reloaded" in chief, report
    assert "saved the trained model" not in other and "exported" not in other, report
