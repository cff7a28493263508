"""`isp report` with a third-party .tflite or a PyTorch-side .onnx next to a run's report: conventions,
evaluation, timing and size-aware verdict (a .tflite) or no latency and no verdict (a .onnx)."""
import json

import pytest

from benchmarks import external
from benchmarks.cli import main
from benchmarks.errors import BenchError
from onnx_testing import crd_from_dcr_hwio, isp_onnx
from test_tflite_export_conventions import convention_model, toy_weights, write_toy_data
from tflite_export.errors import ExportError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(data root, a fixed 16x16 model that divides by 4096 in its graph, a run's report.json, the same
    toy ISP as a dynamic PyTorch-style .onnx that divides by 4096)."""
    folder = tmp_path_factory.mktemp("external")
    root = write_toy_data(folder / "data")
    model = convention_model(folder / "winner.tflite", (0.0, 4096.0), shape=(16, 16, 4))
    report = folder / "report.json"
    report.write_text(json.dumps({"rows": [{"label": "unet_s fp16", "model": "unet_s", "psnr": 23.0, "ssim": 0.7,
                                            "latency_ms": 60.0, "latency_source": "desktop CPU, 2 threads"}]}))
    onnx = isp_onnx(folder / "torch_isp.onnx", crd_from_dcr_hwio(toy_weights()), input_scale=1 / 4096)
    return root, model, report, onnx


def test_external_row_uses_its_conventions_and_gets_no_full_hd_verdict(setup):
    root, model, *_ = setup
    row, warning = external.external_row(f"{model}:in=0,4096", data=root, runs=1)
    assert warning is None and row["psnr"] > 40.0 and row["input_range"] == [0.0, 4096.0]
    assert row["budget"] == "input 16x16: no Full HD verdict" and row["input_hw"] == [16, 16]
    assert row["ms_per_mp"] == pytest.approx(row["latency_ms"] / (32 * 32 / 1e6))
    assert row["gpu_static"] == "fully delegated"


def test_report_ranks_an_external_model_next_to_a_run(setup, tmp_path, capsys):
    root, model, report, _ = setup
    out = tmp_path / "board"
    argv = ["report", str(report), f"{model}:in=0,4096", "--data", str(root), "--out", str(out), "--bench-runs", "1"]
    assert main(argv) == 0
    board = (out / "leaderboard.md").read_text()
    lines = [line for line in board.splitlines() if line.startswith("| winner.tflite")]
    assert len(lines) == 1 and float(lines[0].split("|")[2]) > 40.0
    assert board.index("winner.tflite") < board.index("unet_s fp16")  # best PSNR first
    assert "warning" not in capsys.readouterr().out


def test_external_model_without_its_convention_warns(setup, tmp_path, capsys):
    root, model, *_ = setup
    assert main(["report", str(model), "--data", str(root), "--out", str(tmp_path), "--bench-runs", "1"]) == 0
    assert "warning: the model's output is nearly constant" in capsys.readouterr().out


@pytest.mark.parametrize("suffix,match", [(":gain=2", "unknown option"), (":in=4095", "in= "), (":in=", "unknown")])
def test_bad_source_options(setup, suffix, match):
    with pytest.raises((BenchError, ExportError), match=match):
        external.parse_source(f"{setup[1]}{suffix}")


def test_sources_that_are_not_model_files_are_reports():
    assert external.is_external("a/b.tflite") and external.is_external("b.tflite:in=0,1:out=-1,1")
    assert external.is_external("a/b.onnx") and external.is_external("b.onnx:in=0,4095")
    assert external.parse_source("b.onnx:in=0,4095") == ("b.onnx", (0.0, 4095.0), None)
    assert not external.is_external("runs/full") and not external.is_external("runs/full/report.json")


def test_onnx_row_is_evaluated_with_onnx_runtime_and_not_timed(setup):
    root, *_, onnx = setup
    row, warning = external.external_row(f"{onnx}:in=0,4096", data=root)
    assert warning is None and row["psnr"] > 40.0 and row["input_range"] == [0.0, 4096.0]
    assert row["recipe"] == "onnx" and row["latency_source"] == "ONNX Runtime, desktop CPU (not timed)"
    assert row["budget"] == "no verdict: not a TFLite latency"
    assert all(row.get(key) is None for key in ("latency_ms", "score", "gpu_static"))


def test_report_ranks_an_onnx_model_beside_runs_and_tflite_files(setup, tmp_path, capsys):
    root, model, report, onnx = setup
    out = tmp_path / "board"
    assert main(["report", str(report), f"{model}:in=0,4096", f"{onnx}:in=0,4096", "--data", str(root),
                 "--out", str(out), "--bench-runs", "1"]) == 0
    board = (out / "leaderboard.md").read_text()
    cells = next(line for line in board.splitlines() if line.startswith("| torch_isp.onnx")).split(" | ")
    assert float(cells[1]) > 40.0 and board.index("torch_isp.onnx") < board.index("unet_s fp16")
    assert cells[4:6] == ["—", "ONNX Runtime, desktop CPU (not timed)"]  # latency, measured on
    assert "no verdict: not a TFLite latency" in cells and cells[-1].strip(" |") == "—"  # no Pareto point
    assert board.count("torch_isp.onnx") == 1  # no desktop-CPU ratio is taken to it
    assert "warning" not in capsys.readouterr().out
