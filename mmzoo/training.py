"""Training: ``mmzoo.train`` and the custom distributed training loop.

``train(model_or_name, train_data, ...)`` is Keras ``fit`` with what a real run needs around it:

- **mixed precision**: ``mixed_precision="auto"`` trains in ``mixed_float16`` when a GPU is
  visible and in float32 on CPU; ``"mixed_bfloat16"``, ``"mixed_float16"`` and ``"float32"``
  can be forced. The model is built *after* the dtype policy is set (every output layer of
  an mmzoo model computes in float32, so outputs stay float32), Keras wraps the optimizer
  in a ``LossScaleOptimizer`` under ``mixed_float16``, and the previous global dtype policy
  is restored when ``train`` returns (or raises).
- **XLA**: ``jit_compile`` goes to ``compile``; ``"auto"`` is Keras' own choice (XLA on GPU
  only: on CPU it was measured slower). With ``jit_compile=True`` on a model that has a
  layer XLA cannot compile (``supports_jit=False``: lookup layers, an LSTM/GRU on the cuDNN
  kernel), ``train`` warns once, naming the layers and the XLA-friendly variant
  (``LSTM(use_cudnn=False)``), and trains without XLA.
- **distribution** on TensorFlow's own engine: ``strategy="mirrored"``
  (``tf.distribute.MirroredStrategy`` over every GPU, else every logical CPU device),
  ``strategy="multi_worker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``), or any
  ``tf.distribute.Strategy``. Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy``
  (keras-team/keras#20585, "Attempt to convert a value (PerReplica...)"), so multi-worker
  runs train with :func:`distributed_fit`, a custom distributed step.
- **faults**: with ``checkpoint_dir``, ``BackupAndRestore`` (``checkpoint_dir/backup``) lets
  a run killed mid-way resume from its last finished epoch when started again, and
  ``ModelCheckpoint`` keeps the best model in ``checkpoint_dir/best.keras`` (on
  ``val_loss``, or ``loss`` without validation data). Both write through a temporary
  name and a rename (:mod:`mmzoo.checkpoints`), so a kill during a save never leaves a
  half-written backup or checkpoint. A NaN or infinite loss always stops
  the run (``TerminateOnNaN``) and ``train`` raises :class:`TrainingDivergedError`,
  naming the epoch and batch; the backup of the last finished epoch is then kept (never
  overwritten by NaN weights), so the run can be started again from it.
- ``tensorboard_dir`` adds ``TensorBoard``; Keras progress bars follow ``verbose``, and a
  table of the last epoch's training and validation metrics is printed at the end.
- The data is checked before anything trains: the dataset's input keys must be the
  model's (a clear error names the missing and extra keys), batched, of the model's shapes.

:func:`distributed_fit` is also the corrected form of document 004 §4.3's training loop,
which mixed a ``train_on_batch`` loop with ``fit`` and gave ``fit`` a ``batch_size`` for a
dataset: one ``tf.function`` step that runs ``strategy.run`` on each replica's part of the
batch, averages the per-example losses over the *global* batch
(``tf.nn.compute_average_loss``), and lets the Keras optimizer all-reduce and apply the
gradients. With no strategy it runs on the default strategy and gives the same weights as
``fit``.

Example:
>>> import mmzoo
>>> from mmzoo.data import synthetic
>>> history = mmzoo.train(
...     "mlp", lambda model: synthetic(model, n=64, batch_size=16), epochs=2,
...     verbose=0, input_shape=(16,), units=8)
>>> len(history.history["loss"])
2
"""

import importlib.util
import json
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np

from mmzoo.checkpoints import AtomicBackupAndRestore, AtomicModelCheckpoint
from mmzoo.registry import build
from mmzoo.validation import check_positive_int

MIXED_PRECISION_CHOICES = ("auto", "mixed_float16", "mixed_bfloat16", "float32")
STRATEGY_CHOICES = ("mirrored", "multi_worker")
JIT_CHOICES = ("auto", True, False)

