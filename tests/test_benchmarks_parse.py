import argparse
import json
import os
import re

import pytest

from benchmarks import bench_cli
from benchmarks.errors import BenchError
from benchmarks.parse import RESULT_KEYS, clean_line, parse_benchmark_output

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "benchmark_logs")

# Every value the log states, per fixture; all other keys must be None.
EXPECTED = {
    "classic_gpu_full.txt": dict(
        init_us=412338, first_us=61245, warmup_avg_us=40021.6, avg_us=38544.2, min_us=37986,
        max_us=41873, std_us=612, median_us=38452, p5_us=38011, p95_us=39870,
        mem_init_mb=97.8086, mem_overall_mb=103.418, peak_mb=110.227, delegation="full"),
    "classic_prefixed_partial.txt": dict(
        init_us=688520, first_us=152338, warmup_avg_us=112417, avg_us=101284, min_us=98760,
        max_us=109233, std_us=1843, median_us=100981, p5_us=99102, p95_us=105870,
        mem_init_mb=142.125, mem_overall_mb=188.5, delegation="partial", gpu_ops=45, cpu_ops=3,
        unsupported_ops=[{"op": "ARG_MAX", "reason": "Operation is not supported."},
                         {"op": "TRANSPOSE_CONV",
                          "reason": "Max version supported: 3. Requested version 4."},
                         {"op": "DEQUANTIZE", "reason": ""}]),
    "logcat_brief.txt": dict(
        init_us=385140, first_us=58120, warmup_avg_us=38502.3, avg_us=36874.5, min_us=36211,
        max_us=39911, std_us=588, median_us=36790, p5_us=36302, p95_us=38102, mem_init_mb=95.3,
        mem_overall_mb=101.7, delegation="full"),
    "logcat_threadtime.txt": dict(
        init_us=413200, first_us=71023, warmup_avg_us=57206.1, avg_us=55630.8, min_us=54301,
        max_us=60188, std_us=1014, median_us=55402, p5_us=54460, p95_us=58077, mem_init_mb=60.25,
        mem_overall_mb=71.875, delegation="partial", gpu_ops=30, cpu_ops=2,
        unsupported_ops=[{"op": "GATHER_ND", "reason": "Operation is not supported."}]),
    "classic_scientific_cpu.txt": dict(
        init_us=17187, first_us=3512391, warmup_avg_us=3.51239e6, avg_us=2.95034e6,
        min_us=2727568, max_us=3189954, std_us=109798, median_us=2.94511e6, p5_us=2760112,
        p95_us=3.12202e6, mem_init_mb=4.21094, mem_overall_mb=46.0859, delegation="none"),
    "classic_integer_memory.txt": dict(
        init_us=402900, first_us=60011, warmup_avg_us=39800.2, avg_us=38402.7, min_us=37812,
        max_us=40522, std_us=498, median_us=38311, p5_us=37890, p95_us=39510, mem_init_mb=98,
        mem_overall_mb=104, peak_mb=111, delegation="full"),
    "classic_no_percentiles.txt": dict(
        init_us=16242, first_us=360262, warmup_avg_us=304586, avg_us=249684, min_us=247067,
        max_us=254474, std_us=1442, mem_init_mb=4.92969, mem_overall_mb=138.809),
    "classic_all_equal.txt": dict(
        init_us=398610, first_us=59012, warmup_avg_us=59012, avg_us=38817, min_us=38817,
        max_us=38817, std_us=0, median_us=38817, p5_us=38817, p95_us=38817, mem_init_mb=96.125,
        mem_overall_mb=101.5, delegation="full"),
    "classic_op_profiling.txt": dict(
        init_us=420070, first_us=60133, warmup_avg_us=40322.5, avg_us=39015.4, min_us=38511,
        max_us=42377, std_us=603, median_us=38930, p5_us=38602, p95_us=40411,
        mem_init_mb=98.0117, mem_overall_mb=103.652, delegation="full"),
    "litert_block.txt": dict(
        init_us=4480, first_us=80230, warmup_avg_us=72700, avg_us=71450, min_us=70410,
        max_us=75230, std_us=810, median_us=71300, p5_us=70590, p95_us=73102, mem_init_mb=8.94,
        mem_overall_mb=31.51, delegation="none"),
    "desktop_gpu_unsupported.txt": dict(
        init_us=2913, first_us=201338, warmup_avg_us=193012, avg_us=188311, min_us=185920,
        max_us=195512, std_us=1702, median_us=188002, p5_us=186201, p95_us=192070,
        mem_init_mb=3.125, mem_overall_mb=152.375, delegation="none"),
    "crash_require_full_delegation.txt": dict(
        delegation="partial", gpu_ops=47, cpu_ops=1,
        unsupported_ops=[{"op": "ARG_MAX", "reason": "Operation is not supported."}]),
    "pre2019_profiler_timings.txt": dict(
        init_us=38467, first_us=79449, warmup_avg_us=83235, avg_us=79760.9, min_us=77385, max_us=88213,
        std_us=1929),
    "pre2019_no_stats.txt": dict(
        init_us=9933, first_us=66753, warmup_avg_us=76605.9, avg_us=66767.6, min_us=66699, max_us=66838,
        std_us=39),
    "litert_loose_lines.txt": dict(
        init_us=23744730, first_us=7441040, warmup_avg_us=7441040, avg_us=7430200, min_us=7416400,
        max_us=7448860, std_us=9920, mem_init_mb=6391.74, mem_overall_mb=6391.74),
    "litert_us_and_s_units.txt": dict(
        init_us=1250000, first_us=930.4, warmup_avg_us=812, avg_us=790.25, min_us=771.5, max_us=820,
        mem_init_mb=4.1, mem_overall_mb=9.8, peak_mb=12.5),
    "absl_prefixed.txt": dict(
        init_us=421500, first_us=61022, warmup_avg_us=42811.4, avg_us=41410.6, min_us=40640, max_us=43980,
        std_us=611, median_us=41288, p5_us=40710, p95_us=42911, mem_init_mb=99.5, mem_overall_mb=104.25,
        delegation="full"),
    "no_gpu_ops.txt": dict(
        init_us=35100, first_us=25611, warmup_avg_us=23470.2, avg_us=23402.9, min_us=23101, max_us=24802,
        std_us=288, median_us=23351, p5_us=23130, p95_us=23990, mem_init_mb=12.5, mem_overall_mb=20.75,
        delegation="none", gpu_ops=0, cpu_ops=65,
        unsupported_ops=[{"op": op, "reason": "OP is supported, but tensor type/shape isn't compatible."}
                         for op in ("ADD", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                    "SOFTMAX")]),
    "gather_blank_line.txt": dict(
        init_us=812400, first_us=120311, warmup_avg_us=95022.1, avg_us=88610.5, min_us=87433, max_us=93002,
        std_us=1002, median_us=88433, p5_us=87610, p95_us=90876, delegation="partial", gpu_ops=301, cpu_ops=17,
        unsupported_ops=[{"op": "CAST", "reason": "Tensor type(INT64) is not supported."},
                         {"op": "DEQUANTIZE", "reason": ""},
                         {"op": "GATHER", "reason": "Only support 1D indices"},
                         {"op": "MUL", "reason": "MUL requires one tensor that not less than second in all "
                                                 "dimensions."},
                         {"op": "GATHER", "reason": "Only accept INT32 indices"}]),
    "repeat_count_prefix.txt": dict(
        delegation="partial", gpu_ops=351, cpu_ops=1084,
        unsupported_ops=[{"op": "GATHER", "reason": "Operation is not supported."}]),
    "avg_nan_zero_runs.txt": dict(
        init_us=15300, first_us=131020, warmup_avg_us=123100, mem_init_mb=3.5, mem_overall_mb=9.25),
    "failed_after_timings.txt": dict(
        init_us=402200, first_us=60120, warmup_avg_us=40110.2, avg_us=38566.3, min_us=38010, max_us=41102,
        std_us=602, median_us=38470, p5_us=38040, p95_us=39901, delegation="full"),
}
FAILURES = {"crash_require_full_delegation.txt": "Disallowed CPU fallback detected",
            "failed_after_timings.txt": "Failed to write the output tensors to /sdcard/out.bin: Permission denied"}


