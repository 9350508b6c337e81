"""mmzoo.train and the custom distributed loop: mixed precision, XLA, tf.distribute, faults, data checks.

The distributed and fault tests run in subprocesses: logical CPU devices must be set
before TensorFlow starts, a multi-worker strategy at program start-up, and a killed run
has to be a killed process.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.data import synthetic, synthetic_arrays
from mmzoo.registry import get_entry
from mmzoo.training import TrainingDivergedError, distributed_fit, metrics_table, train
from tests.helpers import as_dict, build_small, free_ports, result, run_python, worker_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW_MODELS = {"pretrained_fusion", "vgg16_features"}  # VGG16/ResNet50 towers: 3-10 s an epoch


def small(name):
    return get_entry(name).test_config


def data(n=16, batch_size=8, **kwargs):
    """The embedded dataset as a function of the model (train builds the model first)."""
    return lambda model: synthetic(model, n=n, batch_size=batch_size, **kwargs)


def check_float32_outputs(model):
    x, _ = mmzoo.dummy_batch(model, batch_size=2)
    for key, value in as_dict(model(x, training=False)).items():
        assert value.dtype == np.float32, key
        assert np.all(np.isfinite(value)), key


# --- mixed precision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODELS else n for n in mmzoo.list_models()],
)
def test_every_model_trains_under_mixed_precision(name):
    for policy in ("mixed_bfloat16", "mixed_float16"):
        keras.config.set_dtype_policy("float32")
        history = train(name, data(), epochs=1, mixed_precision=policy, verbose=0, **small(name))
        model = history.model
        assert np.isfinite(history.history["loss"][-1]), policy
        # The policy reached the model's layers (built after it was set) ...
        compute = policy.split("_")[1]
        assert model.dtype_policy.name == policy
        assert any(layer.compute_dtype == compute for layer in model._flatten_layers(include_self=False))
        # ... its outputs stay float32, the loss is scaled under float16 only ...
        check_float32_outputs(model)
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16"), policy
        # ... and the global policy is back as it was.
        assert keras.config.dtype_policy().name == "float32"


def test_auto_mixed_precision_is_float32_on_cpu_and_arrays_train_too():
    history = train("mlp", data(), verbose=0, **small("mlp"))
    assert history.model.dtype_policy.name == "float32"
    assert not isinstance(history.model.optimizer, keras.optimizers.LossScaleOptimizer)
    model = history.model
    x, y = synthetic_arrays(model, n=16)
    history = train(model, (x, y), epochs=2, verbose=0)  # the user's model, already compiled: trained as it is
    assert history.model is model and history.epoch == [0, 1]
    with pytest.raises(ValueError, match=r"missing keys \['features'\]; extra keys \['feature'\]"):
        train(model, ({"feature": x["features"]}, y), verbose=0)


def test_policy_is_restored_after_an_error():
    keras.config.set_dtype_policy("mixed_bfloat16")
    with pytest.raises(ValueError, match="missing keys"):
        train("mlp", lambda model: synthetic("concat_fusion", n=8, batch_size=4), mixed_precision="mixed_float16")
    assert keras.config.dtype_policy().name == "mixed_bfloat16"


# --- XLA ----------------------------------------------------------------------------------


@pytest.mark.xla_auto
def test_auto_jit_compile_follows_the_measured_table_on_cpu():
    from mmzoo.training import CPU_XLA_MODELS, resolve_jit_compile

    assert CPU_XLA_MODELS <= set(mmzoo.list_models())  # a renamed model would lose its entry silently
    assert {"attention_fusion", "mha_fusion"} <= CPU_XLA_MODELS  # the LSTM models: 1.4-1.7x measured
    # Built by name, compiled by build() or train(): XLA exactly where it was measured to pay.
    assert mmzoo.build("attention_fusion", **small("attention_fusion")).jit_compile is True
    assert mmzoo.build("cifar_multimodal", **small("cifar_multimodal")).jit_compile is False  # 0.4-0.9x
    assert train("mha_fusion", data(), verbose=0, **small("mha_fusion")).model.jit_compile is True
    assert train("fusion_classifier", data(), verbose=0, **small("fusion_classifier")).model.jit_compile is False
    # A model of the user's: a recurrent layer turns XLA on, anything else leaves it off.
    tokens = keras.Input((6,), dtype="int32")
    recurrent = keras.Model(tokens, keras.layers.Dense(1)(keras.layers.GRU(4)(keras.layers.Embedding(10, 4)(tokens))))
    features = keras.Input((4,))
    dense = keras.Model(features, keras.layers.Dense(1)(features))
    assert resolve_jit_compile(recurrent) is True and resolve_jit_compile(dense) is False
    assert resolve_jit_compile(dense, True) is True and resolve_jit_compile(recurrent, False) is False
    with pytest.raises(ValueError, match="jit_compile='on'"):
        resolve_jit_compile(dense, "on")
    # A compiled model given to train keeps its own choice under "auto"; True or False recompiles it.
    model = mmzoo.build("mlp", **small("mlp"))
    model.compile(**model.default_compile_arguments(), jit_compile=True)
    assert train(model, data()(model), verbose=0).model.jit_compile is True
    assert train(model, data()(model), jit_compile=False, verbose=0).model.jit_compile is False


def test_batch_size_batches_arrays_and_is_refused_for_datasets():
    model = mmzoo.build("mlp", **small("mlp"))
    x, y = synthetic_arrays(model, n=40)
    steps = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    train(model, (x, y), batch_size=16, verbose=0, callbacks=[counter])
    assert len(steps) == 3  # 16 + 16 + 8
    with pytest.raises(ValueError, match="Dataset data is batched already.*batch_size=16"):
        train(model, synthetic(model, n=16, batch_size=8), batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        train(model, (x, y), batch_size=0, verbose=0)


def _recorded_dataset(model, n, batch_size, seen):
    """``n`` examples reshuffled each pass, batched; ``seen`` gets each example's index as it is read."""
    import tensorflow as tf

    x, y = synthetic_arrays(model, n=n)

    def record(index):
        seen.append(int(index))
        return index

    def example(index):
        index = tf.ensure_shape(tf.py_function(record, [index], tf.int64), [])
        return {key: tf.gather(value, index) for key, value in x.items()}, tf.gather(y, index)

    return tf.data.Dataset.range(n).shuffle(n, seed=1, reshuffle_each_iteration=True).map(example).batch(batch_size)


