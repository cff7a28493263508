"""Emit a functional tf_keras model from the rewritten IR: NCHW ONNX nodes -> NHWC Keras layers.

Every data tensor of rank 4 is NHWC on the Keras side (rank 2 [N, C] is the same on both); axis
attributes and constant operands are moved to that layout here. Only GPU-delegate-safe layers are
produced (isp.layers and stock tf_keras convs, activations, pooling, merges).
"""
import re

import numpy as np
import tf_keras as keras

from isp import layers
from isp.errors import ISPError
from isp.onnx_import import resize

NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}
LOWEST = float(np.finfo(np.float32).min)

# what to write in PyTorch instead of an op this importer (and the GPU delegate) does not take
ADVICE = {
    "BatchNormalization": "its statistics are computed in the graph: export the model in eval mode "
                          "(model.eval()) so that BatchNorm2d uses its running statistics",
    "Transpose": "avoid permute()/transpose() of activations; use nn.PixelShuffle / nn.PixelUnshuffle for "
                 "pixel (un)shuffle",
    "Gather": "avoid indexing activations with index lists (x[:, [2, 1, 0]]); reorder the producing conv's "
              "weights, or slice with x[:, a:b]",
    "GatherElements": "avoid torch.gather; the GPU delegate cannot run it",
    "Softmax": "avoid softmax over activations in an ISP (the delegate only takes it on the channel axis); use "
               "sigmoid gates",
    "InstanceNormalization": "replace InstanceNorm2d by BatchNorm2d (folded into the conv) or remove it",
    "LayerNormalization": "replace LayerNorm by BatchNorm2d (folded into the conv) or remove it",
    "GroupNormalization": "replace GroupNorm by BatchNorm2d (folded into the conv) or remove it",
    "Einsum": "write the contraction as a Conv2d 1x1 or a Linear layer",
    "GridSample": "replace F.grid_sample by F.interpolate or a learned upsampling",
    "Expand": "let broadcasting do it instead of x.expand(...)",
    "Tile": "let broadcasting do it instead of x.repeat(...)",
    "Where": "replace torch.where by min/max/relu arithmetic",
    "ConvInteger": "export the float model; quantize with `isp import --quant int8` or QAT",
    "QuantizeLinear": "export the float model; quantize with `isp import --quant int8` or QAT",
    "DequantizeLinear": "export the float model; quantize with `isp import --quant int8` or QAT",
}
GENERIC_ADVICE = ("write that part with Conv2d, ConvTranspose2d, BatchNorm2d, ReLU/LeakyReLU/PReLU/Sigmoid/Tanh/"
                  "Hardswish, +,-,*,/, torch.cat, nn.PixelShuffle, F.interpolate, pooling or F.pad")


class Context:
    """Emission state: the IR `graph`, the `probe` shapes, Keras tensors by name, used layer names."""

    def __init__(self, graph, probe):
        self.graph, self.probe = graph, probe
        self.tensors = {}
        self.names = set()

    def const(self, name):
        """The constant named `name` (np.ndarray), or None when it is data or absent."""
        return self.graph.consts.get(name) if name else None

    def need_const(self, node, index, what):
        """Input `index` of `node` as a constant; ISPError when the graph computes it at run time."""
        value = self.const(node.inputs[index]) if index < len(node.inputs) else None
        if value is None:
            raise ISPError(f"{node.op} node {node.name!r}: its {what} must be a constant (a parameter or a "
                           "literal), not a tensor computed in the graph")
        return value

    def data(self, name):
        """The Keras tensor of data tensor `name`."""
        if name not in self.tensors:
            raise ISPError(f"tensor {name!r} is a constant where the importer expects an activation; feed "
                           "constants into ops as parameters, not as a model input")
        return self.tensors[name]

    def shapes(self, name):
        """NCHW shapes of data tensor `name`, one per probe run."""
        return self.probe.shapes[name]

    def rank(self, name):
        return len(self.shapes(name)[0])

    def layer_name(self, node, suffix=""):
        """A unique Keras layer name made from the node's name."""
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{node.name}{suffix}").strip("_.") or node.op.lower()
        name, index = base, 1
        while name in self.names:
            index += 1
            name = f"{base}_{index}"
        self.names.add(name)
        return name


