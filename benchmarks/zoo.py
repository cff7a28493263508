"""The model-zoo table that the product's claims rest on (`isp zoo`, `python -m benchmarks.zoo`).

Every registered model (or the `--models` subset) is trained for the same short budget (the same
optimizer steps, batch, crop, learning rate, losses and data; no QAT), exported to FP16 TFLite,
scored on the validation pairs (PSNR/SSIM of the FP16 model_none.tflite against the targets) and
timed on the desktop CPU (LiteRT + XNNPACK) at Full HD (packed input 544x960x4). Latency is
measured side by side in one process: round-robin over the models for several rounds, each round
starting at the next model, so machine noise hits every model alike; a model's latency is the
median over rounds of its per-round median.

Ratios are taken against the product default (`isp.models.unet.DEFAULT_MODEL`); when the default
is not among the models, against the first model listed. The claim check: the default must sit on
the Pareto front of PSNR (higher is better) vs. latency (lower is better) and have a higher PSNR
than every reference architecture (a model not registered in isp/models/unet.py) whose latency is
at least `SIMILAR_COST` times its own.

Output: a Markdown table printed and written to `--out` (default <runs-dir>/zoo.md) and the same
data as JSON beside it (zoo.json), both atomically. Run folders: <runs-dir>/<model>/ (a rerun with
the same budget resumes them; with another budget it is an error).
"""
import argparse
import json
import os
import sys

import numpy as np

from benchmarks.desktop import FULL_HD_INPUT, bench_desktop, check_counts
from benchmarks.errors import BenchError
from benchmarks.score import challenge_score
from data.atomic import write_text
from isp import config as config_mod
from isp import train
from isp.cost import format_table, model_cost
from isp.models import build, list_models, unet
from tflite_export.cli import parse_shape
from tflite_export.export import export

DEFAULT_RUNS_DIR = os.path.join("runs", "zoo")
DEFAULT_EPOCHS = 12
SIMILAR_COST = 0.9
COLUMNS = ("model", "params", "GMACs", "PSNR", "SSIM", "FP16 KB", "desktop ms (median)",
           "PSNR - default", "latency / default", "on Pareto front")


def budget_config(model, runs_dir, budget, config_file=None):
    """TrainConfig for `model`: `config_file` <- `budget` (dict of TrainConfig keys) <- the zoo's
    fixed keys (model, run folder <runs_dir>/<model>, no QAT). Every model gets the same budget."""
    overrides = dict(budget, model=model, name=model, runs_dir=runs_dir, qat_epochs=0)
    return config_mod.resolve(overrides, config_file=config_file)


def train_model(config, progress=True):
    """Train `config` into <runs_dir>/<model>, or resume that folder if it holds the same config.

    Returns train's summary dict (run_dir, best_val_psnr). BenchError if the folder holds a run
    with another budget.
    """
    run_dir = os.path.join(config.runs_dir, config.name)
    stored = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(stored):
        return train.train(config, progress)
    if config_mod.resolve({}, config_file=stored) != config:
        raise BenchError(f"{run_dir} holds a run with another budget or settings; pass another "
                         "--runs-dir or delete that folder")
    return train.resume(run_dir, progress=progress)


def interleaved_latency(paths, rounds, runs, warmup, threads=None):
    """Desktop CPU latency of several .tflite files measured side by side.

    `paths`: {name: path}. Each round times every model once (`runs` timed invokes after `warmup`),
    starting one model later than the previous round. Returns {name: {"median_ms": median over rounds
    of the per-round p50, "round_p50_ms": [per round]}}.
    """
    names = list(paths)
    per_round = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            result = bench_desktop(paths[name], threads=threads, runs=runs, warmup=warmup)
            per_round[name].append(result["latency_ms"]["p50"])
    return {name: {"median_ms": float(np.median(ms)), "round_p50_ms": ms} for name, ms in per_round.items()}


