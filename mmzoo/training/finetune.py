"""Fine-tuning: freeze parts of a model, and keras.io's two-phase transfer-learning recipe.

Every zoo model has ``model.encoders`` (the layers that read one input alone) and
``model.head`` (the layer that makes the output): :mod:`mmzoo.models.anatomy`.
:func:`freeze` sets ``trainable = False`` on some of them; :func:`finetune` runs

1. the head phase: the encoders frozen (their batch normalisation in inference mode:
   Keras runs a frozen ``BatchNormalization`` that way), the rest trained at
   ``learning_rate`` for ``head_epochs``;
2. the fine-tuning phase: everything trainable but batch normalisation (kept frozen, so
   its statistics are not overwritten by the small batches of a small data set), at
   ``fine_tune_learning_rate`` (a tenth of ``learning_rate`` by default) for ``epochs``;

each through :func:`mmzoo.train` (best weights kept, early stopping with validation data).

Example:
>>> import mmzoo
>>> from mmzoo.data import synthetic
>>> model = mmzoo.build("mlp", input_shape=(16,), units=8)
>>> history = mmzoo.finetune(model, synthetic(model, n=64, batch_size=16), head_epochs=1, epochs=1, verbose=0)
>>> history.phases
[('head', 1), ('all', 1)]
"""

import keras

from mmzoo.models.anatomy import head_layers
from mmzoo.optimizers import Adam

PARTS_HELP = "'encoders', 'head', an input name or a modality ('image', 'audio', 'text', 'video', 'features')"


def _as_layers(part):
    return list(part) if isinstance(part, (list, tuple)) else [part]


def parts_of(model, parts):
    """The layers ``parts`` names in ``model``: ``"encoders"``, ``"head"``, input names or modalities (a str or a list)."""
    encoders = getattr(model, "encoders", None)
    if encoders is None:
        from mmzoo.models.anatomy import encoders as find_encoders

        encoders = find_encoders(model)
    names = [parts] if isinstance(parts, str) else list(parts) if isinstance(parts, (list, tuple)) else None
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"`parts` must be {PARTS_HELP}, or a list of them. Received: parts={parts!r}")
    layers = []
    for name in names:
        if name == "encoders":
            found = [layer for part in encoders.values() for layer in _as_layers(part)]
        elif name == "head":
            found = head_layers(model)
        else:
            keys = [key for key in encoders if key == name or str(key).lower().startswith(name.lower())]
            if not keys:
                raise ValueError(
                    f"{model.name!r} has no encoder for {name!r}: its encoders read {sorted(encoders)}; `parts` "
                    f"takes {PARTS_HELP}. Received: parts={parts!r}"
                )
            found = [layer for key in keys for layer in _as_layers(encoders[key])]
        layers += [layer for layer in found if layer not in layers]
    return layers


def freeze(model, parts="encoders"):
    """Freeze ``parts`` of ``model`` (``trainable = False``); returns the names of the layers frozen.

    A frozen ``BatchNormalization`` runs in inference mode (Keras 3). Compile the model
    again after freezing for ``fit`` to see it (:func:`finetune` and ``mmzoo.train`` of a
    name do).

    Args:
        model: a zoo model (or any functional model).
        parts: ``"encoders"`` (every input's encoder), ``"head"``, an input name or a
            modality (``"image"`` freezes the encoders of every ``image*`` input), or a list.
    """
    layers = parts_of(model, parts)
    for layer in layers:
        layer.trainable = False
    return [layer.name for layer in layers]


def unfreeze(model, parts=None, keep_batch_norm_frozen=False):
    """Make ``parts`` (None: the whole model) trainable again; returns the layers' names.

    ``keep_batch_norm_frozen``: leave every ``BatchNormalization`` inside them frozen.
    """
    layers = [model] if parts is None else parts_of(model, parts)
    for layer in layers:
        # Every layer under it, itself included: a functional model's setter does not reach
        # the layers of the models nested in it.
        for inner in layer._flatten_layers(include_self=True):
            inner.trainable = not (keep_batch_norm_frozen and isinstance(inner, keras.layers.BatchNormalization))
    return [layer.name for layer in layers]


