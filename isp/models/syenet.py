"""SYENet-style ISP (Gou et al., ICCV 2023; MAI 2022 Learned ISP winner), inference (slim) form.

Published facts matched: about 6K parameters (5,664 at the default 12 channels), 12 channels,
two multiplicative "quadratic connection" units (product of two conv branches plus a learned
per-channel bias), a channel-attention gate, pixel shuffle to full resolution and a 3x3 conv on RGB:
- head = (conv5x5 -> PReLU -> conv3x3)(x) * conv5x5(x), then per-channel affine;
- body = conv3x3(h) * conv1x1(h), then per-channel affine (12 channels = 3 colours x 2x2);
- gate = sigmoid(conv1x1(PReLU(conv1x1(mean_HW(body))))), body *= gate;
- tail = conv3x3(DepthToSpace(2)(body)) -> [B, 2h, 2w, 3].

Approximations:
- the training-time re-parameterised branches (1x1/3x1/1x3/BN convs summed into one kernel) are not
  built: this is the deployed single-kernel form, trained directly;
- the unit's "+ bias" (and the training form's fixed 0.1 scale) is a learned per-channel affine,
  a 1x1 DepthwiseConv2D (scale starts at 0.1, bias at 0): 12 extra parameters per unit;
- the raw output is clipped to [0, 1] (MINIMUM+RELU); the paper's warm-up head and
  outlier-aware loss belong to training, not to the model.
"""
import tf_keras as keras

from isp.layers import DepthToSpace
from isp.models import blocks
from isp.models.registry import register


def _affine(x, name):
    """Learned per-channel scale and bias: [B, H, W, C] -> [B, H, W, C] (DEPTHWISE_CONV_2D 1x1)."""
    return keras.layers.DepthwiseConv2D(1, depthwise_initializer=keras.initializers.Constant(0.1),
                                        name=name)(x)


def _quadratic(a, b, name):
    """Quadratic connection unit: affine(a * b)."""
    return _affine(keras.layers.Multiply(name=f"{name}_mul")([a, b]), f"{name}_affine")


@register("syenet")
def syenet(input_shape, channels=12, output="clip"):
    """SYENet: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1]; any h, w."""
    blocks.check_output(output)
    raw = blocks.packed_input(input_shape)
    a = blocks.prelu(blocks.conv(raw, channels, 5, "head_a1"), "head_a1_prelu")
    a = blocks.conv(a, channels, 3, "head_a2")
    h = _quadratic(a, blocks.conv(raw, channels, 5, "head_b"), "head")
    x = _quadratic(blocks.conv(h, 12, 3, "body_a"), blocks.conv(h, 12, 1, "body_b"), "body")
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name="att_mean")(x)
    g = blocks.prelu(blocks.conv(g, 12, 1, "att_fc1"), "att_fc1_prelu")
    g = blocks.conv(g, 12, 1, "att_fc2", activation="sigmoid")
    x = keras.layers.Multiply(name="att_gate")([x, g])
    x = DepthToSpace(2, name="tail_d2s")(x)
    x = blocks.conv(x, 3, 3, "tail_conv", bias=0.5 if output == "clip" else 0.0)
    return keras.Model(raw, blocks.output_activation(x, output, "out"), name="syenet")
