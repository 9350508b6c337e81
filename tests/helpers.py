"""Checks every registered model goes through; each model's own tests call them too."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.registry import get_entry


def build_small(name, **overrides):
    """The registered model ``name`` at its fast test configuration, compiled."""
    return mmzoo.build(name, **{**get_entry(name).test_config, **overrides})


def as_dict(outputs):
    """Outputs as a dict of NumPy arrays, keyed ``output`` for a single-output model."""
    if isinstance(outputs, dict):
        return {key: np.asarray(value) for key, value in outputs.items()}
    return {"output": np.asarray(outputs)}


def assert_outputs_close(expected, actual, atol=1e-5):
    expected, actual = as_dict(expected), as_dict(actual)
    assert sorted(expected) == sorted(actual)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], atol=atol, err_msg=f"output {key!r}")


def check_forward(model, batch_size=3):
    """A forward pass gives float32, finite outputs of the advertised shapes."""
    x, _ = mmzoo.dummy_batch(model, batch_size=batch_size, seed=1)
    outputs = as_dict(model(x, training=False))
    symbolic = model.output if isinstance(model.output, dict) else {"output": model.output}
    assert sorted(outputs) == sorted(symbolic)
    for key, value in outputs.items():
        assert value.shape == (batch_size,) + tuple(symbolic[key].shape[1:]), key
        assert value.dtype == np.float32, key
        assert np.all(np.isfinite(value)), key


def evaluate_loss(model, x, y):
    return model.evaluate(x, y, verbose=0, return_dict=True)["loss"]


def check_learns_a_batch(model, steps=40, batch_size=32, factor=0.9):
    """Training on one fixed batch (inputs and targets fixed: a learnable mapping) lowers its loss."""
    x, y = mmzoo.dummy_batch(model, batch_size=batch_size, seed=2)
    before = evaluate_loss(model, x, y)
    for _ in range(steps):
        loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    after = evaluate_loss(model, x, y)
    assert np.isfinite(loss)
    assert after < factor * before, f"loss went from {before:.4f} to {after:.4f}"


def check_config_round_trip(model):
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


def check_keras_file_round_trip(model, directory):
    """`.keras` save and a safe-mode load give a model with the same outputs."""
    x, _ = mmzoo.dummy_batch(model, batch_size=2, seed=3)
    path = str(directory / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert type(getattr(loaded, "optimizer", None)) is type(getattr(model, "optimizer", None))
    assert_outputs_close(model(x, training=False), loaded(x, training=False))


def check_saved_model_round_trip(model, directory):
    """A SavedModel export reloaded with TensorFlow serves the same outputs at a new batch size."""
    import tensorflow as tf

    model(mmzoo.dummy_batch(model, batch_size=2, seed=4)[0])
    path = str(directory / "saved_model")
    model.export(path, format="tf_saved_model", verbose=False)
    served = tf.saved_model.load(path)
    x, _ = mmzoo.dummy_batch(model, batch_size=5, seed=5)
    assert_outputs_close(model(x, training=False), served.serve(x))


def check_every_weight_gets_a_gradient(model):
    """timm's registry check: one training step's loss reaches every trainable weight (none is dead)."""
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    x, y = mmzoo.dummy_batch(model, batch_size=8, seed=3)
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    dead = [w.path for w, g in zip(model.trainable_weights, gradients) if g is None or not np.any(np.asarray(g))]
    assert model.trainable_weights and not dead, f"{model.name}: no gradient reaches {dead}"


def check_preset_round_trip(model, directory):
    """A trained model saved as a preset and rebuilt with ``mmzoo.build(folder)`` gives the same outputs."""
    x, y = mmzoo.dummy_batch(model, batch_size=4, seed=6)
    model.train_on_batch(x, y)  # weights that are not the initial ones
    folder = mmzoo.save_preset(model, directory / "preset", metadata={"trained_on": "a dummy batch"})
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "metadata.json", "model.weights.h5", "preprocessing.json"]
    rebuilt = mmzoo.build(str(folder))
    assert type(rebuilt) is type(model) and rebuilt.name == model.name
    as_json = lambda config: json.loads(json.dumps(config))  # noqa: E731  (tuples come back as lists)
    assert as_json(rebuilt.get_config()) == as_json(model.get_config())
    assert_outputs_close(model(x, training=False), rebuilt(x, training=False), atol=1e-6)
    return folder


def check_freeze_keeps_the_encoders(model):
    """``mmzoo.freeze(model, "encoders")``: a training step leaves every encoder weight as it was, moves the head's."""
    from mmzoo.models.anatomy import head_layers

    encoders = model.encoders
    assert encoders, f"{model.name} has no encoder"
    frozen = mmzoo.freeze(model, "encoders")
    assert frozen
    model.compile(**model.default_compile_arguments())
    encoder_weights = [w for part in encoders.values() for layer in (part if isinstance(part, list) else [part])
                       for w in layer.weights]
    head_weights = [w for layer in head_layers(model) for w in layer.trainable_weights]
    before = [np.array(w) for w in encoder_weights], [np.array(w) for w in head_weights]
    x, y = mmzoo.dummy_batch(model, batch_size=8, seed=7)
    for _ in range(2):
        model.train_on_batch(x, y)
    for weight, value in zip(encoder_weights, before[0]):
        np.testing.assert_array_equal(np.array(weight), value, err_msg=weight.path)
    if head_weights:
        assert any(not np.array_equal(np.array(w), v) for w, v in zip(head_weights, before[1])), "the head did not train"


