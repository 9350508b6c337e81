"""Document 004 §3-§4.1: vgg16_features, early_fusion, mlp, graph_fusion, dynamic_fusion, their layers."""

import keras
import numpy as np
import pytest

import mmzoo
from helpers import as_dict, build_small
from mmzoo.layers import GraphMessagePassing, ModalityGating


def _vectors(batch, widths, seed=0):
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=(batch, width)).astype("float32") for key, width in widths.items()}


# vgg16_features ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("pooling, width", [("flatten", 2 * 2 * 512), ("avg", 512), ("max", 512)])
def test_vgg16_features_pooling_sets_the_feature_width(pooling, width):
    model = mmzoo.build("vgg16_features", input_shape=(64, 64, 3), pooling=pooling)
    x, y = mmzoo.dummy_batch(model, batch_size=2)
    features = np.asarray(model(x))
    assert features.shape == (2, width) and y.shape == (2, width)
    assert model.targets == "regression"
    assert np.all(features >= 0)  # ReLU feature map of block 5, pooled or flattened


def test_vgg16_features_document_defaults():
    card = mmzoo.describe("vgg16_features")
    assert card.inputs == {"image": ((224, 224, 3), "float32")}
    assert card.outputs == {"output": ((7 * 7 * 512,), "float32")}  # the document's Flatten
    assert card.defaults["weights"] is None


def test_vgg16_features_compiles_with_a_small_learning_rate():
    model = build_small("vgg16_features")
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-4)


def test_vgg16_features_freeze_backbone():
    model = build_small("vgg16_features", freeze_backbone=True)
    assert not model.get_layer("vgg16").trainable
    assert model.trainable_weights == []


def test_vgg16_features_imagenet_offline_error_is_clear(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    offline.__name__ = "VGG16"
    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(RuntimeError, match=r"ImageNet weights of VGG16.*weights=None"):
        mmzoo.build("vgg16_features", input_shape=(32, 32, 3), weights="imagenet")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"pooling": "sum"}, "pooling"),
        ({"input_shape": (16, 16, 3)}, "input_shape"),
        ({"input_shape": (32, 32, 1)}, "input_shape"),
        ({"weights": "places365"}, "weights"),
        ({"freeze_backbone": 1}, "freeze_backbone"),
    ],
)
def test_vgg16_features_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        mmzoo.build("vgg16_features", **kwargs)


# early_fusion --------------------------------------------------------------------------------


def test_early_fusion_document_defaults():
    card = mmzoo.describe("early_fusion")
    assert card.inputs == {
        "visual": ((224, 224, 3), "float32"),
        "text": ((10,), "int32"),
        "audio": ((128,), "float32"),
    }
    assert card.outputs == {"output": ((32 + 128 + 128,), "float32")}
    assert card.defaults["vocab_size"] == 10000 and card.defaults["num_classes"] is None


def test_early_fusion_features_only_are_the_concatenated_branches():
    model = build_small("early_fusion")
    config = model.get_config()
    x, y = mmzoo.dummy_batch(model, batch_size=3)
    features = np.asarray(model(x))
    width = config["filters"] + config["embedding_dim"] + config["audio_units"]
    assert features.shape == (3, width) and y.shape == (3, width)
    assert model.targets == "regression"
    # The audio part of the fused vector is the audio branch alone: other inputs leave it alone.
    other = dict(x, visual=x["visual"] * 0.5)
    changed = np.asarray(model(other))
    audio_part = slice(width - config["audio_units"], width)
    np.testing.assert_allclose(changed[:, audio_part], features[:, audio_part], atol=1e-6)
    assert not np.allclose(changed[:, : config["filters"]], features[:, : config["filters"]])


@pytest.mark.parametrize("num_classes, kind", [(5, "multiclass"), (1, "binary")])
def test_early_fusion_with_a_head(num_classes, kind):
    model = build_small("early_fusion", num_classes=num_classes)
    x, y = mmzoo.dummy_batch(model, batch_size=4)
    probabilities = np.asarray(model(x))
    assert probabilities.shape == (4, num_classes)
    assert model.targets == kind
    if num_classes > 1:
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    fused = model.get_layer("fused_features").output
    assert tuple(fused.shape) == (None, 8 + 8 + 8)
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])


