"""The notebooks in ``notebooks/``: committed without outputs, every one runs top to bottom, and
what their prose claims holds.

Each is executed headlessly with papermill at small parameters (``EPOCHS=1``,
``N_SAMPLES=256``), offline, in a fresh kernel whose working directory is the repository
root (as ``papermill notebooks/NAME.ipynb out.ipynb -p EPOCHS 1 -p N_SAMPLES 256`` runs it),
with anything it exports redirected into a temporary folder. A notebook that can fetch data
runs on the embedded data (``OFFLINE``), so the test gives the same result with or without a
network. A cell that raises fails the test, naming the cell.

The prose states no measured number (the notebooks print what they measure). The claims it
does make are checked where they hold at the small sizes: the test appends a cell that
prints, as one JSON line, the values ``CLAIMS`` names from the notebook's namespace, and
checks them.
"""

import ast
import inspect
import json
import os
import pathlib
import re

import nbformat
import numpy as np
import papermill
import pytest

import mmzoo

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SMALL = {"EPOCHS": 1, "N_SAMPLES": 256}
# Per notebook, the parameters that keep it off the network: with DATA="auto", notebook 02
# downloads CIFAR-10 wherever a network is reachable, and the test would depend on it.
OFFLINE = {"02_cifar10_multimodal": {"DATA": "embedded"}}
# Per notebook, more parameters that keep the test small (notebook 07 generates its files).
SMALLER = {"07_fine_tuning": {"LABEL_COUNTS": [2, 5], "TEST_PER_CLASS": 10}, "05_fusion_comparison": {"SEEDS": 2}}
PROBE_MARK = "notebook test probe: "


def parameters_cell(notebook):
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and "parameters" in code_cells[0].metadata.get("tags", []), "first code cell is not tagged 'parameters'"
    return code_cells[0]


def parameter_names(notebook):
    tree = ast.parse(parameters_cell(notebook).source)
    return {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}


def prose(notebook):
    """The markdown of a notebook, without code blocks and inline code."""
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    return re.sub(r"`[^`]*`", "", re.sub(r"```.*?```", "", text, flags=re.DOTALL))


def default_reliability():
    return inspect.signature(mmzoo.data.synthetic).parameters["reliability"].default


# --- the claims of each notebook's prose, checked at the small sizes ------------------------


def recall_mean(recall, k):
    return np.mean([value for key, value in recall.items() if key.endswith(f"@{k}")])


def check_quickstart(values):
    # "Every point lies on the diagonal: the exported model serves the predictions of the model that was trained."
    assert values["largest_difference"] < 1e-4 and values["same_decision"] == 1, values


def check_cifar10(values):
    # The test run trains on the embedded data because DATA says so, not because no network was found.
    assert values == {"data_source": "embedded", "reason": "DATA = 'embedded'"}


def check_retrieval(values):
    # "measure recall@1/5/10 in both directions before training: chance level" (K / N)
    for k in (1, 5, 10):
        assert recall_mean(values["recall_before"], k) < 3 * k / values["n_test"], (k, values["recall_before"])
    # "when either side of a pair is missing": each side is there with probability `reliability`
    assert abs(values["incomplete_pairs"] - (1 - default_reliability() ** 2)) < 0.1, values["incomplete_pairs"]


def check_fusion(values):
    # "This notebook compares six of them": six of the models with several inputs and one `output`
    assert len(values["fusion_models"]) == 6 and set(values["fusion_models"]) <= set(values["multi_input_models"])
    # Section 2's best possible accuracies: a guess (right half the time) where all modalities are missing
    missing = 1 - default_reliability()
    assert values["best_possible"] == pytest.approx({str(n): 1 - missing**n / 2 for n in (1, 2, 3)})
    # "fusing several, it has to guess only when all of them are missing": never more often than with one
    ceilings = values["ceilings"]
    for key, ceiling in ceilings.items():
        name, setting = key.split("/")
        assert ceilings[f"{name}/all"] >= ceiling, key
    # dynamic_fusion's "three weights per example (image, text, audio, summing to 1)"
    assert values["weight_sum_deviation"] < 1e-5


def check_fine_tuning(values):
    # "served from the SavedModel alone": the export serves the fine-tuned model's predictions
    assert values["largest_difference"] < 1e-4, values
    # "with its class names": the export names label i as the loader did
    assert values["served_classes"] == values["trained_classes"], values
    # "Offline, the cell below says which files are missing and skips the part" (the test's Keras cache is empty)
    assert values["imagenet_skipped"] is True, values
    # "one line says how many tensors were loaded" / every run was measured at every label count
    assert sorted(values["label_counts"]) == sorted(map(int, values["fine_tuned"])) == sorted(map(int, values["scratch"]))


def check_custom_loop(values):
    # The custom loop reproduces fit (asserted in the notebook); distributed_fit "lands on the same weights"
    assert values["distributed_difference"] < 1e-4, values


