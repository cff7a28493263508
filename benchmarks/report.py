"""Leaderboard: rows of (model, recipe, PSNR, SSIM, latency, ...) -> Markdown table + Pareto plot.

A row is a flat dict with at least `label`, `psnr`; optional `ssim`, `latency_ms`,
`latency_source`, `size_kb`, `gpu_static` (the static check of the classic delegate's rules),
`gpu_measured` (what a real GPU delegate reported, with the device), `budget`, `score`.
`report.json` files written by the main job hold {"rows": [...]}; `isp report` merges several of
them with rows of external .tflite/.onnx files (benchmarks.external). Budget verdicts follow
`benchmarks.measured`: only phone or desktop-GPU latencies get one.
"""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import measured  # noqa: E402
from benchmarks import external  # noqa: E402
from benchmarks.errors import BenchError  # noqa: E402
from benchmarks.score import parse_budget  # noqa: E402
from data.atomic import atomic_path, write_text  # noqa: E402
from data.challenge import BUDGET_MS, BUDGET_TEXT  # noqa: E402
from isp.rundir import RunDir  # noqa: E402

COLUMNS = (("label", "model / recipe", "{}"), ("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
           ("psnr_cross_sensor", "cross-sensor PSNR dB", "{:.2f}"),
           ("latency_ms", "latency ms", "{:.1f}"), ("latency_source", "measured on", "{}"),
           ("size_kb", "size KB", "{:.0f}"), ("gpu_static", "GPU delegate (static check)", "{}"),
           ("gpu_measured", "GPU delegate (measured on …)", "{}"),
           ("budget", "budget", "{}"), ("score", "score (C=1)", "{:.3g}"), ("pareto", "Pareto", "{}"))


def load_rows(source):
    """Rows from a run folder (its report.json) or a report/zoo JSON file with a "rows" list."""
    path = RunDir(source).report_json if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise BenchError(f"{path}: no report found; run `python train.py` (or benchmarks/zoo.py) first")
    try:
        with open(path) as f:
            rows = json.load(f).get("rows")
    except (json.JSONDecodeError, AttributeError):
        raise BenchError(f"{path}: not a report JSON (expected an object with a 'rows' list)") from None
    if not isinstance(rows, list):
        raise BenchError(f"{path}: not a report JSON (expected an object with a 'rows' list)")
    for row in rows:  # reports written before the static/measured split
        if "gpu_delegate" in row:
            row.setdefault("gpu_static", row.pop("gpu_delegate"))
    return rows


def pareto_front(points):
    """Keys not dominated in `points` = {key: (psnr, latency_ms)}: no other point has PSNR >= and
    latency <= with at least one strictly better (equal points are all on the front)."""
    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and a != b
    return {key for key, p in points.items() if not any(dominates(q, p) for q in points.values())}


def mark_pareto(rows):
    """Set row["pareto"] = "yes"/"no" for rows with PSNR and latency (`pareto_front`), "" for the rest."""
    timed = {i: (r["psnr"], r["latency_ms"]) for i, r in enumerate(rows)
             if r.get("latency_ms") is not None and r.get("psnr") is not None}
    front = pareto_front(timed)
    for i, row in enumerate(rows):
        row["pareto"] = "" if i not in timed else ("yes" if i in front else "no")
    return rows


def _cell(row, key, fmt):
    value = row.get(key)
    return "—" if value is None or value == "" else fmt.format(value)


def markdown_table(rows):
    """Markdown leaderboard, best PSNR first (rows without latency keep their place by PSNR)."""
    ordered = sorted(rows, key=lambda r: -(r.get("psnr") or 0.0))
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, key, fmt) for key, _, fmt in COLUMNS) + " |" for r in ordered]
    return "\n".join(lines)


