"""GPU-delegate-safe building blocks shared by the model zoo (functional tf_keras helpers).

Each helper takes a Keras tensor `[B, H, W, C]` and a `name` and returns a Keras tensor; every
layer it creates is named `name` or `name_<part>`. Only ops from REFERENCE §3 are produced:
CONV_2D (with fused ReLU), DEPTHWISE_CONV_2D, ADD, MUL, MEAN, LOGISTIC, PRELU, MINIMUM/RELU and
DEPTH_TO_SPACE (the custom layer, never a Lambda or a 6-D reshape).
"""
import tf_keras as keras

from isp.errors import ISPError
from isp.layers import DepthToSpace

OUTPUT_ACTIVATIONS = ("clip", "sigmoid")


def packed_input(input_shape, name="raw"):
    """The model input: packed Bayer `[B, h, w, 4]` in [0, 1]; `input_shape` is (h, w, 4), h/w may be None."""
    shape = tuple(input_shape)
    spatial_ok = all(d is None or int(d) >= 1 for d in shape[:2])
    if len(shape) != 3 or shape[2] != 4 or not spatial_ok:
        raise ISPError(f"input_shape {shape} is not a packed Bayer shape; "
                       f"pass (h, w, 4) or (None, None, 4)")
    return keras.Input(shape=shape, name=name)


def check_output(output):
    """Raise ISPError unless `output` names a supported output activation."""
    if output not in OUTPUT_ACTIVATIONS:
        raise ISPError(f"output={output!r} is not supported; use one of {OUTPUT_ACTIVATIONS}")


def conv(x, filters, kernel_size, name, strides=1, activation=None, bias=0.0):
    """'same'-padded Conv2D: [B, H, W, C] -> [B, ceil(H/s), ceil(W/s), filters]; bias starts at `bias`."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               activation=activation,
                               bias_initializer=keras.initializers.Constant(bias), name=name)(x)


def prelu(x, name):
    """Per-channel PReLU (alpha shared over H and W so any input size works): [B, H, W, C] -> same."""
    return keras.layers.PReLU(shared_axes=[1, 2], name=name)(x)


def residual_block(x, name):
    """x + conv3x3(relu(conv3x3(x))): [B, H, W, C] -> [B, H, W, C]."""
    channels = x.shape[-1]
    y = conv(x, channels, 3, f"{name}_conv1", activation="relu")
    y = conv(y, channels, 3, f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([x, y])


def channel_attention(x, name, reduction=4):
    """Squeeze-excite: x * sigmoid(conv1x1(relu(conv1x1(mean_HW(x))))): [B, H, W, C] -> [B, H, W, C].

    The global mean is GlobalAveragePooling2D(keepdims=True), which lowers to MEAN with constant
    axes; the [B, 1, 1, C] gate broadcasts in one MUL.
    """
    channels = x.shape[-1]
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_mean")(x)
    squeezed = 4 * max(1, round(channels / reduction / 4))  # a multiple of 4, like every other width
    g = conv(g, squeezed, 1, f"{name}_squeeze", activation="relu")
    g = conv(g, channels, 1, f"{name}_excite", activation="sigmoid")
    return keras.layers.Multiply(name=f"{name}_gate")([x, g])


def upsample(x, channels, name):
    """Learned x2 upsampling: conv1x1 to 4*channels then DepthToSpace(2): [B,H,W,C] -> [B,2H,2W,channels]."""
    x = conv(x, 4 * channels, 1, f"{name}_conv")
    return DepthToSpace(2, name=f"{name}_d2s")(x)


def output_activation(x, output, name):
    """Map to [0, 1]: "clip" = min(relu(x), 1) (MINIMUM+RELU, exact 0 and 1 under int8) or "sigmoid"."""
    check_output(output)
    if output == "clip":
        return keras.layers.ReLU(max_value=1.0, name=name)(x)
    return keras.layers.Activation("sigmoid", name=name)(x)


def rgb_tail(x, output, name, kernel_size=3):
    """Cheap full-resolution tail: [B, h, w, C] -> conv(12) -> DepthToSpace(2) -> [B, 2h, 2w, 3] in [0, 1].

    With the "clip" output the last conv's bias starts at 0.5 so initial outputs sit mid-range,
    away from the clipped (zero-gradient) region.
    """
    check_output(output)
    x = conv(x, 12, kernel_size, f"{name}_conv", bias=0.5 if output == "clip" else 0.0)
    x = DepthToSpace(2, name=f"{name}_d2s")(x)
    return output_activation(x, output, f"{name}_out")