CLAIMS = {  # notebook -> (the values to record, as a Python expression in its namespace; their check)
    "01_quickstart": (
        "{'largest_difference': largest_difference, 'same_decision': same_decision}",
        check_quickstart,
    ),
    "02_cifar10_multimodal": ("{'data_source': data_source, 'reason': reason}", check_cifar10),
    "04_cross_modal_retrieval": (
        "{'n_test': N_TEST, 'recall_before': recall_before, 'incomplete_pairs': incomplete_pairs.mean()}",
        check_retrieval,
    ),
    "05_fusion_comparison": (
        "{'fusion_models': list(FUSION_MODELS), 'multi_input_models': multi_input_models,"
        " 'best_possible': BEST_POSSIBLE, 'ceilings': {f'{n}/{s}': c for (n, s), c in ceilings.items()},"
        " 'weight_sum_deviation': np.abs(weights.sum(axis=1) - 1).max()}",
        check_fusion,
    ),
    "06_custom_training_loop": (
        "{'distributed_difference': max_weight_difference(distributed_model, fit_model)}",
        check_custom_loop,
    ),
    "07_fine_tuning": (
        "{'largest_difference': largest_difference, 'imagenet_skipped': imagenet_history is None,"
        " 'label_counts': list(LABEL_COUNTS), 'fine_tuned': results['fine-tuned'], 'scratch': results['from scratch'],"
        " 'served_classes': served.class_names, 'trained_classes': list(splits.class_names)}",
        check_fine_tuning,
    ),
}
# Figures the prose may state: quoted from a document, chance levels, settings, thresholds.
STATED_FIGURES = {
    "01_quickstart": {"50%"},  # chance, two balanced classes
    "02_cifar10_multimodal": {"76.29%", "0.76285", "0.76"},  # document 000's claim and log
    "04_cross_modal_retrieval": {"100%"},
    "05_fusion_comparison": {"50%", "0.1", "0.9"},  # chance; the thresholds of a printed share
    "06_custom_training_loop": {"0.001"},  # the learning rate
}


# --- tests ----------------------------------------------------------------------------------


def test_the_seven_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_cifar10_multimodal.ipynb",
        "03_audio_and_emotion.ipynb",
        "04_cross_modal_retrieval.ipynb",
        "05_fusion_comparison.ipynb",
        "06_custom_training_loop.ipynb",
        "07_fine_tuning.ipynb",
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_the_prose_states_no_measured_number(path):
    """Percentages and decimals in the prose go stale when the code changes: the notebook prints them."""
    figures = re.findall(r"\d+(?:[.,]\d+)?\s?%|(?<![\w.§])\d+\.\d+(?![\w.])", prose(nbformat.read(path, as_version=4)))
    unexpected = sorted(set(figures) - STATED_FIGURES.get(path.stem, set()))
    assert not unexpected, f"the prose states {unexpected}: print them from the notebook instead"


def test_the_test_runs_every_notebook_offline():
    for path in NOTEBOOKS:
        if "DATA" in parameter_names(nbformat.read(path, as_version=4)):
            assert OFFLINE.get(path.stem, {}).get("DATA") == "embedded", f"{path.name} could download its data"


def test_the_prose_about_missing_modalities_matches_the_embedded_data():
    """Several notebooks explain the embedded data as missing each modality from a quarter of the examples."""
    saying = [path.name for path in NOTEBOOKS if "a quarter of the" in prose(nbformat.read(path, as_version=4))]
    assert saying, "no notebook says it any more: drop this test"
    assert default_reliability() == 0.75, f"{saying} say each modality is missing from a quarter of the examples"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_runs_top_to_bottom_with_small_parameters(path, tmp_path, monkeypatch):
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures become outputs
    notebook = nbformat.read(path, as_version=4)
    parameters = {**SMALL, **OFFLINE.get(path.stem, {}), **SMALLER.get(path.stem, {})}
    if "EXPORT_DIR" in parameter_names(notebook):
        parameters["EXPORT_DIR"] = str(tmp_path / "saved_models")
    expression, check = CLAIMS.get(path.stem, ("{}", None))
    notebook.cells.append(
        nbformat.v4.new_code_cell(f"import json\nprint({PROBE_MARK!r} + json.dumps({expression}, default=float))")
    )
    source, output = tmp_path / f"probed_{path.name}", tmp_path / path.name
    nbformat.write(notebook, source)
    papermill.execute_notebook(
        str(source),
        str(output),
        parameters=parameters,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=900,  # a cell may train several models; CI shares 2 cores between 2 workers
    )
    executed = nbformat.read(output, as_version=4)  # a cell that raised made papermill raise already
    assert any(
        "image/png" in output.get("data", {}) for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
    ), "the notebook drew no figure"
    printed = "".join(output.get("text", "") for output in executed.cells[-1].outputs)
    values = json.loads(printed.split(PROBE_MARK, 1)[1])
    if check is not None:
        check(values)
