"""Building blocks several model families compose: pretrained backbones (modality tokens: mmzoo.layers.fusion_names)."""


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
