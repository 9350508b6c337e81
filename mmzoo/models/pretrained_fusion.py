"""Document 002 §5.2: pretrained image and audio towers, text embeddings, attention and weighted fusion."""

import keras
from keras import layers

from mmzoo.layers import FUSIONS, CaffeImagePreprocessing, MaskedPooling, ModalityProjection, WeightedSumFusion
from mmzoo.layers.fusion_names import stack_modalities, unstack_modalities
from mmzoo.models.base import (
    MultimodalModel,
    check_bool,
    check_choice,
    check_image_shape,
    check_positive_int,
    classifier,
    target_kind,
)
from mmzoo.models.blocks import fuse_by_name, imagenet_backbone
from mmzoo.registry import register_model

MODALITIES = ("image", "text", "audio")


@keras.saving.register_keras_serializable(package="mmzoo")
class PretrainedFusion(MultimodalModel):
    """VGG16 image tower, ResNet50 log-mel tower and text embeddings, fused by attention and weights.

    Each modality is encoded (VGG16 on the image, token embeddings on the text,
    ResNet50 on a 3-channel log-mel image), projected to ``projection_dim``, and the
    three projections attend to each other as tokens (multi-head self-attention with
    a residual connection). The attended tokens are combined by a weighted sum whose
    weights sum to 1, initialised to the document's ``alpha = 0.5`` for all three
    (normalised to 1/3 each) and learned (layer ``weighted_fusion``).

    ``fusion`` picks another combination of the three attended tokens by name (any key
    of :data:`mmzoo.layers.FUSIONS`, layers named ``fusion*``): the self-attention stays,
    and the tokens, all ``projection_dim`` wide, go to that operator instead of the
    weighted sum. ``"weighted"`` is the document's weighted sum described above.

    Args:
        input_shape: shape of the ``image`` input, RGB in [0, 1].
        audio_shape: (mel bands, frames, 1) shape of the ``audio`` log-mel input.
        text_length: tokens per ``text`` sequence.
        vocab_size: size of the token vocabulary (id 0 is padding).
        embedding_dim: width of the token embeddings; the text tower is Dense(128) on them.
        projection_dim: the common width of the modality tokens.
        num_heads: heads of the cross-modality self-attention.
        num_classes: 1 for the document's sigmoid output, more for a softmax.
        weights: ``None`` (random initialisation, no download) or ``"imagenet"`` for both towers.
        freeze_backbones: keep VGG16 and ResNet50 fixed (for fine-tuning with ImageNet weights).
        fusion: how the attended modality tokens are combined: ``"weighted"`` (the
            document) or another key of :data:`mmzoo.layers.FUSIONS` (see above).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("pretrained_fusion", input_shape=(32, 32, 3), audio_shape=(32, 32, 1))
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 1)
    >>> model = mmzoo.build("pretrained_fusion", input_shape=(32, 32, 3), audio_shape=(32, 32, 1),
    ...                     fusion="gating")
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 1)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        audio_shape=(224, 224, 1),
        text_length=128,
        vocab_size=10000,
        embedding_dim=128,
        projection_dim=256,
        num_heads=4,
        num_classes=1,
        weights=None,
        freeze_backbones=False,
        fusion="weighted",
        **kwargs,
    ):
        input_shape = check_image_shape("input_shape", input_shape, minimum_size=32, channels=3)
        audio_shape = check_image_shape("audio_shape", audio_shape, minimum_size=32, channels=1)
        for key, value in [("text_length", text_length), ("vocab_size", vocab_size),
                           ("embedding_dim", embedding_dim), ("projection_dim", projection_dim),
                           ("num_heads", num_heads), ("num_classes", num_classes)]:
            check_positive_int(key, value)
        check_choice("weights", weights, (None, "imagenet"))
        check_bool("freeze_backbones", freeze_backbones)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {
            "image": keras.Input(input_shape, name="image"),
            "text": keras.Input((text_length,), dtype="int32", name="text"),
            "audio": keras.Input(audio_shape, name="audio"),
        }
        vgg16 = imagenet_backbone(keras.applications.VGG16, input_shape, weights, "vgg16")
        spectrogram_shape = audio_shape[:2] + (3,)
        resnet50 = imagenet_backbone(keras.applications.ResNet50, spectrogram_shape, weights, "resnet50")
        vgg16.trainable = resnet50.trainable = not freeze_backbones

        image = vgg16(CaffeImagePreprocessing()(inputs["image"]))
        text = layers.Embedding(vocab_size, embedding_dim, mask_zero=True)(inputs["text"])
        text = layers.Dense(128, activation="relu")(MaskedPooling("mean")(text))
        spectrogram = layers.BatchNormalization(name="audio_standardize")(inputs["audio"])
        audio = resnet50(layers.Concatenate(name="audio_to_rgb")([spectrogram] * 3))

        encoded = {"image": image, "text": text, "audio": audio}
        projected = [
            ModalityProjection(projection_dim, normalize=True, name=f"{key}_projection")(encoded[key])
            for key in MODALITIES
        ]
        tokens = stack_modalities(projected)
        attended = layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=max(1, projection_dim // num_heads), name="modality_attention"
        )(tokens, tokens)
        tokens = layers.LayerNormalization(name="attention_norm")(layers.Add()([tokens, attended]))
        attended = dict(zip(MODALITIES, unstack_modalities(tokens, len(MODALITIES))))
        if fusion == "weighted":  # the document's
            fused = WeightedSumFusion(
                modality_weights=(0.5, 0.5, 0.5), learn_weights=True, name="weighted_fusion"
            )(list(attended.values()))
        else:
            fused = fuse_by_name(fusion, attended, projection_dim)
        outputs = classifier(num_classes)(fused)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=target_kind(num_classes),
            token_ranges={"text": (1, vocab_size)},
            **kwargs,
        )


@register_model(
    source="002 §5.2",
    task="binary classification from image, text and audio",
    corrections=(
        "torch and pandas were imported and never used; Keras only",
        "`text_to_sequence` does not exist; text comes in as token ids (TextVectorization) "
        "and is embedded and mean-pooled before the document's Dense(128)",
        "ResNet50's `preprocess_input` was applied to raw audio; ResNet50 reads a "
        "standardised log-mel spectrogram repeated to 3 channels",
        "`tf.keras.layers.SelfAttention` does not exist; MultiHeadAttention across the "
        "three modality tokens, with a residual connection",
        "`alpha*h1 + (1-alpha)*h2 + alpha*h3` added vectors of different sizes with weights "
        "summing to 1.5; each modality is projected to one width and the weights are "
        "normalised to sum to 1 (and learned)",
        "the self-attention output was computed and then ignored; the fusion uses it",
        "option `fusion`: the attended tokens combined by any operator of mmzoo.layers.FUSIONS "
        "instead of the weighted sum",
        "VGG16/ResNet50 downloaded ImageNet weights implicitly; weights=None by default, "
        "weights='imagenet' fails with a clear message offline",
    ),
    test_config={
        "input_shape": (32, 32, 3),
        "audio_shape": (32, 32, 1),
        "text_length": 8,
        "vocab_size": 50,
        "embedding_dim": 8,
        "projection_dim": 16,
        "num_heads": 2,
        "freeze_backbones": True,
    },
)
def pretrained_fusion(**kwargs):
    """VGG16 image tower, ResNet50 spectrogram tower and text embeddings with attention fusion."""
    return PretrainedFusion(**kwargs)
