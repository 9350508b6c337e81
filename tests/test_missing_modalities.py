"""Missing modalities as masks (issue 16): fusion layers take presence flags and renormalise.

Every model's ``missing_modalities=True`` is checked in ``test_registry_models.py``
(``check_missing_modalities``); here the layers, ``fusion_classifier`` with every fusion, and
the bad inputs.
"""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.layers import (
    AttentionPooling,
    ConcatFusion,
    ElementwiseProductFusion,
    FiLM,
    GatedMultimodalUnit,
    GraphMessagePassing,
    LowRankFusion,
    ModalityDropout,
    ModalityGating,
    TensorFusion,
    WeightedSumFusion,
)
from mmzoo.layers.fusion_names import FUSIONS, apply_fusion, stack_modalities

RNG = np.random.default_rng(0)
# 5 examples, 3 modalities: example 3 has only modality 2, example 4 has none.
PRESENT = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]], "float32")


def vectors(widths=(4, 4, 4), batch=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, w)).astype("float32") for w in widths]


def flags(present=PRESENT):
    return [present[:, m] for m in range(present.shape[1])]


def scrambled(values, present=PRESENT, seed=9):
    """The same vectors, with large random values wherever the modality is missing."""
    rng = np.random.default_rng(seed)
    return [
        np.where(present[:, m : m + 1] > 0, v, rng.normal(scale=100.0, size=v.shape)).astype("float32")
        for m, v in enumerate(values)
    ]


LAYERS = {
    "concat": lambda: ConcatFusion(),
    "weighted": lambda: WeightedSumFusion(modality_weights=[1.0, 2.0, 3.0]),
    "product": lambda: ElementwiseProductFusion(),
    "gating": lambda: ModalityGating(hidden_units=8),
    "tensor": lambda: TensorFusion(),
    "low_rank": lambda: LowRankFusion(6, rank=3),
    "gmu": lambda: GatedMultimodalUnit(6),
    "film": lambda: FiLM(),
}


def _first(output):
    return np.asarray(output[0] if isinstance(output, (tuple, list)) else output)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_missing_modality_has_no_effect_on_a_fusion_layer(name):
    layer = LAYERS[name]()
    values = vectors((4, 3, 5)) if name not in ("weighted", "product", "gating") else vectors((4, 4, 4))
    if name == "film":
        layer.build([v.shape for v in values])  # FiLM starts as the identity: give it a condition to read
        for weight in (layer.gamma_kernel, layer.beta_kernel):
            weight.assign(np.random.default_rng(1).normal(size=weight.shape))
    out = _first(layer(values, present=flags()))
    again = _first(layer(scrambled(values), present=flags()))
    np.testing.assert_allclose(again, out, atol=1e-5)
    assert np.isfinite(out).all()
    # Without flags the scrambled values do change the output: the flags are what protects it.
    assert not np.allclose(_first(layer(scrambled(values))), _first(layer(values)), atol=1e-3)
    # Flags as one (batch, modalities) tensor and as a dict mean the same.
    np.testing.assert_allclose(_first(layer(values, present=PRESENT)), out, atol=1e-6)
    as_dict = dict(zip("abc", values))
    np.testing.assert_allclose(_first(layer(as_dict, present=dict(zip("abc", flags())))), out, atol=1e-6)


def test_weighted_sum_renormalises_over_the_present_modalities():
    values = vectors()
    out = np.asarray(WeightedSumFusion(modality_weights=[1.0, 2.0, 3.0])(values, present=flags()))
    weights = np.array([1.0, 2.0, 3.0]) * PRESENT
    total = weights.sum(axis=1, keepdims=True)
    expected = sum(weights[:, m : m + 1] / np.maximum(total, 1e-9) * values[m] for m in range(3))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not out[4].any()  # every modality missing: zeros, no NaN


def test_product_runs_over_the_present_modalities():
    values = vectors()
    out = np.asarray(ElementwiseProductFusion()(values, present=flags()))
    np.testing.assert_allclose(out[1], values[0][1] * values[2][1], atol=1e-5)
    np.testing.assert_allclose(out[3], values[2][3], atol=1e-5)
    assert not out[4].any()


