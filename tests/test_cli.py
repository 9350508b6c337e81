"""The `mmzoo` command line: listing, cards, and one-line errors with a non-zero exit."""

import subprocess
import sys

import pytest

import mmzoo
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
    trained = _mmzoo(
        "train", "concat_fusion", "--samples", "256", "--epochs", "2", "--batch-size", "32",
        "--export-dir", str(exports), "--save", saved, "--verbose", "0",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "test: accuracy=" in trained.stdout
    assert f"exported and reloaded the SavedModel: {exports / 'concat_fusion' / '1'}" in trained.stdout
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
