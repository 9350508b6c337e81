"""Document 004 §5.1-5.2: emotion recognition and face recognition from text, audio, image and video."""

import keras
from keras import layers

from mmzoo.layers import FUSIONS, AttentionPooling, ConcatFusion, MaskedPooling, UnitNormalization
from mmzoo.models.base import (
    MultimodalModel,
    check_bool,
    check_choice,
    check_positive_int,
    classifier,
    target_kind,
)
from mmzoo.models.blocks import fuse_by_name
from mmzoo.registry import register_model
from mmzoo.validation import check_filters

TEMPORAL_POOLING = ("mean", "max", "attention")


def smallest_image_size(conv_filters):
    """The smallest image side the CNN of :func:`image_encoder` accepts.

    Each block is a valid 3x3 convolution; blocks after the first follow a 2x2
    max pooling, so a side of ``s`` must survive ``s - 2``, ``// 2``, ``- 2``, ...
    """
    size = 3
    for _ in conv_filters[1:]:
        size = 2 * size + 2
    return size


def check_conv_filters(conv_filters):
    return check_filters("conv_filters", conv_filters, "filters of each 3x3 convolution block")


def check_image_arguments(image_height, image_width, image_channels, conv_filters):
    """Validate the document's image size arguments against the CNN that reads them."""
    conv_filters = check_conv_filters(conv_filters)
    minimum = smallest_image_size(conv_filters)
    for key, value in [("image_height", image_height), ("image_width", image_width)]:
        check_positive_int(key, value)
        if value < minimum:
            raise ValueError(
                f"`{key}` must be at least {minimum} for {len(conv_filters)} convolution "
                f"block(s) (conv_filters={conv_filters}). Received: {key}={value!r}"
            )
    check_positive_int("image_channels", image_channels)
    return conv_filters


def check_audio_arguments(mfcc_features_size, mfcc_frames, audio_units, audio_mask=False):
    check_positive_int("mfcc_features_size", mfcc_features_size)
    check_positive_int("audio_units", audio_units)
    if mfcc_frames is not None:
        check_positive_int("mfcc_frames", mfcc_frames)
    check_bool("audio_mask", audio_mask)
    if audio_mask and mfcc_frames is None:
        raise ValueError(
            "`audio_mask` marks the real MFCC frames of a sequence: it needs `mfcc_frames` (an integer); "
            "one MFCC vector per clip has no frame to mask. "
            f"Received: audio_mask={audio_mask!r}, mfcc_frames={mfcc_frames!r}"
        )


def check_text_arguments(sequence_length, vocabulary_size, embedding_size):
    for key, value in [("sequence_length", sequence_length), ("vocabulary_size", vocabulary_size),
                       ("embedding_size", embedding_size)]:
        check_positive_int(key, value)
    if vocabulary_size < 2:
        raise ValueError(
            "`vocabulary_size` must be at least 2 (id 0 is padding). "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )


def image_input(image_height, image_width, image_channels, name="image"):
    return keras.Input((image_height, image_width, image_channels), name=name)


def text_input(sequence_length, name="text"):
    return keras.Input((sequence_length,), dtype="int32", name=name)


def audio_input(mfcc_features_size, mfcc_frames, name="audio"):
    shape = (mfcc_features_size,) if mfcc_frames is None else (mfcc_frames, mfcc_features_size)
    return keras.Input(shape, name=name)


def mask_input(steps, name):
    """A ``(steps,)`` float32 mask input: 1.0 on real steps (frames), 0.0 on padding."""
    return keras.Input((steps,), name=name)


def conv_blocks(conv_filters, name):
    """The document's Conv2D(32, 3x3, relu), one per entry of ``conv_filters``, pooled to a vector.

    Blocks after the first are preceded by 2x2 max pooling; global average pooling
    turns the last feature map into a ``(batch, conv_filters[-1])`` vector.
    """
    stack = []
    for index, filters in enumerate(conv_filters):
        if index:
            stack.append(layers.MaxPooling2D((2, 2), name=f"{name}_pool{index}"))
        stack.append(layers.Conv2D(filters, (3, 3), activation="relu", name=f"{name}_conv{index + 1}"))
    stack.append(layers.GlobalAveragePooling2D(name=f"{name}_global_pool"))
    return stack


