"""Desktop latency of a `.tflite` file with LiteRT: CPU (Interpreter + XNNPACK) or GPU (CompiledModel).

Inputs are random: float uniform over the model's input range (default [0, 1], the range the
toolkit's models are fed; --input-range for models that expect e.g. RAW counts), or the full
integer range for a quantized (uint8/int8) input. A dynamic-shape input `[1, -1, -1, C]` is
resized to `input_shape` (default Full HD: 544x960 packed RAW, i.e. a 1088x1920 RGB output).

The GPU path runs in a child process: the native accelerator explains failures (e.g. "No adapters
found") only on stderr, and a broken driver may abort the process instead of raising.
"""
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from benchmarks.errors import BenchError
from benchmarks.score import FULL_HD_INPUT
_RESULT_MARKER = "ISP_BENCH_RESULT "
_GPU_FAILURES = (
    ("No adapters found", "LiteRT's GPU accelerator found no GPU adapter"),
    ("Couldn't load Vulkan", "the Vulkan loader libvulkan.so.1 is missing"),
)


def input_specs(path):
    """Inputs of a `.tflite` file: list of {"index", "name", "shape_signature", "dtype"}."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = _load_interpreter(Interpreter, path)
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
    height, width = input_shape or FULL_HD_INPUT
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
    from ai_edge_litert.interpreter import Interpreter
    check_counts(runs, warmup, threads)
    rss_before = current_rss_mb()
    start = time.perf_counter()
    interpreter = _load_interpreter(Interpreter, path, num_threads=threads)
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
    """Time a LiteRT `CompiledModel` on the desktop GPU accelerator (CPU fallback for other ops).

    Runs in a child process; returns the same "latency_ms" layout as `bench_desktop` plus
    "fully_accelerated". A machine without a usable GPU adapter raises a one-line BenchError.
    """
    check_counts(runs, warmup)
    specs = input_specs(path)
    job = {"path": os.path.abspath(path), "runs": runs, "warmup": warmup, "input_range": list(input_range),
           "shapes": [resolve_input_shape(s["shape_signature"], input_shape) for s in specs]}
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.desktop", json.dumps(job)],
                              capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"desktop GPU benchmark of {path} did not finish in {timeout_s} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith(_RESULT_MARKER):
            result = json.loads(line[len(_RESULT_MARKER):])
            result.update(model=os.fspath(path), input_shape=job["shapes"][0])
            return result
    raise BenchError(_gpu_failure_message(path, proc.returncode, proc.stderr))


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


def _load_interpreter(interpreter_cls, path, **kwargs):
    if not os.path.isfile(path):
        raise BenchError(f"model file {path} does not exist; pass the path of a .tflite file")
    try:
        return interpreter_cls(model_path=os.fspath(path), **kwargs)
    except ValueError as exc:
        raise BenchError(f"{path} is not a loadable .tflite model ({str(exc).splitlines()[0]}); "
                         "re-export it") from None


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


def _gpu_failure_message(path, returncode, stderr):
    reasons = [reason for needle, reason in _GPU_FAILURES if needle in stderr]
    if reasons:
        return (f"desktop GPU benchmark of {path} impossible on this machine: {'; '.join(reasons)}; "
                "use --device desktop (CPU) or --device adb")
    if returncode < 0:
        return (f"the LiteRT GPU accelerator crashed (signal {-returncode}) on {path}; "
                "use --device desktop (CPU) or --device adb")
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "no output")
    return f"desktop GPU benchmark of {path} failed (exit {returncode}): {last.strip()}"


def _gpu_worker(job):
    """Child-process body of `bench_desktop_gpu`: compile for GPU+CPU, time `run_by_index`."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import Options
    start = time.perf_counter()
    model = CompiledModel.from_file(job["path"], options=Options(
        hardware_accelerators=HardwareAccelerator.GPU | HardwareAccelerator.CPU))
    signature = next(iter(model.get_signature_list()))
    details = list(model.get_input_tensor_details(signature).values())
    for index, (detail, shape) in enumerate(zip(details, job["shapes"])):
        if list(detail["shape"]) != shape:
            model.resize_input_tensor(index, shape)
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    init_ms = (time.perf_counter() - start) * 1000.0
    rng = np.random.default_rng(0)
    for buffer, detail, shape in zip(inputs, details, job["shapes"]):
        buffer.write(random_input(shape, detail["dtype"], rng, job["input_range"]))
    times = _time_calls(lambda: model.run_by_index(0, inputs, outputs), job["runs"], job["warmup"])
    return {"device": "desktop-gpu", "runtime": "LiteRT CompiledModel (GPU accelerator, CPU fallback)",
            "runs": job["runs"], "warmup": job["warmup"], "init_ms": init_ms,
            "input_dtype": details[0]["dtype"],
            "latency_ms": latency_stats(times), "fully_accelerated": model.is_fully_accelerated(),
            "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(_RESULT_MARKER + json.dumps(_gpu_worker(json.loads(sys.argv[1]))), flush=True)
