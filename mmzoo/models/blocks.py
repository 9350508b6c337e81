"""Building blocks several model families compose: pretrained backbones and modality tokens."""

from keras import layers


def imagenet_backbone(application, input_shape, weights, name, pooling="avg"):
    """A ``keras.applications`` network without its top; a failed weight download raises clearly.

    Args:
        application: e.g. ``keras.applications.VGG16``.
        input_shape: its input shape.
        weights: ``None`` or ``"imagenet"``.
        name: the name of the nested model.
        pooling: ``"avg"``, ``"max"`` or None (the last feature map).
    """
    try:
        return application(include_top=False, weights=weights, input_shape=input_shape, pooling=pooling, name=name)
    except Exception as error:  # keras.utils.get_file raises a bare Exception when offline
        if weights != "imagenet":
            raise
        raise RuntimeError(
            f"Could not get the ImageNet weights of {application.__name__} ({error}). "
            "They are downloaded on first use, which needs the network; offline, put the "
            "weight file in ~/.keras/models/ or build with weights=None."
        ) from error


def stack_modalities(vectors):
    """``(batch, width)`` vectors as a ``(batch, len(vectors), width)`` sequence of modality tokens."""
    width = vectors[0].shape[-1]
    return layers.Concatenate(axis=1)([layers.Reshape((1, width))(v) for v in vectors])


def unstack_modalities(sequence, count):
    """Split a ``(batch, count, width)`` sequence of modality tokens back into ``count`` vectors."""
    width = sequence.shape[-1]
    return [
        layers.Reshape((width,))(layers.Cropping1D((index, count - 1 - index))(sequence))
        for index in range(count)
    ]