def read_fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def test_every_fixture_has_expectations():
    assert sorted(os.listdir(FIXTURES)) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_values(name):
    parsed = parse_benchmark_output(read_fixture(name))
    assert set(parsed) == set(RESULT_KEYS) | {"op_profile", "format", "failure"}
    expected = dict.fromkeys(RESULT_KEYS)
    expected.update(EXPECTED[name])
    for key in RESULT_KEYS:
        if expected[key] is not None and key.endswith(("_us", "_mb")):
            assert parsed[key] == pytest.approx(expected[key], rel=1e-9), key
        else:
            assert parsed[key] == expected[key], key
    assert parsed["format"] == ("litert" if name.startswith("litert") else "classic")
    assert parsed["failure"] == FAILURES.get(name)


def test_fixtures_name_their_source():
    for name in EXPECTED:
        if not name.startswith(("classic_", "logcat_", "litert_block", "desktop_", "crash_")):
            assert read_fixture(name).startswith("# "), name


def test_result_is_json_serialisable():
    parsed = parse_benchmark_output(read_fixture("classic_op_profiling.txt"))
    assert json.loads(json.dumps(parsed)) == parsed


def test_classic_op_profile_takes_regular_run_order_table_only():
    rows = parse_benchmark_output(read_fixture("classic_op_profiling.txt"))["op_profile"]
    assert rows == [
        {"node_type": "TfLiteGpuDelegateV2", "start_ms": 0.0, "first_ms": 38.702,
         "avg_ms": 38.611, "percent": 99.501, "cdf_percent": 99.501, "mem_kb": 0.0,
         "times_called": 1, "name": "[unet_s/out/DepthToSpace]:12"},
        {"node_type": "DEPTH_TO_SPACE", "start_ms": 38.615, "first_ms": 0.201, "avg_ms": 0.194,
         "percent": 0.499, "cdf_percent": 100.0, "mem_kb": 0.0, "times_called": 1,
         "name": "[unet_s/out/DepthToSpace2]:13"},
    ]


