"""Models and layers are backend-agnostic: every model builds, predicts and trains on JAX without TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mmzoo
from helpers import build_small

pytest.importorskip("jax")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    # Any TensorFlow import in model or layer code fails, and "tensorflow" stays out of
    # sys.modules, as on the GPU machine, where it is not installed (a None entry there
    # would make Keras believe TensorFlow is loaded and reach for it).
    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")

    sys.meta_path.insert(0, NoTensorFlow())
    import keras, numpy as np, mmzoo
    from mmzoo.data import synthetic_arrays
    assert keras.backend.backend() == "jax"
    results = {}
    for name in mmzoo.list_models():
        model = mmzoo.build(name, **mmzoo.registry.get_entry(name).test_config)
        x, y = synthetic_arrays(model, n=4)
        logs = model.train_on_batch(x, y, return_dict=True)
        results[name] = float(logs["loss"])
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
    assert sorted(results) == mmzoo.list_models()
    assert all(np.isfinite(loss) for loss in results.values()), results
    np.testing.assert_allclose(reloaded, model.predict(x, verbose=0), atol=1e-5)
