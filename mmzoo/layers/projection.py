"""Projection of one modality's features into a shared width."""

import keras
from keras import layers

from mmzoo.validation import check_positive_int, check_rate


@keras.saving.register_keras_serializable(package="mmzoo")
class ModalityProjection(layers.Layer):
    """``Dense -> (LayerNormalization) -> Dropout``: one modality into a common space.

    Args:
        units: output width.
        activation: activation of the dense layer.
        dropout: dropout rate after the projection.
        normalize: apply layer normalisation after the dense layer.

    Example:
    >>> tuple(ModalityProjection(16)(keras.ops.ones((2, 7))).shape)
    (2, 16)
    """

    def __init__(self, units, activation="relu", dropout=0.0, normalize=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("units", units)
        check_rate("dropout", dropout)
        self.units = units
        self.activation = activation
        self.dropout = dropout
        self.normalize = normalize
        self.dense = layers.Dense(units, activation=activation, name="dense")
        self.norm = layers.LayerNormalization(name="norm") if normalize else None
        self.drop = layers.Dropout(dropout) if dropout else None

    def build(self, input_shape):
        self.dense.build(input_shape)
        if self.norm is not None:
            self.norm.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, inputs, training=None):
        x = self.dense(inputs)
        if self.norm is not None:
            x = self.norm(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "dropout": self.dropout,
            "normalize": self.normalize,
        }
