"""Document 004 §4.2 and §5: multi-task networks, emotion and face recognition, cross-modal retrieval."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from helpers import as_dict, build_small, check_forward
from mmzoo.metrics import cosine_similarity, recall_at_k
from mmzoo.models.multitask import MultiTaskNetwork
from mmzoo.models.recognition import EmotionRecognition, FaceRecognition
from mmzoo.models.retrieval import CrossModalRetrieval, info_nce_loss
from mmzoo.layers import LogitScale

MULTITASK = ("multitask_shared", "multitask_separate", "multitask_hybrid")
MODELS = MULTITASK + ("emotion", "face_recognition", "cross_modal_retrieval")


# --------------------------------------------------------------------------- multi-task (§4.2)


@pytest.mark.parametrize("name", MULTITASK)
def test_multitask_heads_and_per_output_losses(name):
    card = mmzoo.describe(name)
    assert card.inputs == {"features": ((128,), "float32")}
    assert card.outputs == {"task1": ((1,), "float32"), "task2": ((2,), "float32")}
    model = build_small(name)
    assert model.loss == {"task1": "binary_crossentropy", "task2": "sparse_categorical_crossentropy"}
    x, y = mmzoo.dummy_batch(model, batch_size=8)
    assert y["task1"].shape == (8, 1) and y["task2"].shape == (8,)
    outputs = model.predict(x, verbose=0)
    assert np.all((outputs["task1"] >= 0) & (outputs["task1"] <= 1))
    np.testing.assert_allclose(outputs["task2"].sum(axis=1), 1.0, rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert {"task1_loss", "task2_loss", "task1_accuracy", "task2_accuracy"} <= set(logs)
    assert logs["loss"] == pytest.approx(logs["task1_loss"] + logs["task2_loss"], rel=1e-5)


def _gradient_norms(model, task):
    """The gradient norm of one task's loss on every trainable weight of the model, by weight path."""
    x, y = mmzoo.dummy_batch(model, batch_size=16, seed=3)
    loss_fn = {
        "task1": keras.losses.BinaryCrossentropy(),
        "task2": keras.losses.SparseCategoricalCrossentropy(),
    }[task]
    weights = model.trainable_weights
    with tf.GradientTape() as tape:
        loss = loss_fn(y[task], model(x)[task])
    gradients = tape.gradient(loss, weights)
    return {
        weight.path: 0.0 if gradient is None else float(tf.norm(gradient))
        for weight, gradient in zip(weights, gradients)
    }


def _weights_by_task(name):
    """``(weights both tasks train, weights only task1 trains, weights only task2 trains)``, as path sets."""
    model = build_small(name)
    task1, task2 = _gradient_norms(model, "task1"), _gradient_norms(model, "task2")
    both = {path for path in task1 if task1[path] > 0 and task2[path] > 0}
    only1 = {path for path in task1 if task1[path] > 0 and task2[path] == 0}
    only2 = {path for path in task1 if task2[path] > 0 and task1[path] == 0}
    assert both | only1 | only2 == set(task1), "every weight gets a gradient from some task"
    return both, only1, only2


def _layers(paths):
    return {path.split("/")[0] for path in paths}


def test_separate_network_shares_no_weight_between_tasks():
    both, only1, only2 = _weights_by_task("multitask_separate")
    assert both == set()
    assert _layers(only1) == {"task1_extractor", "task1"}
    assert _layers(only2) == {"task2_extractor", "task2"}


def test_shared_network_is_trained_by_both_tasks():
    both, only1, only2 = _weights_by_task("multitask_shared")
    assert _layers(both) == {"shared_network"}
    assert _layers(only1) == {"task1"} and _layers(only2) == {"task2"}


def test_hybrid_network_has_a_shared_extractor_and_one_of_its_own():
    """Document 004 §4.2's hybrid: the shared extractor serves both tasks, task2 also has its own."""
    both, only1, only2 = _weights_by_task("multitask_hybrid")
    assert _layers(both) == {"shared_network"}
    assert _layers(only1) == {"task1"}
    assert _layers(only2) == {"task2_extractor", "task2"}
    assert any("hybrid" in c and "nothing was shared" in c for c in mmzoo.describe("multitask_hybrid").corrections)


