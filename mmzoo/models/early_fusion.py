"""Document 004 §3.1, §3.4 and §4.1: VGG16 features, early fusion of three modalities, the MLP."""

import keras
from keras import layers

from mmzoo.layers import FUSIONS, CaffeImagePreprocessing, ConcatFusion, MaskedPooling
from mmzoo.models.base import (
    MultimodalModel,
    check_bool,
    check_choice,
    check_image_shape,
    check_positive_int,
    check_shape,
    classifier,
    target_kind,
)
from mmzoo.models.blocks import fuse_by_name, imagenet_backbone
from mmzoo.optimizers import Adam
from mmzoo.registry import register_model

VGG16_POOLINGS = ("flatten", "avg", "max")


def _feature_pooling(pooling, name):
    """Flatten, global average or global max pooling of a feature map, in float32."""
    if pooling == "flatten":
        return layers.Flatten(dtype="float32", name=name)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(dtype="float32", name=name)
    return layers.GlobalMaxPooling2D(dtype="float32", name=name)


@keras.saving.register_keras_serializable(package="mmzoo")
class VGG16Features(MultimodalModel):
    """VGG16 without its classifier: an image in, a feature vector out.

    Document 004 §3.1 extracts features with the whole VGG16 (its 1000-class top
    included) and indexes the 2-D result as if it were a feature map. Here VGG16
    stops at its last convolutional block, and the (h/32, w/32, 512) feature map is
    flattened (the document's ``Flatten``; 25088 features at 224x224) or pooled
    over space (512 features). The ``image`` input is RGB in [0, 1]; the ImageNet
    "caffe" preprocessing VGG16 expects is part of the model.

    The output is a feature vector, not a prediction: the model's target kind is
    ``"regression"``, so ``fit`` trains it with mean squared error towards target
    feature vectors (e.g. a teacher's features, for distillation). To classify,
    put a head on ``model.output`` or use the features in another model. The model
    compiles with Adam at 1e-4 (see ``default_compile_arguments``).

    Args:
        input_shape: shape of the ``image`` input; height and width at least 32.
        pooling: ``"flatten"`` (the document), ``"avg"`` or ``"max"`` over space.
        weights: ``None`` (random initialisation, no download) or ``"imagenet"``.
        freeze_backbone: keep VGG16 fixed (feature extraction with ImageNet weights).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("vgg16_features", input_shape=(64, 64, 3))
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)  # flattened 2x2x512 feature map
    (2, 2048)
    """

    def __init__(self, input_shape=(224, 224, 3), pooling="flatten", weights=None,
                 freeze_backbone=False, **kwargs):
        input_shape = check_image_shape("input_shape", input_shape, minimum_size=32, channels=3)
        check_choice("pooling", pooling, VGG16_POOLINGS)
        check_choice("weights", weights, (None, "imagenet"))
        check_bool("freeze_backbone", freeze_backbone)
        inputs = {"image": keras.Input(input_shape, name="image")}
        vgg16 = imagenet_backbone(keras.applications.VGG16, input_shape, weights, "vgg16", pooling=None)
        vgg16.trainable = not freeze_backbone
        feature_map = vgg16(CaffeImagePreprocessing()(inputs["image"]))
        outputs = _feature_pooling(pooling, "features")(feature_map)
        super().__init__(inputs=inputs, outputs=outputs, targets="regression", **kwargs)

    def default_compile_arguments(self):
        """Adam at a learning rate of 1e-4, mean squared error, mean absolute error.

        At Adam's default 1e-3, VGG16 (no batch normalisation) trained from random
        weights often collapses to all-zero ReLU features: 3 seeds in 7 did on one
        fixed batch, none at 1e-4.
        """
        return {**super().default_compile_arguments(), "optimizer": Adam(1e-4)}


