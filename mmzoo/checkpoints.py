"""Files written during training that a crash or a kill must never leave half-written.

Keras writes its backup (``BackupAndRestore``: a weights file, then a metadata file) and
its checkpoints (``ModelCheckpoint``, ``model.save``) in place: a process killed during a
write leaves a truncated file that the next run cannot read, or weights of one epoch with
the epoch number of another. Here every write goes to a temporary name first, is fsynced
with its folder, and is renamed into place, the folder fsynced again after the rename
(:mod:`mmzoo._atomic`): a kill, or a power cut, at any moment leaves either the old state
or the new one.

A run whose loss stops being finite (NaN or infinite) has diverged: from the first such
batch on, neither callback saves again in that run. Keras would otherwise back up the
NaN weights of the epoch ``TerminateOnNaN`` stopped (with the number of an epoch that
never finished), remove the backup when training ends, and, on the first epoch of a
run, save a NaN model as the "best" one (``save_best_only`` compares the first value with
nothing). Here the backup of the last finished, finite epoch stays on disk after a
diverged run, so that the run can be started again from it (with a lower learning rate).
"""

import json
import os
import secrets
import shutil

import keras
import numpy as np

from mmzoo._atomic import fsync_directory, fsync_tree, make_directories, replace, write_file


def save_model_atomically(model, path):
    """``model.save(path)`` through a temporary file renamed over ``path``.

    The temporary file and its folder are fsynced before the rename, the folder after it.
    A failure (or an interrupt, or a kill) leaves any earlier file at ``path`` as it was;
    a failure or an interrupt also removes the temporary file.
    """
    write_file(path, model.save, suffix=".tmp.keras")  # Keras saves only to a name ending in .keras


def _finite(value):
    """Whether a logged value is finite; a value that is no number (or is missing) counts as finite."""
    if value is None:
        return True
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype="float64"))))
    except (TypeError, ValueError):
        return True


class _StopsSavingOnDivergence:
    """Mixed into a saving callback: ``self._diverged`` turns True at the first non-finite ``loss``."""

    def on_train_begin(self, logs=None):
        self._diverged = False
        super().on_train_begin(logs)

    def _check_loss(self, logs):
        if not getattr(self, "_diverged", False) and not _finite((logs or {}).get("loss")):
            self._diverged = True
        return getattr(self, "_diverged", False)

    def on_train_batch_end(self, batch, logs=None):
        if not self._check_loss(logs):
            super().on_train_batch_end(batch, logs)