_KERAS_JIT_WARNING = "Model doesn't support `jit_compile=True`"
_multi_worker_strategy = None
_mirrored_strategies = {}


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite: training stopped.

    Attributes:
        epoch: the 1-based epoch in which it happened.
        batch: the 1-based batch of that epoch.
        loss: the loss value that stopped training.
        history: the ``History`` of the run up to there.
    """

    def __init__(self, message, epoch, batch, loss, history=None):
        super().__init__(message)
        self.epoch, self.batch, self.loss, self.history = epoch, batch, loss, history


# --- argument resolution ------------------------------------------------------------------


def resolve_mixed_precision(mixed_precision):
    """The dtype policy name ``mixed_precision`` stands for.

    ``"auto"`` is ``"mixed_float16"`` when TensorFlow sees a GPU, ``"float32"`` otherwise.
    Anything but :data:`MIXED_PRECISION_CHOICES` raises ``ValueError``.
    """
    if not isinstance(mixed_precision, str) or mixed_precision not in MIXED_PRECISION_CHOICES:
        raise ValueError(
            f"`mixed_precision` must be one of {', '.join(map(repr, MIXED_PRECISION_CHOICES))}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    if mixed_precision != "auto":
        return mixed_precision
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def multi_worker_strategy():
    """The process's ``tf.distribute.MultiWorkerMirroredStrategy``, created once from ``TF_CONFIG``.

    TensorFlow configures the collective ops of a multi-worker strategy only at program
    start-up, before any other TensorFlow work (building a model or a dataset). Call this
    first in a worker program, or let :func:`train` create it by giving it a model name
    and the data as a function of the model. Later calls return the same strategy.
    """
    global _multi_worker_strategy
    if _multi_worker_strategy is not None:
        return _multi_worker_strategy
    raw = os.environ.get("TF_CONFIG")
    try:
        config = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError(
            "strategy='multi_worker' reads the cluster from the TF_CONFIG environment variable: "
            'a JSON object like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}, set in each worker process. '
            f"Received: TF_CONFIG={raw!r}"
        )
    import tensorflow as tf

    try:
        _multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "TensorFlow can only start a multi-worker strategy before any other TensorFlow "
            "work in the process. Call mmzoo.training.multi_worker_strategy() at the top of "
            "the worker program, or pass train() a model name and the data as a function of "
            "the model (train_data=lambda model: ...), so that train() creates the strategy "
            f"first. ({error})"
        ) from None
    return _multi_worker_strategy


def resolve_strategy(strategy):
    """A ``tf.distribute.Strategy`` for ``strategy`` (None stays None).

    ``"mirrored"``: ``MirroredStrategy`` over every GPU, or over every logical CPU device
    when there is no GPU (two logical CPUs make two replicas on one machine), created once
    per process and reused;
    ``"multi_worker"``: :func:`multi_worker_strategy`; a ``tf.distribute.Strategy`` is used
    as it is. Anything else raises ``ValueError``.
    """
    if strategy is None:
        return None
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if not isinstance(strategy, str) or strategy not in STRATEGY_CHOICES:
        raise ValueError(
            f"`strategy` must be None, one of {', '.join(map(repr, STRATEGY_CHOICES))}, or a "
            f"tf.distribute.Strategy. Received: strategy={strategy!r}"
        )
    if strategy == "multi_worker":
        return multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = tuple(d.name for d in gpus) or tuple(d.name for d in tf.config.list_logical_devices("CPU"))
    # One strategy per device set and process: TensorFlow's collective instance keys restart
    # with each new strategy, and can clash with those of an earlier one.
    if devices not in _mirrored_strategies:
        _mirrored_strategies[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _mirrored_strategies[devices]


def is_multi_worker(strategy):
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` (trained by :func:`distributed_fit`)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _is_chief(strategy):
    """Whether this process writes the shared files (checkpoints, TensorBoard, the summary)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and (resolver.task_id or 0) == 0


