"""fusion_classifier, its encoders and Standardization, beyond the registry-wide checks."""

import keras
import numpy as np
import pytest

import mmzoo
from helpers import build_small
from mmzoo.layers import FUSIONS, RealSteps, Standardization
from mmzoo.layers.encoders import adapt_standardization, standardization_layers

SMALL = {"width": 8, "image_filters": (4, 8), "audio_filters": (4, 8), "num_mel_bins": 16,
         "vocabulary_size": 30, "embedding_size": 4}


# --- Standardization -----------------------------------------------------------------------


def test_standardization_matches_the_formula_and_streams_batches():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 5.0, size=(300, 4)).astype("float32")
    whole, streamed = Standardization(), Standardization()
    whole.adapt(data)
    streamed.adapt([data[:7], data[7:150], data[150:]])
    expected = (data - data.mean(0)) / np.sqrt(data.var(0) + 1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(whole(data)), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(whole.get_weights()[0], streamed.get_weights()[0], rtol=1e-5)
    np.testing.assert_allclose(whole.get_weights()[1], streamed.get_weights()[1], rtol=1e-5)
    assert whole.is_adapted and streamed.is_adapted


def test_standardization_reads_its_weights_at_every_call():
    """set_weights (a strategy copy, a preset) changes the output: no statistics frozen into constants."""
    layer = Standardization()
    layer.build((None, 2))
    x = np.array([[2.0, 4.0]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x, rtol=1e-5)  # identity before adapt
    assert not layer.is_adapted
    layer.set_weights([np.array([1.0, 2.0], "float32"), np.array([4.0, 4.0], "float32"), np.array(1.0, "float32")])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), [[0.5, 1.0]], rtol=1e-4)
    assert layer.is_adapted


def test_standardization_refuses_empty_or_misshaped_data():
    layer = Standardization(name="pixels")
    with pytest.raises(ValueError, match="pixels: adapt\\(\\) received no values"):
        layer.adapt([])
    layer.adapt(np.ones((3, 2)))
    with pytest.raises(ValueError, match="standardises 2 features; adapt\\(\\) received data with 5"):
        layer.adapt(np.ones((3, 5)))


def test_real_steps_marks_padding_frames():
    clip = np.zeros((2, 4, 3, 3, 1), "float32")
    clip[0, :2] = np.random.default_rng(0).random((2, 3, 3, 1))
    mask = keras.ops.convert_to_numpy(RealSteps()(clip))
    assert mask.tolist() == [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


# --- the model -----------------------------------------------------------------------------


def test_every_modality_gets_its_encoder():
    inputs = {"image": (16, 16, 3), "image_side": (12, 12, 1), "audio": (4000,), "text": (6,),
              "video": (3, 12, 12, 1), "features": (5,)}
    model = mmzoo.build("fusion_classifier", inputs=inputs, num_classes=4, **SMALL)
    assert sorted(model.encoders) == sorted(inputs)
    assert all(isinstance(encoder, keras.Model) for encoder in model.encoders.values())
    assert {key: tuple(t.shape[1:]) for key, t in model.input.items()} == inputs
    assert model.input["text"].dtype == "int32"
    x, y = mmzoo.dummy_batch(model, batch_size=3)
    assert model.predict(x, verbose=0).shape == (3, 4)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_by_name(fusion):
    model = build_small("fusion_classifier", fusion=fusion)
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    assert model.predict(x, verbose=0).shape == (4, 3)
    assert model.get_config()["fusion"] == fusion


@pytest.mark.parametrize("text_encoder", ["bag", "gru", "transformer"])
def test_every_text_encoder_trains(text_encoder):
    model = build_small("fusion_classifier", text_encoder=text_encoder)
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])
    assert model.get_config()["text_encoder"] == text_encoder


def test_modality_dropout_acts_while_training_only():
    model = build_small("fusion_classifier", modality_dropout=0.5)
    assert model.get_layer("modality_dropout").rate == 0.5
    x, _ = mmzoo.dummy_batch(model, batch_size=16)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained = [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2)]
    assert not np.allclose(trained[0], trained[1])  # other modalities dropped in each call
    off = build_small("fusion_classifier", modality_dropout=0.0)
    assert "modality_dropout" not in [layer.name for layer in off.layers]