def unsupported_lines(graph):
    """One line per op type the importer cannot emit: the op, its first node and what to write instead."""
    lines, seen = [], set()
    for node in graph.nodes:
        if node.op not in HANDLERS and node.op not in seen:
            seen.add(node.op)
            count = sum(n.op == node.op for n in graph.nodes)
            lines.append(f"unsupported ONNX op {node.op} (node {node.name!r}"
                         f"{f' and {count - 1} more' if count > 1 else ''}): {ADVICE.get(node.op, GENERIC_ADVICE)}")
    return lines


def emit(graph, probe, input_range=None, output_range=None):
    """The functional tf_keras model of `graph`: raw [1, H, W, C] NHWC (H, W dynamic) -> its output NHWC.

    input_range/output_range (lo, hi): when given, the model is wrapped in the toolkit's convention:
    its input in [0, 1] is mapped to lo..hi before the graph, and the graph's lo..hi output back to
    [0, 1] after it (MUL/ADD layers; a (0, 1) range adds none).
    """
    problems = unsupported_lines(graph)
    if problems:
        raise ISPError("\n".join(problems))
    ctx = Context(graph, probe)
    raw = keras.Input((None, None, graph.input_dims[1]), name="raw")
    ctx.tensors[graph.input_name] = _affine(raw, input_range, "input_range", inverse=False)
    for node in graph.nodes:
        outputs = HANDLERS[node.op](ctx, node)
        ctx.tensors.update(zip(node.outputs, outputs if isinstance(outputs, list) else [outputs]))
    if ctx.rank(graph.output_name) != 4:
        raise ISPError(f"the graph output {graph.output_name!r} has rank {ctx.rank(graph.output_name)}; an ISP "
                       "model outputs RGB [1, 3, 2H, 2W]")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", graph.name) or "imported"
    out = _affine(ctx.data(graph.output_name), output_range, "output_range", inverse=True)
    return keras.Model(raw, out, name=name)


def _affine(x, value_range, name, inverse):
    """x -> lo + x * (hi - lo) (or its inverse, (x - lo) / (hi - lo)) as ConstantOp layers; x itself for
    None or (0, 1)."""
    if value_range is None or tuple(value_range) == (0.0, 1.0):
        return x
    lo, hi = (float(v) for v in value_range)
    steps = [("add", -lo), ("mul", 1.0 / (hi - lo))] if inverse else [("mul", hi - lo), ("add", lo)]
    for op, value in steps:
        if (op == "add" and value != 0.0) or (op == "mul" and value != 1.0):
            layer = layers.ConstantOp(op, (), name=f"{name}_{op}")
            x = layer(x)
            layer.set_weights([np.float32(value)])
    return x


def _apply(layer, inputs, weights=None):
    """Call `layer` on `inputs` and set its weights (a list of arrays) when given."""
    out = layer(inputs)
    if weights is not None:
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return out


def _ints(value, count, default):
    """An int list of `count` entries from an attribute value (None -> `default` repeated)."""
    return [int(v) for v in value] if value is not None else [default] * count


