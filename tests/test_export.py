"""mmzoo.export: TF Serving layout, atomic checked versions, concurrent exports, raw-input preprocessing, loading.

Small models only (``build_small``); every SavedModel is written under ``tmp_path``.
"""

import importlib
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from helpers import as_dict, assert_outputs_close, build_small
from mmzoo.data.text import make_text_vectorizer

export_module = importlib.import_module("mmzoo.serving")
export = export_module.export
load_saved_model = export_module.load_saved_model
VersionExistsError = export_module.VersionExistsError

REPO = pathlib.Path(__file__).resolve().parents[1]
CHINESE = ["这是一段文本数据", "这是另一段文本数据", "多模态模型的文本", "声音和图像"]
MANY_CHARACTERS = [" ".join(chr(0x4E00 + i) for i in range(60))]  # 60 distinct words


def entries(directory):
    return sorted(os.listdir(directory))


def model_outputs(model, x):
    return model({key: tf.constant(value) for key, value in x.items()}, training=False)


# --- layout, versions, reloading ------------------------------------------------------------


def test_export_writes_version_1_then_2_and_each_serves_the_model(tmp_path):
    model = build_small("emotion")
    root = tmp_path / "new" / "root"  # parents are created
    first = export(model, root, verbose=False)
    assert first == str(root / "emotion" / "1")  # name: the registry name
    model.layers[-1].kernel.assign(model.layers[-1].kernel * 3.0)  # the second export has other weights
    second = export(model, root, verbose=False)
    assert second == str(root / "emotion" / "2")
    assert entries(root / "emotion") == ["1", "2"]  # no temporary directory left
    umask = os.umask(0)
    os.umask(umask)
    for path in (first, second):
        assert {"saved_model.pb", "variables"} <= set(entries(path))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask  # readable by a TF Serving user

    # TF Serving's view: `serving_default` takes the named inputs with a dynamic batch.
    loaded = tf.saved_model.load(second)
    signature = loaded.signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    assert {k: (tuple(s.shape), s.dtype.name) for k, s in specs.items()} == {
        "text": ((None, 6), "int32"),
        "audio": ((None, 64), "float32"),
        "image": ((None, 12, 12, 1), "float32"),
    }
    assert list(signature.structured_outputs) == ["output_0"]
    x, _ = mmzoo.dummy_batch(model, batch_size=4, seed=11)
    assert_outputs_close(model_outputs(model, x), loaded.serve(x))
    assert_outputs_close(model_outputs(model, x), signature(**x)["output_0"])

    served = load_saved_model(second)
    for batch_size in (1, 5):
        x, _ = mmzoo.dummy_batch(model, batch_size=batch_size, seed=batch_size)
        result = served(x)
        assert isinstance(result, np.ndarray) and result.shape == (batch_size, 3)
        assert_outputs_close(model_outputs(model, x), result)
    # Version 1 holds the weights it was exported with, not the model's current ones.
    x, _ = mmzoo.dummy_batch(model, batch_size=5, seed=5)
    assert not np.allclose(load_saved_model(first)(x), served(x), atol=1e-4)
    # A model directory loads its latest version.
    assert load_saved_model(root / "emotion").path == second


def test_dict_outputs_stay_a_dict_keyed_by_output_name(tmp_path):
    model = build_small("multitask_shared")
    path = export(model, tmp_path, name="tasks", version=3, verbose=False)
    assert path == str(tmp_path / "tasks" / "3")
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(signature.structured_outputs) == sorted(model.output)
    x, _ = mmzoo.dummy_batch(model, batch_size=5, seed=2)
    result = load_saved_model(path)(x)
    assert isinstance(result, dict) and sorted(result) == sorted(model.output)
    assert_outputs_close(model_outputs(model, x), result)


def test_next_version_follows_the_highest_and_an_existing_version_is_refused(tmp_path):
    model = build_small("mlp")
    (tmp_path / "mlp" / "1").mkdir(parents=True)
    (tmp_path / "mlp" / "3").mkdir()  # an empty version directory counts as taken: never replaced
    (tmp_path / "mlp" / "notes").mkdir()  # not a version
    assert export(model, tmp_path, verbose=False) == str(tmp_path / "mlp" / "4")
    for version in (1, 3, 4):
        with pytest.raises(VersionExistsError, match=f"Version {version} of 'mlp' exists already"):
            export(model, tmp_path, version=version, verbose=False)
    assert issubclass(VersionExistsError, ValueError) and issubclass(VersionExistsError, FileExistsError)
    assert entries(tmp_path / "mlp") == ["1", "3", "4", "notes"]
    assert entries(tmp_path / "mlp" / "3") == []


