import argparse
import ctypes.util
import json
import os

import numpy as np
import pytest

from benchmarks import bench_cli
from benchmarks.desktop import (FULL_HD_INPUT, bench_desktop, bench_desktop_gpu, latency_stats,
                                random_input, resolve_input_shape)
from benchmarks.errors import BenchError
from benchmarks_testing import write_tiny_tflite
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
    assert result["input_shape"] == [1, *FULL_HD_INPUT, 4]
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
    with pytest.raises(BenchError, match="does not exist"):
        bench_desktop(tmp_path / "missing.tflite")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(BenchError, match="not a loadable .tflite"):
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
    assert isinstance(result["fully_accelerated"], bool)


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