def test_litert_op_profile_has_no_start_column_and_keeps_spaces_in_node_types():
    rows = parse_benchmark_output(read_fixture("litert_block.txt"))["op_profile"]
    assert [r["node_type"] for r in rows] == [
        "LiteRT::Run[buffer registration]", "Convolution (NHWC, F32) IGEMM",
        "Convolution (NHWC, F32) IGEMM", "LiteRT::Run[Buffer sync]"]
    assert rows[1] == {"node_type": "Convolution (NHWC, F32) IGEMM", "first_ms": 36.12,
                       "avg_ms": 35.702, "percent": 49.98, "cdf_percent": 50.0, "mem_kb": 0.0,
                       "times_called": 1, "name": "Delegate/Convolution (NHWC, F32) IGEMM:0"}


def test_no_op_profile_without_profiling_tables():
    assert parse_benchmark_output(read_fixture("classic_gpu_full.txt"))["op_profile"] is None


@pytest.mark.parametrize("raw", [
    "count=50 avg=1",
    "INFO: count=50 avg=1",
    "WARN: count=50 avg=1",
    "ERROR: count=50 avg=1",
    "VERBOSE: count=50 avg=1",
    "07-08 15:33:55.790 I/tflite  ( 5395): count=50 avg=1",
    "05-31 10:38:42.607 22206 22206 E tflite  : count=50 avg=1",
    "INFO: [./litert/tools/benchmark_litert_model.h:88] count=50 avg=1\r",
    "I1130 12:00:00.000000    1234 benchmark_model.cc:110] count=50 avg=1",
    "E0000 engine.cc:807] count=50 avg=1",
    "2017-11-27 08:56:35.518009: I tensorflow/tools/benchmark/benchmark_model.cc:324] count=50 avg=1",
])
def test_clean_line_strips_every_prefix(raw):
    assert clean_line(raw) == "count=50 avg=1"