def test_early_fusion_text_is_averaged_over_real_tokens_only():
    model = build_small("early_fusion")  # text_length 6
    x, _ = mmzoo.dummy_batch(model, batch_size=1)
    once = dict(x, text=np.array([[5, 6, 0, 0, 0, 0]], dtype="int32"))
    twice = dict(x, text=np.array([[5, 6, 5, 6, 0, 0]], dtype="int32"))
    # Same mean over the real tokens; an unmasked mean would count the padding embeddings.
    np.testing.assert_allclose(np.asarray(model(once)), np.asarray(model(twice)), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"vocab_size": -3}, "vocab_size"),
        ({"text_length": 2.5}, "text_length"),
        ({"visual_shape": (32, 32)}, "visual_shape"),
        ({"filters": True}, "filters"),
    ],
)
def test_early_fusion_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        mmzoo.build("early_fusion", **kwargs)


# mlp -----------------------------------------------------------------------------------------


def test_mlp_document_architecture():
    model = mmzoo.build("mlp")
    hidden = model.get_layer("hidden")
    assert hidden.units == 128 and hidden.activation.__name__ == "relu"
    assert model.get_layer("output").units == 1 and model.targets == "binary"
    assert model.count_params() == (128 * 128 + 128) + (128 + 1)


@pytest.mark.parametrize("input_shape, expected", [((20,), (20,)), (20, (20,)), ([4, 5], (4, 5))])
def test_mlp_input_shape_is_honoured(input_shape, expected):
    model = mmzoo.build("mlp", input_shape=input_shape)
    assert model.input_shape == (None,) + expected  # keras.Model's property, untouched
    x, y = mmzoo.dummy_batch(model, batch_size=3)
    assert x["features"].shape == (3,) + expected
    assert np.asarray(model(x)).shape == (3, 1)
    assert model.get_config()["input_shape"] == input_shape
    clone = type(model).from_config(model.get_config())
    assert clone.input_shape == model.input_shape


@pytest.mark.parametrize("input_shape", [(0,), (), "128", (4.5,), (True,), None])
def test_mlp_bad_input_shape(input_shape):
    with pytest.raises(ValueError, match="Received: input_shape="):
        mmzoo.build("mlp", input_shape=input_shape)


def test_mlp_unknown_argument_is_refused():
    with pytest.raises(ValueError, match="input_shape"):
        mmzoo.build("mlp", input_shapes=(3,))


# GraphMessagePassing and graph_fusion --------------------------------------------------------


def test_message_passing_mixes_nodes_in_one_round():
    layer = GraphMessagePassing(6)
    nodes = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    before = np.asarray(layer(nodes))
    changed = nodes.copy()
    changed[:, 2] += 1.0  # only node 2's state changes
    after = np.asarray(layer(changed))
    for node in (0, 1):
        assert not np.allclose(after[:, node], before[:, node]), f"node {node} did not hear node 2"
    # Each node keeps its identity: the nodes do not all collapse to one state.
    assert not np.allclose(before[:, 0], before[:, 1])


def test_message_passing_adjacency_is_uniform_and_fixed_by_default():
    layer = GraphMessagePassing(4)
    layer.build((None, 3, 5))
    np.testing.assert_allclose(np.asarray(layer.adjacency()), np.full((3, 3), 1 / 3), atol=1e-6)
    assert all(w is not layer.adjacency_logits for w in layer.trainable_weights)


