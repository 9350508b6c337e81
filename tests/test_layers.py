"""Shared layers: what each computes, and that each survives serialization."""

import numpy as np
import pytest
import keras

from mmzoo.layers import (
    AttentionPooling,
    CaffeImagePreprocessing,
    ConcatFusion,
    ElementwiseProductFusion,
    MaskedPooling,
    ModalityDropout,
    ModalityProjection,
    WeightedSumFusion,
)

RNG = np.random.default_rng(0)


def vectors(*widths, batch=4):
    return [RNG.normal(size=(batch, w)).astype("float32") for w in widths]


def test_concat_fusion_joins_the_features():
    a, b, c = vectors(3, 5, 2)
    np.testing.assert_allclose(ConcatFusion()([a, b, c]), np.concatenate([a, b, c], axis=-1))


def test_weighted_sum_normalises_fixed_weights():
    a, b, c = vectors(4, 4, 4)
    fusion = WeightedSumFusion(modality_weights=[0.5, 0.5, 0.5])  # the document's alphas
    fused = fusion([a, b, c])
    np.testing.assert_allclose(fusion.normalized_weights(), [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(fused, (a + b + c) / 3, rtol=1e-5, atol=1e-6)
    assert not fusion.trainable_weights


def test_weighted_sum_with_unequal_weights():
    a, b = vectors(4, 4)
    fused = WeightedSumFusion(modality_weights=[3, 1])([a, b])
    np.testing.assert_allclose(fused, 0.75 * a + 0.25 * b, rtol=1e-5, atol=1e-6)


def test_learned_weights_stay_normalised_while_training():
    a, b, c = vectors(4, 6, 4, batch=32)
    inputs = [keras.Input((4,)), keras.Input((6,)), keras.Input((4,))]
    fusion = WeightedSumFusion(learn_weights=True)
    model = keras.Model(inputs, keras.layers.Dense(1)(fusion(inputs)))
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.fit([a, b, c], 3 * a[:, :1], epochs=20, verbose=0)  # only the first modality explains the target
    weights = np.asarray(fusion.normalized_weights())
    assert abs(weights.sum() - 1) < 1e-6
    assert not np.allclose(weights, 1 / 3, atol=1e-3)  # learned away from the start


def test_weighted_sum_projects_when_widths_differ():
    a, b = vectors(3, 8)
    fusion = WeightedSumFusion()
    assert tuple(fusion([a, b]).shape) == (4, 8)
    assert fusion.projections[0] is not None and fusion.projections[1] is None
    assert tuple(WeightedSumFusion(units=5)([a, b]).shape) == (4, 5)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: WeightedSumFusion(modality_weights=[1, -1]), "modality_weights"),
        (lambda: WeightedSumFusion(units=0), "`units` must be a positive integer or None. Received: units=0"),
        (lambda: WeightedSumFusion(modality_weights=[1, 1])(vectors(2, 2, 2)), "3 modalities but 2 weights"),
        (lambda: ElementwiseProductFusion()(vectors(2)), "fuses a list of at least 2 modality tensors"),
        (lambda: MaskedPooling("median"), "`mode` must be one of 'mean', 'max'. Received: mode='median'"),
        (lambda: ModalityProjection(8, dropout=1.0), "dropout"),
        (lambda: ModalityDropout(1.0), "`rate` must be a number in \\[0, 1\\). Received: rate=1.0"),
    ],
)
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_elementwise_product():
    a, b = vectors(4, 4)
    np.testing.assert_allclose(ElementwiseProductFusion()([a, b]), a * b, rtol=1e-6)
    assert tuple(ElementwiseProductFusion()(vectors(4, 2)).shape) == (4, 4)