def image_encoder(image, conv_filters, name="image"):
    """``(batch, h, w, c)`` image -> ``(batch, conv_filters[-1])`` vector."""
    x = image
    for layer in conv_blocks(conv_filters, name):
        x = layer(x)
    return x


def text_encoder(tokens, vocabulary_size, embedding_size, name="text"):
    """Token ids (0 = padding) -> the mean of their embeddings over the real tokens."""
    embedded = layers.Embedding(vocabulary_size, embedding_size, mask_zero=True, name=f"{name}_tokens")(tokens)
    return MaskedPooling("mean", name=f"{name}_pool")(embedded)


def audio_encoder(mfcc, audio_units, name="audio", mask=None):
    """The document's Dense(128, relu) on an MFCC vector, or on each MFCC frame then averaged over time.

    ``mask``: a ``(batch, frames)`` mask of the real MFCC frames (1 real, 0 padding); the
    mean over time is over the real frames only. None: every frame is real.
    """
    x = layers.Dense(audio_units, activation="relu", name=f"{name}_dense")(mfcc)
    if len(mfcc.shape) == 3:
        x = MaskedPooling("mean", name=f"{name}_pool")(x, mask=mask)
    return x


@keras.saving.register_keras_serializable(package="mmzoo")
class EmotionRecognition(MultimodalModel):
    """Text tokens, MFCC audio and a face image, each pooled to a vector, concatenated (or fused by name), softmax.

    Document 004 §5.1: token embeddings (Embedding(vocabulary_size, embedding_size))
    averaged over the real tokens (id 0 is padding); Dense(128, relu) on the MFCC
    features; a Conv2D(32, 3x3) CNN on the face, averaged over space; the three
    vectors concatenated and classified by a softmax over ``num_emotions`` (seven
    basic emotions, 48x48 grey faces as in FER-2013, by default). Labels are integer
    emotion ids. The document gives no values for its size names; those of its §3
    (10 tokens, a 10000-word vocabulary, 128-wide embeddings and audio) are the defaults.

    ``fusion`` picks another fusion of the three vectors by name (any key of
    :data:`mmzoo.layers.FUSIONS`): each vector whose width is not the widest of
    ``embedding_size``, ``audio_units`` and ``conv_filters[-1]`` (128 by default) is
    first projected to it by ``Dense(relu)`` (layer ``<modality>_to_fusion``), and the
    operator's output (layers named ``fusion*``) feeds the softmax.

    Args:
        sequence_length: tokens per ``text`` sequence.
        vocabulary_size: size of the token vocabulary (id 0 is padding).
        embedding_size: width of the token embeddings.
        mfcc_features_size: MFCC coefficients per audio frame.
        mfcc_frames: None: ``audio`` is one MFCC vector per clip (the document's input);
            an integer: ``audio`` is ``(mfcc_frames, mfcc_features_size)`` frames, each
            through the Dense layer and then averaged over time.
        image_height: height of the ``image`` (face) input.
        image_width: width of the ``image`` input.
        image_channels: channels of the ``image`` input (1: grey).
        conv_filters: filters of each 3x3 convolution block of the image CNN; the document's
            single Conv2D(32) by default. The last feature map is averaged into a vector.
        audio_units: width of the document's audio Dense(128, relu).
        num_emotions: emotion classes of the softmax output.
        audio_mask: add an ``audio_mask`` input, float32 ``(mfcc_frames,)``, 1.0 on the real
            MFCC frames and 0.0 on padding: the mean over time leaves the padded frames out,
            whatever they hold. Needs ``mfcc_frames``. False (default): every frame counts.
        fusion: how the text, audio and image vectors are fused: ``"concat"`` (the
            document) or another key of :data:`mmzoo.layers.FUSIONS` (see above).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("emotion", mfcc_frames=20)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> {key: value.shape for key, value in sorted(x.items())}
    {'audio': (2, 20, 128), 'image': (2, 48, 48, 1), 'text': (2, 10)}
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 7)
    >>> model = mmzoo.build("emotion", mfcc_frames=20, fusion="gmu")
    >>> tuple(model.predict(x, verbose=0).shape)
    (2, 7)
    """

    def __init__(
        self,
        sequence_length=10,
        vocabulary_size=10000,
        embedding_size=128,
        mfcc_features_size=128,
        mfcc_frames=None,
        image_height=48,
        image_width=48,
        image_channels=1,
        conv_filters=(32,),
        audio_units=128,
        num_emotions=7,
        audio_mask=False,
        fusion="concat",
        **kwargs,
    ):
        check_text_arguments(sequence_length, vocabulary_size, embedding_size)
        check_audio_arguments(mfcc_features_size, mfcc_frames, audio_units, audio_mask)
        conv_filters = check_image_arguments(image_height, image_width, image_channels, conv_filters)
        check_positive_int("num_emotions", num_emotions)
        check_choice("fusion", fusion, tuple(FUSIONS))
        inputs = {
            "text": text_input(sequence_length),
            "audio": audio_input(mfcc_features_size, mfcc_frames),
            "image": image_input(image_height, image_width, image_channels),
        }
        if audio_mask:
            inputs["audio_mask"] = mask_input(mfcc_frames, "audio_mask")
        text = text_encoder(inputs["text"], vocabulary_size, embedding_size)
        audio = audio_encoder(inputs["audio"], audio_units, mask=inputs.get("audio_mask"))
        image = image_encoder(inputs["image"], conv_filters)
        if fusion == "concat":  # the document's
            merged = ConcatFusion(name="merged_embedding")([text, audio, image])
        else:
            width = max(embedding_size, audio_units, conv_filters[-1])
            merged = fuse_by_name(fusion, {"text": text, "audio": audio, "image": image}, width)
        outputs = classifier(num_emotions, name="emotion")(merged)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets=target_kind(num_emotions),
            token_ranges={"text": (1, vocabulary_size)},
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="mmzoo")
class FaceRecognition(MultimodalModel):
    """Face image, voice MFCC and a video clip fused into an identity embedding; softmax over identities.

    Document 004 §5.2: a Conv2D(32, 3x3) CNN on the ``image``, averaged over space;
    Dense(128, relu) on the ``audio`` MFCC; the ``video`` clip of ``frame_count``
    frames goes through one per-frame CNN (the same weights for every frame, by
    ``TimeDistributed``) and the frame vectors are pooled over time. The three
    vectors are concatenated and projected to an ``embedding_dim`` identity vector,
    which feeds the softmax over ``num_faces`` (output ``face``, integer labels) and,
    L2-normalised, is the ``embedding`` output for verification (compare two faces by
    the dot product of their embeddings; it has no target of its own). The document
    gives no sizes; 64x64 RGB faces and 16-frame clips are the defaults.

    ``fusion`` picks another fusion of the three vectors by name (any key of
    :data:`mmzoo.layers.FUSIONS`): each vector whose width is not the wider of
    ``conv_filters[-1]`` and ``audio_units`` (128 by default) is first projected to it
    by ``Dense(relu)`` (layer ``<modality>_to_fusion``), and the operator's output
    (layers named ``fusion*``) is projected to the identity embedding.

    Args:
        image_height: height of the ``image`` input and of each video frame.
        image_width: width of the ``image`` input and of each video frame.
        image_channels: channels of the ``image`` input and of each video frame.
        frame_count: frames per ``video`` clip.
        mfcc_features_size: MFCC coefficients per audio frame.
        mfcc_frames: None: ``audio`` is one MFCC vector per clip (the document's input);
            an integer: ``audio`` is ``(mfcc_frames, mfcc_features_size)`` frames, each
            through the Dense layer and then averaged over time.
        conv_filters: filters of each 3x3 convolution block of the image CNN and of the
            per-frame CNN; the document's single Conv2D(32) by default.
        audio_units: width of the document's audio Dense(128, relu).
        temporal_pooling: how the frame vectors become one: ``"mean"``, ``"max"`` or
            ``"attention"`` (learned weights over frames).
        embedding_dim: width of the identity embedding.
        num_faces: identities of the softmax output.
        video_mask: add a ``video_mask`` input, float32 ``(frame_count,)``, 1.0 on the real
            frames and 0.0 on padding (the loaders yield it with ``video_pad="zeros"``): the
            temporal pooling leaves the padded frames out, whatever they hold. False
            (default): every frame counts, black padding frames included.
        audio_mask: add an ``audio_mask`` input, float32 ``(mfcc_frames,)``, 1.0 on the real
            MFCC frames and 0.0 on padding: the mean over time leaves the padded frames out.
            Needs ``mfcc_frames``.
        fusion: how the image, audio and video vectors are fused: ``"concat"`` (the
            document) or another key of :data:`mmzoo.layers.FUSIONS` (see above).

    Example:
    >>> import mmzoo
    >>> model = mmzoo.build("face_recognition", image_height=16, image_width=16, frame_count=4)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=2)
    >>> x["video"].shape, sorted(y)
    ((2, 4, 16, 16, 3), ['face'])
    >>> outputs = model.predict(x, verbose=0)
    >>> outputs["face"].shape, outputs["embedding"].shape
    ((2, 10), (2, 128))
    >>> model = mmzoo.build("face_recognition", image_height=16, image_width=16, frame_count=4,
    ...                     fusion="cross_attention")
    >>> model.predict(x, verbose=0)["embedding"].shape
    (2, 128)
    """

    def __init__(
        self,
        image_height=64,
        image_width=64,
        image_channels=3,
        frame_count=16,
        mfcc_features_size=128,
        mfcc_frames=None,
        conv_filters=(32,),
        audio_units=128,
        temporal_pooling="mean",
        embedding_dim=128,
        num_faces=10,
        video_mask=False,
        audio_mask=False,
        fusion="concat",
        **kwargs,
    ):
        conv_filters = check_image_arguments(image_height, image_width, image_channels, conv_filters)
        check_positive_int("frame_count", frame_count)
        check_bool("video_mask", video_mask)
        check_audio_arguments(mfcc_features_size, mfcc_frames, audio_units, audio_mask)
        check_choice("temporal_pooling", temporal_pooling, TEMPORAL_POOLING)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("num_faces", num_faces)
        check_choice("fusion", fusion, tuple(FUSIONS))
        frame_shape = (image_height, image_width, image_channels)
        inputs = {
            "image": image_input(*frame_shape),
            "audio": audio_input(mfcc_features_size, mfcc_frames),
            "video": keras.Input((frame_count,) + frame_shape, name="video"),
        }
        if video_mask:
            inputs["video_mask"] = mask_input(frame_count, "video_mask")
        if audio_mask:
            inputs["audio_mask"] = mask_input(mfcc_frames, "audio_mask")
        image = image_encoder(inputs["image"], conv_filters)
        audio = audio_encoder(inputs["audio"], audio_units, mask=inputs.get("audio_mask"))
        frame_cnn = keras.Sequential(conv_blocks(conv_filters, "frame"), name="frame_cnn")
        frames = layers.TimeDistributed(frame_cnn, name="per_frame_cnn")(inputs["video"])
        if temporal_pooling == "attention":
            pooling = AttentionPooling(conv_filters[-1], name="temporal_pool")
        else:
            pooling = MaskedPooling(temporal_pooling, name="temporal_pool")
        video = pooling(frames, mask=inputs.get("video_mask"))
        if fusion == "concat":  # the document's
            merged = ConcatFusion(name="merged_embedding")([image, audio, video])
        else:
            width = max(conv_filters[-1], audio_units)
            merged = fuse_by_name(fusion, {"image": image, "audio": audio, "video": video}, width)
        identity = layers.Dense(embedding_dim, name="identity")(merged)
        outputs = {
            "face": classifier(num_faces, name="face")(identity),
            "embedding": UnitNormalization(name="embedding", dtype="float32")(identity),
        }
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets={"face": target_kind(num_faces), "embedding": None},
            **kwargs,
        )


