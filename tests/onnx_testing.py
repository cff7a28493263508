"""Tiny NCHW ISP graphs written with onnx.helper, as torch.onnx.export would write them (not a test module;
CI has no torch): `isp_onnx` writes one fixed ISP head, `GraphBuilder` any graph of the importer's tests."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def isp_onnx(path, weight, bias=None, input_dims=(1, 4, "H", "W"), mode="CRD", sigmoid=False, input_scale=None):
    """Write [Mul(input_scale) ->] Conv(weight, pads k//2) -> DepthToSpace(2, mode) [-> Sigmoid] to `path`.

    weight: OIHW float32 [12, C, k, k] (CRD: output channel colour * 4 + block, PyTorch's PixelShuffle
    order). input_dims: [N, C, H, W], ints for fixed dims, strings (dim_param) or None for dynamic
    ones; the output is [N, 3, 2H, 2W] with "2H"-style names for dynamic dims. input_scale: a number, or
    an array broadcast against the input (an array of fixed H, W makes any other size fail at run time).
    Returns `path`.
    """
    weight = np.asarray(weight, np.float32)
    pad = weight.shape[2] // 2
    bias = np.zeros(weight.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
    nodes, initializers, x = [], [helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel()),
                                  helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias)], "raw"
    if input_scale is not None:
        scale = np.asarray(input_scale, np.float32)
        initializers.append(helper.make_tensor("scale", TensorProto.FLOAT, scale.shape, scale.ravel()))
        nodes.append(helper.make_node("Mul", [x, "scale"], ["scaled"]))
        x = "scaled"
    nodes.append(helper.make_node("Conv", [x, "w", "b"], ["features"], pads=[pad] * 4))
    nodes.append(helper.make_node("DepthToSpace", ["features"], ["rgb" if not sigmoid else "logits"],
                                  blocksize=2, mode=mode))
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["rgb"]))
    n, _, h, w = input_dims
    out_dims = [n, 3] + [2 * d if isinstance(d, int) else (d and f"2{d}") for d in (h, w)]
    graph = helper.make_graph(nodes, "tiny_isp", [helper.make_tensor_value_info("raw", TensorProto.FLOAT, input_dims)],
                              [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, out_dims)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def crd_from_dcr_hwio(kernel):
    """A Keras HWIO kernel [k, k, C, 12] feeding DCR DepthToSpace -> the OIHW weight [12, C, k, k] that gives
    the same image through CRD DepthToSpace (PyTorch's PixelShuffle): output channel block * 3 + colour
    moves to colour * 4 + block."""
    oihw = np.asarray(kernel, np.float32).transpose(3, 2, 0, 1)
    return oihw.reshape(4, 3, *oihw.shape[1:]).transpose(1, 0, 2, 3, 4).reshape(oihw.shape)


def mosaic_weight(scales):
    """OIHW [12, 4, 1, 1] that, through CRD DepthToSpace, unpacks the 4 packed channels into their 2x2 mosaic
    (packed channel 2i + j -> cell (i, j)) and writes colour c as scales[c] * mosaic."""
    weight = np.zeros((12, 4, 1, 1), np.float32)
    for colour, scale in enumerate(scales):
        for block in range(4):
            weight[colour * 4 + block, block] = scale
    return weight


def mosaic_reference(raw, scales):
    """What `mosaic_weight(scales)` gives, in closed form: raw [1, h, w, 4] -> [1, 2h, 2w, 3] (NHWC)."""
    _, h, w, _ = raw.shape
    mosaic = raw[0].reshape(h, w, 2, 2).transpose(0, 2, 1, 3).reshape(2 * h, 2 * w)
    return np.stack([scale * mosaic for scale in scales], axis=-1)[None].astype(np.float32)


class GraphBuilder:
    """Collects nodes and initializers; `model()` makes an ONNX model with input `raw` [1, C, H, W]."""

    def __init__(self, channels=4, seed=0):
        self.channels = channels
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.count = 0

    def const(self, value, dtype=np.float32):
        """An initializer holding `value`; returns its name."""
        self.count += 1
        name = f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weight(self, *shape, scale=0.3):
        return self.const(self.rng.normal(0, scale, shape))

    def op(self, op_type, inputs, outputs=1, **attrs):
        """Add a node; returns its output name (or names when outputs > 1)."""
        self.count += 1
        names = [f"t{self.count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"{op_type.lower()}{self.count}",
                                           **attrs))
        return names[0] if outputs == 1 else names

    def conv(self, x, cin, cout, k=3, pads=None, **attrs):
        pads = [k // 2] * 4 if pads is None else pads
        return self.op("Conv", [x, self.weight(cout, cin // attrs.get("group", 1), k, k),
                                self.const(self.rng.normal(0, 0.1, cout))], kernel_shape=[k, k], pads=pads, **attrs)

    def model(self, output, opset=17, dims=(1, None, "H", "W")):
        """The ONNX model with `output` as its graph output; dims of the input (None -> channels)."""
        shape = [self.channels if d is None else d for d in dims]
        graph = helper.make_graph(self.nodes, "test", [helper.make_tensor_value_info("raw", TensorProto.FLOAT, shape)],
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                                  initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        return model


def save(model, path):
    """Write `model` to `path` (str) and return the path."""
    onnx.save(model, str(path))
    return str(path)


def isp_head(b, x, crd=True):
    """Conv(4->12) -> PReLU -> per-channel Mul -> DepthToSpace(2, CRD/DCR) -> Conv(3->3) -> clamp(0, 1):
    [1, 4, H, W] -> [1, 3, 2H, 2W], with C = 3 > 1 in the pixel shuffle."""
    y = b.conv(x, 4, 12)
    y = b.op("PRelu", [y, b.const(b.rng.uniform(0, 0.3, (12, 1, 1)))])
    y = b.op("Mul", [y, b.const(b.rng.uniform(0.5, 1.5, (12, 1, 1)))])
    y = b.op("DepthToSpace", [y], blocksize=2, mode="CRD" if crd else "DCR")
    y = b.conv(y, 3, 3)
    return b.op("Clip", [y, b.const(0.0), b.const(1.0)])


def pixel_shuffle_6d(b, x, channels, block=2):
    """PyTorch's 6-D pixel shuffle as the dynamo exporter writes it, with the shape from Shape ops:
    Reshape [N, C, r, r, H, W] -> Transpose (0, 1, 4, 2, 5, 3) -> Reshape [N, C, H*r, W*r]."""
    shape = b.op("Shape", [x])
    n, h, w = (b.op("Gather", [shape, b.const([i], np.int64)], axis=0) for i in (0, 2, 3))
    r = b.const([block], np.int64)
    c = b.const([channels], np.int64)
    six = b.op("Concat", [n, c, r, r, h, w], axis=0)
    y = b.op("Reshape", [x, six])
    y = b.op("Transpose", [y], perm=[0, 1, 4, 2, 5, 3])
    hr, wr = b.op("Mul", [h, r]), b.op("Mul", [w, r])
    return b.op("Reshape", [y, b.op("Concat", [n, c, hr, wr], axis=0)])


def pixel_unshuffle_6d(b, x, channels, block=2):
    """PyTorch's 6-D pixel unshuffle: Reshape [N, C, H, r, W, r] -> Transpose (0, 1, 3, 5, 2, 4) ->
    Reshape [N, C*r*r, H, W], shapes from Shape/Div arithmetic."""
    shape = b.op("Shape", [x])
    n, h, w = (b.op("Gather", [shape, b.const([i], np.int64)], axis=0) for i in (0, 2, 3))
    r = b.const([block], np.int64)
    hd, wd = b.op("Div", [h, r]), b.op("Div", [w, r])
    six = b.op("Concat", [n, b.const([channels], np.int64), hd, r, wd, r], axis=0)
    y = b.op("Transpose", [b.op("Reshape", [x, six])], perm=[0, 1, 3, 5, 2, 4])
    return b.op("Reshape", [y, b.op("Concat", [n, b.const([channels * block * block], np.int64), hd, wd], axis=0)])
