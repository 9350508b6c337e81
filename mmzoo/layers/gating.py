"""Input-dependent modality weights: the "policy network" of document 004 §4.1, trained by gradient."""

import keras
from keras import layers, ops

from mmzoo.layers.fusion import _ProjectingFusion, gate_vectors, masked_softmax, modality_list
from mmzoo.validation import check_positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class ModalityGating(_ProjectingFusion):
    """Weights the modalities of each example by a small network that reads them all.

    A policy network ``Dense(hidden_units, relu) -> Dense(num_modalities) -> softmax``
    reads the concatenated modality vectors and emits one weight per modality and
    example; the weights sum to 1. The fused vector is ``sum_m w_m h_m``. Unlike
    :class:`WeightedSumFusion`, whose weights are the same for every example, these
    depend on the input, and they are trained end to end with the rest of the model.
    The layer returns ``(fused, weights)``; the weights are float32 whatever the
    dtype policy.

    With ``present`` (one ``(batch,)`` flag per modality), the policy network reads the
    missing modalities as zeros and its softmax runs over the present ones only: a missing
    modality gets weight 0. With every modality missing, weights and output are zeros.

    Args:
        hidden_units: width of the policy network's hidden layer.
        units: the common width; inputs of another width are projected to it.
            None: the largest input width.

    Example:
    >>> gate = ModalityGating(hidden_units=8)
    >>> fused, weights = gate([keras.ops.ones((2, 4)), keras.ops.zeros((2, 4)), keras.ops.ones((2, 6))])
    >>> tuple(fused.shape), tuple(weights.shape)
    ((2, 6), (2, 3))
    >>> [round(float(s), 3) for s in keras.ops.sum(weights, axis=-1)]
    [1.0, 1.0]
    """

    def __init__(self, hidden_units=128, units=None, **kwargs):
        super().__init__(units=units, **kwargs)
        check_positive_int("hidden_units", hidden_units)
        self.hidden_units = hidden_units
        self.policy_hidden = layers.Dense(hidden_units, activation="relu", name="policy_hidden")
        self.policy_logits = None

    def build(self, input_shape):
        super().build(input_shape)
        count = len(modality_list(input_shape))
        self.policy_logits = layers.Dense(count, name="policy_logits")
        batch = modality_list(input_shape)[0][:-1]
        self.policy_hidden.build(tuple(batch) + (count * self.common_width,))
        self.policy_logits.build(tuple(batch) + (self.hidden_units,))

    def fuse(self, vectors, flags):
        projected = gate_vectors(self._project(vectors), flags)
        state = self.policy_hidden(ops.concatenate(projected, axis=-1))
        logits = ops.cast(self.policy_logits(state), "float32")
        if flags is None:
            weights = ops.softmax(logits, axis=-1)
        else:
            weights = masked_softmax(logits, ops.concatenate(flags, axis=-1))
        stacked = ops.stack(projected, axis=-1)
        fused = ops.sum(stacked * ops.expand_dims(ops.cast(weights, stacked.dtype), axis=-2), axis=-1)
        return fused, weights

    def compute_output_shape(self, input_shape):
        shapes = modality_list(input_shape)
        return super().compute_output_shape(input_shape), tuple(shapes[0][:-1]) + (len(shapes),)

    def compute_output_spec(self, inputs, present=None):
        fused_shape, weights_shape = self.compute_output_shape([tuple(x.shape) for x in modality_list(inputs)])
        return (
            keras.KerasTensor(fused_shape, dtype=self.compute_dtype),
            keras.KerasTensor(weights_shape, dtype="float32"),
        )

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}
