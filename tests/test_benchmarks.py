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
    "peer": ["--small", "--examples", "64", "--epochs", "1", "--repeats", "1", "--no-compile", "--torch-threads", "1",
             "--settle", "0"],
    "loader": ["--examples", "8", "--classes", "2", "--frames", "2", "--batch-size", "4", "--repeats", "1"],
    "xla": ["--small", "--models", "mlp", "attention_fusion", "--seconds", "0.05", "--repeats", "1"],
}
# What the issues ask each row's name to hold, so that readers of latest.json find them.
ROW_MARKERS = {"peer": "pytorch", "loader": "loader", "xla": "xla"}
EXPECTED_ROWS = {"training": 3, "audio": 3, "serving": 4, "scaling": 2, "presets": 1, "peer": 4, "loader": 8, "xla": 4}


def check_rows(rows):
    for row in rows:
        assert set(common.ROW_KEYS) <= set(row), row
        assert row["name"] and row["unit"]
        for key in ("ours", "baseline", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, row


def test_every_benchmark_has_tiny_arguments():
    assert set(TINY) == set(runner.BENCHMARKS) == set(runner.QUICK)


# Run at TINY sizes by their own test file, with more checks (one tiny run each is enough).
DEDICATED = {"loader": "tests/test_benchmark_loader.py"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(TINY) - set(DEDICATED)))
def test_benchmark_runs_and_returns_rows(name):
    module = runner.BENCHMARKS[name]
    lines = []
    rows = module.measure(module.parse_args(TINY[name]), log=lines.append)
    assert len(rows) == EXPECTED_ROWS[name], [row["name"] for row in rows]
    check_rows(rows)
    marker = ROW_MARKERS.get(name, "")
    assert all(marker in row["name"] for row in rows), (marker, [row["name"] for row in rows])
    assert lines, "the benchmark printed no details"


def test_interleaved_rotates_the_order_and_settles_before_each_timed_run(monkeypatch):
    events = []
    monkeypatch.setattr(common.time, "sleep", lambda seconds: events.append(("sleep", seconds)))
    sides = {name: (lambda name=name: events.append(name)) for name in ("a", "b")}
    times = common.interleaved(sides, repeats=2, warmup=1, settle=0.25)
    assert events == ["a", "b",  # the warm-up: no pause
                      ("sleep", 0.25), "a", ("sleep", 0.25), "b",
                      ("sleep", 0.25), "b", ("sleep", 0.25), "a"]
    assert {name: len(values) for name, values in times.items()} == {"a": 2, "b": 2}
    events.clear()
    common.interleaved(sides, repeats=1, warmup=0)
    assert events == ["a", "b"]  # settle=0: no sleep at all
    with pytest.raises(ValueError, match="settle=-1"):
        common.interleaved(sides, repeats=1, settle=-1)


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


@pytest.mark.slow
def test_fusion_tasks_benchmark_runs_at_tiny_sizes(tmp_path, capsys):
    """benchmarks/fusion_tasks.py end to end: the three tasks, two fusions, linear heads on interaction, the targets
    (attention is both multiplicative and gated, concat additive with fixed weights: every target is checked)."""
    import fusion_tasks  # benchmarks/fusion_tasks.py

    output = tmp_path / "rows.json"
    results, checks = fusion_tasks.main(["--tiny", "--fusions", "concat", "attention", "--output", str(output)])
    fusions = ["concat", "attention"]
    assert list(results) == ["redundant", "interaction", "unreliable"]
    for task, result in results.items():
        assert 0.0 < result["chance"] <= result["best possible"] <= 1.0, task
        linear = [f"{fusion} + linear head" for fusion in fusions] if task == "interaction" else []
        assert list(result["runs"]) == fusions + linear, task
        assert all(len(values) == 1 and 0.0 <= values[0] <= 1.0 for values in result["runs"].values()), task
    assert [name.split(" (")[0] for name, _, _ in checks] == [
        "interaction: concat + linear head within 5 points of chance",
        "interaction: two or more multiplicative/tensor/attention fusions at >= 90% of the best possible",
        "interaction: two or more multiplicative/tensor/attention fusions at >= 90% of the best possible",
        "unreliable: a gated fusion beats every fixed-weight fusion by >= 3 points",
    ]
    printed = capsys.readouterr().out
    assert "| fusion (1 seed, test accuracy) | redundant | interaction | unreliable |" in printed
    assert "| concat + linear head | - |" in printed  # no linear heads on the redundant task
    assert printed.count("PASS: ") + printed.count("FAIL: ") == len(checks)
    rows = json.loads(output.read_text())
    check_rows(rows)
    assert len(rows) == 3 * 2 + 2 and rows[0]["name"] == "fusion_tasks: redundant: concat"


def test_fusion_tasks_best_possible_accuracy_is_the_bayes_classifiers():
    """The ceiling the benchmark reports: close to the docstring's formulas, and far from the truth on wrong labels."""
    import numpy as np

    import fusion_tasks

    args = fusion_tasks.parse_args([])
    best = {}
    for task in fusion_tasks.TASKS:
        x, _, latents = fusion_tasks.data(task, "test", 3000, 0, args)
        best[task] = fusion_tasks.bayes_accuracy(task, x, latents["labels"], 0, args)
        shuffled = np.random.default_rng(0).permutation(latents["labels"])
        assert abs(fusion_tasks.bayes_accuracy(task, x, shuffled, 0, args) - 0.5) < 0.05, task
    # 3 modalities, 2 classes: a guess where all are missing (1/64 of the examples); the others read without error
    assert abs(best["redundant"] - (1 - 0.25**3 / 2)) < 0.01, best
    assert 0.95 < best["interaction"] <= 1.0 and 0.95 < best["unreliable"] <= 1.0, best


def test_fusion_tasks_targets_pass_and_fail_on_the_numbers():
    import fusion_tasks

    def results(concat_linear, product, tensor, gating, weighted):
        runs = {"concat + linear head": [concat_linear], "product": [product], "tensor": [tensor], "film": [0.5],
                "gating": [gating], "weighted": [weighted], "concat": [weighted]}
        return {"interaction": {"chance": 0.5, "best possible": 1.0, "runs": runs},
                "unreliable": {"chance": 0.5, "best possible": 1.0, "runs": runs}}

    passed = [ok for _, ok, _ in fusion_tasks.targets(results(0.52, 0.95, 0.91, 0.90, 0.86))]
    assert passed == [True, True, True]
    passed = [ok for _, ok, _ in fusion_tasks.targets(results(0.60, 0.95, 0.85, 0.88, 0.86))]
    assert passed == [False, False, False]  # 10 points from chance; one fusion at 90%; a 2-point margin


@pytest.mark.slow
def test_fusion_tasks_a_restarted_model_trains_as_a_fresh_one():
    """The benchmark traces each model once and restarts it per run: a run gives what a fresh model gives."""
    import fusion_tasks

    args = fusion_tasks.parse_args(["--tiny"])
    splits = {seed: [fusion_tasks.data("unreliable", split, 64, seed, args) for split in ("train", "test")]
              for seed in (0, 1)}
    reused = fusion_tasks.Trainer("gating", "mlp", args)
    first, second, again = (reused.run(seed, splits[seed]) for seed in (0, 1, 0))
    assert first == again
    assert second == fusion_tasks.Trainer("gating", "mlp", args).run(1, splits[1])
