"""The literature's fusion operators (mmzoo/layers/literature_fusion.py) against their formulas in NumPy."""

import keras
import numpy as np
import pytest

from mmzoo.layers.literature_fusion import (
    CrossModalAttention,
    FiLM,
    GatedMultimodalUnit,
    LowRankFusion,
    TensorFusion,
)

RNG = np.random.default_rng(0)


def vectors(*widths, batch=3):
    return [RNG.normal(size=(batch, w)).astype("float32") for w in widths]


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def with_one(z):
    return np.concatenate([np.ones((len(z), 1), z.dtype), z], axis=1)


def test_tensor_fusion_is_the_outer_product_of_one_and_each_modality():
    a, b, c = vectors(2, 3, 1)
    expected = np.einsum("bi,bj,bk->bijk", with_one(a), with_one(b), with_one(c)).reshape(3, -1)
    np.testing.assert_allclose(numpy(TensorFusion()([a, b, c])), expected, rtol=1e-5, atol=1e-6)
    fused = numpy(TensorFusion()([a, b]))
    assert fused.shape == (3, 12)
    np.testing.assert_allclose(fused[:, 1:4], b, rtol=1e-6)  # the unimodal terms are in it: [1] x [1, b]
    np.testing.assert_allclose(fused[:, [4, 8]], a, rtol=1e-6)  # and [1, a] x [1]
    np.testing.assert_allclose(fused[:, 0], 1.0)


def test_low_rank_fusion_matches_its_formula():
    a, b = vectors(2, 3)
    layer = LowRankFusion(4, rank=3)
    out = numpy(layer([a, b]))
    fa, fb, weights, bias = (numpy(w) for w in (layer.factors[0], layer.factors[1], layer.rank_weights, layer.bias))
    expected = np.einsum("r,bru->bu", weights,
                         np.einsum("bd,rdu->bru", with_one(a), fa) * np.einsum("bd,rdu->bru", with_one(b), fb)) + bias
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_low_rank_fusion_at_full_rank_equals_a_dense_layer_on_tensor_fusion():
    """Any Dense(units) on [1, a] ⊗ [1, b] has, per unit, a matrix of rank <= min(width)+1: its SVD is LMF's factors."""
    a, b = vectors(2, 3, batch=5)
    units, rows, cols = 4, 3, 4
    kernel = RNG.normal(size=(rows * cols, units)).astype("float32")
    dense_out = numpy(TensorFusion()([a, b])) @ kernel
    rank = min(rows, cols)
    fa, fb = np.zeros((rank, rows, units), "float32"), np.zeros((rank, cols, units), "float32")
    for unit in range(units):
        u, s, vt = np.linalg.svd(kernel[:, unit].reshape(rows, cols))
        fa[:, :, unit] = (u[:, :rank] * s[:rank]).T
        fb[:, :, unit] = vt[:rank]
    layer = LowRankFusion(units, rank=rank)
    layer.build([a.shape, b.shape])
    layer.set_weights([fa, fb, np.ones(rank, "float32"), np.zeros(units, "float32")])
    np.testing.assert_allclose(numpy(layer([a, b])), dense_out, rtol=1e-4, atol=1e-4)


def test_gated_multimodal_unit_is_the_papers_sigmoid_gate_for_two_modalities():
    a, b = vectors(3, 2)
    gmu = GatedMultimodalUnit(4)
    out = numpy(gmu([a, b]))
    wa, wb, ba, bb, gate_kernel, gate_bias = (numpy(w) for w in (
        gmu.projections[0], gmu.projections[1], gmu.projection_biases[0], gmu.projection_biases[1],
        gmu.gate_kernel, gmu.gate_bias))
    ha, hb = np.tanh(a @ wa + ba), np.tanh(b @ wb + bb)
    logits = np.einsum("bd,dmu->bmu", np.concatenate([a, b], 1), gate_kernel) + gate_bias
    z = 1 / (1 + np.exp(-(logits[:, 0] - logits[:, 1])))  # h = z * h_a + (1 - z) * h_b
    np.testing.assert_allclose(out, z * ha + (1 - z) * hb, rtol=1e-5, atol=1e-5)
    gates = numpy(gmu.gates([a, b]))
    np.testing.assert_allclose(gates.sum(axis=1), 1.0, rtol=1e-6)


