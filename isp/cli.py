"""Command-line pieces of the isp layer: the training flags (shared by `isp train` and train.py)."""
import argparse
import dataclasses

from isp import config as config_mod


def add_train_arguments(parser):
    """One flag per TrainConfig field (--some-key), plus --config and --resume."""
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="YAML file of config keys (overrides defaults; flags override it)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue runs/<name> from its last checkpoint (optimizer, epoch, RNG)")
    for field in dataclasses.fields(config_mod.TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{config_mod.HELP[field.name]} (default: {field.default!r})"
        if isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, dest=field.name, type=type(field.default), default=argparse.SUPPRESS,
                                help=help_text)
    parser.add_argument("--no-cache", dest="cache", action="store_const", const="none", default=argparse.SUPPRESS,
                        help="same as --cache none")


def overrides_from_args(args):
    """The TrainConfig keys given explicitly on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_mod.TrainConfig)
            if hasattr(args, f.name)}


def add_commands(subparsers):
    """Register the isp layer's own subcommands (train is registered at the top, in benchmarks)."""