def test_message_passing_equation():
    layer = GraphMessagePassing(3, activation="linear")
    nodes = np.random.default_rng(1).normal(size=(2, 4, 5)).astype("float32")
    out = np.asarray(layer(nodes))
    w_self, bias = (np.asarray(w) for w in layer.self_dense.weights)
    (w_neighbour,) = (np.asarray(w) for w in layer.neighbour_dense.weights)
    mean = nodes.mean(axis=1, keepdims=True)  # uniform adjacency with self loops
    expected = nodes @ w_self + bias + mean @ w_neighbour
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_message_passing_config_round_trip():
    layer = GraphMessagePassing(7, activation="tanh", learn_adjacency=True, use_bias=False, name="mp")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert restored.get_config() == layer.get_config()
    assert restored.get_config()["activation"] == "tanh"


@pytest.mark.parametrize(
    "kwargs, argument", [({"units": 0}, "units"), ({"units": 4, "learn_adjacency": "yes"}, "learn_adjacency")]
)
def test_message_passing_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        GraphMessagePassing(**kwargs)


def test_message_passing_needs_nodes():
    with pytest.raises(ValueError, match="num_nodes"):
        GraphMessagePassing(4)(keras.ops.ones((2, 5)))


def test_graph_fusion_first_round_mixes_modalities():
    model = build_small("graph_fusion")
    probe = keras.Model(
        model.input,
        {
            "nodes": model.get_layer("message_passing_1").input,  # before message passing
            "round_1": model.get_layer("message_passing_1").output,
        },
    )
    x, _ = mmzoo.dummy_batch(model, batch_size=2)
    before = as_dict(probe(x))
    after = as_dict(probe(dict(x, audio=x["audio"] + 1.0)))  # only the audio embedding changes
    image, text, audio = 0, 1, 2
    np.testing.assert_allclose(after["nodes"][:, image], before["nodes"][:, image])  # not yet mixed
    np.testing.assert_allclose(after["nodes"][:, text], before["nodes"][:, text])
    assert not np.allclose(after["round_1"][:, image], before["round_1"][:, image])
    assert not np.allclose(after["round_1"][:, text], before["round_1"][:, text])


@pytest.mark.parametrize("readout", ["mean", "max", "attention"])
def test_graph_fusion_rounds_and_readouts(readout):
    model = build_small("graph_fusion", num_layers=3, readout=readout, num_classes=4)
    rounds = [layer for layer in model.layers if isinstance(layer, GraphMessagePassing)]
    assert len(rounds) == 3
    x, y = mmzoo.dummy_batch(model, batch_size=3)
    probabilities = np.asarray(model(x))
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)


def test_graph_fusion_learned_adjacency_trains():
    model = build_small("graph_fusion", learn_adjacency=True)
    layer = model.get_layer("message_passing_1")
    assert any(w is layer.adjacency_logits for w in model.trainable_weights)
    x, y = mmzoo.dummy_batch(model, batch_size=16)
    for _ in range(5):
        model.train_on_batch(x, y)
    adjacency = np.asarray(layer.adjacency())
    np.testing.assert_allclose(adjacency.sum(axis=-1), 1.0, atol=1e-5)
    assert not np.allclose(adjacency, 1 / 3, atol=1e-4)


def test_graph_fusion_fixed_adjacency_stays_uniform():
    model = build_small("graph_fusion")
    x, y = mmzoo.dummy_batch(model, batch_size=16)
    for _ in range(3):
        model.train_on_batch(x, y)
    np.testing.assert_allclose(np.asarray(model.get_layer("message_passing_2").adjacency()), 1 / 3, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"num_layers": 1}, "num_layers"),
        ({"readout": "sum"}, "readout"),
        ({"node_units": 0}, "node_units"),
        ({"learn_adjacency": 1}, "learn_adjacency"),
        ({"text_dim": None}, "text_dim"),
    ],
)
def test_graph_fusion_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        mmzoo.build("graph_fusion", **kwargs)


# ModalityGating and dynamic_fusion -----------------------------------------------------------


def test_gating_fuses_by_its_weights():
    gate = ModalityGating(hidden_units=5)
    inputs = [np.random.default_rng(i).normal(size=(4, 3)).astype("float32") for i in range(3)]
    fused, weights = (np.asarray(t) for t in gate(inputs))
    assert weights.shape == (4, 3) and fused.shape == (4, 3)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    expected = sum(weights[:, [m]] * inputs[m] for m in range(3))
    np.testing.assert_allclose(fused, expected, atol=1e-5)


