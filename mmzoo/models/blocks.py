"""Building blocks several model families compose: pretrained backbones, a fusion chosen by name.

(Modality tokens and the fusion operators themselves: :mod:`mmzoo.layers.fusion_names`.)
"""

from keras import layers

from mmzoo.layers.fusion_names import apply_fusion


def fuse_by_name(fusion, vectors, width, name="fusion"):
    """``vectors`` (a dict of ``(batch, features)`` modality vectors) fused by the operator named ``fusion``.

    The document models whose fusion step is a choice call this for every choice but
    the document's own (which keeps its layers, names and weights). The fusion
    operators take vectors of one width: a vector of another width than ``width`` first
    goes through ``Dense(width, relu)``, named ``<key>_to_fusion``; a vector of that
    width already enters as it is.

    Args:
        fusion: a key of :data:`mmzoo.layers.fusion_names.FUSIONS`.
        vectors: modality name -> vector, in the order the operator sees them.
        width: the common width.
        name: prefix of the fusion's layer names.

    Returns:
        The fused ``(batch, features)`` tensor.

    Example:
    >>> import keras
    >>> vectors = {"image": keras.Input((32,)), "text": keras.Input((8,))}
    >>> tuple(fuse_by_name("gmu", vectors, 16).shape)
    (None, 16)
    """
    common = [
        vector if vector.shape[-1] == width
        else layers.Dense(width, activation="relu", name=f"{key}_to_fusion")(vector)
        for key, vector in vectors.items()
    ]
    return apply_fusion(fusion, common, width, name=name)


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
