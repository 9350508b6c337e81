"""Document 004 §5.3: cross-modal retrieval in one L2-normalised embedding space, trained contrastively."""

import itertools

import keras
from keras import layers, ops

from mmzoo.layers import LogitScale, UnitNormalization
from mmzoo.models.base import MultimodalModel, check_positive_int, check_positive_number
from mmzoo.models.recognition import (
    AUDIO_MASK_OPTION,
    audio_encoder,
    audio_input,
    check_audio_arguments,
    check_image_arguments,
    check_text_arguments,
    image_encoder,
    image_input,
    mask_input,
    text_encoder,
    text_input,
)
from mmzoo.optimizers import Adam
from mmzoo.registry import register_model

RETRIEVAL_MODALITIES = ("image", "text", "audio")


def info_nce_loss(embeddings_a, embeddings_b, logit_scale):
    """Symmetric InfoNCE (CLIP) loss of a batch of pairs ``(a_i, b_i)``.

    The logits are ``logit_scale(a @ b^T)``: row ``i`` must pick ``b_i`` among the
    batch's ``b``, column ``i`` must pick ``a_i`` among its ``a``; the loss is the mean
    of the two cross-entropies. Computed in float32.

    Args:
        embeddings_a: ``(batch, dim)`` L2-normalised embeddings.
        embeddings_b: ``(batch, dim)`` L2-normalised embeddings, row ``i`` paired with
            row ``i`` of ``embeddings_a``.
        logit_scale: a callable that scales the similarity matrix (a
            :class:`~mmzoo.layers.LogitScale`).

    Example:
    >>> import numpy as np
    >>> from mmzoo.layers import LogitScale
    >>> a = np.eye(4, dtype="float32")
    >>> float(info_nce_loss(a, a, LogitScale(initial_scale=100.0))) < 1e-6  # every pair found
    True
    >>> round(float(info_nce_loss(a, a, LogitScale(initial_scale=1e-6))), 3)  # chance: log(4)
    1.386
    """
    a = ops.cast(embeddings_a, "float32")
    b = ops.cast(embeddings_b, "float32")
    logits = logit_scale(ops.matmul(a, ops.transpose(b)))
    a_to_b = ops.diagonal(ops.log_softmax(logits, axis=1))
    b_to_a = ops.diagonal(ops.log_softmax(logits, axis=0))
    return -(ops.mean(a_to_b) + ops.mean(b_to_a)) / 2.0


