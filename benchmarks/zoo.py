"""The fidelity benchmark behind the product's model claims (`isp zoo`, `python -m benchmarks.zoo`).

Every registered model (or the `--models` subset) is trained with the same budget (optimizer
steps, batch, crop, learning rate, losses, data; no QAT) once per seed (`--seeds`, default 3),
exported to FP16 TFLite and scored with the FP16 model_none.tflite on every evaluation set:

- val: the dataset's validation split (for the built-in data: scenes that no training pair shows);
- cross-sensor: the built-in cross-sensor val (same val scenes, a camera outside the training
  cameras, black level 64, 10-bit), read with its true levels;
- held-out: photos from a source the training never touched (`--heldout-photos`, default the nature
  photos of Debian's mate-backgrounds) through the same unseen sensor, read with its true levels,
  and again with levels estimated by `--black-level auto --white-level auto` ("held-out, auto").

Each cell is the mean and the spread (sample standard deviation) over the seeds; compare means,
never single runs. The colour-fit column scores the same outputs after a per-image least-squares
affine colour map onto the target (isp.metrics.colour_fit, an oracle): its gap to the PSNR is the
error that white balance, colour matrix and brightness explain, the rest is local.

Latency: the seed-0 FP16 model.tflite of every model timed on the desktop CPU (LiteRT + XNNPACK)
at Full HD (packed 544x960x4), side by side in one process: round-robin over the models for
several rounds, each round starting at the next model, so machine noise hits every model alike; a
model's latency is the median over rounds of its per-round median. Desktop CPU latency is not
phone-GPU latency; ratios within one run are what this table can claim.

Ratios are taken against the product default (`TrainConfig.model`; else the first model
listed); the challenge score 2^(2 PSNR) / runtime uses the held-out mean PSNR (the val PSNR when no
held-out set is available). The claim check: the default must beat the reference baseline
(`REFERENCE_BASELINE`, a plain 3-level U-Net) by at least `TARGET_MARGIN_DB` in held-out mean PSNR and
in challenge score, and sit on the Pareto front of held-out PSNR vs latency.

Output: a Markdown table printed and written to `--out` (default <runs-dir>/zoo.md) and the same
data as JSON beside it (zoo.json), both atomically. Run folders: <runs-dir>/<model>-s<seed>/ (a
rerun with the same budget resumes them; with another budget it is an error).

TensorFlow (training, export, model building) is imported inside the functions that use it, so
`isp zoo --help` answers at once.
"""
import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from benchmarks.desktop import bench_desktop, check_counts
from benchmarks.errors import BenchError
from benchmarks.report import pareto_front
from data.challenge import FULL_HD_PACKED, FULL_HD_TEXT, challenge_score
from data import default_data, levels, sensor, synth
from data.atomic import write_text
from isp import config as config_mod
from isp.rundir import FIXED_MODEL, RunDir
from tflite_export.cli import parse_shape
from tflite_export.runtime import TFLiteModel

DEFAULT_RUNS_DIR = os.path.join("runs", "zoo")
DEFAULT_EPOCHS = config_mod.TrainConfig().epochs  # the product's own training budget
DEFAULT_SEEDS = 3
DEFAULT_MODEL = config_mod.TrainConfig.model  # the product default every ratio is taken against
HELDOUT_PHOTOS = "/usr/share/backgrounds/mate/nature"  # Debian package mate-backgrounds
HELDOUT_PAIRS = 48
HELDOUT_PATCH = 256
REFERENCE_BASELINE = "unet3_ref"
TARGET_MARGIN_DB = 0.7
SCORE_SET = "held-out"
METRICS = ("psnr", "ssim", "psnr_colour_fit")  # per set and seed; see score_tflite


@dataclasses.dataclass
class EvalSet:
    """One evaluation set: its pairs and the SensorProfile to read them with."""

    name: str
    pairs: list
    profile: object
    note: str


def budget_config(model, runs_dir, budget, seed=0, config_file=None):
    """TrainConfig for `model` and `seed`: `config_file` <- `budget` (dict of TrainConfig keys) <- the zoo's
    fixed keys (model, seed, run folder <runs_dir>/<model>-s<seed>, no QAT). Every model gets the same budget."""
    overrides = dict(budget, model=model, seed=seed, name=f"{model}-s{seed}", runs_dir=runs_dir, qat_epochs=0)
    return config_mod.resolve(overrides, config_file=config_file)