_POOLING_CORRECTION = "{what} concatenated with 2-D vectors; every branch is pooled to a vector first"
_EMBEDDING_CORRECTION = (
    "the 3-D token embeddings were concatenated as they were; they are averaged over "
    "the real tokens (id 0 is padding, masked)"
)
_LABEL_CORRECTION = (
    "categorical cross-entropy on one-hot labels that were never made; integer labels "
    "with sparse categorical cross-entropy"
)
AUDIO_MASK_OPTION = (
    "option `audio_mask` (with `mfcc_frames`): a (mfcc_frames,) mask input (1 real frame, 0 padding); "
    "padded MFCC frames take no part in the mean over time"
)
_UNDEFINED_CORRECTION = (
    "{names} were undefined; they are arguments (document 004 §3's sizes where it has them)"
)
FUSION_OPTION = (
    "option `fusion`: the three modality vectors fused by any operator of mmzoo.layers.FUSIONS instead "
    "of concatenated (a narrower vector first projected to the widest one's width)"
)


@register_model(
    source="004 §5.1",
    task="emotion classification from text, voice and a face image",
    corrections=(
        _POOLING_CORRECTION.format(what="the 4-D Conv2D feature map was"),
        _EMBEDDING_CORRECTION,
        _LABEL_CORRECTION,
        _UNDEFINED_CORRECTION.format(
            names="`sequence_length`, `vocabulary_size`, `embedding_size`, `mfcc_features_size`, "
            "the image size and `num_emotions`"
        ),
        "option `mfcc_frames`: audio as a sequence of MFCC frames, averaged over time after the Dense layer",
        AUDIO_MASK_OPTION,
        FUSION_OPTION,
    ),
    test_config={
        "sequence_length": 6, "vocabulary_size": 30, "embedding_size": 8, "mfcc_features_size": 64,
        "image_height": 12, "image_width": 12, "conv_filters": (4, 8), "audio_units": 64, "num_emotions": 3,
    },
)
def emotion(**kwargs):
    """Emotion recognition: text, MFCC audio and a face, pooled, concatenated, softmax over 7 emotions."""
    return EmotionRecognition(**kwargs)


