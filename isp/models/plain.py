"""Plain baseline: three 3x3 convs at the packed resolution and a pixel shuffle.

`[B, h, w, 4]` -> conv(width)+ReLU -> conv(width)+ReLU -> conv(12) -> DepthToSpace(2) -> clip
-> `[B, 2h, 2w, 3]` in [0, 1]. A floor for fidelity and latency comparisons; any h, w.
"""
import tf_keras as keras

from isp.models import blocks
from isp.models.registry import register


@register("plain")
def plain(input_shape, width=16, output="clip"):
    """Three convs + depth-to-space: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1]."""
    blocks.check_output(output)
    raw = blocks.packed_input(input_shape)
    x = blocks.conv(raw, width, 3, "conv1", activation="relu")
    x = blocks.conv(x, width, 3, "conv2", activation="relu")
    return keras.Model(raw, blocks.rgb_tail(x, output, "tail"), name="plain")