def _check_epochs(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an integer of 0 or more. Received: {name}={value!r}")
    return value


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


def _recompile(model, learning_rate):
    arguments = dict(model.default_compile_arguments())
    arguments["optimizer"] = Adam(learning_rate)
    model.compile(**arguments)


class FineTuningHistory(keras.callbacks.History):
    """The two phases' histories as one: ``history`` concatenated, ``epoch`` numbered on, ``phases``."""

    def __init__(self, model, runs):
        super().__init__()
        self.set_model(model)
        self.phases, self.history, self.epoch = [], {}, []
        for phase, run in runs:
            epochs = len(run.epoch)
            self.phases.append((phase, epochs))
            offset = len(self.epoch)
            self.epoch += [offset + index for index in range(epochs)]
            for key in set(self.history) | set(run.history):
                before = self.history.get(key, [None] * offset)
                self.history[key] = before + list(run.history.get(key, [None] * epochs))


def finetune(
    model,
    train_data,
    validation_data=None,
    head_epochs=5,
    epochs=10,
    learning_rate=1e-3,
    fine_tune_learning_rate=None,
    freeze_batch_norm=True,
    verbose="auto",
    **train_kwargs,
):
    """Fine-tune ``model``: the head with the encoders frozen, then everything at a lower rate.

    keras.io's transfer-learning recipe on any zoo model (see :mod:`mmzoo.training.finetune`).

    Args:
        model: a built model (e.g. ``mmzoo.build(PRESET_DIR, num_classes=5)``), or a
            preset folder or model name, built first.
        train_data, validation_data: what :func:`mmzoo.train` takes.
        head_epochs: epochs of the head phase (0 skips it).
        epochs: epochs of the fine-tuning phase (0 skips it).
        learning_rate: Adam's rate in the head phase.
        fine_tune_learning_rate: Adam's rate in the fine-tuning phase; a tenth of
            ``learning_rate`` by default.
        freeze_batch_norm: keep batch normalisation frozen (inference mode) in the
            fine-tuning phase too, as keras.io recommends; it stays frozen afterwards
            (``mmzoo.unfreeze(model)`` undoes it).
        verbose: as in :func:`mmzoo.train`.
        **train_kwargs: more :func:`mmzoo.train` arguments (``early_stopping_patience``,
            ``checkpoint_dir``, ...).

    Returns:
        A ``History`` of both phases: ``history.history`` per epoch across them,
        ``history.phases`` ``[("head", epochs run), ("all", epochs run)]``,
        ``history.model`` the model.
    """
    from mmzoo.registry import build
    from mmzoo.training.fit import train

    _check_epochs("head_epochs", head_epochs)
    _check_epochs("epochs", epochs)
    if head_epochs + epochs == 0:
        raise ValueError("`head_epochs` and `epochs` are both 0: there is nothing to train.")
    learning_rate = _check_rate("learning_rate", learning_rate)
    fine_rate = _check_rate(
        "fine_tune_learning_rate", learning_rate / 10 if fine_tune_learning_rate is None else fine_tune_learning_rate
    )
    if not isinstance(freeze_batch_norm, bool):
        raise ValueError(f"`freeze_batch_norm` must be True or False. Received: {freeze_batch_norm!r}")
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        model = build(model, compile=False)
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, a model name or a preset folder. Received: {model!r}")
    runs = []
    if head_epochs:
        freeze(model, "encoders")
        _recompile(model, learning_rate)
        runs.append(("head", train(model, train_data, validation_data, epochs=head_epochs, verbose=verbose,
                                   **train_kwargs)))
    if epochs:
        unfreeze(model, keep_batch_norm_frozen=freeze_batch_norm)
        _recompile(model, fine_rate)
        runs.append(("all", train(model, train_data, validation_data, epochs=epochs, verbose=verbose,
                                  **train_kwargs)))
    return FineTuningHistory(model, runs)


__all__ = ["FineTuningHistory", "finetune", "freeze", "parts_of", "unfreeze"]