def test_a_dataset_trains_whole_epochs_reshuffled_from_one_iterator():
    import tensorflow as tf

    from mmzoo.training.fit import epochs_from_one_iterator

    model = mmzoo.build("mlp", **small("mlp"))
    seen, steps = [], []
    data = _recorded_dataset(model, 20, 8, seen)
    repeated, steps_per_epoch = epochs_from_one_iterator(data)
    assert steps_per_epoch == 3 and int(repeated.cardinality()) == int(tf.data.INFINITE_CARDINALITY)
    counter = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: steps.append(0),
        on_train_batch_end=lambda batch, logs: steps.__setitem__(-1, steps[-1] + 1),
    )
    history = train(model, data, epochs=3, verbose=0, callbacks=[counter],
                    early_stopping_patience=None, reduce_lr_patience=None)
    assert steps == [3, 3, 3] and len(history.history["loss"]) == 3  # 8 + 8 + 4 examples an epoch
    epochs = [seen[i * 20 : (i + 1) * 20] for i in range(3)]  # reading ahead only adds at the end
    assert all(sorted(epoch) == list(range(20)) for epoch in epochs)  # every example once an epoch
    assert len({tuple(epoch) for epoch in epochs}) == 3  # in a new order each epoch

    # A dataset of unknown length keeps Keras' own epochs (an iterator each), whole too.
    unknown = data.filter(lambda x, y: True)
    assert epochs_from_one_iterator(unknown) == (unknown, None)
    steps.clear()
    train(model, unknown, epochs=2, verbose=0, callbacks=[counter],
          early_stopping_patience=None, reduce_lr_patience=None)
    assert steps == [3, 3]
    arrays = synthetic_arrays(model, n=8)
    assert epochs_from_one_iterator(arrays) == (arrays, None)


