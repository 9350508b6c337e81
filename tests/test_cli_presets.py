"""The command line's presets: --save-preset, mmzoo info PRESET, --weights with a head swap, --head-epochs."""

import json

import numpy as np

import mmzoo
from mmzoo.cli import main
from test_cli_fusion import RATE, SMALL, _one_line_error, write_folder


def _train(data, tmp_path, *more):
    return ["train", "fusion_classifier", "--data", str(data), "--image-size", "16,16", "--sample-rate", str(RATE),
            "--audio-length", "4000", "--sequence-length", "6", "--epochs", "1", *SMALL, "--export-dir", "",
            "--verbose", "0", *more]


def test_save_a_preset_then_fine_tune_it_on_other_classes(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=6)
    preset = tmp_path / "preset"
    assert main(_train(data, tmp_path, "--save-preset", str(preset))) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"saved the preset to {preset}" in out
    test_line = next(line for line in out.splitlines() if line.startswith("test: "))
    metadata = json.loads((preset / "metadata.json").read_text())
    assert metadata["trained_on"] == str(data) and metadata["epochs"] == 1
    assert test_line == "test: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metadata["metrics"]["test"].items()))
    preprocessing = json.loads((preset / "preprocessing.json").read_text())
    assert preprocessing["class_names"] == ["high", "low", "mid"]
    assert preprocessing["loader"]["sample_rate"] == RATE and preprocessing["vectorizers"]["text"]["vocabulary"]

    assert main(["info", str(preset)]) == 0
    card = capsys.readouterr().out
    assert "model: fusion_classifier" in card and "classes (3): high, low, mid" in card
    assert f"trained on: {data}" in card and "test: accuracy=" in card

    # Two new classes, fine-tuned from the preset: a new head, every other tensor loaded.
    other = write_folder(tmp_path / "other", per_class=6, classes=("left", "right"), seed=1)
    tuned = tmp_path / "tuned"
    assert main(_train(other, tmp_path, "--weights", str(preset), "--head-epochs", "1",
                       "--save-preset", str(tuned))) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    model = mmzoo.build(str(tuned))
    total = len(model.weights)
    assert f"loaded {total - 2} of {total} weight tensors from {preset}; new head for 2 classes" in out
    assert json.loads((tuned / "metadata.json").read_text())["epochs"] == 2  # one head epoch, one of everything
    original = mmzoo.build(str(preset))
    assert model.output.shape[-1] == 2 and original.output.shape[-1] == 3


def test_bad_weights_and_preset_arguments_are_one_line_errors(tmp_path, capsys):
    data = write_folder(tmp_path / "data", per_class=4)
    (tmp_path / "plain").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (["--weights", str(tmp_path / "plain")], "the folder is not a preset"),
        (["--weights", str(tmp_path / "notes.txt")], "expected a preset folder"),
        (["--save-preset", str(tmp_path / "plain")], "it exists already"),
        (["--head-epochs", "1", "--strategy", "mirrored"], "does not combine with --strategy"),
    ]
    for more, message in cases:
        assert main(_train(data, tmp_path, *more)) == 2
        assert message in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes.txt", "plain"]
    assert main(["info", str(tmp_path / "plain")]) == 2
    assert "is not a preset" in _one_line_error(capsys, "info")


def test_info_still_shows_model_cards(capsys):
    assert main(["info", "mlp"]) == 0
    assert "mlp" in capsys.readouterr().out
    np.testing.assert_equal(main(["info", "nonexistent_model"]), 2)
    assert "Unknown model name" in _one_line_error(capsys, "info")
