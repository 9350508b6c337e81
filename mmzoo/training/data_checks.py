"""What ``train`` checks and derives from the data before anything trains.

- :func:`check_data`: the dataset's input keys, batching, shapes and targets fit the model
  (a clear error names what does not);
- :func:`split_build_arguments`: a ``fusion_classifier`` built from its name gets the inputs,
  classes and vocabulary of ``from_directory``'s result;
- :func:`adapt_inputs`: the model's input standardisation layers get their statistics from
  the training data before the first epoch.
"""

import sys

import numpy as np


def is_tf_dataset(data):
    """Whether ``data`` is a ``tf.data.Dataset``, without importing TensorFlow.

    A dataset exists only once TensorFlow is imported, so where it is not (Keras on JAX,
    as on the GPU machine, which has no TensorFlow) nothing is a dataset.
    """
    tf = sys.modules.get("tensorflow")
    return tf is not None and hasattr(tf, "data") and isinstance(data, tf.data.Dataset)


def _model_inputs(model):
    inputs = model.input
    return inputs if isinstance(inputs, dict) else None


def _split_element(data):
    """``(x, y)`` structure of ``data`` (specs for a dataset, arrays for tuples), or None when unknown."""
    if is_tf_dataset(data):
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



def is_splits(data):
    """A ``DatasetSplits`` of ``from_directory``/``from_manifest`` (by its fields: no TensorFlow import here)."""
    return all(hasattr(data, field) for field in ("train", "validation", "class_names", "vectorizer"))


def split_build_arguments(name, dataset, class_names, vectorizer):
    """The build arguments that fit a model named ``name`` to a loader's dataset and classes.

    For models built from their inputs (``fusion_classifier``): ``inputs`` from the
    dataset's feature shapes, ``num_classes`` and ``class_names`` from the classes and
    ``vocabulary_size`` from the text vectorizer, and ``missing_modalities=True`` when it yields
    ``<modality>_present`` flags (``missing="mask"``). Other models have fixed inputs: nothing is derived for them.
    """
    if name != "fusion_classifier":
        return {}
    features = dataset.element_spec[0]
    from mmzoo.models.presence import is_presence_flag

    flags = [key for key, spec in features.items() if is_presence_flag(key, spec.shape[1:])]
    arguments = {
        "inputs": {key: tuple(int(d) for d in spec.shape[1:]) for key, spec in features.items() if key not in flags},
        "num_classes": len(class_names),
        "class_names": [str(name) for name in class_names],
    }
    if flags:  # from_directory(missing="mask"): the <modality>_present flags
        arguments["missing_modalities"] = True
    if vectorizer is not None:
        arguments["vocabulary_size"] = int(vectorizer.vocabulary_size())
    return arguments


def unpack_splits(model_or_name, splits, validation_data, build_kwargs):
    """``(train, validation, build arguments)`` from a ``DatasetSplits``; the caller's arguments win."""
    if validation_data is None:
        validation_data = splits.validation
    if isinstance(model_or_name, str):
        derived = split_build_arguments(model_or_name, splits.train, splits.class_names, splits.vectorizer)
        build_kwargs = {**derived, **build_kwargs}
    return splits.train, validation_data, build_kwargs



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
    # A PyDataset or any iterable of batches: adapt_standardization stops after max_examples.
    yield from (data.as_numpy_iterator() if is_tf_dataset(data) else data)


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



__all__ = ["adapt_inputs", "check_data", "is_splits", "is_tf_dataset", "split_build_arguments", "unpack_splits"]
