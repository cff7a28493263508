"""On-device latency over adb: push TFLite's `benchmark_model` and a model, run, parse, clean up.

Every adb call is an argument list (no local shell). `adb shell` joins its arguments with spaces
into one remote shell command, so each remote argument is quoted with `shlex.quote`: a model
called `a b;rm -rf x.tflite` reaches benchmark_model as one argument.
"""
import os
import re
import shlex
import shutil
import subprocess

from benchmarks.desktop import check_counts, input_specs, resolve_input_shape
from benchmarks.errors import BenchError
from benchmarks.parse import parse_benchmark_output

REMOTE_DIR = "/data/local/tmp"
BINARY_ENV = "ISP_BENCHMARK_MODEL"
WHERE_BINARY = ("get it from the TFLite nightly prebuilts (android_aarch64_benchmark_model) or build "
                "it with `bazel build -c opt --config=android_arm64 "
                "//tensorflow/lite/tools/benchmark:benchmark_model`")
_ELF_ABIS = {183: "arm64-v8a", 40: "armeabi-v7a", 62: "x86_64", 3: "x86"}
_STATE_FIXES = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging' prompt, then retry",
    "offline": "reconnect the cable, or run `adb kill-server` and retry",
    "no permissions": "your user may not open the USB device; add a udev rule for the phone "
                      "(plugdev group) and reconnect",
}
_SHORT_TIMEOUT_S = 60
_PUSH_TIMEOUT_S = 300


def bench_adb(model_path, serial=None, binary=None, use_gpu=True, fp16=True, threads=None, runs=50,
              warmup=5, profile_ops=False, require_full_delegation=False, taskset=None,
              input_shape=None, timeout_s=900):
    """Run `benchmark_model` on an adb device and return its parsed timings.

    GPU delegate by default (`fp16=False` sets --gpu_precision_loss_allowed=false); `use_gpu=False`
    runs on the CPU. A dynamic-shape input `[1, -1, -1, C]` is fed at `input_shape` (H, W; default
    Full HD). `taskset` is a hex CPU mask (pins the run to the big cores). Returns a dict with
    "latency_ms" (mean, p50, p5, p95, min, max, std), "init_ms", "benchmark" (the full
    `parse_benchmark_output` dict), "command" (remote argv) and "log" (stdout+stderr).
    """
    model_path = os.fspath(model_path)
    check_counts(runs, warmup, threads)
    if taskset is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", taskset):
        raise BenchError(f"--taskset {taskset!r}: expected a hex CPU mask such as f0")
    specs = input_specs(model_path)
    binary = find_binary(binary)
    binary_abi = elf_abi(binary)
    adb = find_adb()
    serial = pick_device(adb, serial)
    device_abi = _adb(adb, serial, "shell", "getprop", "ro.product.cpu.abi",
                      what="reading the device ABI").stdout.strip()
    if not _abi_compatible(binary_abi, device_abi):
        raise BenchError(f"benchmark_model binary {binary} is built for {binary_abi} but device "
                         f"{serial} is {device_abi}; {WHERE_BINARY}")
    remote_binary = f"{REMOTE_DIR}/benchmark_model"
    remote_model = f"{REMOTE_DIR}/{os.path.basename(model_path)}"
    command = benchmark_command(
        remote_binary, remote_model, specs, use_gpu=use_gpu, fp16=fp16, threads=threads,
        runs=runs, warmup=warmup, profile_ops=profile_ops,
        require_full_delegation=require_full_delegation, taskset=taskset, input_shape=input_shape)
    try:
        _adb(adb, serial, "push", binary, remote_binary, what=f"adb push of {binary}",
             timeout_s=_PUSH_TIMEOUT_S)
        _adb(adb, serial, "push", model_path, remote_model, what=f"adb push of {model_path}",
             timeout_s=_PUSH_TIMEOUT_S)
        _adb(adb, serial, "shell", "chmod", "755", shlex.quote(remote_binary),
             what="chmod of benchmark_model")
        proc = _adb(adb, serial, "shell", *map(shlex.quote, command), what="benchmark_model",
                    timeout_s=timeout_s, check=False)
    finally:
        _remove_remote(adb, serial, remote_binary, remote_model)
    parsed = _parse_run(proc, serial)
    return {"device": "adb", "serial": serial, "abi": device_abi, "model": model_path,
            "binary": binary, "accelerator": ("gpu-fp16" if fp16 else "gpu-fp32") if use_gpu
            else "cpu", "threads": threads, "runs": runs, "warmup": warmup,
            "input_shape": resolve_input_shape(specs[0]["shape_signature"], input_shape),
            "command": command,
            "init_ms": None if parsed["init_us"] is None else parsed["init_us"] / 1000.0,
            "latency_ms": latency_from_parsed(parsed), "benchmark": parsed, "log": proc.stdout}