def train_model(config, progress=True):
    """Train `config` into <runs_dir>/<name>, or resume that folder if it holds the same config.

    Returns train's summary dict (run_dir, best_val_psnr). BenchError if the folder holds a run
    with another budget.
    """
    from isp import train
    run = RunDir.of(config.runs_dir, config.name)
    if not run.exists():
        return train.train(config, progress)
    if run.read_config() != train.resolve_levels(config):
        raise BenchError(f"{run.path} holds a run with another budget or settings; pass another "
                         "--runs-dir or delete that folder")
    return train.resume(run.path, progress=progress)


def eval_sets(config, runs_dir, heldout_photos=HELDOUT_PHOTOS, progress=True):
    """The evaluation sets for runs trained with `config` (see the module docstring); the held-out
    sets are left out, with a printed line, when `heldout_photos` is not a folder."""
    from isp import train
    val = train.load_splits(config)["val"]
    sets = [EvalSet("val", val[:config.val_images or None], train.profile_of(config), "the dataset's val split")]
    cross = default_data.cross_sensor_root(default_data.ensure_default_data(progress=progress))
    sets.append(EvalSet("cross-sensor", *synth.split_with_profile(cross), f"{cross}, true levels"))
    if not heldout_photos or not os.path.isdir(heldout_photos):
        print(f"held-out photos {heldout_photos!r} not found (apt-get install mate-backgrounds, or pass "
              "--heldout-photos DIR): held-out columns left out")
        return sets
    root = default_data.ensure_cross_sensor_set(heldout_photos, os.path.join(runs_dir, "heldout"),
                                                HELDOUT_PAIRS, HELDOUT_PATCH, progress=progress)
    pairs, true = synth.split_with_profile(root)
    auto = sensor.profile_from_text(true.cfa, ",".join(true.channel_order), sensor.AUTO, sensor.AUTO,
                                    lambda layout: levels.estimate_pairs(pairs, layout))
    sets.append(EvalSet(SCORE_SET, pairs, true, f"{heldout_photos} through the cross-sensor camera, true levels"))
    sets.append(EvalSet(f"{SCORE_SET}, auto", pairs, auto,
                        "the same pairs, levels from --black-level auto --white-level auto"))
    return sets


def score_tflite(path, sets):
    """{set name: {"psnr", "ssim", "psnr_colour_fit"}} of the dynamic-shape .tflite at `path` on every
    EvalSet (psnr_colour_fit: isp.metrics.colour_fit, the PSNR a right global colour would give)."""
    from isp.evaluate import evaluate
    model = TFLiteModel(path)
    scores = {}
    for item in sets:
        result = evaluate(model.run, item.pairs, item.profile, progress=False)
        scores[item.name] = {key: result[key] for key in METRICS}
    return scores


def measure_model(name, runs_dir, budget, seeds, sets_for, config_file=None, input_shape=FULL_HD_PACKED,
                  progress=True):
    """Train `name` once per seed with the shared budget, export FP16 and score it on every set.

    sets_for(config) -> [EvalSet] (built once, by the caller). Returns (row, path of the seed-0
    fixed-shape FP16 model.tflite); the row holds model, params, gmacs (at `input_shape`), fp16_kb,
    seeds, run_dirs and per set name {metric: [per seed] for metric in METRICS} under "scores".
    """
    from isp.cost import model_cost
    from isp.models import build
    from tflite_export.export import export
    scores, run_dirs, first = {}, [], None
    for seed in range(seeds):
        config = budget_config(name, runs_dir, budget, seed, config_file)
        summary = train_model(config, progress)
        run = RunDir(summary["run_dir"])
        report = export(run.path, "fp16", run.tflite("fp16"), fixed_shape=tuple(input_shape),
                        val_images=config.val_images, check_fidelity=False, progress=progress)
        for set_name, value in score_tflite(run.model("fp16", dynamic=True), sets_for(config)).items():
            cell = scores.setdefault(set_name, {key: [] for key in METRICS})
            for key in METRICS:
                cell[key].append(value[key])
        run_dirs.append(summary["run_dir"])
        if first is None:
            first = (run.model("fp16"), report["files"][FIXED_MODEL]["bytes"])
    cost = model_cost(build(name, (*input_shape, 4)))
    row = {"model": name, "params": cost["params"], "gmacs": cost["gmacs"], "fp16_kb": first[1] / 1024,
           "seeds": seeds, "run_dirs": run_dirs, "scores": scores}
    return row, first[0]


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


