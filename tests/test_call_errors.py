"""Bad inputs at call time give messages that name the input and what was expected."""

import numpy as np
import pytest

import mmzoo


@pytest.fixture(scope="module")
def model():
    return mmzoo.build("attention_fusion", image_dim=12, text_length=10, vocab_size=30, units=8)


def test_missing_input_key_names_it_and_the_expected_keys(model):
    x, _ = mmzoo.dummy_batch(model, batch_size=2)
    del x["text_input"]
    for call in (lambda: model(x), lambda: model.predict(x, verbose=0)):
        with pytest.raises(ValueError, match="Missing data for input \"text_input\".*Expected the following keys: \\['image_input', 'text_input'\\]"):
            call()


def test_wrong_input_shape_names_the_input_and_both_shapes(model):
    x, y = mmzoo.dummy_batch(model, batch_size=2)
    x["image_input"] = np.zeros((2, 7), "float32")
    for call in (lambda: model(x), lambda: model.predict(x, verbose=0), lambda: model.fit(x, y, verbose=0)):
        with pytest.raises(ValueError, match=r"Input 'image_input' of .* takes arrays of shape \(batch, 12\)\. Received: image_input of shape \(2, 7\)"):
            call()


def test_a_list_instead_of_a_dict_is_refused(model):
    x, _ = mmzoo.dummy_batch(model, batch_size=2)
    with pytest.raises(ValueError, match=r"expects 2 named input\(s\) with keys \['image_input', 'text_input'\], but it received 1 input"):
        model.predict([x["image_input"]], verbose=0)