def test_verbose_prints_the_version_and_the_signature(tmp_path, capsys):
    export(build_small("mlp"), tmp_path, verbose=True)
    printed = capsys.readouterr().out
    assert f"Exported 'mlp' version 1 to {tmp_path / 'mlp' / '1'}" in printed
    assert "features (None, 64) float32" in printed and "output_0 (None, 1) float32" in printed


# --- failures leave nothing behind ----------------------------------------------------------


def _raise_after_writing(seen):
    real = export_module._check_reload

    def check(model, plan, path):
        assert os.path.exists(os.path.join(path, "saved_model.pb"))  # it was written, then ...
        seen.append(path)
        real(model, plan, path)
        raise RuntimeError("simulated failure after the reload check")

    return check


def test_a_failure_after_writing_leaves_no_version_and_no_temporary_directory(tmp_path, monkeypatch):
    model = build_small("mlp")
    export(model, tmp_path, verbose=False)
    seen = []
    monkeypatch.setattr(export_module, "_check_reload", _raise_after_writing(seen))
    with pytest.raises(RuntimeError, match="simulated failure"):
        export(model, tmp_path, verbose=False)
    with pytest.raises(RuntimeError, match="simulated failure"):
        export(model, tmp_path, version=7, verbose=False)
    assert len(seen) == 2 and all(pathlib.Path(p).parent == tmp_path / "mlp" for p in seen)
    assert all(pathlib.Path(p).name.startswith(".tmp-") for p in seen)  # names TF Serving ignores
    assert entries(tmp_path / "mlp") == ["1"]


def test_an_interrupt_during_writing_leaves_nothing(tmp_path, monkeypatch):
    real = export_module._write_saved_model

    def write_then_interrupt(model, plan, path):
        real(model, plan, path)
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "_write_saved_model", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(build_small("mlp"), tmp_path, verbose=False)
    assert entries(tmp_path / "mlp") == []


def test_a_saved_model_that_serves_other_outputs_is_never_published(tmp_path, monkeypatch):
    real = export_module._serving_function

    def wrong_serving_function(model, plan):
        serve = real(model, plan)
        return lambda inputs: serve(inputs) * 0.5 + 0.25  # a broken serving graph

    monkeypatch.setattr(export_module, "_serving_function", wrong_serving_function)
    with pytest.raises(export_module.ExportCheckError, match="output 'output_0' differs"):
        export(build_small("mlp"), tmp_path, verbose=False)
    assert entries(tmp_path / "mlp") == []


def test_a_failing_rename_removes_the_temporary_directory(tmp_path, monkeypatch):
    def no_rename(source, target):
        raise PermissionError(13, "simulated", target)

    monkeypatch.setattr(export_module, "_rename_no_replace", no_rename)
    with pytest.raises(PermissionError, match="simulated"):
        export(build_small("mlp"), tmp_path, verbose=False)
    assert entries(tmp_path / "mlp") == []


# --- concurrent exports ---------------------------------------------------------------------


