"""`isp report` with a third-party .tflite next to a run's report: its conventions, evaluation, timing and
size-aware verdict."""
import json

import pytest

from benchmarks import external
from benchmarks.cli import main
from benchmarks.errors import BenchError
from test_tflite_export_conventions import convention_model, write_toy_data
from tflite_export.errors import ExportError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(data root, a fixed 16x16 model that divides by 4096 in its graph, a run's report.json)."""
    folder = tmp_path_factory.mktemp("external")
    root = write_toy_data(folder / "data")
    model = convention_model(folder / "winner.tflite", (0.0, 4096.0), shape=(16, 16, 4))
    report = folder / "report.json"
    report.write_text(json.dumps({"rows": [{"label": "unet_s fp16", "model": "unet_s", "psnr": 23.0, "ssim": 0.7,
                                            "latency_ms": 60.0, "latency_source": "desktop CPU, 2 threads"}]}))
    return root, model, report


def test_external_row_uses_its_conventions_and_gets_no_full_hd_verdict(setup):
    root, model, _ = setup
    row, warning = external.external_row(f"{model}:in=0,4096", data=root, runs=1)
    assert warning is None and row["psnr"] > 40.0 and row["input_range"] == [0.0, 4096.0]
    assert row["budget"] == "input 16x16: no Full HD verdict" and row["input_hw"] == [16, 16]
    assert row["ms_per_mp"] == pytest.approx(row["latency_ms"] / (32 * 32 / 1e6))
    assert row["gpu_static"] == "fully delegated"


def test_report_ranks_an_external_model_next_to_a_run(setup, tmp_path, capsys):
    root, model, report = setup
    out = tmp_path / "board"
    argv = ["report", str(report), f"{model}:in=0,4096", "--data", str(root), "--out", str(out), "--bench-runs", "1"]
    assert main(argv) == 0
    board = (out / "leaderboard.md").read_text()
    lines = [line for line in board.splitlines() if line.startswith("| winner.tflite")]
    assert len(lines) == 1 and float(lines[0].split("|")[2]) > 40.0
    assert board.index("winner.tflite") < board.index("unet_s fp16")  # best PSNR first
    assert "warning" not in capsys.readouterr().out


def test_external_model_without_its_convention_warns(setup, tmp_path, capsys):
    root, model, report = setup
    assert main(["report", str(model), "--data", str(root), "--out", str(tmp_path), "--bench-runs", "1"]) == 0
    assert "warning: the model's output is nearly constant" in capsys.readouterr().out


@pytest.mark.parametrize("suffix,match", [(":gain=2", "unknown option"), (":in=4095", "in= "), (":in=", "unknown")])
def test_bad_source_options(setup, suffix, match):
    with pytest.raises((BenchError, ExportError), match=match):
        external.parse_source(f"{setup[1]}{suffix}")


def test_sources_that_are_not_tflite_are_reports():
    assert external.is_external("a/b.tflite") and external.is_external("b.tflite:in=0,1:out=-1,1")
    assert not external.is_external("runs/full") and not external.is_external("runs/full/report.json")