def pareto_plot(rows, path, budget_ms=BUDGET_MS, title="PSNR vs latency"):
    """PNG scatter of PSNR vs latency and the Pareto front; the phone budget band is shaded only
    when some latency was measured on a phone or desktop GPU (never on a desktop-CPU-only axis)."""
    timed = [r for r in rows if r.get("latency_ms") is not None and r.get("psnr") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if budget_band_applies(timed):
        ax.axvspan(budget_ms[0], budget_ms[1], color="tab:green", alpha=0.12,
                   label=f"budget {budget_ms[0]:g}–{budget_ms[1]:g} ms")
        ax.axvspan(0, budget_ms[0], color="tab:green", alpha=0.25)
    for row in timed:
        ax.scatter(row["latency_ms"], row["psnr"], color="tab:blue" if row.get("pareto") == "yes" else "tab:gray")
        ax.annotate(row["label"], (row["latency_ms"], row["psnr"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    front = sorted((r for r in timed if r.get("pareto") == "yes"), key=lambda r: r["latency_ms"])
    if front:
        ax.plot([r["latency_ms"] for r in front], [r["psnr"] for r in front], color="tab:blue", lw=1,
                label="Pareto front")
    sources = sorted({r.get("latency_source") or "?" for r in timed})
    ax.set_xlabel(f"Full HD latency, ms ({', '.join(sources)})")
    ax.set_ylabel("PSNR, dB")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path


def budget_band_applies(rows):
    """True when some row's latency comes from a phone or desktop GPU (see `benchmarks.measured`)."""
    return any(measured.kind_of(r.get("latency_source")) != measured.DESKTOP_CPU for r in rows)


def source_rows(source, args, budget_ms):
    """Rows of one source: a run folder or report JSON, or an external .tflite or .onnx (benchmarks.external),
    which is evaluated (and a .tflite timed) here; its conventions warning, if any, is printed."""
    if not external.is_external(source):
        return load_rows(source)
    row, warning = external.external_row(source, data=args.data, split=args.split, limit=args.limit,
                                         runs=args.bench_runs, threads=args.threads, budget_ms=budget_ms)
    if warning:
        print(f"{source}: {warning}")
    return [row]


def run_report(args):
    """Handler of `isp report`: merge reports, print the leaderboard, write leaderboard.md + pareto.png."""
    from isp.config import TrainConfig
    budget = parse_budget(args.budget_ms)
    rows = mark_pareto([row for source in args.sources
                        for row in measured.apply_verdicts(source_rows(source, args, budget), budget,
                                                           TrainConfig.model)])
    table = markdown_table(rows)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    write_text(os.path.join(args.out, "leaderboard.md"), table + "\n")
    plot = pareto_plot(rows, os.path.join(args.out, "pareto.png"), budget)
    print(f"wrote {os.path.join(args.out, 'leaderboard.md')} and {plot}")
    return 0


def add_command(subparsers):
    """Register `isp report`."""
    parser = subparsers.add_parser(
        "report", help="leaderboard across runs: Markdown table + Pareto plot",
        description="Merge the report.json of several runs (or zoo.json files) into one leaderboard "
                    "(Markdown) and a PSNR-vs-latency Pareto plot with the latency budget shaded. A "
                    "third-party MODEL.tflite among the sources is evaluated on --data/--split and timed "
                    "on the desktop CPU; a PyTorch-side MODEL.onnx is evaluated the same way with ONNX "
                    "Runtime on the desktop CPU and not timed (not a TFLite latency: no latency, no budget "
                    "verdict). Append a model's value conventions as MODEL.tflite:in=0,4095:out=-1,1.")
    parser.add_argument("sources", nargs="+", metavar="RUN_OR_JSON_OR_MODEL",
                        help="run folders, report JSON files, or .tflite/.onnx files (optionally "
                             ":in=LO,HI:out=LO,HI)")
    external_group = parser.add_argument_group("external .tflite/.onnx sources")
    external_group.add_argument("--data", metavar="ROOT",
                                help="dataset root to evaluate them on (default: the built-in default data)")
    external_group.add_argument("--split", default="val", help="split to evaluate on (default %(default)s)")
    external_group.add_argument("--limit", type=int, default=0, metavar="N",
                                help="evaluate only the first N pairs (0: all)")
    external_group.add_argument("--bench-runs", type=int, default=10,
                                help="timed desktop runs of a .tflite (default %(default)s)")
    external_group.add_argument("--threads", type=int, help="LiteRT CPU threads of a .tflite (default: LiteRT's)")
    parser.add_argument("--out", default="runs/leaderboard", help="output folder (default %(default)s)")
    parser.add_argument("--budget-ms", default=BUDGET_TEXT, help="latency budget LO,HI in ms (default %(default)s)")
    parser.set_defaults(func=run_report)
