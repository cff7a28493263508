import argparse
import ctypes.util
import json
import os

import numpy as np
import pytest

from benchmarks import bench_cli, desktop, measured
from benchmarks.desktop import (accuracy, bench_desktop, bench_desktop_gpu, gpu_result,
                                latency_stats, random_input, resolve_input_shape)
from benchmarks.errors import BenchError
from data.challenge import FULL_HD_PACKED
from benchmarks_testing import write_tiny_tflite
from tflite_export import litert_gpu
from tflite_export.errors import ExportError

LATENCY_KEYS = {"mean", "p50", "p90", "min", "max", "std"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"static": write_tiny_tflite(folder / "static.tflite"),
            "dynamic": write_tiny_tflite(folder / "dynamic.tflite", input_shape=(None, None, 4)),
            "uint8": write_tiny_tflite(folder / "uint8.tflite", quantized=True)}


def check_latency(latency):
    assert set(latency) == LATENCY_KEYS
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["max"]
    assert latency["min"] <= latency["mean"] <= latency["max"]


def test_static_model(models):
    result = bench_desktop(models["static"], threads=1, runs=5, warmup=1)
    assert result["input_shape"] == [1, 32, 32, 4] and result["input_dtype"] == "float32"
    assert (result["runs"], result["warmup"], result["threads"]) == (5, 1, 1)
    check_latency(result["latency_ms"])
    assert result["peak_rss_mb"] > 10 and result["init_ms"] > 0
    assert isinstance(result["load_rss_delta_mb"], float)
    json.dumps(result)


def test_dynamic_model_defaults_to_full_hd(models):
    result = bench_desktop(models["dynamic"], runs=1, warmup=0)
    assert result["input_shape"] == [1, *FULL_HD_PACKED, 4]
    check_latency(result["latency_ms"])


def test_dynamic_model_takes_input_shape(models):
    result = bench_desktop(models["dynamic"], runs=3, warmup=1, input_shape=(48, 80))
    assert result["input_shape"] == [1, 48, 80, 4]


def test_quantized_model_gets_uint8_input(models):
    result = bench_desktop(models["uint8"], runs=3, warmup=1)
    assert result["input_dtype"] == "uint8"
    check_latency(result["latency_ms"])


def test_fixed_model_rejects_other_input_shape(models):
    with pytest.raises(BenchError, match="fixed input"):
        bench_desktop(models["static"], runs=1, input_shape=(64, 64))


