"""`isp data ...` subcommands, plus the sensor-profile flags other commands reuse."""
import json

from data import check, dataset, levels, sensor


def add_profile_arguments(parser):
    """Add --cfa/--channel-order/--black-level/--white-level (defaults: the challenge convention)."""
    default = sensor.CHALLENGE_PROFILE
    group = parser.add_argument_group("sensor profile (defaults: UltraISP challenge convention)")
    group.add_argument("--cfa", default=default.cfa, choices=sensor.CFA_PATTERNS,
                       help="colour layout of the 2x2 Bayer cell in raster order (default %(default)s)")
    group.add_argument("--channel-order", default=",".join(default.channel_order),
                       help="order of the 4 packed channels, names R,Gb,Gr,B; Gb is the first green "
                            "of the cell in raster order (default %(default)s)")
    group.add_argument("--black-level", default="0",
                       help="black level: one number, 4 comma-separated numbers in channel order, or "
                            "'auto' (estimated from the data, where the command has data) (default %(default)s)")
    group.add_argument("--white-level", default=f"{default.white_level:g}",
                       help="raw value that maps to 1.0, or 'auto'; the challenge divides by 4*255=1020 "
                            "(default %(default)s)")


def profile_from_args(args, estimate=None):
    """SensorProfile from the flags added by `add_profile_arguments`; `estimate` as in
    `sensor.profile_from_text` resolves 'auto' levels."""
    return sensor.profile_from_text(args.cfa, args.channel_order, args.black_level, args.white_level, estimate)


def run_check(args):
    """Handler of `isp data check`: exit 0 when clean, 2 when any file is bad."""
    def estimate(layout):
        pairs = [p for split in args.split or dataset.available_splits(args.root)
                 for p in dataset.scan_split(args.root, split)[0]]
        return levels.estimate_pairs(pairs, layout)

    report = check.check_dataset(args.root, profile_from_args(args, estimate), splits=args.split,
                                 progress=not args.json)
    print(json.dumps(report.to_dict(), indent=2) if args.json else check.format_report(report))
    return 0 if report.clean else 2


def add_commands(subparsers):
    """Register the `data` command group."""
    from data import default_data, synth

    parser = subparsers.add_parser("data", help="check, synthesise and prepare datasets",
                                   description="Dataset tools for the UltraISP layout "
                                               "(<root>/<split>/mediatek_raw/<i>.png + fujifilm/<i>.png).")
    group = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    checker = group.add_parser(
        "check", help="validate a dataset folder",
        description="Count pairs per split, scan RAW values against the sensor profile, and list every "
                    "bad file with its reason. Exit 0 when clean, 2 otherwise.")
    checker.add_argument("root", help="dataset root folder (contains train/, val/, test/)")
    checker.add_argument("--split", action="append", choices=("train", "val", "test"),
                         help="check only this split (repeatable; default: every split on disk)")
    checker.add_argument("--json", action="store_true", help="print the report as JSON")
    add_profile_arguments(checker)
    checker.set_defaults(func=run_check)
    synth.add_command(group)
    default_data.add_command(group)
