"""`convert_onnx(path)`: an ONNX ISP graph -> a functional tf_keras model, and the check of that model
against ONNX Runtime on the same inputs.
"""
import dataclasses
import time

import numpy as np

from isp.errors import ISPError
from isp.onnx_import import emit, graph as graph_mod, probe as probe_mod, rewrite

FP32_TOLERANCE = 1e-4  # max |Keras - ONNX Runtime| allowed, as a share of the ONNX output's value range


@dataclasses.dataclass
class ImportedModel:
    """model: tf_keras [1, H, W, C] NHWC -> NHWC output, in the file's own value convention. graph, probe:
    the rewritten IR (its opset, input_dims and op_counts are the file's; `emit.emit(graph, probe,
    ranges)` rebuilds the model in another convention). notes: what the rewrite passes did (one line
    each). seconds: conversion time."""

    model: object
    graph: object
    probe: object
    notes: list
    seconds: float


def convert_onnx(path):
    """ImportedModel of the ONNX file at `path`; ISPError (one line per problem) when it cannot be imported."""
    started = time.time()
    graph = graph_mod.load(path)
    if graph.input_dims[1] is None:
        raise ISPError(f"{path}: the input's channel dimension is dynamic; export with a fixed 4-channel input")
    probe = probe_mod.probe_and_fold(graph, path)
    notes = []
    rewrite.drop_identities(graph, probe)
    chains = rewrite.pixel_shuffle_chains(graph, probe)
    if chains:
        notes.append(f"{chains} six-dimensional Reshape/Transpose pixel-(un)shuffle chain(s) -> DEPTH_TO_SPACE / "
                     "SPACE_TO_DEPTH")
    affines = rewrite.channel_affines(graph, probe)
    folded = rewrite.fold_affines(graph)
    if affines:
        notes.append(f"{affines} BatchNormalization / per-channel Mul, Add, Sub -> {folded} folded into the conv "
                     "before them, the rest one 1x1 DEPTHWISE_CONV_2D each")
    notes += rewrite.fold_crd(graph, probe)
    if None not in graph.input_dims[2:]:
        notes.append(f"the ONNX input is fixed at {graph.input_dims[2]}x{graph.input_dims[3]} (no dynamic axes, or "
                     "dynamic_axes keys that do not match input_names): ONNX Runtime checks it at that size only")
    model = emit.emit(graph, probe)
    return ImportedModel(model, graph, probe, notes, time.time() - started)


def in_toolkit_convention(imported, input_range, output_range):
    """The imported model rebuilt for RAW in [0, 1] -> RGB in [0, 1] (same weights, affine maps around it)."""
    return emit.emit(imported.graph, imported.probe, input_range, output_range)


def onnx_session(path):
    """An ONNX Runtime CPU session of the file (ISPError when it cannot load)."""
    import onnxruntime as ort
    try:
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ISPError(f"{path}: ONNX Runtime cannot load it ({str(exc).strip().splitlines()[0]})") from None


def compare(session, predict, inputs):
    """`predict` (NHWC [1, H, W, C] float32 -> NHWC output) against ONNX Runtime on `inputs`.

    Returns {"inputs", "max_abs_diff", "output_range", "relative_diff", "psnr_db"}: the largest
    |predict - ORT| over every input, the ORT outputs' value range (max - min), their ratio, and the
    PSNR of the predictions against ORT's with that range as peak.
    """
    name = session.get_inputs()[0].name
    worst, squared, count, lo, hi, n = 0.0, 0.0, 0, np.inf, -np.inf, 0
    for x in inputs:
        want = session.run(None, {name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0].transpose(0, 2, 3, 1)
        got = np.asarray(predict(x))
        if got.shape != want.shape:
            raise ISPError(f"the converted model's output {got.shape} differs from ONNX Runtime's {want.shape} "
                           f"for input {x.shape}")
        diff = np.abs(got.astype(np.float64) - want)
        worst = max(worst, float(np.max(diff)))
        squared, count = squared + float(np.sum(diff ** 2)), count + diff.size
        lo, hi, n = min(lo, float(want.min())), max(hi, float(want.max())), n + 1
    span = max(hi - lo, 1e-12)
    mse = squared / max(count, 1)
    return {"inputs": n, "max_abs_diff": worst, "output_range": span, "relative_diff": worst / span,
            "psnr_db": float("inf") if mse == 0 else float(10 * np.log10(span ** 2 / mse))}


def keras_predict(model):
    """predict callable of a tf_keras model for `compare`: NHWC input -> NHWC numpy output."""
    return lambda x: model(x, training=False).numpy()


def random_inputs(channels, sizes, seed=0, value_range=(0.0, 1.0)):
    """One uniform random NHWC input [1, h, w, channels] per (h, w) in `sizes`, in `value_range`."""
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    return [rng.uniform(lo, hi, (1, h, w, channels)).astype(np.float32) for h, w in sizes]
