"""Images: decode PNG/JPEG, resize, scale to [0, 1]; random augmentation for training batches.

Replaces document 001 §5.2's ``ImageDataGenerator(rescale=1./255, color_mode=3)`` (a
generator API that Keras 3 no longer has, given an invalid colour mode) with TensorFlow
ops that run inside ``tf.data`` ``map(..., num_parallel_calls=tf.data.AUTOTUNE)``, and its
on-the-fly augmentation with ``keras.layers.Random*`` layers mapped over batches.

Example:
>>> import tensorflow as tf
>>> png = tf.io.encode_png(tf.zeros((5, 7, 3), tf.uint8))
>>> decode_image(png, image_size=(4, 4)).shape.as_list()
[4, 4, 3]
"""

import re

import keras
import tensorflow as tf

from mmzoo.data.errors import UnreadableFileError
from mmzoo.validation import check_choice, check_positive_number, check_seed, check_shape

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
COLOR_MODES = {"grayscale": 1, "rgb": 3, "rgba": 4}
FINGERPRINT_BUCKETS = 2**62
INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def check_channels(channels):
    check_choice("channels", channels, (1, 3, 4))
    return channels


def decode_image(contents, image_size=(224, 224), channels=3, interpolation="bilinear"):
    """Decode PNG/JPEG bytes to a float32 (height, width, channels) tensor in [0, 1].

    Works eagerly and inside ``tf.data`` ``map`` (graph mode). 16-bit PNGs are scaled by
    their own range; grayscale, RGB and RGBA files are converted to ``channels``.

    Args:
        contents: a scalar ``tf.string`` tensor (or bytes) holding the encoded file.
        image_size: (height, width) to resize to, or ``None`` to keep the decoded size.
        channels: 1, 3 or 4.
        interpolation: a ``tf.image.resize`` method.

    Returns:
        A ``tf.float32`` tensor of shape (height, width, channels), values in [0, 1].
    """
    check_channels(channels)
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    image = tf.io.decode_image(contents, channels=channels, dtype=tf.float32, expand_animations=False)
    image.set_shape((None, None, channels))
    if image_size is not None:
        image_size = check_shape("image_size", image_size, rank=2)
        image = tf.image.resize(image, image_size, method=interpolation)
        image.set_shape((*image_size, channels))
        # Interpolation (bicubic, lanczos) can overshoot the input range.
        image = tf.clip_by_value(image, 0.0, 1.0)
    return image


def load_image(path, image_size=(224, 224), channels=3, interpolation="bilinear"):
    """Read and decode an image file in TensorFlow ops (usable in ``tf.data`` ``map``).

    Returns:
        A ``tf.float32`` tensor (height, width, channels) in [0, 1]. A corrupt file raises
        ``tf.errors.InvalidArgumentError`` when the op runs; use :func:`read_image` (or the
        loaders, which check every file up front) to get an error that names the file.
    """
    return decode_image(tf.io.read_file(path), image_size, channels, interpolation)


def read_image(path, image_size=None, channels=3, interpolation="bilinear", return_fingerprint=False):
    """Read one image file eagerly, as a NumPy float32 (height, width, channels) array in [0, 1].

    Args:
        path: the file.
        image_size: (height, width) to resize to, or ``None`` (default) for the file's size.
        channels: 1, 3 or 4.
        interpolation: a ``tf.image.resize`` method.
        return_fingerprint: also return :func:`fingerprint` of the file's bytes (an int),
            which a ``tf.data`` pipeline can compare to notice a file changed since.

    Raises:
        UnreadableFileError: naming ``path``, when it cannot be read or decoded (missing,
            empty, truncated, not an image).
    """
    try:
        contents = tf.io.read_file(str(path))
    except tf.errors.OpError as error:
        raise UnreadableFileError(path, _op_error_reason(error)) from None
    try:
        image = decode_image(contents, image_size, channels, interpolation).numpy()
    except tf.errors.OpError as error:
        raise UnreadableFileError(path, f"not a readable PNG/JPEG image ({_op_error_reason(error)})") from None
    return (image, int(fingerprint(contents))) if return_fingerprint else image


def fingerprint(contents):
    """A 62-bit hash (int64 tensor) of a file's bytes, computed in TensorFlow ops (FarmHash)."""
    return tf.strings.to_hash_bucket_fast(contents, FINGERPRINT_BUCKETS)


def _op_error_reason(error):
    """The gist of a TensorFlow op error, without the function-node prefix and op suffix."""
    message = (getattr(error, "message", None) or str(error)).strip()
    message = re.sub(r"\{\{[^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:[^\]]*\].*$", "", message, flags=re.S)
    message = message.splitlines()[0].strip() if message else ""
    return message or type(error).__name__


def image_augmentation(
    seed=None,
    flip="horizontal",
    rotation=0.1,
    zoom=0.1,
    contrast=0.1,
    value_range=(0.0, 1.0),
    name="image_augmentation",
):
    """Random flip, rotation, zoom and contrast as a ``keras.Sequential``, for training batches.

    Map it over batched images of the training split only, e.g.
    ``train.map(lambda x, y: ({**x, "image": augment(x["image"], training=True)}, y))``,
    or pass it as ``augment=`` to the loaders. Outputs stay float32 in ``value_range``.

    Args:
        seed: an integer; each layer gets its own seed derived from it (``None``: unseeded).
        flip: "horizontal", "vertical", "horizontal_and_vertical" or ``None`` (no flip).
        rotation: rotation range as a fraction of a full turn (0.1 = +-36 degrees); 0 skips.
        zoom: zoom range as a fraction of the size (0.1 = +-10%); 0 skips.
        contrast: contrast factor range (0.1 = [0.9, 1.1]); 0 skips.
        value_range: range of the input pixel values.
        name: name of the Sequential.

    Returns:
        A ``keras.Sequential`` of ``keras.layers.Random*`` layers (float32, (batch, h, w, c)).
    """
    check_seed("seed", seed)
    if flip is not None:
        check_choice("flip", flip, ("horizontal", "vertical", "horizontal_and_vertical"))
    for key, value in (("rotation", rotation), ("zoom", zoom), ("contrast", contrast)):
        if value != 0:
            check_positive_number(key, value)

    def layer_seed(offset):
        return None if seed is None else seed + offset

    augmentation_layers = []
    if flip is not None:
        augmentation_layers.append(keras.layers.RandomFlip(flip, seed=layer_seed(0)))
    if rotation:
        augmentation_layers.append(
            keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=layer_seed(1))
        )
    if zoom:
        augmentation_layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=layer_seed(2)))
    if contrast:
        augmentation_layers.append(
            keras.layers.RandomContrast(contrast, value_range=tuple(value_range), seed=layer_seed(3))
        )
    return keras.Sequential(augmentation_layers, name=name)