def _is_default(strategy):
    """Whether ``strategy`` is TensorFlow's default (no distribution) strategy."""
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def _task_index(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return (resolver.task_id or 0) if resolver is not None else 0


# --- XLA ------------------------------------------------------------------------------------


def xla_blockers(model):
    """``[(layer name, class name)]`` of the model's layers XLA cannot compile (``supports_jit=False``).

    An LSTM or GRU is one of them when it runs on the cuDNN kernel (a GPU, default
    arguments): Keras then turns XLA off for the whole model.
    """
    return [
        (layer.name, type(layer).__name__)
        for layer in model._flatten_layers(include_self=False)
        if not getattr(layer, "supports_jit", True)
    ]


def _xla_warning(model, blockers):
    if not blockers:
        return (
            f"jit_compile=True was asked but Keras turned XLA off for {model.name!r} "
            "(op determinism enabled, or XLA not supported on this platform); training without XLA."
        )
    names = ", ".join(f"{name!r} ({cls})" for name, cls in blockers)
    message = (
        f"jit_compile=True was asked, but {model.name!r} has layers XLA cannot compile "
        f"(supports_jit=False): {names}. Keras trains it without XLA."
    )
    recurrent = sorted({cls for _, cls in blockers if cls in ("LSTM", "GRU")})
    if recurrent:
        variants = " / ".join(f"{cls}(use_cudnn=False)" for cls in recurrent)
        message += (
            f" The {'/'.join(recurrent)} runs on the cuDNN kernel, which XLA cannot compile; "
            f"build it as {variants} for an XLA-compilable model."
        )
    return message


def _compile(model, jit_compile, **arguments):
    """``model.compile`` with Keras' own 'does not support jit' warning silenced (train warns once itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*" + _KERAS_JIT_WARNING.replace("`", ".") + ".*")
        model.compile(**arguments, jit_compile=jit_compile)


# --- data checks ----------------------------------------------------------------------------


def _model_inputs(model):
    inputs = model.input
    return inputs if isinstance(inputs, dict) else None


def _split_element(data):
    """``(x, y)`` structure of ``data`` (specs for a dataset, arrays for tuples), or None when unknown."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            return spec[0], (spec[1] if len(spec) > 1 else None), True
        return spec, None, True
    if isinstance(data, (tuple, list)) and data:
        return data[0], (data[1] if len(data) > 1 else None), False
    if isinstance(data, dict):
        return data, None, False
    return None, None, False


def check_data(model, data, argument="train_data"):
    """Check that ``data`` fits ``model`` before training: input keys, batching, shapes, targets.

    ``data`` is a ``tf.data.Dataset`` of ``(inputs, targets)`` (or of inputs alone, for
    models trained without targets), or an ``(inputs, targets)`` tuple of arrays. Other
    kinds (generators, ``PyDataset``) are left to Keras. Raises ``ValueError`` naming the
    missing and extra input keys, an unbatched dataset, an input of the wrong shape, or
    missing targets.
    """
    x, y, is_dataset = _split_element(data)
    inputs = _model_inputs(model)
    if x is None or inputs is None:
        return
    if not isinstance(x, dict):
        raise ValueError(
            f"{model.name!r} takes a dict of inputs keyed {sorted(inputs)}, but `{argument}` "
            f"gives {type(x).__name__} inputs. Yield (inputs_dict, targets) pairs."
        )
    missing = sorted(set(inputs) - set(x))
    extra = sorted(set(x) - set(inputs))
    if missing or extra:
        raise ValueError(
            f"The inputs of `{argument}` do not match {model.name!r}: "
            + "; ".join(
                part
                for part in (
                    f"missing keys {missing}" if missing else "",
                    f"extra keys {extra}" if extra else "",
                )
                if part
            )
            + f". The model's inputs are {sorted(inputs)}; the data has {sorted(x)}."
        )
    for key, tensor in inputs.items():
        expected = tuple(tensor.shape)
        got = tuple(x[key].shape) if is_dataset else (None,) + tuple(np.shape(x[key])[1:])
        if is_dataset and len(got) == len(expected) - 1 and _compatible(got, expected[1:]):
            raise ValueError(
                f"`{argument}` is not batched: its input {key!r} has shape {got}, one example of "
                f"{model.name!r}'s {expected}. Batch it: dataset.batch(batch_size)."
            )
        if len(got) != len(expected) or not _compatible(got[1:], expected[1:]):
            raise ValueError(
                f"Input {key!r} of `{argument}` has shape {got}; {model.name!r} takes "
                f"(batch,) + {expected[1:]}."
            )
    targets = getattr(model, "targets", None)
    if targets is None:
        return
    required = (
        {key for key, kind in targets.items() if kind is not None}
        if isinstance(targets, dict)
        else {"output"}
    )
    if required and y is None:
        raise ValueError(
            f"`{argument}` gives inputs only, but {model.name!r} trains on targets for "
            f"{sorted(required)}. Yield (inputs, targets) pairs."
        )
    if isinstance(targets, dict) and isinstance(y, dict):
        missing_y = sorted(required - set(y))
        extra_y = sorted(set(y) - set(targets))
        if missing_y or extra_y:
            raise ValueError(
                f"The targets of `{argument}` do not match {model.name!r}: "
                + (f"missing keys {missing_y} " if missing_y else "")
                + (f"extra keys {extra_y} " if extra_y else "")
                + f"(targeted outputs: {sorted(required)}; the data has {sorted(y)})."
            )


def _compatible(a, b):
    return len(a) == len(b) and all(i is None or j is None or i == j for i, j in zip(a, b))


# --- callbacks and reporting ----------------------------------------------------------------


class _NaNGuard(keras.callbacks.TerminateOnNaN):
    """``TerminateOnNaN`` that remembers where the loss stopped being finite."""

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and self.stopped_at is None and not np.isfinite(float(loss)):
            self.stopped_at = (self.epoch + 1, batch + 1, float(loss))
        super().on_batch_end(batch, logs)


def _diverged(guard, epochs, history, backup=None):
    """The ``TrainingDivergedError`` for a run ``guard`` stopped; ``backup``: its ``AtomicBackupAndRestore``."""
    epoch, batch, loss = guard.stopped_at
    resume = ""
    saved = backup.saved_epoch if backup is not None else None
    if saved:
        resume = (
            f" The backup of epoch {saved} (the last finished one) is kept in {backup.backup_dir}: "
            "train again with the same checkpoint_dir to resume from it (a model compiled "
            "with a lower learning rate keeps that rate)."
        )
    return TrainingDivergedError(
        f"Training stopped at epoch {epoch}/{epochs}, batch {batch}: the loss became {loss} "
        "(TerminateOnNaN). Lower the learning rate, check the data for NaN or infinite "
        "values, or train in float32 (mixed_precision='float32')." + resume,
        epoch=epoch,
        batch=batch,
        loss=loss,
        history=history,
    )


def metrics_table(history):
    """The last epoch's metrics of a ``History``, training and validation side by side, as text."""
    logs = {key: values[-1] for key, values in history.history.items() if values}
    names = [key for key in logs if not key.startswith("val_")]
    names += [key[4:] for key in logs if key.startswith("val_") and key[4:] not in names]
    if not names:
        return "no metrics"
    width = max(len("metric"), *map(len, names))
    epoch = (history.epoch[-1] + 1) if history.epoch else "?"
    lines = [f"{'metric':<{width}}  {'train':>10}  {'validation':>10}   (epoch {epoch})"]

    def cell(key):
        value = logs.get(key)
        return f"{value:>10.4f}" if value is not None else f"{'-':>10}"

    lines += [f"{name:<{width}}  {cell(name)}  {cell('val_' + name)}" for name in names]
    return "\n".join(lines)


def _recipe_callbacks(model, has_validation, early_stopping_patience, reduce_lr_patience, restore_best_weights):
    """The training recipe that works on real data: best weights kept, early stop, lower rate on a plateau.

    Only with validation data (``val_loss`` is what they watch). The defaults (patience 10,
    halve the rate after 4 flat epochs, keep the best epoch's weights) are what held up on
    the real check set of ``benchmarks/real_data.py``: small data overfits within a few
    tens of epochs, and a lower rate on a plateau gains the last points.
    """
    for key, value in [("early_stopping_patience", early_stopping_patience), ("reduce_lr_patience", reduce_lr_patience)]:
        if value is not None:
            check_positive_int(key, value)
    if not isinstance(restore_best_weights, bool):
        raise ValueError(f"`restore_best_weights` must be True or False. Received: {restore_best_weights!r}")
    if not has_validation:
        return []
    callbacks = []
    rate = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    scheduled = isinstance(getattr(model.optimizer, "_learning_rate", None), keras.optimizers.schedules.LearningRateSchedule)
    if reduce_lr_patience is not None and rate is not None and not scheduled:
        initial = float(keras.ops.convert_to_numpy(rate))
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=reduce_lr_patience, min_lr=initial * 1e-3, verbose=0
            )
        )
    if early_stopping_patience is not None or restore_best_weights:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=early_stopping_patience if early_stopping_patience is not None else 10**9,
                restore_best_weights=restore_best_weights,
                verbose=0,
            )
        )
    return callbacks


