"""Document 003, programs 1-3: image features fused with text by concatenation, attention and MHA."""

import keras
from keras import layers

from mmzoo.layers import ConcatFusion, MaskedPooling
from mmzoo.models.base import MultimodalModel, check_bool, check_positive_int, classifier, target_kind
from mmzoo.registry import register_model


def _check_common_arguments(image_dim, text_length, units, num_classes):
    for key, value in [("image_dim", image_dim), ("text_length", text_length),
                       ("units", units), ("num_classes", num_classes)]:
        check_positive_int(key, value)


def _token_inputs(image_dim, text_length):
    return {
        "image_input": keras.Input((image_dim,), name="image_input"),
        "text_input": keras.Input((text_length,), dtype="int32", name="text_input"),
    }


def _lstm_text_branch(tokens, vocab_size, units):
    """Embedding(vocab_size, units) with padding masked, and the LSTM(units) over it."""
    embedded = layers.Embedding(vocab_size, units, mask_zero=True, name="text_embedding")(tokens)
    return embedded, layers.LSTM(units, name="text_lstm")(embedded)


@keras.saving.register_keras_serializable(package="mmzoo")
class ConcatFusionClassifier(MultimodalModel):
    """Dense(64) on image features and on text features, concatenated, sigmoid output.

    Document 003's first program as written, with data that can be learned.

    Args:
        image_dim: width of the ``image_input`` features.
        text_dim: width of the ``text_input`` features.
        units: width of each modality's Dense layer.
        num_classes: 1 for the document's sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("concat_fusion")
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 1)
    """

    def __init__(self, image_dim=128, text_dim=64, units=64, num_classes=1, **kwargs):
        _check_common_arguments(image_dim, text_dim, units, num_classes)
        inputs = {
            "image_input": keras.Input((image_dim,), name="image_input"),
            "text_input": keras.Input((text_dim,), name="text_input"),
        }
        image = layers.Dense(units, activation="relu", name="image_dense")(inputs["image_input"])
        text = layers.Dense(units, activation="relu", name="text_dense")(inputs["text_input"])
        outputs = classifier(num_classes)(ConcatFusion()([image, text]))
        super().__init__(inputs=inputs, outputs=outputs, targets=target_kind(num_classes), **kwargs)


