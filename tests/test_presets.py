"""Presets, weights, head swaps, freezing and fine-tuning, beyond the registry-wide round trip."""

import json
import os

import numpy as np
import pytest

import mmzoo
from helpers import build_small, run_python, result
from mmzoo.models.anatomy import head_layers
from mmzoo.presets import PresetError, read_preset


def trained_small(name="fusion_classifier", **overrides):
    model = build_small(name, **overrides)
    x, y = mmzoo.dummy_batch(model, batch_size=8, seed=1)
    for _ in range(2):
        model.train_on_batch(x, y)
    return model, x


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    model, x = trained_small()
    folder = mmzoo.save_preset(
        model, tmp_path_factory.mktemp("presets") / "small", class_names=["a", "b", "c"],
        loader_options={"image_size": [16, 16]}, metadata={"trained_on": "dummy", "metrics": {"accuracy": 0.5}},
    )
    return folder, model, x


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


# --- writing and reading -----------------------------------------------------------------------


def test_the_preset_folder_describes_the_model(preset):
    folder, model, _ = preset
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "fusion_classifier" and config["format"] == "mmzoo-preset"
    assert config["config"]["num_classes"] == 3 and "name" not in config["config"]
    assert config["keras_version"] and config["mmzoo_version"] == mmzoo.__version__
    read = read_preset(folder)
    assert read["preprocessing"]["class_names"] == ["a", "b", "c"]
    assert read["preprocessing"]["loader"] == {"image_size": [16, 16]}
    assert read["metadata"]["trained_on"] == "dummy" and read["metadata"]["metrics"] == {"accuracy": 0.5}
    assert "saved" in read["metadata"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_preset_loads_the_same_in_a_new_process(preset, tmp_path):
    folder, model, x = preset
    np.savez(tmp_path / "x.npz", **x)
    code = (
        "import sys, numpy as np, mmzoo\n"
        "x = dict(np.load(sys.argv[2]))\n"
        "model = mmzoo.build(sys.argv[1])\n"
        "np.save(sys.argv[3], model.predict(x, verbose=0))\n"
        "print('RESULT 1')\n"
    )
    code_, output = run_python(code, timeout=240, argv=(str(folder), str(tmp_path / "x.npz"), str(tmp_path / "y.npy")))
    assert code_ == 0, output
    assert result(output) == 1
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0), atol=1e-6)


def test_weights_from_a_weights_file(preset, tmp_path):
    _, model, x = preset
    path = tmp_path / "small.weights.h5"
    model.save_weights(str(path))
    loaded = build_small("fusion_classifier", weights=str(path))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(PresetError, match="do not fit 'fusion_classifier'"):
        build_small("fusion_classifier", width=12, weights=str(path))


def test_a_head_swap_keeps_every_other_weight(preset, capsys):
    folder, model, _ = preset
    swapped = mmzoo.build(str(folder), num_classes=5)
    line = capsys.readouterr().out.strip()
    head = {id(w) for layer in head_layers(swapped) for w in layer.weights}
    total = len(swapped.weights)
    assert line == f"loaded {total - len(head)} of {total} weight tensors from {folder}; new head for 5 classes"
    assert swapped.output.shape[-1] == 5
    for old, new in zip(model.weights, swapped.weights):
        if id(new) in head:
            assert tuple(new.shape) != tuple(old.shape)  # new, freshly initialised, for 5 classes
        else:
            np.testing.assert_array_equal(np.array(new), np.array(old), err_msg=new.path)
    fresh = build_small("fusion_classifier", num_classes=5)
    assert [tuple(w.shape) for w in fresh.weights] == [tuple(w.shape) for w in swapped.weights]


def test_presets_of_a_document_model_swap_heads_too(tmp_path):
    model, _ = trained_small("attention_fusion")
    folder = mmzoo.save_preset(model, tmp_path / "af")
    count = [k for k, v in model.get_config().items() if v == model.output.shape[-1] and "class" in k][0]
    swapped = mmzoo.build(str(folder), **{count: model.output.shape[-1] + 2})
    assert swapped.output.shape[-1] == model.output.shape[-1] + 2
    kept = [np.array_equal(np.array(a), np.array(b)) for a, b in zip(model.weights, swapped.weights)
            if tuple(a.shape) == tuple(b.shape)]
    assert all(kept) and len(kept) == len(model.weights) - 2  # all but the output kernel and bias


# --- freezing and fine-tuning ---------------------------------------------------------------------


def test_freeze_keeps_frozen_weights_through_an_epoch_of_train():
    model = build_small("fusion_classifier")
    frozen = mmzoo.freeze(model, ["image", "audio"])
    assert frozen == ["image_encoder", "audio_encoder"]
    x, y = mmzoo.dummy_batch(model, batch_size=16, seed=3)
    mmzoo.training.adapt_inputs(model, (x, y))  # train adapts input statistics that have none, frozen or not
    before = {key: [np.array(w) for w in enc.weights] for key, enc in model.encoders.items()}
    mmzoo.train(model, (x, y), epochs=1, verbose=0)
    after = {key: [np.array(w) for w in enc.weights] for key, enc in model.encoders.items()}
    for key in ("image", "audio"):
        for a, b in zip(before[key], after[key]):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(before["text"], after["text"]))


