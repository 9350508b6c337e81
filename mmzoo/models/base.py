"""The base class of every mmzoo model, and the argument checks the builders share."""

import inspect

import keras
import numpy as np
from keras import layers

from mmzoo.optimizers import Adam

# The argument checks live in mmzoo.validation; model files import them from here.
from mmzoo.validation import (  # noqa: F401
    closest,
    check_bool,
    check_choice,
    check_image_shape,
    check_int,
    check_positive_int,
    check_positive_number,
    check_rate,
    check_shape,
)

# Keyword arguments a model passes through to `keras.Model`, and those every model takes
# from this base class (`missing_modalities`: see mmzoo.models.presence).
_KERAS_MODEL_ARGUMENTS = ("name", "trainable", "dtype")
_BASE_ARGUMENTS = ("missing_modalities", "modality_dropout")

# What a target looks like for each kind of output, the loss that trains it and its metric.
# An output of kind None has no target: it is for inspection or inference only.
TARGET_LOSSES = {
    "binary": "binary_crossentropy",  # (batch, 1) floats in {0, 1}
    "multiclass": "sparse_categorical_crossentropy",  # (batch,) integer class ids
    "regression": "mean_squared_error",  # floats shaped like the output
}
TARGET_METRICS = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}


def _bind_arguments(cls, args, kwargs):
    """The constructor arguments of ``cls`` with defaults filled in; unknown names raise."""
    signature = inspect.signature(cls.__init__)
    parameters = signature.parameters
    named = [
        key
        for key, parameter in parameters.items()
        if key != "self" and parameter.kind != inspect.Parameter.VAR_KEYWORD
    ]
    allowed = named + list(_KERAS_MODEL_ARGUMENTS) + [key for key in _BASE_ARGUMENTS if key not in named]
    for key, value in kwargs.items():
        if key not in allowed:
            hint = closest(key, allowed)
            raise ValueError(
                f"{cls.__name__} has no argument `{key}`"
                + (f" (did you mean {' or '.join(f'`{h}`' for h in hint)}?)" if hint else "")
                + f". Allowed arguments: {', '.join(allowed)}. Received: {key}={value!r}"
            )
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise ValueError(f"{cls.__name__}: {error}") from None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    arguments.pop("self")
    extra = arguments.pop("kwargs", {})
    return {**arguments, **extra}


def _value_kind(value):
    """"int", "float", "bool", "string" or "other" for an array or tensor's dtype; None without one."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    if isinstance(dtype, np.dtype):
        return {"i": "int", "u": "int", "f": "float", "b": "bool", "U": "string", "S": "string", "O": "string"}.get(
            dtype.kind, "other"
        )
    try:
        name = keras.backend.standardize_dtype(dtype)
    except (ValueError, TypeError):
        return "other"
    if name == "string":
        return "string"
    if name == "bool":
        return "bool"
    return "int" if "int" in name else "float" if "float" in name else "other"


def _shape_text(shape):
    return "(" + ", ".join("batch" if i == 0 else str(d) for i, d in enumerate(shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_shape(model, key, value, expected_shape):
    """Refuse a rank or a known dimension other than the model's (Keras' own message dumps the array)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return
    shape = tuple(shape)
    mismatch = len(shape) != len(expected_shape) or any(
        want is not None and got is not None and got != want for got, want in zip(shape[1:], expected_shape[1:])
    )
    if mismatch:
        received = tuple(None if d is None else int(d) for d in shape)
        raise ValueError(
            f"Input {key!r} of {model.name!r} takes arrays of shape {_shape_text(expected_shape)}. "
            f"Received: {key} of shape {received}"
        )


def _check_values(model, key, value, kind):
    """NumPy values only: token ids inside the vocabulary, finite floats."""
    if not isinstance(value, np.ndarray) or value.ndim == 0 or not value.size:
        return
    token_range = getattr(model, "token_ranges", {}).get(key)
    if kind == "int" and token_range is not None:
        low, high = int(value.min()), int(value.max())
        if low < 0 or high >= token_range[1]:
            raise ValueError(
                f"Input {key!r} of {model.name!r} takes token ids from 0 (padding) to {token_range[1] - 1} "
                f"(its vocabulary size is {token_range[1]}). Received: {key} with ids from {low} to {high}"
            )
    if kind == "float" and str(key).endswith("_present") and not np.isin(value, (0.0, 1.0)).all():
        bad = np.flatnonzero(~np.isin(value, (0.0, 1.0))).tolist()
        raise ValueError(
            f"Input {key!r} of {model.name!r} is a presence flag: 1 where the example has the modality, 0 where "
            f"it is missing. Received: {key} with other values in example(s) {bad[:10]} "
            f"(e.g. {value.flat[bad[0]]!r})"
        )
    if kind == "float" and not np.isfinite(value).all():
        finite = np.isfinite(value).reshape(len(value), -1).all(axis=1)
        rows = np.flatnonzero(~finite).tolist()
        listed = rows if len(rows) <= 10 else rows[:10] + ["..."]
        raise ValueError(
            f"Input {key!r} of {model.name!r} has NaN or infinite values in example(s) {listed} of "
            f"{len(value)}; the model takes finite numbers (zero-fill a missing modality instead). "
            f"Received: {int(np.isnan(value).sum())} NaN and {int(np.isinf(value).sum())} infinite "
            f"values in {key}"
        )