@pytest.mark.parametrize("name", ["mlp", "concat_fusion", "emotion"])
def test_jit_compile_trains_models_that_support_it(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no XLA warning for these
        warnings.filterwarnings("ignore", message=".*shuffle.*")
        history = train(name, data(), jit_compile=True, verbose=0, **small(name))
    assert history.model.jit_compile is True
    assert np.isfinite(history.history["loss"][-1])


def test_jit_compile_warns_once_naming_the_layer_xla_cannot_compile():
    # On a GPU, Keras marks an LSTM on the cuDNN kernel supports_jit=False and turns XLA off
    # for the whole model; on CPU the LSTM compiles, so the GPU state is set by hand (before
    # the model is compiled: build() would compile it with XLA, which "auto" picks for it).
    model = mmzoo.build("attention_fusion", compile=False, **small("attention_fusion"))
    model.get_layer("text_lstm").supports_jit = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = train(model, synthetic(model, n=16, batch_size=8), jit_compile=True, verbose=0)
    messages = [str(w.message) for w in caught if "jit" in str(w.message).lower() or "XLA" in str(w.message)]
    assert len(messages) == 1, messages
    assert "'text_lstm' (LSTM)" in messages[0] and "LSTM(use_cudnn=False)" in messages[0]
    assert history.model.jit_compile is False
    assert np.isfinite(history.history["loss"][-1])


# --- the custom loop ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["multitask_hybrid", "cross_modal_retrieval"])
def test_distributed_fit_matches_fit_on_the_default_strategy(name):
    """The corrected 004 §4.3 loop reaches fit's weights (multi-output loss; model-defined loss)."""
    ours = build_small(name)
    reference = build_small(name)
    reference.set_weights(ours.get_weights())
    before = ours.get_weights()
    history = distributed_fit(ours, synthetic(ours, n=32, batch_size=8, shuffle=False), epochs=2, verbose=0)
    expected = reference.fit(synthetic(ours, n=32, batch_size=8, shuffle=False), epochs=2, verbose=0, shuffle=False)
    assert history.epoch == [0, 1]
    np.testing.assert_allclose(history.history["loss"], expected.history["loss"], rtol=1e-5)
    for a, b, c in zip(ours.get_weights(), reference.get_weights(), before):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert any(not np.allclose(a, c) for a, c in zip(ours.get_weights(), before))


def test_distributed_fit_validation_and_early_stop():
    model = build_small("mlp")
    stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    history = distributed_fit(
        model,
        synthetic(model, n=32, batch_size=8),
        epochs=5,
        validation_data=synthetic(model, n=16, split="validation", batch_size=8),
        callbacks=[stop],
        verbose=0,
    )
    assert history.epoch == [0, 1]
    assert sorted(history.history) == ["loss", "val_loss"]
    assert all(np.isfinite(history.history["val_loss"]))


def test_distributed_fit_resumes_from_a_backup(tmp_path):
    """BackupAndRestore works with the custom loop too (how multi-worker runs resume)."""

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt  # the run dies after its first epoch: no clean-up

    model = build_small("mlp")
    dataset = synthetic(model, n=16, batch_size=8)
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        callbacks = [keras.callbacks.BackupAndRestore(backup), Crash()]
        distributed_fit(model, dataset, epochs=3, callbacks=callbacks, verbose=0)
    after_first = model.get_weights()
    fresh = build_small("mlp")
    seen = []
    probe = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: seen.append(fresh.get_weights()))
    history = distributed_fit(
        fresh, dataset, epochs=3, callbacks=[keras.callbacks.BackupAndRestore(backup), probe], verbose=0
    )
    assert history.epoch == [1, 2]
    for restored, saved in zip(seen[0], after_first):
        np.testing.assert_array_equal(restored, saved)


# --- faults ---------------------------------------------------------------------------------