def check_learns_the_embedded_data(model, epochs=3, n=256, factor=0.95):
    """A few epochs on the embedded dataset lower the loss on its validation split."""
    from mmzoo.data import synthetic

    validation = synthetic(model, n=128, split="validation", batch_size=64)
    before = model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    model.fit(synthetic(model, n=n, batch_size=32), epochs=epochs, verbose=0)
    after = model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert after < factor * before, f"validation loss went from {before:.4f} to {after:.4f}"


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, timeout, env=None, argv=()):
    """Run ``code`` in a fresh Python; returns (returncode, output). Killed on timeout."""
    full_env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"subprocess timed out after {timeout} s:\n{output[-3000:]}")
    return process.returncode, output


def result(output):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def free_ports(count):
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago (for multi-worker tests)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_env(workers, index, **extra):
    """The environment of worker ``index`` of a multi-worker cluster on ``workers`` ("host:port" strings)."""
    return {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_CONFIG": json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}),
        **extra,
    }


def check_missing_modalities(name, directory=None):
    """``missing_modalities=True``: a missing modality's input has no effect on any output; present ones do.

    Models of one modality refuse the option, naming it. For the others: one ``(batch,)``
    float input ``<modality>_present`` per modality; random values in every missing input
    (random flags, one example with every modality missing) leave the outputs unchanged and
    finite; a present input is read; the option survives ``get_config``; one train step
    gives a finite loss.
    """
    from mmzoo.models.presence import modalities_of

    plain = build_small(name)
    groups = modalities_of(list(plain.input))
    if len(set(groups.values())) < 2:
        with pytest.raises(ValueError, match="missing_modalities=True needs a model of two or more modalities"):
            build_small(name, missing_modalities=True)
        return
    model = build_small(name, missing_modalities=True)
    flags = sorted(key for key in model.input if key not in plain.input)
    assert flags == sorted(f"{m}_present" for m in set(groups.values()))
    assert all(tuple(model.input[k].shape) == (None,) and model.input[k].dtype == "float32" for k in flags)
    batch = 6
    x, y = mmzoo.dummy_batch(model, batch_size=batch, seed=1)
    rng = np.random.default_rng(3)
    for key in flags:
        x[key] = rng.integers(0, 2, size=batch).astype("float32")
        x[key][0], x[key][-1] = 1.0, 0.0  # example 0 has everything, the last one nothing
    x[flags[0]][1] = 0.0
    expected = as_dict(model(x, training=False))
    assert all(np.isfinite(v).all() for v in expected.values()), "an example with every modality missing gave NaN"
    for seed in (5, 6):  # whatever the missing inputs hold
        other, _ = mmzoo.dummy_batch(model, batch_size=batch, seed=seed)
        changed = dict(x)
        for key, modality in groups.items():
            missing = x[f"{modality}_present"] == 0
            noise = other[key] * (10 if other[key].dtype.kind == "f" and not key.endswith("_mask") else 1)
            changed[key] = np.where(missing.reshape((-1,) + (1,) * (x[key].ndim - 1)), noise, x[key])
        assert_outputs_close(expected, model(changed, training=False), atol=1e-5)
    # A present input is read: changing every input changes an output of an example with modalities.
    other, _ = mmzoo.dummy_batch(model, batch_size=batch, seed=7)
    changed = {key: (other[key] if key in groups else x[key]) for key in x}
    moved = as_dict(model(changed, training=False))
    assert any(not np.allclose(moved[k][:-1], expected[k][:-1], atol=1e-6) for k in expected)
    restored = type(model).from_config(model.get_config())
    assert sorted(restored.input) == sorted(model.input)
    if y is not None:
        logs = model.train_on_batch(x, y, return_dict=True)
        assert np.isfinite(logs["loss"])


def check_modality_dropout(name):
    """``modality_dropout=p`` on any model: a ``ModalityDropout`` that acts while training only.

    At inference the model is the plain one, weight for weight; a training step runs.
    Models of one modality refuse it, naming the option.
    """
    from mmzoo.layers import ModalityDropout
    from mmzoo.models.presence import modalities_of

    plain = build_small(name)
    if len(set(modalities_of(list(plain.input)).values())) < 2:
        with pytest.raises(ValueError, match=r"modality_dropout=0.5 needs a model of two or more modalities"):
            build_small(name, modality_dropout=0.5)
        return
    model = build_small(name, modality_dropout=0.5)
    assert sorted(model.input) == sorted(plain.input)  # no flags without missing_modalities
    assert any(isinstance(layer, ModalityDropout) for layer in model.layers)
    plain.set_weights(model.get_weights())
    x, y = mmzoo.dummy_batch(model, batch_size=4, seed=1)
    assert_outputs_close(plain(x, training=False), model(x, training=False), atol=1e-5)
    if y is not None:
        assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])
