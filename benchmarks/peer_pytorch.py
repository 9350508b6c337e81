"""Training samples per second against a PyTorch peer: ``mmzoo.train`` against the same networks in plain PyTorch.

For each model, the Keras model built by ``mmzoo.build`` and a PyTorch twin written here
with the same layers, sizes and masking (the classes below) train side by side in one
process, from the same initial weights (copied from Keras into PyTorch), on the same
examples (``mmzoo.data.synthetic_arrays``), the same number of steps each:

- ours: ``mmzoo.train(model, dataset, epochs=E, verbose=0, jit_compile=J,
  early_stopping_patience=None, reduce_lr_patience=None)`` on the tf.data pipeline of
  ``train_throughput.py`` (cached, reshuffled each epoch, batched, prefetched); ``J`` is
  ``--jit`` (``"auto"`` by default: mmzoo's own choice);
- pytorch eager: a standard loop over the same arrays as tensors in memory (images
  transposed to channels-first once, before any timing): each epoch a ``torch.randperm``
  order, and per minibatch ``zero_grad``, forward, loss, ``backward``, ``step``;
- pytorch torch.compile: the same loop on ``torch.compile(net)`` (a copy from the same
  weights). Its compilation runs in an untimed step before the warm-up; if it fails, the
  reason is logged and that model gets no torch.compile row.

Both sides use the model's ``default_compile_arguments()``: Adam with Keras' defaults
(learning rate 1e-3, betas 0.9/0.999, epsilon 1e-7) and binary or sparse categorical
cross-entropy (in PyTorch on the logits: ``BCEWithLogitsLoss``, ``CrossEntropyLoss``, the
same loss). Everything is float32; ``torch.set_num_threads`` is left at its default
(logged). Two differences of the optimizers remain, neither of them a cost: Keras adds
epsilon before Adam's bias correction (``epsilon / sqrt(1 - beta_2**t)`` after it, 3.2e-6
at the first step, falling to 1e-7), which matters only for gradients that small;
PyTorch updates batch normalisation's running variance with the unbiased batch variance
(Keras with the biased one). The tests check the rest to rounding:
same outputs, same loss, and after one step the same weights.

The twins, with what differs from Keras:

- ``attention_fusion`` and ``mha_fusion``: Keras' masked LSTM skips every padded step
  (id 0); the twin runs ``nn.LSTM`` over the padded sequence and takes the output at each
  sequence's last real token (a zero vector for an all-padding sequence, as Keras'
  initial state), which is the same computation for right-padded text, what
  ``synthetic_arrays`` and the loaders give (a zero inside a text would be skipped by
  Keras and not here). ``nn.LSTM`` has two bias vectors (``bias_ih``, ``bias_hh``) where
  Keras has one: 4 x units more trainable parameters per LSTM (256 at the default 64
  units), ``bias_hh`` starting at zero. Multi-head attention is written out (``nn.
  MultiheadAttention`` cannot have a head size other than ``embed_dim / num_heads``) with
  Keras' mask: padded keys get -1e9 before the softmax, and the attention output is
  averaged over the real tokens.
- ``emotion``: embeddings averaged over the real tokens, Dense on the MFCC vector, the
  valid 3x3 convolutions (2x2 max pooling between them) averaged over space.
- ``fusion_classifier`` with ``inputs={"image": (48, 48, 1), "audio": (16000,)}`` (image
  and audio only): the residual CNNs with batch normalisation (Keras' epsilon 1e-3 and
  momentum 0.99, i.e. PyTorch ``momentum=0.01``; TensorFlow's asymmetric "same" padding
  of the stride-2 stem by an explicit ``F.pad``), the image grid pooling (the dense
  layer's weights permuted for the channels-first flatten), the log-mel spectrogram in the
  network (``torch.stft``, periodic Hann window, reflect padding, Keras' HTK mel matrix,
  decibels with a per-example 80 dB floor), the per-band standardisation (its statistics
  are those ``mmzoo.train`` adapts, adapted before the copy), the mean and max over the
  non-silent frames, modality dropout (0.25), the head's dropout (0.3).

``python benchmarks/peer_pytorch.py`` trains 1024 examples x 4 epochs, batch 32 (128 steps),
median of 5 interleaved runs after a warm-up; ``--quick`` 512 examples x 2 epochs, 3 runs, eager only
(torch.compile's compilation of the four networks takes minutes here). A timed run is one
``mmzoo.train`` call, as a user trains: its tf.data iterator is torn down once at the end
(which waits on tf.data's autotuning thread, up to ~150 ms here), so runs of a single short
epoch would mostly measure that. The rows are
``peer <model>: mmzoo.train vs pytorch eager`` and ``... vs pytorch torch.compile`` (ratio
above 1: mmzoo is faster): 8 rows, 4 with ``--quick`` or ``--no-compile``. ``--small``
builds each model with its registry ``test_config`` (for the tests). ``--torch-threads N``
sets ``torch.set_num_threads(N)``: with the default (one thread per core) PyTorch's OpenMP
threads meet at a barrier after every operation, so on a machine that other processes
share a run can take 10-50 times as long (measured here at a load average of 4; TensorFlow's
thread pool slowed far less): compare on an idle machine, or see the difference with 1.
``--settle S`` (default 0.5) sleeps S seconds before each timed run: each framework leaves
its worker threads spinning after a run, and on 2 cores they take the cores from the other framework's next run (mmzoo's
mha_fusion took 0.305 s a run straight after PyTorch's, 0.146 s after a 0.5 s pause, 0.142 s
with no PyTorch in between; PyTorch gained too, 0.147 s -> 0.124 s).

    python benchmarks/peer_pytorch.py                 # 4 models, eager and torch.compile
    python benchmarks/peer_pytorch.py --quick         # eager only, 512 examples, 3 repeats
    python benchmarks/peer_pytorch.py --models emotion --jit true --json rows.json
"""

