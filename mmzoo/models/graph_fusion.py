"""Document 004 §4.1: modalities as the nodes of a graph (GNN), and dynamic modality weights ("RL")."""

import keras
from keras import layers

from mmzoo.layers import AttentionPooling, GraphMessagePassing, MaskedPooling, ModalityGating
from mmzoo.layers.fusion_names import stack_modalities
from mmzoo.models.base import (
    MultimodalModel,
    check_bool,
    check_choice,
    check_int,
    check_positive_int,
    classifier,
    target_kind,
)
from mmzoo.registry import register_model

MODALITIES = ("image", "text", "audio")
READOUTS = ("mean", "max", "attention")


def _check_widths(image_dim, text_dim, audio_dim, num_classes):
    for key, value in [("image_dim", image_dim), ("text_dim", text_dim),
                       ("audio_dim", audio_dim), ("num_classes", num_classes)]:
        check_positive_int(key, value)


def _embedding_inputs(image_dim, text_dim, audio_dim):
    widths = {"image": image_dim, "text": text_dim, "audio": audio_dim}
    return {key: keras.Input((widths[key],), name=key) for key in MODALITIES}


@keras.saving.register_keras_serializable(package="mmzoo")
class GraphFusion(MultimodalModel):
    """Modality embeddings as the nodes of a graph, mixed by message passing, then classified.

    Document 004 §4.1 (GNN): a node representation layer, Dense(128, relu), turns
    each modality's embedding (``image``, ``text``, ``audio`` vectors of different
    widths) into a node of one width. The three nodes form a fully connected graph
    with self loops; ``num_layers`` rounds of :class:`GraphMessagePassing` let each
    node take in the others (with ``learn_adjacency=True`` the edge weights, the
    document's "edge representation", are learned). A readout pools the nodes into
    the graph representation, which feeds the classifier.

    Args:
        image_dim: width of the ``image`` embedding (e.g. VGG16 features).
        text_dim: width of the ``text`` embedding (e.g. word vectors).
        audio_dim: width of the ``audio`` embedding (e.g. mel features).
        node_units: width of the node states (the document's Dense(128)).
        num_layers: rounds of message passing, at least 2.
        learn_adjacency: learn the edge weights instead of averaging all nodes.
        readout: ``"mean"``, ``"max"`` or ``"attention"`` pooling over the nodes.
        num_classes: 1 for a sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("graph_fusion", learn_adjacency=True, num_classes=4)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 4)
    >>> tuple(model.get_layer("message_passing_1").output.shape)  # (batch, nodes, node_units)
    (None, 3, 128)
    """

    def __init__(
        self,
        image_dim=512,
        text_dim=300,
        audio_dim=128,
        node_units=128,
        num_layers=2,
        learn_adjacency=False,
        readout="mean",
        num_classes=1,
        **kwargs,
    ):
        _check_widths(image_dim, text_dim, audio_dim, num_classes)
        check_positive_int("node_units", node_units)
        check_int("num_layers", num_layers, 2)  # rounds of message passing
        check_bool("learn_adjacency", learn_adjacency)
        check_choice("readout", readout, READOUTS)
        inputs = _embedding_inputs(image_dim, text_dim, audio_dim)
        nodes = stack_modalities([
            layers.Dense(node_units, activation="relu", name=f"{key}_node")(inputs[key])
            for key in MODALITIES
        ])
        for index in range(num_layers):
            nodes = GraphMessagePassing(
                node_units, learn_adjacency=learn_adjacency, name=f"message_passing_{index + 1}"
            )(nodes)
        if readout == "attention":
            graph = AttentionPooling(node_units, name="readout")(nodes)
        else:
            graph = MaskedPooling(readout, name="readout")(nodes)
        outputs = classifier(num_classes)(graph)
        super().__init__(inputs=inputs, outputs=outputs, targets=target_kind(num_classes), **kwargs)


