"""The main job (`python train.py`): data -> trained model (+QAT) -> FP16/INT8 challenge pairs ->
GPU-delegate check -> fidelity -> classical baseline -> desktop (and phone) latency -> report.

Writes into the run folder: tflite/<recipe>/{model.tflite, model_none.tflite, export.json},
eval/classic/..., report.json, report.md, plots/pareto.png, plots/training.png.
"""
import dataclasses
import json
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks import measured  # noqa: E402
from benchmarks import report as leaderboard  # noqa: E402
from benchmarks.adb import bench_adb  # noqa: E402
from benchmarks.desktop import bench_desktop  # noqa: E402
from benchmarks.score import sized_budget  # noqa: E402
from data.challenge import BUDGET_MS, FULL_HD_PACKED, SCORE_C, challenge_score  # noqa: E402
from data import default_data, synth  # noqa: E402
from data.atomic import atomic_path, write_text  # noqa: E402
from isp import train  # noqa: E402
from isp.classic import classic_isp  # noqa: E402
from isp.evaluate import evaluate  # noqa: E402
from isp.rundir import FIXED_MODEL, RELATIVE, RunDir  # noqa: E402
from tflite_export import export, gpu_check  # noqa: E402
from tflite_export.recipes import DEFAULT_REP_COUNT  # noqa: E402
from tflite_export.runtime import TFLiteModel  # noqa: E402


@dataclasses.dataclass
class JobOptions:
    """What happens after training (see `python train.py --help`)."""

    recipes: tuple = ("fp16", "int8")
    fixed_shape: tuple = FULL_HD_PACKED
    rep_count: int = DEFAULT_REP_COUNT
    val_images: int = 0
    bench_runs: int = 10
    threads: int = os.cpu_count()
    adb: bool = False
    serial: str = None
    binary: str = None
    budget_ms: tuple = BUDGET_MS
    score_c: float = SCORE_C
    train_only: bool = False


class Stages:
    """Prints numbered stage headers with elapsed time."""

    def __init__(self, total):
        self.total, self.index, self.started = total, 0, time.time()

    def next(self, title):
        self.index += 1
        print(f"\n[{self.index}/{self.total}] {title}  (t+{time.time() - self.started:.0f} s)", flush=True)


def run(config=None, resume_dir=None, overrides=None, options=JobOptions(), progress=True):
    """Run the whole job for a new TrainConfig or resume `resume_dir`; returns the report dict."""
    stages = Stages(2 if options.train_only else 7)
    stages.next("data")
    if resume_dir:
        config = RunDir(resume_dir).read_config(overrides)
    root = train.dataset_root(config)
    splits = train.load_splits(config, root)
    print(f"dataset {root}: " + ", ".join(f"{name} {len(pairs)} pairs" for name, pairs in splits.items()))
    stages.next("training (float, then quantization-aware)")
    summary = train.resume(resume_dir, overrides, progress) if resume_dir else train.train(config, progress)
    run_dir = summary["run_dir"]
    run = RunDir(run_dir)
    print(f"run folder {run_dir}: best val PSNR {summary['best_val_psnr']:.2f} dB")
    if options.train_only:
        return summary
    recipes = [*options.recipes, *(["qat"] if config.qat_epochs and "qat" not in options.recipes else [])]

    stages.next(f"export {', '.join(recipes)} challenge pairs + GPU-delegate check + fidelity")
    exports = {}
    for recipe in recipes:
        exports[recipe] = export.export(run_dir, recipe, run.tflite(recipe),
                                        fixed_shape=options.fixed_shape, rep_count=options.rep_count,
                                        val_images=options.val_images, progress=progress)
        print(export.format_report(exports[recipe]))

    stages.next("classical ISP baseline on the same val images" + ("" if config.data else " + cross-sensor val"))
    val = splits["val"][:options.val_images or None]
    profile = train.profile_of(config)
    classic = evaluate(lambda raw: classic_isp(raw[0], profile)[None], val, profile,
                       out_dir=run.eval("classic"), progress=progress)
    print(f"classical ISP: PSNR {classic['psnr']:.2f} dB, SSIM {classic['ssim']:.4f}")
    cross = {} if config.data else cross_sensor_scores(train.dataset_root(config), run_dir, recipes, progress)
    for name, result in cross.items():
        print(f"cross-sensor val, {name}: PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}")

    stages.next(f"desktop latency at {options.fixed_shape[0]}x{options.fixed_shape[1]} packed input (LiteRT CPU)")
    latency = {}
    for recipe in recipes:
        latency[recipe] = bench_desktop(run.model(recipe),
                                        threads=options.threads, runs=options.bench_runs)
        print(f"{recipe:5s} mean {latency[recipe]['latency_ms']['mean']:.1f} ms, "
              f"p50 {latency[recipe]['latency_ms']['p50']:.1f} ms")

    stages.next("phone latency via adb" if options.adb else "phone latency via adb: skipped (pass --adb)")
    device = {}
    if options.adb:
        for recipe in recipes:
            device[recipe] = bench_adb(run.model(recipe),
                                       serial=options.serial, binary=options.binary)
            print(f"{recipe:5s} phone GPU mean {device[recipe]['latency_ms']['mean']:.1f} ms, "
                  f"delegation {device[recipe]['benchmark'].get('delegation')}")

    stages.next("report")
    result = build_report(config, run_dir, summary, exports, classic, latency, device, options, cross)
    write_report(run_dir, result, options)
    print(f"\nreport: {run.report_md}")
    return result


