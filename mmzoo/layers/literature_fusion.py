"""Fusion operators of the multimodal literature, as Keras layers (``keras.ops`` only).

Each takes a list (or dict) of modality vectors ``(batch, width_m)`` of any widths (FiLM:
the features to modulate first) and returns one tensor; the formulas are in each docstring
and tested against NumPy in ``tests/test_literature_fusion.py``. Each also takes
``present=`` flags, one ``(batch,)`` per modality (see :mod:`mmzoo.layers.fusion`): a
missing modality's vector is read as zeros (tensor, low-rank, FiLM: ``z_m = 0``, the
formula's own "no evidence" point) or left out of the gates' softmax (GMU).

- :class:`TensorFusion` (Zadeh et al., 2017, "Tensor Fusion Network"): the outer product of
  ``[1, z_m]`` over the modalities, flattened;
- :class:`LowRankFusion` (Liu et al., 2018, "Efficient Low-rank Multimodal Fusion"): a linear
  map of that tensor with rank-``r`` factors, never building it;
- :class:`GatedMultimodalUnit` (Arevalo et al., 2017, "Gated Multimodal Units"): per-unit
  gates choose between the modalities' ``tanh`` projections;
- :class:`FiLM` (Perez et al., 2018, "FiLM: Visual Reasoning with a General Conditioning
  Layer"): one modality scales and shifts another;
- :class:`CrossModalAttention` (Tsai et al., 2019, "Multimodal Transformer"): one
  modality's tokens query another's, with a mask on the keys.
"""

import keras
from keras import layers, ops

from mmzoo.layers.fusion import ModalityFusion, gate_vectors, masked_softmax
from mmzoo.validation import check_positive_int


def _check_list(layer, input_shape):
    widths = [shape[-1] for shape in layer._shapes(input_shape)]
    if any(width is None for width in widths):
        raise ValueError(f"{type(layer).__name__} needs known widths. Received input shape: {input_shape}")
    return widths


def _with_one(z):
    """``[1, z]``: a column of ones before the features (so products keep every lower-order term)."""
    return ops.concatenate([ops.ones_like(z[..., :1]), z], axis=-1)


@keras.saving.register_keras_serializable(package="mmzoo")
class TensorFusion(ModalityFusion):
    """Tensor fusion (Zadeh et al., 2017): ``vec([1, z_1] ⊗ [1, z_2] ⊗ ... ⊗ [1, z_M])``.

    The outer product holds every unimodal feature (the terms with ones), every product of
    two modalities' features, and so on up to the M-way products: a linear layer on it can
    express any multilinear interaction. Its size is ``prod_m (width_m + 1)``; keep the
    modality vectors small (:class:`LowRankFusion` avoids building it). A missing modality
    (``present``) is ``z_m = 0``: only the other modalities' terms remain; with every
    modality missing the output is ``(1, 0, ..., 0)``.

    Example:
    >>> fused = TensorFusion()([keras.ops.ones((2, 3)), keras.ops.ones((2, 4))])
    >>> tuple(fused.shape)
    (2, 20)
    """

    def build(self, input_shape):
        _check_list(self, input_shape)

    def fuse(self, vectors, flags):
        vectors = gate_vectors(vectors, flags)
        fused = _with_one(vectors[0])
        for z in vectors[1:]:
            outer = ops.expand_dims(fused, -1) * ops.expand_dims(_with_one(z), -2)
            fused = ops.reshape(outer, (ops.shape(outer)[0], -1))
        return fused

    def compute_output_shape(self, input_shape):
        size = 1
        for width in _check_list(self, input_shape):
            size *= width + 1
        return tuple(self._shapes(input_shape)[0][:-1]) + (size,)


