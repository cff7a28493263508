"""The main job end to end on a tiny configuration: train -> QAT -> export -> checks -> bench -> report."""
import json
import os

from benchmarks.cli import main


def test_main_job_tiny(pair_tree, tmp_path, capsys):
    runs = tmp_path / "runs"
    status = main(["train", "--data", str(pair_tree), "--runs-dir", str(runs), "--name", "job", "--model", "plain",
                   "--epochs", "1", "--qat-epochs", "1", "--batch-size", "2", "--crop", "8",
                   "--msssim-weight", "0", "--no-cache", "--shape", "16,16", "--rep-count", "2",
                   "--bench-runs", "2"])
    assert status == 0
    out = capsys.readouterr().out
    assert "[7/7] report" in out and "phone latency via adb: skipped" in out
    run = runs / "job"
    report = json.load(open(run / "report.json"))
    assert [r["recipe"] for r in report["rows"]] == ["fp16", "int8", "qat", "—"]
    for row in report["rows"][:3]:
        assert row["gpu_static"] == "fully delegated" and row["latency_ms"] > 0 and row["score"] > 0
        assert row["gpu_measured"] is None  # no phone: nothing measured the delegation
        assert row["latency_source"].startswith("desktop CPU") and row["budget"].startswith("desktop CPU: no phone")
        assert (run / "tflite" / row["recipe"] / "model_none.tflite").is_file()
    assert report["rows"][3]["label"] == "classical ISP" and report["classic"]["images"] == 2
    md = (run / "report.md").read_text()
    assert "## Leaderboard" in md and "classical ISP" in md and "plots/pareto.png" in md
    assert os.path.getsize(run / "plots" / "pareto.png") > 1000 and (run / "plots" / "training.png").is_file()
    assert (run / "eval" / "classic" / "metrics.csv").is_file()
    # the leaderboard command merges reports
    assert main(["report", str(run), str(run / "report.json"), "--out", str(tmp_path / "lb")]) == 0
    assert (tmp_path / "lb" / "pareto.png").is_file()
    assert capsys.readouterr().out.count("| plain fp16 |") == 2  # one row per merged report


def test_report_rejects_non_reports(tmp_path, capsys):
    (tmp_path / "x.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "x.json")]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("error: ") == 2


def test_cross_sensor_val_is_scored_with_its_true_levels(tmp_path, monkeypatch):
    from benchmarks import main_job
    from data import default_data
    from tflite_export import convert
    from tflite_export_testing import tiny_isp_model
    monkeypatch.setenv("ISP_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in (("TRAIN_PAIRS", 2), ("VAL_PAIRS", 3), ("VAL_PATCH", 64)):
        monkeypatch.setattr(default_data, key, value)
    root = default_data.ensure_default_data(progress=False)
    model_path = tmp_path / "run" / "tflite" / "fp16" / "model_none.tflite"
    model_path.parent.mkdir(parents=True)
    model_path.write_bytes(convert.convert(tiny_isp_model(), "fp16", (None, None, 4)))
    used = []
    real_evaluate = main_job.evaluate

    def spy(predict, pairs, profile, **kwargs):
        used.append(profile)
        return real_evaluate(predict, pairs, profile, **kwargs)

    monkeypatch.setattr(main_job, "evaluate", spy)
    scores = main_job.cross_sensor_scores(root, str(tmp_path / "run"), ["fp16"], progress=False)
    assert set(scores) == {"fp16", "classic"} and scores["fp16"]["images"] == 3
    assert all(p == default_data.CROSS_SENSOR_PROFILE for p in used)
    assert (tmp_path / "run" / "eval" / "classic-cross-sensor" / "metrics.csv").is_file()