def test_nan_loss_stops_with_a_message_naming_the_epoch(tmp_path):
    def poison(epoch, logs):  # after epoch 1 the weights are NaN: epoch 2 diverges at its first batch
        if epoch == 0:
            history_model.set_weights([np.full_like(w, np.nan) for w in history_model.get_weights()])

    history_model = build_small("mlp")
    with pytest.raises(TrainingDivergedError, match=r"epoch 2/4, batch 1: the loss became nan") as error:
        train(
            history_model,
            synthetic(history_model, n=32, batch_size=8),
            epochs=4,
            checkpoint_dir=tmp_path,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=poison)],
            verbose=0,
        )
    assert (error.value.epoch, error.value.batch) == (2, 1)
    assert error.value.history.epoch == [0, 1]  # stopped: epochs 3 and 4 never ran
    assert keras.config.dtype_policy().name == "float32"


def test_nan_targets_stop_in_the_first_epoch():
    # NaN targets, not inputs: ReLU on CPU (oneDNN) maps NaN inputs to 0, and the loss stays finite.
    model = build_small("mlp")
    x, y = synthetic_arrays(model, n=24)
    y[16:] = np.nan  # the third batch
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1/3, batch 3"):
        train(model, dataset, epochs=3, verbose=0)


def test_checkpoint_dir_keeps_the_best_model(tmp_path, capsys):
    history = train(
        "mlp",
        data(n=32),
        validation_data=data(n=16, split="validation"),
        epochs=2,
        checkpoint_dir=tmp_path / "ckpt",
        verbose=2,
        **small("mlp"),
    )
    assert (tmp_path / "ckpt" / "best.keras").exists()
    assert not (tmp_path / "ckpt" / "backup").exists()  # a finished run deletes its backup
    loaded = keras.saving.load_model(tmp_path / "ckpt" / "best.keras", safe_mode=True)
    assert type(loaded) is type(history.model)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out  # Keras' progress lines
    table = metrics_table(history)
    assert table in out
    assert "val_" not in table and "validation" in table
    (loss_line,) = [line for line in table.splitlines() if line.startswith("loss ")]
    assert loss_line.split()[1:] == [f"{history.history[k][-1]:.4f}" for k in ("loss", "val_loss")]


def test_tensorboard_dir(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:  # TensorFlow 2.21 does not install it
        with pytest.raises(ImportError, match="pip install tensorboard"):
            train("mlp", data(), tensorboard_dir=tmp_path / "tb", verbose=0, **small("mlp"))
        assert not (tmp_path / "tb").exists()  # refused before training
        return
    train("mlp", data(), tensorboard_dir=tmp_path / "tb", verbose=0, **small("mlp"))
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_metrics_table_lines_up_train_and_validation():
    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.75], "val_loss": [1.2, 0.625]}
    history.epoch = [0, 1]
    lines = metrics_table(history).splitlines()
    assert "(epoch 2)" in lines[0]
    assert lines[1].split() == ["loss", "0.5000", "0.6250"]
    assert lines[2].split() == ["accuracy", "0.7500", "-"]


# --- bad arguments and data -----------------------------------------------------------------


def test_bad_arguments_raise_naming_them(monkeypatch):
    with pytest.raises(ValueError, match=r"mixed_precision='fp8'") as error:
        train("mlp", data(), mixed_precision="fp8")
    assert "mixed_bfloat16" in str(error.value)
    with pytest.raises(ValueError, match=r"strategy='tpu'") as error:
        train("mlp", data(), strategy="tpu")
    assert "mirrored" in str(error.value) and "multi_worker" in str(error.value)
    model = build_small("mlp")
    with pytest.raises(ValueError, match=r"units=8"):
        train(model, synthetic(model, n=8, batch_size=4), units=8)
    with pytest.raises(ValueError, match="jit_compile='yes'"):
        train("mlp", data(), jit_compile="yes")
    with pytest.raises(ValueError, match="no argument `unit`"):
        train("mlp", data(), unit=3)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        train("mlp", data(), strategy="multi_worker")


def test_a_built_model_keeps_its_policy():
    model = build_small("mlp")
    with pytest.raises(ValueError, match=r"built under the dtype policy 'float32'.*mixed_float16"):
        train(model, synthetic(model, n=8, batch_size=4), mixed_precision="mixed_float16")