def test_gates_never_pick_a_missing_modality():
    values = vectors()
    _, weights = ModalityGating(hidden_units=8)(values, present=flags())
    weights = np.asarray(weights)
    assert not (weights * (1 - PRESENT)).any()
    np.testing.assert_allclose(weights[:4].sum(axis=1), 1.0, atol=1e-5)
    assert not weights[4].any()
    gmu = GatedMultimodalUnit(6)
    gmu.build([v.shape for v in values])
    shares = np.asarray(gmu.gates(values, [f.reshape(-1, 1) for f in flags()]))  # (batch, modalities, units)
    assert not (shares * (1 - PRESENT)[:, :, None]).any()
    np.testing.assert_allclose(shares[:4].sum(axis=1), 1.0, atol=1e-5)


def test_tensor_fusion_reads_a_missing_modality_as_zero():
    values = vectors((2, 3))
    present = PRESENT[:, :2]
    out = np.asarray(TensorFusion()(values, present=flags(present)))
    zeroed = [v * present[:, m : m + 1] for m, v in enumerate(values)]
    np.testing.assert_allclose(out, np.asarray(TensorFusion()(zeroed)), atol=1e-6)
    np.testing.assert_allclose(out[4], np.eye(12)[0], atol=1e-6)  # nothing present: (1, 0, ..., 0)


def test_attention_pooling_and_graph_leave_missing_tokens_out():
    tokens = np.stack(vectors(), axis=1)  # (batch, 3, 4)
    noisy = np.stack(scrambled(vectors()), axis=1)
    pooled = AttentionPooling(8)
    np.testing.assert_allclose(pooled(noisy, mask=PRESENT), pooled(tokens, mask=PRESENT), atol=1e-5)
    np.testing.assert_allclose(np.asarray(pooled(tokens, mask=PRESENT))[3], tokens[3, 2], atol=1e-5)
    graph = GraphMessagePassing(6, learn_adjacency=True)
    out = np.asarray(graph(tokens, mask=PRESENT))
    np.testing.assert_allclose(graph(noisy, mask=PRESENT), out, atol=1e-4)
    assert not (out * (1 - PRESENT)[:, :, None]).any()  # a missing node's state is zeros
    np.testing.assert_allclose(out[0], np.asarray(graph(tokens))[0], atol=1e-5)  # all present: unchanged


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_apply_fusion_with_flags_ignores_missing_vectors(fusion):
    inputs = [keras.Input((8,)) for _ in range(3)]
    present = [keras.Input(()) for _ in range(3)]
    model = keras.Model(inputs + present, apply_fusion(fusion, inputs, 8, present=present))
    values = vectors((8, 8, 8))
    out = model.predict(values + flags(), verbose=0)
    np.testing.assert_allclose(model.predict(scrambled(values) + flags(), verbose=0), out, atol=1e-4)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_fusion_classifier_with_missing_modalities(fusion):
    model = mmzoo.build(
        "fusion_classifier", inputs={"features_a": (6,), "features_b": (5,), "features_c": (4,)},
        num_classes=3, width=8, fusion=fusion, missing_modalities=True,
    )
    assert sorted(k for k in model.input if k.endswith("_present")) == [
        "features_a_present", "features_b_present", "features_c_present"]
    rng = np.random.default_rng(2)
    x = {f"features_{k}": rng.normal(size=(5, w)).astype("float32") for k, w in zip("abc", (6, 5, 4))}
    x.update({f"features_{k}_present": PRESENT[:, m] for m, k in enumerate("abc")})
    out = model.predict(x, verbose=0)
    noisy = dict(x)
    for m, key in enumerate(("features_a", "features_b", "features_c")):
        noisy[key] = np.where(PRESENT[:, m : m + 1] > 0, x[key], rng.normal(scale=50.0, size=x[key].shape))
        noisy[key] = noisy[key].astype("float32")
    np.testing.assert_allclose(model.predict(noisy, verbose=0), out, atol=1e-5)
    assert np.isfinite(out).all()
    assert np.isfinite(model.train_on_batch(x, np.array([0, 1, 2, 0, 1]))).all()