import argparse
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from common import interleaved, median, run_benchmark, speed_row  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as error:  # a benchmark-only dependency
    raise ImportError("benchmarks/peer_pytorch.py needs PyTorch: pip install torch==2.13.0") from error

DEFAULT_MODELS = ("attention_fusion", "mha_fusion", "emotion", "fusion_classifier")
# Build arguments of the benchmarked variant of each model (the document defaults otherwise).
FULL_CONFIGS = {"fusion_classifier": {"inputs": {"image": (48, 48, 1), "audio": (16000,)}}}
JIT = {"auto": "auto", "true": True, "false": False}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(DEFAULT_MODELS),
                        help="models with a PyTorch twin (default: all four)")
    parser.add_argument("--examples", type=int, default=None, help="training examples (default 1024; --quick 512)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per timed run, one mmzoo.train call (default 4; --quick 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per side (default 5; --quick 3)")
    parser.add_argument("--quick", action="store_true",
                        help="512 examples, 3 repeats, no torch.compile (its compilation alone takes minutes)")
    parser.add_argument("--small", action="store_true", help="each model at its registry test_config (tiny runs)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile side")
    parser.add_argument("--jit", choices=list(JIT), default="auto", help="mmzoo.train's jit_compile (default auto)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: left at PyTorch's default, one per core)")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="seconds of sleep before each timed run, so that the threads the other framework "
                             "left spinning are idle (default 0.5; 0 to see the interference)")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    if args.settle < 0:
        parser.error("--settle must be 0 or more seconds")
    if args.examples is None:
        args.examples = 512 if args.quick else 1024
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.epochs is None:
        args.epochs = 2 if args.quick else 4
    if args.quick:
        args.no_compile = True
    for name in ("examples", "epochs", "batch_size", "repeats", "torch_threads"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.examples % args.batch_size:
        parser.error("--examples must be a multiple of --batch-size (the same number of full steps each side)")
    return args


# ---------------------------------------------------------------------------------------------
# Layers Keras has and PyTorch spells differently
# ---------------------------------------------------------------------------------------------


def tf_same_padding(size, kernel, stride):
    """``(before, after)``: TensorFlow's "same" padding of one axis (the odd pixel goes after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def masked_mean(x, real):
    """Mean over axis 1 of the steps where ``real`` (``(batch, steps)`` bool) holds; zeros if none."""
    weights = real.unsqueeze(-1).to(x.dtype)
    total = torch.where(weights > 0, x, torch.zeros_like(x)).sum(1)
    return total / weights.sum(1).clamp(min=1.0)


def masked_max(x, real):
    """Max over axis 1 of the real steps; zeros where an example has none (Keras' MaskedPooling("max"))."""
    weights = real.unsqueeze(-1)
    peak = torch.where(weights, x, torch.full_like(x, -1e4)).amax(1)
    return torch.where(weights.any(1), peak, torch.zeros_like(peak))


class LastRealStepLSTM(nn.Module):
    """``nn.LSTM`` over right-padded embeddings; the output at each sequence's last real step.

    Keras' masked LSTM returns the state after the last unmasked step, and its initial
    state (zeros) for a sequence of padding only; so does this, for right-padded ids.
    """

    def __init__(self, input_size, units):
        super().__init__()
        self.lstm = nn.LSTM(input_size, units, batch_first=True)

    def forward(self, embedded, lengths):
        outputs, _ = self.lstm(embedded)
        last = (lengths - 1).clamp(min=0)
        picked = outputs[torch.arange(outputs.shape[0], device=outputs.device), last]
        return picked * (lengths > 0).unsqueeze(1).to(picked.dtype)


class MaskedMultiHeadAttention(nn.Module):
    """Keras' ``MultiHeadAttention(num_heads, key_dim)`` on one sequence (self-attention), with its padding mask.

    Queries, keys and values are projected to ``num_heads x key_dim``; padded keys get
    -1e9 before the softmax (Keras adds the same), and the heads are projected back.
    """

    def __init__(self, features, num_heads, key_dim):
        super().__init__()
        self.num_heads, self.key_dim = num_heads, key_dim
        inner = num_heads * key_dim
        self.query = nn.Linear(features, inner)
        self.key = nn.Linear(features, inner)
        self.value = nn.Linear(features, inner)
        self.output = nn.Linear(inner, features)

    def forward(self, x, real):
        batch, steps, _ = x.shape

        def heads(projection):
            return projection(x).view(batch, steps, self.num_heads, self.key_dim).transpose(1, 2)

        bias = torch.zeros(real.shape, dtype=x.dtype, device=x.device).masked_fill(~real, -1e9)
        attended = F.scaled_dot_product_attention(heads(self.query), heads(self.key), heads(self.value),
                                                  attn_mask=bias[:, None, None, :])
        return self.output(attended.transpose(1, 2).reshape(batch, steps, -1))


class ConvBN(nn.Module):
    """Keras' ``Conv2D(padding="same", use_bias=False)``, ``BatchNormalization()``, optional ReLU."""

    def __init__(self, cin, cout, kernel, stride=1, relu=True, size=None):
        super().__init__()
        self.pad = None
        padding = kernel // 2
        if stride > 1:  # TensorFlow pads the odd pixel after: pad explicitly when the two sides differ
            (top, bottom), (left, right) = (tf_same_padding(s, kernel, stride) for s in size)
            if (top, left) != (bottom, right):
                self.pad, padding = (left, right, top, bottom), 0
            else:
                padding = (top, left)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)  # Keras: epsilon 1e-3, momentum 0.99
        self.relu = relu

    def forward(self, x):
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.shortcut = None if cin == cout else ConvBN(cin, cout, 1, relu=False)
        self.a = ConvBN(cin, cout, 3)
        self.b = ConvBN(cout, cout, 3, relu=False)

    def forward(self, x):
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(shortcut + self.b(self.a(x)))


class ResidualCNN(nn.Module):
    """mmzoo's ``_residual_cnn``: a stem, one residual block per filter count, 2x2 max pooling between."""

    def __init__(self, cin, filters, stride, size):
        super().__init__()
        self.stem = ConvBN(cin, filters[0], 3, stride=stride, size=size)
        self.blocks = nn.ModuleList()
        previous = filters[0]
        for width in filters:
            self.blocks.append(ResidualBlock(previous, width))
            previous = width

    def forward(self, x):
        x = self.stem(x)
        for index, block in enumerate(self.blocks):
            if index:
                x = F.max_pool2d(x, 2)
            x = block(x)
        return x


class Standardization(nn.Module):
    """``(x - mean) / sqrt(variance + 1e-6)`` on axis ``axis``, statistics as buffers (adapted, not trained)."""

    def __init__(self, features, axis):
        super().__init__()
        self.axis = axis
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("variance", torch.ones(features))

    def forward(self, x):
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return (x - self.mean.view(shape)) * torch.rsqrt(self.variance.view(shape) + 1e-6)


def htk_mel_matrix(num_mel_bins, num_spectrogram_bins, sample_rate, lower_hz, upper_hz):
    """``(num_spectrogram_bins, num_mel_bins)``: Keras' (TensorFlow's) HTK mel weights, triangles of peak 1."""

    def to_mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz, "float64") / 700.0)

    bins_mel = to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:])[:, None]
    edges = np.linspace(to_mel(lower_hz), to_mel(upper_hz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    weights = np.maximum(0.0, np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center)))
    return np.pad(weights, [[1, 0], [0, 0]]).astype("float32")  # the DC bin gets no weight