def test_data_that_does_not_fit_the_model_is_refused_before_training():
    model = build_small("concat_fusion")
    other = synthetic(build_small("attention_fusion"), n=8, batch_size=4)
    x, y = synthetic_arrays(model, n=8)
    before = model.get_weights()
    import tensorflow as tf

    renamed = tf.data.Dataset.from_tensor_slices(({"image_input": x["image_input"], "text": x["text_input"]}, y))
    with pytest.raises(ValueError, match=r"missing keys \['text_input'\]; extra keys \['text'\]"):
        train(model, renamed.batch(4), verbose=0)
    with pytest.raises(ValueError, match="not batched"):
        train(model, tf.data.Dataset.from_tensor_slices((x, y)), verbose=0)
    with pytest.raises(ValueError, match=r"Input 'text_input' of `train_data` has shape \(None, 10\)"):
        train(model, other, verbose=0)  # same keys, attention_fusion's shapes and dtypes
    with pytest.raises(ValueError, match="inputs only"):
        train(model, tf.data.Dataset.from_tensor_slices(x).batch(4), verbose=0)
    with pytest.raises(ValueError, match=r"`validation_data`.*missing keys"):
        train(model, synthetic(model, n=8, batch_size=4), validation_data=renamed.batch(4), verbose=0)
    for a, b in zip(model.get_weights(), before):  # refused before any step
        np.testing.assert_array_equal(a, b)


# --- distribution and killed runs: subprocesses ---------------------------------------------

PRELUDE = """
import json, os, sys
import numpy as np
import keras
import mmzoo
from mmzoo.data import synthetic
from mmzoo.registry import get_entry
from mmzoo.training import train, distributed_fit
"""


