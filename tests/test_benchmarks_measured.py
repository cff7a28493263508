"""Reports say what was measured: budget verdicts only for phone/desktop-GPU latencies; static vs measured GPU."""
import argparse

from benchmarks import main_job, measured
from benchmarks import report as leaderboard
from benchmarks.adb import bench_adb
from test_benchmarks_adb import FakeAdb, arm64_binary, models  # noqa: F401  (pytest fixtures)

BUDGET = (20.0, 50.0)


def test_verdict_for_each_kind_of_measurement():
    assert measured.verdict(30.0, "phone GPU (adb)", BUDGET) == "within 20–50 ms budget"
    assert measured.verdict(80.0, "desktop GPU (LiteRT accelerator)", BUDGET) == "over budget"
    assert measured.verdict(30.0, "desktop CPU, 2 threads", BUDGET) == "desktop CPU: no phone verdict"
    assert measured.verdict(30.0, "desktop CPU, 2 threads", BUDGET, ("unet_s fp16", 60.0)) == \
        "desktop CPU: no phone verdict; 0.50x unet_s fp16"
    assert [measured.kind_of(s) for s in ("phone GPU (adb)", "desktop GPU", "desktop CPU, 2 threads", None)] == \
        [measured.PHONE, measured.DESKTOP_GPU, measured.DESKTOP_CPU, measured.DESKTOP_CPU]


def test_desktop_cpu_rows_get_the_ratio_to_the_default_model_of_the_same_run():
    rows = [{"label": "plain fp16", "model": "plain", "latency_ms": 10.0, "latency_source": "desktop CPU, 2 threads"},
            {"label": "unet_s fp16", "model": "unet_s", "latency_ms": 40.0, "latency_source": "desktop CPU, 2 threads"},
            {"label": "unet_s int8", "model": "unet_s", "latency_ms": 30.0, "latency_source": "phone GPU (adb)"},
            {"label": "classical ISP", "model": "classic"}]
    measured.apply_verdicts(rows, BUDGET, "unet_s")
    assert rows[0]["budget"] == "desktop CPU: no phone verdict; 0.25x unet_s fp16"
    assert rows[1]["budget"] == "desktop CPU: no phone verdict; 1.00x unet_s fp16"
    assert rows[2]["budget"] == "within 20–50 ms budget" and "budget" not in rows[3]


def test_no_budget_band_on_a_desktop_cpu_axis(tmp_path):
    cpu = [{"label": "a", "psnr": 23.0, "latency_ms": 40.0, "latency_source": "desktop CPU, 2 threads"}]
    phone = cpu + [{"label": "b", "psnr": 22.0, "latency_ms": 30.0, "latency_source": "phone GPU (adb)"}]
    assert not leaderboard.budget_band_applies(cpu) and leaderboard.budget_band_applies(phone)
    leaderboard.pareto_plot(leaderboard.mark_pareto(cpu), str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 0


def test_old_reports_keep_their_static_verdict_and_isp_report_redoes_the_budget(tmp_path, capsys):
    old = tmp_path / "report.json"
    old.write_text('{"rows": [{"label": "unet_s fp16", "model": "unet_s", "psnr": 23.0, "latency_ms": 30.0, '
                   '"latency_source": "desktop CPU, 2 threads", "gpu_delegate": "fully delegated", '
                   '"budget": "within 20–50 ms budget"}]}')
    assert leaderboard.load_rows(str(old))[0]["gpu_static"] == "fully delegated"
    args = argparse.Namespace(sources=[str(old)], out=str(tmp_path / "lb"), budget_ms="20,50")
    assert leaderboard.run_report(args) == 0
    table = capsys.readouterr().out
    assert "GPU delegate (static check)" in table and "GPU delegate (measured on …)" in table
    assert "desktop CPU: no phone verdict; 1.00x unet_s fp16" in table and "within 20–50" not in table


def test_fake_adb_partial_delegation_makes_the_report_say_partial(
        tmp_path, monkeypatch, models, arm64_binary):  # noqa: F811
    fake = FakeAdb(tmp_path, monkeypatch)
    fake.configure(log="classic_prefixed_partial.txt")
    phone = bench_adb(models["static"], binary=arm64_binary)
    cell = main_job._measured_on(phone, "phone GPU (adb)")
    assert cell.startswith("partially delegated") and cell.endswith("on phone GPU (adb)")
    row = {"label": "m fp16", "psnr": 23.0, "latency_ms": phone["latency_ms"]["mean"],
           "latency_source": "phone GPU (adb)", "gpu_static": "fully delegated", "gpu_measured": cell}
    table = leaderboard.markdown_table([row])
    assert "| fully delegated | partially delegated" in table
    assert main_job._measured_on(None, "phone GPU (adb)") is None


def test_desktop_gpu_op_split_is_a_measured_delegation():
    assert measured.measured_delegation({"op_split": {"gpu_ops": 1, "cpu_ops": 3}}) == \
        "partially delegated (1 GPU / 3 CPU ops)"
    assert measured.measured_delegation({"op_split": {"gpu_ops": 4, "cpu_ops": 0}}) == \
        "fully delegated (4 GPU / 0 CPU ops)"
    assert measured.measured_delegation({"latency_ms": {}}) is None