def pareto_front(points):
    """Names not dominated in `points` = {name: (psnr, latency_ms)}: no other point has PSNR >= and
    latency <= with at least one strictly better."""
    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and a != b
    return {name for name, p in points.items() if not any(dominates(q, p) for q in points.values())}


def our_family():
    """Names of the models registered in isp/models/unet.py (ours; every other model is a reference)."""
    return {f.model_name for f in vars(unet).values() if hasattr(f, "model_name")}


def claim_check(rows, model, similar=SIMILAR_COST):
    """Is `model` on the Pareto front and ahead (higher PSNR) of every reference architecture whose
    latency is >= `similar` x its own? `rows`: the zoo rows. Returns {"model", "on_pareto_front",
    "similar_cost", "rivals": [{"model", "psnr_delta_db" (model - rival), "latency_ratio"
    (rival / model), "ahead"}], "holds"}."""
    by_name = {row["model"]: row for row in rows}
    own = by_name[model]
    family = our_family()
    rivals = [{"model": row["model"], "psnr_delta_db": own["psnr"] - row["psnr"],
               "latency_ratio": row["latency_ms"] / own["latency_ms"], "ahead": own["psnr"] > row["psnr"]}
              for row in rows
              if row["model"] not in family and row["latency_ms"] >= similar * own["latency_ms"]]
    return {"model": model, "on_pareto_front": own["on_pareto_front"], "similar_cost": similar,
            "rivals": rivals, "holds": own["on_pareto_front"] and all(r["ahead"] for r in rivals)}


def add_comparisons(rows, reference):
    """Add psnr_minus_reference, latency_ratio (of the medians), paired_latency_ratio (median over
    rounds of the ratio within each round: robust to load that changes between rounds), score_ratio
    (challenge score 2^(2 PSNR)/runtime over the reference's) and on_pareto_front to each row (in place).
    Rows need model, psnr, latency_ms and round_p50_ms."""
    ref = next(row for row in rows if row["model"] == reference)
    ref_score = challenge_score(ref["psnr"], ref["latency_ms"] / 1000.0)
    front = pareto_front({row["model"]: (row["psnr"], row["latency_ms"]) for row in rows})
    for row in rows:
        paired = np.asarray(row["round_p50_ms"]) / np.asarray(ref["round_p50_ms"])
        row.update(psnr_minus_reference=row["psnr"] - ref["psnr"],
                   latency_ratio=row["latency_ms"] / ref["latency_ms"],
                   paired_latency_ratio=float(np.median(paired)),
                   score_ratio=challenge_score(row["psnr"], row["latency_ms"] / 1000.0) / ref_score,
                   on_pareto_front=row["model"] in front)


def measure_model(name, runs_dir, budget, config_file=None, input_shape=FULL_HD_INPUT, progress=True):
    """Train one model with the shared budget, export FP16 and score it.

    Returns (row, path of the fixed-shape FP16 model.tflite, its TrainConfig); the row holds model,
    params, gmacs (at `input_shape`), psnr/ssim (FP16 model_none.tflite vs. targets), keras_val_psnr,
    val_images, fp16_kb (model.tflite) and run_dir.
    """
    config = budget_config(name, runs_dir, budget, config_file)
    summary = train_model(config, progress)
    out_dir = os.path.join(summary["run_dir"], "tflite", "fp16")
    report = export(summary["run_dir"], "fp16", out_dir, fixed_shape=tuple(input_shape),
                    val_images=config.val_images, progress=progress)
    cost = model_cost(build(name, (*input_shape, 4)))
    fidelity = report["fidelity"]
    row = {"model": name, "params": cost["params"], "gmacs": cost["gmacs"], "psnr": fidelity["tflite_psnr"],
           "ssim": fidelity["tflite_ssim"], "keras_val_psnr": summary["best_val_psnr"],
           "val_images": fidelity["images"], "fp16_kb": report["files"]["model.tflite"]["bytes"] / 1024,
           "run_dir": summary["run_dir"]}
    return row, os.path.join(out_dir, "model.tflite"), config


