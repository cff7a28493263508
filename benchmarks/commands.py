"""`isp` subcommands that sit at the top of the stack: train (the main job), bench, report, zoo.

The main job (benchmarks.main_job, TensorFlow) is imported by the `train` handler only.
"""
import os

from benchmarks import bench_cli, report, zoo
from benchmarks.score import parse_budget
from data.challenge import BUDGET_TEXT, FULL_HD_TEXT, SCORE_C
from isp import cli as isp_cli
from isp import cluster
from isp import config as config_mod
from isp.errors import ISPError
from isp.rundir import RunDir
from tflite_export.cli import parse_shape
from tflite_export.recipes import DEFAULT_REP_COUNT, RECIPES


def job_options(args):
    """JobOptions from the main-job flags."""
    from benchmarks import main_job
    recipes = tuple(r for r in args.recipes.split(",") if r)
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        raise ISPError(f"--recipes: unknown {sorted(unknown)}; choose from {', '.join(RECIPES)}")
    return main_job.JobOptions(
        recipes=recipes, fixed_shape=parse_shape(args.shape), rep_count=args.rep_count,
        val_images=args.fidelity_images, bench_runs=args.bench_runs, threads=args.threads, adb=args.adb,
        serial=args.serial, binary=args.binary, budget_ms=parse_budget(args.budget_ms), score_c=args.score_c,
        train_only=args.train_only)


def run_train(args):
    """Handler of `isp train` / `python train.py`: the main job (or training alone with --train-only).

    A multi-worker job runs in a watched child process (isp/cluster.py), so a worker that never
    starts ends it with one line after --cluster-timeout seconds instead of a hang.
    """
    from benchmarks import main_job
    options = job_options(args)
    overrides = isp_cli.overrides_from_args(args)
    config_file = RunDir(args.resume).config_file if args.resume else args.config
    if config_mod.resolve(overrides, config_file).strategy == "multiworker" and not cluster.in_watched_child():
        return cluster.run_watched(cluster.python_command(args.argv), args.cluster_timeout)
    if args.resume:
        main_job.run(resume_dir=args.resume, overrides=overrides, options=options)
    else:
        main_job.run(config_mod.resolve(overrides, args.config), options=options)
    return 0


def add_job_arguments(parser):
    """Flags of the stages after training."""
    group = parser.add_argument_group("after training: export, checks, benchmarks, report")
    group.add_argument("--train-only", action="store_true", help="stop after training (no export/benchmarks)")
    group.add_argument("--recipes", default="fp16,int8",
                       help="export recipes, comma-separated from fp32,fp16,int8,qat; qat is added when "
                            "--qat-epochs > 0 (default %(default)s)")
    group.add_argument("--shape", default=FULL_HD_TEXT,
                       help="packed input H,W of the fixed model.tflite (default %(default)s = Full HD)")
    group.add_argument("--rep-count", type=int, default=DEFAULT_REP_COUNT,
                       help="calibration inputs for int8 post-training quantization (default %(default)s)")
    group.add_argument("--fidelity-images", type=int, default=0,
                       help="val images for the fidelity check and baseline (0: all; default %(default)s)")
    group.add_argument("--bench-runs", type=int, default=10, help="timed desktop runs per model (default %(default)s)")
    group.add_argument("--threads", type=int, default=os.cpu_count(),
                       help="LiteRT CPU threads of the desktop benchmark (default: all cores, %(default)s)")
    group.add_argument("--adb", action="store_true",
                       help="also benchmark on a phone over adb (needs a device and --binary benchmark_model)")
    group.add_argument("--serial", help="adb device serial when several phones are attached")
    group.add_argument("--binary", help="Android benchmark_model binary (or set ISP_BENCHMARK_MODEL)")
    group.add_argument("--budget-ms", default=BUDGET_TEXT,
                       help="Full HD latency budget LO,HI in ms (default %(default)s)")
    group.add_argument("--cluster-timeout", type=float, default=cluster.DEFAULT_TIMEOUT_S, metavar="SECONDS",
                       help="with --strategy multiworker: give up, with a one-line error, when the workers of "
                            "TF_CONFIG have not all connected within this time (default %(default)g)")
    group.add_argument("--score-c", type=float, default=SCORE_C,
                       help="constant C of the challenge score 2^(2*PSNR)/(C*runtime); unpublished (default 1)")


def add_commands(subparsers):
    """Register the top-level subcommands."""
    trainer = subparsers.add_parser(
        "train", help="the main job: train, quantize, export, check, benchmark, report (same as python train.py)",
        description="Train a learned ISP on paired RAW/RGB data (default: built-in data synthesised from "
                    "scikit-image photos), fine-tune a quantization-aware copy, export FP16/INT8 challenge "
                    "pairs, check GPU-delegate compatibility and fidelity, compare with a classical ISP, "
                    "measure latency, and write runs/<name>/report.md. Ctrl-C stops; --resume continues.")
    isp_cli.add_train_arguments(trainer)
    add_job_arguments(trainer)
    trainer.set_defaults(func=run_train)
    bench_cli.add_command(subparsers)
    report.add_command(subparsers)
    zoo.add_command(subparsers)