def summarize(row):
    """Add per set {"<metric>_mean", "<metric>_sd" for metric in METRICS} under row["summary"] (in
    place); the sd is the sample standard deviation over seeds (0 for one seed)."""
    def spread(values):
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    row["summary"] = {name: {f"{key}_{stat}": fn(cell[key]) for key in METRICS
                             for stat, fn in (("mean", lambda v: float(np.mean(v))), ("sd", spread))}
                      for name, cell in row["scores"].items()}


def score_psnr(row):
    """The mean PSNR the score and the claim use: held-out if measured, else val."""
    return row["summary"][_score_set(row["summary"])]["psnr_mean"]


def add_comparisons(rows, reference):
    """Add psnr (the scoring set's mean), psnr_minus_reference, latency_ratio (of the medians),
    paired_latency_ratio (median over rounds of the ratio within each round: robust to load that
    changes between rounds), score_ratio (challenge score 2^(2 PSNR)/runtime over the reference's) and
    on_pareto_front to each row (in place). Rows need model, summary, latency_ms and round_p50_ms."""
    for row in rows:
        row["psnr"] = score_psnr(row)
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


def claim_check(rows, model, baseline=REFERENCE_BASELINE, margin=TARGET_MARGIN_DB):
    """Does `model` beat `baseline` by >= `margin` dB mean PSNR (held-out, else val) and in challenge
    score, on the Pareto front? Returns {"model", "baseline", "psnr_delta_db", "margin_db",
    "score_ratio" (model / baseline), "latency_ratio" (baseline / model), "on_pareto_front", "holds"};
    None when either model is not in `rows`."""
    by_name = {row["model"]: row for row in rows}
    if model not in by_name or baseline not in by_name:
        return None
    own, base = by_name[model], by_name[baseline]
    delta = own["psnr"] - base["psnr"]
    score_ratio = (challenge_score(own["psnr"], own["latency_ms"] / 1000.0)
                   / challenge_score(base["psnr"], base["latency_ms"] / 1000.0))
    return {"model": model, "baseline": baseline, "psnr_delta_db": delta, "margin_db": margin,
            "score_ratio": score_ratio, "latency_ratio": base["latency_ms"] / own["latency_ms"],
            "on_pareto_front": own["on_pareto_front"],
            "holds": delta >= margin and score_ratio > 1.0 and own["on_pareto_front"]}