def test_finetune_runs_both_phases(preset):
    folder, _, _ = preset
    model = mmzoo.build(str(folder), num_classes=4)
    x, _ = mmzoo.dummy_batch(model, batch_size=16, seed=4)
    y = np.arange(16) % 4
    seen = []

    class Watch(__import__("keras").callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(sorted(layer.name for layer in model.encoders.values() if not layer.trainable))

    history = mmzoo.finetune(model, (x, y), validation_data=(x, y), head_epochs=2, epochs=1, verbose=0,
                             callbacks=[Watch()])
    assert history.phases == [("head", 2), ("all", 1)]
    assert len(history.history["loss"]) == 3 and history.epoch == [0, 1, 2]
    assert seen == [["audio_encoder", "image_encoder", "text_encoder"], []]
    assert history.model is model


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head_epochs": -1}, "`head_epochs` must be an integer of 0 or more. Received: head_epochs=-1"),
        ({"head_epochs": 0, "epochs": 0}, "nothing to train"),
        ({"learning_rate": 0}, "`learning_rate` must be a positive number"),
    ],
)
def test_finetune_refuses_bad_arguments(kwargs, message):
    model = build_small("mlp")
    with pytest.raises(ValueError, match=message):
        mmzoo.finetune(model, mmzoo.dummy_batch(model, batch_size=4), **kwargs)


def test_freeze_names_what_it_cannot_find():
    with pytest.raises(ValueError, match="has no encoder for 'video': its encoders read"):
        mmzoo.freeze(build_small("fusion_classifier"), "video")


# --- bad presets ----------------------------------------------------------------------------------


def copy_of(folder, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def edit_config(folder, change):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_a_folder_that_is_not_a_preset(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PresetError, match=f"{tmp_path} is not a preset: it has no config.json"):
        mmzoo.build(str(tmp_path))


def test_a_missing_or_truncated_weight_file(preset, tmp_path):
    folder = copy_of(preset[0], tmp_path)
    weights = folder / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(PresetError, match=f"{weights} is not a readable weight file"):
        mmzoo.build(str(folder))
    weights.unlink()
    with pytest.raises(PresetError, match=f"{weights} is missing"):
        mmzoo.build(str(folder))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(model="resnet9000"), "names the model 'resnet9000', which is not in the zoo"),
        (lambda c: c.update(class_name="os.system"), "names the class 'os.system', which is not an mmzoo class"),
        (lambda c: c["config"].update(extra={"class_name": "Lambda", "config": {"function": "x"}}),
         "holds a Lambda layer at config.extra"),
        (lambda c: c.update(version=99), "has preset version 99"),
    ],
)
def test_a_config_outside_the_zoo_is_refused(preset, tmp_path, change, message):
    folder = copy_of(preset[0], tmp_path)
    edit_config(folder, change)
    with pytest.raises(PresetError, match=message):
        mmzoo.build(str(folder))


def test_weights_of_another_format_or_model(preset, tmp_path):
    other = tmp_path / "model.keras"
    other.write_bytes(b"PK\x03\x04 not weights")
    with pytest.raises(PresetError, match="`weights` must be None, a preset folder"):
        build_small("mlp", weights=str(other))
    with pytest.raises(PresetError, match="is a 'fusion_classifier' model; it cannot be loaded into 'mlp'"):
        build_small("mlp", weights=str(preset[0]))
    with pytest.raises(PresetError, match="Received: weights=.*typo' \\(no such file or folder\\)"):
        build_small("mlp", weights=str(tmp_path / "typo"))


def test_save_preset_never_replaces_what_is_not_a_preset(preset, tmp_path):
    _, model, _ = preset
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a preset"):
        mmzoo.save_preset(model, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "keep me"
    folder = mmzoo.save_preset(model, tmp_path / "p")
    before = snapshot(folder)
    with pytest.raises(ValueError, match="exists already; pass overwrite=True"):
        mmzoo.save_preset(model, folder)
    assert snapshot(folder) == before


def test_a_failed_save_leaves_nothing(preset, tmp_path, monkeypatch):
    _, model, _ = preset
    folder = mmzoo.save_preset(model, tmp_path / "p")
    before = snapshot(folder)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        mmzoo.save_preset(model, folder, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        mmzoo.save_preset(model, tmp_path / "new")
    assert snapshot(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["p"]


def test_save_preset_refuses_a_model_outside_the_zoo(tmp_path):
    import keras

    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="save_preset\\(\\) saves models built by mmzoo.build"):
        mmzoo.save_preset(plain, tmp_path / "p")
    assert not (tmp_path / "p").exists()
