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
}
EXPECTED_ROWS = {"training": 3, "audio": 3, "serving": 4, "scaling": 2}


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
