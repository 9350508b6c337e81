"""The callbacks ``train`` adds, the error of a diverged run, and the end-of-run table.

- the recipe (:func:`recipe_callbacks`): with validation data, early stopping, a lower
  learning rate on a plateau, and the best epoch's weights kept;
- faults (:func:`standard_callbacks`): ``BackupAndRestore`` and ``ModelCheckpoint`` writing
  atomically (:mod:`mmzoo.checkpoints`), TensorBoard, and a NaN guard whose stop becomes a
  :class:`TrainingDivergedError` naming the epoch and batch.
"""

import os

import keras
import numpy as np

from mmzoo.checkpoints import AtomicBackupAndRestore, AtomicModelCheckpoint
from mmzoo.validation import check_positive_int


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


def diverged_error(guard, epochs, history, backup=None):
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


def recipe_callbacks(model, has_validation, early_stopping_patience, reduce_lr_patience, restore_best_weights):
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


def standard_callbacks(
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



__all__ = ["TrainingDivergedError", "diverged_error", "metrics_table", "recipe_callbacks", "standard_callbacks"]
