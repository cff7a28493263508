"""GPU-delegate-safe custom layers (named, serialisable, QAT-friendly)."""
import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="mobile_isp")
class DepthToSpace(keras.layers.Layer):
    """Pixel shuffle: [B, h, w, C*b*b] -> [B, h*b, w*b, C], lowered to TFLite DEPTH_TO_SPACE.

    A layer (not a Lambda, not a 6-D reshape) so that it converts to one GPU-delegate op and
    survives tfmot's model cloning for quantization-aware training.
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        if block_size < 2:
            raise ValueError("DepthToSpace block_size must be >= 2 (the GPU delegate rejects 1)")
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        scale = self.block_size
        return (b, None if h is None else h * scale, None if w is None else w * scale, c // scale ** 2)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


CUSTOM_OBJECTS = {"DepthToSpace": DepthToSpace}