def test_missing_and_corrupt_models(tmp_path):
    """The one LiteRT loader (tflite_export.runtime.load_interpreter): the same ExportError as isp eval."""
    with pytest.raises(ExportError, match="missing.tflite: no such .tflite file"):
        bench_desktop(tmp_path / "missing.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ExportError, match=r"garbage.tflite: not a loadable .tflite file \([^\n]*\); re-export it$"):
        bench_desktop(garbage)


@pytest.mark.parametrize("runs,warmup,threads", [(0, 1, None), (3, -1, None), (3, 1, 0)])
def test_bad_counts(models, runs, warmup, threads):
    with pytest.raises(BenchError, match="need --"):
        bench_desktop(models["static"], runs=runs, warmup=warmup, threads=threads)


@pytest.mark.parametrize("signature,input_shape,expected", [
    ([1, -1, -1, 4], None, [1, 544, 960, 4]),
    ([-1, -1, -1, 4], (272, 480), [1, 272, 480, 4]),
    ([1, 32, -1, 4], (32, 64), [1, 32, 64, 4]),
    ([1, 32, 32, 4], None, [1, 32, 32, 4]),
    ([1, 32, 32, 4], (32, 32), [1, 32, 32, 4]),
    ([-1, 10], None, [1, 10]),
])
def test_resolve_input_shape(signature, input_shape, expected):
    assert resolve_input_shape(signature, input_shape) == expected


@pytest.mark.parametrize("signature", [[1, -1, -1, -1], [1, -1, 10], [1, 4, 4, 4, -1]])
def test_resolve_input_shape_rejects_other_dynamic_dims(signature):
    with pytest.raises(BenchError, match="dynamic"):
        resolve_input_shape(signature)


def test_random_input_ranges():
    rng = np.random.default_rng(0)
    floats = random_input([1, 8, 8, 4], np.float32, rng)
    assert floats.dtype == np.float32 and floats.min() >= 0 and floats.max() <= 1
    ints = random_input([1, 64, 64, 4], np.uint8, rng)
    assert ints.dtype == np.uint8 and ints.min() == 0 and ints.max() == 255
    assert random_input([4, 4], np.int8, rng).dtype == np.int8


def test_latency_stats():
    stats = latency_stats([0.001, 0.002, 0.003, 0.004, 0.010])
    assert stats["mean"] == pytest.approx(4.0) and stats["p50"] == pytest.approx(3.0)
    assert stats["min"] == pytest.approx(1.0) and stats["max"] == pytest.approx(10.0)
    assert stats["p90"] == pytest.approx(7.6)


def _has_gpu_stack():
    return ctypes.util.find_library("vulkan") is not None and os.path.exists("/dev/dri")


def test_desktop_gpu(models):
    """Without a GPU adapter (CI, this workplace) a one-line BenchError; with one, a result."""
    try:
        result = bench_desktop_gpu(models["static"], runs=3, warmup=1)
    except BenchError as exc:
        message = str(exc)
        assert "\n" not in message and "desktop GPU benchmark" in message
        if not _has_gpu_stack():
            assert "no GPU adapter" in message or "libvulkan" in message
        return
    assert _has_gpu_stack()
    check_latency(result["latency_ms"])
    assert "fully_accelerated" not in result and result["op_split"]["num_ops"] == 2
    assert set(result["accuracy"]) == {"fp16", "enforce_f32"}


# The accelerator's log as captured from a GPU|CPU compile (issue 12): 1 of 4 ops on the GPU, while
# is_fully_accelerated() said True because it counts XNNPACK as an accelerator.
PARTIAL_LOG = ("INFO: [delegate_webgpu.cc:342] Create WebGPU environment (use_low_power=0)\n"
               "INFO: 1 operations will run on the GPU, and the remaining 3 operations will run on the CPU.\n")
EXACT = {"max_abs_diff": 0.0, "psnr_db": 100.0, "non_finite": 0}


def _child(gpu_only_compiles=False, num_ops=4):
    """A `_gpu_worker` result as the child prints it."""
    return {"device": "desktop-gpu", "runtime": desktop.GPU_RUNTIME, "runs": 3, "warmup": 1, "init_ms": 5.0,
            "input_dtype": "float32", "latency_ms": latency_stats([0.030, 0.031, 0.032]),
            "op_split": {"gpu_only_compiles": gpu_only_compiles, "num_ops": num_ops},
            "accuracy": {"fp16": {"max_abs_diff": 2e-3, "psnr_db": 61.5, "non_finite": 0}, "enforce_f32": EXACT},
            "peak_rss_mb": 100.0}


@pytest.mark.parametrize("gpu_only,log,split,delegation", [
    (False, PARTIAL_LOG, (1, 3), "partially delegated (1 GPU / 3 CPU ops)"),
    (False, "Replacing 4 out of 4 node(s) with delegate (x) node", (4, 0), "fully delegated (4 GPU / 0 CPU ops)"),
    (True, "no split line", (4, 0), "fully delegated (4 GPU / 0 CPU ops)"),
    (False, "no split line", (None, None), None),
])
def test_gpu_result_takes_the_split_from_the_accelerator_log(gpu_only, log, split, delegation):
    result = gpu_result(_child(gpu_only), log, "m.tflite", [1, 544, 960, 4])
    assert (result["op_split"]["gpu_ops"], result["op_split"]["cpu_ops"]) == split
    assert result["op_split"]["gpu_only_compiles"] is gpu_only and result["model"] == "m.tflite"
    assert measured.measured_delegation(result) == delegation


def test_accuracy():
    ref = np.linspace(0, 1, 101, dtype=np.float32).reshape(1, 101)
    assert accuracy([ref], [ref.copy()]) == EXACT
    result = accuracy([ref], [ref + np.float32(0.01)])
    assert result["max_abs_diff"] == pytest.approx(0.01, rel=1e-4)
    assert result["psnr_db"] == pytest.approx(40.0, abs=1e-3)
    scaled = accuracy([ref * 4095], [ref * 4095 + np.float32(40.95)])  # peak is the reference's range
    assert scaled["psnr_db"] == pytest.approx(40.0, abs=1e-3)
    assert accuracy([np.zeros(4)], [np.full(4, 0.1)])["psnr_db"] == pytest.approx(20.0)  # constant: peak 1
    broken = ref.copy()
    broken[0, :2] = [np.inf, np.nan]
    assert accuracy([ref], [broken]) == {"max_abs_diff": None, "psnr_db": None, "non_finite": 2}


def _fake_run_child(child, log, calls):
    def run_child(module, job, timeout_s, what):
        calls.append((module, job, what))
        return child, log
    return run_child


def test_bench_desktop_gpu_builds_the_job_and_reads_the_log(models, monkeypatch):
    calls = []
    monkeypatch.setattr(litert_gpu, "run_child", _fake_run_child(_child(), PARTIAL_LOG, calls))
    result = bench_desktop_gpu(models["dynamic"], runs=3, warmup=1, input_range=(0, 4095))
    (module, job, what), = calls
    assert module == "benchmarks.desktop" and what.startswith("desktop GPU benchmark of")
    assert job["shapes"] == [[1, *FULL_HD_PACKED, 4]] and (job["runs"], job["warmup"]) == (3, 1)
    assert job["input_range"] == [0, 4095]
    assert result["input_shape"] == [1, *FULL_HD_PACKED, 4] and result["op_split"]["cpu_ops"] == 3
    json.dumps(result)


def test_bench_desktop_gpu_without_adapter_is_one_line(models, monkeypatch):
    def no_adapter(module, job, timeout_s, what):
        raise ExportError(f"{what} impossible on this machine: LiteRT's GPU accelerator found no GPU adapter")
    monkeypatch.setattr(litert_gpu, "run_child", no_adapter)
    with pytest.raises(BenchError) as info:
        bench_desktop_gpu(models["static"])
    assert str(info.value) == (f"desktop GPU benchmark of {models['static']} impossible on this machine: LiteRT's "
                               "GPU accelerator found no GPU adapter; use --device desktop (CPU) or --device adb")


def test_gpu_worker_up_to_the_adapter(models, monkeypatch):
    """The child's whole body, with LiteRT's compile pointed at the CPU accelerator (no GPU here)."""
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    compiles = []
    real_compile = litert_gpu.compile_model

    def cpu_compile(path, accelerators, enforce_f32=False):
        compiles.append((accelerators, enforce_f32))
        return real_compile(path, HardwareAccelerator.CPU, enforce_f32)
    monkeypatch.setattr(litert_gpu, "compile_model", cpu_compile)
    job = {"path": str(models["dynamic"]), "runs": 2, "warmup": 1, "input_range": [0, 1], "shapes": [[1, 24, 40, 4]]}
    child = desktop._gpu_worker(job)
    gpu_cpu = HardwareAccelerator.GPU | HardwareAccelerator.CPU
    assert compiles == [(HardwareAccelerator.GPU, False), (gpu_cpu, False), (gpu_cpu, False), (gpu_cpu, True)]
    assert child["op_split"] == {"gpu_only_compiles": True, "num_ops": 2}
    for acc in child["accuracy"].values():  # XNNPACK both sides: the same numbers
        assert acc["non_finite"] == 0 and acc["max_abs_diff"] < 1e-5 and acc["psnr_db"] > 90
    check_latency(child["latency_ms"])
    assert (child["runs"], child["warmup"], child["input_dtype"]) == (2, 1, "float32")
    json.dumps(child)


def _run_cli(*argv):
    parser = argparse.ArgumentParser(prog="isp")
    bench_cli.add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def test_cli_desktop_table_and_json(models, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert _run_cli(str(models["dynamic"]), "--input-shape", "544,960", "--runs", "2", "--warmup", "0",
                    "--budget-ms", "1000,2000", "--psnr", "23", "--json", str(out)) == 0
    table = capsys.readouterr().out
    assert "latency p90" in table and "1x544x960x4" in table and "no Full HD verdict" not in table
    saved = json.loads(out.read_text())
    mean_ms = saved["latency_ms"]["mean"]
    assert {k: saved["budget"][k] for k in ("lo_ms", "hi_ms", "input_hw")} == {
        "lo_ms": 1000.0, "hi_ms": 2000.0, "input_hw": [544, 960]}
    assert saved["budget"]["ms_per_mp"] == pytest.approx(mean_ms / (1088 * 1920 / 1e6))
    assert saved["score"]["value"] == pytest.approx(2 ** 46 / (mean_ms / 1000))


@pytest.mark.parametrize("model,argv,size", [
    ("dynamic", ["--input-shape", "40,64"], "40x64"),
    ("static", [], "32x32"),  # a fixed non-Full-HD model, like MicroISP's published [1,1500,2000,4]
])
def test_cli_non_full_hd_gets_no_verdict(models, model, argv, size, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert _run_cli(str(models[model]), *argv, "--runs", "2", "--budget-ms", "1000,2000", "--json", str(out)) == 0
    table = capsys.readouterr().out
    assert f"input {size}: no Full HD verdict" in table and "ms per output megapixel" in table
    assert "within" not in table and "over budget" not in table
    assert json.loads(out.read_text())["budget"]["verdict"] == f"input {size}: no Full HD verdict"


def test_cli_desktop_gpu_table(models, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(litert_gpu, "run_child", _fake_run_child(_child(), PARTIAL_LOG, []))
    out = tmp_path / "gpu.json"
    assert _run_cli(str(models["dynamic"]), "--device", "desktop-gpu", "--json", str(out)) == 0
    rows = dict(line.split("  ", 1) for line in capsys.readouterr().out.splitlines())
    rows = {name.strip(): value.strip() for name, value in rows.items()}
    assert rows["GPU-only compile"] == "fails: some op needs the CPU"
    assert rows["delegation"] == "partially delegated (1 GPU / 3 CPU ops)"
    assert rows["GPU FP16 vs CPU"] == "max |diff| 0.002, PSNR 61.50 dB"
    assert rows["GPU FP32 vs CPU"] == "max |diff| 0, PSNR 100.00 dB"
    assert rows["budget"].startswith("within")  # a desktop GPU measurement gets the verdict
    assert "fully accelerated" not in rows and "fully_accelerated" not in json.loads(out.read_text())


def test_cli_input_range_bounds_the_random_input(models, capsys):
    assert _run_cli(str(models["static"]), "--runs", "1", "--input-range", "0,4095") == 0
    assert random_input((4096,), "float32", np.random.default_rng(0), (0, 4095)).max() > 4000
    with pytest.raises(ExportError, match="--input-range"):
        _run_cli(str(models["static"]), "--input-range", "4095")


@pytest.mark.parametrize("argv,match", [
    (["--serial", "X"], "--serial only applies to --device adb"),
    (["--fp32"], "--fp32 only applies"),
    (["--device", "desktop-gpu", "--threads", "2"], "--threads does not apply"),
    (["--input-shape", "544x960"], "--input-shape"),
    (["--budget-ms", "50"], "--budget-ms"),
    (["--device", "adb", "--input-range", "0,4095"], "--input-range only applies to the desktop devices"),
])
def test_cli_rejects_bad_flags(models, argv, match):
    with pytest.raises(BenchError, match=match):
        _run_cli(str(models["static"]), *argv)