# ---- convolutions -------------------------------------------------------------------------------
def _conv_padding(node, kernel, strides, dilations):
    """("same" | "valid", explicit ((top, bottom), (left, right)) or None) for a Conv node's padding."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    effective = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    same = [((e - 1) // 2, e - 1 - (e - 1) // 2) for e in effective]  # TF 'same' at stride 1
    if auto == "SAME_UPPER":
        return "same", None
    if auto == "VALID":
        return "valid", None
    if auto == "SAME_LOWER":
        if any(s != 1 for s in strides):
            raise ISPError(f"{node.op} node {node.name!r}: auto_pad SAME_LOWER with stride > 1 depends on the input "
                           "size; export with explicit padding=")
        return "valid", tuple((b, a) for a, b in same)
    pads = _ints(node.attrs.get("pads"), 4, 0)
    explicit = ((pads[0], pads[2]), (pads[1], pads[3]))
    if not any(pads):
        return "valid", None
    if all(s == 1 for s in strides) and list(explicit) == same:
        return "same", None
    return "valid", explicit


def _pad_layer(ctx, node, x, explicit, value=0.0):
    """Explicit H/W padding before a conv or pool (PAD / PADV2)."""
    if explicit is None:
        return x
    if value == 0.0:
        return keras.layers.ZeroPadding2D(explicit, name=ctx.layer_name(node, "_pad"))(x)
    return layers.Pad(explicit, "constant", value, name=ctx.layer_name(node, "_pad"))(x)


def conv(ctx, node):
    """Conv: groups (dense, depthwise, grouped), dilations, strides, explicit/asymmetric/auto pads."""
    x = ctx.data(node.inputs[0])
    weights = ctx.need_const(node, 1, "weight")
    bias = ctx.const(node.inputs[2]) if len(node.inputs) > 2 else None
    cout, cin_group, *kernel = weights.shape
    if len(kernel) != 2:
        raise ISPError(f"Conv node {node.name!r}: {len(kernel)}-D convolution; only Conv2d is supported")
    strides, dilations = _ints(node.attrs.get("strides"), 2, 1), _ints(node.attrs.get("dilations"), 2, 1)
    group = int(node.attrs.get("group", 1))
    padding, explicit = _conv_padding(node, kernel, strides, dilations)
    x = _pad_layer(ctx, node, x, explicit)
    common = dict(strides=strides, padding=padding, dilation_rate=dilations, use_bias=bias is not None,
                  name=ctx.layer_name(node))
    cin = cin_group * group
    if group > 1 and group == cin:
        multiplier = cout // cin
        layer = keras.layers.DepthwiseConv2D(kernel, depth_multiplier=multiplier, **common)
        kernel_value = weights.reshape(cin, multiplier, *kernel).transpose(2, 3, 0, 1)
    else:
        layer = keras.layers.Conv2D(cout, kernel, groups=group, **common)
        kernel_value = weights.transpose(2, 3, 1, 0)
    return _apply(layer, x, [kernel_value] + ([bias] if bias is not None else []))


def conv_transpose(ctx, node):
    """ConvTranspose (group 1, dilation 1): TRANSPOSE_CONV 'valid', then a crop for pads/output_padding."""
    x = ctx.data(node.inputs[0])
    weights = ctx.need_const(node, 1, "weight")
    bias = ctx.const(node.inputs[2]) if len(node.inputs) > 2 else None
    cin, cout, *kernel = weights.shape
    if int(node.attrs.get("group", 1)) != 1 or any(d != 1 for d in _ints(node.attrs.get("dilations"), 2, 1)):
        raise ISPError(f"ConvTranspose node {node.name!r}: groups or dilation are not supported; use "
                       "ConvTranspose2d(groups=1, dilation=1) or Conv2d + nn.PixelShuffle")
    if node.attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or "output_shape" in node.attrs:
        raise ISPError(f"ConvTranspose node {node.name!r}: auto_pad/output_shape are not supported; export with "
                       "explicit padding= and output_padding=")
    strides = _ints(node.attrs.get("strides"), 2, 1)
    pads = _ints(node.attrs.get("pads"), 4, 0) if node.attrs.get("auto_pad", "NOTSET") == "NOTSET" else [0] * 4
    extra = _ints(node.attrs.get("output_padding"), 2, 0)
    crop = ((pads[0], pads[2] - extra[0]), (pads[1], pads[3] - extra[1]))
    if min(crop[0] + crop[1]) < 0:
        raise ISPError(f"ConvTranspose node {node.name!r}: output_padding larger than padding is not supported")
    layer = keras.layers.Conv2DTranspose(cout, kernel, strides=strides, padding="valid", output_padding=0,
                                         use_bias=bias is not None, name=ctx.layer_name(node))
    y = _apply(layer, x, [weights.transpose(2, 3, 1, 0)] + ([bias] if bias is not None else []))
    if any(crop[0] + crop[1]):
        y = keras.layers.Cropping2D(crop, name=ctx.layer_name(node, "_crop"))(y)
    return y


def channel_affine(ctx, node):
    """ChannelAffine (from rewrite.channel_affines): x * scale + bias per channel, a trainable 1x1
    DEPTHWISE_CONV_2D (as the native models write it)."""
    scale, bias = (ctx.graph.consts[t].reshape(-1) for t in node.inputs[1:])
    layer = keras.layers.DepthwiseConv2D(1, name=ctx.layer_name(node))
    return _apply(layer, ctx.data(node.inputs[0]), [scale.reshape(1, 1, -1, 1), bias])


def channel_permute(ctx, node):
    """ChannelPermute (from rewrite.fold_crd): out[k] = in[perm[k]] as a frozen 1x1 CONV_2D."""
    perm = node.attrs["perm"]
    kernel = np.zeros((1, 1, len(perm), len(perm)), np.float32)
    kernel[0, 0, perm, np.arange(len(perm))] = 1.0
    layer = keras.layers.Conv2D(len(perm), 1, use_bias=False, trainable=False, name=ctx.layer_name(node))
    return _apply(layer, ctx.data(node.inputs[0]), [kernel])


def gemm(ctx, node):
    """Gemm / MatMul of [N, K] activations with constant weights: a Dense layer (FULLY_CONNECTED)."""
    x = ctx.data(node.inputs[0])
    if ctx.rank(node.inputs[0]) != 2 or node.attrs.get("transA", 0):
        raise ISPError(f"{node.op} node {node.name!r}: only [N, K] activations times constant weights are "
                       "supported (nn.Linear after flattening a pooled [N, C, 1, 1] tensor)")
    weights = ctx.need_const(node, 1, "weight").astype(np.float64)
    if node.attrs.get("transB", 0):
        weights = weights.T
    weights = weights * node.attrs.get("alpha", 1.0)
    bias = ctx.const(node.inputs[2]) if len(node.inputs) > 2 else None
    bias = None if bias is None else np.broadcast_to(bias * node.attrs.get("beta", 1.0), (weights.shape[1],))
    layer = keras.layers.Dense(weights.shape[1], use_bias=bias is not None, name=ctx.layer_name(node))
    return _apply(layer, x, [weights] + ([bias] if bias is not None else []))


# ---- activations and elementwise ----------------------------------------------------------------
def activation(keras_name):
    """Handler for an activation with a stock tf_keras form."""
    def handler(ctx, node):
        return keras.layers.Activation(keras_name, name=ctx.layer_name(node))(ctx.data(node.inputs[0]))
    return handler


def unary(function, alpha_attr=None, beta_attr=None, alpha=0.0, beta=0.0):
    """Handler for an isp.layers.Unary function, its parameters read from node attributes."""
    def handler(ctx, node):
        a = node.attrs.get(alpha_attr, alpha) if alpha_attr else alpha
        b = node.attrs.get(beta_attr, beta) if beta_attr else beta
        return layers.Unary(function, a, b, name=ctx.layer_name(node))(ctx.data(node.inputs[0]))
    return handler


def relu(ctx, node):
    return keras.layers.ReLU(name=ctx.layer_name(node))(ctx.data(node.inputs[0]))


def leaky_relu(ctx, node):
    return keras.layers.LeakyReLU(node.attrs.get("alpha", 0.01), name=ctx.layer_name(node))(ctx.data(node.inputs[0]))


def prelu(ctx, node):
    """PRelu: per-channel slope [C, 1, 1] (nn.PReLU(C)) or one slope (nn.PReLU()), shared over H and W."""
    x = ctx.data(node.inputs[0])
    slope = ctx.need_const(node, 1, "slope")
    channels = ctx.shapes(node.inputs[0])[0][1]
    if slope.size == 1:
        slope = np.full(channels, float(slope.ravel()[0]))
    elif ctx.rank(node.inputs[0]) == 4 and slope.ndim >= 3 and slope.shape[-3] == channels and slope.size == channels:
        slope = slope.ravel()
    elif ctx.rank(node.inputs[0]) == 2 and slope.size == channels:
        slope = slope.ravel()
    else:
        raise ISPError(f"PRelu node {node.name!r}: slope of shape {slope.shape} is neither per channel nor shared")
    if ctx.rank(node.inputs[0]) == 2:
        return _apply(keras.layers.PReLU(name=ctx.layer_name(node)), x, [slope])
    return _apply(keras.layers.PReLU(shared_axes=[1, 2], name=ctx.layer_name(node)), x,
                  [slope.reshape(1, 1, -1)])


def clip(ctx, node):
    """Clip: relu (0, inf), RELU6 (0, 6), MINIMUM+RELU (0, 1; not RELU_0_TO_1), else MAXIMUM/MINIMUM."""
    x = ctx.data(node.inputs[0])
    if ctx.graph.opset >= 11:
        lo, hi = (ctx.const(node.inputs[i]) if i < len(node.inputs) else None for i in (1, 2))
        if any(node.inputs[i] and ctx.const(node.inputs[i]) is None for i in (1, 2) if i < len(node.inputs)):
            raise ISPError(f"Clip node {node.name!r}: its bounds must be constants")
    else:
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
    lo = None if lo is None else float(np.asarray(lo).ravel()[0])
    hi = None if hi is None else float(np.asarray(hi).ravel()[0])
    name = ctx.layer_name(node)
    if lo == 0.0:
        return keras.layers.ReLU(max_value=hi, name=name)(x)
    if lo is not None and hi is not None:
        return layers.Unary("clip", lo, hi, name=name)(x)
    if lo is None and hi is None:
        return x
    op, bound = ("max", lo) if hi is None else ("min", hi)
    return _apply(layers.ConstantOp(op, (), name=name), x, [np.float32(bound)])


def _nhwc_const(node, value, data_rank):
    """A constant operand in the Keras layout, broadcastable against NHWC data of `data_rank`."""
    value = np.asarray(value, np.float32)
    if value.size == 1:
        return value.reshape(())
    if data_rank == 4 and value.ndim == 4:
        return value.transpose(0, 2, 3, 1)
    if data_rank == 4 and value.ndim == 3:
        return value.transpose(1, 2, 0)
    if data_rank == 2 and value.ndim <= 2:
        return value
    raise ISPError(f"{node.op} node {node.name!r}: a constant of shape {value.shape} broadcasts along the width "
                   "axis; give per-channel constants the shape [C, 1, 1]")


BINARY_LAYERS = {"Add": keras.layers.Add, "Sub": keras.layers.Subtract, "Mul": keras.layers.Multiply}
BINARY_OPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Max": "max", "Min": "min", "Pow": "pow"}


def binary(ctx, node):
    """Add/Sub/Mul/Div/Max/Min/Pow of two activations (broadcast [N,C,1,1] allowed) or with a constant."""
    if len(node.inputs) != 2:
        raise ISPError(f"{node.op} node {node.name!r}: {len(node.inputs)} operands; write it as a chain of "
                       "two-operand ops")
    a, b = node.inputs
    ca, cb = ctx.const(a), ctx.const(b)
    op = BINARY_OPS[node.op]
    if ca is None and cb is None:
        if ctx.rank(a) != ctx.rank(b):
            raise ISPError(f"{node.op} node {node.name!r}: operands of rank {ctx.rank(a)} and {ctx.rank(b)}; "
                           "reshape the [N, C] one to [N, C, 1, 1] first")
        layer_type = BINARY_LAYERS.get(node.op)
        layer = layer_type(name=ctx.layer_name(node)) if layer_type else layers.Binary(op, name=ctx.layer_name(node))
        return layer([ctx.data(a), ctx.data(b)])
    if ca is not None and cb is not None:
        raise ISPError(f"{node.op} node {node.name!r}: both operands are constants (should have been folded)")
    data, constant = (b, ca) if ca is not None else (a, cb)
    value = _nhwc_const(node, constant, ctx.rank(data))
    layer = layers.ConstantOp(op, value.shape, constant_first=ca is not None, name=ctx.layer_name(node))
    return _apply(layer, ctx.data(data), [value])


def concat(ctx, node):
    rank = ctx.rank(node.inputs[0])
    axis = int(node.attrs["axis"]) % rank
    axis = NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis
    inputs = [ctx.data(t) for t in node.inputs]
    if len(inputs) == 1:
        return inputs[0]
    return keras.layers.Concatenate(axis=axis, name=ctx.layer_name(node))(inputs)


def passthrough(ctx, node):
    """Identity, Dropout (inference), Cast between float types: the input itself."""
    if node.op == "Cast" and node.attrs.get("to") not in (1, 10, 11):  # FLOAT, FLOAT16, DOUBLE
        raise ISPError(f"Cast node {node.name!r}: casting activations to a non-float type is not supported")
    return ctx.data(node.inputs[0])


# ---- pixel shuffle, resize ----------------------------------------------------------------------
def depth_to_space(ctx, node):
    _check_dcr(node)
    return layers.DepthToSpace(int(node.attrs["blocksize"]), name=ctx.layer_name(node))(ctx.data(node.inputs[0]))


def space_to_depth(ctx, node):
    _check_dcr(node)
    return layers.SpaceToDepth(int(node.attrs["blocksize"]), name=ctx.layer_name(node))(ctx.data(node.inputs[0]))


def _check_dcr(node):
    if node.attrs.get("mode", "DCR") != "DCR":  # rewrite.fold_crd leaves none
        raise ISPError(f"{node.op} node {node.name!r}: mode {node.attrs['mode']} was not folded")


def resize_op(ctx, node):
    """Resize / Upsample with a scale that is the same at every input size, mapped exactly to TFLite."""
    x_name = node.inputs[0]
    in_shapes, out_shapes = ctx.shapes(x_name), ctx.shapes(node.outputs[0])
    scales = {tuple(o[i] / s[i] for i in (2, 3)) for s, o in zip(in_shapes, out_shapes)}
    if len(scales) != 1 or any(o[:2] != s[:2] for s, o in zip(in_shapes, out_shapes)):
        raise ISPError(f"{node.op} node {node.name!r}: the output is not a fixed multiple of the input size "
                       f"(scales {sorted(scales)}); use F.interpolate(scale_factor=...)")
    scale = scales.pop()
    if node.attrs.get("antialias", 0) and min(scale) < 1:
        raise ISPError(f"{node.op} node {node.name!r}: antialiased downscaling is not supported; use avg pooling")
    mode = node.attrs.get("mode", "nearest")
    # Upsample (deprecated, no such attribute) maps like Resize's asymmetric mode
    coordinate_mode = "asymmetric" if node.op == "Upsample" else \
        node.attrs.get("coordinate_transformation_mode", "half_pixel")
    nearest_mode = node.attrs.get("nearest_mode", "round_prefer_floor")
    mode = {"bilinear": "linear"}.get(mode, mode)
    flags = [resize.tflite_flags(mode, coordinate_mode, nearest_mode, s) for s in scale]
    if None in flags or flags[0] != flags[1]:
        raise ISPError(f"{node.op} node {node.name!r}: mode={mode}, coordinate_transformation_mode="
                       f"{coordinate_mode}, nearest_mode={nearest_mode} at scale {scale} has no exact TFLite "
                       "equivalent; use F.interpolate(mode='bilinear', align_corners=False) or mode='nearest'")
    layer = layers.Resize(scale, "bilinear" if mode == "linear" else "nearest", *flags[0], name=ctx.layer_name(node))
    return layer(ctx.data(x_name))


# ---- pooling and reductions ---------------------------------------------------------------------
def pool(ctx, node):
    """MaxPool / AveragePool: valid, TF-'same' (stride 1 or ceil_mode with kernel == stride), or explicit pads."""
    x = ctx.data(node.inputs[0])
    kernel = _ints(node.attrs.get("kernel_shape"), 2, 1)
    strides = _ints(node.attrs.get("strides"), 2, 1)
    if any(d != 1 for d in _ints(node.attrs.get("dilations"), 2, 1)):
        raise ISPError(f"{node.op} node {node.name!r}: dilated pooling is not supported")
    is_max = node.op == "MaxPool"
    padding, explicit = _conv_padding(node, kernel, strides, [1, 1])
    if node.attrs.get("ceil_mode", 0):
        if explicit is not None or padding != "valid" or kernel != strides:
            raise ISPError(f"{node.op} node {node.name!r}: ceil_mode=True is supported only with kernel == stride "
                           "and no padding")
        padding = "same"
    elif not is_max and node.attrs.get("count_include_pad", 0) and padding == "same":
        pads = _ints(node.attrs.get("pads"), 4, 0)
        padding, explicit = "valid", ((pads[0], pads[2]), (pads[1], pads[3]))  # zeros that count
    elif not is_max and explicit is not None and not node.attrs.get("count_include_pad", 0):
        raise ISPError(f"AveragePool node {node.name!r}: this padding with count_include_pad=False has no TFLite "
                       "form; use count_include_pad=True or padding=kernel//2 at stride 1")
    x = _pad_layer(ctx, node, x, explicit, LOWEST if is_max else 0.0)
    layer_type = keras.layers.MaxPooling2D if is_max else keras.layers.AveragePooling2D
    return layer_type(kernel, strides, padding=padding, name=ctx.layer_name(node))(x)


def global_pool(ctx, node):
    """GlobalAveragePool (MEAN) / GlobalMaxPool (REDUCE_MAX) over H and W, keeping [N, 1, 1, C]."""
    is_mean = node.op == "GlobalAveragePool"
    layer_type = keras.layers.GlobalAveragePooling2D if is_mean else keras.layers.GlobalMaxPooling2D
    return layer_type(keepdims=True, name=ctx.layer_name(node))(ctx.data(node.inputs[0]))


def reduce(ctx, node):
    """ReduceMean/Max/Min/Sum over constant axes (attribute, or input since opsets 13/18)."""
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = ctx.need_const(node, 1, "axes").tolist()
    if axes is None:
        raise ISPError(f"{node.op} node {node.name!r}: a reduction over every axis is not supported; reduce over "
                       "H and W (x.mean((2, 3)))")
    axes = sorted(int(a) % rank for a in axes)
    keepdims = bool(node.attrs.get("keepdims", 1))
    op = node.op[len("Reduce"):].lower()
    if rank == 4 and axes == [2, 3] and op == "mean":
        return keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name=ctx.layer_name(node))(ctx.data(x_name))
    if rank == 4 and not keepdims:
        raise ISPError(f"{node.op} node {node.name!r}: keepdims=False over axes {axes} changes the layout; use "
                       "keepdim=True")
    mapped = [NCHW_TO_NHWC_AXIS[a] for a in axes] if rank == 4 else axes
    return layers.Reduce(op, mapped, keepdims, name=ctx.layer_name(node))(ctx.data(x_name))


def pad(ctx, node):
    """Pad H and W: constant (ZeroPadding2D or PADV2) or reflect (MIRROR_PAD)."""
    x_name = node.inputs[0]
    pads = node.attrs.get("pads") if ctx.graph.opset < 11 else ctx.need_const(node, 1, "pads").tolist()
    value = node.attrs.get("value", 0.0)
    if ctx.graph.opset >= 11 and len(node.inputs) > 2 and node.inputs[2]:
        value = float(ctx.need_const(node, 2, "value").ravel()[0])
    if len(node.inputs) > 3 and node.inputs[3]:
        axes = [int(a) % 4 for a in ctx.need_const(node, 3, "axes")]
        full = [0] * 8
        for i, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[i], pads[i + len(axes)]
        pads = full
    mode = node.attrs.get("mode", "constant")
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise ISPError(f"Pad node {node.name!r}: pads {pads}: only non-negative padding of H and W is supported")
    explicit = ((pads[2], pads[6]), (pads[3], pads[7]))
    if mode == "constant" and value == 0.0:
        return keras.layers.ZeroPadding2D(explicit, name=ctx.layer_name(node))(ctx.data(x_name))
    if mode not in ("constant", "reflect"):
        raise ISPError(f"Pad node {node.name!r}: mode {mode!r} is not supported; use F.pad(mode='reflect') "
                       "or zero padding")
    return layers.Pad(explicit, mode, value, name=ctx.layer_name(node))(ctx.data(x_name))


# ---- reshapes between [N, C, 1, 1] and [N, C], slicing ------------------------------------------
def reshape_like(ctx, node):
    """Flatten/Reshape/Squeeze/Unsqueeze between a pooled [N, C, 1, 1] and [N, C]; any other reshape of
    activations is refused (the GPU delegate pays dearly for reshapes, and the layout would change)."""
    x_name = node.inputs[0]
    in_shapes, out_shapes = ctx.shapes(x_name), ctx.shapes(node.outputs[0])
    pooled = all(len(s) == 4 and s[2:] == (1, 1) for s in in_shapes)
    if pooled and all(o == s[:2] for s, o in zip(in_shapes, out_shapes)):
        return keras.layers.Flatten(name=ctx.layer_name(node))(ctx.data(x_name))
    if all(len(s) == 2 for s in in_shapes) and all(o == (*s, 1, 1) for s, o in zip(in_shapes, out_shapes)):
        return keras.layers.Reshape((1, 1, in_shapes[0][1]), name=ctx.layer_name(node))(ctx.data(x_name))
    if all(o == s for s, o in zip(in_shapes, out_shapes)):
        return ctx.data(x_name)
    raise ISPError(f"{node.op} node {node.name!r}: reshaping activations {in_shapes[0]} -> {out_shapes[0]} is not "
                   "supported; only [N, C, 1, 1] <-> [N, C] (use nn.PixelShuffle for pixel shuffle)")


def slice_op(ctx, node):
    """Slice with constant starts/ends/axes/steps: one STRIDED_SLICE per sliced axis."""
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    starts, ends = (ctx.need_const(node, i, "bounds").tolist() for i in (1, 2))
    axes = ctx.need_const(node, 3, "axes").tolist() if len(node.inputs) > 3 and node.inputs[3] else range(len(starts))
    steps = ctx.need_const(node, 4, "steps").tolist() if len(node.inputs) > 4 and node.inputs[4] else [1] * len(starts)
    y = ctx.data(x_name)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % rank
        if step < 1:
            raise ISPError(f"Slice node {node.name!r}: negative steps (flips) are not supported")
        end = None if end >= 2 ** 31 - 1 else int(end)
        y = layers.Slice(NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis, int(start), end, int(step),
                         name=ctx.layer_name(node, f"_axis{axis}"))(y)
    return y


def split(ctx, node):
    """Split along one axis into constant sizes: STRIDED_SLICE per output."""
    x_name = node.inputs[0]
    rank = ctx.rank(x_name)
    axis = int(node.attrs.get("axis", 0)) % rank
    sizes = node.attrs.get("split")
    if sizes is None and len(node.inputs) > 1 and node.inputs[1]:
        sizes = ctx.need_const(node, 1, "split sizes").tolist()
    if sizes is None:
        sizes = [o[axis] for o in (ctx.shapes(t)[0] for t in node.outputs)]
    keras_axis = NCHW_TO_NHWC_AXIS[axis] if rank == 4 else axis
    outputs, begin = [], 0
    for index, size in enumerate(sizes):
        outputs.append(layers.Slice(keras_axis, begin, begin + int(size), 1,
                                    name=ctx.layer_name(node, f"_{index}"))(ctx.data(x_name)))
        begin += int(size)
    return outputs


HANDLERS = {
    "Conv": conv, "ConvTranspose": conv_transpose, "ChannelAffine": channel_affine,
    "ChannelPermute": channel_permute, "Gemm": gemm, "MatMul": gemm,
    "Relu": relu, "LeakyRelu": leaky_relu, "PRelu": prelu, "Sigmoid": activation("sigmoid"),
    "Tanh": activation("tanh"), "Clip": clip, "HardSigmoid": unary("hard_sigmoid", "alpha", "beta", 0.2, 0.5),
    "HardSwish": unary("hard_swish"), "Elu": unary("elu", "alpha", alpha=1.0), "Abs": unary("abs"),
    "Neg": unary("neg"), "Sqrt": unary("sqrt"), "Exp": unary("exp"), "Log": unary("log"),
    "Add": binary, "Sub": binary, "Mul": binary, "Div": binary, "Max": binary, "Min": binary, "Pow": binary,
    "Concat": concat, "Identity": passthrough, "Dropout": passthrough, "Cast": passthrough,
    "DepthToSpace": depth_to_space, "SpaceToDepth": space_to_depth, "Resize": resize_op, "Upsample": resize_op,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_pool, "GlobalMaxPool": global_pool,
    "ReduceMean": reduce, "ReduceMax": reduce, "ReduceMin": reduce, "ReduceSum": reduce, "Pad": pad,
    "Flatten": reshape_like, "Reshape": reshape_like, "Squeeze": reshape_like, "Unsqueeze": reshape_like,
    "Slice": slice_op, "Split": split,
}
