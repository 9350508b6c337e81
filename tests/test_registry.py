"""The registry API: listing, building, cards, dummy batches and the errors on bad names and arguments."""

import numpy as np
import pytest

import mmzoo
from mmzoo.registry import register_model

DOCUMENT_000_TO_003 = [
    "attention_fusion",
    "cifar_multimodal",
    "concat_fusion",
    "image_text_classifier",
    "mha_fusion",
    "mimo",
    "pretrained_fusion",
]


def test_lists_the_models_of_documents_000_to_003():
    assert set(DOCUMENT_000_TO_003) <= set(mmzoo.list_models())
    assert mmzoo.list_models() == sorted(mmzoo.list_models())


def test_list_models_takes_wildcards():
    assert mmzoo.list_models("*_fusion") == sorted(n for n in mmzoo.list_models() if n.endswith("_fusion"))
    assert "attention_fusion" in mmzoo.list_models("att*")
    assert mmzoo.list_models("no_such_*") == []


def test_unknown_name_names_the_closest_models():
    with pytest.raises(ValueError, match="Unknown model name 'atention_fusion'.*Did you mean 'attention_fusion'"):
        mmzoo.build("atention_fusion")
    with pytest.raises(ValueError, match="Registered models: .*mha_fusion"):
        mmzoo.describe("resnet")


def test_unknown_keyword_names_it_and_the_allowed_ones():
    with pytest.raises(ValueError, match="AttentionFusionClassifier has no argument `vocab_sise`") as error:
        mmzoo.build("attention_fusion", vocab_sise=10)
    message = str(error.value)
    assert "`vocab_sise`" in message and "did you mean `vocab_size`" in message
    assert "Allowed arguments: image_dim, text_length, vocab_size" in message
    assert "Received: vocab_sise=10" in message


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("attention_fusion", {"units": 0}, "`units` must be a positive integer. Received: units=0"),
        ("attention_fusion", {"vocab_size": 2.5}, "Received: vocab_size=2.5"),
        ("cifar_multimodal", {"image_shape": (32, 32)}, "`image_shape` must be a tuple of 3 integers"),
        ("image_text_classifier", {"dropout": 1.5}, "`dropout` must be a number in \\[0, 1\\)"),
        ("pretrained_fusion", {"weights": "places365"}, "`weights` must be None, a preset folder .* or 'imagenet'"),
        ("pretrained_fusion", {"input_shape": (16, 16, 3)}, "at least 32"),
        ("mha_fusion", {"cross_modal": "yes"}, "`cross_modal` must be True or False"),
    ],
)
def test_invalid_values_are_refused_with_what_was_received(name, kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        mmzoo.build(name, **kwargs)


def test_positional_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="ConcatFusionClassifier"):
        mmzoo.models.feature_fusion.ConcatFusionClassifier(1, 2, 3, 4, 5, 6)


def test_build_compiles_unless_asked_not_to():
    assert mmzoo.build("concat_fusion").compiled
    assert not mmzoo.build("concat_fusion", compile=False).compiled


def test_card_has_document_defaults_and_corrections():
    card = mmzoo.describe("attention_fusion")
    assert card.source == "003 program 2"
    assert card.inputs == {"image_input": ((128,), "float32"), "text_input": ((64,), "int32")}
    assert card.outputs == {"output": ((1,), "float32")}
    assert card.defaults["vocab_size"] == 1000 and card.defaults["units"] == 64
    assert any("tf.sigmoid" in c for c in card.corrections)
    text = str(card)
    assert "attention_fusion" in text and "text_input: shape (64,), int32" in text


@pytest.mark.parametrize("name", DOCUMENT_000_TO_003)
def test_corrections_are_in_the_builder_docstring(name):
    entry = mmzoo.registry.get_entry(name)
    for correction in entry.corrections:
        assert correction in entry.builder.__doc__
    assert entry.source in entry.builder.__doc__


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="registered already"):

        @register_model(source="x", task="x", corrections=())
        def attention_fusion():
            """Duplicate."""


def test_dummy_batch_is_deterministic_and_fits_the_model():
    x1, y1 = mmzoo.dummy_batch("attention_fusion", batch_size=3, seed=7)
    x2, y2 = mmzoo.dummy_batch("attention_fusion", batch_size=3, seed=7)
    x3, _ = mmzoo.dummy_batch("attention_fusion", batch_size=3, seed=8)
    np.testing.assert_array_equal(x1["text_input"], x2["text_input"])
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1["image_input"], x3["image_input"])
    assert x1["text_input"].dtype == np.int32 and x1["text_input"].shape == (3, 64)
    assert x1["text_input"].min() >= 1 and x1["text_input"].max() < 1000
    assert y1.shape == (3, 1) and set(np.unique(y1)) <= {0.0, 1.0}


def test_dummy_batch_targets_follow_the_outputs():
    model = mmzoo.build("mimo", num_classes=4)
    x, y = mmzoo.dummy_batch(model, batch_size=5)
    assert sorted(y) == ["audio", "fused", "image", "text"]
    assert all(v.shape == (5,) and v.max() < 4 for v in y.values())
    with pytest.raises(ValueError, match="batch_size"):
        mmzoo.dummy_batch(model, batch_size=0)