def check_call_inputs(model, inputs):
    """Check a dict of inputs before ``model`` runs on it; raise ``ValueError`` naming what is wrong.

    Refused: keys the model does not take (Keras would warn, then match the values to
    the inputs by position: the wrong data could reach an input silently); a rank or a
    dimension other than the input's; strings, or floats for an integer (token id) input
    (floats would be truncated silently); NumPy token ids outside ``[0, vocabulary size)``
    (``model.token_ranges``; on a GPU an out-of-range id silently embeds as zeros); inputs
    of different batch sizes; an empty batch (batch size 0: Keras' ``predict`` and
    recurrent layers fail on it with internal errors, ``fit`` silently does nothing);
    NaN or infinite values in NumPy inputs (kernels treat them differently: oneDNN's
    ReLU maps NaN to 0, so a compiled ``predict`` would return finite, meaningless
    outputs, and one ``fit`` step would turn every weight into NaN). Tensors are checked
    for keys, shape, dtype and batch size only (reading their values would synchronise
    the device). Missing keys are left to Keras, whose message names them. Anything but
    a dict (a ``tf.data`` dataset) is not checked here: ``mmzoo.train`` stops at the
    first NaN loss.
    """
    expected = getattr(model, "input", None)
    if not isinstance(inputs, dict) or not isinstance(expected, dict):
        return
    unexpected = sorted(str(key) for key in inputs if key not in expected)
    if unexpected:
        raise ValueError(
            f"{model.name!r} has no input named {', '.join(map(repr, unexpected))}; its inputs are "
            f"{sorted(expected)}. Received: keys {sorted(map(str, inputs))}"
        )
    batches = {}
    for key, value in inputs.items():
        if isinstance(value, (list, tuple, int, float)):
            value = np.asarray(value)
        want = keras.backend.standardize_dtype(expected[key].dtype)
        kind, got = _value_kind(value), getattr(value, "dtype", None)
        if kind == "string" or (kind == "float" and "int" in want):
            hint = (
                " Text becomes token ids through a TextVectorization (mmzoo.data.make_text_vectorizer)."
                if kind == "string" and "int" in want
                else " Floats are not truncated to token ids: cast whole numbers with .astype('int32')."
                if kind == "float"
                else ""
            )
            raise ValueError(
                f"Input {key!r} of {model.name!r} takes {want} values, not {kind}s.{hint} "
                f"Received: {key} of dtype {got}"
            )
        _check_shape(model, key, value, tuple(expected[key].shape))
        size = _static_batch_size(value)
        if size is not None:
            batches[key] = size
        _check_values(model, key, value, kind)
    if len(set(batches.values())) > 1:
        raise ValueError(
            f"All inputs of {model.name!r} must have the same batch size (first dimension). "
            f"Received: batch sizes {batches}"
        )
    if 0 in batches.values():
        raise ValueError(
            f"The inputs of {model.name!r} hold no examples (batch size 0); pass at least one example. "
            f"Received: batch sizes {batches}"
        )


def _static_batch_size(value):
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    size = shape[0]
    return int(size) if isinstance(size, (int, np.integer)) else None