def run_zoo(models, runs_dir, budget, config_file=None, rounds=5, runs=5, warmup=2, threads=None,
            input_shape=FULL_HD_INPUT, progress=True):
    """Train, export FP16, score and time `models` with one shared `budget`; returns the zoo dict
    {"settings", "reference", "rows", "claim"} (claim is None when the default model is absent).

    `input_shape`: packed (h, w) of the timed fixed-shape model.tflite and of the MAC count.
    """
    unknown = [m for m in models if m not in list_models()]
    if unknown or not models:
        raise BenchError(f"--models: unknown or empty {unknown}; registered: {', '.join(list_models())}")
    check_counts(runs, warmup, threads)  # before hours of training, not after
    if rounds < 1:
        raise BenchError(f"need --rounds >= 1, got {rounds}")
    rows, paths = [], {}
    for name in models:
        row, paths[name], config = measure_model(name, runs_dir, budget, config_file, input_shape, progress)
        rows.append(row)
    latency = interleaved_latency(paths, rounds, runs, warmup, threads)
    for row in rows:
        row.update(latency_ms=latency[row["model"]]["median_ms"],
                   round_p50_ms=latency[row["model"]]["round_p50_ms"])
    reference = unet.DEFAULT_MODEL if unet.DEFAULT_MODEL in models else models[0]
    add_comparisons(rows, reference)
    budget_keys = ("data", "epochs", "steps_per_epoch", "batch_size", "crop", "lr", "seed", "val_images")
    settings = {key: getattr(config, key) for key in budget_keys}
    settings.update(qat_epochs=0, data_root=train.dataset_root(config), rounds=rounds, runs=runs,
                    warmup=warmup, threads=threads, input_shape=[1, *input_shape, 4],
                    runtime="LiteRT Interpreter (XNNPACK CPU delegate), FP16 model.tflite")
    claim = claim_check(rows, unet.DEFAULT_MODEL) if unet.DEFAULT_MODEL in models else None
    return {"settings": settings, "reference": reference, "rows": rows, "claim": claim}


def format_markdown(zoo):
    """The zoo dict as a Markdown document: settings, the table, the claim check."""
    s = zoo["settings"]
    steps = (f"{s['steps_per_epoch']} steps" if s["steps_per_epoch"]
             else "one pass over the train pairs")
    absent = "" if zoo["claim"] else " (the first model listed: the product default is not in the table)"
    lines = ["# Model zoo", "",
             f"Same budget for every model: {s['epochs']} epochs of {steps}, batch {s['batch_size']}, "
             f"crop {s['crop']}, lr {s['lr']:g}, seed {s['seed']}, no QAT; data: {s['data_root']}.",
             f"PSNR/SSIM: FP16 model_none.tflite vs. targets on the val pairs. Latency: {s['runtime']}, "
             f"threads {s['threads'] or 'default'}, input {'x'.join(map(str, s['input_shape']))}, median of "
             f"{s['rounds']} interleaved rounds ({s['runs']} runs after {s['warmup']} warm-up each). "
             "GMACs at that input.",
             f"\"default\" = {zoo['reference']}{absent}",
             "", format_table([_display(row) for row in zoo["rows"]], list(COLUMNS))]
    if zoo["claim"]:
        lines += ["", *_claim_lines(zoo["claim"])]
    return "\n".join(lines) + "\n"


def _claim_lines(claim):
    """The claim check in two lines of text."""
    model = claim["model"]
    rivals = ", ".join(f"{r['model']} ({r['psnr_delta_db']:+.2f} dB, {r['latency_ratio']:.2f}x latency, "
                       f"{'behind' if r['ahead'] else 'AHEAD of ' + model})" for r in claim["rivals"])
    return [f"Claim check for {model}: on the Pareto front: {'yes' if claim['on_pareto_front'] else 'NO'}; "
            f"reference architectures with latency >= {claim['similar_cost']:g}x {model}'s: "
            f"{rivals or 'none'}.",
            f"Claim {'holds' if claim['holds'] else 'does NOT hold'}."]


