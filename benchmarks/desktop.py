"""Desktop latency of a `.tflite` file with LiteRT: CPU (Interpreter + XNNPACK) or GPU (CompiledModel).

Inputs are random: float uniform over the model's input range (default [0, 1], the range the
toolkit's models are fed; --input-range for models that expect e.g. RAW counts), or the full
integer range for a quantized (uint8/int8) input. A dynamic-shape input `[1, -1, -1, C]` is
resized to `input_shape` (default Full HD: 544x960 packed RAW, i.e. a 1088x1920 RGB output).

The GPU path runs in a child process (`tflite_export.litert_gpu.run_child`): the native accelerator
explains failures (e.g. "No adapters found") and logs its GPU/CPU op split only on stderr, and a
broken driver may abort the process instead of raising.
"""
import json
import os
import resource
import sys
import time

import numpy as np

from benchmarks.errors import BenchError
from data.challenge import FULL_HD_PACKED
from isp.metrics import PSNR_CAP_DB
from tflite_export import litert_gpu
from tflite_export.errors import ExportError
from tflite_export.runtime import load_interpreter

GPU_RUNTIME = "LiteRT CompiledModel (ML Drift GPU accelerator over WebGPU, XNNPACK CPU fallback)"


def input_specs(path):
    """Inputs of a `.tflite` file: list of {"index", "name", "shape_signature", "dtype"}."""
    interpreter, _ = load_interpreter(path)
    return [{"index": int(d["index"]), "name": d["name"],
             "shape_signature": [int(v) for v in d["shape_signature"]],
             "dtype": np.dtype(d["dtype"]).name} for d in interpreter.get_input_details()]


def resolve_input_shape(shape_signature, input_shape=None):
    """Concrete shape for one input: batch 1, dynamic H, W from `input_shape` (default Full HD).

    `shape_signature` uses -1 for a dynamic dimension; only `[1, -1, -1, C]`-style inputs may be
    dynamic. A fixed-size input keeps its shape; asking for another size is an error, since a
    fixed model is timed as exported.
    """
    shape = [int(v) for v in shape_signature]
    if shape and shape[0] == -1:
        shape[0] = 1
    dynamic = {i for i, v in enumerate(shape) if v == -1}
    if not dynamic:
        if input_shape is not None and (len(shape) != 4 or shape[1:3] != list(input_shape)):
            raise BenchError(f"the model has a fixed input {shape}; --input-shape only applies to "
                             "dynamic-shape models (export a model_none.tflite, or drop the flag)")
        return shape
    if len(shape) != 4 or not dynamic <= {1, 2}:
        raise BenchError(f"input shape {list(shape_signature)} is dynamic outside height/width; "
                         "export the model with a fixed batch 1 and channel count")
    height, width = input_shape or FULL_HD_PACKED
    return [1, height if shape[1] == -1 else shape[1], width if shape[2] == -1 else shape[2],
            shape[3]]


def random_input(shape, dtype, rng, value_range=(0.0, 1.0)):
    """Random tensor: float uniform in `value_range` (lo, hi), or uniform over the whole range of an integer dtype."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    lo, hi = value_range
    return (lo + (hi - lo) * rng.random(size=shape, dtype=np.float32)).astype(dtype)


def latency_stats(seconds):
    """Summary of per-run wall times (s) in ms: mean, p50, p90, min, max, std."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"mean": float(ms.mean()), "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)), "min": float(ms.min()),
            "max": float(ms.max()), "std": float(ms.std())}


def bench_desktop(path, threads=None, runs=20, warmup=3, input_shape=None, input_range=(0.0, 1.0)):
    """Time `interpreter.invoke()` on the CPU: LiteRT Interpreter with its default XNNPACK delegate.

    `threads=None` lets LiteRT choose; `input_range` bounds the random float input. Returns a dict
    with "latency_ms" (see `latency_stats`),
    "init_ms" (load + allocate), "peak_rss_mb" (process peak, ru_maxrss) and "load_rss_delta_mb"
    (resident memory added by loading the model and allocating its tensors).
    """
    check_counts(runs, warmup, threads)
    rss_before = current_rss_mb()
    start = time.perf_counter()
    interpreter, _ = load_interpreter(path, num_threads=threads)
    shapes = []
    for detail in interpreter.get_input_details():
        shape = resolve_input_shape(detail["shape_signature"], input_shape)
        if shape != list(detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], shape, strict=True)
        shapes.append((detail, shape))
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - start) * 1000.0
    load_rss_delta = current_rss_mb() - rss_before
    rng = np.random.default_rng(0)
    for detail, shape in shapes:
        interpreter.set_tensor(detail["index"], random_input(shape, detail["dtype"], rng, input_range))
    times = _time_calls(interpreter.invoke, runs, warmup)
    first_detail, first_shape = shapes[0]
    return {"device": "desktop", "model": os.fspath(path),
            "runtime": "LiteRT Interpreter (XNNPACK CPU delegate)", "threads": threads,
            "runs": runs, "warmup": warmup, "input_shape": first_shape,
            "input_dtype": np.dtype(first_detail["dtype"]).name, "init_ms": init_ms,
            "latency_ms": latency_stats(times), "peak_rss_mb": peak_rss_mb(),
            "load_rss_delta_mb": load_rss_delta}


