"""Our compact U-Net family, the product default: `[B, h, w, 4]` packed RAW -> `[B, 2h, 2w, 3]` RGB in [0, 1].

Designed for Full HD (544x960x4 packed input) on a mobile GPU:
- every level runs at or below the packed resolution; widths double per level (width * 2**k), so
  each 3x3 conv costs the same MACs per packed pixel at every level and all channel counts are
  multiples of 4 (the GPU stores tensors in 4-channel slices);
- down: stride-2 3x3 conv; up: 1x1 conv + DepthToSpace(2); skips are ADD (no concat copy);
- residual blocks (conv3x3-relu-conv3x3 + add) on both sides, squeeze-excite channel attention
  at the bottleneck for global colour/illumination context (MEAN + MUL);
- the only full-resolution work is the tail: conv to 12 channels, DepthToSpace(2), clip.
Packed input height and width must be multiples of 2**depth (544x960 is, for depth <= 5; the
registered sizes use depth 1).
"""
import tf_keras as keras

from isp.errors import ISPError
from isp.models import blocks
from isp.models.registry import register

DEFAULT_MODEL = "unet_s"


def compact_unet(input_shape, width, depth, blocks_per_level, attention, output, name):
    """Build the compact U-Net: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1].

    width: level-0 channels (multiple of 4); level k has width * 2**k channels.
    depth: number of stride-2 downsamplings (h and w must be multiples of 2**depth).
    blocks_per_level: residual blocks per level in the encoder, the bottleneck and the decoder.
    attention: squeeze-excite gate at the bottleneck. output: "clip" or "sigmoid".
    """
    if width < 4 or width % 4 or depth < 1 or blocks_per_level < 1:
        raise ISPError(f"{name}: need width a multiple of 4 (got {width}), depth >= 1 (got {depth}), "
                       f"blocks_per_level >= 1 (got {blocks_per_level})")
    blocks.check_output(output)
    widths = [width * 2 ** k for k in range(depth + 1)]
    raw = blocks.packed_input(input_shape)
    x = blocks.conv(raw, width, 3, "stem", activation="relu")
    skips = []
    for k in range(depth):
        for b in range(blocks_per_level):
            x = blocks.residual_block(x, f"enc{k}_res{b}")
        skips.append(x)
        x = blocks.conv(x, widths[k + 1], 3, f"down{k + 1}", strides=2, activation="relu")
    for b in range(blocks_per_level):
        x = blocks.residual_block(x, f"mid_res{b}")
    if attention:
        x = blocks.channel_attention(x, "mid_att")
    for k in reversed(range(depth)):
        x = blocks.upsample(x, widths[k], f"up{k}")
        x = keras.layers.Add(name=f"up{k}_skip")([x, skips[k]])
        for b in range(blocks_per_level):
            x = blocks.residual_block(x, f"dec{k}_res{b}")
    rgb = blocks.rgb_tail(x, output, "tail")
    return keras.Model(raw, rgb, name=name)


@register("unet_tiny", family="ours")
def unet_tiny(input_shape, width=8, depth=1, blocks_per_level=1, attention=True, output="clip"):
    """Smallest size, about 2.6 GMACs per Full HD frame (widths 8-16).

    Fidelity benchmark (benchmarks/RESULTS.md, data v4, 3 seeds): held-out 22.66 +- 0.12 dB at
    0.59x the desktop latency of unet_s (22.81 dB); on the Pareto front.
    """
    return compact_unet(input_shape, width, depth, blocks_per_level, attention, output, "unet_tiny")


@register("unet_s", family="ours")
def unet_s(input_shape, width=12, depth=1, blocks_per_level=1, attention=True, output="clip"):
    """The default: about 5.5 GMACs per Full HD frame (widths 12-24), inside a 20 ms GPU budget.

    Fidelity benchmark (benchmarks/RESULTS.md, data v4, 3 seeds): val 23.85, held-out 22.81 dB,
    +0.25 / +0.08 dB over the plain 3-level U-Net `unet3_ref` at 1/1.44 of its desktop latency, on
    the Pareto front. Deeper variants with global colour context did not help held-out (RESULTS.md).
    """
    return compact_unet(input_shape, width, depth, blocks_per_level, attention, output, "unet_s")


@register("unet_base", family="ours")
def unet_base(input_shape, width=24, depth=1, blocks_per_level=1, attention=True, output="clip"):
    """Larger size, about 20 GMACs per Full HD frame (widths 24-48), for the 50 ms end.

    Fidelity benchmark as above: val 24.28, held-out 23.01 dB at 3.0x the desktop latency of unet_s;
    on the Pareto front.
    """
    return compact_unet(input_shape, width, depth, blocks_per_level, attention, output, "unet_base")