MIRRORED = PRELUDE.replace("import keras\n", "import keras\nimport tensorflow as tf\n") + """
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
config = get_entry("mlp").test_config
out = {}
# By name: built in the strategy scope.
history = train("mlp", lambda m: synthetic(m, n=32, batch_size=8), epochs=2, strategy="mirrored", verbose=0, **config)
out["replicas"] = history.model.distribute_strategy.num_replicas_in_sync
out["devices"] = list(history.model.distribute_strategy.extended.worker_devices)
out["loss"] = history.history["loss"]
# A model built outside: trained as a copy in the scope, weights copied back; the same
# global-batch mean gradients as one device, so the same weights as plain fit.
model = mmzoo.build("mlp", **config)
plain = mmzoo.build("mlp", **config)
plain.set_weights(model.get_weights())
start = model.get_weights()
train(model, synthetic(model, n=32, batch_size=8, shuffle=False), epochs=2, strategy="mirrored", verbose=0)
plain_history = plain.fit(synthetic(model, n=32, batch_size=8, shuffle=False), epochs=2, verbose=0, shuffle=False)
out["vs_one_device"] = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), plain.get_weights()))
out["moved"] = max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), start))
# The custom loop on the same two replicas (a strategy of its own: no collective clash).
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    looped = mmzoo.build("mlp", **config)
looped.set_weights(start)
looped_history = distributed_fit(
    looped, synthetic(model, n=32, batch_size=8, shuffle=False), epochs=2, strategy=strategy, verbose=0)
out["loop_loss"], out["plain_loss"] = looped_history.history["loss"], plain_history.history["loss"]
out["loop_vs_one_device"] = max(float(np.abs(a - b).max()) for a, b in zip(looped.get_weights(), plain.get_weights()))
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus():
    code, output = run_python(MIRRORED, timeout=240)
    assert code == 0, output[-3000:]
    out = result(output)
    assert out["replicas"] == 2 and [d[-5:] for d in out["devices"]] == ["CPU:0", "CPU:1"]
    assert all(np.isfinite(out["loss"]))
    assert out["moved"] > 1e-3  # the given model got the trained weights back
    assert out["vs_one_device"] < 1e-5
    assert out["loop_vs_one_device"] < 1e-5
    # Losses averaged over the global batch (not summed over replicas): fit's per-epoch losses.
    np.testing.assert_allclose(out["loop_loss"], out["plain_loss"], rtol=1e-5)


WORKER = PRELUDE + """
class Start(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        np.savez(sys.argv[1] + "_start.npz", *self.model.get_weights())

keras.utils.set_random_seed(int(os.environ["SEED"]))  # different seeds: worker 0's initial values win
history = train(
    "mlp",
    lambda m: synthetic(m, n=64, batch_size=16),
    validation_data=lambda m: synthetic(m, n=32, split="validation", batch_size=16),
    epochs=2, strategy="multi_worker", callbacks=[Start()], checkpoint_dir=os.environ["CKPT"], verbose=0,
    **get_entry("mlp").test_config)
np.savez(sys.argv[1] + "_end.npz", *history.model.get_weights())
print("RESULT " + json.dumps({"history": history.history,
                              "replicas": history.model.distribute_strategy.num_replicas_in_sync}))
"""


@pytest.mark.slow
def test_two_multi_worker_processes_train_to_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    try:
        for index in range(2):
            env = worker_env(workers, index, PYTHONPATH=ROOT, SEED=str(10 + index), CKPT=str(tmp_path / "ckpt"))
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(tmp_path / f"w{index}")],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        outputs = [process.communicate(timeout=240)[0] for process in processes]
        for index, process in enumerate(processes):
            assert process.returncode == 0, "\n\n".join(f"worker {i}:\n{o[-2500:]}" for i, o in enumerate(outputs))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    results = [result(output) for output in outputs]
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["history"] == results[1]["history"]
    assert all(np.isfinite(results[0]["history"]["val_loss"]))
    end = [np.load(tmp_path / f"w{i}_end.npz") for i in range(2)]
    start = [np.load(tmp_path / f"w{i}_start.npz") for i in range(2)]
    for key in end[0]:
        np.testing.assert_array_equal(start[0][key], start[1][key])  # broadcast from worker 0
        np.testing.assert_array_equal(end[0][key], end[1][key])
    assert any(not np.allclose(start[0][k], end[0][k]) for k in end[0])
    # The chief alone writes the best model; each worker's backup is gone after a finished run.
    assert (tmp_path / "ckpt" / "best.keras").exists()
    assert not any((tmp_path / "ckpt" / "backup").glob("worker-*"))


RESUMABLE = PRELUDE + """
checkpoint_dir, state = sys.argv[1], sys.argv[2]

class Probe(keras.callbacks.Callback):
    # Runs after BackupAndRestore: sees the restored weights, and the weights it saved.
    def on_train_begin(self, logs=None):
        np.savez(state + "_begin.npz", *self.model.get_weights())

    def on_epoch_end(self, epoch, logs=None):
        np.savez(state + "_epoch%d.npz" % epoch, *self.model.get_weights())
        if epoch == 0 and os.environ.get("KILL"):
            os.kill(os.getpid(), 9)  # SIGKILL: no clean-up of any kind

history = train("mlp", lambda m: synthetic(m, n=32, batch_size=8), epochs=3, checkpoint_dir=checkpoint_dir,
                callbacks=[Probe()], verbose=0, **get_entry("mlp").test_config)
print("RESULT " + json.dumps({"epoch": history.epoch, "loss": history.history["loss"]}))
"""


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    checkpoints, state = str(tmp_path / "ckpt"), str(tmp_path / "state")
    program = RESUMABLE.replace("sys.argv[1], sys.argv[2]", f"{checkpoints!r}, {state!r}")
    code, output = run_python(program, 180, {"KILL": "1"})
    assert code == -signal.SIGKILL, output[-3000:]
    assert os.path.exists(os.path.join(checkpoints, "backup")), "no backup left by the killed run"
    assert not os.path.exists(state + "_epoch1.npz")
    code, output = run_python(program, 180)
    assert code == 0, output[-3000:]
    resumed = result(output)
    assert resumed["epoch"] == [1, 2]  # epochs 2 and 3: with the killed run's epoch 1, three in all
    assert all(np.isfinite(resumed["loss"]))
    saved, restored = np.load(state + "_epoch0.npz"), np.load(state + "_begin.npz")
    for key in saved:
        np.testing.assert_array_equal(saved[key], restored[key])  # started from the end of epoch 1
    assert not os.path.exists(os.path.join(checkpoints, "backup"))
    assert os.path.exists(os.path.join(checkpoints, "best.keras"))


# --- a diverged run keeps its backup ---------------------------------------------------------


class _PoisonableBatches(keras.utils.PyDataset):
    """``(inputs, targets)`` in batches of 8; NaN targets while ``poisoned`` (set by a callback)."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.poisoned = x, y, False

    def __len__(self):
        return len(self.y) // 8

    def __getitem__(self, index):
        part = slice(index * 8, (index + 1) * 8)
        y = np.full_like(self.y[part], np.nan) if self.poisoned else self.y[part]
        return {key: value[part] for key, value in self.x.items()}, y


def _weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def test_a_diverged_run_keeps_the_backup_of_its_last_finite_epoch_and_resumes_from_it(tmp_path):
    """NaN targets in epoch 3: epochs 1-2 stay in the backup (weights and epoch), best.keras stays
    the finite epoch-2 model, and a second run with a lower learning rate resumes at epoch 3."""
    model = build_small("mlp")
    x, y = synthetic_arrays(model, n=32)
    batches = _PoisonableBatches(x, y)
    ckpt = tmp_path / "ckpt"
    ended, best_bytes = {}, {}

    class Poison(keras.callbacks.Callback):  # runs after the backup and the checkpoint of each epoch
        def on_epoch_begin(self, epoch, logs=None):
            batches.poisoned = epoch == 2

        def on_epoch_end(self, epoch, logs=None):
            ended[epoch] = _weights_of(self.model)
            if (ckpt / "best.keras").exists():
                best_bytes[epoch] = (ckpt / "best.keras").read_bytes()

    with pytest.raises(TrainingDivergedError, match=r"epoch 3/5, batch 1") as error:
        train(model, batches, epochs=5, checkpoint_dir=ckpt, callbacks=[Poison()], verbose=0)
    assert error.value.history.epoch == [0, 1, 2]
    assert "backup of epoch 2" in str(error.value) and "same checkpoint_dir" in str(error.value)
    assert not all(np.all(np.isfinite(w)) for w in ended[2]), "the poisoned epoch should have NaN weights"

    # The backup is the end of epoch 2 (index 1): its epoch number, and its finite weights.
    backup = ckpt / "backup" / "state"
    assert backup.is_dir(), f"the diverged run removed its backup: {sorted(p.name for p in ckpt.iterdir())}"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 2
    saved = build_small("mlp")
    saved.load_weights(backup / "latest.weights.h5")
    for restored, expected in zip(_weights_of(saved), ended[1]):
        assert np.all(np.isfinite(restored))
        np.testing.assert_array_equal(restored, expected)
    # best.keras was not overwritten by the poisoned epoch.
    assert (ckpt / "best.keras").read_bytes() == best_bytes[1]
    best = keras.saving.load_model(ckpt / "best.keras", safe_mode=True)
    assert all(np.all(np.isfinite(w)) for w in best.get_weights())

    # Start again, same checkpoint_dir, clean data and a lower learning rate: epochs 3-5 only.
    again = build_small("mlp")
    arguments = again.default_compile_arguments()
    arguments["optimizer"] = keras.optimizers.Adam(learning_rate=1e-5)
    again.compile(**arguments)
    began = []
    probe = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: began.append(_weights_of(again)))
    history = train(again, _PoisonableBatches(x, y), epochs=5, checkpoint_dir=ckpt, callbacks=[probe], verbose=0)
    assert history.epoch == [2, 3, 4]  # resumed, not from scratch
    for restored, expected in zip(began[0], ended[1]):
        np.testing.assert_array_equal(restored, expected)
    assert float(keras.ops.convert_to_numpy(again.optimizer.learning_rate)) == pytest.approx(1e-5)
    assert all(np.isfinite(history.history["loss"]))
    assert all(np.all(np.isfinite(w)) for w in again.get_weights())
    assert not (ckpt / "backup").exists()  # a finished run removes its backup


