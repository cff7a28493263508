"""Tiny NCHW ISP graphs written with onnx.helper, as torch.onnx.export would write them (not a test module;
CI has no torch)."""
import numpy as np
import onnx
from onnx import TensorProto, helper

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
