"""A third-party `.tflite` or PyTorch-side `.onnx` as a leaderboard row, so `isp report` can rank it next to our runs.

A source is `MODEL.tflite` or `MODEL.onnx`, optionally followed by its value conventions
(tflite_export.conventions): `MODEL.tflite:in=0,4095:out=-1,1` (default: the export.json beside the
file, else 0,1). The model is evaluated on a dataset split with those conventions (the same
PSNR/SSIM as `isp eval`). A `.tflite` is also timed on the desktop CPU at its own input size (a
dynamic model at Full HD) and statically checked for the GPU delegate; its budget verdict is
size-aware (benchmarks.score.sized_budget). A `.onnx` runs with ONNX Runtime on the desktop CPU and
is not timed: that runtime's latency says nothing about the phone's TFLite one, nor compares with
the LiteRT desktop latencies of the other rows (a ratio to them, or a point on their Pareto plot,
would mix two runtimes), so its row has no latency, score or budget verdict.
"""
import os
import re

from benchmarks.desktop import bench_desktop
from benchmarks.errors import BenchError
from benchmarks.score import sized_budget
from data.challenge import BUDGET_MS, challenge_score

_SPEC = re.compile(r"^(?P<path>.+?\.(?:tflite|onnx))(?P<options>(?::[^:]*)*)$")
_OPTION_FLAGS = {"in": "--input-range", "out": "--output-range"}
ONNX_SOURCE = "ONNX Runtime, desktop CPU (not timed)"  # what a .onnx row's PSNR was measured with
ONNX_BUDGET = "no verdict: not a TFLite latency"


def is_external(source):
    """True for a `.tflite` or `.onnx` source (with or without `:in=...:out=...`)."""
    return bool(_SPEC.match(source))


def parse_source(source):
    """'m.tflite:in=0,4095' -> ('m.tflite', (0.0, 4095.0), None); a bad option raises BenchError."""
    from tflite_export.conventions import parse_range
    match = _SPEC.match(source)
    ranges = {"in": None, "out": None}
    for option in filter(None, match.group("options").split(":")):
        key, _, value = option.partition("=")
        if key not in ranges or not value:
            raise BenchError(f"{source}: unknown option {option!r}; write {match.group('path')}:in=LO,HI:out=LO,HI")
        ranges[key] = parse_range(value, f"{source} {key}= ({_OPTION_FLAGS[key]})")
    return match.group("path"), ranges["in"], ranges["out"]


def external_row(source, data=None, split="val", limit=0, runs=10, threads=None, budget_ms=BUDGET_MS):
    """(leaderboard row, conventions warning or None) of one external `.tflite` or `.onnx` source.

    The row has the keys of benchmarks.report rows plus `input_range` and `output_range` (and for a
    `.tflite`, `input_hw` and `ms_per_mp`); PSNR/SSIM are means over the split's pairs (at most
    `limit`, 0: all). runs/threads/budget_ms: the desktop timing and verdict of a `.tflite`.
    """
    from isp.evaluate import evaluate
    from isp.train import dataset_root, load_splits, profile_of
    from tflite_export.conventions import OutputCheck
    from tflite_export.evaluate_cli import load_predictor

    path, input_range, output_range = parse_source(source)
    predictor = load_predictor(path, ranges=(input_range, output_range))
    root = data or dataset_root(predictor.config)
    splits = load_splits(predictor.config, root)
    if split not in splits:
        raise BenchError(f"{root}: no '{split}' split to evaluate {path} on (found {', '.join(splits)}); "
                         "pass --split")
    pairs = splits[split][:limit or None]
    check = OutputCheck()
    scores = evaluate(check.wrap(predictor.predict), pairs, profile_of(predictor.config, pairs), progress=False)
    row = {"label": os.path.basename(path), "model": "external", "psnr": scores["psnr"], "ssim": scores["ssim"],
           "size_kb": os.path.getsize(path) / 1024,
           "input_range": list(predictor.ranges[0]), "output_range": list(predictor.ranges[1])}
    if path.endswith(".onnx"):
        row.update(recipe="onnx", latency_source=ONNX_SOURCE, budget=ONNX_BUDGET)
    else:
        row.update(_tflite_timing(path, predictor.ranges[0], scores["psnr"], runs, threads, budget_ms))
    return row, check.warning(*predictor.ranges)


def _tflite_timing(path, input_range, psnr, runs, threads, budget_ms):
    """The row entries of a `.tflite` from its desktop-CPU timing and static GPU check."""
    from tflite_export import gpu_check
    timing = bench_desktop(path, threads=threads, runs=runs, warmup=1, input_range=input_range)
    ms = timing["latency_ms"]["mean"]
    budget = sized_budget(ms, timing["input_shape"], *budget_ms)
    return {"recipe": "tflite", "latency_ms": ms, "latency_source": f"desktop CPU, {threads or 'default'} threads",
            "desktop_ms": ms, "gpu_static": gpu_check.check(path).status, "budget": budget["verdict"],
            "input_hw": budget["input_hw"], "ms_per_mp": budget["ms_per_mp"],
            "score": challenge_score(psnr, ms / 1000.0)}