def test_two_exports_started_together_get_distinct_versions(tmp_path):
    model = build_small("mlp")
    barrier = threading.Barrier(2)
    paths, errors = [], []

    def run():
        try:
            barrier.wait()
            paths.append(export(model, tmp_path, verbose=False))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(paths) == [str(tmp_path / "mlp" / "1"), str(tmp_path / "mlp" / "2")]
    assert entries(tmp_path / "mlp") == ["1", "2"]
    x, _ = mmzoo.dummy_batch(model, batch_size=5)
    for path in paths:
        assert_outputs_close(model_outputs(model, x), load_saved_model(path)(x))


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "os.rename"])
def test_simultaneous_publishing_never_shares_or_replaces_a_version(tmp_path, monkeypatch, renameat2):
    if renameat2 and export_module._RENAMEAT2 is None:
        pytest.skip("no renameat2 on this platform")
    if not renameat2:
        monkeypatch.setattr(export_module, "_RENAMEAT2", None)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    count = 8
    temporaries = []
    for i in range(count):
        temporary = model_dir / f".tmp-{i}"
        temporary.mkdir()
        (temporary / "marker").write_text(str(i))
        temporaries.append(temporary)
    barrier = threading.Barrier(count)
    results = {}

    def publish(i):
        barrier.wait()
        results[i] = export_module._publish(str(temporaries[i]), str(model_dir))

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(int(pathlib.Path(p).name) for p in results.values()) == list(range(1, count + 1))
    for i, path in results.items():  # each version holds what its own export wrote
        assert (pathlib.Path(path) / "marker").read_text() == str(i)
    assert entries(model_dir) == sorted(str(v) for v in range(1, count + 1))


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "os.rename"])
def test_a_version_taken_after_the_scan_is_skipped_and_never_replaced(tmp_path, monkeypatch, renameat2):
    if renameat2 and export_module._RENAMEAT2 is None:
        pytest.skip("no renameat2 on this platform")
    if not renameat2:
        monkeypatch.setattr(export_module, "_RENAMEAT2", None)
    model_dir = tmp_path / "model"
    (model_dir / "1").mkdir(parents=True)  # empty: os.rename alone would replace it
    (model_dir / ".tmp-a").mkdir()
    (model_dir / ".tmp-a" / "marker").write_text("a")
    stale = iter([1, 1])  # what a scan made before version 1 appeared would say, twice
    real = export_module._next_version
    monkeypatch.setattr(export_module, "_next_version", lambda d: next(stale, None) or real(d))
    assert export_module._publish(str(model_dir / ".tmp-a"), str(model_dir)) == str(model_dir / "2")
    assert entries(model_dir / "1") == [] and (model_dir / "2" / "marker").read_text() == "a"
    (model_dir / ".tmp-b").mkdir()
    with pytest.raises(FileExistsError, match=r"File exists: .*model.1'"):
        export_module._rename_no_replace(str(model_dir / ".tmp-b"), str(model_dir / "1"))
    with pytest.raises(VersionExistsError, match=r"Version 2 of 'model' exists already"):
        export_module._publish(str(model_dir / ".tmp-b"), str(model_dir), version=2)
    assert (model_dir / ".tmp-b").is_dir() and entries(model_dir / "1") == []