def test_multitask_builders_fix_sharing_and_check_arguments():
    assert mmzoo.build("multitask_separate", compile=False).get_config()["sharing"] == "separate"
    with pytest.raises(ValueError, match="`multitask_shared` fixes `sharing` to 'shared'.*Received: sharing='separate'"):
        mmzoo.build("multitask_shared", sharing="separate")
    with pytest.raises(ValueError, match="`sharing` must be one of 'shared', 'separate', 'hybrid'. Received: sharing='both'"):
        MultiTaskNetwork(sharing="both")
    with pytest.raises(ValueError, match="`units` must be a positive integer. Received: units=0"):
        mmzoo.build("multitask_hybrid", units=0)
    with pytest.raises(ValueError, match="task2_classes"):
        mmzoo.build("multitask_hybrid", task2_classes=1.5)


# --------------------------------------------------------------------------- emotion (§5.1)


def test_emotion_document_defaults():
    card = mmzoo.describe("emotion")
    assert card.inputs == {
        "text": ((10,), "int32"),
        "audio": ((128,), "float32"),
        "image": ((48, 48, 1), "float32"),
    }
    assert card.outputs == {"output": ((7,), "float32")}
    for key in ("sequence_length", "vocabulary_size", "embedding_size", "mfcc_features_size", "num_emotions"):
        assert key in card.defaults
    assert card.defaults["num_emotions"] == 7 and card.defaults["vocabulary_size"] == 10000


def test_emotion_pools_every_branch_to_a_vector():
    model = build_small("emotion", mfcc_frames=5)
    config = model.get_config()
    merged = model.get_layer("merged_embedding").output
    assert tuple(merged.shape) == (None, config["embedding_size"] + config["audio_units"] + config["conv_filters"][-1])
    assert tuple(model.input["audio"].shape) == (None, 5, config["mfcc_features_size"])
    check_forward(model)


