"""``mmzoo.train``: Keras ``fit`` with what a real run needs around it (see :mod:`mmzoo.training`)."""

import importlib.util
import os
import shutil
import tempfile
import warnings

import keras

from mmzoo.checkpoints import AtomicBackupAndRestore
from mmzoo.registry import build
from mmzoo.training.callbacks import diverged_error, metrics_table, recipe_callbacks, standard_callbacks
from mmzoo.training.data_checks import adapt_inputs, check_data, is_splits, is_tf_dataset, unpack_splits
from mmzoo.training.distributed import distributed_fit
from mmzoo.training.precision import check_jit_compile, compile_quietly, resolve_mixed_precision, xla_blockers, xla_warning
from mmzoo.training.strategy import chief_of, is_multi_worker, resolve_strategy, scope_of, task_index
from mmzoo.validation import check_positive_int


def _prepare_model(model_or_name, policy, strategy, jit_compile, build_kwargs):
    """``(model to train, user's model or None)``: built or checked, compiled inside the strategy scope."""
    scope = scope_of(strategy)
    if isinstance(model_or_name, str):
        if "compile" in build_kwargs:
            raise ValueError("train() compiles the model itself; do not pass `compile` in build_kwargs.")
        with scope:
            model = build(model_or_name, compile=False, **build_kwargs)
            compile_quietly(model, jit_compile, **model.default_compile_arguments())
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
            compile_quietly(replica, jit_compile, **arguments)
        return replica, model
    needs_compile = not getattr(model, "compiled", False) or model.optimizer is None
    if needs_compile:
        with scope:
            compile_quietly(model, jit_compile, **model.default_compile_arguments())
    elif jit_compile != "auto" and bool(model.jit_compile) != bool(jit_compile):
        with scope:
            compile_quietly(model, jit_compile, **_compile_arguments(model))
    return model, None



def epochs_from_one_iterator(data):
    """``(data, steps_per_epoch)`` for ``model.fit``: one iterator for the whole run.

    Keras makes a new iterator of a ``tf.data.Dataset`` for every epoch; tearing the old
    one down waits on tf.data's autotuning thread (measured here: up to one whole epoch's
    time, in 2 to 5 epochs out of 10, for epochs of 16 steps). A dataset of known, finite
    length is repeated and ``steps_per_epoch`` set to that length instead: the same
    batches in the same epochs (a ``shuffle`` before the repeat reshuffles for every
    epoch as before), one iterator. Anything else is returned as it is, with ``None``.
    """
    if not is_tf_dataset(data):
        return data, None
    steps = int(data.cardinality())
    if steps <= 0:  # unknown (-2), infinite (-1) or empty: Keras' own handling
        return data, None
    return data.repeat(), steps


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



def train(
    model_or_name,
    train_data,
    validation_data=None,
    epochs=1,
    batch_size=None,
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
        train_data: NumPy arrays ``(inputs, targets)`` (the only kind on JAX without
            TensorFlow: :func:`mmzoo.data.synthetic_arrays`, or a folder loaded to arrays),
            what :func:`mmzoo.data.from_directory` returns (its ``train`` and
            ``validation`` splits are used, and a ``fusion_classifier`` built from its name
            gets the inputs, classes and vocabulary found: :func:`split_build_arguments`),
            a batched ``tf.data.Dataset`` of ``(inputs, targets)`` (inputs alone
            for models without targets), anything ``fit`` takes as ``x``, an
            ``(inputs, targets)`` tuple of arrays, or a function ``model -> dataset``,
            called once the strategy exists and the model is built (the way to give
            data to a ``"multi_worker"`` run, which must create its strategy first).
        validation_data: the same kinds, or None.
        epochs: number of epochs.
        batch_size: examples a step when the data is arrays (Keras' default, 32, when
            None); a dataset or ``from_directory``'s splits are batched already, and
            giving one with ``batch_size`` raises ``ValueError``.
        mixed_precision: ``"auto"`` (on a GPU ``mixed_float16`` under TensorFlow and
            ``mixed_bfloat16`` under JAX, else ``float32``; for a given model, its own
            policy), ``"mixed_float16"``, ``"mixed_bfloat16"`` or ``"float32"``. A given
            model must have been built under the policy asked.
        jit_compile: ``"auto"`` (decided per model from measurements: on a CPU, XLA for
            the models with a recurrent layer only; on a GPU and on JAX, XLA wherever every
            layer supports it: :func:`mmzoo.training.resolve_jit_compile`), True or False.
            True on a model with layers XLA cannot compile warns once, naming them. A
            given model that is compiled already keeps its own choice under ``"auto"``.
        strategy: None, ``"mirrored"``, ``"multi_worker"``, a ``tf.distribute.Strategy``
            (Keras on TensorFlow), ``"data_parallel"`` or a
            ``keras.distribution.Distribution`` (Keras on JAX: ``"data_parallel"`` splits
            each batch over every device JAX finds). A given model built outside that
            strategy is trained as a copy built in its scope, and the trained weights are
            copied back into it. A ``MultiWorkerMirroredStrategy`` trains with
            :func:`distributed_fit`.
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
    check_jit_compile(jit_compile)
    check_positive_int("epochs", epochs)
    if batch_size is not None:
        check_positive_int("batch_size", batch_size)
        if not isinstance(train_data, (tuple, list, dict)):
            raise ValueError(
                "`batch_size` applies to arrays ((inputs, targets) or a dict of inputs); "
                f"{type(train_data).__name__} data is batched already: batch it there. "
                f"Received: batch_size={batch_size!r}"
            )
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
        if is_splits(train_data):
            train_data, validation_data, build_kwargs = unpack_splits(
                model_or_name, train_data, validation_data, build_kwargs
            )
        model, original = _prepare_model(model_or_name, policy, strategy, jit_compile, build_kwargs)
        if jit_compile is True and not model.jit_compile:
            warnings.warn(xla_warning(model, xla_blockers(model)), UserWarning, stacklevel=2)
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

        standard, guard = standard_callbacks(
            checkpoint_dir,
            tensorboard_dir,
            validation_data is not None,
            chief,
            task_index(strategy) if strategy is not None else 0,
            multi_worker,
            scratch,
        )
        all_callbacks = standard + recipe_callbacks(
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
            x, steps_per_epoch = epochs_from_one_iterator(x)
            with scope_of(strategy):
                history = model.fit(
                    x,
                    y,
                    batch_size=batch_size,
                    shuffle=not is_tf_dataset(x),  # a dataset shuffles itself
                    epochs=epochs,
                    steps_per_epoch=steps_per_epoch,
                    validation_data=validation_data,
                    callbacks=all_callbacks,
                    verbose=verbose,
                )
        if original is not None:
            original.set_weights(model.get_weights())
        if guard.stopped_at is not None:
            backup = next((c for c in standard if isinstance(c, AtomicBackupAndRestore)), None)
            raise diverged_error(guard, epochs, history, backup)
        if verbose != 0 and chief:
            print(metrics_table(history))
        return history
    finally:
        keras.config.set_dtype_policy(previous_policy)
        for directory in scratch_dirs:
            shutil.rmtree(directory, ignore_errors=True)



__all__ = ["train"]
