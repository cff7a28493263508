"""PUNET, the Mobile AI 2021 Learned Smartphone ISP challenge baseline (a PyNET-derived U-Net).

Re-implemented from the public baseline description and code (MediaTek-NeuroPilot
mai21-learned-smartphone-isp, `model.py`): five levels with 16/32/64/128/256 maps, each
"multi-block" = two 3x3 convs with leaky ReLU (alpha 0.2); 2x2 max-pool down; 3x3 stride-2
transposed convs (+ leaky ReLU) up, concatenated with the encoder features; level 5 has four
multi-blocks with two residual additions; a final transposed conv to full resolution with
num_maps_base // 4 maps and a 3x3 conv to RGB.

Approximations (stated, deliberate):
- the output head `tanh(x) * 0.58 + 0.5` (range [-0.08, 1.08]) is replaced by a clip to [0, 1]
  (MINIMUM+RELU), because every zoo model must output [0, 1];
- instance normalisation (a training flag, off by default in the baseline) is not offered;
- initialisers are Keras defaults, not the baseline's truncated normal (stddev 0.01).
Packed input height and width must be multiples of 16. At conversion the batch must be fixed to 1,
otherwise TRANSPOSE_CONV gets a runtime output shape (SHAPE/STRIDED_SLICE/PACK, CPU-only ops).
"""
import tf_keras as keras

from isp.models import blocks
from isp.models.registry import register

LEAKY_ALPHA = 0.2


def _conv_lrelu(x, filters, kernel_size, name):
    x = blocks.conv(x, filters, kernel_size, name)
    return keras.layers.LeakyReLU(LEAKY_ALPHA, name=f"{name}_lrelu")(x)


def _multi_block(x, filters, name):
    """Two 3x3 conv + leaky ReLU: [B, H, W, C] -> [B, H, W, filters]."""
    return _conv_lrelu(_conv_lrelu(x, filters, 3, f"{name}_a"), filters, 3, f"{name}_b")


def _up(x, filters, name):
    """3x3 stride-2 transposed conv + leaky ReLU: [B, H, W, C] -> [B, 2H, 2W, filters] (TRANSPOSE_CONV)."""
    x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=name)(x)
    return keras.layers.LeakyReLU(LEAKY_ALPHA, name=f"{name}_lrelu")(x)


def _pool(x, name):
    return keras.layers.MaxPooling2D(2, name=name)(x)


def _concat(tensors, name):
    return keras.layers.Concatenate(name=name)(tensors)


def _add(tensors, name):
    return keras.layers.Add(name=name)(tensors)


@register("punet")
def punet(input_shape, num_maps_base=16, output="clip"):
    """PUNET: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1]; h, w multiples of 16."""
    blocks.check_output(output)
    n = num_maps_base
    raw = blocks.packed_input(input_shape)
    l1 = _multi_block(raw, n, "l1_d1")
    l2 = _multi_block(_pool(l1, "pool1"), 2 * n, "l2_d1")
    l3 = _multi_block(_pool(l2, "pool2"), 4 * n, "l3_d1")
    l4 = _multi_block(_pool(l3, "pool3"), 8 * n, "l4_d1")
    l5 = _multi_block(_pool(l4, "pool4"), 16 * n, "l5_d1")
    l5 = _add([_multi_block(l5, 16 * n, "l5_d2"), l5], "l5_d2_add")
    l5 = _add([_multi_block(l5, 16 * n, "l5_d3"), l5], "l5_d3_add")
    l5 = _multi_block(l5, 16 * n, "l5_d4")

    x = _multi_block(_concat([l4, _up(l5, 8 * n, "t4")], "l4_cat"), 8 * n, "l4_d8")
    x = _multi_block(_concat([l3, _up(x, 4 * n, "t3")], "l3_cat"), 4 * n, "l3_d8")
    x = _concat([_multi_block(l2, 2 * n, "l2_d8"), _up(x, 2 * n, "t2")], "l2_cat")
    x = _multi_block(x, 2 * n, "l2_d9")
    x = _concat([_multi_block(l1, n, "l1_d10"), _up(x, n, "t1"), l1], "l1_cat")
    x = _multi_block(x, n, "l1_d12")

    x = _up(x, max(1, n // 4), "t0")
    x = blocks.conv(x, 3, 3, "out_conv", bias=0.5 if output == "clip" else 0.0)
    rgb = blocks.output_activation(x, output, "out")
    return keras.Model(raw, rgb, name="punet")