def test_one_modality_needs_no_fusion():
    model = mmzoo.build("fusion_classifier", inputs={"audio": (4000,)}, num_classes=1, fusion="gating", **SMALL)
    assert "fusion" not in [layer.name for layer in model.layers]
    assert model.output.shape[-1] == 1 and model.loss == "binary_crossentropy"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inputs": {"picture": (8, 8, 1)}}, "Cannot tell the modality of input 'picture'"),
        ({"inputs": {"image": (8, 8)}}, "Input 'image' is image: its shape is \\(height, width, channels\\)"),
        ({"inputs": {"audio": (16000, 1)}}, "Input 'audio' is audio: its shape is \\(samples,\\): a raw waveform"),
        ({"inputs": {}}, "`inputs` must be a non-empty dict"),
        ({"fusion": "bilinear"}, "fusion.*bilinear"),
        ({"modality_dropout": 1.0}, "`modality_dropout` must be a number in \\[0, 1\\). Received: modality_dropout=1.0"),
        ({"text_encoder": "lstm"}, "`text_encoder` must be one of 'bag', 'gru', 'transformer'"),
        ({"image_weights": "imagenet"}, "`image_weights` applies to keras.applications encoders"),
        ({"inputs": {"image": (3, 3, 1)}, "image_filters": (4, 8, 16)}, "too small for 3 residual blocks"),
        ({"inputs": {"audio": (100,)}}, "shorter than half an FFT window"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mmzoo.build("fusion_classifier", **kwargs)


def test_train_adapts_the_input_statistics_once():
    model = build_small("fusion_classifier")
    assert [layer.is_adapted for layer in standardization_layers(model)] == [False, False]
    rng = np.random.default_rng(0)
    x, y = mmzoo.dummy_batch(model, batch_size=64, seed=1)
    x["image"] = (0.2 + 0.1 * rng.random(x["image"].shape)).astype("float32")
    mmzoo.train(model, (x, y), epochs=1, verbose=0)
    image_stats = model.encoders["image"].get_layer("standardize")
    assert image_stats.is_adapted
    np.testing.assert_allclose(image_stats.mean.numpy(), [x["image"].mean()], rtol=1e-4)
    np.testing.assert_allclose(image_stats.variance.numpy(), [x["image"].var()], rtol=1e-3)
    before = [w.numpy().copy() for w in (image_stats.mean, image_stats.variance)]
    x["image"] = x["image"] * 3  # a second run (fine-tuning) keeps the statistics it has
    mmzoo.train(model, (x, y), epochs=1, verbose=0)
    np.testing.assert_array_equal(image_stats.mean.numpy(), before[0])


def test_adapted_statistics_travel_with_the_keras_file(tmp_path):
    model = build_small("fusion_classifier")
    x, _ = mmzoo.dummy_batch(model, batch_size=16)
    assert adapt_standardization(model, [x]) == ["standardize", "standardize"]
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert all(layer.is_adapted for layer in standardization_layers(loaded))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_padding_under_a_mask_does_not_change_the_prediction():
    """Audio samples and video frames marked as padding have no effect, whatever they hold."""
    inputs = {"audio": (4000,), "audio_mask": (4000,), "video": (3, 12, 12, 1), "video_mask": (3,),
              "image": (12, 12, 1)}
    model = mmzoo.build("fusion_classifier", inputs=inputs, num_classes=3, **SMALL)
    x, _ = mmzoo.dummy_batch(model, batch_size=4)
    x["audio_mask"] = (np.arange(4000) < 2500).astype("float32")[None].repeat(4, axis=0)
    x["video_mask"] = np.array([[1, 1, 0]] * 4, "float32")
    adapt_standardization(model, [x])
    expected = model.predict(x, verbose=0)
    noisy = {**x, "audio": x["audio"].copy(), "video": x["video"].copy()}
    noisy["audio"][:, 2500:] = np.random.default_rng(1).normal(0, 3, (4, 1500))
    noisy["video"][:, 2] = 7.0
    np.testing.assert_allclose(model.predict(noisy, verbose=0), expected, atol=1e-6)
    real_change = {**x, "audio": x["audio"].copy()}
    real_change["audio"][:, :100] += 0.5
    assert not np.allclose(model.predict(real_change, verbose=0), expected, atol=1e-6)


def test_a_mask_must_belong_to_an_audio_or_video_input():
    with pytest.raises(ValueError, match="Input 'image_mask' is the mask of 'image': masks are for audio"):
        mmzoo.build("fusion_classifier", inputs={"image": (8, 8, 1), "image_mask": (8,)}, **SMALL)
    with pytest.raises(ValueError, match="Input 'audio_mask' is the mask of 'audio'.*Received: audio_mask=\\(10,\\)"):
        mmzoo.build("fusion_classifier", inputs={"audio": (4000,), "audio_mask": (10,)}, **SMALL)


def write_class_folders(root, classes=("low", "mid", "high"), per_class=8, rate=8000):
    """PNG + WAV + TXT examples whose every modality shows the class (a bar, a tone, a word)."""
    import soundfile
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            image = (rng.random((20, 20, 1)) * 60).astype("uint8")
            image[:, 3 + 6 * label : 6 + 6 * label] = 255
            (folder / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
            t = np.arange(int(rate * rng.uniform(0.3, 0.5))) / rate
            soundfile.write(folder / f"{index}.wav", 0.5 * np.sin(2 * np.pi * 300 * (label + 1) * t), rate)
            (folder / f"{index}.txt").write_text(f"a {name} example number {index}")
    return list(classes)


def test_train_builds_the_model_from_a_folder(tmp_path):
    from mmzoo.data import from_directory

    classes = write_class_folders(tmp_path)
    splits = from_directory(tmp_path, image_size=(16, 16), color_mode="grayscale", sample_rate=8000,
                            audio_length=4000, sequence_length=6, batch_size=8, validation_split=0.25)
    history = mmzoo.train("fusion_classifier", splits, epochs=2, verbose=0, width=8, image_filters=(4, 8),
                          audio_filters=(4, 8), num_mel_bins=16, embedding_size=4)
    model = history.model
    assert model.get_config()["inputs"] == {"audio": (4000,), "audio_mask": (4000,), "image": (16, 16, 1),
                                            "text": (6,)}
    assert model.get_config()["class_names"] == sorted(classes) and model.output.shape[-1] == 3
    assert model.get_config()["vocabulary_size"] == splits.vectorizer.vocabulary_size()
    assert "val_loss" in history.history
    assert all(layer.is_adapted for layer in standardization_layers(model))