def cross_sensor_scores(data_root, run_dir, recipes, progress=True):
    """{recipe or "classic": evaluate() result} on the built-in cross-sensor val (data/default_data.py),
    read with its true levels; each recipe's model_none.tflite, and the classical ISP."""
    pairs, profile = synth.split_with_profile(default_data.cross_sensor_root(data_root))
    scores, run = {}, RunDir(run_dir)
    for recipe in recipes:
        model = TFLiteModel(run.model(recipe, dynamic=True))
        scores[recipe] = evaluate(model.run, pairs, profile, progress=progress)
    scores["classic"] = evaluate(lambda raw: classic_isp(raw[0], profile)[None], pairs, profile,
                                 out_dir=run.eval("classic-cross-sensor"), progress=progress)
    return scores


def build_report(config, run_dir, summary, exports, classic, latency, device, options, cross=None):
    """The report dict: one leaderboard row per recipe, the classical baseline, and the details.

    cross: `cross_sensor_scores` (or empty): fills the rows' cross-sensor PSNR/SSIM."""
    cross = cross or {}
    rows = []
    for recipe, exp in exports.items():
        fid = exp["fidelity"]
        phone = device.get(recipe)
        ms = phone["latency_ms"]["mean"] if phone else latency[recipe]["latency_ms"]["mean"]
        rows.append({
            "label": f"{config.model} {recipe}", "model": config.model, "recipe": recipe,
            "psnr": fid["tflite_psnr"], "ssim": fid["tflite_ssim"], "psnr_delta_vs_keras": fid["psnr_delta_db"],
            "psnr_cross_sensor": cross.get(recipe, {}).get("psnr"),
            "ssim_cross_sensor": cross.get(recipe, {}).get("ssim"),
            "latency_ms": ms,
            "latency_source": "phone GPU (adb)" if phone else f"desktop CPU, {options.threads} threads",
            "desktop_ms": latency[recipe]["latency_ms"]["mean"],
            "phone_ms": phone["latency_ms"]["mean"] if phone else None,
            "size_kb": exp["files"][FIXED_MODEL]["bytes"] / 1024,
            "gpu_static": gpu_check.check(RunDir(run_dir).model(recipe)).status,
            "gpu_measured": _measured_on(phone, "phone GPU (adb)"),
            "score": challenge_score(fid["tflite_psnr"], ms / 1000.0, options.score_c)})
    measured.apply_verdicts(rows, options.budget_ms, config.model)
    for row in rows:  # a phone verdict holds for Full HD input only
        if row["phone_ms"] is not None and tuple(options.fixed_shape) != FULL_HD_PACKED:
            row["budget"] = sized_budget(row["latency_ms"], options.fixed_shape, *options.budget_ms)["verdict"]
    rows.append({"label": "classical ISP", "model": "classic", "recipe": "—", "psnr": classic["psnr"],
                 "ssim": classic["ssim"], "psnr_cross_sensor": cross.get("classic", {}).get("psnr"),
                 "ssim_cross_sensor": cross.get("classic", {}).get("ssim")})
    leaderboard.mark_pareto(rows)
    return {"run_dir": run_dir, "model": config.model, "val_images": classic["images"],
            "best_val_psnr_keras": summary["best_val_psnr"], "qat_best_val_psnr": summary["qat_best_val_psnr"],
            "budget_ms": list(options.budget_ms), "score_c": options.score_c, "rows": rows,
            "exports": exports, "desktop": latency, "phone": device or None,
            "classic": {k: classic[k] for k in ("psnr", "ssim", "images")},
            "cross_sensor": {name: {k: r[k] for k in ("psnr", "ssim", "images")} for name, r in cross.items()}}


