"""Message passing between modality nodes, written with ``keras.ops`` (document 004 §4.1 GNN)."""

import keras
from keras import layers, ops

from mmzoo.layers.fusion import masked_softmax
from mmzoo.validation import check_bool, check_positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class GraphMessagePassing(layers.Layer):
    """One round of message passing over a graph of ``num_nodes`` nodes.

    Takes node states ``(batch, num_nodes, features)`` and returns new states
    ``(batch, num_nodes, units)``::

        h_i' = activation(W_self h_i + W_neighbours sum_j A_ij h_j + b)

    ``A`` is the row-normalised adjacency of a fully connected graph with self
    loops, ``A = softmax(adjacency_logits)`` row by row: with the logits at zero
    (their initial value) every node averages all nodes, itself included. With
    ``learn_adjacency=True`` the logits are trained, so the model learns how much
    each node listens to each other node; otherwise they stay at zero. The separate
    ``W_self`` keeps each node's own identity: with a mean over a fully connected
    graph alone, every node would get the same state after one round.

    ``layer(nodes, mask=None)``: a ``(batch, num_nodes)`` mask (1 present, 0 missing, e.g. a
    missing modality's node) removes missing nodes from the graph of that example: each
    present node averages the present nodes only (its row of ``A`` renormalised over them)
    and a missing node's new state is zeros. With every node missing the output is zeros.

    Args:
        units: width of the new node states.
        activation: activation of the update.
        learn_adjacency: train the edge weights (initialised to the uniform mean).
        use_bias: add a bias to the update.

    Example:
    >>> layer = GraphMessagePassing(8)
    >>> tuple(layer(keras.ops.ones((2, 3, 5))).shape)
    (2, 3, 8)
    >>> [round(float(a), 3) for a in layer.adjacency()[0]]
    [0.333, 0.333, 0.333]
    """

    def __init__(self, units, activation="relu", learn_adjacency=False, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_bool("learn_adjacency", learn_adjacency)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.learn_adjacency = learn_adjacency
        self.use_bias = bool(use_bias)
        self.self_dense = layers.Dense(units, use_bias=use_bias, name="self_dense")
        self.neighbour_dense = layers.Dense(units, use_bias=False, name="neighbour_dense")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "GraphMessagePassing takes node states (batch, num_nodes, features) with "
                f"num_nodes and features known. Received input shape: {input_shape}"
            )
        num_nodes = input_shape[1]
        self.adjacency_logits = self.add_weight(
            name="adjacency_logits",
            shape=(num_nodes, num_nodes),
            initializer="zeros",
            trainable=self.learn_adjacency,
        )
        self.self_dense.build(input_shape)
        self.neighbour_dense.build(input_shape)

    def adjacency(self):
        """The edge weights ``A``: row ``i`` is how node ``i`` weighs every node; rows sum to 1."""
        return ops.softmax(ops.cast(self.adjacency_logits, "float32"), axis=-1)

    def call(self, nodes, mask=None):
        if mask is None:
            adjacency = ops.cast(self.adjacency(), nodes.dtype)
            aggregated = ops.einsum("ij,bjf->bif", adjacency, nodes)
            return self.activation(self.self_dense(nodes) + self.neighbour_dense(aggregated))
        present = ops.cast(ops.greater(ops.cast(mask, "float32"), 0.5), "float32")  # (batch, nodes)
        logits = ops.cast(self.adjacency_logits, "float32")[None, :, :]
        adjacency = masked_softmax(logits, present[:, None, :], axis=-1)  # (batch, nodes, nodes)
        nodes = ops.where(present[:, :, None] > 0, nodes, ops.zeros_like(nodes))
        aggregated = ops.einsum("bij,bjf->bif", ops.cast(adjacency, nodes.dtype), nodes)
        updated = self.activation(self.self_dense(nodes) + self.neighbour_dense(aggregated))
        return updated * ops.cast(present[:, :, None], updated.dtype)

    def compute_mask(self, nodes, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "learn_adjacency": self.learn_adjacency,
            "use_bias": self.use_bias,
        }
