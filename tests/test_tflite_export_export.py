"""`isp export` on a real (tiny) trained run: the challenge pair, export.json and fidelity."""
import json
import os

import numpy as np
import pytest

from benchmarks.cli import main
from isp import config as config_mod
from isp import train
from tflite_export import export
from tflite_export.errors import ExportError
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
    if recipe == "fp16":
        assert fid["fp16_within_tolerance"] and fid["fp16_arithmetic"].startswith("FP32")
        assert "FP16 check ran with FP32" in export.format_report(report)
    if recipe in ("int8", "qat"):
        assert "QUANTIZE" in saved["files"]["model.tflite"]["ops"] or fixed.input_dtype == np.float32


def test_export_cli_uint8_io(trained_run, tmp_path, capsys):
    assert main(["export", trained_run, "--quant", "int8", "--io", "uint8", "--out", str(tmp_path),
                 "--shape", "8,8", "--rep-count", "2", "--no-fidelity"]) == 0
    assert TFLiteModel(tmp_path / "model.tflite").input_dtype == np.uint8
    assert "model_none.tflite" in capsys.readouterr().out


def test_export_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(ExportError, match="not a run folder"):
        export.find_run(str(tmp_path))
    assert main(["export", str(tmp_path), "--quant", "fp16"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