def test_modality_dropout_zeroes_whole_modalities_only_while_training():
    inputs = vectors(3, 4, 2, batch=2000)
    layer = ModalityDropout(0.4, seed=3)
    for out, x in zip(layer(inputs), inputs):  # inference: unchanged
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), x)
    outs = [keras.ops.convert_to_numpy(out) for out in layer(inputs, training=True)]
    kept = np.stack([np.all(out == x, axis=1) for out, x in zip(outs, inputs)], axis=1)
    dropped = np.stack([np.all(out == 0.0, axis=1) for out in outs], axis=1)
    assert np.all(kept ^ dropped)  # each modality of each example: untouched (not rescaled) or all zero
    assert kept.any(axis=1).all()  # never every modality of an example
    # P(dropped) = 0.4, less the draws that would drop all three (0.4 ** 3), which keep them all
    assert abs(dropped.mean() - (0.4 - 0.4**3)) < 0.03
    assert dropped.mean(axis=0).min() > 0.25  # every modality is dropped, not only one


def padded_sequence():
    values = RNG.normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    return values, mask


def test_masked_mean_and_max_ignore_padding():
    values, mask = padded_sequence()
    mean = np.asarray(MaskedPooling("mean")(values, mask=mask))
    maximum = np.asarray(MaskedPooling("max")(values, mask=mask))
    for row in range(2):
        real = values[row][mask[row]]
        np.testing.assert_allclose(mean[row], real.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(maximum[row], real.max(axis=0), rtol=1e-5)


def test_attention_pooling_gives_padding_no_weight():
    values, mask = padded_sequence()
    pooling = AttentionPooling(8)
    pooled = np.asarray(pooling(values, mask=mask))
    changed = values.copy()
    changed[~mask] = 100.0  # only padded steps change
    np.testing.assert_allclose(pooling(changed, mask=mask), pooled, rtol=1e-5)
    assert not np.allclose(pooling(changed), pooled)  # without the mask they would count


def test_caffe_preprocessing_matches_keras_applications():
    images = RNG.random((2, 4, 4, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(images * 255.0)
    np.testing.assert_allclose(CaffeImagePreprocessing()(images), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "layer, inputs",
    [
        (ConcatFusion(), vectors(3, 4)),
        (WeightedSumFusion(modality_weights=[2, 1], learn_weights=True, units=6), vectors(3, 4)),
        (ElementwiseProductFusion(units=5), vectors(3, 4)),
        (ModalityProjection(7, activation="gelu", dropout=0.1, normalize=True), vectors(3)[0]),
        (MaskedPooling("max"), padded_sequence()[0]),
        (ModalityDropout(0.3, seed=2), vectors(3, 3)),
        (AttentionPooling(5), padded_sequence()[0]),
        (CaffeImagePreprocessing(input_scale=255.0), RNG.random((1, 2, 2, 3)).astype("float32")),
    ],
    ids=lambda p: type(p).__name__ if isinstance(p, keras.layers.Layer) else "",
)
def test_layer_survives_a_keras_file_in_safe_mode(layer, inputs, tmp_path):
    is_list = isinstance(inputs, list)
    symbolic = [keras.Input(x.shape[1:]) for x in inputs] if is_list else keras.Input(inputs.shape[1:])
    model = keras.Model(symbolic, layer(symbolic))
    path = str(tmp_path / "layer.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    reloaded_layer = loaded.layers[-1]
    assert type(reloaded_layer) is type(layer)
    assert reloaded_layer.get_config() == layer.get_config()
    np.testing.assert_allclose(loaded(inputs), model(inputs), rtol=1e-6)


def test_unit_normalization_matches_keras_and_has_a_finite_gradient_at_zero():
    from mmzoo.layers import UnitNormalization

    x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    x[2] = 0.0
    ours = keras.ops.convert_to_numpy(UnitNormalization()(x))
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(keras.layers.UnitNormalization()(x)), atol=1e-6)
    assert np.all(ours[2] == 0)
    np.testing.assert_allclose(np.linalg.norm(ours[[0, 1, 3, 4]], axis=1), 1.0, atol=1e-6)
    layer = UnitNormalization()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(variable) * np.arange(8, dtype="float32"))
        gradient = tape.gradient(loss, variable).numpy()
    else:  # jax, where keras.layers.UnitNormalization's gradient at zero is NaN
        import jax

        gradient = np.asarray(jax.grad(lambda v: (layer(v) * np.arange(8, dtype="float32")).sum())(x))
    assert np.all(np.isfinite(gradient))  # at the zero row too (1 / epsilon times the upstream gradient)
    assert UnitNormalization.from_config(layer.get_config()).get_config() == layer.get_config()