def bench_desktop_gpu(path, runs=20, warmup=3, input_shape=None, timeout_s=600, input_range=(0.0, 1.0)):
    """Op split, FP16/FP32 accuracy and latency of `path` on LiteRT's desktop GPU accelerator.

    In a child process: a GPU-only compile, then GPU|CPU, whose op split the accelerator logs
    ("op_split", see `gpu_result`); then one random input runs on the CPU interpreter (the
    reference), on the GPU at its default FP16 precision (timed: `warmup` runs, then `runs`) and on
    the GPU with `enforce_f32` ("accuracy", see `accuracy`). Returns the "latency_ms" layout of
    `bench_desktop`. A machine without a usable GPU adapter raises a one-line BenchError.
    """
    check_counts(runs, warmup)
    specs = input_specs(path)
    job = {"path": os.path.abspath(path), "runs": runs, "warmup": warmup, "input_range": list(input_range),
           "shapes": [resolve_input_shape(s["shape_signature"], input_shape) for s in specs]}
    try:
        child, log = litert_gpu.run_child("benchmarks.desktop", job, timeout_s, f"desktop GPU benchmark of {path}")
    except ExportError as exc:
        raise BenchError(f"{exc}; use --device desktop (CPU) or --device adb") from None
    return gpu_result(child, log, path, job["shapes"][0])


def gpu_result(child, log, path, input_shape):
    """The bench result from the child's dict and its stderr `log`.

    "op_split" becomes {"gpu_only_compiles", "num_ops", "gpu_ops", "cpu_ops"} from the
    accelerator's own log (`litert_gpu.split_from_log`), never from `is_fully_accelerated()`:
    with GPU|CPU accelerators that counts XNNPACK (the CPU) as an accelerator.
    """
    return dict(child, model=os.fspath(path), input_shape=input_shape,
                op_split=litert_gpu.split_from_log(child["op_split"], log))


def accuracy(reference, outputs):
    """How far `outputs` are from the CPU `reference` (lists of arrays, flattened together).

    {"max_abs_diff", "psnr_db", "non_finite"}: PSNR with the reference's value range as peak (1 for a
    constant reference), capped at PSNR_CAP_DB; with any NaN/inf output (e.g. FP16 overflow) the
    count is in "non_finite" and the other two are None.
    """
    ref = np.concatenate([np.ravel(r).astype(np.float64) for r in reference])
    out = np.concatenate([np.ravel(o).astype(np.float64) for o in outputs])
    non_finite = int(np.count_nonzero(~np.isfinite(out)))
    if non_finite:
        return {"max_abs_diff": None, "psnr_db": None, "non_finite": non_finite}
    diff = out - ref
    mse = float(np.mean(diff ** 2))
    peak = float(np.ptp(ref)) or 1.0
    psnr = PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * float(np.log10(peak ** 2 / mse)))
    return {"max_abs_diff": float(np.max(np.abs(diff))), "psnr_db": psnr, "non_finite": 0}


def current_rss_mb():
    """Resident set size of this process now, in MB (Linux /proc; 0.0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def check_counts(runs, warmup, threads=None):
    """Reject run/warm-up/thread counts that no runtime accepts."""
    if runs < 1 or warmup < 0:
        raise BenchError(f"need --runs >= 1 and --warmup >= 0, got {runs} and {warmup}")
    if threads is not None and threads < 1:
        raise BenchError(f"need --threads >= 1, got {threads}")


def _time_calls(call, runs, warmup):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _cpu_reference(path, feeds):
    """Outputs of the LiteRT CPU interpreter on `feeds` (one array per input, in input order)."""
    interpreter, _ = load_interpreter(path)
    for detail, feed in zip(interpreter.get_input_details(), feeds):
        if list(detail["shape"]) != list(feed.shape):
            interpreter.resize_tensor_input(detail["index"], feed.shape, strict=True)
    interpreter.allocate_tensors()
    for detail, feed in zip(interpreter.get_input_details(), feeds):
        interpreter.set_tensor(detail["index"], feed)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def _compiled_runner(path, shapes, feeds, enforce_f32=False):
    """GPU|CPU `CompiledModel` of `path` resized to `shapes`, its buffers filled with `feeds`: (run, read)."""
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    model = litert_gpu.compile_model(path, HardwareAccelerator.GPU | HardwareAccelerator.CPU, enforce_f32)
    signature = next(iter(model.get_signature_list()))
    for index, (detail, shape) in enumerate(zip(model.get_input_tensor_details(signature).values(), shapes)):
        if list(detail["shape"]) != shape:
            model.resize_input_tensor(index, shape)
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    for buffer, feed in zip(inputs, feeds):
        buffer.write(feed)

    def read(like):
        return [buffer.read(ref.size, ref.dtype).reshape(ref.shape) for buffer, ref in zip(outputs, like)]
    return (lambda: model.run_by_index(0, inputs, outputs)), read


def _gpu_worker(job):
    """Child-process body of `bench_desktop_gpu`: op-split compiles, CPU reference, timed FP16, FP32 once."""
    path, shapes = job["path"], job["shapes"]
    facts, _ = litert_gpu.compile_split(path)
    rng = np.random.default_rng(0)
    feeds = [random_input(shape, spec["dtype"], rng, job["input_range"])
             for spec, shape in zip(input_specs(path), shapes)]
    reference = _cpu_reference(path, feeds)
    start = time.perf_counter()
    run, read = _compiled_runner(path, shapes, feeds)
    init_ms = (time.perf_counter() - start) * 1000.0
    times = _time_calls(run, job["runs"], job["warmup"])
    fp16 = accuracy(reference, read(reference))
    run_f32, read_f32 = _compiled_runner(path, shapes, feeds, enforce_f32=True)
    run_f32()
    return {"device": "desktop-gpu", "runtime": GPU_RUNTIME, "runs": job["runs"], "warmup": job["warmup"],
            "init_ms": init_ms, "input_dtype": feeds[0].dtype.name, "latency_ms": latency_stats(times),
            "op_split": facts, "accuracy": {"fp16": fp16, "enforce_f32": accuracy(reference, read_f32(reference))},
            "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(litert_gpu.RESULT_MARKER + json.dumps(_gpu_worker(json.loads(sys.argv[1]))), flush=True)
