"""A loaded dataset as NumPy arrays, and arrays to and from one ``.npz`` file.

For training where TensorFlow is not installed (Keras on JAX, as on a GPU machine): load a
folder with :func:`mmzoo.data.from_directory` where TensorFlow is, turn its splits into
arrays with :func:`to_arrays`, write them with :func:`save_arrays`; then, on the JAX
machine, :func:`load_arrays` (NumPy only) gives ``(inputs, targets)`` that
:func:`mmzoo.train` takes, with ``batch_size=``.

Example:
>>> import numpy as np
>>> x = {"image": np.zeros((4, 8, 8, 1), "float32"), "text": np.ones((4, 5), "int32")}
>>> y = np.arange(4, dtype="int32")
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "train.npz")
>>> save_arrays(path, x, y)
>>> inputs, targets = load_arrays(path)
>>> sorted(inputs), inputs["text"].dtype.name, targets.tolist()
(['image', 'text'], 'int32', [0, 1, 2, 3])
"""

import os

import numpy as np

from mmzoo._atomic import write_file
from mmzoo.validation import check_positive_int

_INPUT = "x/"
_TARGET = "y"


def to_arrays(dataset, max_examples=None):
    """``(inputs, targets)`` as NumPy arrays from a batched ``tf.data.Dataset`` of ``(inputs, targets)``.

    Args:
        dataset: a split of :func:`mmzoo.data.from_directory` / ``from_manifest`` or any
            batched dataset of ``(dict of inputs, targets)`` (targets an array or a dict).
        max_examples: stop after this many examples (None: the whole dataset). The
            dataset is read once, in its order (a shuffled split gives one shuffle).

    Returns:
        ``(inputs, targets)``: a dict of arrays, and an array or a dict of arrays (None
        for a dataset of inputs alone).
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"`dataset` must be a batched tf.data.Dataset. Received: {type(dataset).__name__}")
    if max_examples is not None:
        check_positive_int("max_examples", max_examples)
    spec = dataset.element_spec
    paired = isinstance(spec, tuple)
    inputs_spec = spec[0] if paired else spec
    scalars = [s for s in tf.nest.flatten(spec) if len(s.shape) == 0]  # a batch has a batch axis
    if not isinstance(inputs_spec, dict) or scalars:
        raise ValueError(
            "`dataset` must yield batched (dict of inputs, targets) pairs, e.g. a split of "
            f"from_directory. Received element_spec={spec}"
        )
    batches, count = [], 0
    for element in dataset.as_numpy_iterator():
        batches.append(element)
        count += len(next(iter((element[0] if paired else element).values())))
        if max_examples is not None and count >= max_examples:
            break
    if not batches:
        raise ValueError("`dataset` yielded no examples.")

    def join(parts):
        if isinstance(parts[0], dict):
            return {key: np.concatenate([part[key] for part in parts])[:max_examples] for key in parts[0]}
        return np.concatenate(parts)[:max_examples]

    if not paired:
        return join(batches), None
    return join([b[0] for b in batches]), (join([b[1] for b in batches]) if len(spec) > 1 else None)


def save_arrays(path, inputs, targets=None):
    """Write ``inputs`` (a dict of arrays) and ``targets`` (an array, a dict of arrays or None) to ``path`` (``.npz``).

    Written to a temporary name and renamed: a reader never sees a half-written file,
    and a failed write leaves an existing file as it was.
    """
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"`inputs` must be a non-empty dict of arrays. Received: {type(inputs).__name__}")
    sizes = {key: len(value) for key, value in inputs.items()}
    if isinstance(targets, dict):
        sizes.update({f"target {key}": len(value) for key, value in targets.items()})
    elif targets is not None:
        sizes["targets"] = len(targets)
    if len(set(sizes.values())) != 1:
        raise ValueError(f"Every array must have the same number of examples. Received: {sizes}")
    arrays = {_INPUT + key: np.asarray(value) for key, value in inputs.items()}
    if isinstance(targets, dict):
        arrays.update({f"{_TARGET}/{key}": np.asarray(value) for key, value in targets.items()})
    elif targets is not None:
        arrays[_TARGET] = np.asarray(targets)
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise ValueError(f"`path` must end in .npz. Received: path={path!r}")
    write_file(path, lambda temporary: np.savez(temporary, **arrays), suffix=".npz")


def load_arrays(path):
    """``(inputs, targets)`` from a file written by :func:`save_arrays` (NumPy only, no TensorFlow)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        keys = list(data.keys())
        inputs = {key[len(_INPUT):]: data[key] for key in keys if key.startswith(_INPUT)}
        if not inputs:
            raise ValueError(f"{os.fspath(path)!r} holds no inputs (keys {keys}): not written by save_arrays.")
        named = {key[len(_TARGET) + 1:]: data[key] for key in keys if key.startswith(_TARGET + "/")}
        targets = named or (data[_TARGET] if _TARGET in keys else None)
    return inputs, targets


__all__ = ["load_arrays", "save_arrays", "to_arrays"]