def test_modality_dropout_with_flags_drops_among_the_present_ones():
    layer = ModalityDropout(0.6, seed=3)
    values = [np.ones((200, 2), "float32") for _ in range(3)]
    present = np.random.default_rng(4).integers(0, 2, size=(200, 3)).astype("float32")
    present[:, 0] = np.maximum(present[:, 0], present.sum(axis=1) == 0)  # at least one present
    dropped, kept = layer(values, present=[present[:, m] for m in range(3)], training=True)
    kept = np.stack([np.asarray(k) for k in kept], axis=1)
    dropped = np.stack([np.asarray(d)[:, 0] for d in dropped], axis=1)
    np.testing.assert_array_equal(dropped, kept)  # the flags say what was dropped
    assert not (kept * (1 - present)).any()  # a missing modality is never brought back
    assert (kept.sum(axis=1) >= 1).all()  # never an example's last present modality
    assert kept.sum() < present.sum()  # some were dropped
    same, flags_out = layer(values, present=[present[:, m] for m in range(3)])  # inference: no-op
    np.testing.assert_array_equal(np.stack([np.asarray(f) for f in flags_out], axis=1), present)


# --- bad input -----------------------------------------------------------------------------


def test_present_values_other_than_0_and_1_are_refused():
    model = mmzoo.build("concat_fusion", missing_modalities=True)
    x, _ = mmzoo.dummy_batch(model, batch_size=3)
    x["text_present"] = np.array([1.0, 0.5, 0.0], "float32")
    with pytest.raises(ValueError, match=r"'text_present' of .* is a presence flag: 1 where .* example\(s\) \[1\]"):
        model.predict(x, verbose=0)


def test_every_modality_missing_gives_a_documented_finite_output():
    model = mmzoo.build("fusion_classifier", inputs={"features_a": (4,), "features_b": (4,)}, num_classes=2,
                        width=8, fusion="weighted", missing_modalities=True)
    x = {"features_a": np.ones((2, 4), "float32"), "features_b": np.ones((2, 4), "float32"),
         "features_a_present": np.zeros(2, "float32"), "features_b_present": np.zeros(2, "float32")}
    out = model.predict(x, verbose=0)
    assert np.isfinite(out).all()
    # The fusion gives zeros, so the prediction is the head's answer to nothing: the same for both.
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


def test_a_one_modality_model_refuses_missing_modalities():
    with pytest.raises(ValueError, match=r"MLP takes one modality \('features'\): missing_modalities=True needs"):
        mmzoo.build("mlp", missing_modalities=True)
    with pytest.raises(ValueError, match="missing_modalities=True needs two or more modality inputs"):
        mmzoo.build("fusion_classifier", inputs={"features": (4,)}, missing_modalities=True)
    with pytest.raises(ValueError, match="missing_modalities"):
        mmzoo.build("concat_fusion", missing_modalities="yes")


def test_unknown_fusion_names_lists_the_names():
    with pytest.raises(ValueError, match="'concat', 'weighted'.*'cross_attention'.*Received: fusion='sum'"):
        mmzoo.build("fusion_classifier", fusion="sum")


def test_mismatched_widths_are_named():
    with pytest.raises(ValueError, match=r"fusion 'attention' needs modality vectors of one width.*\[8, 6\]"):
        apply_fusion("attention", [keras.Input((8,)), keras.Input((6,))], 8)
    with pytest.raises(ValueError, match=r"Received: widths \[3, 5\]"):
        stack_modalities([keras.Input((3,)), keras.Input((5,))])
    with pytest.raises(ValueError, match="3 modalities but got 2 presence flags"):
        ConcatFusion()(vectors(), present=flags()[:2])
    with pytest.raises(ValueError, match="3 modality vectors but 2 presence flags"):
        apply_fusion("concat", [keras.Input((8,))] * 3, 8, present=[keras.Input(())] * 2)