def _standard_callbacks(
    checkpoint_dir, tensorboard_dir, has_validation, chief, worker_index, multi_worker, scratch
):
    """BackupAndRestore, the NaN guard, ModelCheckpoint and TensorBoard, as asked.

    Under a multi-worker strategy every worker runs the same callbacks (saving a model can
    run collective ops, which every worker must join) and non-chief workers write into
    ``scratch``, a temporary folder removed after training; each worker keeps its own
    backup (of the same state).
    """
    callbacks, guard = [], _NaNGuard()
    if checkpoint_dir is not None:
        backup = os.path.join(os.fspath(checkpoint_dir), "backup")
        if multi_worker:
            backup = os.path.join(backup, f"worker-{worker_index}")
        callbacks.append(AtomicBackupAndRestore(backup))
    callbacks.append(guard)
    if checkpoint_dir is not None and (chief or multi_worker):
        directory = os.fspath(checkpoint_dir) if chief else scratch()
        callbacks.append(
            AtomicModelCheckpoint(
                os.path.join(directory, "best.keras"),
                monitor="val_loss" if has_validation else "loss",
                save_best_only=True,
            )
        )
    if tensorboard_dir is not None and (chief or multi_worker):
        directory = os.fspath(tensorboard_dir) if chief else os.path.join(scratch(), "tensorboard")
        callbacks.append(keras.callbacks.TensorBoard(log_dir=directory))
    return callbacks, guard


# --- train ----------------------------------------------------------------------------------


def _prepare_model(model_or_name, policy, strategy, jit_compile, build_kwargs):
    """``(model to train, user's model or None)``: built or checked, compiled inside the strategy scope."""
    scope = strategy.scope() if strategy is not None else _null_scope()
    if isinstance(model_or_name, str):
        if "compile" in build_kwargs:
            raise ValueError("train() compiles the model itself; do not pass `compile` in build_kwargs.")
        with scope:
            model = build(model_or_name, compile=False, **build_kwargs)
            _compile(model, jit_compile, **model.default_compile_arguments())
        return model, None
    model = model_or_name
    if not isinstance(model, keras.Model):
        raise ValueError(
            "`model_or_name` must be a registered model name or a keras.Model. "
            f"Received: {type(model).__name__}"
        )
    if build_kwargs:
        raise ValueError(
            "Build arguments apply only when train() builds the model from its name; "
            f"{model.name!r} is built already. Received: "
            + ", ".join(f"{k}={v!r}" for k, v in build_kwargs.items())
        )
    if model.dtype_policy.name != policy:
        raise ValueError(
            f"{model.name!r} was built under the dtype policy {model.dtype_policy.name!r}, not "
            f"mixed_precision={policy!r}: a built model keeps its policy. Pass its name to train() "
            "(train builds it under the policy), or build it after "
            f"keras.config.set_dtype_policy({policy!r})."
        )
    owner = getattr(model, "_distribute_strategy", None)
    if strategy is not None and owner is not strategy:
        # Its variables live outside the strategy: train a copy built in the scope.
        with strategy.scope():
            replica = type(model).from_config(model.get_config())
            replica.set_weights(model.get_weights())
            arguments = _compile_arguments(model, fresh_optimizer=True)
            _compile(replica, jit_compile, **arguments)
        return replica, model
    needs_compile = not getattr(model, "compiled", False) or model.optimizer is None
    if needs_compile:
        with scope:
            _compile(model, jit_compile, **model.default_compile_arguments())
    elif jit_compile != "auto" and bool(model.jit_compile) != bool(jit_compile):
        with scope:
            _compile(model, jit_compile, **_compile_arguments(model))
    return model, None


def _is_splits(data):
    """A ``DatasetSplits`` of ``from_directory``/``from_manifest`` (by its fields: no TensorFlow import here)."""
    return all(hasattr(data, field) for field in ("train", "validation", "class_names", "vectorizer"))