PROCESS_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import mmzoo
    from mmzoo.serving import export
    model = mmzoo.build("mlp", input_shape=(64,), units=64)
    export_dir, ready, go = sys.argv[1:4]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    print(export(model, export_dir, verbose=False))
    """
)


@pytest.mark.slow
def test_two_processes_exporting_at_once_get_distinct_versions(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, str(tmp_path / "out"), str(tmp_path / f"ready{i}"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 240
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "a process died"
            time.sleep(0.05)
        go.touch()
        results = [p.communicate(timeout=240) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (stdout, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr[-3000:]
    paths = sorted(stdout.strip().splitlines()[-1] for stdout, _ in results)
    assert paths == [str(tmp_path / "out" / "mlp" / "1"), str(tmp_path / "out" / "mlp" / "2")]
    assert entries(tmp_path / "out" / "mlp") == ["1", "2"]
    for path in paths:
        assert load_saved_model(path)({"features": np.zeros((2, 64), "float32")}).shape == (2, 1)


# --- preprocessing in the SavedModel --------------------------------------------------------


def _mfcc():
    return mmzoo.layers.MFCC(16, sample_rate=16000, fft_length=256, hop_length=160, num_mel_bins=32)


def _emotion_with_frames():
    # 11 frames of 16 MFCCs: waveforms of 1600..1759 samples at hop 160.
    return build_small("emotion", mfcc_frames=11, mfcc_features_size=16)


def test_raw_chinese_text_and_waveforms_are_served(tmp_path):
    model = _emotion_with_frames()
    vectorizer = make_text_vectorizer(CHINESE, max_tokens=30, sequence_length=6, split="character")
    mfcc = _mfcc()
    preprocessors = {"text": vectorizer, "audio": mfcc}
    path = export(model, tmp_path, include_preprocessing=True, preprocessors=preprocessors, verbose=False)
    rng = np.random.default_rng(0)
    texts = np.array(["这是一段文本", "图像和声音数据", "另一段", "unknown 字"])
    raw = {
        "text": texts,
        "audio": rng.uniform(-0.5, 0.5, (4, 1700)).astype("float32"),
        "image": rng.random((4, 12, 12, 1), dtype=np.float32),
    }
    token_ids = vectorizer(tf.constant(texts))
    assert token_ids.numpy()[:3, 0].min() >= 2 and token_ids.numpy()[3, 0] == 1  # in the vocabulary; OOV
    features = {"text": tf.cast(token_ids, "int32"), "audio": mfcc(raw["audio"]), "image": raw["image"]}
    expected = model_outputs(model, features)
    # The vocabulary lives in the SavedModel: changing the Python layer afterwards changes nothing.
    vectorizer.set_vocabulary(["x", "y"])

    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    assert {k: (tuple(s.shape), s.dtype.name) for k, s in specs.items()} == {
        "text": ((None,), "string"),
        "audio": ((None, None), "float32"),
        "image": ((None, 12, 12, 1), "float32"),
    }
    assert_outputs_close(expected, signature(**{k: tf.constant(v) for k, v in raw.items()})["output_0"])
    served = load_saved_model(path)
    assert served.inputs["text"] == ((None,), "string")
    assert_outputs_close(expected, served({**raw, "text": list(texts)}))
    # Any waveform length that gives the model's 11 frames is accepted; others are refused.
    one = {"text": ["声音"], "audio": rng.uniform(-0.5, 0.5, (1, 1759)).astype("float32"), "image": raw["image"][:1]}
    same = make_text_vectorizer(CHINESE, max_tokens=30, sequence_length=6, split="character")  # as adapted
    one_features = {"text": tf.cast(same(one["text"]), "int32"), "audio": mfcc(one["audio"]), "image": one["image"]}
    assert_outputs_close(model_outputs(model, one_features), served(one))
    with pytest.raises(tf.errors.InvalidArgumentError, match="send waveforms of 1600 to 1759 samples"):
        served({**one, "audio": np.zeros((1, 1760), "float32")})


def test_raw_english_text_with_a_whitespace_vectorizer(tmp_path):
    model = build_small("attention_fusion")
    corpus = ["The cat sat on the mat.", "A dog barked at the cat!", "Birds sing in the morning"]
    vectorizer = make_text_vectorizer(corpus, max_tokens=30, sequence_length=10)
    preprocessors = {"text_input": vectorizer}
    path = export(model, tmp_path, include_preprocessing=True, preprocessors=preprocessors, verbose=False)
    texts = ["THE CAT, the dog.", "birds sat on a mat", "zebra"]
    image = np.random.default_rng(1).random((3, 32), dtype=np.float32)
    expected = model_outputs(model, {"text_input": tf.cast(vectorizer(texts), "int32"), "image_input": image})
    assert_outputs_close(expected, load_saved_model(path)({"text_input": texts, "image_input": image}))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: {"text": make_text_vectorizer(CHINESE, max_tokens=30, sequence_length=8, split="character")},
         r"output_sequence_length=8 tokens, but the model's input 'text' takes \(6,\) int32"),
        (lambda: {"text": make_text_vectorizer(MANY_CHARACTERS, max_tokens=100, sequence_length=6)},
         r"vocabulary of \d+ tokens .* takes token ids below 30"),
        (lambda: {"audio": mmzoo.layers.MFCC(13, fft_length=256, hop_length=160, num_mel_bins=32)},
         r"gives \(None, 11, 13\) float32, but the model's input 'audio' takes \(None, 11, 16\) float32"),
        (lambda: {"audio": mmzoo.layers.MFCC(16, fft_length=4096, hop_length=160, num_mel_bins=32)},
         r"No waveform length gives the 11 frames"),
        (lambda: {"txt": keras.layers.TextVectorization()}, r"no model input named 'txt' \(did you mean 'text'\?\)"),
        (lambda: {"text": "vectorizer"}, r"must be a Keras layer"),
        (lambda: {"image": keras.layers.Rescaling(0.5)}, r"Cannot tell what raw input"),
    ],
)
def test_a_preprocessor_that_does_not_fit_is_refused_before_writing(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        export(_emotion_with_frames(), tmp_path, include_preprocessing=True, preprocessors=make(), verbose=False)
    assert not (tmp_path / "emotion").exists() or entries(tmp_path / "emotion") == []


def test_preprocessor_output_mode_and_dtype_kind_are_checked(tmp_path):
    tf_idf = keras.layers.TextVectorization(max_tokens=10, output_mode="multi_hot")
    tf_idf.adapt(["a b c"])
    with pytest.raises(ValueError, match="output_mode='int'"):
        export(build_small("emotion"), tmp_path, include_preprocessing=True, preprocessors={"text": tf_idf})
    concat = build_small("concat_fusion")  # `text_input` takes float features, not token ids
    vectorizer = make_text_vectorizer(["a b c"], sequence_length=concat.input["text_input"].shape[1])
    message = r"gives \(None, 16\) int64, but the model's input 'text_input' takes \(None, 16\) float32"
    with pytest.raises(ValueError, match=message):
        export(concat, tmp_path, include_preprocessing=True, preprocessors={"text_input": vectorizer})
    with pytest.raises(ValueError, match="include_preprocessing=True needs `preprocessors`"):
        export(concat, tmp_path, include_preprocessing=True)
    with pytest.raises(ValueError, match="include_preprocessing=False"):
        export(concat, tmp_path, preprocessors={"text_input": vectorizer})
    assert list(tmp_path.iterdir()) == []


# --- argument errors ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a\\b", "..", ".", ".hidden", 3, None])
def test_bad_names_are_refused(tmp_path, name):
    model = build_small("mlp")
    kwargs = {"name": name} if name is not None else {}
    if name is None:  # a model whose own name is not a directory name
        model.name = "../up"
    with pytest.raises(ValueError, match="`name` must"):
        export(model, tmp_path, verbose=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", [0, -1, 1.5, "2", True])
def test_bad_versions_are_refused(tmp_path, version):
    with pytest.raises(ValueError, match="`version` must be a positive integer"):
        export(build_small("mlp"), tmp_path, version=version, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_the_way_is_refused(tmp_path):
    model = build_small("mlp")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        export(model, tmp_path / "file", verbose=False)
    with pytest.raises(ValueError, match="Cannot create the export directory"):
        export(model, tmp_path / "file" / "below", verbose=False)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "mlp").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        export(model, tmp_path / "root", verbose=False)
    with pytest.raises(ValueError, match="must be a keras.Model"):
        export("mlp", tmp_path, verbose=False)


# --- load_saved_model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_emotion(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    model = build_small("emotion")
    x, _ = mmzoo.dummy_batch(model, batch_size=2, seed=3)
    path = export(model, root, verbose=False)
    return path, x, as_dict(model_outputs(model, x))["output"]


def test_load_saved_model_names_missing_and_unexpected_inputs(exported_emotion):
    path, x, expected = exported_emotion
    served = load_saved_model(path)
    np.testing.assert_allclose(served(x), expected, atol=1e-5)
    listing = r"expects: audio: \(None, 64\) float32, image: \(None, 12, 12, 1\) float32, text: \(None, 6\) int32"
    with pytest.raises(ValueError, match=r"Missing input\(s\) 'audio', 'image'\. .*" + listing):
        served({"text": x["text"]})
    with pytest.raises(ValueError, match=r"Unexpected input\(s\) 'video'\. .*" + listing):
        served({**x, "video": x["image"]})
    message = r"input 'image' must be \(None, 12, 12, 1\) float32; received shape \(2, 12, 12\)"
    with pytest.raises(ValueError, match=message):
        served({**x, "image": x["image"][..., 0]})
    with pytest.raises(ValueError, match=r"input 'text' must be \(None, 6\) int32; received float32"):
        served({**x, "text": x["text"].astype("float32")})
    with pytest.raises(ValueError, match="same batch size"):
        served({**x, "audio": x["audio"][:1]})
    # Lists, other integer widths and tensors are converted.
    converted = {"text": x["text"].astype("int64").tolist(), "audio": tf.constant(x["audio"]), "image": x["image"]}
    np.testing.assert_allclose(served(converted), expected, atol=1e-5)


def test_load_saved_model_refuses_missing_and_incomplete_directories(exported_emotion, tmp_path):
    import shutil

    path, _, _ = exported_emotion
    with pytest.raises(FileNotFoundError, match="No SavedModel at"):
        load_saved_model(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="it is a file"):
        load_saved_model(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a complete SavedModel: it has no saved_model.pb"):
        load_saved_model(tmp_path / "empty")
    shutil.copytree(path, tmp_path / "novars")
    shutil.rmtree(tmp_path / "novars" / "variables")
    with pytest.raises(ValueError, match="variables/ directory is missing"):
        load_saved_model(tmp_path / "novars")
    shutil.copytree(path, tmp_path / "corrupt")
    (tmp_path / "corrupt" / "saved_model.pb").write_bytes(b"not a protocol buffer")
    with pytest.raises(ValueError, match="could not be loaded as a SavedModel"):
        load_saved_model(tmp_path / "corrupt")
    (tmp_path / "model" / "4").mkdir(parents=True)  # the latest version is incomplete
    with pytest.raises(ValueError, match="the latest version, is not a complete SavedModel"):
        load_saved_model(tmp_path / "model")
