"""Model zoo: Pareto front and claim check on hand-made rows, and a real end-to-end smoke run."""
import argparse
import json

import pytest

from benchmarks import report, zoo
from data import default_data
from benchmarks.errors import BenchError
from benchmarks_testing import tiny_benchmark_inputs
from isp.models import unet


def rows_of(points):
    """Zoo rows from {name: (held-out psnr, latency_ms)}, with comparisons against unet_s."""
    rows = [{"model": name, "summary": {"held-out": {"psnr_mean": psnr}, "val": {"psnr_mean": psnr - 1}},
             "latency_ms": ms, "round_p50_ms": [ms, 2 * ms]} for name, (psnr, ms) in points.items()]
    zoo.add_comparisons(rows, "unet_s")
    return rows


def test_pareto_front_keeps_only_undominated_points():
    points = {"a": (20.0, 10.0), "b": (22.0, 20.0), "c": (19.0, 15.0), "d": (22.0, 25.0), "e": (20.0, 10.0)}
    assert report.pareto_front(points) == {"a", "b", "e"}


def test_summary_is_mean_and_sample_spread_over_seeds():
    row = {"scores": {"val": {"psnr": [20.0, 22.0, 24.0], "ssim": [0.5, 0.6, 0.7],
                              "psnr_colour_fit": [25.0, 26.0, 27.0]}}}
    zoo.summarize(row)
    assert row["summary"]["val"]["psnr_mean"] == pytest.approx(22.0)
    assert row["summary"]["val"]["psnr_sd"] == pytest.approx(2.0)
    assert row["summary"]["val"]["ssim_mean"] == pytest.approx(0.6)
    assert row["summary"]["val"]["psnr_colour_fit_mean"] == pytest.approx(26.0)
    assert row["summary"]["val"]["psnr_colour_fit_sd"] == pytest.approx(1.0)


def test_claim_check_needs_the_margin_the_score_and_the_front():
    rows = rows_of({"unet_s": (24.0, 100.0), "unet3_ref": (23.0, 150.0), "plain": (22.0, 50.0)})
    by_name = {row["model"]: row for row in rows}
    assert by_name["unet_s"]["psnr"] == 24.0  # the held-out mean, not val
    assert by_name["unet3_ref"]["latency_ratio"] == 1.5 and by_name["unet3_ref"]["paired_latency_ratio"] == 1.5
    assert by_name["unet3_ref"]["score_ratio"] == pytest.approx(2.0 ** -2 / 1.5)
    claim = zoo.claim_check(rows, "unet_s")
    assert claim["holds"] and claim["psnr_delta_db"] == pytest.approx(1.0)
    assert claim["score_ratio"] == pytest.approx(4.0 * 1.5) and claim["latency_ratio"] == 1.5
    close = zoo.claim_check(rows_of({"unet_s": (24.0, 100.0), "unet3_ref": (23.5, 150.0)}), "unet_s")
    assert not close["holds"] and close["score_ratio"] > 1  # 0.5 dB is below the 0.7 dB target
    assert zoo.claim_check(rows, "unet_s", baseline="missing") is None


@pytest.fixture
def zoo_args(pair_tree, tmp_path):
    """Smoke-run flags: two small models, 1 epoch of 2 steps, 1 latency round of 1 run, tiny data."""
    config, photos = tiny_benchmark_inputs(tmp_path)
    return ["--models", "syenet,plain", "--seeds", "2", "--epochs", "1", "--steps-per-epoch", "2",
            "--batch-size", "2", "--crop", "8", "--data", str(pair_tree), "--val-images", "2",
            "--config", str(config), "--heldout-photos", str(photos), "--rounds", "1", "--runs", "1",
            "--warmup", "0", "--threads", "1", "--input-shape", "64,96", "--runs-dir", str(tmp_path / "runs"),
            "--no-progress"]


@pytest.mark.slow
def test_zoo_end_to_end_smoke(zoo_args, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(zoo, "HELDOUT_PAIRS", 4)
    monkeypatch.setattr(zoo, "HELDOUT_PATCH", 64)
    monkeypatch.setenv("ISP_CACHE_DIR", str(tmp_path / "cache"))  # a small built-in dataset, for the cross-sensor set
    for key, value in (("TRAIN_PAIRS", 4), ("VAL_PAIRS", 3), ("VAL_PATCH", 64)):
        monkeypatch.setattr(default_data, key, value)
    result = zoo.main(zoo_args)
    out = tmp_path / "runs" / "zoo.md"
    table = out.read_text()
    assert table in capsys.readouterr().out
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(lines) >= {"model", "syenet", "plain"}
    assert "held-out, auto PSNR" in lines["model"] and "cross-sensor PSNR" in lines["model"]
    assert "held-out colour-fit PSNR" in lines["model"]
    # unet_s is not in the subset: ratios are against the first model listed, and no claim is checked
    assert result["reference"] == "syenet" and result["claim"] is None
    assert '"default" = syenet' in table
    saved = json.loads((tmp_path / "runs" / "zoo.json").read_text())
    assert [row["model"] for row in saved["rows"]] == ["syenet", "plain"]
    assert [s["name"] for s in saved["sets"]] == ["val", "cross-sensor", "held-out", "held-out, auto"]
    assert saved["sets"][2]["profile"]["black_level"] == [64.0] and saved["sets"][2]["images"] == 4
    assert saved["sets"][1]["images"] == 3
    for row in saved["rows"]:
        assert row["latency_ms"] > 0 and len(row["round_p50_ms"]) == 1 and row["fp16_kb"] > 0
        assert len(row["scores"]["held-out"]["psnr"]) == 2 and row["gmacs"] > 0
        assert 0 < row["summary"]["val"]["psnr_mean"] < 60 and row["psnr"] == row["summary"]["held-out"]["psnr_mean"]
        held_out = row["summary"]["held-out"]
        assert held_out["psnr_colour_fit_mean"] > held_out["psnr_mean"] - 0.5  # an oracle colour fit cannot hurt much
    assert saved["settings"]["input_shape"] == [1, 64, 96, 4] and saved["settings"]["seeds"] == 2
    for seed in (0, 1):
        assert (tmp_path / "runs" / f"plain-s{seed}" / "tflite" / "fp16" / "model.tflite").is_file()

    # the same folders with another budget are refused, not silently mixed
    with pytest.raises(BenchError, match="another budget"):
        zoo.main([*zoo_args, "--epochs", "2"])


def test_unknown_model_and_cli_registration():
    with pytest.raises(BenchError, match="unknown"):
        zoo.run_zoo(["nope"], "unused", {})
    with pytest.raises(BenchError, match="rounds"):
        zoo.run_zoo(["plain"], "unused", {}, rounds=0)
    parser = argparse.ArgumentParser()
    zoo.add_command(parser.add_subparsers())
    args = parser.parse_args(["zoo", "--models", unet.DEFAULT_MODEL])
    assert args.func is zoo.handle and args.epochs == zoo.DEFAULT_EPOCHS and args.input_shape == "544,960"
