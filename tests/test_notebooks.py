"""The notebooks in ``notebooks/``: committed without outputs, and every one runs top to bottom.

Each is executed headlessly with papermill at small parameters (``EPOCHS=1``,
``N_SAMPLES=256``), offline, in a fresh kernel whose working directory is the repository
root (as ``papermill notebooks/NAME.ipynb out.ipynb -p EPOCHS 1 -p N_SAMPLES 256`` runs it),
with anything it exports redirected into a temporary folder.
A cell that raises fails the test, naming the cell.
"""

import ast
import os
import pathlib

import nbformat
import papermill
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SMALL = {"EPOCHS": 1, "N_SAMPLES": 256}


def parameters_cell(notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and "parameters" in code_cells[0].metadata.get("tags", []), "first code cell is not tagged 'parameters'"
    return code_cells[0]


def parameter_names(notebook):
    tree = ast.parse(parameters_cell(notebook).source)
    return {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}


def test_the_six_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_cifar10_multimodal.ipynb",
        "03_audio_and_emotion.ipynb",
        "04_cross_modal_retrieval.ipynb",
        "05_fusion_comparison.ipynb",
        "06_custom_training_loop.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_without_outputs_and_with_a_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {index} has outputs: clear them"
    names = parameter_names(notebook)
    assert {"EPOCHS", "N_SAMPLES", "SEED"} <= names, f"parameters cell defines only {sorted(names)}"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_runs_top_to_bottom_with_small_parameters(path, tmp_path, monkeypatch):
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures become outputs
    parameters = dict(SMALL)
    if "EXPORT_DIR" in parameter_names(nbformat.read(path, as_version=4)):
        parameters["EXPORT_DIR"] = str(tmp_path / "saved_models")
    output = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters=parameters,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )
    executed = nbformat.read(output, as_version=4)  # a cell that raised made papermill raise already
    assert any(
        "image/png" in output.get("data", {}) for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
    ), "the notebook drew no figure"