@register_model(
    source="004 §5.2",
    task="face identification (softmax) and verification (L2-normalised embedding) from image, voice and video",
    corrections=(
        _POOLING_CORRECTION.format(what="the 4-D image and 5-D video feature maps were"),
        "the 5-D video went through Conv2D; one per-frame CNN (TimeDistributed, shared "
        "weights) and pooling over time",
        "optical flow, named in the text, is not computed; the per-frame CNN sees the raw frames",
        _LABEL_CORRECTION,
        "an L2-normalised identity `embedding` output is added for verification (no target)",
        "option `video_mask`: a (frame_count,) mask input (1 real frame, 0 padding, as the loaders "
        "yield with video_pad='zeros'); padded frames take no part in the temporal pooling",
        "option `mfcc_frames`: audio as a sequence of MFCC frames, averaged over time after the Dense layer",
        AUDIO_MASK_OPTION,
        FUSION_OPTION,
        _UNDEFINED_CORRECTION.format(
            names="the image size, `frame_count`, `mfcc_features_size` and `num_faces`"
        ),
    ),
    test_config={
        "image_height": 10, "image_width": 10, "frame_count": 3, "mfcc_features_size": 64,
        "conv_filters": (4, 8), "audio_units": 64, "temporal_pooling": "attention", "embedding_dim": 16,
        "num_faces": 4,
    },
)
def face_recognition(**kwargs):
    """Face recognition: face image, voice MFCC and per-frame CNN video fused; softmax plus L2 embedding."""
    return FaceRecognition(**kwargs)