def split_build_arguments(name, dataset, class_names, vectorizer):
    """The build arguments that fit a model named ``name`` to a loader's dataset and classes.

    For models built from their inputs (``fusion_classifier``): ``inputs`` from the
    dataset's feature shapes, ``num_classes`` and ``class_names`` from the classes and
    ``vocabulary_size`` from the text vectorizer. Other models have fixed inputs: nothing is derived for them.
    """
    if name != "fusion_classifier":
        return {}
    features = dataset.element_spec[0]
    arguments = {
        "inputs": {key: tuple(int(d) for d in spec.shape[1:]) for key, spec in features.items()},
        "num_classes": len(class_names),
        "class_names": [str(name) for name in class_names],
    }
    if vectorizer is not None:
        arguments["vocabulary_size"] = int(vectorizer.vocabulary_size())
    return arguments


def _unpack_splits(model_or_name, splits, validation_data, build_kwargs):
    """``(train, validation, build arguments)`` from a ``DatasetSplits``; the caller's arguments win."""
    if validation_data is None:
        validation_data = splits.validation
    if isinstance(model_or_name, str):
        derived = split_build_arguments(model_or_name, splits.train, splits.class_names, splits.vectorizer)
        build_kwargs = {**derived, **build_kwargs}
    return splits.train, validation_data, build_kwargs


def chief_of(strategy):
    """True where this process writes and reports (no strategy, or the chief worker)."""
    return strategy is None or _is_chief(strategy)


def _sample_batches(data, max_examples):
    """Batches of inputs from the first ``max_examples`` examples of ``train``'s data, as NumPy."""
    if isinstance(data, (tuple, list)):
        x = data[0]
        size = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        step = 256
        for start in range(0, min(size, max_examples), step):
            yield {k: v[start : start + step] for k, v in x.items()} if isinstance(x, dict) else x[start : start + step]
        return
    if isinstance(data, dict):
        yield from _sample_batches((data,), max_examples)
        return
    import tensorflow as tf

    # A PyDataset or any iterable of batches: adapt_standardization stops after max_examples.
    yield from (data.as_numpy_iterator() if isinstance(data, tf.data.Dataset) else data)


def adapt_inputs(model, train_data, max_examples=4096):
    """Adapt the model's input standardisation layers that have no statistics yet, on ``train_data``.

    Models built from raw inputs (``fusion_classifier``'s encoders) standardise each input
    inside the model with :class:`mmzoo.layers.Standardization`; its statistics are weights,
    computed here from the first ``max_examples`` training examples before the first
    epoch, and then saved, exported and reloaded with the model. Layers that have
    statistics (a trained or loaded model) are left as they are.

    Returns:
        The names of the layers adapted (empty when there was nothing to do).
    """
    from mmzoo.layers.encoders import adapt_standardization

    # Lazy: no batch is read when every layer has its statistics already.
    return adapt_standardization(model, _sample_batches(train_data, max_examples), max_examples=max_examples)