@keras.saving.register_keras_serializable(package="mmzoo")
class EarlyFusion(MultimodalModel):
    """Visual, text and audio branches, each pooled to a vector, concatenated (or fused by name).

    Document 004 §3.4: Conv2D(32, 3x3, relu) on ``visual``, Embedding(10000, 128)
    on the ``text`` token ids, Dense(128, relu) on the ``audio`` features, then
    Concatenate. The document concatenates a 4-D feature map, a 3-D token sequence
    and a 2-D vector; here the feature map is averaged over space and the token
    embeddings over the real tokens (id 0 is padding), so the fused vector has
    ``filters + embedding_dim + audio_units`` features (288 by default).

    ``fusion`` picks another fusion of the three vectors by name (any key of
    :data:`mmzoo.layers.FUSIONS`): each branch whose width is not the widest of
    ``filters``, ``embedding_dim`` and ``audio_units`` (128 by default) is first
    projected to it by ``Dense(relu)`` (layer ``<branch>_to_fusion``), and the fused
    vector has the operator's width (e.g. 128 for ``"weighted"``).

    With ``num_classes=None`` (the document) the output is the fused feature
    vector and the target kind is ``"regression"`` (mean squared error towards
    target feature vectors); with ``num_classes`` set, a classifier on the fused
    features is the output (sigmoid for 1, softmax otherwise). The fused features
    are the output of the layer named ``"fused_features"`` either way, whatever the
    ``fusion``.

    Args:
        visual_shape: shape of the ``visual`` input.
        text_length: tokens per ``text`` sequence.
        vocab_size: size of the token vocabulary (id 0 is padding).
        embedding_dim: width of the token embeddings.
        audio_dim: width of the ``audio`` feature vector.
        filters: filters of the visual Conv2D.
        audio_units: width of the audio Dense layer.
        num_classes: None for the fused features only, or the classes of a head.
        fusion: how the three branch vectors are fused: ``"concat"`` (the document) or
            another key of :data:`mmzoo.layers.FUSIONS` (see above).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("early_fusion", visual_shape=(32, 32, 3))
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 288)
    >>> model = mmzoo.build("early_fusion", visual_shape=(32, 32, 3), num_classes=5)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 5)
    >>> model = mmzoo.build("early_fusion", visual_shape=(32, 32, 3), fusion="weighted")
    >>> tuple(model.predict(x, verbose=0).shape)  # a convex combination of 128-wide vectors
    (2, 128)
    """

    def __init__(
        self,
        visual_shape=(224, 224, 3),
        text_length=10,
        vocab_size=10000,
        embedding_dim=128,
        audio_dim=128,
        filters=32,
        audio_units=128,
        num_classes=None,
        fusion="concat",
        **kwargs,
    ):
        visual_shape = check_image_shape("visual_shape", visual_shape, minimum_size=3)
        for key, value in [("text_length", text_length), ("vocab_size", vocab_size),
                           ("embedding_dim", embedding_dim), ("audio_dim", audio_dim),
                           ("filters", filters), ("audio_units", audio_units)]:
            check_positive_int(key, value)
        if num_classes is not None:
            check_positive_int("num_classes", num_classes)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {
            "visual": keras.Input(visual_shape, name="visual"),
            "text": keras.Input((text_length,), dtype="int32", name="text"),
            "audio": keras.Input((audio_dim,), name="audio"),
        }
        visual = layers.Conv2D(filters, (3, 3), activation="relu", name="visual_conv")(inputs["visual"])
        visual = layers.GlobalAveragePooling2D(name="visual_pool")(visual)
        text = layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="text_embedding")(
            inputs["text"]
        )
        text = MaskedPooling("mean", name="text_pool")(text)
        audio = layers.Dense(audio_units, activation="relu", name="audio_dense")(inputs["audio"])
        if fusion == "concat":  # the document's
            fused = ConcatFusion(dtype="float32", name="fused_features")([visual, text, audio])
        else:
            fused = fuse_by_name(
                fusion, {"visual": visual, "text": text, "audio": audio}, max(filters, embedding_dim, audio_units)
            )
            fused = layers.Identity(dtype="float32", name="fused_features")(fused)
        if num_classes is None:
            outputs, targets = fused, "regression"
        else:
            outputs, targets = classifier(num_classes)(fused), target_kind(num_classes)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=targets,
            token_ranges={"text": (1, vocab_size)},
            **kwargs,
        )


