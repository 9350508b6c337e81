"""``benchmarks/loader.py`` runs end to end at tiny sizes and returns well-formed rows named with ``loader``.

Like tests/test_benchmarks.py, this checks that the script keeps working, not how fast
anything is: the speeds are measured by running the benchmark, never by a test.
"""

import importlib.util
import math
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--examples", "8", "--classes", "2", "--frames", "2", "--batch-size", "4", "--repeats", "1"]


def load_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its sibling common.py
    spec = importlib.util.spec_from_file_location("benchmarks_loader", ROOT / "benchmarks" / "loader.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


loader = load_benchmark()


def test_arguments_parse():
    args = loader.parse_args(["--quick"])
    assert args.examples == 256 and args.repeats == 3 and args.mixes == list(loader.MIXES)
    assert loader.parse_args([]).examples == 384
    with pytest.raises(SystemExit):
        loader.parse_args(["--mixes", "audio+smell"])
    with pytest.raises(SystemExit):
        loader.parse_args(["--examples", "0"])


@pytest.mark.slow
def test_measure_returns_two_rows_per_mix_and_deletes_its_files(monkeypatch):
    folders = []
    make_folder = loader.tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        folders.append(make_folder(*args, **kwargs))
        return folders[-1]

    monkeypatch.setattr(loader.tempfile, "mkdtemp", recording_mkdtemp)
    lines = []
    rows = loader.measure(loader.parse_args(TINY), log=lines.append)
    assert len(rows) == 2 * len(loader.MIXES), [row["name"] for row in rows]
    for row in rows:
        assert set(("name", "ours", "baseline", "unit", "ratio")) <= set(row), row
        assert row["name"] and row["unit"] and "loader" in row["name"]
        for key in ("ours", "baseline", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, row
    names = [row["name"] for row in rows]
    for mix in loader.MIXES:
        assert f"loader {mix}: from_directory vs fusion_classifier training" in names
        assert f"loader {mix}: training from files vs from memory" in names
    assert lines, "the benchmark printed no details"
    assert folders and not os.path.exists(folders[0]), "the benchmark left its files behind"


def test_the_files_it_writes_load_with_every_mix(tmp_path):
    loader.write_files(str(tmp_path), examples=4, classes=2, frames=2, mixes=loader.MIXES)
    args = loader.parse_args(["--frames", "2", "--batch-size", "2"])
    for mix in loader.MIXES:
        splits = loader.load_splits(str(tmp_path), mix, args)
        features, _ = next(iter(splits.train))
        assert set(mix.split("+")) <= set(features)
        assert len(splits.train_examples) == 4 and not splits.skipped
