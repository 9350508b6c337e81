"""The base class of every mmzoo model, and the argument checks the builders share."""

import inspect

import keras
from keras import layers

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

# Keyword arguments a model passes through to `keras.Model`.
_KERAS_MODEL_ARGUMENTS = ("name", "trainable", "dtype")

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
    allowed = named + list(_KERAS_MODEL_ARGUMENTS)
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
        **kwargs,
    ):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.targets = targets
        self.metric_only_outputs = tuple(metric_only_outputs)
        self.token_ranges = dict(token_ranges or {})

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(self._constructor_arguments)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def default_compile_arguments(self):
        """The document's optimizer (Adam) with a loss and a metric per output that has a target."""
        if not isinstance(self.targets, dict):
            return {
                "optimizer": "adam",
                "loss": TARGET_LOSSES[self.targets],
                "metrics": [TARGET_METRICS[self.targets]],
            }
        targeted = {key: kind for key, kind in self.targets.items() if kind is not None}
        loss = {k: TARGET_LOSSES[kind] for k, kind in targeted.items() if k not in self.metric_only_outputs}
        metrics = {key: [TARGET_METRICS[kind]] for key, kind in targeted.items()}
        return {"optimizer": "adam", "loss": loss, "metrics": metrics}

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