def _compile_arguments(model, fresh_optimizer=False):
    """The model's own compile arguments (its optimizer kept), or its defaults when it was never compiled."""
    config = getattr(model, "_compile_config", None)
    if not getattr(model, "compiled", False) or config is None:
        return model.default_compile_arguments()
    arguments = {k: v for k, v in dict(config.config).items() if k != "jit_compile"}
    if fresh_optimizer:
        optimizer = model.optimizer
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = optimizer.inner_optimizer
        arguments["optimizer"] = keras.optimizers.get(keras.optimizers.serialize(optimizer))
    else:
        arguments["optimizer"] = model.optimizer
    return arguments


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def train(
    model_or_name,
    train_data,
    validation_data=None,
    epochs=1,
    mixed_precision="auto",
    jit_compile="auto",
    strategy=None,
    checkpoint_dir=None,
    tensorboard_dir=None,
    callbacks=(),
    verbose="auto",
    early_stopping_patience=10,
    reduce_lr_patience=4,
    restore_best_weights=True,
    **build_kwargs,
):
    """Train a model (given, or built from its registered name) and return its Keras ``History``.

    Args:
        model_or_name: a registered name (built with ``mmzoo.build(name, **build_kwargs)``
            after the dtype policy is set and inside the strategy scope, then compiled with
            its ``default_compile_arguments()``) or a built ``keras.Model`` (compiled with
            its defaults if it is not compiled yet).
        train_data: what :func:`mmzoo.data.from_directory` returns (its ``train`` and
            ``validation`` splits are used, and a ``fusion_classifier`` built from its name
            gets the inputs, classes and vocabulary found: :func:`split_build_arguments`),
            a batched ``tf.data.Dataset`` of ``(inputs, targets)`` (inputs alone
            for models without targets), anything ``fit`` takes as ``x``, an
            ``(inputs, targets)`` tuple of arrays, or a function ``model -> dataset``,
            called once the strategy exists and the model is built (the way to give
            data to a ``"multi_worker"`` run, which must create its strategy first).
        validation_data: the same kinds, or None.
        epochs: number of epochs.
        mixed_precision: ``"auto"`` (``mixed_float16`` when a GPU is visible, else
            ``float32``; for a given model, its own policy), ``"mixed_float16"``,
            ``"mixed_bfloat16"`` or ``"float32"``. A given model must have been built
            under the policy asked.
        jit_compile: ``"auto"`` (Keras: XLA on GPU only), True or False. True on a model
            with layers XLA cannot compile warns once, naming them.
        strategy: None, ``"mirrored"``, ``"multi_worker"`` or a ``tf.distribute.Strategy``.
            A given model built outside that strategy is trained as a copy built in its
            scope, and the trained weights are copied back into it. A
            ``MultiWorkerMirroredStrategy`` trains with :func:`distributed_fit`.
        checkpoint_dir: adds ``BackupAndRestore(checkpoint_dir/backup)`` (a killed run
            started again resumes after its last finished epoch; the backup is deleted
            when a run finishes, and kept when it diverges, so that it can be resumed
            with a lower learning rate) and ``ModelCheckpoint(checkpoint_dir/best.keras,
            save_best_only=True)`` on ``val_loss`` (``loss`` without validation data).
        tensorboard_dir: adds ``TensorBoard(log_dir=tensorboard_dir)``; needs the
            ``tensorboard`` package (ImportError up front without it).
        callbacks: more Keras callbacks, run after the ones above.
        early_stopping_patience: with validation data, stop after this many epochs without
            a lower ``val_loss`` (``EarlyStopping``); None never stops early.
        reduce_lr_patience: with validation data, halve the learning rate after this many
            epochs without a lower ``val_loss`` (``ReduceLROnPlateau``, down to 1e-3 of
            the initial rate); None keeps the rate (and so does an optimizer compiled with
            a learning-rate schedule).
        restore_best_weights: with validation data, end with the weights of the epoch of
            lowest ``val_loss`` (after a resumed run: the best since it resumed).
        verbose: Keras' ``verbose`` (progress bars); unless 0, a table of the last
            epoch's metrics is printed at the end.
        **build_kwargs: the model's arguments, with a name only.

    Returns:
        The ``keras.callbacks.History`` of the run (``history.model`` is the trained model).

    Raises:
        ValueError: a bad argument, or data that does not fit the model.
        TrainingDivergedError: the loss became NaN or infinite (``TerminateOnNaN``
            stopped the run); the message names the epoch and batch, the error carries
            the ``history``. The model keeps the weights it had when it stopped. With
            ``checkpoint_dir``, the backup of the last finished epoch (finite weights) is
            kept, and ``best.keras`` is never a model of the diverged epoch: ``train``
            with the same ``checkpoint_dir`` resumes from that epoch.
    """
    if jit_compile not in JIT_CHOICES or not isinstance(jit_compile, (bool, str)):
        raise ValueError(
            f"`jit_compile` must be 'auto', True or False. Received: jit_compile={jit_compile!r}"
        )
    check_positive_int("epochs", epochs)
    if not isinstance(model_or_name, (str, keras.Model)):
        raise ValueError(
            "`model_or_name` must be a registered model name or a keras.Model. "
            f"Received: {type(model_or_name).__name__}"
        )
    if build_kwargs and not isinstance(model_or_name, str):
        raise ValueError(
            "Build arguments apply only when train() builds the model from its name; "
            f"{model_or_name.name!r} is built already. Received: "
            + ", ".join(f"{k}={v!r}" for k, v in build_kwargs.items())
        )
    if tensorboard_dir is not None and importlib.util.find_spec("tensorboard") is None:
        raise ImportError(
            "`tensorboard_dir` needs the `tensorboard` package, which TensorFlow 2.21 does not "
            "install: pip install tensorboard==2.21.0. "
            f"Received: tensorboard_dir={os.fspath(tensorboard_dir)!r}"
        )
    if mixed_precision == "auto" and isinstance(model_or_name, keras.Model):
        policy = model_or_name.dtype_policy.name
    else:
        policy = resolve_mixed_precision(mixed_precision)
    strategy = resolve_strategy(strategy)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    scratch_dirs = []
    try:
        if _is_splits(train_data):
            train_data, validation_data, build_kwargs = _unpack_splits(
                model_or_name, train_data, validation_data, build_kwargs
            )
        model, original = _prepare_model(model_or_name, policy, strategy, jit_compile, build_kwargs)
        if jit_compile is True and not model.jit_compile:
            warnings.warn(_xla_warning(model, xla_blockers(model)), UserWarning, stacklevel=2)
        if callable(train_data) and not isinstance(train_data, keras.utils.PyDataset):
            train_data = train_data(model)
        if callable(validation_data) and not isinstance(validation_data, keras.utils.PyDataset):
            validation_data = validation_data(model)
        check_data(model, train_data, "train_data")
        if validation_data is not None:
            check_data(model, validation_data, "validation_data")
        multi_worker = strategy is not None and is_multi_worker(strategy)
        chief = chief_of(strategy)
        adapted = adapt_inputs(model, train_data)
        if adapted and verbose != 0 and chief:
            print(f"adapted the input statistics of {', '.join(adapted)} on the training data")

        def scratch():
            if not scratch_dirs:
                scratch_dirs.append(tempfile.mkdtemp(prefix="mmzoo-worker-"))
            return scratch_dirs[0]

        standard, guard = _standard_callbacks(
            checkpoint_dir,
            tensorboard_dir,
            validation_data is not None,
            chief,
            _task_index(strategy) if strategy is not None else 0,
            multi_worker,
            scratch,
        )
        all_callbacks = standard + _recipe_callbacks(
            model, validation_data is not None, early_stopping_patience, reduce_lr_patience, restore_best_weights
        ) + list(callbacks)
        if multi_worker and model.jit_compile:
            warnings.warn(
                "jit_compile: the multi-worker loop (distributed_fit) runs without XLA.",
                UserWarning,
                stacklevel=2,
            )
        if multi_worker:
            history = distributed_fit(
                model,
                train_data,
                epochs=epochs,
                strategy=strategy,
                validation_data=validation_data,
                callbacks=all_callbacks,
                verbose=verbose,
            )
        else:
            x, y = train_data, None
            if isinstance(train_data, (tuple, list)):
                x, y = train_data[0], (train_data[1] if len(train_data) > 1 else None)
            scope = strategy.scope() if strategy is not None else _null_scope()
            import tensorflow as tf

            with scope:
                history = model.fit(
                    x,
                    y,
                    shuffle=not isinstance(x, tf.data.Dataset),  # a dataset shuffles itself
                    epochs=epochs,
                    validation_data=validation_data,
                    callbacks=all_callbacks,
                    verbose=verbose,
                )
        if original is not None:
            original.set_weights(model.get_weights())
        if guard.stopped_at is not None:
            backup = next((c for c in standard if isinstance(c, AtomicBackupAndRestore)), None)
            raise _diverged(guard, epochs, history, backup)
        if verbose != 0 and chief:
            print(metrics_table(history))
        return history
    finally:
        keras.config.set_dtype_policy(previous_policy)
        for directory in scratch_dirs:
            shutil.rmtree(directory, ignore_errors=True)


