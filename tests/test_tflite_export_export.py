"""`isp export` on a real (tiny) trained run: the challenge pair, export.json and fidelity."""
import json
import os

import numpy as np
import pytest

from benchmarks.cli import main
from isp import config as config_mod
from isp import train
from isp.errors import ISPError
from tflite_export import export, fidelity, litert_gpu
from tflite_export.runtime import TFLiteModel


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from tests.conftest import write_pair_tree
    root = tmp_path_factory.mktemp("data")
    write_pair_tree(root, "train", 6)
    write_pair_tree(root, "val", 2, seed=1)
    cfg = config_mod.resolve(dict(data=str(root), runs_dir=str(tmp_path_factory.mktemp("runs")), model="unet_tiny",
                                  epochs=1, qat_epochs=1, batch_size=2, crop=8, msssim_weight=0.0, cache=False))
    return train.train(cfg, progress=False)["run_dir"]


@pytest.mark.parametrize("recipe", ["fp32", "fp16", "int8", "qat"])
def test_export_pair_and_report(trained_run, tmp_path, recipe):
    report = export.export(trained_run, recipe, tmp_path, fixed_shape=(16, 24), rep_count=4, progress=False)
    fixed = TFLiteModel(tmp_path / "model.tflite")
    dynamic = TFLiteModel(tmp_path / "model_none.tflite")
    assert fixed.input_shape == (1, 16, 24, 4) and fixed.output_shape == (1, 32, 48, 3)
    assert dynamic.is_dynamic and dynamic.run(np.zeros((1, 8, 16, 4), np.float32)).shape == (1, 16, 32, 3)
    saved = json.load(open(tmp_path / "export.json"))
    assert saved["recipe"] == recipe
    assert saved["input_range"] == [0.0, 1.0] and saved["output_range"] == [0.0, 1.0]
    assert saved["files"]["model.tflite"]["bytes"] == os.path.getsize(tmp_path / "model.tflite")
    assert saved["files"]["model.tflite"]["gpu_delegate"].startswith("fully delegated")
    fid = report["fidelity"]
    assert fid["images"] == 2 and np.isfinite(fid["tflite_psnr"]) and not fid["fp16_overflow_risk"]
    if recipe == "fp32":
        assert abs(fid["psnr_delta_db"]) < 0.01
    if recipe == "fp16":  # this machine's own answer: without a GPU adapter, the FP32-arithmetic fallback
        problem = litert_gpu.adapter_problem()
        assert saved["fidelity"]["gpu_fp16_unavailable"] == problem and (fid["gpu_fp16"] is None) == bool(problem)
        assert fid["fp16_within_tolerance"] and fid["fp16_arithmetic"].startswith("FP32" if problem else "FP16")
        if problem:
            assert "FP16 check ran with FP32" in export.format_report(report)
            assert f"no FP16 GPU run: {problem}" in export.format_report(report)
    if recipe in ("int8", "qat"):
        assert "QUANTIZE" in saved["files"]["model.tflite"]["ops"] or fixed.input_dtype == np.float32


@pytest.fixture
def cpu_as_gpu(monkeypatch):
    """litert_gpu's children run as tests.litert_cpu_child: real child processes whose GPU compile is
    LiteRT's CPU accelerator. The adapter probe's per-process cache is cleared before and after."""
    monkeypatch.setattr(litert_gpu, "CHILD_MODULE", "tests.litert_cpu_child")
    litert_gpu.adapter_problem.cache_clear()
    yield
    litert_gpu.adapter_problem.cache_clear()


def test_adapter_probe_runs_once_per_process(cpu_as_gpu):
    assert litert_gpu.adapter_problem() is None and litert_gpu.adapter_problem() is None
    assert litert_gpu.adapter_problem.cache_info().misses == 1


def test_fp16_fidelity_runs_on_the_gpu_when_there_is_an_adapter(trained_run, tmp_path, cpu_as_gpu):
    report = export.export(trained_run, "fp16", tmp_path, fixed_shape=(16, 24), progress=False)
    fid = json.load(open(tmp_path / "export.json"))["fidelity"]
    gpu, split = fid["gpu_fp16"], fid["gpu_fp16"]["op_split"]
    assert fid["gpu_fp16_unavailable"] is None and fid["tflite_arithmetic"].startswith("FP32")
    assert split["gpu_only_compiles"] and split["cpu_ops"] == 0 and split["gpu_ops"] == split["num_ops"] > 0
    assert fid["fp16_arithmetic"] == gpu["arithmetic"] == (
        f"FP16 (LiteRT GPU accelerator, default precision: all {split['num_ops']} ops on the GPU)")
    for name in ("tflite_psnr", "tflite_ssim", "psnr_vs_keras"):  # XNNPACK on both sides: the CPU's numbers
        assert gpu[name] == pytest.approx(fid[name], abs=1e-3)
    assert gpu["psnr_delta_db"] == pytest.approx(gpu["tflite_psnr"] - fid["keras_psnr"])
    assert fid["fp16_within_tolerance"] is (abs(gpu["psnr_delta_db"]) <= 0.05)
    text = export.format_report(report)
    assert "on the GPU at FP16: TFLite" in text and "(the line above: FP32 (LiteRT CPU" in text
    assert "FP16 check ran with FP16" in text and "no FP16 GPU run" not in text
    assert litert_gpu.adapter_problem.cache_info().misses == 1
    feeds = [np.random.default_rng(0).random((1, *hw, 4), dtype=np.float32) for hw in ((8, 16), (16, 8), (16, 8))]
    files = [tmp_path / f"{kind}{i}.npy" for kind in ("in", "out") for i in range(3)]
    for name, feed in zip(files, feeds):
        np.save(name, feed)
    litert_gpu.run_fp16(tmp_path / "model_none.tflite", [str(f) for f in files[:3]], [str(f) for f in files[3:]])
    cpu = TFLiteModel(tmp_path / "model_none.tflite")
    for feed, out in zip(feeds, files[3:]):  # resized per input shape in one child
        np.testing.assert_allclose(np.load(out), cpu.run(feed), atol=1e-5)


def test_gpu_arithmetic_names_the_cpu_fallback():
    assert fidelity.gpu_arithmetic({"gpu_ops": 10, "cpu_ops": 2}) == (
        "FP16 for 10 ops (LiteRT GPU accelerator, default precision), FP32 for the other 2 (its CPU fallback)")
    assert "not logged" in fidelity.gpu_arithmetic({"gpu_ops": None, "cpu_ops": None})


def test_export_cli_uint8_io(trained_run, tmp_path, capsys):
    assert main(["export", trained_run, "--quant", "int8", "--io", "uint8", "--out", str(tmp_path),
                 "--shape", "8,8", "--rep-count", "2", "--no-fidelity"]) == 0
    assert TFLiteModel(tmp_path / "model.tflite").input_dtype == np.uint8
    assert "model_none.tflite" in capsys.readouterr().out


def test_export_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(ISPError, match="not a run folder"):
        export.export(str(tmp_path), "fp16", str(tmp_path / "out"))
    assert main(["export", str(tmp_path), "--quant", "fp16"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
