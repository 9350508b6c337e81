"""The benchmark scripts run end to end at tiny sizes and return well-formed rows.

These check that ``benchmarks/`` keeps working as the code changes, not how fast anything
is: the speeds are measured by ``python benchmarks/run.py``, never by a test.
"""

import importlib.util
import json
import math
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_runner():
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for its siblings
    return module


runner = load_runner()
import common  # noqa: E402  (benchmarks/common.py, on sys.path once run.py is loaded)

TINY = {
    "training": ["--models", "mlp", "attention_fusion", "--examples", "64", "--epochs", "1", "--repeats", "1"],
    "audio": ["--clips", "4", "--batch-size", "2", "--repeats", "1"],
    "serving": ["--model", "mlp", "--calls", "3", "--eager-calls", "2", "--batch-size", "4", "--batches", "1",
                "--repeats", "1"],
    "scaling": ["--lengths", "8", "16", "--batch-size", "2", "--steps", "1", "--sizes", "32", "64",
                "--repeats", "1"],
    "presets": ["--models", "mlp", "--repeats", "1"],
}
EXPECTED_ROWS = {"training": 3, "audio": 3, "serving": 4, "scaling": 2, "presets": 1}


def check_rows(rows):
    for row in rows:
        assert set(common.ROW_KEYS) <= set(row), row
        assert row["name"] and row["unit"]
        for key in ("ours", "baseline", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, row


def test_every_benchmark_has_tiny_arguments():
    assert set(TINY) == set(runner.BENCHMARKS) == set(runner.QUICK)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_runs_and_returns_rows(name):
    module = runner.BENCHMARKS[name]
    lines = []
    rows = module.measure(module.parse_args(TINY[name]), log=lines.append)
    assert len(rows) == EXPECTED_ROWS[name], [row["name"] for row in rows]
    check_rows(rows)
    assert lines, "the benchmark printed no details"


def test_quick_arguments_parse():
    for name, module in runner.BENCHMARKS.items():
        module.parse_args(runner.QUICK[name])


def test_json_is_the_rows_and_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "results" / "latest.json"
    rows = [{"name": "a", "ours": 2.0, "baseline": 1.0, "unit": "x/s", "ratio": 2.0, "extra": 1}]
    common.write_json(rows, str(path))
    assert json.loads(path.read_text()) == [{key: rows[0][key] for key in common.ROW_KEYS}]
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        common.write_json([{**rows[0], "ours": object()}], str(path))  # not JSON-serialisable
    assert json.loads(path.read_text())[0]["ours"] == 2.0
    assert [p.name for p in path.parent.iterdir()] == ["latest.json"]  # no temporary file left


@pytest.mark.parametrize(
    "module_name, argv",
    [("training", ["--examples", "100", "--batch-size", "32"]), ("scaling", ["--lengths", "64"]),
     ("audio", ["--clips", "0"]), ("serving", ["--calls", "-1"])],
)
def test_bad_arguments_are_refused_with_a_message(module_name, argv, capsys):
    with pytest.raises(SystemExit) as raised:
        runner.BENCHMARKS[module_name].parse_args(argv)
    assert raised.value.code == 2
    assert "error:" in capsys.readouterr().err


def write_tiny_check_set(root):
    """``root/{train,test}/{one,two}/<i>.png|.wav|.txt``: a bar, a tone and a caption per class."""
    import numpy as np
    import soundfile
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 3)):
        for label, name in enumerate(("one", "two")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                image = (rng.random((16, 16, 1)) * 80).astype("uint8")
                image[:, 2 + 8 * label : 6 + 8 * label] = 255
                (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
                t = np.arange(16000) / 16000
                soundfile.write(folder / f"{index}.wav", 0.3 * np.sin(2 * np.pi * 400 * (label + 1) * t), 16000)
                (folder / f"{index}.txt").write_text(f"{name} {rng.choice(['red', 'green', 'blue'])} thing")


@pytest.mark.slow
def test_real_data_benchmark_runs_on_a_tiny_folder(tmp_path):
    """benchmarks/real_data.py end to end on PNG + WAV + TXT class folders written here."""
    import real_data  # benchmarks/real_data.py

    write_tiny_check_set(tmp_path / "data")
    output = tmp_path / "rows.json"
    results = real_data.main(["--data", str(tmp_path / "data"), "--quick", "--epochs", "1", "--image-size", "16",
                              "--batch-size", "4", "--output", str(output)])
    names = [row["name"] for row in results]
    assert names == [
        "logistic regression: image", "logistic regression: audio", "logistic regression: text",
        "logistic regression: image+audio+text", "fusion_classifier: image only", "fusion_classifier: audio only",
        "fusion_classifier: text only", "fusion_classifier: concat fusion",
    ]
    assert all(0.0 <= row["accuracy"] <= 1.0 and row["seconds"] >= 0 for row in results)
    rows = json.loads(output.read_text())
    check_rows(rows)
    assert [row["name"] for row in rows] == [f"real_data: {name}" for name in names[4:]]
    assert set(real_data.summary(results)) >= {"margin over the logistic regression (points)",
                                               "margin over the best single modality (points)"}
    with pytest.raises(SystemExit):
        real_data.parse_args(["--data", str(tmp_path)])  # no train/ or test/ folder


@pytest.mark.slow
def test_missing_modalities_benchmark_runs_on_a_tiny_folder(tmp_path):
    """benchmarks/missing_modalities.py end to end on a tiny folder of PNG + WAV + TXT files."""
    import missing_modalities  # benchmarks/missing_modalities.py

    write_tiny_check_set(tmp_path / "data")
    output = tmp_path / "rows.json"
    results = missing_modalities.main(["--data", str(tmp_path / "data"), "--epochs", "1", "--image-size", "16",
                                       "--batch-size", "4", "--output", str(output)])
    assert [row["modality_dropout"] for row in results] == [0.25, 0.0]
    for row in results:
        assert all(0.0 <= row[key] <= 1.0 for key in ("all present", "image missing", "audio missing",
                                                        "text missing"))
    rows = json.loads(output.read_text())
    check_rows(rows)
    assert len(rows) == 4 and all(row["name"].startswith("missing_modalities: ") for row in rows)
    assert "target met" in missing_modalities.summary(results)