def test_gating_projects_other_widths_and_round_trips():
    gate = ModalityGating(hidden_units=4, units=6, name="gate")
    fused, weights = gate([keras.ops.ones((2, 3)), keras.ops.ones((2, 6)), keras.ops.ones((2, 9))])
    assert tuple(fused.shape) == (2, 6) and tuple(weights.shape) == (2, 3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(gate))
    assert restored.get_config() == gate.get_config()


def test_gating_bad_arguments():
    with pytest.raises(ValueError, match="Received: hidden_units="):
        ModalityGating(hidden_units=0)
    with pytest.raises(ValueError, match="ModalityGating fuses a list of at least 2 modality tensors"):
        ModalityGating()([keras.ops.ones((2, 3))])


def test_dynamic_fusion_weights_sum_to_one_and_depend_on_the_input():
    model = build_small("dynamic_fusion")
    x, y = mmzoo.dummy_batch(model, batch_size=8)
    assert sorted(y) == ["output"]  # the weights have no target
    weights = np.asarray(model(x)["modality_weights"])
    assert weights.shape == (8, 3)
    assert np.all(weights > 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    assert np.ptp(weights, axis=0).max() > 1e-4  # examples get different weights
    shifted = np.asarray(model(dict(x, audio=x["audio"] * 3.0))["modality_weights"])
    assert not np.allclose(shifted, weights)


@pytest.mark.parametrize("informative", ["text", "audio"])
def test_dynamic_fusion_learns_to_rely_on_the_informative_modality(informative):
    model = build_small(
        "dynamic_fusion", image_dim=8, text_dim=8, audio_dim=8, units=16, policy_units=16, compile=False
    )
    model.compile(**{**model.default_compile_arguments(), "optimizer": keras.optimizers.Adam(0.01)})
    x = _vectors(256, {"image": 8, "text": 8, "audio": 8})
    labels = (x[informative][:, 0] > 0).astype("float32")[:, None]  # one modality carries the label
    index = ["image", "text", "audio"].index(informative)
    before = model.predict(x, verbose=0)["modality_weights"].mean(axis=0)
    history = model.fit(x, {"output": labels}, epochs=6, batch_size=32, verbose=0)
    after = model.predict(x, verbose=0)["modality_weights"].mean(axis=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.argmax(after) == index and after[index] > 0.6, f"weights {before} -> {after}"


def test_dynamic_fusion_evaluate_reports_the_output_only():
    model = build_small("dynamic_fusion", num_classes=3)
    x, y = mmzoo.dummy_batch(model, batch_size=8)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]) and "output_accuracy" in logs
    assert not any("modality_weights" in key for key in logs)


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"units": 0}, "units"), ({"policy_units": -1}, "policy_units"), ({"num_classes": 1.0}, "num_classes")],
)
def test_dynamic_fusion_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"Received: {argument}="):
        mmzoo.build("dynamic_fusion", **kwargs)


def test_registered_with_document_004_sources():
    sources = {name: mmzoo.describe(name).source for name in
               ("vgg16_features", "early_fusion", "mlp", "graph_fusion", "dynamic_fusion")}
    assert sources == {
        "vgg16_features": "004 §3.1",
        "early_fusion": "004 §3.4",
        "mlp": "004 §4.1",
        "graph_fusion": "004 §4.1 GNN",
        "dynamic_fusion": "004 §4.1 RL",
    }


@pytest.mark.parametrize("name", ["early_fusion", "mlp", "graph_fusion", "dynamic_fusion"])
def test_outputs_stay_float32_under_mixed_precision(name):
    keras.config.set_dtype_policy("mixed_float16")
    model = build_small(name)
    x, y = mmzoo.dummy_batch(model, batch_size=2)
    outputs = as_dict(model(x))
    assert all(value.dtype == np.float32 for value in outputs.values())
    assert np.isfinite(model.train_on_batch(x, y, return_dict=True)["loss"])