# ---------------------------------------------------------------------------------------------
# The twins
# ---------------------------------------------------------------------------------------------


class Twin(nn.Module):
    """A PyTorch network that returns logits; ``loss`` is the Keras model's loss on them."""

    binary = True

    def loss(self, logits, targets):
        if self.binary:
            return F.binary_cross_entropy_with_logits(logits, targets)
        return F.cross_entropy(logits, targets)

    def probabilities(self, logits):
        return torch.sigmoid(logits) if self.binary else torch.softmax(logits, dim=-1)


class AttentionFusionTwin(Twin):
    """``attention_fusion``: Dense(relu) image, masked LSTM text, sigmoid of their dot product, concatenated."""

    def __init__(self, image_dim=128, text_length=64, vocab_size=1000, units=64, num_classes=1):
        super().__init__()
        self.binary = num_classes == 1
        self.image_dense = nn.Linear(image_dim, units)
        self.embedding = nn.Embedding(vocab_size, units)
        self.lstm = LastRealStepLSTM(units, units)
        self.output = nn.Linear(2 * units + 1, num_classes)

    def forward(self, x):
        tokens = x["text_input"]
        image = F.relu(self.image_dense(x["image_input"]))
        text = self.lstm(self.embedding(tokens), (tokens != 0).sum(1))
        score = torch.sigmoid((text * image).sum(1, keepdim=True))
        return self.output(torch.cat([image, text, score], dim=1))


