"""What the models of documents 000-003 must do beyond the registry-wide checks."""

import keras
import numpy as np
import pytest
from keras import layers

import mmzoo
from helpers import build_small


def document_000_model():
    """Document 000's `create_model`, which builds as written (only its data code is broken)."""
    image, text, audio = keras.Input((32, 32, 3)), keras.Input((128,)), keras.Input((128,))
    x = layers.MaxPooling2D(2)(layers.Conv2D(32, 3, activation="relu")(image))
    x = layers.MaxPooling2D(2)(layers.Conv2D(64, 3, activation="relu")(x))
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    merged = layers.concatenate(
        [x, layers.Dense(128, activation="relu")(text), layers.Dense(128, activation="relu")(audio)]
    )
    out = layers.Dense(10, activation="softmax")(layers.Dense(128, activation="relu")(merged))
    return keras.Model([image, text, audio], out)


def document_003_models():
    """Document 003's three programs with their shape errors fixed minimally, for parameter counts."""
    image, tokens = keras.Input((128,)), keras.Input((64,))
    image_dense = layers.Dense(64, activation="relu")
    text_features = keras.Input((64,))
    program_1 = keras.Model(
        [image, text_features],
        layers.Dense(1, activation="sigmoid")(
            layers.Concatenate()([image_dense(image), layers.Dense(64)(text_features)])
        ),
    )
    embedded = layers.Embedding(1000, 64)(tokens)
    lstm = layers.LSTM(64)(embedded)
    score = layers.Dot(axes=1)([lstm, image_dense(image)])
    program_2 = keras.Model(
        [image, tokens],
        layers.Dense(1, activation="sigmoid")(layers.Concatenate()([image_dense(image), lstm, score])),
    )
    attention = layers.GlobalAveragePooling1D()(layers.MultiHeadAttention(2, 64)(embedded, embedded))
    program_3 = keras.Model(
        [image, tokens],
        layers.Dense(1, activation="sigmoid")(layers.Concatenate()([image_dense(image), lstm, attention])),
    )
    return {"concat_fusion": program_1, "attention_fusion": program_2, "mha_fusion": program_3}


def test_cifar_multimodal_has_the_documents_parameters():
    assert mmzoo.build("cifar_multimodal").count_params() == document_000_model().count_params()


@pytest.mark.parametrize("name", ["concat_fusion", "attention_fusion", "mha_fusion"])
def test_document_003_models_keep_the_documents_parameters(name):
    assert mmzoo.build(name).count_params() == document_003_models()[name].count_params()


def test_attention_fusion_builds_compiled_and_trains_as_is():
    model = mmzoo.build("attention_fusion")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(256, 1)).astype("float32")
    tokens = rng.integers(1, 1000, size=(256, 64)).astype("int32")
    image = rng.normal(size=(256, 128)).astype("float32")
    image[:, :8] += 1.5 * (2 * labels - 1)  # the label is in the image features
    history = model.fit({"image_input": image, "text_input": tokens}, labels, epochs=5, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert history.history["loss"][-1] < history.history["loss"][0]


def shared_weights_at_two_lengths(name, **kwargs):
    short = build_small(name, text_length=8, **kwargs)
    long = build_small(name, text_length=16, **kwargs)
    long.set_weights(short.get_weights())  # no weight depends on the sequence length
    return short, long


@pytest.mark.parametrize(
    "name, kwargs",
    [("attention_fusion", {}), ("mha_fusion", {}), ("mha_fusion", {"cross_modal": True})],
    ids=["attention_fusion", "mha_self_attention", "mha_cross_attention"],
)
def test_padding_does_not_change_the_prediction(name, kwargs):
    """The same tokens padded to 8 or to 16 give one prediction: the mask reaches every text layer."""
    short, long = shared_weights_at_two_lengths(name, **kwargs)
    x, _ = mmzoo.dummy_batch(short, batch_size=4, seed=0)
    tokens = x["text_input"].copy()
    tokens[:, 5:] = 0  # five real tokens, then padding
    padded = np.zeros((4, 16), "int32")
    padded[:, :8] = tokens
    predict_short = short.predict({**x, "text_input": tokens}, verbose=0)
    predict_long = long.predict({**x, "text_input": padded}, verbose=0)
    np.testing.assert_allclose(predict_long, predict_short, atol=1e-5)
    changed = tokens.copy()
    changed[:, 2] = (changed[:, 2] % 29) + 1  # a real token changes: so does the prediction
    assert not np.allclose(short.predict({**x, "text_input": changed}, verbose=0), predict_short, atol=1e-6)


def test_mha_cross_modal_attends_from_the_image():
    model = build_small("mha_fusion", cross_modal=True)
    attention = model.get_layer("attention")
    assert attention.output.shape[1] == 1  # one query: the image
    assert mmzoo.build("mha_fusion").get_config()["cross_modal"] is False


def test_mimo_loss_is_the_sum_of_the_modality_losses():
    model = build_small("mimo")
    x, y = mmzoo.dummy_batch(model, batch_size=16)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert "fused_loss" not in logs and "fused_accuracy" in logs
    total = logs["text_loss"] + logs["image_loss"] + logs["audio_loss"]
    assert logs["loss"] == pytest.approx(total, rel=1e-5)
    outputs = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        outputs["fused"], (outputs["text"] + outputs["image"] + outputs["audio"]) / 3, rtol=1e-5
    )