def test_emotion_ignores_text_padding():
    model = build_small("emotion")
    x, _ = mmzoo.dummy_batch(model, batch_size=2, seed=4)
    length = x["text"].shape[1]
    padded = x["text"].copy()
    padded[:, length // 2:] = 0
    repeated = np.concatenate([padded[:, : length // 2]] * 2, axis=1)  # same tokens twice: same mean
    out_padded = model({**x, "text": padded})
    out_repeated = model({**x, "text": repeated})
    np.testing.assert_allclose(out_padded, out_repeated, atol=1e-6)


def _emotion_data(n, modality, seed, config):
    """Labels in {0, 1, 2} carried by one modality only; the others are label-free noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    length, vocabulary = config["sequence_length"], config["vocabulary_size"]
    text = rng.integers(4, vocabulary, size=(n, length))
    text[rng.random((n, length)) < 0.3] = 0
    audio = rng.normal(size=(n, config["mfcc_features_size"]))
    side = config["image_height"]
    image = rng.random((n, side, side, 1)) * 0.5
    if modality == "text":  # a label token (1, 2, 3) at a random position
        text[np.arange(n), rng.integers(0, length, size=n)] = labels + 1
    elif modality == "audio":  # a per-class shift of the MFCC vector
        audio += 1.5 * np.random.default_rng(99).normal(size=(3, audio.shape[1]))[labels]
    else:  # horizontal stripes, vertical stripes or a checkerboard, random phase
        rows, cols = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        phase = rng.integers(0, 2, size=n)[:, None, None]
        patterns = np.stack([(rows + phase) % 2, (cols + phase) % 2, (rows + cols + phase) % 2], axis=1)
        image[..., 0] += 0.5 * patterns[np.arange(n), labels]
    x = {"text": text.astype("int32"), "audio": audio.astype("float32"), "image": image.astype("float32")}
    return x, labels.astype("int32")


@pytest.mark.parametrize("modality", ["text", "audio", "image"])
def test_emotion_learns_from_each_modality_alone(modality):
    """Every branch reaches the classifier: held-out accuracy well above chance (1/3) from each one alone."""
    model = build_small("emotion", num_emotions=3)
    model.optimizer.learning_rate.assign(0.01)
    config = model.get_config()
    x, y = _emotion_data(600, modality, seed=1, config=config)
    x_test, y_test = _emotion_data(200, modality, seed=2, config=config)
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    assert accuracy > 0.8, f"{modality}: held-out accuracy {accuracy:.2f}"


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"image_height": 6}, "image_height"),  # two conv blocks need at least 8 pixels
        ({"conv_filters": ()}, "conv_filters"),
        ({"mfcc_frames": 0}, "mfcc_frames"),
        ({"num_emotions": 0}, "num_emotions"),
        ({"vocabulary_size": 1}, "vocabulary_size"),
        ({"sequence_length": "10"}, "sequence_length"),
    ],
)
def test_emotion_refuses_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}=") as error:
        build_small("emotion", **kwargs)
    assert argument in str(error.value)


# --------------------------------------------------------------------------- face recognition (§5.2)


def test_face_outputs_targets_and_compile():
    card = mmzoo.describe("face_recognition")
    assert card.inputs["video"] == ((16, 64, 64, 3), "float32")
    assert card.outputs == {"face": ((10,), "float32"), "embedding": ((128,), "float32")}
    model = build_small("face_recognition")
    assert model.targets == {"face": "multiclass", "embedding": None}
    assert model.loss == {"face": "sparse_categorical_crossentropy"}
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    assert sorted(y) == ["face"]
    outputs = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(outputs["embedding"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(outputs["face"].sum(axis=1), 1.0, rtol=1e-5)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert sorted(logs) == ["face_accuracy", "loss"] and np.isfinite(logs["loss"])


def test_face_embedding_is_the_normalised_identity_vector():
    model = build_small("face_recognition")
    x, _ = mmzoo.dummy_batch(model, batch_size=3, seed=5)
    identity = keras.Model(model.input, model.get_layer("identity").output)(x)
    identity = np.asarray(identity)
    expected = identity / np.linalg.norm(identity, axis=1, keepdims=True)
    np.testing.assert_allclose(model(x)["embedding"], expected, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_face_video_uses_one_cnn_for_every_frame(pooling):
    model = build_small("face_recognition", temporal_pooling=pooling)
    conv_filters = model.get_config()["conv_filters"]
    per_frame = model.get_layer("per_frame_cnn")
    assert isinstance(per_frame, keras.layers.TimeDistributed)
    # One CNN's weights, not one per frame: a kernel and a bias per convolution.
    assert len(per_frame.weights) == 2 * len(conv_filters)
    x, _ = mmzoo.dummy_batch(model, batch_size=2, seed=6)
    frames = np.asarray(per_frame(x["video"]))
    for index in range(x["video"].shape[1]):
        np.testing.assert_allclose(frames[:, index], per_frame.layer(x["video"][:, index]), atol=1e-5)
    # Temporal pooling is over frames: reversing the clip does not change the prediction.
    reversed_clip = {**x, "video": x["video"][:, ::-1]}
    np.testing.assert_allclose(model(x)["face"], model(reversed_clip)["face"], atol=1e-5)


def _face_data(n, seed, config, identities=4):
    """Each identity has its own face colour, voice and video; frames jitter in brightness."""
    world = np.random.default_rng(0)
    colours = world.random((identities, 3))
    voices = world.normal(size=(identities, config["mfcc_features_size"]))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, identities, size=n)
    side, frames = config["image_height"], config["frame_count"]
    image = colours[labels][:, None, None, :] + 0.3 * rng.normal(size=(n, side, side, 3))
    video = (
        colours[labels][:, None, None, None, :] * rng.uniform(0.7, 1.3, size=(n, frames, 1, 1, 1))
        + 0.3 * rng.normal(size=(n, frames, side, side, 3))
    )
    audio = voices[labels] + 1.0 * rng.normal(size=(n, config["mfcc_features_size"]))
    x = {"image": image.astype("float32"), "audio": audio.astype("float32"), "video": video.astype("float32")}
    return x, labels.astype("int32")


def test_face_identifies_and_its_embedding_verifies():
    model = build_small("face_recognition")
    model.optimizer.learning_rate.assign(0.01)
    config = model.get_config()
    x, y = _face_data(400, seed=1, config=config)
    x_test, y_test = _face_data(100, seed=2, config=config)
    model.fit(x, {"face": y}, batch_size=32, epochs=5, verbose=0)
    outputs = model.predict(x_test, verbose=0)
    assert np.mean(outputs["face"].argmax(axis=1) == y_test) > 0.8  # chance 0.25
    # Verification: the nearest other embedding belongs to the same person.
    similarity = outputs["embedding"] @ outputs["embedding"].T
    np.fill_diagonal(similarity, -np.inf)
    assert np.mean(y_test[similarity.argmax(axis=1)] == y_test) > 0.8


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"frame_count": 0}, "frame_count"),
        ({"temporal_pooling": "sum"}, "temporal_pooling"),
        ({"embedding_dim": -1}, "embedding_dim"),
        ({"image_width": 2, "conv_filters": (4,)}, "image_width"),
        ({"num_faces": None}, "num_faces"),
    ],
)
def test_face_refuses_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        FaceRecognition(**{**mmzoo.registry.get_entry("face_recognition").test_config, **kwargs})


# --------------------------------------------------------------------------- recall@K


def test_recall_of_an_identity_similarity_matrix_is_one():
    recall = recall_at_k(np.eye(20))
    assert set(recall) == {f"{d}@{k}" for d in ("a_to_b", "b_to_a") for k in (1, 5, 10)}
    assert all(value == 1.0 for value in recall.values())


def test_recall_counts_ranks_and_ties():
    assert set(recall_at_k(-np.eye(20), k=(1, 10)).values()) == {0.0}  # the match is always last
    assert set(recall_at_k(np.ones((20, 20)), k=1).values()) == {0.0}  # ties count against the match
    # Row i ranks its match i-th (i candidates before it): recall@K = K / n in that direction.
    n = 20
    similarity = np.full((n, n), 0.0)
    for i in range(n):
        similarity[i, :i] = 2.0
        similarity[i, i] = 1.0
    recall = recall_at_k(similarity, k=(1, 5, 10), names=("text", "image"))
    assert [recall[f"text_to_image@{k}"] for k in (1, 5, 10)] == [1 / n, 5 / n, 10 / n]


def test_recall_from_embeddings_equals_recall_from_their_similarity():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    b[:10] = a[:10] * 3.0  # ten exact matches, whatever their norm
    from_embeddings = recall_at_k(a, keras.ops.convert_to_tensor(b), names=("text", "image"))
    assert from_embeddings == recall_at_k(cosine_similarity(a, b), names=("text", "image"))
    assert from_embeddings["text_to_image@1"] >= 10 / 30


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((np.ones((3, 4)),), {}, r"Without `b`, `a` must be a square similarity matrix. Received: a of shape \(3, 4\)"),
        ((np.ones((3, 4)), np.ones((2, 4))), {}, r"`a` and `b` must hold the same number of paired items"),
        ((np.eye(3),), {"k": 0}, r"`k` must be a positive integer or a sequence of them. Received: k=0"),
        ((np.eye(3),), {"names": ("text",)}, r"`names` must be two strings. Received: names=\('text',\)"),
    ],
)
def test_recall_refuses_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        recall_at_k(*args, **kwargs)


# --------------------------------------------------------------------------- cross-modal retrieval (§5.3)


def test_retrieval_outputs_unit_embeddings_and_has_no_targets():
    card = mmzoo.describe("cross_modal_retrieval")
    assert card.outputs == {f"{m}_embedding": ((128,), "float32") for m in ("image", "text", "audio")}
    model = build_small("cross_modal_retrieval")
    arguments = model.default_compile_arguments()
    assert list(arguments) == ["optimizer"] and type(arguments["optimizer"]) is mmzoo.optimizers.Adam
    x, y = mmzoo.dummy_batch(model, batch_size=6)
    assert y is None
    for value in model.predict(x, verbose=0).values():
        np.testing.assert_allclose(np.linalg.norm(value, axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(model.train_on_batch(x))
    assert "logit_scale/log_scale" in [w.path for w in model.trainable_weights]


def _numpy_info_nce(a, b, scale):
    logits = scale * a @ b.T

    def cross_entropy(logits):
        logits = logits - logits.max(axis=1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -np.mean(np.diagonal(log_softmax))

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def test_retrieval_loss_is_the_symmetric_info_nce_over_modality_pairs():
    model = build_small("cross_modal_retrieval")
    x, _ = mmzoo.dummy_batch(model, batch_size=8, seed=7)
    embeddings = {key: np.asarray(value, dtype=np.float64) for key, value in model(x).items()}
    scale = float(model.logit_scale.scale())
    assert scale == pytest.approx(1 / 0.07, rel=1e-5)
    pairs = [("image", "text"), ("image", "audio"), ("text", "audio")]
    expected = np.mean([_numpy_info_nce(embeddings[f"{a}_embedding"], embeddings[f"{b}_embedding"], scale)
                        for a, b in pairs])
    assert float(model.compute_loss(x=x, y_pred=model(x))) == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, batch_size=8, verbose=0) == pytest.approx(expected, rel=1e-5)
    # A perfect alignment with a large scale has (almost) no loss; a shuffled one a large loss.
    eye = np.eye(8, dtype="float32")
    assert float(info_nce_loss(eye, eye, LogitScale(initial_scale=100.0))) < 1e-6
    assert float(info_nce_loss(eye, np.roll(eye, 1, axis=0), LogitScale(initial_scale=100.0))) > 50


def test_logit_scale_is_learned_clamped_at_100_and_saved(tmp_path):
    model = build_small("cross_modal_retrieval")
    x, _ = mmzoo.dummy_batch(model, batch_size=8, seed=8)
    log_scale = model.logit_scale.log_scale

    def gradient():
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, training=True)
        return float(tape.gradient(loss, log_scale))

    assert gradient() != 0.0
    log_scale.assign(math.log(1000.0))
    assert float(model.logit_scale.scale()) == pytest.approx(100.0)
    assert gradient() == 0.0  # past the clamp the scale no longer moves
    log_scale.assign(math.log(42.0))
    before = float(model.compute_loss(x=x))
    model.save(tmp_path / "retrieval.keras")
    loaded = keras.saving.load_model(tmp_path / "retrieval.keras", safe_mode=True)
    assert float(loaded.logit_scale.scale()) == pytest.approx(42.0, rel=1e-5)
    assert float(loaded.compute_loss(x=x)) == pytest.approx(before, rel=1e-5)
    with pytest.raises(ValueError, match="max_scale"):
        LogitScale(max_scale=0)


def test_logit_scale_layer_survives_a_keras_file_in_safe_mode(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")  # the layer computes in float32 whatever the policy
    layer = LogitScale(initial_scale=20.0, max_scale=50.0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    layer.log_scale.assign(math.log(30.0))
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    assert model(x).dtype == "float32"
    np.testing.assert_allclose(model(x), 30.0 * x, rtol=1e-5)
    model.save(tmp_path / "layer.keras")
    loaded = keras.saving.load_model(tmp_path / "layer.keras", safe_mode=True)
    assert type(loaded.layers[-1]) is LogitScale
    assert loaded.layers[-1].get_config() == layer.get_config()
    np.testing.assert_allclose(loaded(x), 30.0 * x, rtol=1e-5)


BITS = 8
RETRIEVAL_CONFIG = dict(
    image_height=10, image_width=10, image_channels=3, sequence_length=BITS, vocabulary_size=2 * BITS + 1,
    embedding_size=16, mfcc_features_size=12, mfcc_frames=5, conv_filters=(8, 16), audio_units=16,
    embedding_dim=16,
)


def _paired_triples(n, seed):
    """n (image, text, audio) triples sharing a random 8-bit latent per triple, plus noise in each.

    Text: one token per bit (token 1 + 2k + bit_k), shuffled, 15% replaced by random
    tokens. Image: four 5x5 quadrants coloured by a fixed random projection of the bits,
    plus Gaussian noise. Audio: 5 MFCC frames, a fixed random projection of the bits
    plus noise (sd 0.5).
    """
    world = np.random.default_rng(0)
    w_image, w_audio = world.normal(size=(BITS, 12)), world.normal(size=(BITS, 12))
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, BITS))
    signs = 2.0 * bits - 1
    tokens = 1 + 2 * np.arange(BITS) + bits
    tokens = np.take_along_axis(tokens, rng.permuted(np.tile(np.arange(BITS), (n, 1)), axis=1), axis=1)
    tokens = np.where(rng.random(tokens.shape) < 0.15, rng.integers(1, 2 * BITS + 1, size=tokens.shape), tokens)
    colours = (1 / (1 + np.exp(-signs @ w_image / np.sqrt(BITS)))).reshape(n, 2, 2, 3)
    image = np.repeat(np.repeat(colours, 5, axis=1), 5, axis=2) + 0.1 * rng.normal(size=(n, 10, 10, 3))
    audio = (signs @ w_audio / np.sqrt(BITS))[:, None, :] + 0.5 * rng.normal(size=(n, 5, 12))
    return {"image": image.astype("float32"), "text": tokens.astype("int32"), "audio": audio.astype("float32")}


def test_retrieval_learns_to_match_pairs_across_modalities():
    """Trained with fit(x) on 1024 triples, text->image recall@1 on 100 new pairs is >= 0.2 (chance 0.01).

    Measured: 0.43-0.47 over four seeds after 8 epochs; 0.0-0.02 before training.
    """
    model = mmzoo.build("cross_modal_retrieval", **RETRIEVAL_CONFIG)
    model.optimizer.learning_rate.assign(3e-3)
    train, test = _paired_triples(1024, seed=1), _paired_triples(100, seed=2)

    def recall():
        embeddings = model.predict(test, verbose=0)
        return recall_at_k(embeddings["text_embedding"], embeddings["image_embedding"], names=("text", "image"))

    assert recall()["text_to_image@1"] <= 0.1
    history = model.fit(train, batch_size=64, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    after = recall()
    assert after["text_to_image@1"] >= 0.2, after
    assert after["image_to_text@1"] >= 0.2, after
    assert after["text_to_image@10"] >= 0.6, after  # chance 0.1


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"initial_temperature": 0}, "initial_temperature"),
        ({"initial_temperature": 0.001}, "initial_temperature"),  # scale 1000 > max_logit_scale 100
        ({"max_logit_scale": -1.0}, "max_logit_scale"),
        ({"mfcc_features_size": 0}, "mfcc_features_size"),
    ],
)
def test_retrieval_refuses_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"{argument}="):
        CrossModalRetrieval(**{**RETRIEVAL_CONFIG, **kwargs})


# --------------------------------------------------------------------------- all six


@pytest.mark.parametrize("name", MODELS)
def test_outputs_stay_float32_under_mixed_precision(name):
    keras.config.set_dtype_policy("mixed_float16")
    model = build_small(name)
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    for value in keras.tree.flatten(model(x)):
        assert value.dtype == "float32"
    assert np.isfinite(model.train_on_batch(x, y)).all()


def test_classes_are_the_registered_builders_models():
    assert type(mmzoo.build("emotion", compile=False)) is EmotionRecognition
    assert type(mmzoo.build("face_recognition", compile=False)) is FaceRecognition
    assert type(mmzoo.build("cross_modal_retrieval", compile=False)) is CrossModalRetrieval
    assert all(type(mmzoo.build(name, compile=False)) is MultiTaskNetwork for name in MULTITASK)


# --------------------------------------------------------------------------- masks of padded frames (issue 13)


def _padded(x, key, mask, rng):
    """``x`` with the frames of ``x[key]`` that ``mask`` marks as padding (0) replaced by random values."""
    values = np.array(x[key], copy=True)
    padding = mask == 0
    values[padding] = rng.normal(scale=5.0, size=values[padding].shape).astype(values.dtype)
    return {**x, key: values}


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_face_video_mask_excludes_padded_frames_from_temporal_pooling(pooling):
    model = build_small("face_recognition", temporal_pooling=pooling, video_mask=True)
    frame_count = model.get_config()["frame_count"]
    assert tuple(model.input["video_mask"].shape) == (None, frame_count)
    x, _ = mmzoo.dummy_batch(model, batch_size=3, seed=7)
    mask = np.ones((3, frame_count), "float32")
    mask[0, 2:] = 0  # two real frames, then padding
    mask[1, 1:] = 0  # one real frame
    x["video_mask"] = mask
    zeros = {**x, "video": np.where(mask[:, :, None, None, None] > 0, x["video"], 0.0).astype("float32")}
    expected = model(zeros)
    rng = np.random.default_rng(0)
    for _ in range(2):  # the same prediction whatever the padded frames hold
        other = model(_padded(zeros, "video", mask, rng))
        for key in ("face", "embedding"):
            np.testing.assert_allclose(other[key], expected[key], atol=1e-5, err_msg=key)
    # The mask is read: counting the padded frames in changes the prediction of the padded clips.
    unmasked = model({**_padded(zeros, "video", mask, rng), "video_mask": np.ones_like(mask)})
    assert not np.allclose(unmasked["face"][:2], expected["face"][:2], atol=1e-6)
    np.testing.assert_allclose(unmasked["face"][2], expected["face"][2], atol=1e-6)  # no padding: same


def test_face_video_mask_is_off_by_default_and_all_ones_changes_nothing(tmp_path):
    assert "video_mask" not in mmzoo.describe("face_recognition").inputs
    assert mmzoo.describe("face_recognition").defaults["video_mask"] is False
    plain = build_small("face_recognition")
    masked = build_small("face_recognition", video_mask=True)
    masked.set_weights(plain.get_weights())  # the mask input adds no weight
    x, _ = mmzoo.dummy_batch(plain, batch_size=2, seed=8)
    ones = np.ones((2, plain.get_config()["frame_count"]), "float32")
    np.testing.assert_allclose(masked({**x, "video_mask": ones})["face"], plain(x)["face"], atol=1e-6)
    # The mask survives a `.keras` file in safe mode and a config round trip.
    mask = ones.copy()
    mask[:, -1] = 0
    masked.save(tmp_path / "face.keras")
    loaded = keras.saving.load_model(tmp_path / "face.keras", safe_mode=True)
    np.testing.assert_allclose(
        loaded({**x, "video_mask": mask})["face"], masked({**x, "video_mask": mask})["face"], atol=1e-6
    )
    assert FaceRecognition.from_config(masked.get_config()).get_config() == masked.get_config()
    with pytest.raises(ValueError, match="video_mask="):
        build_small("face_recognition", video_mask="yes")


@pytest.mark.parametrize("name", ["emotion", "face_recognition", "cross_modal_retrieval"])
def test_mfcc_audio_mask_excludes_padded_frames_from_the_mean(name):
    model = build_small(name, mfcc_frames=4, audio_mask=True)
    assert tuple(model.input["audio_mask"].shape) == (None, 4)
    x, _ = mmzoo.dummy_batch(model, batch_size=3, seed=9)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], "float32")
    x["audio_mask"] = mask
    x["audio"] = np.where(mask[:, :, None] > 0, x["audio"], 0.0).astype("float32")
    expected = as_dict(model(x))
    rng = np.random.default_rng(1)
    other = as_dict(model(_padded(x, "audio", mask, rng)))
    for key in expected:
        np.testing.assert_allclose(other[key], expected[key], atol=1e-5, err_msg=key)
    # The mean is over the real frames: one real frame pools like that frame repeated.
    repeated = {**x, "audio": np.repeat(x["audio"][:, :1], 4, axis=1), "audio_mask": np.ones_like(mask)}
    first = {**x, "audio_mask": np.array([[1, 0, 0, 0]] * 3, "float32")}
    for key, value in as_dict(model(repeated)).items():
        np.testing.assert_allclose(as_dict(model(first))[key], value, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("name", ["emotion", "face_recognition", "cross_modal_retrieval"])
def test_audio_mask_needs_mfcc_frames_and_is_off_by_default(name):
    assert "audio_mask" not in mmzoo.describe(name).inputs
    with pytest.raises(ValueError, match="audio_mask=True, mfcc_frames=None"):
        build_small(name, mfcc_frames=None, audio_mask=True)