def test_film_scales_and_shifts_the_first_modality_by_the_others():
    x, c1, c2 = vectors(4, 2, 3)
    film = FiLM()
    np.testing.assert_allclose(numpy(film([x, c1, c2])), x, rtol=1e-6)  # starts as the identity
    weights = [RNG.normal(size=w.shape).astype("float32") for w in film.get_weights()]
    film.set_weights(weights)
    gamma_kernel, gamma_bias, beta_kernel, beta_bias = weights
    condition = np.concatenate([c1, c2], axis=1)
    expected = (condition @ gamma_kernel + gamma_bias) * x + condition @ beta_kernel + beta_bias
    np.testing.assert_allclose(numpy(film([x, c1, c2])), expected, rtol=1e-5, atol=1e-5)


def test_cross_modal_attention_matches_its_formula_and_ignores_masked_keys():
    query = RNG.normal(size=(2, 3, 4)).astype("float32")
    context = RNG.normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], "float32")
    layer = CrossModalAttention(num_heads=1, key_dim=4)
    out = numpy(layer(query, context, key_mask=mask))
    attention = layer.attention
    wq, bq = numpy(attention.query_dense.kernel)[:, 0], numpy(attention.query_dense.bias)[0]
    wk, bk = numpy(attention.key_dense.kernel)[:, 0], numpy(attention.key_dense.bias)[0]
    wv, bv = numpy(attention.value_dense.kernel)[:, 0], numpy(attention.value_dense.bias)[0]
    wo, bo = numpy(attention.output_dense.kernel)[0], numpy(attention.output_dense.bias)
    q, k, v = query @ wq + bq, context @ wk + bk, context @ wv + bv
    scores = np.einsum("bqd,bkd->bqk", q, k) / np.sqrt(4) + (mask[:, None, :] - 1) * 1e9
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    residual = query + (np.einsum("bqk,bkd->bqd", weights, v) @ wo + bo)
    expected = (residual - residual.mean(-1, keepdims=True)) / np.sqrt(residual.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    changed = context.copy()
    changed[mask == 0] = 100.0  # only masked keys change
    np.testing.assert_allclose(numpy(layer(query, changed, key_mask=mask)), out, rtol=1e-5, atol=1e-5)


def test_cross_modal_attention_with_no_real_key_attends_to_nothing():
    query = RNG.normal(size=(1, 2, 4)).astype("float32")
    layer = CrossModalAttention(num_heads=2)
    out = numpy(layer(query, RNG.normal(size=(1, 3, 4)).astype("float32"), key_mask=np.zeros((1, 3), "float32")))
    expected = (query - query.mean(-1, keepdims=True)) / np.sqrt(query.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TensorFusion()(vectors(3)), "TensorFusion fuses a list of at least 2 modality tensors"),
        (lambda: LowRankFusion(0), "`units` must be a positive integer. Received: units=0"),
        (lambda: LowRankFusion(4, rank=-1), "`rank` must be a positive integer. Received: rank=-1"),
        (lambda: GatedMultimodalUnit(2)(vectors(2)), "GatedMultimodalUnit fuses a list of at least 2"),
        (lambda: CrossModalAttention(num_heads=0), "`num_heads` must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "layer", [TensorFusion(), LowRankFusion(5, rank=2), GatedMultimodalUnit(3), FiLM()],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_survives_a_keras_file_in_safe_mode(layer, tmp_path):
    inputs = vectors(3, 2)
    symbolic = [keras.Input(x.shape[1:]) for x in inputs]
    model = keras.Model(symbolic, layer(symbolic))
    model.save(tmp_path / "layer.keras")
    loaded = keras.saving.load_model(tmp_path / "layer.keras", safe_mode=True)
    assert loaded.layers[-1].get_config() == layer.get_config()
    np.testing.assert_allclose(numpy(loaded(inputs)), numpy(model(inputs)), rtol=1e-6)


def test_cross_modal_attention_survives_a_keras_file(tmp_path):
    query, context = keras.Input((3, 4)), keras.Input((5, 6))
    mask = keras.Input((5,))
    model = keras.Model([query, context, mask], CrossModalAttention(num_heads=2)(query, context, key_mask=mask))
    model.save(tmp_path / "attention.keras")
    loaded = keras.saving.load_model(tmp_path / "attention.keras", safe_mode=True)
    x = [RNG.normal(size=(2, 3, 4)).astype("float32"), RNG.normal(size=(2, 5, 6)).astype("float32"),
         np.ones((2, 5), "float32")]
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-5, atol=1e-6)