class AtomicModelCheckpoint(_StopsSavingOnDivergence, keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that saves to a temporary file and renames it over the checkpoint.

    Takes ``ModelCheckpoint``'s arguments. A run killed while saving keeps the previous
    best model intact. Nothing is saved once the training loss has been NaN or infinite
    in the run (the weights are then NaN, or those of an unfinished epoch), and with
    ``save_best_only`` a non-finite monitored value is never the best.
    """

    def on_epoch_end(self, epoch, logs=None):
        if not self._check_loss(logs):
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch, batch, logs):
        target = self._get_file_path(epoch, batch, logs)
        directory, name = os.path.split(target)
        suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp{suffix}")
        self._get_file_path = lambda *args: temporary  # where super() saves
        self._target = target  # what its messages name
        try:
            super()._save_model(epoch, batch, logs)
            if os.path.exists(temporary):
                replace(temporary, target)
        finally:
            del self._get_file_path, self._target
            if os.path.exists(temporary):
                os.remove(temporary)

    def _should_save_model(self, epoch, batch, logs, filepath):
        if self.save_best_only and not _finite((logs or {}).get(self.monitor)):
            return False  # NaN compares as no improvement, but the first value is compared with None
        return super()._should_save_model(epoch, batch, logs, getattr(self, "_target", filepath))


class AtomicBackupAndRestore(_StopsSavingOnDivergence, keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup (weights and epoch) is replaced in one rename.

    The weights and the training metadata are written together into a fresh folder,
    ``backup_dir/state.tmp-*``, which is fsynced (each file, the folder, and
    ``backup_dir``) and then takes the place of ``backup_dir/state`` (the old state is
    moved aside to ``state.old`` and deleted after; ``backup_dir`` is fsynced after the
    rename). A run killed at any point resumes from a whole state: the newest one, or the
    one before it if the kill fell between the two renames. Takes ``BackupAndRestore``'s
    arguments.

    A run that diverges (its training loss NaN or infinite) saves no more backups and
    keeps the last one, that of its last finished, finite epoch, when it ends (with a
    ``diverged.json`` beside it): :attr:`saved_epoch` tells which, and the next run with
    the same ``backup_dir`` resumes from it. That next run keeps the learning rate it
    was compiled with (the backup holds the optimizer's variables, the learning rate
    among them, which would otherwise bring back the rate that diverged); a run
    resuming after a kill gets the backup's learning rate, as with Keras.
    """

    def __init__(self, backup_dir, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._state = os.path.join(backup_dir, "state")
        self._old_state = os.path.join(backup_dir, "state.old")
        self._diverged_marker = os.path.join(backup_dir, "diverged.json")
        self._point_at(self._state)

    @property
    def saved_epoch(self):
        """The number of epochs finished in the backup on disk (the epoch a new run resumes at), or None."""
        try:
            with open(os.path.join(self._state, "training_metadata.json")) as stream:
                return int(json.load(stream)["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _point_at(self, directory):
        self._weights_path = os.path.join(directory, "latest.weights.h5")
        self._training_metadata_path = os.path.join(directory, "training_metadata.json")

    def _recover(self):
        """Put back the state a kill interrupted, and remove what a killed save left behind."""
        if not os.path.isdir(self.backup_dir):
            return
        if not os.path.isdir(self._state) and os.path.isdir(self._old_state):
            os.replace(self._old_state, self._state)
            fsync_directory(self.backup_dir)
        shutil.rmtree(self._old_state, ignore_errors=True)
        for entry in os.listdir(self.backup_dir):
            if entry.startswith("state.tmp-"):
                shutil.rmtree(os.path.join(self.backup_dir, entry), ignore_errors=True)

    def on_train_begin(self, logs=None):
        self._recover()
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        # Keras calls it for the epoch TerminateOnNaN stopped too: that epoch never finished.
        if not self._check_loss(logs):
            super().on_epoch_end(epoch, logs)

    def _load_model(self):
        variable = _learning_rate_variable(self.model.optimizer)
        if variable is None or not os.path.exists(self._diverged_marker):
            return super()._load_model()
        compiled = keras.ops.convert_to_numpy(variable.value)  # the rate this run was compiled with
        super()._load_model()
        variable.assign(compiled)

    def on_train_end(self, logs=None):
        if not getattr(self, "_diverged", False):
            super().on_train_end(logs)
        elif os.path.isdir(self._state):  # keep the last finite backup, to resume from
            def write(temporary):
                with open(temporary, "w") as stream:
                    json.dump({"saved_epoch": self.saved_epoch}, stream)

            write_file(self._diverged_marker, write)

    def _save_model(self):
        make_directories(self.backup_dir)
        temporary = os.path.join(self.backup_dir, f"state.tmp-{secrets.token_hex(6)}")
        os.makedirs(temporary)
        try:
            self._point_at(temporary)
            super()._save_model()
            fsync_tree(temporary)
            fsync_directory(self.backup_dir)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        finally:
            self._point_at(self._state)
        if os.path.isdir(self._state):
            os.replace(self._state, self._old_state)
        os.replace(temporary, self._state)
        if os.path.exists(self._diverged_marker):  # the new state has this run's learning rate
            os.remove(self._diverged_marker)
        fsync_directory(self.backup_dir)
        shutil.rmtree(self._old_state, ignore_errors=True)


def _learning_rate_variable(optimizer):
    """The optimizer's learning-rate variable, or None (no optimizer, or a schedule)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own
    variable = getattr(inner, "_learning_rate", None)
    return variable if isinstance(variable, keras.Variable) else None