def test_a_run_diverging_in_its_first_epoch_writes_no_nan_checkpoint(tmp_path):
    """ModelCheckpoint's first comparison is against None, so a NaN first epoch would be 'best'."""
    model = build_small("mlp")
    x, y = synthetic_arrays(model, n=16)
    batches = _PoisonableBatches(x, y)
    batches.poisoned = True
    with pytest.raises(TrainingDivergedError, match=r"epoch 1/2, batch 1"):
        train(model, batches, epochs=2, checkpoint_dir=tmp_path, verbose=0)
    assert not (tmp_path / "best.keras").exists(), "a NaN model was saved as the best one"
    assert not (tmp_path / "backup" / "state").exists(), "a NaN epoch was backed up"


def test_a_nan_monitored_value_is_never_the_best_checkpoint(tmp_path):
    """save_best_only: a NaN first val_loss is not saved (Keras compares it with None), nor does it
    block the finite epochs after it (every comparison with NaN is False)."""
    from mmzoo.checkpoints import AtomicModelCheckpoint

    path = tmp_path / "best.keras"
    checkpoint = AtomicModelCheckpoint(str(path), monitor="val_loss", mode="min", save_best_only=True)
    checkpoint.set_model(build_small("mlp"))
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 0.7, "val_loss": float("nan")})
    assert not path.exists(), "a NaN val_loss was saved as the best model"
    checkpoint.on_epoch_end(1, {"loss": 0.6, "val_loss": 0.5})
    assert path.exists(), "the first finite val_loss after a NaN one was not saved"


