"""Cost profile of a built model, computed by walking its Keras graph (no hand-written numbers).

Counted per frame (batch 1) at the model's fixed input shape:
- `params`: every weight (trainable and not).
- `macs`: multiply-accumulates of Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose and
  Dense only (biases not counted). Conv2DTranspose counts in_h*in_w*in_c*k_h*k_w*out_c.
- `elementwise_ops`: reported separately, not in `macs`: one op per output element of an
  activation (PReLU, ReLU, LeakyReLU, sigmoid..., including a conv's fused activation), (n-1) per
  output element of an n-input Add/Multiply/..., one per window element of a pooling and one per
  input element of a global pooling. Every other layer counts 0 (data movement: DepthToSpace,
  Concatenate, reshapes).
- `act_traffic_mb_fp16` / `_fp32`: activation memory traffic, the sum over layers of the input and
  output tensor bytes (1 MB = 1e6 bytes). A layer-granular upper bound: the TFLite converter fuses
  some layers, and weights are not included.
- `input_multiple`: packed input height and width must be multiples of this (the lcm of the
  down-sampling factors of every path that is later merged with another path or reaches the output).
"""
import math
from fractions import Fraction

import tf_keras as keras

from data.challenge import FULL_HD_PACKED
from isp.errors import ISPError
from isp.layers import DepthToSpace
from isp.models import build, model_family

_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_ACTIVATIONS = (keras.layers.ReLU, keras.layers.PReLU, keras.layers.LeakyReLU, keras.layers.ELU,
                keras.layers.Softmax, keras.layers.Activation)
_POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
_MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
           keras.layers.Maximum, keras.layers.Minimum)


def _elements(shape):
    """Number of elements of one sample of a tensor shape `(None, ...)`."""
    return math.prod(int(d) for d in shape[1:])


def _as_list(shapes):
    return list(shapes) if isinstance(shapes, list) else [shapes]


def _nodes(model):
    """The nodes of `model`'s graph in topological order (inputs first)."""
    return [node for depth in sorted(model._nodes_by_depth, reverse=True)
            for node in model._nodes_by_depth[depth]]


def _macs(layer, in_shape, out_shape):
    """Multiply-accumulates of one call of `layer` (0 for layers without MACs)."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return _elements(in_shape) * kh * kw * out_shape[-1]
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        mid = in_shape[-1] * layer.depth_multiplier
        return _elements(out_shape) // out_shape[-1] * mid * (kh * kw + out_shape[-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _elements(out_shape) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _elements(out_shape) * kh * kw * in_shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return _elements(out_shape) * in_shape[-1]
    if layer.weights and not isinstance(layer, (keras.layers.PReLU, keras.layers.BatchNormalization)):
        raise ISPError(f"cost: no MAC rule for layer {layer.name!r} ({type(layer).__name__}); "
                       f"add one to isp/cost.py")
    return 0


def _elementwise(layer, in_shapes, out_shape):
    """Non-MAC arithmetic of one call of `layer`, as defined in the module docstring."""
    out = _elements(out_shape)
    if isinstance(layer, _CONV + (keras.layers.Dense,)):
        return 0 if layer.activation is keras.activations.linear else out
    if isinstance(layer, _ACTIVATIONS + (keras.layers.BatchNormalization,)):
        return out
    if isinstance(layer, keras.layers.Rescaling):
        return 2 * out
    if isinstance(layer, _POOLS):
        return out * math.prod(layer.pool_size)
    if isinstance(layer, _GLOBAL_POOLS):
        return _elements(in_shapes[0])
    if isinstance(layer, _MERGES):
        return (len(in_shapes) - 1) * out
    return 0


def model_cost(model):
    """Cost profile of a model built at a fixed input shape -> dict (keys in the module docstring)."""
    in_shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in in_shape):
        raise ISPError(f"cost: model {model.name!r} has a dynamic input shape {in_shape}; "
                       f"build it at a fixed shape, e.g. build(name, {(*FULL_HD_PACKED, 4)})")
    macs = elementwise = traffic = 0
    for node in _nodes(model):
        if node.is_input:
            continue
        in_shapes = _as_list(node.input_shapes)
        out_shape = _as_list(node.output_shapes)[0]
        macs += _macs(node.layer, in_shapes[0], out_shape)
        elementwise += _elementwise(node.layer, in_shapes, out_shape)
        traffic += sum(_elements(s) for s in in_shapes) + _elements(out_shape)
    return {
        "model": model.name,
        "input": "x".join(str(d) for d in in_shape),
        "params": int(model.count_params()),
        "macs": int(macs),
        "gmacs": macs / 1e9,
        "elementwise_gops": elementwise / 1e9,
        "act_traffic_mb_fp16": traffic * 2 / 1e6,
        "act_traffic_mb_fp32": traffic * 4 / 1e6,
        "input_multiple": input_multiple(model),
    }


def _scale_change(layer):
    """Factor by which `layer` divides the spatial size (Fraction), or None for a global reduction."""
    if isinstance(layer, _GLOBAL_POOLS):
        return None
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return Fraction(1, max(layer.strides))
    if isinstance(layer, _CONV + _POOLS):
        return Fraction(max(layer.strides))
    if isinstance(layer, DepthToSpace):
        return Fraction(1, layer.block_size)
    if isinstance(layer, keras.layers.UpSampling2D):
        return Fraction(1, max(layer.size))
    return Fraction(1)


def input_multiple(model):
    """Smallest m such that packed inputs with h, w multiples of m keep every merge shape-consistent.

    Walks the graph tracking, per tensor, its down-sampling factor relative to the input and the
    lcm of the integer factors on its path; merges (>= 2 spatial inputs) and outputs collect them.
    A global pooling ends a path (its [B, 1, 1, C] result broadcasts to any size).
    """
    state = {}  # id(node) -> (scale or None for global, lcm of path)
    required = 1
    for node in _nodes(model):
        if node.is_input:
            state[id(node)] = (Fraction(1), 1)
            continue
        parents = [state[id(p)] for p in node.parent_nodes]
        spatial = [p for p in parents if p[0] is not None]
        path_lcm = math.lcm(1, *(p[1] for p in spatial))
        if len(spatial) > 1:
            required = math.lcm(required, path_lcm)
        change = _scale_change(node.layer)
        if change is None or not spatial:
            state[id(node)] = (None, 1)
            continue
        scale = spatial[0][0] * change
        if scale.denominator == 1:
            path_lcm = math.lcm(path_lcm, scale.numerator)
        state[id(node)] = (scale, path_lcm)
    for tensor in model.outputs:
        history = tensor._keras_history
        scale, path_lcm = state[id(history.layer._inbound_nodes[history.node_index])]
        required = math.lcm(required, path_lcm)
    return required


def cost_table(names, input_shape=(*FULL_HD_PACKED, 4)):
    """Build each registered model at `input_shape` (default Full HD packed) -> list of model_cost rows,
    each with the model's registry family."""
    return [{**model_cost(build(name, input_shape)), "family": model_family(name)} for name in names]


def _cell(value):
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def format_table(rows, columns=None):
    """Markdown table of `rows` (dicts). `columns`: the keys to print in order; default every key
    any row has, in first-seen order (so extra columns such as a TFLite size just appear).
    A row without a key gets an empty cell."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)
