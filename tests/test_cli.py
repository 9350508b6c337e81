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
