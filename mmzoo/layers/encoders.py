"""Per-modality encoders: raw input in, one ``(batch, width)`` vector out.

Each builder returns a small functional ``keras.Model`` named ``<input key>_encoder`` that
a multimodal model calls on its input, so that the encoder of a modality is one object
(``model.get_layer("image_encoder")``) that can be frozen, swapped or reused. Every
encoder standardises its raw input inside the model with :class:`Standardization`,
whose statistics are weights adapted on the training split (``mmzoo.train`` adapts
them before the first epoch; :func:`adapt_standardization` does it by hand):

- :func:`image_cnn_encoder`: a residual CNN with batch normalisation, pooled late to a
  coarse grid so that *where* a stroke is still counts, then a dense layer;
- :func:`application_image_encoder`: any ``keras.applications`` backbone by name;
- :func:`audio_spectrogram_encoder`: raw waveform -> log-mel (in the graph) -> a 2-D CNN
  over the spectrogram -> mean and max over the real (non-silent) frames;
- :func:`text_sequence_encoder`: token ids -> embedding -> (a bag of words, a bidirectional
  GRU or a small transformer block) -> mean and max over the real tokens;
- :func:`video_encoder`: an image encoder on every frame (shared weights) -> attention
  pooling over the real (not all-zero) frames;
- :func:`features_encoder`: a standardised feature vector -> a two-layer MLP.
"""

import keras
import numpy as np
from keras import layers, ops

from mmzoo.layers.audio import LogMelSpectrogram
from mmzoo.layers.normalization import Standardization
from mmzoo.layers.pooling import AttentionPooling, MaskedPooling, PresenceGate
from mmzoo.layers.preprocessing import CaffeImagePreprocessing
from mmzoo.validation import check_choice, check_filters, check_positive_int, check_rate

MODALITIES = ("image", "audio", "text", "video", "features")
TEXT_ENCODERS = ("bag", "gru", "transformer")


def modality_of(key):
    """The modality of an input from its name: ``image*``, ``audio*``, ``text*``, ``video*``, ``features*``."""
    for modality in MODALITIES:
        if str(key).lower().startswith(modality):
            return modality
    raise ValueError(
        f"Cannot tell the modality of input {key!r}: input names start with one of "
        f"{', '.join(MODALITIES)} (e.g. 'image', 'image_left', 'audio'). Received: {key!r}"
    )