class MHAFusionTwin(Twin):
    """``mha_fusion``: Dense(relu) image, masked LSTM text, masked self-attention averaged over real tokens."""

    def __init__(self, image_dim=128, text_length=64, vocab_size=1000, units=64, num_heads=2, key_dim=64,
                 cross_modal=False, num_classes=1):
        super().__init__()
        if cross_modal:
            raise ValueError("the PyTorch twin of mha_fusion is the self-attention variant (cross_modal=False)")
        self.binary = num_classes == 1
        self.image_dense = nn.Linear(image_dim, units)
        self.embedding = nn.Embedding(vocab_size, units)
        self.lstm = LastRealStepLSTM(units, units)
        self.attention = MaskedMultiHeadAttention(units, num_heads, key_dim)
        self.output = nn.Linear(3 * units, num_classes)

    def forward(self, x):
        tokens = x["text_input"]
        real = tokens != 0
        image = F.relu(self.image_dense(x["image_input"]))
        embedded = self.embedding(tokens)
        text = self.lstm(embedded, real.sum(1))
        attended = masked_mean(self.attention(embedded, real), real)
        return self.output(torch.cat([image, text, attended], dim=1))


class EmotionTwin(Twin):
    """``emotion``: embeddings averaged over real tokens, Dense(relu) MFCC, a valid-conv CNN averaged over space."""

    def __init__(self, sequence_length=10, vocabulary_size=10000, embedding_size=128, mfcc_features_size=128,
                 mfcc_frames=None, image_height=48, image_width=48, image_channels=1, conv_filters=(32,),
                 audio_units=128, num_emotions=7, audio_mask=False, fusion="concat"):
        super().__init__()
        if mfcc_frames is not None or audio_mask or fusion != "concat":
            raise ValueError("the PyTorch twin of emotion is the document's: one MFCC vector, concat fusion")
        self.binary = num_emotions == 1
        self.embedding = nn.Embedding(vocabulary_size, embedding_size)
        self.audio_dense = nn.Linear(mfcc_features_size, audio_units)
        self.convs = nn.ModuleList()
        previous = image_channels
        for filters in conv_filters:
            self.convs.append(nn.Conv2d(previous, filters, 3))
            previous = filters
        self.output = nn.Linear(embedding_size + audio_units + previous, num_emotions)

    def forward(self, x):
        tokens = x["text"]
        text = masked_mean(self.embedding(tokens), tokens != 0)
        audio = F.relu(self.audio_dense(x["audio"]))
        image = x["image"]  # channels-first
        for index, conv in enumerate(self.convs):
            if index:
                image = F.max_pool2d(image, 2)
            image = F.relu(conv(image))
        return self.output(torch.cat([text, audio, image.mean((2, 3))], dim=1))


