"""Models and layers are backend-agnostic: every model builds, trains and evaluates on JAX without TensorFlow.

This is the GPU machine's path (it has JAX and no TensorFlow): ``mmzoo.train`` on NumPy
arrays in bfloat16 with XLA, and ``strategy="data_parallel"`` over several devices (here
XLA host devices on the CPU), in subprocesses where importing TensorFlow fails.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mmzoo
from helpers import build_small

pytest.importorskip("jax")

NO_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, json, sys

    # Any TensorFlow import fails, and "tensorflow" stays out of sys.modules, as on the GPU
    # machine, where it is not installed (a None entry there would make Keras believe
    # TensorFlow is loaded and reach for it).
    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

    sys.meta_path.insert(0, NoTensorFlow())
    """
)

SCRIPT = NO_TENSORFLOW + textwrap.dedent(
    """
    import keras, numpy as np, mmzoo
    from mmzoo.data import synthetic_arrays
    assert keras.backend.backend() == "jax"
    results, evaluated, policies = {}, {}, {}
    for name in mmzoo.list_models():
        # The GPU path: mmzoo.train on NumPy arrays, bfloat16 and XLA, then evaluate.
        config = mmzoo.registry.get_entry(name).test_config
        model = mmzoo.build(name, compile=False, **config)
        x, y = synthetic_arrays(model, n=8)
        xv, yv = synthetic_arrays(model, n=8, split="validation")
        history = mmzoo.train(name, (x, y), validation_data=(xv, yv), epochs=1, batch_size=4,
                              mixed_precision="mixed_bfloat16", jit_compile=True, verbose=0, **config)
        trained = history.model
        policies[name] = [trained.dtype_policy.name, bool(trained.jit_compile)]
        results[name] = float(history.history["loss"][-1])
        evaluated[name] = float(trained.evaluate(xv, yv, verbose=0, return_dict=True)["loss"])
    loaded = keras.saving.load_model(sys.argv[1], safe_mode=True)
    x = {k: np.asarray(v) for k, v in np.load(sys.argv[2]).items()}
    results["__reloaded__"] = np.asarray(loaded(x)).tolist()
    preset = mmzoo.build(sys.argv[3])  # a preset saved on TensorFlow, rebuilt and loaded on JAX
    results["__preset__"] = np.asarray(preset(x)).tolist()
    results["__frozen__"] = mmzoo.freeze(preset, "encoders")
    config = mmzoo.registry.get_entry("fusion_classifier").test_config
    masked = mmzoo.build("fusion_classifier", missing_modalities=True, fusion="gating", **config)
    x, y = mmzoo.dummy_batch(masked, batch_size=4)
    results["__masked__"] = float(masked.train_on_batch(x, y, return_dict=True)["loss"])
    results["__evaluated__"] = evaluated
    results["__policies__"] = policies
    results["__tensorflow__"] = "tensorflow" in sys.modules
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_every_model_trains_on_jax_and_loads_a_tensorflow_keras_file(tmp_path):
    model = build_small("mha_fusion")
    x, _ = mmzoo.dummy_batch(model, batch_size=3)
    model.save(tmp_path / "model.keras")
    mmzoo.save_preset(model, tmp_path / "preset")
    np.savez(tmp_path / "inputs.npz", **x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "model.keras"), str(tmp_path / "inputs.npz"),
         str(tmp_path / "preset")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    reloaded = np.asarray(results.pop("__reloaded__"))
    np.testing.assert_allclose(np.asarray(results.pop("__preset__")), model.predict(x, verbose=0), atol=1e-5)
    assert results.pop("__frozen__")
    assert np.isfinite(results.pop("__masked__"))  # presence flags and modality dropout on JAX
    assert results.pop("__tensorflow__") is False
    evaluated = results.pop("__evaluated__")
    assert sorted(evaluated) == mmzoo.list_models()
    assert all(np.isfinite(loss) for loss in evaluated.values()), evaluated  # cross_modal_retrieval was NaN
    policies = results.pop("__policies__")
    assert all(policy == ["mixed_bfloat16", True] for policy in policies.values()), policies
    assert sorted(results) == mmzoo.list_models()
    assert all(np.isfinite(loss) for loss in results.values()), results
    np.testing.assert_allclose(reloaded, model.predict(x, verbose=0), atol=1e-5)


def run_without_tensorflow(script, *args, devices=1, timeout=600):
    """Run ``script`` on Keras with JAX, TensorFlow blocked, on ``devices`` XLA host devices; its last line as JSON."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW + script, *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


DATA_PARALLEL = textwrap.dedent(
    """
    import keras, numpy as np, mmzoo
    from mmzoo.data import synthetic_arrays

    config = dict(mmzoo.registry.get_entry("fusion_classifier").test_config, dropout=0.0, modality_dropout=0.0)
    keras.utils.set_random_seed(1)
    first = mmzoo.build("fusion_classifier", compile=False, **config)
    initial = first.get_weights()
    x, y = synthetic_arrays(first, n=8)
    out = {"devices": len(keras.distribution.list_devices())}
    for strategy in (None, "data_parallel"):
        model = mmzoo.build("fusion_classifier", compile=False, **config)
        model.set_weights(initial)
        # One global batch of 8 a step: with two devices, 4 examples on each.
        history = mmzoo.train(model, (x, y), epochs=2, batch_size=8, strategy=strategy, verbose=0,
                              jit_compile=True, early_stopping_patience=None, reduce_lr_patience=None)
        trained = history.model
        out[str(strategy)] = {
            "loss": history.history["loss"],
            "weights": [w.tolist() for w in model.get_weights()],
            "devices_per_variable": sorted({len(v.value.sharding.device_set) for v in trained.trainable_variables}),
        }
    try:
        mmzoo.train("fusion_classifier", (x, y), strategy="mirrored", **config)
    except ValueError as error:
        out["mirrored"] = str(error)
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_data_parallel_over_two_devices_gives_the_loss_of_one_device():
    out = run_without_tensorflow(DATA_PARALLEL, devices=2)
    assert out["devices"] == 2
    single, parallel = out["None"], out["data_parallel"]
    assert parallel["devices_per_variable"] == [2]  # every variable replicated on both devices
    assert single["devices_per_variable"] == [1]
    np.testing.assert_allclose(parallel["loss"], single["loss"], rtol=1e-4)
    assert parallel["loss"][1] != single["loss"][0]  # it trained: the second epoch's loss moved
    for a, b in zip(parallel["weights"], single["weights"]):  # copied back into the given model
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    assert "needs Keras on TensorFlow" in out["mirrored"] and "data_parallel" in out["mirrored"]


def test_keras_distribution_is_refused_on_tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("checks the TensorFlow backend's refusal")
    with pytest.raises(ValueError, match="runs on Keras with JAX .*this Keras runs on tensorflow"):
        mmzoo.train("mlp", (np.zeros((4, 128), "float32"), np.zeros((4, 1), "float32")), strategy="data_parallel")


@pytest.mark.slow
def test_gpu_benchmark_runs_on_jax_without_tensorflow(tmp_path):
    root = pathlib.Path(__file__).resolve().parents[1]
    script = textwrap.dedent(
        f"""
        import runpy
        import mmzoo
        batch_sizes, train = [], mmzoo.train
        def recording_train(*args, **kwargs):
            batch_sizes.append(kwargs.get("batch_size"))
            return train(*args, **kwargs)
        mmzoo.train = recording_train
        output = sys.argv[1]
        sys.argv = ["gpu.py", "--small", "--models", "mlp", "concat_fusion", "--examples", "16",
                    "--batch-size", "8", "--repeats", "1", "--json", output]
        runpy.run_path({str(root / "benchmarks" / "gpu.py")!r}, run_name="__main__")
        print(json.dumps({{"rows": json.load(open(output)), "tensorflow": "tensorflow" in sys.modules,
                          "batch_sizes": sorted(set(batch_sizes))}}))
        """
    )
    out = run_without_tensorflow(script, tmp_path / "rows.json")
    assert out["tensorflow"] is False
    assert out["batch_sizes"] == [8]  # --batch-size reaches every train call
    assert [row["name"] for row in out["rows"]] == [
        "gpu mlp: bfloat16 + XLA vs float32 without XLA",
        "gpu concat_fusion: bfloat16 + XLA vs float32 without XLA",
    ]
    assert all(row["ours"] > 0 and row["baseline"] > 0 and row["unit"] == "samples/s" for row in out["rows"])


UNIT_NORMALIZATION_AT_ZERO = textwrap.dedent(
    """
    import jax, keras, numpy as np
    from mmzoo.layers import UnitNormalization

    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    x[1] = 0.0
    weights = np.arange(4, dtype="float32")
    def gradient(layer):
        return np.asarray(jax.grad(lambda v: (layer(v) * weights).sum())(x))
    ours, theirs = gradient(UnitNormalization()), gradient(keras.layers.UnitNormalization())
    print(json.dumps({"ours_finite": bool(np.all(np.isfinite(ours))),
                      "keras_nan_at_zero": bool(np.isnan(theirs[1]).any()),
                      "same_elsewhere": bool(np.allclose(ours[[0, 2]], theirs[[0, 2]], atol=1e-6))}))
    """
)


def test_unit_normalization_has_a_finite_gradient_at_zero_on_jax():
    # On TensorFlow Keras' own layer is finite there too: only JAX shows what the layer is for.
    out = run_without_tensorflow(UNIT_NORMALIZATION_AT_ZERO)
    assert out == {"ours_finite": True, "keras_nan_at_zero": True, "same_elsewhere": True}


FOLDER_ON_JAX = textwrap.dedent(
    """
    import mmzoo

    x, y = mmzoo.data.arrays.load_arrays(sys.argv[1])  # as the README writes it, without TensorFlow
    arguments = json.loads(sys.argv[2])
    history = mmzoo.train("fusion_classifier", (x, y), epochs=2, batch_size=4, mixed_precision="mixed_bfloat16",
                          jit_compile=True, verbose=0, **arguments)
    model = history.model
    print(json.dumps({"loss": history.history["loss"], "inputs": sorted(model.input),
                      "accuracy": model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"],
                      "tensorflow": "tensorflow" in sys.modules}))
    """
)


@pytest.mark.slow
def test_a_folder_loaded_to_arrays_trains_on_jax_without_tensorflow(tmp_path):
    from mmzoo.data import from_directory
    from mmzoo.data.arrays import save_arrays, to_arrays
    from mmzoo.training import split_build_arguments
    from tests.test_data_loaders import make_tree

    data = from_directory(make_tree(tmp_path / "tree", per_class=4), image_size=(12, 12), sequence_length=6,
                          audio_length=1600, validation_split=0.25, batch_size=3)
    x, y = to_arrays(data.train)
    assert sorted(x) == ["audio", "audio_mask", "image", "text"] and len(y) == 6
    save_arrays(tmp_path / "train.npz", x, y)
    arguments = split_build_arguments("fusion_classifier", data.train, data.class_names, data.vectorizer)
    arguments["inputs"] = {key: list(shape) for key, shape in arguments["inputs"].items()}
    arguments.update(image_filters=[4], audio_filters=[4], num_mel_bins=8, width=8, embedding_size=4)
    out = run_without_tensorflow(FOLDER_ON_JAX, tmp_path / "train.npz", json.dumps(arguments))
    assert out["tensorflow"] is False
    assert out["inputs"] == sorted(x)
    assert all(np.isfinite(out["loss"])) and 0.0 <= out["accuracy"] <= 1.0