@keras.saving.register_keras_serializable(package="mmzoo")
class CrossModalRetrieval(MultimodalModel):
    """Image, text and audio encoders into one L2-normalised space, trained by a symmetric contrastive loss.

    Document 004 §5.3, corrected: each modality has its own encoder (a Conv2D(32, 3x3)
    CNN averaged over space; token embeddings averaged over the real tokens; the
    document's Dense(128, relu) on the MFCC features), projected to ``embedding_dim``
    and L2-normalised. The outputs are the three embeddings
    (``image_embedding``, ``text_embedding``, ``audio_embedding``); the cosine
    similarity of two items is the dot product of their embeddings.

    Training needs no targets: inputs are batches of matching (image, text, audio)
    triples, and the loss is the symmetric InfoNCE loss over the batch (every other
    item of the batch is a negative), averaged over the three modality pairs, with a
    learned temperature: the logit scale ``1 / temperature`` starts at
    ``1 / initial_temperature`` and is clamped to at most ``max_logit_scale``. Call
    ``model.fit(x)`` on inputs alone; measure with :func:`mmzoo.metrics.recall_at_k`.
    Compiled losses and targets are not used.

    Args:
        image_height: height of the ``image`` input.
        image_width: width of the ``image`` input.
        image_channels: channels of the ``image`` input.
        sequence_length: tokens per ``text`` sequence.
        vocabulary_size: size of the token vocabulary (id 0 is padding).
        embedding_size: width of the token embeddings.
        mfcc_features_size: MFCC coefficients per audio frame.
        mfcc_frames: None: ``audio`` is one MFCC vector per clip (the document's input);
            an integer: ``audio`` is ``(mfcc_frames, mfcc_features_size)`` frames, each
            through the Dense layer and then averaged over time.
        conv_filters: filters of each 3x3 convolution block of the image CNN; the document's
            single Conv2D(32) by default.
        audio_units: width of the document's audio Dense(128, relu).
        embedding_dim: width of the shared embedding space.
        initial_temperature: the starting softmax temperature (CLIP: 0.07).
        max_logit_scale: the largest logit scale (1 / temperature) allowed (CLIP: 100).
        audio_mask: add an ``audio_mask`` input, float32 ``(mfcc_frames,)``, 1.0 on the real
            MFCC frames and 0.0 on padding: the mean over time leaves the padded frames out,
            whatever they hold. Needs ``mfcc_frames``. False (default): every frame counts.

    Example:
    >>> import mmzoo
    >>> from mmzoo.metrics import recall_at_k
    >>> model = mmzoo.build("cross_modal_retrieval", image_height=16, image_width=16)
    >>> x, y = mmzoo.dummy_batch(model, batch_size=8)
    >>> y is None
    True
    >>> history = model.fit(x, epochs=1, verbose=0)  # contrastive loss, no targets
    >>> embeddings = model.predict(x, verbose=0)
    >>> embeddings["text_embedding"].shape
    (8, 128)
    >>> sorted(recall_at_k(embeddings["text_embedding"], embeddings["image_embedding"],
    ...                    names=("text", "image")))[:3]
    ['image_to_text@1', 'image_to_text@10', 'image_to_text@5']
    """

    def __init__(
        self,
        image_height=64,
        image_width=64,
        image_channels=3,
        sequence_length=10,
        vocabulary_size=10000,
        embedding_size=128,
        mfcc_features_size=128,
        mfcc_frames=None,
        conv_filters=(32,),
        audio_units=128,
        embedding_dim=128,
        initial_temperature=0.07,
        max_logit_scale=100.0,
        audio_mask=False,
        **kwargs,
    ):
        conv_filters = check_image_arguments(image_height, image_width, image_channels, conv_filters)
        check_text_arguments(sequence_length, vocabulary_size, embedding_size)
        check_audio_arguments(mfcc_features_size, mfcc_frames, audio_units, audio_mask)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_number("initial_temperature", initial_temperature)
        check_positive_number("max_logit_scale", max_logit_scale)
        if 1.0 / initial_temperature > max_logit_scale:
            raise ValueError(
                "`initial_temperature` must be at least 1 / max_logit_scale "
                f"({1.0 / max_logit_scale:g}). Received: initial_temperature={initial_temperature!r}"
            )
        inputs = {
            "image": image_input(image_height, image_width, image_channels),
            "text": text_input(sequence_length),
            "audio": audio_input(mfcc_features_size, mfcc_frames),
        }
        if audio_mask:
            inputs["audio_mask"] = mask_input(mfcc_frames, "audio_mask")
        features = {
            "image": image_encoder(inputs["image"], conv_filters),
            "text": text_encoder(inputs["text"], vocabulary_size, embedding_size),
            "audio": audio_encoder(inputs["audio"], audio_units, mask=inputs.get("audio_mask")),
        }
        outputs = {}
        for key in RETRIEVAL_MODALITIES:
            projected = layers.Dense(embedding_dim, name=f"{key}_projection")(features[key])
            outputs[f"{key}_embedding"] = UnitNormalization(name=f"{key}_embedding", dtype="float32")(
                projected
            )
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            targets={key: None for key in outputs},
            token_ranges={"text": (1, vocabulary_size)},
            **kwargs,
        )
        # Not on the inference graph (the outputs are the embeddings): the loss uses it,
        # and tracking it as an attribute saves it with the model.
        self.logit_scale = LogitScale(
            initial_scale=1.0 / initial_temperature, max_scale=max_logit_scale, name="logit_scale"
        )
        self.logit_scale.build()

    def contrastive_loss(self, embeddings):
        """The symmetric InfoNCE loss averaged over every pair of modalities in ``embeddings``.

        Args:
            embeddings: the model's outputs, a dict of ``(batch, embedding_dim)`` embeddings.
        """
        keys = [f"{key}_embedding" for key in RETRIEVAL_MODALITIES]
        pairs = list(itertools.combinations(keys, 2))
        total = sum(info_nce_loss(embeddings[a], embeddings[b], self.logit_scale) for a, b in pairs)
        return total / len(pairs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The contrastive loss of the batch plus any regularisation losses; ``y`` and ``sample_weight`` are unused."""
        if y_pred is None:
            y_pred = self(x, training=training)
        loss = self.contrastive_loss(y_pred)
        for extra in self.losses:
            loss = loss + ops.cast(extra, "float32")
        return loss

    def default_compile_arguments(self):
        """Adam; the loss is the model's own contrastive loss and there is no target to measure."""
        return {"optimizer": Adam()}


@register_model(
    source="004 §5.3",
    task="cross-modal retrieval between image, text and audio (shared embedding space)",
    corrections=(
        "the 4-D image and 3-D text features were concatenated with a 2-D vector; each "
        "modality has its own encoder pooled to a vector",
        "`Dot(axes=(1, 2))` of the fused tensor with itself compared nothing across "
        "modalities; each modality is embedded in one L2-normalised space and compared "
        "by cosine similarity",
        "MSE on `similarity_labels` that were never defined; a symmetric contrastive "
        "(InfoNCE) loss over the batch with a learned temperature (logit scale clamped to 100), "
        "trained on matching triples without targets",
        "retrieval is measured by recall@K in both directions (mmzoo.metrics.recall_at_k)",
        "`sequence_length`, `vocabulary_size`, `embedding_size`, `mfcc_features_size` and "
        "the image size were undefined; they are arguments (document 004 §3's sizes where it has them)",
        "option `mfcc_frames`: audio as a sequence of MFCC frames, averaged over time after the Dense layer",
        AUDIO_MASK_OPTION,
    ),
    test_config={
        "image_height": 10, "image_width": 10, "sequence_length": 6, "vocabulary_size": 30,
        "embedding_size": 8, "mfcc_features_size": 12, "mfcc_frames": 5, "conv_filters": (4, 8),
        "audio_units": 8, "embedding_dim": 8,
    },
)
def cross_modal_retrieval(**kwargs):
    """Cross-modal retrieval: image, text and audio encoders into one L2-normalised space, contrastive loss."""
    return CrossModalRetrieval(**kwargs)