# --- the custom distributed loop ------------------------------------------------------------


def _loss_spec(model):
    """``{output key or None: (loss function, weight)}`` from the model's compiled loss."""
    loss = getattr(model, "loss", None)
    config = getattr(model, "_compile_config", None)
    weights = dict(config.config).get("loss_weights") if config is not None else None
    names = list(getattr(model, "output_names", None) or [])
    if loss is None:
        return {}
    if isinstance(loss, dict):
        pairs = [(key, value) for key, value in loss.items() if value is not None]
    elif isinstance(loss, (list, tuple)):
        pairs = [(name, value) for name, value in zip(names, loss) if value is not None]
    else:
        pairs = [(None, loss)]
    if isinstance(weights, (list, tuple)):
        weights = dict(zip(names, weights))
    spec = {}
    for key, value in pairs:
        function = keras.losses.get(value)
        if isinstance(function, keras.losses.Loss):
            function = function.call
        weight = 1.0
        if isinstance(weights, dict) and key in weights:
            weight = float(weights[key])
        elif isinstance(weights, (int, float)):
            weight = float(weights)
        spec[key] = (function, weight)
    return spec


def _per_example(function, y_true, y_pred):
    values = keras.ops.cast(function(y_true, y_pred), "float32")
    if len(values.shape) > 1:
        values = keras.ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return values


def replica_loss(model, x, y, y_pred, sample_weight, global_batch_size):
    """One replica's share of the loss of a global batch, whose sum over replicas is the batch's mean loss.

    The per-example losses of the compiled loss (summed over outputs with their
    ``loss_weights``, times ``sample_weight``) go through ``tf.nn.compute_average_loss``
    with the *global* batch size, and regularisation losses through
    ``tf.nn.scale_regularization_loss``: the gradients the optimizer sums over replicas
    are then those of the global batch's mean loss. A model with its own
    ``compute_loss`` (a batch-level loss, e.g. contrastive) contributes its loss
    weighted by its share of the global batch.
    """
    import tensorflow as tf

    local = tf.cast(tf.shape(keras.tree.flatten(x)[0])[0], "float32")
    if type(model).compute_loss is not keras.Model.compute_loss:
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return tf.cast(loss, "float32") * local / global_batch_size
    spec = _loss_spec(model)
    if not spec:
        raise ValueError(f"{model.name!r} has no compiled loss: compile it with a loss first.")
    total = None
    for key, (function, weight) in spec.items():
        if key is None:
            y_true_k, y_pred_k = y, y_pred
            if isinstance(y_pred, dict) and len(y_pred) == 1:
                y_pred_k = next(iter(y_pred.values()))
            weight_k = sample_weight
        else:
            if y is None or key not in y:
                continue
            y_true_k = y[key]
            y_pred_k = y_pred[key] if isinstance(y_pred, dict) else y_pred
            weight_k = sample_weight.get(key) if isinstance(sample_weight, dict) else sample_weight
        values = _per_example(function, y_true_k, y_pred_k) * weight
        if weight_k is not None:
            values = values * tf.reshape(tf.cast(weight_k, "float32"), [-1])
        total = values if total is None else total + values
    loss = tf.nn.compute_average_loss(total, global_batch_size=tf.cast(tf.round(global_batch_size), "int64"))
    if model.losses:
        loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(v, "float32") for v in model.losses]))
    return loss


