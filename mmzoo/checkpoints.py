"""Files written during training that a crash or a kill must never leave half-written.

Keras writes its backup (``BackupAndRestore``: a weights file, then a metadata file) and
its checkpoints (``ModelCheckpoint``, ``model.save``) in place: a process killed during a
write leaves a truncated file that the next run cannot read, or weights of one epoch with
the epoch number of another. Here every write goes to a temporary name first and is
renamed into place, so a kill at any moment leaves either the old state or the new one.
"""

import os
import pathlib
import secrets
import shutil

import keras


def save_model_atomically(model, path):
    """``model.save(path)`` through a temporary file renamed over ``path``.

    A failure (or an interrupt, or a kill) leaves any earlier file at ``path`` as it was;
    a failure or an interrupt also removes the temporary file.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that saves to a temporary file and renames it over the checkpoint.

    Takes ``ModelCheckpoint``'s arguments. A run killed while saving keeps the previous
    best model intact.
    """

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
                os.replace(temporary, target)
        finally:
            del self._get_file_path, self._target
            if os.path.exists(temporary):
                os.remove(temporary)

    def _should_save_model(self, epoch, batch, logs, filepath):
        return super()._should_save_model(epoch, batch, logs, getattr(self, "_target", filepath))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup (weights and epoch) is replaced in one rename.

    The weights and the training metadata are written together into a fresh folder,
    ``backup_dir/state.tmp-*``, which then takes the place of ``backup_dir/state``
    (the old state is moved aside to ``state.old`` and deleted after). A run killed at
    any point resumes from a whole state: the newest one, or the one before it if the
    kill fell between the two renames. Takes ``BackupAndRestore``'s arguments.
    """

    def __init__(self, backup_dir, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._state = os.path.join(backup_dir, "state")
        self._old_state = os.path.join(backup_dir, "state.old")
        self._point_at(self._state)

    def _point_at(self, directory):
        self._weights_path = os.path.join(directory, "latest.weights.h5")
        self._training_metadata_path = os.path.join(directory, "training_metadata.json")

    def _recover(self):
        """Put back the state a kill interrupted, and remove what a killed save left behind."""
        if not os.path.isdir(self.backup_dir):
            return
        if not os.path.isdir(self._state) and os.path.isdir(self._old_state):
            os.replace(self._old_state, self._state)
        shutil.rmtree(self._old_state, ignore_errors=True)
        for entry in os.listdir(self.backup_dir):
            if entry.startswith("state.tmp-"):
                shutil.rmtree(os.path.join(self.backup_dir, entry), ignore_errors=True)

    def on_train_begin(self, logs=None):
        self._recover()
        super().on_train_begin(logs)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        temporary = os.path.join(self.backup_dir, f"state.tmp-{secrets.token_hex(6)}")
        os.makedirs(temporary)
        try:
            self._point_at(temporary)
            super()._save_model()
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        finally:
            self._point_at(self._state)
        if os.path.isdir(self._state):
            os.replace(self._state, self._old_state)
        os.replace(temporary, self._state)
        shutil.rmtree(self._old_state, ignore_errors=True)