def test_pretrained_fusion_fuses_with_normalised_document_weights():
    model = build_small("pretrained_fusion")
    fusion = model.get_layer("weighted_fusion")
    np.testing.assert_allclose(fusion.normalized_weights(), [1 / 3] * 3, rtol=1e-6)
    assert fusion.learn_weights
    assert model.get_layer("vgg16").trainable is False  # test_config freezes the backbones
    assert mmzoo.build("pretrained_fusion", compile=False).get_layer("vgg16").trainable


def test_pretrained_fusion_imagenet_weights_offline_is_a_clear_error(monkeypatch):
    """Offline and with no cached weight file, Keras' download fails; the build says what to do."""
    from keras.src.utils import file_utils

    def offline(fname, origin, **kwargs):  # what keras.utils.get_file raises without a network
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    expected = "ImageNet weights of VGG16.*put the file vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 into .*models"
    with pytest.raises(RuntimeError, match=expected):
        mmzoo.build("pretrained_fusion", weights="imagenet", input_shape=(32, 32, 3), audio_shape=(32, 32, 1))


def test_image_text_classifier_accepts_small_images_and_pools_text():
    model = mmzoo.build("image_text_classifier", input_shape=(16, 16, 3), max_length=7, num_classes=3)
    x, _ = mmzoo.dummy_batch(model, batch_size=2)
    assert x["image"].shape == (2, 16, 16, 3) and x["text_input"].shape == (2, 7)
    assert model.predict(x, verbose=0).shape == (2, 3)


def test_cifar_multimodal_missing_modalities_takes_presence_flags(tmp_path):
    """With ``missing_modalities=True`` an absent modality (flag 0) contributes nothing (issue 13)."""
    assert not any(key.endswith("_present") for key in mmzoo.describe("cifar_multimodal").inputs)
    model = build_small("cifar_multimodal", missing_modalities=True)
    for key in ("image_present", "text_present", "audio_present"):
        assert tuple(model.input[key].shape) == (None,) and model.input[key].dtype == "float32"
    x, y = mmzoo.dummy_batch(model, batch_size=4, seed=1)
    x.update(image_present=np.ones(4, "float32"), text_present=np.zeros(4, "float32"),
             audio_present=np.zeros(4, "float32"))
    expected = np.asarray(model(x))
    rng = np.random.default_rng(0)
    for _ in range(2):  # whatever the absent text and audio hold
        other = {**x, "text": rng.normal(size=x["text"].shape).astype("float32"),
                 "audio": rng.normal(scale=10.0, size=x["audio"].shape).astype("float32")}
        np.testing.assert_allclose(model(other), expected, atol=1e-6)
    present = {**x, "text_present": np.ones(4, "float32")}
    assert not np.allclose(model(present), expected, atol=1e-6)  # a present text is read
    # All present: the same model as without the option, weight for weight.
    plain = build_small("cifar_multimodal")
    plain.set_weights(model.get_weights())
    ones = {key: np.ones(4, "float32") for key in ("image_present", "text_present", "audio_present")}
    plain_x = {key: x[key] for key in ("image", "text", "audio")}
    np.testing.assert_allclose(model({**x, **ones}), plain(plain_x), atol=1e-6)
    assert np.isfinite(model.train_on_batch(x, y)).all()
    model.save(tmp_path / "cifar.keras")
    loaded = keras.saving.load_model(tmp_path / "cifar.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="missing_modalities="):
        build_small("cifar_multimodal", missing_modalities=1)
