"""MicroISP (Ignatov et al., 2022): three colour branches of 4-channel residual attention blocks.

Published facts matched: one branch per output colour, every conv 4 channels wide (one GPU
texture slice), PReLU activations, residual blocks gated by an attention module, depth-to-space
per branch (4 channels -> one colour at 2x resolution), branches concatenated to RGB; about
158 KB as an FP32 TFLite file (the default `num_blocks=7` converts to 153 kB at 544x960;
8 blocks would give 171 kB).

Approximations (the paper gives no layer-exact listing we could verify):
- a block is conv3x3-PReLU-conv3x3-PReLU, multiplied by a channel gate, plus the block input;
- the gate is: 1x1 conv stride 3, two 3x3 convs stride 3 (each + PReLU) to shrink the map cheaply,
  global mean (MEAN), 1x1 conv + PReLU, 1x1 conv + sigmoid -> [B, 1, 1, 4]; 'same' padding so
  any input size works;
- the output head `tanh * 0.58 + 0.5` is replaced by a clip to [0, 1] (MINIMUM+RELU);
- `num_blocks` (per branch) was chosen to land on the published file size, not taken from the paper.
"""
import tf_keras as keras

from isp.layers import DepthToSpace
from isp.models import blocks
from isp.models.registry import register

COLOURS = ("r", "g", "b")


def _conv_prelu(x, filters, kernel_size, name, strides=1):
    return blocks.prelu(blocks.conv(x, filters, kernel_size, name, strides=strides), f"{name}_prelu")


def _gate(x, name):
    """Channel gate from a strided summary: [B, H, W, C] -> [B, 1, 1, C] in (0, 1)."""
    channels = x.shape[-1]
    g = _conv_prelu(x, channels, 1, f"{name}_s1", strides=3)
    g = _conv_prelu(g, channels, 3, f"{name}_s2", strides=3)
    g = _conv_prelu(g, channels, 3, f"{name}_s3", strides=3)
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_mean")(g)
    g = _conv_prelu(g, channels, 1, f"{name}_fc1")
    return blocks.conv(g, channels, 1, f"{name}_fc2", activation="sigmoid")


def _attention_block(x, name):
    """x + gate(y) * y with y = PReLU(conv3x3(PReLU(conv3x3(x)))): [B, H, W, C] -> [B, H, W, C]."""
    channels = x.shape[-1]
    y = _conv_prelu(x, channels, 3, f"{name}_c1")
    y = _conv_prelu(y, channels, 3, f"{name}_c2")
    y = keras.layers.Multiply(name=f"{name}_gated")([y, _gate(y, f"{name}_att")])
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _branch(raw, colour, channels, num_blocks, output):
    """One colour: [B, h, w, 4] -> [B, 2h, 2w, 1]."""
    x = _conv_prelu(raw, channels, 3, f"{colour}_stem")
    for i in range(num_blocks):
        x = _attention_block(x, f"{colour}_blk{i}")
    x = blocks.conv(x, 4, 3, f"{colour}_out", bias=0.5 if output == "clip" else 0.0)
    return DepthToSpace(2, name=f"{colour}_d2s")(x)


@register("microisp")
def microisp(input_shape, num_blocks=7, channels=4, output="clip"):
    """MicroISP: `[B, h, w, 4]` in [0, 1] -> `[B, 2h, 2w, 3]` in [0, 1]; any h, w."""
    blocks.check_output(output)
    raw = blocks.packed_input(input_shape)
    planes = [_branch(raw, colour, channels, num_blocks, output) for colour in COLOURS]
    rgb = keras.layers.Concatenate(name="rgb")(planes)
    return keras.Model(raw, blocks.output_activation(rgb, output, "out"), name="microisp")