def run_zoo(models, runs_dir, budget, config_file=None, seeds=DEFAULT_SEEDS, rounds=5, runs=5, warmup=2,
            threads=None, input_shape=FULL_HD_PACKED, heldout_photos=HELDOUT_PHOTOS, progress=True):
    """Train (per seed), export FP16, score and time `models` with one shared `budget`; returns the zoo
    dict {"settings", "sets", "reference", "rows", "claim"} (claim is None unless both the default and
    the reference baseline are among the models).

    `input_shape`: packed (h, w) of the timed fixed-shape model.tflite and of the MAC count.
    """
    from isp import train
    from isp.models import list_models
    unknown = [m for m in models if m not in list_models()]
    if unknown or not models:
        raise BenchError(f"--models: unknown or empty {unknown}; registered: {', '.join(list_models())}")
    check_counts(runs, warmup, threads)  # before hours of training, not after
    if rounds < 1 or seeds < 1:
        raise BenchError(f"need --rounds >= 1 and --seeds >= 1, got {rounds} and {seeds}")
    cache = {}

    def sets_for(config):
        key = (config.data, config.val_fraction, config.seed, config.val_images)
        if key not in cache:
            cache[key] = eval_sets(config, runs_dir, heldout_photos, progress)
        return cache[key]

    rows, paths = [], {}
    for name in models:
        row, paths[name] = measure_model(name, runs_dir, budget, seeds, sets_for, config_file, input_shape,
                                         progress)
        summarize(row)
        rows.append(row)
    latency = interleaved_latency(paths, rounds, runs, warmup, threads)
    for row in rows:
        row.update(latency_ms=latency[row["model"]]["median_ms"],
                   round_p50_ms=latency[row["model"]]["round_p50_ms"])
    reference = DEFAULT_MODEL if DEFAULT_MODEL in models else models[0]
    add_comparisons(rows, reference)
    config = budget_config(models[0], runs_dir, budget, 0, config_file)
    budget_keys = ("data", "epochs", "steps_per_epoch", "batch_size", "crop", "lr", "val_images")
    settings = {key: getattr(config, key) for key in budget_keys}
    settings.update(qat_epochs=0, seeds=seeds, data_root=train.dataset_root(config), rounds=rounds, runs=runs,
                    warmup=warmup, threads=threads, input_shape=[1, *input_shape, 4],
                    runtime="LiteRT Interpreter (XNNPACK CPU delegate), FP16 model.tflite")
    sets = [{"name": item.name, "images": len(item.pairs), "note": item.note,
             "profile": item.profile.to_dict()} for item in sets_for(config)]
    return {"settings": settings, "sets": sets, "reference": reference, "rows": rows,
            "claim": claim_check(rows, DEFAULT_MODEL)}


def format_markdown(zoo):
    """The zoo dict as a Markdown document: settings, evaluation sets, the table, the claim check."""
    from isp.cost import format_table
    s = zoo["settings"]
    steps = (f"{s['steps_per_epoch']} steps" if s["steps_per_epoch"]
             else "one pass over the train pairs")
    absent = ("" if zoo["reference"] == DEFAULT_MODEL
              else " (the first model listed: the product default is not in the table)")
    names = [item["name"] for item in zoo["sets"]]
    fit = _score_set(names)
    lines = ["# Fidelity benchmark (model zoo)", "",
             f"Same budget for every model: {s['epochs']} epochs of {steps}, batch {s['batch_size']}, "
             f"crop {s['crop']}, lr {s['lr']:g}, no QAT, {s['seeds']} seeds each; data: {s['data_root']}.",
             "PSNR/SSIM: FP16 model_none.tflite vs. targets, mean ± sample sd over the seeds, on:"]
    lines += [f"- **{item['name']}**: {item['images']} pairs, {item['note']}" for item in zoo["sets"]]
    lines += [f"Latency: {s['runtime']}, threads {s['threads'] or 'default'}, input "
              f"{'x'.join(map(str, s['input_shape']))}, median of {s['rounds']} interleaved rounds ({s['runs']} "
              f"runs after {s['warmup']} warm-up each), desktop CPU (not a phone). GMACs at that input. Score "
              f"ratio: 2^(2 PSNR)/latency on the {fit} mean PSNR. Colour-fit PSNR: the same "
              "outputs after a per-image least-squares affine colour map onto the target (an oracle); "
              "its gap to PSNR is the error one global colour transform per image explains.",
              f"\"default\" = {zoo['reference']}{absent}", ""]
    columns = ["model", "params", "GMACs", *[f"{n} PSNR" for n in names], *[f"{n} SSIM" for n in names[:3]],
               f"{fit} colour-fit PSNR", "desktop ms", "PSNR - default", "latency / default", "score / default",
               "Pareto"]
    lines.append(format_table([_display(row, names) for row in zoo["rows"]], columns))
    if zoo["claim"]:
        lines += ["", _claim_line(zoo["claim"])]
    return "\n".join(lines) + "\n"


def _claim_line(claim):
    """The claim check in one line of text."""
    return (f"Claim check: {claim['model']} vs {claim['baseline']}: {claim['psnr_delta_db']:+.2f} dB mean PSNR "
            f"(target >= +{claim['margin_db']:g}), score ratio {claim['score_ratio']:.2f}x, "
            f"{claim['baseline']} is {claim['latency_ratio']:.2f}x its latency, on the Pareto front: "
            f"{'yes' if claim['on_pareto_front'] else 'NO'}. Claim {'holds' if claim['holds'] else 'does NOT hold'}.")


