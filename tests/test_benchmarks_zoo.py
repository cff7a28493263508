"""Model zoo: Pareto front and claim check on hand-made rows, and a real end-to-end smoke run."""
import argparse
import json

import pytest

from benchmarks import zoo
from benchmarks.errors import BenchError
from isp.models import unet


def rows_of(points):
    """Zoo rows from {name: (psnr, latency_ms)}, with comparisons against unet_s."""
    rows = [{"model": name, "psnr": psnr, "latency_ms": ms, "round_p50_ms": [ms, 2 * ms]}
            for name, (psnr, ms) in points.items()]
    zoo.add_comparisons(rows, "unet_s")
    return rows


def test_pareto_front_keeps_only_undominated_points():
    points = {"a": (20.0, 10.0), "b": (22.0, 20.0), "c": (19.0, 15.0), "d": (22.0, 25.0), "e": (20.0, 10.0)}
    assert zoo.pareto_front(points) == {"a", "b", "e"}


def test_claim_check_compares_with_references_of_similar_or_higher_cost():
    assert {"unet_tiny", "unet_s", "unet_base"} <= zoo.our_family()
    rows = rows_of({"unet_s": (20.0, 100.0), "unet_base": (22.0, 300.0), "plain": (18.0, 50.0),
                    "syenet": (19.0, 95.0), "punet": (19.5, 800.0)})
    claim = zoo.claim_check(rows, "unet_s")
    assert claim["holds"] and claim["on_pareto_front"]
    assert [r["model"] for r in claim["rivals"]] == ["syenet", "punet"]  # plain is cheaper; unet_base is ours
    assert claim["rivals"][0]["psnr_delta_db"] == pytest.approx(1.0)
    assert claim["rivals"][1]["latency_ratio"] == pytest.approx(8.0)
    by_name = {row["model"]: row for row in rows}
    assert by_name["unet_s"]["latency_ratio"] == 1.0 and by_name["punet"]["on_pareto_front"] is False
    assert by_name["unet_base"]["score_ratio"] == pytest.approx(2.0 ** 4 / 3.0)
    assert by_name["unet_base"]["paired_latency_ratio"] == pytest.approx(3.0)

    beaten = zoo.claim_check(rows_of({"unet_s": (20.0, 100.0), "syenet": (20.5, 120.0)}), "unet_s")
    assert beaten["on_pareto_front"] and not beaten["holds"] and not beaten["rivals"][0]["ahead"]


@pytest.fixture
def zoo_args(pair_tree, tmp_path):
    """Smoke-run flags: two small models, 1 epoch of 2 steps, 1 latency round of 1 run, tiny data."""
    config = tmp_path / "shared.yaml"
    config.write_text("msssim_weight: 0.0\ncache: false\n")  # 16x16 packed images are too small for MS-SSIM
    return ["--models", "syenet,plain", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
            "--crop", "8", "--data", str(pair_tree), "--val-images", "2", "--config", str(config),
            "--rounds", "1", "--runs", "1", "--warmup", "0", "--threads", "1", "--input-shape", "64,96",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress"]


@pytest.mark.slow
def test_zoo_end_to_end_smoke(zoo_args, tmp_path, capsys):
    result = zoo.main(zoo_args)
    out = tmp_path / "runs" / "zoo.md"
    table = out.read_text()
    assert table in capsys.readouterr().out
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(lines) >= {"model", "syenet", "plain"}
    assert lines["model"].count("|") == len(zoo.COLUMNS) + 1
    # unet_s is not in the subset: ratios are against the first model listed
    assert result["reference"] == "syenet" and result["claim"] is None
    assert "+0.00 | 1.00 |" in lines["syenet"]
    assert '"default" = syenet' in table
    saved = json.loads((tmp_path / "runs" / "zoo.json").read_text())
    assert [row["model"] for row in saved["rows"]] == ["syenet", "plain"]
    for row in saved["rows"]:
        assert row["latency_ms"] > 0 and len(row["round_p50_ms"]) == 1 and row["fp16_kb"] > 0
        assert 0 < row["psnr"] < 60 and row["val_images"] == 2 and row["gmacs"] > 0
    plain = saved["rows"][1]
    assert plain["latency_ratio"] == pytest.approx(plain["latency_ms"] / saved["rows"][0]["latency_ms"])
    assert saved["settings"]["input_shape"] == [1, 64, 96, 4] and saved["settings"]["qat_epochs"] == 0
    assert (tmp_path / "runs" / "plain" / "tflite" / "fp16" / "model.tflite").is_file()

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
