"""Document 004 §4.2: multi-task learning with a shared, separate or hybrid feature extractor."""

import keras
from keras import layers

from mmzoo.models.base import MultimodalModel, check_choice, check_positive_int, classifier, target_kind
from mmzoo.registry import register_model

SHARING_MODES = ("shared", "separate", "hybrid")


@keras.saving.register_keras_serializable(package="mmzoo")
class MultiTaskNetwork(MultimodalModel):
    """Two tasks on one feature vector: a sigmoid ``task1`` head and a softmax ``task2`` head.

    Document 004 §4.2's three multi-task frameworks, one argument apart:

    - ``"shared"``: one ``Dense(units, relu)`` extractor (``shared_network``) feeds both heads;
    - ``"separate"``: each task has its own extractor (``task1_extractor``,
      ``task2_extractor``); the tasks share no weight;
    - ``"hybrid"``: both tasks read the ``shared_network``; task 2 also has its own
      ``task2_extractor`` and its head reads the two feature vectors concatenated
      (``task2_features``), so the shared extractor is trained by both losses and the
      task-2 extractor by task 2 alone.

    Each output has its own loss (binary cross-entropy for ``task1``, sparse categorical
    cross-entropy for ``task2``) and accuracy; the training loss is their sum.

    Args:
        sharing: ``"shared"``, ``"separate"`` or ``"hybrid"``.
        input_dim: width of the ``features`` input.
        units: width of every feature extractor.
        task1_classes: classes of ``task1`` (1: the document's sigmoid output).
        task2_classes: classes of ``task2`` (2: the document's softmax output).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("multitask_hybrid")
    >>> x, y = mmzoo.dummy_batch(model, batch_size=4)
    >>> sorted(y)
    ['task1', 'task2']
    >>> {key: tuple(value.shape) for key, value in model.predict(x, verbose=0).items()}
    {'task1': (4, 1), 'task2': (4, 2)}
    """

    def __init__(self, sharing="shared", input_dim=128, units=128, task1_classes=1, task2_classes=2, **kwargs):
        check_choice("sharing", sharing, SHARING_MODES)
        for key, value in [("input_dim", input_dim), ("units", units),
                           ("task1_classes", task1_classes), ("task2_classes", task2_classes)]:
            check_positive_int(key, value)
        features = keras.Input((input_dim,), name="features")

        def extractor(name):
            return layers.Dense(units, activation="relu", name=name)(features)

        shared = extractor("shared_network") if sharing in ("shared", "hybrid") else None
        task1_features = shared if shared is not None else extractor("task1_extractor")
        if sharing == "shared":
            task2_features = shared
        elif sharing == "separate":
            task2_features = extractor("task2_extractor")
        else:  # hybrid: the shared features and task 2's own, side by side
            task2_features = layers.Concatenate(name="task2_features")([shared, extractor("task2_extractor")])
        outputs = {
            "task1": classifier(task1_classes, name="task1")(task1_features),
            "task2": classifier(task2_classes, name="task2")(task2_features),
        }
        super().__init__(
            inputs={"features": features},
            outputs=outputs,
            targets={"task1": target_kind(task1_classes), "task2": target_kind(task2_classes)},
            **kwargs,
        )


def _multitask(builder_name, sharing, kwargs):
    if "sharing" in kwargs:
        raise ValueError(
            f"`{builder_name}` fixes `sharing` to {sharing!r}; pick the model instead "
            f"({', '.join(f'multitask_{mode}' for mode in SHARING_MODES)}). "
            f"Received: sharing={kwargs['sharing']!r}"
        )
    return MultiTaskNetwork(sharing=sharing, **kwargs)


_MULTITASK_CORRECTIONS = (
    "`input_layer` was undefined; the input is `features` (width `input_dim`, 128)",
    "the outputs were an unnamed list and never compiled; they are named `task1` / `task2`, "
    "each with its own loss (binary / sparse categorical cross-entropy) and accuracy, "
    "and the training loss is their sum",
)
_MULTITASK_TEST_CONFIG = {"input_dim": 64, "units": 64}


@register_model(
    source="004 §4.2 (shared network)",
    task="multi-task learning: binary task1 and 2-class task2 from one feature vector",
    corrections=_MULTITASK_CORRECTIONS,
    test_config=_MULTITASK_TEST_CONFIG,
)
def multitask_shared(**kwargs):
    """Multi-task network: one shared Dense(128) extractor under a sigmoid and a softmax head."""
    return _multitask("multitask_shared", "shared", kwargs)


@register_model(
    source="004 §4.2 (separate networks)",
    task="multi-task learning: binary task1 and 2-class task2 from one feature vector",
    corrections=_MULTITASK_CORRECTIONS,
    test_config=_MULTITASK_TEST_CONFIG,
)
def multitask_separate(**kwargs):
    """Multi-task network: each task with its own Dense(128) extractor; no weight is shared."""
    return _multitask("multitask_separate", "separate", kwargs)


@register_model(
    source="004 §4.2 (hybrid network)",
    task="multi-task learning: binary task1 and 2-class task2 from one feature vector",
    corrections=_MULTITASK_CORRECTIONS
    + (
        "the document's hybrid network gave task 1 a 'shared' extractor that only task 1 read "
        "and task 2 its own: nothing was shared, so it was the separate network; here both "
        "tasks read the shared extractor and task 2 also reads its own task2_extractor "
        "(a shared network and a separate network together, as the text defines it)",
    ),
    test_config=_MULTITASK_TEST_CONFIG,
)
def multitask_hybrid(**kwargs):
    """Multi-task network: a shared extractor both tasks read, plus task2's own extractor."""
    return _multitask("multitask_hybrid", "hybrid", kwargs)