@keras.saving.register_keras_serializable(package="mmzoo")
class LowRankFusion(ModalityFusion):
    """Low-rank multimodal fusion (Liu et al., 2018): ``h = sum_i λ_i ∏_m (W_m^(i) [1, z_m]) + b``.

    The same as a ``Dense(units)`` on :class:`TensorFusion`'s output whose weight tensor
    has rank ``rank`` per output unit, computed without the outer product: one
    ``(width_m + 1) x units`` factor per modality and rank, multiplied element-wise across
    the modalities and summed over the rank with weights ``λ``. With two modalities and
    ``rank >= min(width_1, width_2) + 1`` it can express every such ``Dense`` (tested).
    A missing modality (``present``) is ``z_m = 0``, as in :class:`TensorFusion`.

    Args:
        units: output width.
        rank: the rank ``r`` of the factorisation.

    Example:
    >>> fused = LowRankFusion(8, rank=2)([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))])
    >>> tuple(fused.shape)
    (2, 8)
    """

    def __init__(self, units, rank=4, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.rank = check_positive_int("rank", rank)

    def build(self, input_shape):
        widths = _check_list(self, input_shape)
        self.factors = [
            self.add_weight(name=f"factor_{index}", shape=(self.rank, width + 1, self.units),
                            initializer="glorot_uniform")
            for index, width in enumerate(widths)
        ]
        self.rank_weights = self.add_weight(name="rank_weights", shape=(self.rank,), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def fuse(self, vectors, flags):
        product = None
        for z, factor in zip(gate_vectors(vectors, flags), self.factors):
            projected = ops.einsum("bd,rdu->bru", _with_one(z), ops.cast(factor, z.dtype))
            product = projected if product is None else product * projected
        weights = ops.cast(self.rank_weights, product.dtype)
        return ops.einsum("bru,r->bu", product, weights) + ops.cast(self.bias, product.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(self._shapes(input_shape)[0][:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rank": self.rank}


@keras.saving.register_keras_serializable(package="mmzoo")
class GatedMultimodalUnit(ModalityFusion):
    """Gated multimodal unit (Arevalo et al., 2017): ``h = sum_m g_m ⊙ tanh(W_m z_m)``.

    The gates ``g = softmax_m(V_m [z_1, ..., z_M] + c_m)`` are per example and per unit, and
    sum to 1 over the modalities. With two modalities this is the paper's
    ``h = g ⊙ h_1 + (1 - g) ⊙ h_2`` with ``g = σ(W_z [z_1, z_2])``: a softmax over two logits
    is the sigmoid of their difference. With ``present``, the gates read missing modalities
    as zeros and their softmax runs over the present ones only (a missing modality's share
    is 0); with every modality missing the output is zeros.

    Args:
        units: output width (of every ``tanh`` projection).

    Example:
    >>> gmu = GatedMultimodalUnit(4)
    >>> tuple(gmu([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 4)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)

    def build(self, input_shape):
        widths = _check_list(self, input_shape)
        self.projections = [
            self.add_weight(name=f"projection_{index}", shape=(width, self.units), initializer="glorot_uniform")
            for index, width in enumerate(widths)
        ]
        self.projection_biases = [
            self.add_weight(name=f"projection_bias_{index}", shape=(self.units,), initializer="zeros")
            for index in range(len(widths))
        ]
        self.gate_kernel = self.add_weight(
            name="gate_kernel", shape=(sum(widths), len(widths), self.units), initializer="glorot_uniform"
        )
        self.gate_bias = self.add_weight(name="gate_bias", shape=(len(widths), self.units), initializer="zeros")

    def gates(self, inputs, flags=None):
        """``(batch, modalities, units)``: each modality's share of each unit, summing to 1 over modalities.

        With ``flags`` (one ``(batch, 1)`` 0/1 tensor per modality) only over the present ones.
        """
        inputs = gate_vectors(inputs, flags)
        joined = ops.concatenate(list(inputs), axis=-1)
        logits = ops.einsum("bd,dmu->bmu", joined, ops.cast(self.gate_kernel, joined.dtype))
        logits = logits + ops.cast(self.gate_bias, joined.dtype)
        if flags is None:
            return ops.softmax(logits, axis=1)
        present = ops.expand_dims(ops.concatenate(flags, axis=-1), -1)
        return ops.cast(masked_softmax(logits, present, axis=1), joined.dtype)

    def fuse(self, vectors, flags):
        hidden = ops.stack(
            [ops.tanh(ops.matmul(z, ops.cast(w, z.dtype)) + ops.cast(b, z.dtype))
             for z, w, b in zip(gate_vectors(vectors, flags), self.projections, self.projection_biases)],
            axis=1,
        )
        return ops.sum(self.gates(vectors, flags) * hidden, axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(self._shapes(input_shape)[0][:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="mmzoo")
class FiLM(ModalityFusion):
    """Feature-wise linear modulation (Perez et al., 2018): ``FiLM(x | c) = γ(c) ⊙ x + β(c)``.

    The first input ``x`` is modulated by the others (concatenated as the condition ``c``):
    ``γ(c) = W_γ c + b_γ`` and ``β(c) = W_β c + b_β`` are linear in the condition, one
    scale and one shift per feature of ``x``. ``γ`` starts at 1 and ``β`` at 0
    (``W_γ = W_β = 0``), so an untrained layer passes ``x`` through unchanged. A missing
    modality (``present``) is zeros: a missing condition modulates nothing, a missing ``x``
    leaves ``β(c)``; with every modality missing the output is ``b_β``.

    Example:
    >>> film = FiLM()
    >>> x = keras.ops.ones((2, 4))
    >>> bool(keras.ops.all(film([x, keras.ops.ones((2, 3))]) == x))
    True
    """

    def build(self, input_shape):
        widths = _check_list(self, input_shape)
        features, condition = widths[0], sum(widths[1:])
        self.gamma_kernel = self.add_weight(name="gamma_kernel", shape=(condition, features), initializer="zeros")
        self.gamma_bias = self.add_weight(name="gamma_bias", shape=(features,), initializer="ones")
        self.beta_kernel = self.add_weight(name="beta_kernel", shape=(condition, features), initializer="zeros")
        self.beta_bias = self.add_weight(name="beta_bias", shape=(features,), initializer="zeros")

    def fuse(self, vectors, flags):
        vectors = gate_vectors(vectors, flags)
        x, condition = vectors[0], ops.concatenate(vectors[1:], axis=-1)
        gamma = ops.matmul(condition, ops.cast(self.gamma_kernel, x.dtype)) + ops.cast(self.gamma_bias, x.dtype)
        beta = ops.matmul(condition, ops.cast(self.beta_kernel, x.dtype)) + ops.cast(self.beta_bias, x.dtype)
        return gamma * x + beta

    def compute_output_shape(self, input_shape):
        return tuple(self._shapes(input_shape)[0])


@keras.saving.register_keras_serializable(package="mmzoo")
class CrossModalAttention(layers.Layer):
    """Cross-modal attention (Tsai et al., 2019, MulT): modality α's tokens query modality β's.

    ``CM(X_α, X_β) = softmax(Q K^T / sqrt(d)) V`` with ``Q = X_α W_Q``, ``K = X_β W_K``,
    ``V = X_β W_V`` (multi-head), keys masked by ``key_mask`` (``(batch, steps_β)``, 1 real, 0
    padding or missing), then, as in MulT's crossmodal block, a residual connection and
    layer normalisation: ``LayerNorm(X_α + CM(X_α, X_β))``. A query whose keys are all masked
    attends to nothing and keeps ``LayerNorm(X_α)``.

    Called as ``layer(query, context, key_mask=None)``: ``(batch, steps_α, d)`` and
    ``(batch, steps_β, d_β)``; returns ``(batch, steps_α, d)``.

    Args:
        num_heads: attention heads.
        key_dim: size of each head's queries and keys; None: ``d // num_heads``.

    Example:
    >>> attention = CrossModalAttention(num_heads=2)
    >>> tuple(attention(keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 5, 6))).shape)
    (2, 3, 8)
    """

    def __init__(self, num_heads=4, key_dim=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = None if key_dim is None else check_positive_int("key_dim", key_dim)

    def build(self, query_shape, context_shape, key_mask_shape=None):
        width = query_shape[-1]
        self.attention = layers.MultiHeadAttention(
            self.num_heads, self.key_dim or max(1, width // self.num_heads), output_shape=width, name="attention"
        )
        self.attention.build(query_shape, context_shape)
        self.norm = layers.LayerNormalization(name="norm")
        self.norm.build(query_shape)

    def call(self, query, context, key_mask=None):
        attention_mask = None
        if key_mask is not None:
            keys = ops.cast(key_mask, "bool")
            attention_mask = ops.repeat(ops.expand_dims(keys, 1), ops.shape(query)[1], axis=1)
        attended = self.attention(query, context, attention_mask=attention_mask)
        if key_mask is not None:  # no real key: nothing attended (MultiHeadAttention would average them all)
            any_key = ops.cast(ops.any(ops.cast(key_mask, "bool"), axis=-1), attended.dtype)
            attended = attended * any_key[:, None, None]
        return self.norm(query + attended)

    def compute_output_shape(self, query_shape, context_shape, key_mask_shape=None):
        return tuple(query_shape)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim}


__all__ = ["CrossModalAttention", "FiLM", "GatedMultimodalUnit", "LowRankFusion", "TensorFusion"]
