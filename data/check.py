"""`isp data check`: validate a dataset folder before training.

Counts pairs per split, scans RAW values against the sensor profile and lists every bad file
with its reason (unreadable, missing partner, 8-bit RAW, size mismatch).
"""
import concurrent.futures
import dataclasses
import os

import numpy as np
from tqdm import tqdm

from data import dataset, image_io, levels, sensor
from data.errors import DataError

# Read noise puts some dark pixels below a correct black level (half of the truly black ones):
# only a larger share says the black level is set too high.
BELOW_BLACK_WARNING = 0.05


@dataclasses.dataclass
class CheckReport:
    """Result of `check_dataset`: counts, RAW value statistics, bad files, warnings."""

    root: str
    pairs_per_split: dict
    problems: list
    raw_min: int = None
    raw_max: int = None
    fraction_above_white: float = 0.0
    fraction_below_black: float = 0.0
    levels: dict = None  # data.levels.LevelEstimate.to_dict() of every readable RAW
    layout: str = ""     # the dataset layout found (dataset.Layout.describe())
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def clean(self):
        return not self.problems

    def to_dict(self):
        return {**dataclasses.asdict(self), "problems": [str(p) for p in self.problems],
                "clean": self.clean}


@dataclasses.dataclass
class _PairStats:
    """Per-pair RAW statistics, or the problems found reading the pair."""

    problems: list
    raw_min: int = None
    raw_max: int = None
    pixels: int = 0
    above_white: int = 0
    below_black: int = 0
    level_stats: levels.LevelStats = None


def _inspect_pair(pair, profile):
    """Read both files of `pair`, check them, and count RAW values outside [black, white]."""
    problems, mosaic, rgb = [], None, None
    try:
        mosaic = image_io.read_raw_png(pair.raw_path)
    except DataError as exc:
        problems.append(dataset.Problem(pair.raw_path, str(exc).split(": ", 1)[-1]))
    try:
        rgb = image_io.read_rgb(pair.rgb_path)
    except DataError as exc:
        problems.append(dataset.Problem(pair.rgb_path, str(exc).split(": ", 1)[-1]))
    if mosaic is None:
        return _PairStats(problems)
    if mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        problems.append(dataset.Problem(pair.raw_path, f"odd mosaic size {mosaic.shape[1]}x{mosaic.shape[0]}; "
                                                       "a Bayer mosaic needs even height and width"))
    if rgb is not None and rgb.shape[:2] != mosaic.shape:
        problems.append(dataset.Problem(
            pair.rgb_path, f"wrong size ratio: target {rgb.shape[1]}x{rgb.shape[0]} but RAW mosaic "
                           f"{mosaic.shape[1]}x{mosaic.shape[0]}; the target must be 2x the packed RAW"))
    black = profile.black_per_channel().min()
    even = mosaic[:mosaic.shape[0] // 2 * 2, :mosaic.shape[1] // 2 * 2]
    return _PairStats(problems, int(mosaic.min()), int(mosaic.max()), mosaic.size,
                      int(np.count_nonzero(mosaic > profile.white_level)),
                      int(np.count_nonzero(mosaic < black)), levels.LevelStats().add(sensor.pack(even, profile)))


def check_dataset(root, profile=sensor.CHALLENGE_PROFILE, splits=None, workers=None, progress=True, layout=None):
    """Check every pair under `root` (all splits on disk, or `splits`) and return a CheckReport.

    `layout` (a dataset.Layout) defaults to the one detected from the folder names."""
    layout = layout or dataset.detect_layout(root)
    splits = splits or dataset.available_splits(root, layout)
    report = CheckReport(root=os.fspath(root), pairs_per_split={}, problems=[], layout=layout.describe())
    all_pairs = []
    for split in splits:
        pairs, problems = dataset.scan_split(root, split, layout)
        report.pairs_per_split[split] = len(pairs)
        report.problems += problems
        all_pairs += pairs
    stats, level_stats = [], levels.LevelStats()
    with concurrent.futures.ThreadPoolExecutor(workers or dataset.io_workers()) as pool:
        jobs = pool.map(lambda p: _inspect_pair(p, profile), all_pairs)
        for result in tqdm(jobs, total=len(all_pairs), desc="checking pairs", unit="pair",
                           disable=not progress):
            report.problems += result.problems
            if result.level_stats is not None:
                level_stats.merge(result.level_stats)
                result.level_stats = None  # merged: keep only the small per-pair counts
            stats.append(result)
    _summarize_values(report, [s for s in stats if s.pixels], profile)
    if level_stats.pixels:
        estimate = level_stats.estimate(profile.channel_order)
        report.levels = estimate.to_dict()
        warning = levels.floor_warning(estimate, profile)
        if warning:
            report.warnings.append(warning)
    return report


def _summarize_values(report, stats, profile):
    """Fill value range fields and warnings of `report` from per-pair statistics."""
    if not stats:
        return
    pixels = sum(s.pixels for s in stats)
    report.raw_min = min(s.raw_min for s in stats)
    report.raw_max = max(s.raw_max for s in stats)
    report.fraction_above_white = sum(s.above_white for s in stats) / pixels
    report.fraction_below_black = sum(s.below_black for s in stats) / pixels
    if report.raw_max > profile.white_level:
        report.warnings.append(
            f"RAW values reach {report.raw_max}, above the white level {profile.white_level:g} "
            f"({report.fraction_above_white:.4%} of pixels clip); try --white-level "
            f"{levels.suggest_white_level(report.raw_max)}")
    if report.fraction_below_black > BELOW_BLACK_WARNING:
        report.warnings.append(
            f"{report.fraction_below_black:.4%} of RAW pixels sit below the black level "
            f"{max(profile.black_level):g} (minimum {report.raw_min}); check --black-level")
    if report.raw_max < profile.white_level / 4:
        report.warnings.append(
            f"RAW values never exceed {report.raw_max}, a quarter of the white level "
            f"{profile.white_level:g}; is the white level too high for this sensor?")


def format_report(report):
    """Human-readable multi-line summary of a CheckReport."""
    lines = [f"dataset {report.root}" + (f", layout {report.layout}" if report.layout else "")]
    lines += [f"  {split:5s}: {n} pairs" for split, n in report.pairs_per_split.items()]
    if report.raw_max is not None:
        lines.append(f"  RAW values: min {report.raw_min}, max {report.raw_max}")
    if report.levels is not None:
        found = report.levels
        black = ", ".join(f"{n} {b:.0f}" for n, b in zip(found["channel_order"], found["black"]))
        peaks = ", ".join(f"{n} {m}{' (clips)' if s else ''}" for n, m, s in
                          zip(found["channel_order"], found["maximum"], found["saturated"]))
        lines.append(f"  estimated black level per channel: {black}  (--black-level auto)")
        lines.append(f"  channel maxima: {peaks}; estimated white level {found['white_level']:g}  "
                     "(--white-level auto)")
    lines += [f"warning: {w}" for w in report.warnings]
    if report.problems:
        lines.append(f"{len(report.problems)} bad file(s):")
        lines += [f"  {p}" for p in report.problems]
    else:
        lines.append("clean: every pair is readable and consistent")
    return "\n".join(lines)
