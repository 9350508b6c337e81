"""The zoo's default optimizer: Keras' Adam, with sparse gradients merged before the update.

On TensorFlow an ``Embedding`` gets its gradient as ``tf.IndexedSlices``: one row per token
in the batch, a token seen ``k`` times giving ``k`` rows. Keras' Adam squares those rows
before adding them up, so the second moment gets ``sum(g_i ** 2)`` instead of
``(sum g_i) ** 2`` and the row moves up to ``sqrt(k)`` times as far as Adam means it to (a
token seen 16 times in a batch: 4 times the learning rate). TensorFlow 1's Adam summed
duplicate indices first, as PyTorch does for any gradient. :class:`Adam` sums them first
(it makes the gradient dense, which is what Keras' update does with it next anyway), and is
Keras' Adam in everything else. On JAX and PyTorch gradients are dense already: no change.
"""

import sys

import keras


@keras.saving.register_keras_serializable(package="mmzoo")
class Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with a token's gradient rows summed before the update.

    Takes Keras' Adam's arguments (``learning_rate=0.001``, ``beta_1``, ``beta_2``,
    ``epsilon=1e-7``, ``amsgrad``, ...). Every registered model compiles with it.

    Example:
    >>> import mmzoo
    >>> optimizer = mmzoo.optimizers.Adam(learning_rate=1e-3)
    >>> float(optimizer.learning_rate)
    0.001
    """

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(merged_rows(gradient), variable, learning_rate)


def merged_rows(gradient):
    """A ``tf.IndexedSlices`` gradient made dense (rows of one index summed); anything else as it is.

    ``keras.ops.convert_to_tensor`` leaves ``IndexedSlices`` as they are, so this asks
    TensorFlow, only where TensorFlow is loaded (on JAX nothing is an ``IndexedSlices``).
    """
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(gradient, tf.IndexedSlices):
        return tf.convert_to_tensor(gradient)
    return gradient


__all__ = ["Adam", "merged_rows"]
