"""Read an ONNX file into a small mutable IR: nodes in topological order plus named constants.

The IR keeps ONNX's own conventions (NCHW, attribute names); later passes rewrite it. Only the
default ONNX domain is accepted, at opsets 11-20 (what PyTorch's two exporters write).
"""
import collections
import dataclasses
import os

import numpy as np

from isp.errors import ISPError

MIN_OPSET, MAX_OPSET = 11, 20


@dataclasses.dataclass
class Node:
    """One ONNX node: `op` type, unique `name`, input/output tensor names ('' = absent optional input)."""

    op: str
    name: str
    inputs: list
    outputs: list
    attrs: dict


@dataclasses.dataclass
class Graph:
    """The model as IR. consts: name -> np.ndarray (initializers, Constant nodes, folded values).

    input_name/output_name: the one data input [N, C, H, W] and the one output. input_dims: the
    declared input dims, None where dynamic. opset: the default-domain opset. op_counts: op type ->
    node count of the file as read (Constant nodes included), before any pass.
    """

    nodes: list
    consts: dict
    input_name: str
    output_name: str
    input_dims: tuple
    opset: int
    op_counts: dict
    name: str = "imported"

    def producer(self, tensor):
        """The node that writes `tensor`, or None (an input or a constant)."""
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor):
        """Nodes that read `tensor` (the graph output counts as a reader of its own: see `is_output`)."""
        return [n for n in self.nodes if tensor in n.inputs]

    def only_reader(self, tensor):
        """The single node reading `tensor` when it has exactly one reader and is not the graph output."""
        readers = self.consumers(tensor)
        return readers[0] if len(readers) == 1 and tensor != self.output_name else None

    def fresh(self, base):
        """A tensor/node name not used yet, derived from `base`."""
        used = set(self.consts) | {t for n in self.nodes for t in (*n.inputs, *n.outputs, n.name)}
        index = 0
        while f"{base}_{index}" in used:
            index += 1
        return f"{base}_{index}"


def load(path):
    """Graph of the .onnx file at `path` (external weight files are read from its folder).

    Raises ISPError for a missing or unreadable file, an opset outside 11-20, a custom domain, or a
    graph without exactly one float input [N, C, H, W] and one output.
    """
    import onnx
    from onnx import numpy_helper
    if not os.path.isfile(path):
        raise ISPError(f"{path}: no such ONNX file; export it with torch.onnx.export first")
    try:
        proto = onnx.load(path, load_external_data=True)
    except Exception as exc:  # protobuf DecodeError, missing external data file, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ISPError(f"{path}: not a readable ONNX file ({reason}); re-export it "
                       "(external weights must sit beside the .onnx file)") from None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ISPError(f"{path}: ONNX opset {opset} is not supported; export with "
                       f"torch.onnx.export(..., opset_version=17) (opsets {MIN_OPSET}-{MAX_OPSET} are)")
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ISPError(f"{path}: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; an ISP "
                       "model has one input (packed RAW [1, 4, H, W]) and one output (RGB [1, 3, 2H, 2W])")
    dims = _dims(inputs[0])
    if len(dims) != 4:
        raise ISPError(f"{path}: input {inputs[0].name!r} has rank {len(dims)}; expected NCHW [1, 4, H, W] "
                       "(export the PyTorch module with a 4-D dummy input)")
    nodes = []
    for index, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            raise ISPError(f"{path}: node {node.name or index!r} is a {node.domain}::{node.op_type} op outside "
                           "the standard ONNX domain; export without custom ops")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(node, attrs)
            continue
        attrs = {k: _plain(v) for k, v in attrs.items()}
        nodes.append(Node(node.op_type, node.name or f"{node.op_type}_{index}", list(node.input),
                          list(node.output), attrs))
    op_counts = dict(collections.Counter(node.op_type for node in graph.node))
    return Graph(nodes, consts, inputs[0].name, graph.output[0].name, dims, opset, op_counts,
                 name=graph.name or os.path.splitext(os.path.basename(path))[0])


def _dims(value_info):
    """Declared dims of a graph input: ints, None where symbolic or missing."""
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in shape.dim)


def _constant_value(node, attrs):
    """The np.ndarray of a Constant node (value, value_float(s), value_int(s))."""
    from onnx import numpy_helper
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    raise ISPError(f"Constant node {node.name!r}: unsupported value attribute {sorted(attrs)}")


def _plain(value):
    """Attribute values as plain Python: bytes -> str, lists kept, TensorProto -> np.ndarray."""
    from onnx import TensorProto, numpy_helper
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value