def _measured_on(result, device):
    """"<delegation> on <device>" from a bench result, or None when no GPU delegate ran."""
    delegation = measured.measured_delegation(result)
    return f"{delegation} on {device}" if delegation else None


def write_report(run_dir, result, options):
    """report.json, plots/pareto.png, plots/training.png and report.md, each written atomically."""
    run = RunDir(run_dir)
    write_text(run.report_json, json.dumps(result, indent=2, default=str))
    leaderboard.pareto_plot(result["rows"], run.plot("pareto"), options.budget_ms,
                            title=f"{result['model']}: PSNR vs Full HD latency")
    training_plot(run.history_file, run.plot("training"))
    write_text(run.report_md, report_markdown(result))


def training_plot(history_path, path):
    """Val PSNR per epoch of the float and QAT stages."""
    with open(history_path) as f:
        history = json.load(f)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    offset = 0
    for stage, rows in history.items():
        if rows:
            ax.plot([offset + r["epoch"] for r in rows], [r["val_psnr"] for r in rows], marker="o", label=stage)
            offset += len(rows)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val PSNR, dB")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def report_markdown(result):
    """The human-readable report."""
    classic = result["classic"]
    best = max((r for r in result["rows"] if r["model"] != "classic"), key=lambda r: r["psnr"])
    lo, hi = result["budget_ms"]
    lines = [
        f"# Learned ISP report: {result['model']}", "",
        f"Run folder `{result['run_dir']}`; metrics on {result['val_images']} validation images "
        "(PSNR/SSIM on uint8 images, data range 255).", "",
        *(["- Cross-sensor PSNR: the built-in cross-sensor val (the val scenes through a camera outside the "
           "training cameras, black level 64, 10-bit), read with its true levels."] if result.get("cross_sensor")
          else []),
        f"- Best TFLite model: **{best['label']}**, {best['psnr']:.2f} dB / SSIM {best['ssim']:.4f}, "
        f"{best['psnr'] - classic['psnr']:+.2f} dB over the classical ISP ({classic['psnr']:.2f} dB).",
        f"- Latency budget {lo:g}–{hi:g} ms for a Full HD frame on a phone GPU: only phone (--adb) latencies "
        "get a budget verdict; desktop-CPU rows show their ratio to the first recipe of this run instead.",
        "- GPU delegate (static check): the classic TFLite GPU delegate's rules applied to the file; "
        "(measured on …): what the phone's delegate reported (only with --adb).",
        f"- Score = 2^(2·PSNR) / (C · runtime s) with C = {result['score_c']:g} (the organisers never "
        "published C; compare scores only with the same C).", "",
        "## Leaderboard", "", leaderboard.markdown_table(result["rows"]), "",
        f"![PSNR vs latency]({RELATIVE.plot('pareto')})", "", f"![training]({RELATIVE.plot('training')})", "",
        "## Exports", ""]
    for recipe, exp in result["exports"].items():
        fid = exp["fidelity"]
        fixed = exp["files"][FIXED_MODEL]
        lines.append(f"- **{recipe}**: `{RELATIVE.model(recipe)}` {fixed['input_shape']} -> "
                     f"{fixed['output_shape']}, {fixed['bytes'] / 1024:.0f} KB, converted in "
                     f"{fixed['convert_seconds']:.1f} s; GPU delegate: {fixed['gpu_delegate']}; "
                     f"TFLite vs Keras {fid['psnr_delta_db']:+.3f} dB"
                     + ("" if fid.get("fp16_within_tolerance") is not False else " (**FP16 loss > 0.05 dB**)")
                     + (" (**FP16 overflow risk**)" if fid["fp16_overflow_risk"] else ""))
    return "\n".join(lines) + "\n"