@keras.saving.register_keras_serializable(package="mmzoo")
class RealSteps(layers.Layer):
    """``(batch, steps)`` mask, 1.0 where a step holds anything but the example's lowest value.

    A zero-padded video frame (all zeros) or the log-mel frames of zero-padded audio (every
    bin at the example's floor) are padding; any step with one value above the example's
    minimum is real. An example with no real step gets all zeros (its pooled vector is zero).

    Example:
    >>> frames = np.array([[[0.2, 0.0], [0.0, 0.0]]], "float32")
    >>> keras.ops.convert_to_numpy(RealSteps()(frames)).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, tolerance=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.tolerance = float(tolerance)

    def call(self, inputs):
        flat = ops.reshape(ops.cast(inputs, "float32"), (ops.shape(inputs)[0], ops.shape(inputs)[1], -1))
        lowest = ops.min(flat, axis=(1, 2), keepdims=True)
        return ops.cast(ops.max(flat - lowest, axis=-1) > self.tolerance, "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def get_config(self):
        return {**super().get_config(), "tolerance": self.tolerance}


@keras.saving.register_keras_serializable(package="mmzoo")
class SampleMaskFrames(layers.Layer):
    """A per-sample mask ``(batch, samples)`` -> a per-frame mask ``(batch, frames)`` of a centred STFT.

    Frame ``t`` is centred on sample ``t * hop_length``; it is real when any sample within half
    a hop of its centre is real.

    Example:
    >>> mask = np.array([[1.0] * 250 + [0.0] * 150], "float32")
    >>> keras.ops.convert_to_numpy(SampleMaskFrames(100, 5)(mask)).tolist()
    [[1.0, 1.0, 1.0, 0.0, 0.0]]
    """

    def __init__(self, hop_length, frames, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("hop_length", hop_length)
        check_positive_int("frames", frames)
        self.hop_length = hop_length
        self.frames = frames

    def call(self, inputs):  # `inputs`: an argument named `mask` is Keras' own
        real = ops.cast(ops.greater(ops.cast(inputs, "float32"), 0.5), "float32")
        half = self.hop_length // 2
        total = self.frames * self.hop_length
        padded = ops.pad(real, [[0, 0], [half, max(0, total - half - ops.shape(real)[1])]])[:, :total]
        return ops.max(ops.reshape(padded, (-1, self.frames, self.hop_length)), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.frames)

    def get_config(self):
        return {**super().get_config(), "hop_length": self.hop_length, "frames": self.frames}


def _conv_bn(x, filters, kernel_size, name, strides=1, activation="relu"):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_{activation}")(x) if activation else x


def _residual_block(x, filters, name):
    """Two 3x3 convolutions with batch normalisation and an identity (or 1x1) shortcut."""
    shortcut = x if x.shape[-1] == filters else _conv_bn(x, filters, 1, f"{name}_shortcut", activation=None)
    y = _conv_bn(x, filters, 3, f"{name}_a")
    y = _conv_bn(y, filters, 3, f"{name}_b", activation=None)
    return layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


# Inputs whose smaller side is at least this get a stride-2 stem (a quarter of the work in every
# block). Measured on the real check set (benchmarks/real_data.py): a stride-2 stem on 48x48 word
# images cost 21 points of accuracy (0.81 -> 0.60), on 101x40 log-mel spectrograms nothing
# (0.88, against 0.71 for a logistic regression) and halved the time; so images keep their
# resolution up to 96 pixels a side.
STRIDED_STEM_FROM = {"image": 96, "spectrogram": 32}


def stem_stride(height, width, kind="image"):
    """2 (a stride-2 stem) for inputs of :data:`STRIDED_STEM_FROM` or more a side, else 1."""
    return 2 if min(height, width) >= STRIDED_STEM_FROM[kind] else 1


def cnn_output_size(size, filters, stride):
    """The side of :func:`_residual_cnn`'s output for an input side of ``size``."""
    size = -(-size // stride)  # the stem, "same" padding
    for _ in filters[1:]:
        size //= 2  # 2x2 max pooling, "valid"
    return size


def _residual_cnn(x, filters, name, stride=1):
    """Stem (stride ``stride``), then one residual block per entry of ``filters``, 2x2 max pooling between blocks."""
    x = _conv_bn(x, filters[0], 3, f"{name}_stem", strides=stride)
    for index, width in enumerate(filters):
        if index:
            x = layers.MaxPooling2D(2, name=f"{name}_pool{index}")(x)
        x = _residual_block(x, width, f"{name}_block{index + 1}")
    return x


def image_cnn_encoder(
    input_shape,
    width=128,
    filters=(16, 32, 64),
    grid=3,
    dropout=0.0,
    standardize=True,
    input_name="image",
    name="image_encoder",
):
    """A residual CNN on ``(height, width, channels)`` images in [0, 1], to a ``(batch, width)`` vector.

    Pixels are standardised per channel; a stem (stride 2 for images of 96 pixels or more
    a side: :func:`stem_stride`) and ``len(filters)`` residual blocks (2x2 max pooling
    between blocks) keep the feature map at ``1/2**(len(filters)-1)`` of the stem's output; it is then average-pooled to about ``grid x grid`` cells and flattened,
    so the vector still says where in the image each feature was (a global average
    would not), and a ``Dense(width, relu)`` reads it.

    Args:
        input_shape: ``(height, width, channels)``.
        width: size of the output vector.
        filters: filters of each residual block.
        grid: cells per side of the late pooling.
        dropout: dropout rate before the dense layer.
        standardize: standardise the pixels first (False when the caller does, e.g. per clip).
        input_name: the name of its input (the model input it reads).
        name: the encoder's name.
    """
    filters = check_filters("image_filters", filters, "filters of each residual block")
    check_positive_int("grid", grid)
    check_rate("dropout", dropout)
    height, width_px = input_shape[0], input_shape[1]
    stride = stem_stride(height, width_px)
    if min(cnn_output_size(height, filters, stride), cnn_output_size(width_px, filters, stride)) < 1:
        raise ValueError(
            f"Images of {height}x{width_px} are too small for {len(filters)} residual blocks "
            f"(image_filters={filters}): each side must be at least {2 ** (len(filters) - 1)}. "
            f"Received: input shape {tuple(input_shape)}"
        )
    image = keras.Input(tuple(input_shape), name=input_name)
    x = Standardization(name="standardize")(image) if standardize else image
    x = _residual_cnn(x, filters, "cnn", stride)
    map_h, map_w = cnn_output_size(height, filters, stride), cnn_output_size(width_px, filters, stride)
    pool = (max(1, map_h // grid), max(1, map_w // grid))
    x = layers.AveragePooling2D(pool, name="grid_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(width, activation="relu", name="dense")(x)
    return keras.Model(image, x, name=name)


# name -> (keras.applications constructor, how [0, 1] RGB images are prepared for it)
APPLICATIONS = {
    "resnet50": ("ResNet50", "caffe"),
    "vgg16": ("VGG16", "caffe"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "efficientnet_b0": ("EfficientNetB0", "raw255"),
}


def application_image_encoder(
    application, input_shape, width=128, weights=None, input_name="image", name="image_encoder"
):
    """A ``keras.applications`` backbone (without its top, average-pooled) and ``Dense(width, relu)``.

    Images are RGB (a grey image is repeated to three channels) in [0, 1]; each backbone
    gets the preprocessing its weights were trained with.

    Args:
        application: a key of :data:`APPLICATIONS` (``"resnet50"``, ``"vgg16"``,
            ``"mobilenet_v2"``, ``"efficientnet_b0"``).
        input_shape: ``(height, width, channels)``, channels 1 or 3.
        width: size of the output vector.
        weights: None or ``"imagenet"`` (downloaded by Keras into its cache on first use).
        input_name: the name of its input (the model input it reads).
        name: the encoder's name.
    """
    from mmzoo.models.blocks import imagenet_backbone

    check_choice("image_encoder", application, ("cnn", *APPLICATIONS))
    if weights not in (None, "imagenet"):
        raise ValueError(f"`image_weights` must be None or 'imagenet'. Received: image_weights={weights!r}")
    constructor, preparation = APPLICATIONS[application]
    image = keras.Input(tuple(input_shape), name=input_name)
    x = image
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    elif input_shape[-1] != 3:
        raise ValueError(
            f"keras.applications backbones take 1 or 3 channels. Received: input shape {tuple(input_shape)}"
        )
    if preparation == "caffe":
        x = CaffeImagePreprocessing(name="preprocess")(x)
    elif preparation == "tf":
        x = layers.Rescaling(2.0, offset=-1.0, name="preprocess")(x)
    else:
        x = layers.Rescaling(255.0, name="preprocess")(x)
    backbone = imagenet_backbone(
        getattr(keras.applications, constructor), tuple(input_shape[:2]) + (3,), weights, name=application
    )
    x = layers.Dense(width, activation="relu", name="dense")(backbone(x))
    return keras.Model(image, x, name=name)


def audio_spectrogram_encoder(
    samples,
    sample_rate=16000,
    width=128,
    filters=(16, 32, 64),
    num_mel_bins=40,
    fft_length=512,
    hop_length=160,
    sample_mask=False,
    input_name="audio",
    name="audio_encoder",
):
    """Raw waveforms ``(batch, samples)`` -> log-mel -> standardised -> 2-D CNN -> ``(batch, width)``.

    The log-mel spectrogram (:class:`LogMelSpectrogram`) is computed in the graph, so the
    model (and its export) takes waveforms. Each mel band is standardised, a residual CNN
    reads the ``(frames, mel)`` image, every remaining frame is projected to ``width``, and
    the mean and the maximum over the real frames (silence, e.g. zero padding, excluded)
    are concatenated and projected to ``width``.

    Args:
        samples: waveform length (clip length times sample rate).
        sample_rate: the waveforms' sample rate in Hz.
        width: size of the output vector.
        filters: filters of each residual block.
        num_mel_bins, fft_length, hop_length: the spectrogram's (25-32 ms windows, 10 ms hops
            at 16 kHz by default).
        sample_mask: also take ``<input_name>_mask`` ``(batch, samples)`` (1 real, 0 padding, as
            ``from_directory`` yields for clips padded to ``audio_length``): padded samples are
            zeroed before the spectrogram, whatever they held, and the frames they fill are
            left out of the pooling. Without it, silent frames are taken for padding.
        input_name: the name of the waveform input (the mask's is ``<input_name>_mask``).
        name: the encoder's name.
    """
    filters = check_filters("audio_filters", filters, "filters of each residual block")
    for key, value in [("samples", samples), ("sample_rate", sample_rate), ("num_mel_bins", num_mel_bins),
                       ("fft_length", fft_length), ("hop_length", hop_length)]:
        check_positive_int(key, value)
    if samples <= fft_length // 2:
        raise ValueError(
            f"Audio clips of {samples} samples are shorter than half an FFT window ({fft_length // 2}); "
            f"use longer clips or a smaller fft_length. Received: samples={samples}, fft_length={fft_length}"
        )
    frames = samples // hop_length + 1
    stride = stem_stride(frames, num_mel_bins, "spectrogram")
    out_frames, out_bins = cnn_output_size(frames, filters, stride), cnn_output_size(num_mel_bins, filters, stride)
    if min(out_frames, out_bins) < 1:
        raise ValueError(
            f"{frames} spectrogram frames x {num_mel_bins} mel bands are too few for {len(filters)} residual "
            f"blocks (audio_filters={filters}): each must be at least {2 ** (len(filters) - 1)}."
        )
    wave = keras.Input((samples,), name=input_name)
    inputs = wave
    if sample_mask:
        mask = keras.Input((samples,), name=f"{input_name}_mask")
        inputs = [wave, mask]
        wave = PresenceGate(name="real_samples")(wave, mask)
    mel = LogMelSpectrogram(
        sample_rate=sample_rate, fft_length=fft_length, hop_length=hop_length, num_mel_bins=num_mel_bins,
        name="log_mel",
    )(wave)
    if sample_mask:
        real = SampleMaskFrames(hop_length, frames, name="real_frames")(mask)
    else:
        real = RealSteps(name="real_frames")(mel)
    x = Standardization(name="standardize")(mel)
    x = layers.Reshape((frames, num_mel_bins, 1), name="as_image")(x)
    x = _residual_cnn(x, filters, "cnn", stride)
    x = layers.Reshape((out_frames, out_bins * filters[-1]), name="frames")(x)
    x = layers.Dense(width, activation="relu", name="frame_dense")(x)
    if out_frames != frames:  # a pooled frame is real when any frame it covers is: the CNN's poolings, in 1-D
        real = layers.Reshape((frames, 1), name="real_frames_column")(real)
        if stride > 1:
            real = layers.MaxPooling1D(stride, padding="same", name="real_frames_stem")(real)
        for index in range(1, len(filters)):
            real = layers.MaxPooling1D(2, name=f"real_frames_pool{index}")(real)
        real = layers.Reshape((out_frames,), name="real_frames_pooled")(real)
    mean = MaskedPooling("mean", name="mean_pool")(x, mask=real)
    peak = MaskedPooling("max", name="max_pool")(x, mask=real)
    x = layers.Dense(width, activation="relu", name="dense")(layers.Concatenate(name="pools")([mean, peak]))
    return keras.Model(inputs, x, name=name)


def text_sequence_encoder(
    sequence_length,
    vocabulary_size,
    width=128,
    embedding_size=64,
    kind="bag",
    num_heads=2,
    input_name="text",
    name="text_encoder",
):
    """Token ids ``(batch, sequence_length)`` (0 = padding) -> ``(batch, width)``.

    ``kind="bag"``: the embeddings themselves (a bag of words: order is ignored);
    ``kind="gru"``: a bidirectional GRU; ``kind="transformer"``: learned positions and one
    transformer encoder block (self-attention over the real tokens, then a feed-forward
    layer, each with a residual connection and layer normalisation). Either way, the mean
    and the maximum over the real tokens are concatenated and projected to ``width``.

    The bag is the default: on the real check set's captions (benchmarks/real_data.py;
    2,550 training texts, whose words, not their order, carry the class) it reached 0.57
    test accuracy in 0.5 s an epoch, the GRU 0.39 in 2 s (it fits the training texts
    within a few epochs and stops improving on the others).

    Args:
        sequence_length: tokens per text.
        vocabulary_size: token ids run from 0 (padding) to ``vocabulary_size - 1``.
        width: size of the output vector.
        embedding_size: size of the token embeddings.
        kind: ``"bag"``, ``"gru"`` or ``"transformer"``.
        num_heads: attention heads of the transformer block.
        input_name: the name of its input (the model input it reads).
        name: the encoder's name.
    """
    check_choice("text_encoder", kind, TEXT_ENCODERS)
    for key, value in [("sequence_length", sequence_length), ("vocabulary_size", vocabulary_size),
                       ("embedding_size", embedding_size), ("num_heads", num_heads)]:
        check_positive_int(key, value)
    tokens = keras.Input((sequence_length,), dtype="int32", name=input_name)
    embedded = layers.Embedding(vocabulary_size, embedding_size, mask_zero=True, name="tokens")(tokens)
    if kind == "bag":
        x = embedded
    elif kind == "gru":
        x = layers.Bidirectional(
            layers.GRU(max(1, width // 2), return_sequences=True), merge_mode="concat", name="bigru"
        )(embedded)
    else:
        positions = PositionEmbedding(sequence_length, embedding_size, name="positions")(embedded)
        attended = layers.MultiHeadAttention(
            num_heads, max(1, embedding_size // num_heads), name="self_attention"
        )(positions, positions)
        x = layers.LayerNormalization(name="attention_norm")(layers.Add(name="attention_add")([positions, attended]))
        hidden = layers.Dense(2 * embedding_size, activation="relu", name="ffn_hidden")(x)
        x = layers.LayerNormalization(name="ffn_norm")(
            layers.Add(name="ffn_add")([x, layers.Dense(embedding_size, name="ffn_out")(hidden)])
        )
    mean = MaskedPooling("mean", name="mean_pool")(x)
    peak = MaskedPooling("max", name="max_pool")(x)
    x = layers.Dense(width, activation="relu", name="dense")(layers.Concatenate(name="pools")([mean, peak]))
    return keras.Model(tokens, x, name=name)


@keras.saving.register_keras_serializable(package="mmzoo")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each position to a ``(batch, steps, features)`` sequence; keeps its mask.

    Example:
    >>> tuple(PositionEmbedding(5, 3)(keras.ops.zeros((2, 5, 3))).shape)
    (2, 5, 3)
    """

    def __init__(self, sequence_length, features, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("sequence_length", sequence_length)
        check_positive_int("features", features)
        self.sequence_length = sequence_length
        self.features = features
        self.supports_masking = True

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions", shape=(self.sequence_length, self.features), initializer="uniform"
        )

    def call(self, inputs):
        return inputs + ops.cast(self.positions, inputs.dtype)[None, : ops.shape(inputs)[1]]

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length, "features": self.features}


def video_encoder(input_shape, frame_encoder, width=128, frame_mask=False, input_name="video", name="video_encoder"):
    """Clips ``(batch, frames, h, w, c)`` -> ``frame_encoder`` on every frame -> attention over real frames.

    Args:
        input_shape: ``(frames, height, width, channels)``.
        frame_encoder: an image encoder (e.g. :func:`image_cnn_encoder` with ``standardize=False``:
            the clip is standardised per channel here) for ``input_shape[1:]``; every frame goes
            through the same weights.
        width: the attention scorer's width.
        frame_mask: also take ``<input_name>_mask`` ``(batch, frames)`` (1 real, 0 padding, as
            ``from_directory(video_pad="zeros")`` yields): padded frames are zeroed, whatever they
            held, and left out of the pooling. Without it, all-zero frames are taken for padding.
        input_name: the name of the clip input (the mask's is ``<input_name>_mask``).
        name: the encoder's name.
    """
    clip = keras.Input(tuple(input_shape), name=input_name)
    inputs = clip
    if frame_mask:
        mask = keras.Input((input_shape[0],), name=f"{input_name}_mask")
        inputs = [clip, mask]
        real = mask  # the pooling reads values above 0.5 as real frames
        clip = PresenceGate(name="real_frames_only")(clip, mask)
    else:
        real = RealSteps(name="real_frames")(clip)
    x = Standardization(name="standardize")(clip)
    frames = layers.TimeDistributed(frame_encoder, name="frames")(x)
    x = AttentionPooling(width, name="attention_pool")(frames, mask=real)
    return keras.Model(inputs, x, name=name)


def features_encoder(input_dim, width=128, dropout=0.0, input_name="features", name="features_encoder"):
    """A feature vector ``(batch, input_dim)`` (input ``input_name``) -> standardised -> ``Dense(width, relu)`` x 2."""
    check_positive_int("input_dim", input_dim)
    check_rate("dropout", dropout)
    features = keras.Input((input_dim,), name=input_name)
    x = Standardization(name="standardize")(features)
    x = layers.Dense(width, activation="relu", name="dense1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(width, activation="relu", name="dense2")(x)
    return keras.Model(features, x, name=name)


# --- adapting the statistics ------------------------------------------------------------------


def _walk(model):
    """Every layer of ``model`` and of the models nested in it (wrappers' inner layers too)."""
    for layer in model.layers:
        yield layer
        inner = getattr(layer, "layer", None)  # TimeDistributed, Bidirectional's forward layer
        for candidate in (layer, inner):
            if isinstance(candidate, keras.Model):
                yield from _walk(candidate)


def standardization_layers(model):
    """Every :class:`Standardization` layer in ``model``, nested models included."""
    return [layer for layer in _walk(model) if isinstance(layer, Standardization)]


def _inputs_of(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def adapt_standardization(model, batches, max_examples=4096, force=False):
    """Adapt the :class:`Standardization` layers of ``model`` that have no statistics yet.

    For each such layer, the part of the model from the raw input to the layer is run on
    the batches (``(inputs, targets)`` or inputs, dicts keyed like the model's inputs) until
    ``max_examples`` examples are seen, and the layer's statistics are set from what
    reaches it. Layers adapted already (e.g. loaded from a trained model) are left as they
    are unless ``force``.

    Returns:
        The names of the layers adapted.
    """
    pending = [layer for layer in standardization_layers(model) if force or not layer.is_adapted]
    if not pending:
        return []
    probes = {}
    for encoder in _encoders_holding(model, pending):
        for layer in encoder.layers:
            if layer in pending:
                probes[layer] = (encoder, keras.Model(encoder.input, layer.input))
    values = {layer: [] for layer in probes}
    seen = 0
    for batch in batches:
        inputs = _inputs_of(batch)
        for layer, (encoder, probe) in probes.items():
            values[layer].append(np.asarray(probe(_feed(model, encoder, inputs), training=False)))
        seen += len(next(iter(inputs.values())) if isinstance(inputs, dict) else inputs)
        if seen >= max_examples:
            break
    for layer, collected in values.items():
        layer.adapt(collected)
    return [layer.name for layer in probes]


def _encoders_holding(model, layers_):
    """The nested encoder models whose own layers include one of ``layers_``."""
    return [
        layer for layer in _walk(model) if isinstance(layer, keras.Model) and any(sub in layers_ for sub in layer.layers)
    ]


def _feed(model, encoder, inputs):
    """What ``encoder`` takes, from a batch of the model's inputs: its inputs are named like the model's."""
    if not isinstance(inputs, dict):
        return inputs
    names = [tensor._keras_history.operation.name for tensor in encoder.inputs]
    missing = [name for name in names if name not in inputs]
    if missing:
        raise ValueError(
            f"Cannot feed encoder {encoder.name!r}: it takes {names}, and the data has {sorted(inputs)}."
        )
    return inputs[names[0]] if len(names) == 1 else [inputs[name] for name in names]


__all__ = [
    "APPLICATIONS",
    "MODALITIES",
    "PositionEmbedding",
    "RealSteps",
    "SampleMaskFrames",
    "adapt_standardization",
    "application_image_encoder",
    "audio_spectrogram_encoder",
    "features_encoder",
    "image_cnn_encoder",
    "modality_of",
    "standardization_layers",
    "text_sequence_encoder",
    "video_encoder",
]