def _display(row, names):
    """One zoo row as table cells (strings)."""
    summary = row["summary"]
    cells = {"model": row["model"], "params": f"{row['params']:,}", "GMACs": f"{row['gmacs']:.2f}",
             "desktop ms": f"{row['latency_ms']:.1f}", "PSNR - default": f"{row['psnr_minus_reference']:+.2f}",
             "latency / default": f"{row['latency_ratio']:.2f}", "score / default": f"{row['score_ratio']:.2f}",
             "Pareto": "yes" if row["on_pareto_front"] else "no"}
    for n in names:
        cells[f"{n} PSNR"] = f"{summary[n]['psnr_mean']:.2f} ± {summary[n]['psnr_sd']:.2f}"
        cells[f"{n} SSIM"] = f"{summary[n]['ssim_mean']:.4f}"
    fit = _score_set(names)
    cells[f"{fit} colour-fit PSNR"] = f"{summary[fit]['psnr_colour_fit_mean']:.2f}"
    return cells


def _score_set(names):
    """The set the score and the claim use: held-out if measured, else val."""
    return SCORE_SET if SCORE_SET in names else "val"


def write_outputs(zoo, out):
    """Write the Markdown to `out` and the zoo dict as JSON beside it (same stem, .json), atomically."""
    write_text(out, format_markdown(zoo))
    write_text(os.path.splitext(out)[0] + ".json", json.dumps(zoo, indent=2) + "\n")


def add_arguments(parser):
    """The zoo's flags."""
    defaults = config_mod.TrainConfig()
    parser.add_argument("--models", metavar="A,B,...",
                        help="comma-separated registered models (default: all, see `isp models`)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                        help="training seeds per model (0..N-1); cells are mean ± sd (default: %(default)s)")
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
    parser.add_argument("--heldout-photos", default=HELDOUT_PHOTOS, metavar="DIR",
                        help="folder of photos never used for training, synthesised through the unseen "
                             "cross-sensor camera for the held-out columns (default: %(default)s, from "
                             "`apt-get install mate-backgrounds`; '' leaves them out)")
    parser.add_argument("--config", metavar="FILE",
                        help="TrainConfig YAML shared by every model (losses etc.); flags override it, and "
                             "model, seed, name, runs_dir and qat_epochs are set by the zoo")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved latency rounds over all models (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs per model per round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="warm-up runs per model per round (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="LiteRT CPU threads (default: the runtime's choice)")
    parser.add_argument("--input-shape", metavar="H,W", default=FULL_HD_TEXT,
                        help="packed input of the timed model.tflite and of the MAC count "
                             "(default: %(default)s, Full HD)")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                        help="folder of the per-model run folders (default: %(default)s)")
    parser.add_argument("--out", help="Markdown output; JSON goes beside it (default: <runs-dir>/zoo.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def budget_overrides(args):
    """The TrainConfig overrides given on the command line (epochs, steps_per_epoch, batch_size, crop, lr, data,
    val_images; flags left unset are left out)."""
    values = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
              "crop": args.crop, "lr": args.lr, "data": args.data, "val_images": args.val_images}
    return {key: value for key, value in values.items() if value is not None}


def run(args):
    """Run the zoo from parsed args, print the table, write --out; returns the zoo dict."""
    from isp.models import list_models
    models = args.models.split(",") if args.models else list_models()
    zoo = run_zoo(models, args.runs_dir, budget_overrides(args), args.config, args.seeds, args.rounds, args.runs,
                  args.warmup, args.threads, parse_shape(args.input_shape, "--input-shape", BenchError),
                  args.heldout_photos, not args.no_progress)
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
        "zoo", help="fidelity benchmark: every model, one budget, several seeds, held-out and cross-sensor "
                    "PSNR/SSIM, MACs, latency",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=handle)


def main(argv=None):
    """`python -m benchmarks.zoo [flags]`: run the zoo; returns the zoo dict."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    from benchmarks.cli import run_guarded
    sys.exit(run_guarded(main))
