"""Making a write-then-rename durable: fsync what was written, and the folders that name it.

A rename is atomic but, until the folder holding the names is fsynced, not durable: after
a power cut the file system may show the old name, or the new name on a file whose data
never reached the disk (an empty or truncated file). Every atomic writer of mmzoo (the
checkpoints, the backup, ``save_model_atomically``, the export's publication, the
benchmarks' JSON; single files through :func:`write_file`) therefore does, in this order:

1. write the temporary file or folder;
2. :func:`fsync_tree` it (every file under it and every folder, itself included) and
   :func:`fsync_directory` the folder that holds it;
3. rename it into place;
4. :func:`fsync_directory` the folder of the new name, so that the rename itself is on disk.

No TensorFlow or Keras here: ``benchmarks/common.py`` uses it too.
"""

import errno
import os
import tempfile

# fsync on a folder is refused by some file systems (and folders cannot be opened on
# Windows): nothing more can be done there, and the write itself has succeeded.
_DIRECTORY_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EPERM}


def fsync_file(path):
    """Flush the data and metadata of the file ``path`` to the disk."""
    handle = os.open(path, os.O_RDONLY if os.name != "nt" else os.O_RDWR)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_directory(path):
    """Flush the folder ``path`` (the names in it) to the disk; a no-op where folders cannot be synced."""
    if os.name == "nt":
        return
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        if error.errno in _DIRECTORY_FSYNC_UNSUPPORTED:
            return
        raise
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno not in _DIRECTORY_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(handle)


def fsync_tree(path):
    """Flush ``path`` to the disk: a file, or a folder with every file and folder under it (itself last).

    Symbolic links are not followed.
    """
    path = os.fspath(path)
    if not os.path.isdir(path) or os.path.islink(path):
        if not os.path.islink(path):
            fsync_file(path)
        return
    for directory, _, files in os.walk(path, topdown=False):
        for name in files:
            file = os.path.join(directory, name)
            if not os.path.islink(file):
                fsync_file(file)
        fsync_directory(directory)


def make_directories(path):
    """``os.makedirs(path, exist_ok=True)``, with each folder it creates fsynced into its parent."""
    path = os.path.abspath(os.fspath(path))
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if not missing:
        return
    os.makedirs(missing[0], exist_ok=True)
    for created in reversed(missing):  # from the outermost: each new name into its parent
        fsync_directory(os.path.dirname(created))
        fsync_directory(created)


def write_file(path, write, suffix=""):
    """Create or overwrite the file ``path`` atomically and durably: ``write(temporary)`` writes a
    temporary file beside it (named ``.<name>.<random><suffix>``; some writers need their own
    suffix, e.g. ``.keras`` or ``.npz``), which :func:`replace` then renames over ``path``.

    A failure (or an interrupt) removes the temporary file and leaves an earlier file at
    ``path`` as it was; the folder is created (durably) if it is missing.
    """
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    make_directories(directory)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=suffix)
    os.close(handle)
    try:
        write(temporary)
        replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def replace(source, target):
    """``os.replace(source, target)``, durable: ``source`` (a file or a folder) and its folder are
    fsynced before the rename, the folder of ``target`` after it."""
    source, target = os.fspath(source), os.fspath(target)
    fsync_tree(source)
    fsync_directory(os.path.dirname(os.path.abspath(source)))
    os.replace(source, target)
    fsync_directory(os.path.dirname(os.path.abspath(target)))


__all__ = ["fsync_directory", "fsync_file", "fsync_tree", "make_directories", "replace", "write_file"]
