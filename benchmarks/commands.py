"""`isp` subcommands that sit at the top of the stack: train (the main job), bench."""
from benchmarks import bench_cli
from isp import cli as isp_cli
from isp import config as config_mod


def run_train(args):
    """Handler of `isp train` / `python train.py`: train (float + QAT) and print the run folder."""
    from isp import train
    if args.resume:
        summary = train.resume(args.resume, isp_cli.overrides_from_args(args))
    else:
        summary = train.train(config_mod.resolve(isp_cli.overrides_from_args(args), args.config))
    print(f"run folder: {summary['run_dir']}  best val PSNR {summary['best_val_psnr']:.2f} dB")
    return 0


def add_commands(subparsers):
    """Register the top-level subcommands."""
    trainer = subparsers.add_parser(
        "train", help="train a model (same as python train.py)",
        description="Train a learned ISP model on paired RAW/RGB data (default: built-in synthetic data), "
                    "then fine-tune a quantization-aware copy. Interrupt with Ctrl-C and continue with --resume.")
    isp_cli.add_train_arguments(trainer)
    trainer.set_defaults(func=run_train)
    bench_cli.add_command(subparsers)
