"""Document models whose fusion step is a choice: ``fusion=`` takes every name of ``mmzoo.layers.FUSIONS``.

The default (the document's own fusion) builds exactly the graph it built before the
argument existed; every other name builds, predicts and trains.
"""

import re

import keras
import numpy as np
import pytest

import mmzoo
from helpers import as_dict, build_small, check_config_round_trip, check_keras_file_round_trip
from mmzoo.layers import FUSIONS

# Model -> the document's fusion (the default).
DOCUMENT_FUSION = {
    "cifar_multimodal": "concat",
    "early_fusion": "concat",
    "emotion": "concat",
    "face_recognition": "concat",
    "image_text_classifier": "concat",
    "mimo": "concat",
    "pretrained_fusion": "weighted",
}
# The layer that makes the document's fusion, and its class.
DOCUMENT_LAYER = {
    "cifar_multimodal": ("concat_fusion", "ConcatFusion"),  # an automatic name
    "early_fusion": ("fused_features", "ConcatFusion"),
    "emotion": ("merged_embedding", "ConcatFusion"),
    "face_recognition": ("merged_embedding", "ConcatFusion"),
    "image_text_classifier": ("concat_fusion", "ConcatFusion"),  # an automatic name
    "mimo": ("joint_concat", "ConcatFusion"),
    "pretrained_fusion": ("weighted_fusion", "WeightedSumFusion"),
}
# The name (prefix) of the layers a chosen fusion adds.
FUSION_LAYER = {"mimo": "joint_fusion"}
# early_fusion's test_config has three 8-wide branches: a 4-wide visual one is projected to 8.
OVERRIDES = {"early_fusion": {"filters": 4}}
# The branch each model projects to the common width at these sizes (None: all share it already).
PROJECTED = {
    "cifar_multimodal": None,
    "early_fusion": "visual",
    "emotion": "text",
    "face_recognition": "image",
    "image_text_classifier": "image",
    "mimo": None,
    "pretrained_fusion": None,
}
# pretrained_fusion builds VGG16 and ResNet50 towers (seconds per build and step): it is tried
# with three names (its own trains in tests/test_registry_models.py); its fusion is the same
# call, on three vectors of one width, as mimo's, which is tried with every name.
HEAVY = {"pretrained_fusion": ("concat", "gating", "cross_attention")}
# The name whose model also goes through get_config and from_config.
ROUND_TRIP = "cross_attention"


def marks(name):
    return [pytest.mark.slow] if name in HEAVY else []


def build(name, **overrides):
    return build_small(name, **{**OVERRIDES.get(name, {}), **overrides})


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in DOCUMENT_FUSION])
def test_every_fusion_predicts_and_trains(name):
    """Each name builds, gives finite float32 outputs of the advertised shapes and trains a step.

    With ``ROUND_TRIP``, ``from_config(get_config())`` rebuilds the same model (the fusion kept).

    One test per model, not per name: the clearing after each test (a garbage collection,
    about half a second) would take as long as the checks.
    """
    failed = {}
    for fusion in HEAVY.get(name, FUSIONS):
        try:
            _check_fusion(name, fusion)
        except Exception as error:  # every name is tried; the failures are listed together
            failed[fusion] = f"{type(error).__name__}: {error}"
    assert not failed, f"{name}: " + "; ".join(f"fusion={k!r}: {v}" for k, v in failed.items())


def _check_fusion(name, fusion):
    model = build(name, fusion=fusion)
    assert model.get_config()["fusion"] == fusion
    if fusion != DOCUMENT_FUSION[name]:
        model.get_layer(FUSION_LAYER.get(name, "fusion"))  # the chosen operator is in the graph
        if PROJECTED[name]:
            model.get_layer(f"{PROJECTED[name]}_to_fusion")
    if fusion == ROUND_TRIP:
        check_config_round_trip(model)  # the same config, so the same fusion, and weight shapes
    # Eagerly: tracing a tf.function per model would take most of this test's time.
    model.compile(**model.default_compile_arguments(), run_eagerly=True)
    x, y = mmzoo.dummy_batch(model, batch_size=3, seed=1)
    outputs = as_dict(model(x, training=False))
    symbolic = model.output if isinstance(model.output, dict) else {"output": model.output}
    assert sorted(outputs) == sorted(symbolic)
    for key, value in outputs.items():
        assert value.shape == (3,) + tuple(symbolic[key].shape[1:]), key
        assert value.dtype == np.float32 and np.all(np.isfinite(value)), key
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0, logs


def _fingerprint(model, x):
    return (
        [layer.name for layer in model.layers],
        [(weight.path, np.array(weight)) for weight in model.weights],
        as_dict(model(x, training=False)),
    )


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in DOCUMENT_FUSION])
def test_the_document_fusion_is_the_default_and_its_graph(name):
    """No argument and the document's fusion by name build the same layers, weights and outputs."""
    fingerprints = []
    for arguments in ({}, {"fusion": DOCUMENT_FUSION[name]}):
        keras.backend.clear_session(free_memory=False)  # the same automatic layer names
        keras.utils.set_random_seed(5)
        model = build(name, **arguments)
        x, _ = mmzoo.dummy_batch(model, batch_size=2, seed=2)
        fingerprints.append(_fingerprint(model, x))
    (names, weights, outputs), (names_by_name, weights_by_name, outputs_by_name) = fingerprints
    assert model.get_config()["fusion"] == DOCUMENT_FUSION[name]
    layer_name, layer_class = DOCUMENT_LAYER[name]
    assert type(model.get_layer(layer_name)).__name__ == layer_class
    assert names == names_by_name
    assert not [n for n in names if n.startswith(FUSION_LAYER.get(name, "fusion")) or n.endswith("_to_fusion")]
    assert [path for path, _ in weights] == [path for path, _ in weights_by_name]
    for (path, value), (_, value_by_name) in zip(weights, weights_by_name):
        np.testing.assert_array_equal(value, value_by_name, err_msg=path)
    for key in outputs:
        np.testing.assert_array_equal(outputs[key], outputs_by_name[key], err_msg=key)


def test_a_chosen_fusion_saves_and_loads_in_safe_mode(tmp_path):
    check_keras_file_round_trip(build("early_fusion", fusion="cross_attention", compile=False), tmp_path)


def test_early_fusion_features_stay_float32_and_named_with_a_chosen_fusion():
    keras.config.set_dtype_policy("mixed_float16")
    model = build("early_fusion", fusion="weighted")
    fused = model.get_layer("fused_features").output
    assert fused is model.output and fused.dtype == "float32"
    assert tuple(fused.shape) == (None, 8)  # the three branches' common width


def test_an_unknown_fusion_is_refused_with_the_names():
    names = ", ".join(repr(n) for n in FUSIONS)
    expected = re.escape(f"`fusion` must be one of {names}. Received: fusion='bilinear'")
    for name in DOCUMENT_FUSION:
        with pytest.raises(ValueError, match=expected):
            build(name, fusion="bilinear")
