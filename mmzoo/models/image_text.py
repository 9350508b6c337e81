"""Document 001: an image + text classifier (§5.2) and the MIMO model of §4.1-4.2."""

import keras
from keras import layers

from mmzoo.layers import FUSIONS, ConcatFusion, MaskedPooling, ModalityProjection
from mmzoo.models.base import (
    MultimodalModel,
    check_choice,
    check_image_shape,
    check_positive_int,
    check_rate,
    classifier,
    target_kind,
)
from mmzoo.models.blocks import fuse_by_name
from mmzoo.registry import register_model


@keras.saving.register_keras_serializable(package="mmzoo")
class ImageTextClassifier(MultimodalModel):
    """Three-block CNN on the image, averaged token embeddings on the text, fused by concatenation.

    Document 001 §5.2's ``build_model``: Conv2D 32/64/128 with max pooling and
    Flatten on the image; Embedding, Dropout(0.5) and global average pooling on
    ``text_input`` (padding, id 0, excluded); concatenation, Dense(128), Dropout(0.5)
    and softmax. ``vocab_size``, ``embedding_dim`` and ``max_length``, undefined in
    the document, are arguments.

    ``fusion`` picks another fusion of the image and text vectors by name (any key of
    :data:`mmzoo.layers.FUSIONS`): each is first projected to 128, the width of the
    document's Dense(128) after the fusion (the flattened image map is much wider: 2048
    values at 32x32), by ``Dense(relu)`` (layers ``image_to_fusion``, ``text_to_fusion``;
    a 128-wide text vector enters as it is).

    Args:
        input_shape: shape of the ``image`` input.
        vocab_size: size of the token vocabulary (id 0 is padding).
        embedding_dim: width of the token embeddings.
        max_length: tokens per ``text_input`` sequence.
        num_classes: classes of the softmax output (1 gives a sigmoid output).
        dropout: rate of both dropout layers.
        fusion: how the image and text vectors are fused: ``"concat"`` (the document) or
            another key of :data:`mmzoo.layers.FUSIONS` (see above).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("image_text_classifier", input_shape=(32, 32, 3), num_classes=3)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 3)
    >>> model = mmzoo.build("image_text_classifier", input_shape=(32, 32, 3), num_classes=3, fusion="film")
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 3)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        vocab_size=10000,
        embedding_dim=128,
        max_length=256,
        num_classes=10,
        dropout=0.5,
        fusion="concat",
        **kwargs,
    ):
        input_shape = check_image_shape("input_shape", input_shape, minimum_size=8)
        for key, value in [("vocab_size", vocab_size), ("embedding_dim", embedding_dim),
                           ("max_length", max_length), ("num_classes", num_classes)]:
            check_positive_int(key, value)
        check_rate("dropout", dropout)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {
            "image": keras.Input(input_shape, name="image"),
            "text_input": keras.Input((max_length,), dtype="int32", name="text_input"),
        }
        x = inputs["image"]
        for filters in (32, 64, 128):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same")(x)
            x = layers.MaxPooling2D((2, 2))(x)
        image = layers.Flatten()(x)
        text = layers.Embedding(vocab_size, embedding_dim, mask_zero=True)(inputs["text_input"])
        text = layers.Dropout(dropout)(text)
        text = MaskedPooling("mean")(text)
        if fusion == "concat":  # the document's
            x = ConcatFusion()([image, text])
        else:
            x = fuse_by_name(fusion, {"image": image, "text": text}, 128)
        x = layers.Dense(128, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
        outputs = classifier(num_classes)(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=target_kind(num_classes),
            token_ranges={"text_input": (1, vocab_size)},
            **kwargs,
        )


@register_model(
    source="001 §5.2",
    task="image + caption classification",
    corrections=(
        "GlobalAveragePooling2D applied to a 3-D token embedding; masked 1-D average "
        "pooling over the tokens",
        "`vocab_size`, `embedding_dim` and `max_length` were undefined; they are arguments",
        "`Adam(lr=...)` is gone from Keras 3; Adam with its default learning rate (0.001)",
        "`train_data.input` / `train_data.text` do not exist and the text was never "
        "loaded; inputs are a dict {'image', 'text_input'} from a tf.data pipeline",
        "`ImageDataGenerator(color_mode=3)` and a validation subset without a split; "
        "images come from `image_dataset_from_directory` with a seeded split and text "
        "from a `TextVectorization` adapted on the training split only",
        "option `fusion`: image and text fused by any operator of mmzoo.layers.FUSIONS instead of "
        "concatenated (both first brought to 128, the width of the Dense layer after the fusion)",
    ),
    test_config={"input_shape": (32, 32, 3), "vocab_size": 50, "embedding_dim": 8, "max_length": 12},
)
def image_text_classifier(**kwargs):
    """Image CNN and caption embeddings, concatenated, softmax classifier."""
    return ImageTextClassifier(**kwargs)


MIMO_MODALITIES = ("text", "image", "audio")


@keras.saving.register_keras_serializable(package="mmzoo")
class MIMO(MultimodalModel):
    """Multi-input multi-output model: one prediction per modality, trained on the summed loss.

    Document 001 §4.1-4.2 takes text, image and audio features ``X_t, X_v, X_a``,
    learns a joint representation and predicts ``Y_t, Y_v, Y_a`` with
    ``L = l_t + l_v + l_a``. Each modality's features are projected to
    ``hidden_units``; the three projections are concatenated into a joint
    representation; each modality's head sees its own projection and the joint one.
    The ``fused`` output, the mean of the three predictions, is measured but adds
    no loss, so the training loss is exactly the document's sum.

    ``fusion`` picks how the three projections make the joint representation (before
    its Dense layer, ``joint``): ``"concat"`` (layer ``joint_concat``) or any other key of
    :data:`mmzoo.layers.FUSIONS` (layers named ``joint_fusion*``; the projections share
    the width ``hidden_units`` already). Each head still sees its own projection
    concatenated with the joint representation.

    Args:
        text_dim: width of the ``text`` features (word-embedding vectors).
        image_dim: width of the ``image`` features (CNN features).
        audio_dim: width of the ``audio`` features (MFCC / mel statistics).
        hidden_units: width of each modality projection and of the joint layer.
        num_classes: classes of each head (1 gives sigmoid heads).
        dropout: dropout after each projection.
        fusion: how the joint representation is made: ``"concat"`` (the document's
            joint representation, a concatenation) or another key of
            :data:`mmzoo.layers.FUSIONS`.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("mimo")
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> sorted(model.predict(x, verbose=0))
    ['audio', 'fused', 'image', 'text']
    >>> model = mmzoo.build("mimo", fusion="attention")
    >>> model.predict(x, verbose=0)["fused"].shape
    (2, 10)
    """

    def __init__(
        self,
        text_dim=300,
        image_dim=512,
        audio_dim=40,
        hidden_units=128,
        num_classes=10,
        dropout=0.2,
        fusion="concat",
        **kwargs,
    ):
        widths = {"text": text_dim, "image": image_dim, "audio": audio_dim}
        for key, value in [("text_dim", text_dim), ("image_dim", image_dim), ("audio_dim", audio_dim),
                           ("hidden_units", hidden_units), ("num_classes", num_classes)]:
            check_positive_int(key, value)
        check_rate("dropout", dropout)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {key: keras.Input((widths[key],), name=key) for key in MIMO_MODALITIES}
        projected = {
            key: ModalityProjection(hidden_units, dropout=dropout, name=f"{key}_projection")(inputs[key])
            for key in MIMO_MODALITIES
        }
        if fusion == "concat":  # the document's
            joint = ConcatFusion(name="joint_concat")([projected[key] for key in MIMO_MODALITIES])
        else:
            joint = fuse_by_name(fusion, {key: projected[key] for key in MIMO_MODALITIES}, hidden_units,
                                 name="joint_fusion")
        joint = layers.Dense(hidden_units, activation="relu", name="joint")(joint)
        outputs = {
            key: classifier(num_classes, name=f"{key}_head")(
                ConcatFusion(name=f"{key}_with_joint")([projected[key], joint])
            )
            for key in MIMO_MODALITIES
        }
        outputs["fused"] = layers.Average(name="fused", dtype="float32")(
            [outputs[key] for key in MIMO_MODALITIES]
        )
        kind = target_kind(num_classes)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets={key: kind for key in outputs},
            metric_only_outputs=("fused",),
            **kwargs,
        )


@register_model(
    source="001 §4.1-4.2",
    task="classification with one prediction per modality (MIMO)",
    corrections=(
        "the document gives only the loss L = l_t + l_v + l_a; the model is built: "
        "modality projections, a joint representation, one head per modality",
        "the summed loss is Keras' sum of per-output losses; the `fused` output "
        "(mean of the three heads) is reported but carries no loss",
        "option `fusion`: the joint representation made by any operator of mmzoo.layers.FUSIONS "
        "instead of a concatenation",
    ),
    test_config={"text_dim": 12, "image_dim": 16, "audio_dim": 8, "hidden_units": 32, "num_classes": 3},
)
def mimo(**kwargs):
    """Text, image and audio features in; one prediction per modality plus their mean out."""
    return MIMO(**kwargs)
