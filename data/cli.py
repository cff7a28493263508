"""`isp data ...` subcommands, plus the sensor-profile flags other commands reuse.

All argparse code of data/ lives here; data/synth.py and data/default_data.py (imported by their
handlers, so `--help` stays quick) never import this module.
"""
import json

from data import check, dataset, levels, sensor
from data.default_data import CACHE_ENV
from data.errors import DataError


def add_profile_arguments(parser):
    """Add --cfa/--channel-order/--black-level/--white-level (defaults: the challenge convention)."""
    default = sensor.CHALLENGE_PROFILE
    group = parser.add_argument_group("sensor profile (defaults: UltraISP challenge convention)")
    group.add_argument("--cfa", default=default.cfa, choices=sensor.CFA_PATTERNS,
                       help="colour layout of the 2x2 Bayer cell in raster order (default %(default)s)")
    group.add_argument("--channel-order", default=",".join(default.channel_order),
                       help="order of the 4 packed channels, names R,Gb,Gr,B; Gb is the first green "
                            "of the cell in raster order (default %(default)s)")
    group.add_argument("--black-level", default=f"{default.black_level[0]:g}",
                       help="black level: one number, 4 comma-separated numbers in channel order, or "
                            "'auto' (estimated from the data, where the command has data) (default %(default)s)")
    group.add_argument("--white-level", default=f"{default.white_level:g}",
                       help="raw value that maps to 1.0, or 'auto'; the challenge divides by 4*255=1020 "
                            "(default %(default)s)")


def profile_from_args(args, estimate=None):
    """SensorProfile from the flags added by `add_profile_arguments`; `estimate` as in
    `sensor.profile_from_text` resolves 'auto' levels."""
    return sensor.profile_from_text(args.cfa, args.channel_order, args.black_level, args.white_level, estimate)


def add_layout_arguments(parser):
    """Add --raw-dir/--rgb-dir: the folders of a paired layout that is neither UltraISP nor Zurich."""
    group = parser.add_argument_group("dataset layout (default: UltraISP or Zurich RAW-to-RGB, from the folder names)")
    group.add_argument("--raw-dir", default="", metavar="NAME",
                       help="RAW folder inside each split of another paired layout: <root>/<split>/NAME/<i>.png")
    group.add_argument("--rgb-dir", default="", metavar="NAME",
                       help="RGB target folder inside each split, files index-matched to --raw-dir")


def run_check(args):
    """Handler of `isp data check`: exit 0 when clean, 2 when any file is bad."""
    layout = dataset.detect_layout(args.root, args.raw_dir, args.rgb_dir)

    def estimate(cfa_layout):
        pairs = [p for split in args.split or dataset.available_splits(args.root, layout)
                 for p in dataset.scan_split(args.root, split, layout)[0]]
        return levels.estimate_pairs(pairs, cfa_layout)

    report = check.check_dataset(args.root, profile_from_args(args, estimate), splits=args.split,
                                 progress=not args.json, layout=layout)
    print(json.dumps(report.to_dict(), indent=2) if args.json else check.format_report(report))
    return 0 if report.clean else 2


def run_synth(args):
    """Handler of `isp data synth`: synthesise a dataset and print where it went."""
    from data import synth

    val = args.val_fraction
    if not 0.0 <= val < 1.0:
        raise DataError(f"--val-fraction must be in [0, 1), got {val}")
    manifest = synth.synthesize_dataset(args.photos, args.out, args.count, patch=args.patch, seed=args.seed,
                                        splits={"train": 1.0 - val, "val": val}, profile=profile_from_args(args))
    counts = " + ".join(f"{n} {split}" for split, n in manifest["pairs"].items() if n)
    print(f"wrote {counts} pairs to {args.out}")
    return 0


def run_prepare_default(args):
    """Handler of `isp data prepare-default`: build (or find) the default dataset and print its path."""
    from data import default_data

    print(default_data.ensure_default_data(force=args.force))
    return 0


def _add_synth(group):
    parser = group.add_parser(
        "synth", help="make RAW/RGB training pairs from ordinary photos (unprocessing)",
        description="Unprocess ordinary sRGB photos into synthetic Bayer RAW mosaics (Brooks et al. 2019) "
                    "and write RAW/target pairs in the UltraISP layout: "
                    "<out>/<split>/mediatek_raw/<i>.png and <out>/<split>/fujifilm/<i>.png.")
    parser.add_argument("--photos", required=True, help="folder of .jpg/.jpeg/.png/.tif colour photos")
    parser.add_argument("--out", required=True, help="dataset root to write (train/ and val/ inside)")
    parser.add_argument("--count", type=int, required=True, help="number of pairs over all splits")
    parser.add_argument("--patch", type=int, default=256,
                        help="crop size in pixels, even (default 256: RAW 256x256 -> packed 128x128x4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of pairs and photos for val/ (default 0.1; 0 writes train/ only)")
    add_profile_arguments(parser)
    parser.set_defaults(func=run_synth)


def _add_prepare_default(group):
    parser = group.add_parser(
        "prepare-default", help="build the built-in default dataset and print its path",
        description="Synthesise the built-in default dataset (RAW/RGB pairs unprocessed from the natural "
                    "colour photos bundled with scikit-image and matplotlib; train and val from different "
                    "scenes, plus a cross-sensor val) into "
                    f"${CACHE_ENV} (default ~/.cache/mobile-isp) and print its path. Does nothing when it "
                    "is already complete.")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete copy exists")
    parser.set_defaults(func=run_prepare_default)


def add_commands(subparsers):
    """Register the `data` command group."""
    parser = subparsers.add_parser("data", help="check, synthesise and prepare datasets",
                                   description="Dataset tools. Layouts: UltraISP (<root>/<split>/mediatek_raw/<i>.png "
                                               "+ fujifilm/<i>.png), Zurich RAW-to-RGB (<root>/{train,test}/"
                                               "huawei_raw/<i>.png + canon/<i>.jpg), or any paired layout "
                                               "named by --raw-dir/--rgb-dir.")
    group = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    checker = group.add_parser(
        "check", help="validate a dataset folder",
        description="Count pairs per split, scan RAW values against the sensor profile, and list every "
                    "bad file with its reason. Exit 0 when clean, 2 otherwise.")
    checker.add_argument("root", help="dataset root folder (contains train/, val/, test/)")
    checker.add_argument("--split", action="append", choices=("train", "val", "test"),
                         help="check only this split (repeatable; default: every split on disk)")
    checker.add_argument("--json", action="store_true", help="print the report as JSON")
    add_layout_arguments(checker)
    add_profile_arguments(checker)
    checker.set_defaults(func=run_check)
    _add_synth(group)
    _add_prepare_default(group)