class MultimodalModel(keras.Model):
    """A functional Keras model whose constructor arguments are its config.

    Subclasses build their graph from their constructor arguments (the source
    document's defaults) and call ``super().__init__(inputs=..., outputs=...,
    targets=...)``. ``get_config`` returns exactly the constructor arguments, so
    ``from_config`` and ``.keras`` loading rebuild the same graph, and unknown
    arguments are refused before any layer is built.

    ``targets`` says what each output is trained on: ``"binary"`` (a (batch, 1)
    sigmoid output), ``"multiclass"`` (softmax over classes, integer labels),
    ``"regression"`` (mean squared error) or None (no target: the output is for
    inspection, e.g. attention weights); one value for a single output or a dict
    keyed like the outputs. Outputs named in ``metric_only_outputs`` have a target
    and a metric but carry no loss. ``token_ranges`` maps an
    integer input to its ``(low, high)`` token ids, for ``mmzoo.dummy_batch``.

    Calling the model, or ``fit``/``evaluate``/``predict`` (and their ``*_on_batch``
    forms) on a dict of arrays, first runs :func:`check_call_inputs`: unknown keys,
    wrong shapes, strings or floats for token ids, token ids outside the vocabulary,
    inputs of different batch sizes, an empty batch and NaN or infinite NumPy values
    raise ``ValueError`` naming the input.
    """

    def __new__(cls, *args, **kwargs):
        if cls is MultimodalModel:  # Keras instantiates the bare base when it injects Functional.
            return super().__new__(cls)
        arguments = _bind_arguments(cls, args, kwargs)
        instance = super().__new__(cls, *args, **kwargs)
        vars(instance)["_constructor_arguments"] = arguments
        return instance

    def __init__(
        self,
        inputs,
        outputs,
        *,
        targets,
        metric_only_outputs=(),
        token_ranges=None,
        missing_modalities=False,
        modality_dropout=0.0,
        **kwargs,
    ):
        check_bool("missing_modalities", missing_modalities)
        check_rate("modality_dropout", modality_dropout)
        if missing_modalities or modality_dropout:
            from mmzoo.models.presence import add_presence_inputs

            inputs, outputs = add_presence_inputs(
                type(self).__name__, inputs, outputs, flags=missing_modalities, modality_dropout=modality_dropout
            )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.targets = targets
        self.metric_only_outputs = tuple(metric_only_outputs)
        self.token_ranges = dict(token_ranges or {})

    def __call__(self, *args, **kwargs):
        check_call_inputs(self, args[0] if args else kwargs.get("inputs"))
        return super().__call__(*args, **kwargs)

    def predict(self, x, *args, **kwargs):
        check_call_inputs(self, x)
        return super().predict(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        check_call_inputs(self, x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and validation:
            check_call_inputs(self, validation[0])
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        check_call_inputs(self, x)
        return super().evaluate(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        check_call_inputs(self, x)
        return super().train_on_batch(x, *args, **kwargs)

    def test_on_batch(self, x, *args, **kwargs):
        check_call_inputs(self, x)
        return super().test_on_batch(x, *args, **kwargs)

    def predict_on_batch(self, x):
        check_call_inputs(self, x)
        return super().predict_on_batch(x)

    @property
    def encoders(self):
        """``{input name: [layers]}``: the layers with weights that read that input alone (not the head).

        What ``mmzoo.freeze(model, "encoders")`` freezes; see :mod:`mmzoo.models.anatomy`.
        """
        from mmzoo.models.anatomy import encoders

        return encoders(self)

    @property
    def head(self):
        """The layer that makes the output (``{output name: layer}`` for several targeted outputs).

        What a head swap re-initialises (``mmzoo.build(preset, num_classes=...)``) and what
        ``mmzoo.finetune`` trains first; see :mod:`mmzoo.models.anatomy`.
        """
        from mmzoo.models.anatomy import head

        return head(self)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(self._constructor_arguments)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def default_compile_arguments(self):
        """The document's optimizer (Adam, :class:`mmzoo.optimizers.Adam`) with a loss and a metric per
        output that has a target."""
        if not isinstance(self.targets, dict):
            return {
                "optimizer": Adam(),
                "loss": TARGET_LOSSES[self.targets],
                "metrics": [TARGET_METRICS[self.targets]],
            }
        targeted = {key: kind for key, kind in self.targets.items() if kind is not None}
        loss = {k: TARGET_LOSSES[kind] for k, kind in targeted.items() if k not in self.metric_only_outputs}
        metrics = {key: [TARGET_METRICS[kind]] for key, kind in targeted.items()}
        return {"optimizer": Adam(), "loss": loss, "metrics": metrics}

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Keras' compiled metrics index `y` by every output name; outputs without a
        # target have no metric, so their prediction stands in for the absent target.
        if isinstance(y, dict) and isinstance(y_pred, dict) and isinstance(self.targets, dict):
            untargeted = [k for k, kind in self.targets.items() if kind is None and k not in y]
            y = {**y, **{key: y_pred[key] for key in untargeted}}
        return super().compute_metrics(x, y, y_pred, sample_weight)


def classifier(num_classes, name="output"):
    """The output layer for ``num_classes``: sigmoid for 1 (binary), softmax otherwise.

    It computes in float32 whatever the dtype policy, so outputs stay float32
    under mixed precision.
    """
    activation = "sigmoid" if num_classes == 1 else "softmax"
    return layers.Dense(num_classes, activation=activation, dtype="float32", name=name)


def target_kind(num_classes):
    """The ``targets`` kind of a :func:`classifier` output."""
    return "binary" if num_classes == 1 else "multiclass"