def _check_input_shape(input_shape):
    """``input_shape`` as a tuple of positive integers; a bare integer means a vector."""
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    rank = len(input_shape) if isinstance(input_shape, (list, tuple)) and input_shape else 1
    return check_shape("input_shape", input_shape, rank=rank)


@keras.saving.register_keras_serializable(package="mmzoo")
class MLP(MultimodalModel):
    """The multilayer perceptron of document 004 §4.1: Dense(128, relu), sigmoid output.

    The document's ``input_shape`` is undefined; it is the argument here (the
    width of already fused ``features``, 128 by default). An input of higher rank
    is flattened before the hidden layer, so the output is always one prediction
    per example.

    Args:
        input_shape: shape of the ``features`` input, a tuple (or an integer width).
        units: width of the hidden layer.
        num_classes: 1 for the document's sigmoid output, more for a softmax.

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("mlp", input_shape=(20,))
    >>> x, y = mmzoo.dummy_batch(model, batch_size=4)
    >>> tuple(x["features"].shape), tuple(model.predict(x, verbose=0).shape)
    ((4, 20), (4, 1))
    """

    def __init__(self, input_shape=(128,), units=128, num_classes=1, **kwargs):
        shape = _check_input_shape(input_shape)
        check_positive_int("units", units)
        check_positive_int("num_classes", num_classes)
        inputs = {"features": keras.Input(shape, name="features")}
        x = inputs["features"]
        if len(shape) > 1:
            x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(units, activation="relu", name="hidden")(x)
        outputs = classifier(num_classes)(x)
        super().__init__(inputs=inputs, outputs=outputs, targets=target_kind(num_classes), **kwargs)


@register_model(
    source="004 §3.1",
    task="image feature extraction (VGG16 without its top)",
    corrections=(
        "VGG16 was loaded with its 1000-class top and `features[:, :, :, :]` indexed its "
        "2-D output as a feature map; include_top=False gives the convolutional feature map",
        "the feature map is flattened as in the document, or pooled over space (`pooling`)",
        "the raw image was fed to VGG16; the ImageNet caffe preprocessing is a layer of the model",
        "ImageNet weights were downloaded implicitly; weights=None by default, "
        "weights='imagenet' fails with a clear message offline",
        "a bare Input was passed to an already built model; the model is keyed by `image` "
        "and its output can be fitted (mean squared error towards target features)",
    ),
    test_config={"input_shape": (32, 32, 3), "pooling": "avg"},
)
def vgg16_features(**kwargs):
    """VGG16 without its top: an image to a flattened or pooled feature vector."""
    return VGG16Features(**kwargs)


@register_model(
    source="004 §3.4",
    task="early fusion of visual, text and audio features (optional classifier)",
    corrections=(
        "a 4-D feature map, a 3-D token sequence and a 2-D vector were concatenated; the "
        "feature map is averaged over space and the tokens over the real (unpadded) ids",
        "`text` is int32 token ids with 0 as padding (masked), as `TextVectorization` emits",
        "the fused features can be fitted (regression), and `num_classes` adds a classifier",
        "option `fusion`: the three vectors fused by any operator of mmzoo.layers.FUSIONS instead of "
        "concatenated (a narrower branch first projected to the widest one's width)",
    ),
    test_config={
        "visual_shape": (16, 16, 3),
        "text_length": 6,
        "vocab_size": 50,
        "embedding_dim": 8,
        "audio_dim": 12,
        "filters": 8,
        "audio_units": 8,
    },
)
def early_fusion(**kwargs):
    """Conv2D, Embedding and Dense branches, each pooled to a vector, concatenated."""
    return EarlyFusion(**kwargs)


@register_model(
    source="004 §4.1",
    task="binary classification of a feature vector",
    corrections=(
        "`input_layer` and `input_shape` were undefined; `input_shape` is an argument and "
        "the input is named `features`",
    ),
    test_config={"input_shape": (64,), "units": 64},
)
def mlp(**kwargs):
    """The document's MLP: Dense(128, relu) and a sigmoid output on a feature vector."""
    return MLP(**kwargs)
