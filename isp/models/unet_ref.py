"""Reference baseline: a plain 3-level U-Net, the yardstick the default family must beat.

`[B, h, w, 4]` packed RAW -> `[B, 2h, 2w, 3]` RGB in [0, 1]. Widths 16-32-64 (levels at packed,
1/2 and 1/4 resolution), two 3x3 conv+ReLU per level, 2x2 max-pool down, 1x1 conv + DepthToSpace(2)
up, concatenated skips, a 1x1 conv to 12 channels + DepthToSpace(2) and a sigmoid at the end
(about 119 K parameters). Deliberately textbook: no residuals, no attention, no global context.
Packed input height and width must be multiples of 4.
"""
import tf_keras as keras

from isp.layers import DepthToSpace
from isp.models import blocks
from isp.models.registry import register


def _double_conv(x, width, name):
    """Two 3x3 conv + ReLU: [B, H, W, C] -> [B, H, W, width]."""
    x = blocks.conv(x, width, 3, f"{name}_conv1", activation="relu")
    return blocks.conv(x, width, 3, f"{name}_conv2", activation="relu")


@register("unet3_ref")
def unet3_ref(input_shape, widths=(16, 32, 64), output="sigmoid"):
    """Plain 3-level U-Net: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1]."""
    blocks.check_output(output)
    raw = blocks.packed_input(input_shape)
    x, skips = raw, []
    for k, width in enumerate(widths):
        if k:
            x = keras.layers.MaxPooling2D(2, name=f"down{k}")(x)
        x = _double_conv(x, width, f"enc{k}")
        skips.append(x)
    for k in reversed(range(len(widths) - 1)):
        x = blocks.upsample(x, widths[k], f"up{k}")
        x = keras.layers.Concatenate(name=f"up{k}_skip")([x, skips[k]])
        x = _double_conv(x, widths[k], f"dec{k}")
    x = blocks.conv(x, 12, 1, "tail_conv")
    x = DepthToSpace(2, name="tail_d2s")(x)
    return keras.Model(raw, blocks.output_activation(x, output, "tail_out"), name="unet3_ref")