class ImageEncoderTwin(nn.Module):
    """mmzoo's ``image_cnn_encoder``: standardise, residual CNN, grid average pooling, Dense(relu)."""

    def __init__(self, shape, width, filters, grid=3):
        from mmzoo.layers.encoders import cnn_output_size, stem_stride

        super().__init__()
        height, width_px, channels = shape
        stride = stem_stride(height, width_px)
        self.standardize = Standardization(channels, axis=1)
        self.cnn = ResidualCNN(channels, filters, stride, (height, width_px))
        map_h, map_w = cnn_output_size(height, filters, stride), cnn_output_size(width_px, filters, stride)
        self.pool = (max(1, map_h // grid), max(1, map_w // grid))
        cells = (map_h // self.pool[0]) * (map_w // self.pool[1])
        self.dense = nn.Linear(cells * filters[-1], width)

    def forward(self, image):
        x = self.cnn(self.standardize(image))
        return F.relu(self.dense(torch.flatten(F.avg_pool2d(x, self.pool), 1)))


class AudioEncoderTwin(nn.Module):
    """mmzoo's ``audio_spectrogram_encoder``: log-mel, standardise, residual CNN, Dense per frame,
    mean and max over the real (non-silent) frames."""

    def __init__(self, samples, sample_rate, width, filters, num_mel_bins, fft_length=512, hop_length=160):
        from mmzoo.layers.encoders import cnn_output_size, stem_stride

        super().__init__()
        self.fft_length, self.hop_length = fft_length, hop_length
        self.frames = samples // hop_length + 1
        self.stride = stem_stride(self.frames, num_mel_bins, "spectrogram")
        self.pools = len(filters) - 1
        self.register_buffer("window", torch.hann_window(fft_length, periodic=True))
        mel = htk_mel_matrix(num_mel_bins, fft_length // 2 + 1, sample_rate, 0.0, sample_rate / 2.0)
        self.register_buffer("mel", torch.from_numpy(mel))
        self.standardize = Standardization(num_mel_bins, axis=-1)
        self.cnn = ResidualCNN(1, filters, self.stride, (self.frames, num_mel_bins))
        self.out_frames = cnn_output_size(self.frames, filters, self.stride)
        out_bins = cnn_output_size(num_mel_bins, filters, self.stride)
        self.frame_dense = nn.Linear(out_bins * filters[-1], width)
        self.dense = nn.Linear(2 * width, width)

    def log_mel(self, wave):
        spectrum = torch.stft(wave, self.fft_length, self.hop_length, window=self.window, center=True,
                              pad_mode="reflect", return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()  # (batch, bins, frames)
        db = 10.0 * torch.log10(torch.matmul(power.transpose(1, 2), self.mel).clamp(min=1e-10))
        return torch.maximum(db, db.amax((1, 2), keepdim=True) - 80.0)  # (batch, frames, mel)

    def forward(self, wave):
        mel = self.log_mel(wave)
        real = ((mel - mel.amin((1, 2), keepdim=True)).amax(-1) > 1e-4).to(mel.dtype)  # non-silent frames
        x = self.cnn(self.standardize(mel).unsqueeze(1))  # (batch, channels, frames, bins)
        x = x.permute(0, 2, 3, 1).flatten(2)  # (batch, frames, bins x channels), Keras' Reshape order
        x = F.relu(self.frame_dense(x))
        if self.out_frames != self.frames:  # a pooled frame is real when any frame it covers is
            real = real.unsqueeze(1)
            if self.stride > 1:
                real = F.max_pool1d(real, self.stride, ceil_mode=True)
            for _ in range(self.pools):
                real = F.max_pool1d(real, 2)
            real = real.squeeze(1)
        real = real > 0.5
        return F.relu(self.dense(torch.cat([masked_mean(x, real), masked_max(x, real)], dim=1)))


class FusionClassifierTwin(Twin):
    """``fusion_classifier`` on image and audio inputs: two encoders, modality dropout, concat, MLP head."""

    def __init__(self, inputs, num_classes=10, fusion="concat", width=128, dropout=0.3, image_encoder="cnn",
                 image_weights=None, image_filters=(8, 16, 32), sample_rate=16000, num_mel_bins=40,
                 audio_filters=(16, 32, 64), text_encoder="bag", vocabulary_size=10000, embedding_size=64,
                 class_names=None, modality_dropout=0.25, missing_modalities=False):
        super().__init__()
        kinds = [key.split("_")[0] for key in inputs]
        if fusion != "concat" or image_encoder != "cnn" or missing_modalities or not set(kinds) <= {"image", "audio"}:
            raise ValueError("the PyTorch twin of fusion_classifier has image and audio inputs, the CNN image "
                             f"encoder and concat fusion. Received: inputs={sorted(inputs)}, fusion={fusion!r}")
        self.binary = num_classes == 1
        self.keys = list(inputs)
        self.encoders = nn.ModuleDict()
        for key, shape in inputs.items():
            if key.startswith("image"):
                self.encoders[key] = ImageEncoderTwin(shape, width, tuple(image_filters))
            else:
                self.encoders[key] = AudioEncoderTwin(shape[0], sample_rate, width, tuple(audio_filters),
                                                      num_mel_bins)
        self.modality_dropout = modality_dropout if len(inputs) > 1 else 0.0
        self.dropout = dropout
        self.head_dense = nn.Linear(width * len(inputs), width)
        self.output = nn.Linear(width, num_classes)

    def forward(self, x):
        vectors = [self.encoders[key](x[key]) for key in self.keys]
        if self.training and self.modality_dropout:  # mmzoo's ModalityDropout: never all of an example's
            keep = torch.rand(vectors[0].shape[0], len(vectors), device=vectors[0].device) >= self.modality_dropout
            keep = torch.where(keep.any(1, keepdim=True), keep, torch.ones_like(keep))
            vectors = [v * keep[:, i : i + 1].to(v.dtype) for i, v in enumerate(vectors)]
        fused = F.dropout(torch.cat(vectors, dim=1), self.dropout, self.training)
        hidden = F.dropout(F.relu(self.head_dense(fused)), self.dropout, self.training)
        return self.output(hidden)


TWINS = {
    "attention_fusion": AttentionFusionTwin,
    "mha_fusion": MHAFusionTwin,
    "emotion": EmotionTwin,
    "fusion_classifier": FusionClassifierTwin,
}


def build_twin(keras_model, name):
    """The PyTorch twin of ``keras_model`` (the registered model ``name``), sized from its config, with its weights."""
    config = {k: v for k, v in keras_model.get_config().items() if k not in ("name", "trainable")}
    net = TWINS[name](**config)
    copy_weights(keras_model, net, name)
    return net


# ---------------------------------------------------------------------------------------------
# Keras weights -> PyTorch
# ---------------------------------------------------------------------------------------------


def _set(parameter, value):
    value = torch.as_tensor(np.ascontiguousarray(value), dtype=parameter.dtype)
    if tuple(value.shape) != tuple(parameter.shape):
        raise ValueError(f"shape {tuple(value.shape)} from Keras for a PyTorch tensor of {tuple(parameter.shape)}")
    with torch.no_grad():
        parameter.copy_(value)


def _dense(layer, linear, rows=None):
    kernel, bias = (w.numpy() for w in layer.weights)
    _set(linear.weight, (kernel if rows is None else kernel[rows]).T)
    _set(linear.bias, bias)


def _lstm(layer, twin):
    kernel, recurrent, bias = (w.numpy() for w in layer.weights)  # gates i, f, c, o in both
    _set(twin.lstm.weight_ih_l0, kernel.T)
    _set(twin.lstm.weight_hh_l0, recurrent.T)
    _set(twin.lstm.bias_ih_l0, bias)
    _set(twin.lstm.bias_hh_l0, np.zeros_like(bias))


def _conv_bn(model, prefix, twin):
    _set(twin.conv.weight, model.get_layer(f"{prefix}_conv").kernel.numpy().transpose(3, 2, 0, 1))
    gamma, beta, mean, variance = (w.numpy() for w in model.get_layer(f"{prefix}_bn").weights)
    for tensor, value in ((twin.bn.weight, gamma), (twin.bn.bias, beta), (twin.bn.running_mean, mean),
                          (twin.bn.running_var, variance)):
        _set(tensor, value)


def _residual_cnn(model, twin):
    _conv_bn(model, "cnn_stem", twin.stem)
    for index, block in enumerate(twin.blocks, start=1):
        if block.shortcut is not None:
            _conv_bn(model, f"cnn_block{index}_shortcut", block.shortcut)
        _conv_bn(model, f"cnn_block{index}_a", block.a)
        _conv_bn(model, f"cnn_block{index}_b", block.b)


def _standardization(layer, twin):
    _set(twin.mean, layer.mean.numpy())
    _set(twin.variance, layer.variance.numpy())


def copy_weights(model, net, name):
    """Set every weight of the PyTorch twin ``net`` from the Keras ``model`` (LSTM ``bias_hh`` to zero)."""
    get = model.get_layer
    if name in ("attention_fusion", "mha_fusion"):
        _set(net.embedding.weight, get("text_embedding").embeddings.numpy())
        _dense(get("image_dense"), net.image_dense)
        _lstm(get("text_lstm"), net.lstm)
        _dense(get("output"), net.output)
        if name == "mha_fusion":
            attention = get("attention")
            for part in ("query", "key", "value"):
                dense = getattr(attention, f"_{part}_dense")
                kernel, bias = (w.numpy() for w in dense.weights)
                _set(getattr(net.attention, part).weight, kernel.reshape(kernel.shape[0], -1).T)
                _set(getattr(net.attention, part).bias, bias.reshape(-1))
            kernel, bias = (w.numpy() for w in attention._output_dense.weights)
            _set(net.attention.output.weight, kernel.reshape(-1, kernel.shape[-1]).T)
            _set(net.attention.output.bias, bias)
    elif name == "emotion":
        _set(net.embedding.weight, get("text_tokens").embeddings.numpy())
        _dense(get("audio_dense"), net.audio_dense)
        for index, conv in enumerate(net.convs, start=1):
            kernel, bias = (w.numpy() for w in get(f"image_conv{index}").weights)
            _set(conv.weight, kernel.transpose(3, 2, 0, 1))
            _set(conv.bias, bias)
        _dense(get("emotion"), net.output)
    else:
        for key, twin in net.encoders.items():
            encoder = get(f"{key}_encoder")
            _standardization(encoder.get_layer("standardize"), twin.standardize)
            _residual_cnn(encoder, twin.cnn)
            if isinstance(twin, ImageEncoderTwin):
                # Keras flattens (h, w, c), PyTorch (c, h, w): the same weights, rows reordered.
                shape = encoder.get_layer("grid_pool").output.shape[1:]
                rows = np.arange(np.prod(shape)).reshape(shape).transpose(2, 0, 1).reshape(-1)
                _dense(encoder.get_layer("dense"), twin.dense, rows=rows)
            else:
                _dense(encoder.get_layer("frame_dense"), twin.frame_dense)
                _dense(encoder.get_layer("dense"), twin.dense)
        _dense(get("head_dense"), net.head_dense)
        _dense(get("output"), net.output)


def trainable_parameters(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def keras_trainable_parameters(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def documented_difference(net):
    """Trainable parameters the twin has beyond Keras': PyTorch's second LSTM bias, 4 x units per LSTM."""
    return sum(m.bias_hh_l0.numel() for m in net.modules() if isinstance(m, nn.LSTM))


# ---------------------------------------------------------------------------------------------
# Data and the training loop
# ---------------------------------------------------------------------------------------------


def torch_inputs(x):
    """The NumPy inputs as tensors: images (rank 4, channels last) transposed to channels-first, ids as int64."""
    tensors = {}
    for key, value in x.items():
        if value.ndim == 4:
            value = value.transpose(0, 3, 1, 2)
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        tensors[key] = tensor.long() if not tensor.is_floating_point() else tensor.float()
    return tensors


def torch_targets(y, net):
    y = torch.from_numpy(np.asarray(y))
    return y.float().reshape(-1, 1) if net.binary else y.long().reshape(-1)


def torch_optimizer(model, net):
    """The Keras model's default optimizer (Adam, with its own hyperparameters) for ``net``."""
    import keras

    optimizer = keras.optimizers.get(model.default_compile_arguments()["optimizer"])
    if not isinstance(optimizer, keras.optimizers.Adam) or optimizer.amsgrad:
        raise ValueError(f"no PyTorch twin for optimizer {type(optimizer).__name__}")
    return torch.optim.Adam(net.parameters(), lr=float(optimizer.learning_rate),
                            betas=(optimizer.beta_1, optimizer.beta_2), eps=optimizer.epsilon)


def train_torch(net, forward, optimizer, x, y, batch_size, epochs, generator):
    """``epochs`` of the standard loop over shuffled minibatches; returns the last loss."""
    net.train()
    n = len(y)
    loss = None
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = net.loss(forward({key: value[index] for key, value in x.items()}), y[index])
            loss.backward()
            optimizer.step()
    return float(loss.detach())


def one_step(net, forward, optimizer, x, y):
    """A single training step on the whole of ``x`` (the compile warm-up); returns its loss."""
    net.train()
    optimizer.zero_grad(set_to_none=True)
    loss = net.loss(forward(x), y)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def model_config(name, args):
    from mmzoo.registry import get_entry

    if not args.small:
        return dict(FULL_CONFIGS.get(name, {}))
    config = dict(get_entry(name).test_config)
    if name == "fusion_classifier":  # the twin has image and audio encoders
        config["inputs"] = {k: v for k, v in config["inputs"].items() if k.split("_")[0] in ("image", "audio")}
    return config


def bench_model(name, args, log=print):
    import keras

    import mmzoo
    from mmzoo.data import synthetic_arrays
    from mmzoo.training import adapt_inputs, train
    from train_throughput import pipeline

    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    model = mmzoo.build(name, **model_config(name, args))
    x, y = synthetic_arrays(model, n=args.examples)
    dataset = pipeline(x, y, args.batch_size)
    adapt_inputs(model, dataset)  # what mmzoo.train does first; before the copy, so the twin gets the statistics
    net = build_twin(model, name)
    ours, theirs = keras_trainable_parameters(model), trainable_parameters(net)
    extra = documented_difference(net)
    log(f"  {name}: trainable parameters keras {ours}, pytorch {theirs}"
        + (f" (+{extra}: the LSTM's second bias vector)" if extra else ""))
    if theirs != ours + extra:
        raise AssertionError(f"{name}: the PyTorch twin has {theirs} trainable parameters, Keras {ours} (+{extra})")
    tx, ty = torch_inputs(x), torch_targets(y, net)
    generator = torch.Generator().manual_seed(0)
    jit = JIT[args.jit]

    sides = {
        "mmzoo": lambda: train(model, dataset, epochs=args.epochs, verbose=0, jit_compile=jit,
                               early_stopping_patience=None, reduce_lr_patience=None),
    }
    eager_optimizer = torch_optimizer(model, net)
    sides["pytorch eager"] = lambda: train_torch(net, net, eager_optimizer, tx, ty, args.batch_size, args.epochs,
                                                 generator)
    compile_seconds = None
    if not args.no_compile:
        compiled_net = copy.deepcopy(net)
        try:
            compiled = torch.compile(compiled_net)
            compiled_optimizer = torch_optimizer(model, compiled_net)
            batch = {key: value[: args.batch_size] for key, value in tx.items()}
            started = time.perf_counter()
            one_step(compiled_net, compiled, compiled_optimizer, batch, ty[: args.batch_size])
            compile_seconds = time.perf_counter() - started
            sides["pytorch torch.compile"] = lambda: train_torch(
                compiled_net, compiled, compiled_optimizer, tx, ty, args.batch_size, args.epochs, generator
            )
        except Exception as error:  # noqa: BLE001 - any failure of the compiler: no row, and say why
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            log(f"  {name}: torch.compile failed, no compile row ({type(error).__name__}: {message[:300]})")
    times = interleaved(sides, args.repeats, settle=args.settle)
    samples = args.examples * args.epochs
    rates = {side: samples / median(times[side]) for side in sides}
    keras.backend.clear_session()
    for side in sides:
        log(f"  {name:18s} {side:22s} {rates[side]:8.1f} samples/s  [{', '.join(f'{t:.3f}' for t in times[side])}] s")
    if compile_seconds is not None:
        log(f"  {name}: torch.compile's first step (compilation) took {compile_seconds:.1f} s, untimed")
    label = "mmzoo.train" + ("" if args.jit == "auto" else f" (jit_compile={jit})")
    rows = [speed_row(f"peer {name}: {label} vs pytorch eager", rates["mmzoo"], rates["pytorch eager"],
                      "samples/s")]
    if "pytorch torch.compile" in rates:
        rows.append(speed_row(f"peer {name}: {label} vs pytorch torch.compile", rates["mmzoo"],
                              rates["pytorch torch.compile"], "samples/s"))
    return rows


def measure(args, log=print):
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    steps = args.examples // args.batch_size * args.epochs
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    log(
        f"PyTorch peers: {args.examples} examples x {args.epochs} epoch(s), batch {args.batch_size} ({steps} steps "
        f"a run); median of {args.repeats} interleaved runs after a warm-up, each after a {args.settle:g} s "
        f"pause; ours: mmzoo.train on tf.data, "
        f"jit_compile={JIT[args.jit]!r}; baseline: the same network in PyTorch {torch.__version__}, eager"
        + ("" if args.no_compile else " and torch.compile")
        + f", torch.get_num_threads() = {torch.get_num_threads()}; float32"
        + ("; models at their test_config" if args.small else "")
        + f"; load average {load}"
    )
    rows = []
    for name in args.models:
        rows += bench_model(name, args, log)
    return rows


def main(argv=None):
    return run_benchmark(
        parse_args, measure, "ratio = mmzoo samples/s / PyTorch samples/s; above 1: mmzoo is faster", argv
    )


if __name__ == "__main__":
    main()
