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
            "They are downloaded on first use, which needs the network; offline, put the file "
            f"{imagenet_weight_file(application.__name__, input_shape)} into {keras_cache_models()} "
            "(Keras' cache) or build with weights=None."
        ) from error


# The file keras.applications downloads for each backbone's ImageNet weights without the top.
IMAGENET_WEIGHT_FILES = {
    "VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "EfficientNetB0": "efficientnetb0_notop.h5",
}


def imagenet_weight_file(application_name, input_shape=(224, 224, 3)):
    """The name of the file Keras keeps a backbone's ImageNet weights (no top) in."""
    if application_name == "MobileNetV2":
        size = input_shape[0] if input_shape and input_shape[0] in (96, 128, 160, 192, 224) else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
    return IMAGENET_WEIGHT_FILES.get(application_name, f"the {application_name} ImageNet weight file")


def keras_cache_models():
    """Keras' cache folder of downloaded weights: ``$KERAS_HOME/models`` (``~/.keras/models`` by default)."""
    import os

    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")