def benchmark_command(remote_binary, remote_model, specs, use_gpu=True, fp16=True, threads=None,
                      runs=50, warmup=5, profile_ops=False, require_full_delegation=False,
                      taskset=None, input_shape=None):
    """The remote argv (unquoted) of one benchmark_model run; `specs` from `input_specs`."""
    argv = ["taskset", taskset] if taskset else []
    argv += [remote_binary, f"--graph={remote_model}", f"--num_runs={runs}",
             f"--warmup_runs={warmup}"]
    if use_gpu:
        argv += ["--use_gpu=true", f"--gpu_precision_loss_allowed={str(fp16).lower()}"]
    else:
        argv.append("--use_gpu=false")
    if threads is not None:
        argv.append(f"--num_threads={threads}")
    if profile_ops:
        argv.append("--enable_op_profiling=true")
    if require_full_delegation:
        argv.append("--require_full_delegation=true")
    argv.append("--report_peak_memory_footprint=true")
    dynamic = [s for s in specs if -1 in s["shape_signature"]]
    if dynamic:
        argv.append("--input_layer=" + ",".join(s["name"] for s in dynamic))
        argv.append("--input_layer_shape=" + ":".join(
            ",".join(map(str, resolve_input_shape(s["shape_signature"], input_shape)))
            for s in dynamic))
    return argv


def find_binary(binary=None):
    """Local benchmark_model path: `binary`, else $ISP_BENCHMARK_MODEL; must exist."""
    binary = binary or os.environ.get(BINARY_ENV)
    if not binary:
        raise BenchError(f"no benchmark_model binary: pass --binary PATH or set {BINARY_ENV}; "
                         f"{WHERE_BINARY}")
    if not os.path.isfile(binary):
        raise BenchError(f"benchmark_model binary {binary} does not exist; {WHERE_BINARY}")
    return binary


def elf_abi(path):
    """Android ABI name of an ELF executable, from the header's e_machine field."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise BenchError(f"{path} is not an ELF executable, so not a benchmark_model build; "
                         f"{WHERE_BINARY}")
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_ABIS.get(machine, f"ELF machine {machine}")


def find_adb():
    """Path of the `adb` client on PATH."""
    adb = shutil.which("adb")
    if adb is None:
        raise BenchError("adb not found on PATH: install it (Debian/Ubuntu: apt-get install adb, "
                         "or Android SDK platform-tools) and retry")
    return adb


def list_devices(adb):
    """[(serial, state)] from `adb devices`; state is "device", "unauthorized", "offline", ..."""
    proc = _run([adb, "devices"], "adb devices", _SHORT_TIMEOUT_S)
    if proc.returncode != 0:
        raise BenchError(f"`adb devices` failed: {_tail(proc.stdout, 1)}")
    return [tuple(part.strip() for part in line.split("\t", 1))
            for line in proc.stdout.splitlines() if "\t" in line]


def pick_device(adb, serial=None):
    """The serial to use: the given one or the only device; it must be in state "device"."""
    devices = list_devices(adb)
    listed = ", ".join(f"{s} ({state})" for s, state in devices)
    if serial is None:
        if not devices:
            raise BenchError("no Android device found by `adb devices`: connect a phone with USB "
                             "debugging enabled (or pass --device desktop)")
        if len(devices) > 1:
            raise BenchError(f"several devices connected: {listed}; pass --serial SERIAL")
        serial = devices[0][0]
    states = dict(devices)
    if serial not in states:
        raise BenchError(f"device {serial} not found by `adb devices` "
                         f"(connected: {listed or 'none'}); check --serial")
    state = states[serial]
    if state != "device":
        fix = next((text for prefix, text in _STATE_FIXES.items() if state.startswith(prefix)),
                   "check the connection and `adb devices`")
        raise BenchError(f"device {serial} is {state.split(';')[0]}: {fix}")
    return serial


def latency_from_parsed(parsed):
    """benchmark_model µs fields -> {"mean", "p50", "p5", "p95", "min", "max", "std"} in ms."""
    keys = {"mean": "avg_us", "p50": "median_us", "p5": "p5_us", "p95": "p95_us",
            "min": "min_us", "max": "max_us", "std": "std_us"}
    return {name: None if parsed[key] is None else parsed[key] / 1000.0
            for name, key in keys.items()}


def _parse_run(proc, serial):
    """Parsed output of a finished benchmark_model run; a crash or a log without timings raises."""
    if proc.returncode != 0:
        raise BenchError(f"benchmark_model failed on {serial} (exit {proc.returncode}): "
                         f"{_tail(proc.stdout, 3)}")
    parsed = parse_benchmark_output(proc.stdout)
    if parsed["avg_us"] is None:
        raise BenchError(f"benchmark_model on {serial} printed no timings: {_tail(proc.stdout, 3)}")
    return parsed


def _abi_compatible(binary_abi, device_abi):
    return binary_abi == device_abi or (binary_abi == "armeabi-v7a"
                                        and device_abi.startswith("armeabi"))


def _adb(adb, serial, *args, what, timeout_s=_SHORT_TIMEOUT_S, check=True):
    """Run `adb -s SERIAL ARGS...`; stdout and stderr merged in order. Failure -> BenchError."""
    proc = _run([adb, "-s", serial, *args], what, timeout_s)
    if check and proc.returncode != 0:
        raise BenchError(f"{what} on device {serial} failed: {_tail(proc.stdout, 2)}")
    return proc


def _run(argv, what, timeout_s):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True, errors="replace",
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} did not finish within {timeout_s} s; check the device") from None


def _remove_remote(adb, serial, *paths):
    """Best-effort cleanup of pushed files; never hides the error that got us here."""
    try:
        _adb(adb, serial, "shell", "rm", "-f", *map(shlex.quote, paths), what="cleanup",
             check=False)
    except BenchError:
        pass


def _tail(text, n):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "no output"