# --- the training recipe (best weights, early stopping, lower rate on a plateau) ------------


class _SpoilFrom(keras.callbacks.Callback):
    """From epoch ``start`` on, replace the weights with large noise at the start of each epoch."""

    def __init__(self, start):
        super().__init__()
        self.start, self.end_weights, self.rates = start, [], []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch >= self.start:
            rng = np.random.default_rng(epoch)
            self.model.set_weights([50 * rng.standard_normal(w.shape).astype(w.dtype) for w in self.model.get_weights()])
            self.model.optimizer.learning_rate.assign(0.0)  # the epoch keeps the spoilt weights

    def on_epoch_end(self, epoch, logs=None):
        self.end_weights.append([w.copy() for w in self.model.get_weights()])
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_the_recipe_keeps_the_best_epoch_and_stops_early():
    spoil = _SpoilFrom(start=2)
    history = train(
        "mlp", data(n=64), validation_data=data(n=32, split="validation"), epochs=12, verbose=0,
        early_stopping_patience=3, reduce_lr_patience=None, callbacks=[spoil], **small("mlp"),
    )
    losses = history.history["val_loss"]
    assert len(losses) == 5  # epochs 3-5 spoilt: no better val_loss for 3 epochs
    best = int(np.argmin(losses))
    assert best < 2
    for kept, at_best in zip(history.model.get_weights(), spoil.end_weights[best]):
        np.testing.assert_array_equal(kept, at_best)


def test_the_recipe_lowers_the_learning_rate_on_a_plateau():
    spoil = _SpoilFrom(start=10**6)
    model = build_small("mlp")
    model.compile(**{**model.default_compile_arguments(), "optimizer": keras.optimizers.Adam(1e-9)})
    train(model, data(n=64), validation_data=data(n=32, split="validation"), epochs=4, verbose=0,
          reduce_lr_patience=1, early_stopping_patience=None, callbacks=[spoil])
    assert spoil.rates[0] == pytest.approx(1e-9) and spoil.rates[-1] < 1e-9  # 1e-9 learns nothing: a plateau


def test_no_recipe_without_validation_data_and_bad_recipe_arguments():
    from mmzoo.training.callbacks import recipe_callbacks

    model = build_small("mlp")
    assert recipe_callbacks(model, False, 10, 4, True) == []
    recipe = recipe_callbacks(model, True, 10, 4, True)
    assert [type(c) for c in recipe] == [keras.callbacks.ReduceLROnPlateau, keras.callbacks.EarlyStopping]
    assert recipe[1].restore_best_weights and recipe[1].patience == 10 and recipe[0].patience == 4
    assert recipe_callbacks(model, True, None, None, False) == []
    with pytest.raises(ValueError, match="`early_stopping_patience` must be a positive integer"):
        train("mlp", data(n=32), validation_data=data(n=16, split="validation"), early_stopping_patience=0,
              verbose=0, **small("mlp"))
    with pytest.raises(ValueError, match="`restore_best_weights` must be True or False. Received: 'yes'"):
        train("mlp", data(n=32), restore_best_weights="yes", verbose=0, **small("mlp"))