def test_summary_line_wins_over_stat_line_and_last_stat_line_is_used():
    text = "\n".join([
        "count=3 first=900 curr=800 min=700 max=900 avg=800 std=80 p5=700 median=800 p95=900",
        "count=20 first=500 curr=400 min=300 max=520 avg=410.5 std=20 p5=310 median=400 p95=500",
        "Inference timings in us: Init: 1000, First inference: 900, Warmup (avg): 800, "
        "Inference (avg): 410.25",
    ])
    parsed = parse_benchmark_output(text)
    assert (parsed["avg_us"], parsed["min_us"], parsed["median_us"]) == (410.25, 300, 400)


def test_op_profiling_timings_line_is_not_taken_as_the_stat_line():
    parsed = parse_benchmark_output(read_fixture("classic_op_profiling.txt"))
    assert parsed["max_us"] == 42377  # not the "Timings (microseconds): ... max=42290" line


@pytest.mark.parametrize("line,expected", [
    ("Though GPU delegate is explicitly applied, the model graph will not be executed by the "
     "delegate.", "none"),
    ("Replacing 10 out of 10 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 "
     "partitions for the whole graph.", "full"),
    ("Replacing 8 out of 10 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 2 "
     "partitions for the whole graph.", "partial"),
    ("Replacing 10 out of 10 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 "
     "partitions for subgraph 0.", None),
    ("Use gpu: [1]", None),
    ("Use gpu: [0]", "none"),
])
def test_delegation_evidence(line, expected):
    assert parse_benchmark_output("INFO: " + line)["delegation"] == expected


def test_nan_values_are_none_and_do_not_fake_an_all_equal_run():
    parsed = parse_benchmark_output("count=50 first=41 curr=40 min=39 max=45 avg=nan std=-nan p5=39 median=40 p95=44")
    assert (parsed["avg_us"], parsed["std_us"], parsed["min_us"], parsed["median_us"]) == (None, None, 39, 40)


def test_litert_figures_without_unit_are_ms_and_memory_needs_mb():
    parsed = parse_benchmark_output("Inference (avg):  2.5 (10 runs)\nPeak memory: 3 ms")
    assert parsed["avg_us"] == 2500 and parsed["peak_mb"] is None and parsed["format"] == "litert"


def test_unrelated_text_parses_to_nothing():
    parsed = parse_benchmark_output("hello\nworld count=3\n")
    assert all(parsed[key] is None for key in RESULT_KEYS) and parsed["op_profile"] is None


def _cli_args(*argv):
    parser = argparse.ArgumentParser(prog="isp")
    bench_cli.add_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", *argv])


def test_cli_parse_prints_json(capsys, tmp_path):
    out = tmp_path / "parsed.json"
    args = _cli_args("parse", os.path.join(FIXTURES, "logcat_threadtime.txt"), "--json", str(out))
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == parse_benchmark_output(read_fixture("logcat_threadtime.txt"))
    assert json.loads(out.read_text()) == printed


def test_cli_parse_rejects_a_file_without_results(tmp_path):
    log = tmp_path / "notes.txt"
    log.write_text("nothing to see\n")
    args = _cli_args("parse", str(log))
    with pytest.raises(BenchError, match="holds no benchmark_model timings"):
        args.func(args)


@pytest.mark.parametrize("name,message", [
    ("failed_after_timings.txt", r"reported a failed run \(Failed to write the output tensors"),
    ("crash_require_full_delegation.txt", r"reported a failed run \(Disallowed CPU fallback detected\)"),
    ("avg_nan_zero_runs.txt", "holds no benchmark_model timings"),
    ("repeat_count_prefix.txt", "holds no benchmark_model timings"),
])
def test_isp_bench_parse_exits_2_with_one_line(name, message, capsys):
    from benchmarks.cli import main
    assert main(["bench", "parse", os.path.join(FIXTURES, name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err
    assert re.search(message, err)


def test_cli_parse_needs_a_logfile():
    args = _cli_args("parse")
    with pytest.raises(BenchError, match="needs a LOGFILE"):
        args.func(args)
