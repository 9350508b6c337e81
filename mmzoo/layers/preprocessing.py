"""In-model preprocessing that pretrained backbones expect."""

import keras
from keras import layers, ops

_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="mmzoo")
class CaffeImagePreprocessing(layers.Layer):
    """The ImageNet "caffe" preprocessing of VGG16 and ResNet50, as a layer.

    Takes RGB images scaled to [0, 1] (mmzoo's convention), rescales them to
    [0, 255], reorders the channels to BGR and subtracts the ImageNet mean, as
    ``keras.applications.vgg16.preprocess_input`` does.

    Args:
        input_scale: the value of full intensity in the input (1.0 for [0, 1]).

    Example:
    >>> out = CaffeImagePreprocessing()(keras.ops.ones((1, 2, 2, 3)))
    >>> [round(float(v), 3) for v in out[0, 0, 0]]
    [151.061, 138.221, 131.32]
    """

    def __init__(self, input_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.input_scale = float(input_scale)

    def call(self, images):
        bgr = ops.flip(images, axis=-1) * (255.0 / self.input_scale)
        return bgr - ops.cast(ops.convert_to_tensor(_IMAGENET_BGR_MEAN), bgr.dtype)

    def get_config(self):
        return {**super().get_config(), "input_scale": self.input_scale}
