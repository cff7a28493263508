"""Learn every tensor's shape and fold the shape arithmetic, by running the file in ONNX Runtime.

Exporters write shape arithmetic (Shape -> Gather -> Concat -> Reshape, Resize `sizes` from the
input's shape, ...) whose values depend on the input size. ONNX Runtime runs the original file,
every intermediate tensor exposed as an output, at two input sizes: a tensor that does not depend
on the input's *values* is a constant when both runs agree, and "spatial" (it scales with the
input) when they differ. Data tensors keep their per-run NCHW shapes for the later passes.
"""
import dataclasses

import numpy as np

from isp.errors import ISPError

# packed input sizes (H, W) tried in turn, two per try: multiples of 32 so 5 poolings divide them
PROBE_SIZES = (((64, 96), (96, 160)), ((128, 192), (192, 320)), ((256, 384), (384, 640)))
SHAPE_OPS = ("Shape", "Size")  # read only their input's shape, never its values


@dataclasses.dataclass
class Probe:
    """sizes: the input (H, W) of each run. shapes: tensor -> [NCHW shape per run] for data tensors.
    spatial: tensor -> [value per run] for the non-data tensors whose value differs between runs."""

    sizes: list
    shapes: dict
    spatial: dict


def data_tensors(graph):
    """Names of the tensors whose values depend on the graph input's values."""
    data = {graph.input_name}
    for node in graph.nodes:
        if node.op not in SHAPE_OPS and any(t in data for t in node.inputs if t):
            data.update(node.outputs)
    return data


def probe_and_fold(graph, path, seed=0):
    """Run the ONNX file at `path` (the source of `graph`) and fold its shape arithmetic in place.

    Every non-data node is removed from `graph.nodes`; its outputs become `graph.consts` (same value
    in every run) or `Probe.spatial` entries. Returns the Probe. A file ONNX Runtime cannot run at
    any probe size raises ISPError with its reason.
    """
    import onnx
    import onnxruntime as ort
    proto = onnx.load(path, load_external_data=True)
    known = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        proto.graph.output.extend(onnx.ValueInfoProto(name=t) for t in node.output if t and t not in known)
        known.update(node.output)
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ISPError(f"{path}: ONNX Runtime cannot load it ({_first_line(exc)}); check the export") from None
    names = [o.name for o in session.get_outputs()]
    runs, sizes, failure = _run_at_probe_sizes(session, graph, names, seed)
    if runs is None:
        raise ISPError(f"{path}: ONNX Runtime failed at every probe size {PROBE_SIZES} ({failure}); "
                       "the model must accept packed inputs [1, 4, H, W] with H, W multiples of 32")
    data = data_tensors(graph)
    shapes = {name: [np.shape(run[name]) for run in runs] for name in names if name in data}
    shapes[graph.input_name] = [(1, graph.input_dims[1], h, w) for h, w in sizes]
    spatial = {}
    for node in [n for n in graph.nodes if not any(t in data for t in n.outputs)]:
        graph.nodes.remove(node)
        for tensor in node.outputs:
            values = [np.asarray(run[tensor]) for run in runs]
            if all(v.shape == values[0].shape and np.array_equal(v, values[0]) for v in values):
                graph.consts[tensor] = values[0]
            else:
                spatial[tensor] = values
    return Probe(sizes, shapes, spatial)


def _run_at_probe_sizes(session, graph, names, seed):
    """(outputs per run as dicts, input sizes, None), or (None, None, the last failure)."""
    channels = graph.input_dims[1]
    fixed = graph.input_dims[2:]
    candidates = [[tuple(fixed)]] if None not in fixed else PROBE_SIZES
    rng = np.random.default_rng(seed)
    failure = None
    for sizes in candidates:
        try:
            runs = [dict(zip(names, session.run(names, {graph.input_name: rng.uniform(
                0, 1, (1, channels, h, w)).astype(np.float32)}))) for h, w in sizes]
            return runs, list(sizes), None
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException
            failure = _first_line(exc)
    return None, None, failure


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