def distributed_fit(
    model,
    dataset,
    epochs=1,
    strategy=None,
    validation_data=None,
    callbacks=(),
    initial_epoch=0,
    verbose="auto",
):
    """Train a compiled Keras model with a custom distributed step; a ``History`` of per-epoch losses.

    The corrected custom training loop of document 004 §4.3, and how
    :func:`train` runs multi-worker training (Keras 3 ``fit`` fails under
    ``MultiWorkerMirroredStrategy``, keras-team/keras#20585). Each step is one
    ``tf.function``: ``strategy.run`` runs the forward pass of each replica's part of
    the global batch under a ``GradientTape``, :func:`replica_loss` averages the
    per-example losses over the global batch size (``tf.nn.compute_average_loss``), the
    loss is scaled for mixed precision (``optimizer.scale_loss``; a no-op but under
    ``mixed_float16``), and the Keras optimizer all-reduces the gradients and applies
    them. The data goes through ``strategy.experimental_distribute_dataset``, so it must
    be batched with the global batch size (no ``batch_size`` argument, unlike the
    document's loop). With no strategy it runs on the default strategy, one replica, and
    reaches the same weights as ``model.fit`` on the same data.

    Keras callbacks get the epoch and batch hooks with ``{"loss": ...}`` (and
    ``"val_loss"``) logs: progress bars, ``History``, ``TerminateOnNaN``,
    ``BackupAndRestore`` (resuming from its epoch), ``ModelCheckpoint``,
    ``EarlyStopping`` (``model.stop_training``) work.

    Example:
    >>> import mmzoo
    >>> from mmzoo.data import synthetic
    >>> model = mmzoo.build("mlp", input_shape=(16,), units=8)
    >>> history = distributed_fit(model, synthetic(model, n=64, batch_size=16), epochs=2, verbose=0)
    >>> sorted(history.history)
    ['loss']

    Args:
        model: a compiled ``keras.Model`` (if not compiled, it is compiled with its
            ``default_compile_arguments()``), built in ``strategy``'s scope.
        dataset: a ``tf.data.Dataset`` batched with the global batch size, of
            ``(inputs, targets[, sample_weights])`` or inputs alone.
        epochs: the epoch to train up to (from ``initial_epoch``).
        strategy: a ``tf.distribute.Strategy``; None for the current one (the default
            strategy outside any scope).
        validation_data: a dataset like ``dataset``; adds ``val_loss``.
        callbacks: Keras callbacks.
        initial_epoch: the epoch to start from (``BackupAndRestore`` may move it on).
        verbose: 0 (silent), 1 or ``"auto"`` (progress bar), 2 (a line per epoch).

    Returns:
        A ``keras.callbacks.History``: ``history.history["loss"]`` (and ``"val_loss"``)
        per epoch, ``history.epoch`` the epochs this call trained.
    """
    import tensorflow as tf

    owner = getattr(model, "_distribute_strategy", None)
    strategy = strategy or owner or tf.distribute.get_strategy()
    if strategy is not owner and not (owner is None and _is_default(strategy)):
        raise ValueError(
            f"{model.name!r} was not built in the scope of the strategy it is to be trained with: "
            "build (and compile) it inside `with strategy.scope():`."
        )
    with strategy.scope():
        if not getattr(model, "compiled", False) or model.optimizer is None:
            model.compile(**model.default_compile_arguments())
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    variables = model.trainable_variables

    def replica_size(batch):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        return tf.cast(tf.shape(keras.tree.flatten(x)[0])[0], "float32")

    def replica_train(batch, global_batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = replica_loss(model, x, y, y_pred, sample_weight, global_batch)
            scaled = optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables))  # all-reduces (sums) them over replicas
        return loss

    def replica_test(batch, global_batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = model(x, training=False)
        return replica_loss(model, x, y, y_pred, sample_weight, global_batch)

    multi_worker = is_multi_worker(strategy)

    def global_sum(per_replica):
        # Across workers a collective; on one machine the local results are all of them,
        # and adding them needs none (TensorFlow's collective keys can clash between two
        # strategies of one process).
        if multi_worker:
            return strategy.reduce("SUM", per_replica, axis=None)
        return tf.add_n(list(strategy.experimental_local_results(per_replica)))

    def reduced(step):
        @tf.function(reduce_retracing=True)
        def run(batch):
            global_batch = global_sum(strategy.run(replica_size, args=(batch,)))
            loss = strategy.run(step, args=(batch, global_batch))
            return global_sum(loss), global_batch

        return run

    train_step, test_step = reduced(replica_train), reduced(replica_test)
    train_batches = strategy.experimental_distribute_dataset(dataset)
    validation_batches = (
        strategy.experimental_distribute_dataset(validation_data) if validation_data is not None else None
    )
    cardinality = int(dataset.cardinality())
    steps = cardinality if cardinality > 0 else None

    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )

    def mean_loss(batches, step, on_batch=None):
        total, count = 0.0, 0.0
        for index, batch in enumerate(batches):
            if on_batch is not None:
                callback_list.on_train_batch_begin(index)
            loss, size = step(batch)
            loss, size = float(loss), float(size)
            total, count = total + loss * size, count + size
            if on_batch is not None:
                on_batch(index, {"loss": total / count})
                if model.stop_training:
                    break
        return total / count if count else float("nan")

    model.stop_training = False
    with strategy.scope():
        callback_list.on_train_begin()
        start = getattr(model, "_initial_epoch", None) or initial_epoch
        model._initial_epoch = None
        logs = {}
        for epoch in range(start, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = {"loss": mean_loss(train_batches, train_step, callback_list.on_train_batch_end)}
            if validation_batches is not None and not model.stop_training:
                logs["val_loss"] = mean_loss(validation_batches, test_step)
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
    return callback_list._history


__all__ = [
    "MIXED_PRECISION_CHOICES",
    "STRATEGY_CHOICES",
    "TrainingDivergedError",
    "check_data",
    "distributed_fit",
    "metrics_table",
    "multi_worker_strategy",
    "replica_loss",
    "resolve_mixed_precision",
    "resolve_strategy",
    "train",
    "xla_blockers",
]