@keras.saving.register_keras_serializable(package="mmzoo")
class DynamicFusion(MultimodalModel):
    """Per-example modality weights from a policy network, trained end to end by gradient.

    Document 004 §4.1 ("RL") has a policy network, Dense(128, relu) then
    Dense(3, softmax), whose three outputs weight the modalities; its reward is
    never used. Here the same network (a :class:`ModalityGating` layer) reads the
    modality embeddings, each first projected to ``units``, and its softmax
    weights fuse them: ``sum_m w_m h_m``. The weights are differentiable, so the
    classification loss trains them with the rest of the model, no reward needed.

    Two outputs: ``"output"`` (the prediction, the trained target) and
    ``"modality_weights"`` ((batch, 3) in the order image, text, audio, summing to
    1 per example: which modality the model relied on). The weights have no
    target (``dummy_batch`` and ``fit`` need only ``{"output": labels}``).

    Args:
        image_dim: width of the ``image`` embedding.
        text_dim: width of the ``text`` embedding.
        audio_dim: width of the ``audio`` embedding.
        units: common width of the projected modalities.
        policy_units: hidden width of the policy network (the document's Dense(128)).
        num_classes: 1 for a sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("dynamic_fusion")
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> sorted(y)
    ['output']
    >>> outputs = model.predict(x, verbose=0)
    >>> tuple(outputs["output"].shape), tuple(outputs["modality_weights"].shape)
    ((2, 1), (2, 3))
    """

    def __init__(
        self,
        image_dim=512,
        text_dim=300,
        audio_dim=128,
        units=128,
        policy_units=128,
        num_classes=1,
        **kwargs,
    ):
        _check_widths(image_dim, text_dim, audio_dim, num_classes)
        check_positive_int("units", units)
        check_positive_int("policy_units", policy_units)
        inputs = _embedding_inputs(image_dim, text_dim, audio_dim)
        projected = [
            layers.Dense(units, activation="relu", name=f"{key}_projection")(inputs[key])
            for key in MODALITIES
        ]
        fused, weights = ModalityGating(hidden_units=policy_units, name="modality_gate")(projected)
        outputs = {"output": classifier(num_classes)(fused), "modality_weights": weights}
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets={"output": target_kind(num_classes), "modality_weights": None},
            **kwargs,
        )


_SMALL_EMBEDDINGS = {"image_dim": 32, "text_dim": 24, "audio_dim": 16}


@register_model(
    source="004 §4.1 GNN",
    task="classification from modality embeddings by message passing between them",
    corrections=(
        "`input_layer` was undefined; the inputs are `image`, `text` and `audio` embeddings",
        "`tensorflow_graphics` has no `graphs.aggregate`; message passing is a Keras layer "
        "(GraphMessagePassing) over a fully connected graph of the modality nodes with self loops",
        "node and edge layers were applied to one input tensor; each modality is a node, and "
        "the edge weights can be learned (`learn_adjacency`)",
        "the graph had no readout and no prediction; pooled nodes feed a classifier",
    ),
    test_config={**_SMALL_EMBEDDINGS, "node_units": 32},
)
def graph_fusion(**kwargs):
    """Modality embeddings as graph nodes, two rounds of message passing, readout, classifier."""
    return GraphFusion(**kwargs)


@register_model(
    source="004 §4.1 RL",
    task="classification with per-example learned modality weights",
    corrections=(
        "`input_layer` and `x_train` were undefined; the inputs are `image`, `text` and "
        "`audio` embeddings",
        "the policy's softmax weights were the model's output and never weighted anything; "
        "they weight the modality embeddings, and the weighted sum feeds a classifier",
        "the reward function was never used (and the policy is differentiable anyway); the "
        "weights are trained end to end by the classification loss",
        "`tensorflow_model_optimization` was imported and never used",
        "the weights are a second output, `modality_weights`, without a target",
    ),
    test_config={**_SMALL_EMBEDDINGS, "units": 64, "policy_units": 16},
)
def dynamic_fusion(**kwargs):
    """A policy network weights the modality embeddings per example; weights are an output."""
    return DynamicFusion(**kwargs)