@keras.saving.register_keras_serializable(package="mmzoo")
class AttentionFusionClassifier(MultimodalModel):
    """Image features and LSTM-encoded text tokens, with a dot-product attention score between them.

    Document 003's second program: Dense(64) on ``image_input``; Embedding(1000, 64)
    and LSTM(64) on the ``text_input`` token ids; the dot product of the two vectors
    squashed by a sigmoid is the attention score; [image, text, score] feeds the
    sigmoid output. Padding (id 0) is masked out of the LSTM.

    Args:
        image_dim: width of the ``image_input`` features.
        text_length: tokens per ``text_input`` sequence.
        vocab_size: size of the token vocabulary (id 0 is padding).
        units: width of the image Dense layer, the embeddings and the LSTM.
        num_classes: 1 for the document's sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("attention_fusion")  # compiled, ready to fit
    >>> x, y = mmzoo.dummy_batch(model, batch_size=8)
    >>> history = model.fit(x, y, epochs=1, verbose=0)
    >>> tuple(model.predict(x, verbose=0).shape)
    (8, 1)
    """

    def __init__(self, image_dim=128, text_length=64, vocab_size=1000, units=64, num_classes=1, **kwargs):
        _check_common_arguments(image_dim, text_length, units, num_classes)
        check_positive_int("vocab_size", vocab_size)
        inputs = _token_inputs(image_dim, text_length)
        image = layers.Dense(units, activation="relu", name="image_dense")(inputs["image_input"])
        _, text = _lstm_text_branch(inputs["text_input"], vocab_size, units)
        score = layers.Dot(axes=1, name="attention_score")([text, image])
        score = layers.Activation("sigmoid", name="attention")(score)
        fused = ConcatFusion()([image, text, score])
        outputs = classifier(num_classes)(fused)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=target_kind(num_classes),
            token_ranges={"text_input": (1, vocab_size)},
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="mmzoo")
class MHAFusionClassifier(MultimodalModel):
    """Image features, LSTM text and multi-head attention over the text tokens, concatenated.

    Document 003's third program: Dense(64) on ``image_input``; Embedding(1000, 64)
    and LSTM(64) on ``text_input``; MultiHeadAttention(num_heads=2, key_dim=64). The
    padding mask of the token ids (id 0) reaches the LSTM, the attention (padded keys
    are never attended to) and the pooling of the attention output, which is averaged
    over the real tokens into a vector before the concatenation.

    With ``cross_modal=True`` the image features query the text tokens instead of
    the tokens attending to each other: one query, so the attention output is
    already a vector.

    Args:
        image_dim: width of the ``image_input`` features.
        text_length: tokens per ``text_input`` sequence.
        vocab_size: size of the token vocabulary (id 0 is padding).
        units: width of the image Dense layer, the embeddings and the LSTM.
        num_heads: attention heads.
        key_dim: size of each attention head.
        cross_modal: image-to-text cross-attention instead of text self-attention.
        num_classes: 1 for the document's sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("mha_fusion", cross_modal=True)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 1)
    """

    def __init__(
        self,
        image_dim=128,
        text_length=64,
        vocab_size=1000,
        units=64,
        num_heads=2,
        key_dim=64,
        cross_modal=False,
        num_classes=1,
        **kwargs,
    ):
        _check_common_arguments(image_dim, text_length, units, num_classes)
        for key, value in [("vocab_size", vocab_size), ("num_heads", num_heads), ("key_dim", key_dim)]:
            check_positive_int(key, value)
        check_bool("cross_modal", cross_modal)
        inputs = _token_inputs(image_dim, text_length)
        image = layers.Dense(units, activation="relu", name="image_dense")(inputs["image_input"])
        embedded, text = _lstm_text_branch(inputs["text_input"], vocab_size, units)
        attention = layers.MultiHeadAttention(num_heads=num_heads, key_dim=key_dim, name="attention")
        if cross_modal:
            query = layers.Reshape((1, units), name="image_query")(image)
            attended = layers.Flatten(name="attended")(attention(query, embedded))
        else:
            attended = MaskedPooling("mean", name="attended")(attention(embedded, embedded))
        fused = ConcatFusion()([image, text, attended])
        outputs = classifier(num_classes)(fused)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=target_kind(num_classes),
            token_ranges={"text_input": (1, vocab_size)},
            **kwargs,
        )


_SYNTHETIC_DATA_CORRECTION = (
    "the labels were `tf.zeros` (nothing to learn); models are trained on data with "
    "a signal (mmzoo.data.synthetic)"
)
_TOKEN_CORRECTIONS = (
    _SYNTHETIC_DATA_CORRECTION,
    "token ids were fed as random floats to `Embedding`; `text_input` is int32 token "
    "ids, 0 for padding, masked (mask_zero=True)",
)


@register_model(
    source="003 program 1",
    task="binary classification from image and text features",
    corrections=(_SYNTHETIC_DATA_CORRECTION,),
    test_config={"image_dim": 32, "text_dim": 16, "units": 32},
)
def concat_fusion(**kwargs):
    """Image and text feature vectors, each through Dense(64), concatenated, sigmoid output."""
    return ConcatFusionClassifier(**kwargs)


@register_model(
    source="003 program 2",
    task="binary classification from image features and text tokens",
    corrections=_TOKEN_CORRECTIONS
    + ("`tf.sigmoid` was applied to a symbolic Keras tensor; an Activation('sigmoid') layer",),
    test_config={"image_dim": 32, "text_length": 10, "vocab_size": 30, "units": 32},
)
def attention_fusion(**kwargs):
    """Image features and LSTM text tokens joined by a dot-product attention score."""
    return AttentionFusionClassifier(**kwargs)


@register_model(
    source="003 program 3",
    task="binary classification from image features and text tokens",
    corrections=_TOKEN_CORRECTIONS
    + (
        "the 3-D attention output was concatenated with 2-D vectors; it is pooled over "
        "the real (unpadded) tokens first",
        "padding was attended to; the token mask reaches MultiHeadAttention",
        "option `cross_modal=True`: the image features query the text tokens",
    ),
    test_config={"image_dim": 32, "text_length": 10, "vocab_size": 30, "units": 32, "key_dim": 8},
)
def mha_fusion(**kwargs):
    """Image features, LSTM text and multi-head attention over the tokens, concatenated."""
    return MHAFusionClassifier(**kwargs)