def _display(row):
    """One zoo row as table cells (strings)."""
    return {"model": row["model"], "params": f"{row['params']:,}", "GMACs": f"{row['gmacs']:.2f}",
            "PSNR": f"{row['psnr']:.2f}", "SSIM": f"{row['ssim']:.4f}", "FP16 KB": f"{row['fp16_kb']:.1f}",
            "desktop ms (median)": f"{row['latency_ms']:.1f}",
            "PSNR - default": f"{row['psnr_minus_reference']:+.2f}",
            "latency / default": f"{row['latency_ratio']:.2f}",
            "on Pareto front": "yes" if row["on_pareto_front"] else "no"}


def write_outputs(zoo, out):
    """Write the Markdown to `out` and the zoo dict as JSON beside it (same stem, .json), atomically."""
    write_text(out, format_markdown(zoo))
    write_text(os.path.splitext(out)[0] + ".json", json.dumps(zoo, indent=2) + "\n")


def add_arguments(parser):
    """The zoo's flags."""
    defaults = config_mod.TrainConfig()
    parser.add_argument("--models", metavar="A,B,...",
                        help="comma-separated registered models (default: all, see `isp models`)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                        help="training epochs of every model (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=0,
                        help="optimizer steps per epoch (default: 0, one pass over the training pairs)")
    parser.add_argument("--batch-size", type=int, help=f"batch size (default: {defaults.batch_size})")
    parser.add_argument("--crop", type=int, help=f"packed training patch size (default: {defaults.crop})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate (default: {defaults.lr:g})")
    parser.add_argument("--data",
                        help="dataset root in the UltraISP layout (default: the built-in default data)")
    parser.add_argument("--val-images", type=int,
                        help="validate and score on at most this many val pairs (default: all)")
    parser.add_argument("--config", metavar="FILE",
                        help="TrainConfig YAML shared by every model (losses etc.); flags override it, and "
                             "model, name, runs_dir and qat_epochs are set by the zoo")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved latency rounds over all models (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs per model per round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="warm-up runs per model per round (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="LiteRT CPU threads (default: the runtime's choice)")
    parser.add_argument("--input-shape", metavar="H,W", default=f"{FULL_HD_INPUT[0]},{FULL_HD_INPUT[1]}",
                        help="packed input of the timed model.tflite and of the MAC count "
                             "(default: %(default)s, Full HD)")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                        help="folder of the per-model run folders (default: %(default)s)")
    parser.add_argument("--out", help="Markdown output; JSON goes beside it (default: <runs-dir>/zoo.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _budget(args):
    """The TrainConfig overrides given on the command line."""
    values = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
              "crop": args.crop, "lr": args.lr, "data": args.data, "val_images": args.val_images}
    return {key: value for key, value in values.items() if value is not None}


def run(args):
    """Run the zoo from parsed args, print the table, write --out; returns the zoo dict."""
    models = args.models.split(",") if args.models else list_models()
    zoo = run_zoo(models, args.runs_dir, _budget(args), args.config, args.rounds, args.runs, args.warmup,
                  args.threads, parse_shape(args.input_shape, "--input-shape", BenchError), not args.no_progress)
    out = args.out or os.path.join(args.runs_dir, "zoo.md")
    write_outputs(zoo, out)
    print(format_markdown(zoo))
    print(f"written: {out} and {os.path.splitext(out)[0]}.json")
    return zoo


def handle(args):
    """Handler of `isp zoo`: run the zoo; exit status 0."""
    run(args)
    return 0


def add_command(subparsers):
    """Register `isp zoo` on the `isp` subparsers."""
    parser = subparsers.add_parser(
        "zoo", help="train every model for the same budget, export FP16, table PSNR/SSIM/MACs/latency",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=handle)


def main(argv=None):
    """`python -m benchmarks.zoo [flags]`: run the zoo; returns the zoo dict."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    from benchmarks.cli import user_error_types
    try:
        main()
    except user_error_types() as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
