"""Document 000 §5.2: a three-branch CNN/MLP on CIFAR-10 images with text and audio vectors."""

import keras
from keras import layers

from mmzoo.layers import FUSIONS, ConcatFusion, apply_fusion
from mmzoo.models.base import (
    MultimodalModel,
    check_choice,
    check_image_shape,
    check_positive_int,
    classifier,
    target_kind,
)
from mmzoo.registry import register_model

@keras.saving.register_keras_serializable(package="mmzoo")
class CifarMultimodal(MultimodalModel):
    """Image CNN + text MLP + audio MLP, concatenated, softmax over 10 classes.

    The document's model, layer for layer: two Conv2D/MaxPooling blocks (32, 64
    filters) and Dense(128) on the image, Dense(128) on the text and audio vectors,
    concatenation, Dense(128), softmax. Trained on integer labels.

    CIFAR-10 has no text or audio: :func:`mmzoo.data.cifar10` zero-fills them. With
    ``missing_modalities=True`` the model also takes ``image_present``, ``text_present``
    and ``audio_present``, float32 ``(batch,)`` flags (1.0 present, 0.0 missing, what
    ``cifar10(include_presence=True)`` yields), and each branch's vector is zeroed where
    its flag is 0 before the concatenation: a missing modality contributes nothing,
    whatever its input holds (the option every multimodal model has, see
    :mod:`mmzoo.models.presence`).

    Args:
        image_shape: shape of the ``image`` input, (32, 32, 3) for CIFAR-10.
        text_dim: width of the ``text`` feature vector.
        audio_dim: width of the ``audio`` feature vector.
        hidden_units: width of every dense layer.
        num_classes: classes of the softmax output.
        fusion: how the three ``hidden_units`` vectors are fused: ``"concat"`` (the document)
            or another key of :data:`mmzoo.layers.FUSIONS` (layers named ``fusion*``).
        missing_modalities: add the ``<modality>_present`` inputs (see above). False
            (default): the document's three inputs, every modality counts.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("cifar_multimodal")
    >>> x, y = mmzoo.dummy_batch(model, batch_size=4)
    >>> tuple(model.predict(x, verbose=0).shape)
    (4, 10)
    """

    def __init__(
        self,
        image_shape=(32, 32, 3),
        text_dim=128,
        audio_dim=128,
        hidden_units=128,
        num_classes=10,
        fusion="concat",
        **kwargs,
    ):
        image_shape = check_image_shape("image_shape", image_shape, minimum_size=10)
        for key, value in [("text_dim", text_dim), ("audio_dim", audio_dim),
                           ("hidden_units", hidden_units), ("num_classes", num_classes)]:
            check_positive_int(key, value)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {
            "image": keras.Input(image_shape, name="image"),
            "text": keras.Input((text_dim,), name="text"),
            "audio": keras.Input((audio_dim,), name="audio"),
        }
        x = inputs["image"]
        for filters in (32, 64):
            x = layers.Conv2D(filters, (3, 3), activation="relu")(x)
            x = layers.MaxPooling2D(pool_size=(2, 2))(x)
        image = layers.Dense(hidden_units, activation="relu")(layers.Flatten()(x))
        text = layers.Dense(hidden_units, activation="relu")(inputs["text"])
        audio = layers.Dense(hidden_units, activation="relu")(inputs["audio"])
        if fusion == "concat":  # the document's
            merged = ConcatFusion()([image, text, audio])
        else:
            merged = apply_fusion(fusion, [image, text, audio], hidden_units, name="fusion")
        merged = layers.Dense(hidden_units, activation="relu")(merged)
        outputs = classifier(num_classes)(merged)
        super().__init__(inputs=inputs, outputs=outputs, targets=target_kind(num_classes), **kwargs)


@register_model(
    source="000 §5.2",
    task="image classification (CIFAR-10) with text and audio vectors",
    corrections=(
        "`preprocess_data` returned an (images, labels) tuple that overwrote x_train; "
        "a tf.data pipeline yields ({'image', 'text', 'audio'}, label) instead",
        "`fit` got only images for a three-input model; inputs are a dict keyed by name",
        "labels were one-hot encoded after the fact; integer labels with sparse "
        "categorical cross-entropy",
        "CIFAR-10 has no text or audio: the data pipeline zero-fills those inputs, "
        "never derives them from the label",
        "option `fusion`: the three vectors fused by any operator of mmzoo.layers.FUSIONS instead of "
        "concatenated",
        "option `missing_modalities`: `<modality>_present` flag inputs (cifar10(include_presence=True) "
        "yields them); a missing modality's branch is zeroed before the concatenation",
    ),
    test_config={"hidden_units": 16},
)
def cifar_multimodal(**kwargs):
    """CIFAR-10 image CNN fused with text and audio vectors by concatenation."""
    return CifarMultimodal(**kwargs)
