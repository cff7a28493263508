"""Black and white level estimation from RAW data, per packed channel (`--black-level auto`,
`--white-level auto`, and the levels `isp data check` reports).

Black: the DARK_PERCENTILE-th percentile of the means of BLOCK x BLOCK packed-pixel blocks of each
channel. Averaging a block cancels most of the read noise (which is symmetric around the black
level), and the darkest blocks of a dataset are shadows whose signal is nearly zero. Known biases
(measured on synthetic sensors with known levels): when a large share of the data is exactly black
(a sixth of every frame in one test) the percentile falls in the noise tail and reads up to about
1.5 block-noise sigmas low (5 DN at the strongest training noise, 1-2 DN typically); when the data
has no near-black content at all, it reads the darkest content (4-7 DN high on the built-in
cross-sensor val, whose two scenes have no true black; 0-2 DN high on the held-out nature photos).
Values clipped at 0 (black level 0) bias the mean upward by a fraction of the noise only.
White: a channel saturates when at least SATURATION_FRACTION of its pixels (and SATURATION_MIN_PIXELS)
sit exactly at its maximum (a clipping spike); the sensor's white level is the highest saturated channel's maximum
(one ADC clips every channel) and, when no channel saturates, the next common sensor white level
above the overall maximum (1023, 4095, 16383, 65535).
"""
import concurrent.futures
import dataclasses

import numpy as np

from data import dataset, sensor
from data.errors import DataError

BLOCK = 4                  # packed pixels per block side (8 x 8 mosaic pixels)
DARK_PERCENTILE = 0.2      # percent of blocks darker than the black estimate
SATURATION_FRACTION = 1e-4
SATURATION_MIN_PIXELS = 8  # and at least this many pixels at the maximum
COMMON_WHITE_LEVELS = (1023, 4095, 16383, 65535)
FLOOR_WARNING_FRACTION = 0.02  # dark floor this share of the span above the black level: warn
DEFAULT_MAX_PAIRS = 256
FLOOR_CHECK_PAIRS = 64  # pairs read for the dark-floor warning when the levels are given


def suggest_white_level(raw_max):
    """Smallest common sensor white level (10/12/14/16-bit) that is >= raw_max."""
    return next(level for level in COMMON_WHITE_LEVELS if level >= raw_max)


@dataclasses.dataclass(frozen=True)
class LevelEstimate:
    """Estimated levels in raw digital numbers, one per packed channel (in `channel_order`)."""

    channel_order: tuple
    black: tuple
    maximum: tuple
    saturated: tuple
    pixels: int

    def black_text(self):
        """The black levels as the flag text "b0,b1,b2,b3" (rounded to whole numbers)."""
        return ",".join(f"{round(b):d}" for b in self.black)

    def white_level(self):
        """The sensor's white level: the highest saturated channel's maximum, else the next common level."""
        clipped = [m for m, s in zip(self.maximum, self.saturated) if s]
        return float(max(clipped)) if clipped else float(suggest_white_level(int(max(self.maximum))))

    def to_dict(self):
        return {"channel_order": list(self.channel_order), "black": [round(b, 2) for b in self.black],
                "maximum": [int(m) for m in self.maximum], "saturated": list(self.saturated),
                "white_level": self.white_level(), "pixels": self.pixels}

    def describe(self):
        """One line such as "black B 64, Gb 64, R 63, Gr 64; white 1023 (saturated: B, Gb, R, Gr)"."""
        black = ", ".join(f"{name} {b:.0f}" for name, b in zip(self.channel_order, self.black))
        clipped = ", ".join(n for n, s in zip(self.channel_order, self.saturated) if s) or "none, next common level"
        return f"black {black}; white {self.white_level():.0f} (saturated: {clipped})"


class LevelStats:
    """Running statistics of packed RAW channels: a histogram of block means, maxima, count at maxima."""

    def __init__(self):
        self.block_hist = np.zeros((4, 1), np.int64)  # [4, levels]: grows to the largest block mean
        self.max = np.zeros(4, np.int64)
        self.at_max = np.zeros(4, np.int64)
        self.pixels = 0

    def add(self, packed):
        """Accumulate one packed RAW [h, w, 4] of raw digital numbers (uint16); returns self."""
        if packed.ndim != 3 or packed.shape[-1] != 4:
            raise DataError(f"level statistics need packed RAW [h, w, 4], got shape {packed.shape}")
        h, w = (packed.shape[0] // BLOCK) * BLOCK, (packed.shape[1] // BLOCK) * BLOCK
        if h and w:
            blocks = packed[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, 4).mean(axis=(1, 3), dtype=np.float64)
            means = np.rint(blocks.reshape(-1, 4)).astype(np.int64)
            self._add_hist(np.stack([np.bincount(means[:, k], minlength=means.max() + 1) for k in range(4)]))
        flat = packed.reshape(-1, 4)
        top = flat.max(axis=0).astype(np.int64)
        count = (flat == top).sum(axis=0)
        self.at_max = np.where(top > self.max, count, np.where(top == self.max, self.at_max + count, self.at_max))
        self.max = np.maximum(self.max, top)
        self.pixels += flat.shape[0]
        return self

    def _add_hist(self, hist):
        """Add a [4, n] block-mean histogram, growing ours to the longer of the two."""
        if hist.shape[1] > self.block_hist.shape[1]:
            self.block_hist = np.pad(self.block_hist, ((0, 0), (0, hist.shape[1] - self.block_hist.shape[1])))
        self.block_hist[:, :hist.shape[1]] += hist

    def merge(self, other):
        """Add another LevelStats into this one; returns self."""
        self._add_hist(other.block_hist)
        self.at_max = np.where(other.max > self.max, other.at_max,
                               np.where(other.max == self.max, self.at_max + other.at_max, self.at_max))
        self.max = np.maximum(self.max, other.max)
        self.pixels += other.pixels
        return self

    def estimate(self, channel_order):
        """LevelEstimate from the statistics; DataError when nothing was accumulated."""
        if not self.pixels or not self.block_hist.sum():
            raise DataError("no RAW pixels to estimate black and white levels from (images smaller than "
                            f"{2 * BLOCK}x{2 * BLOCK}?); give the levels explicitly")
        black = []
        for k in range(4):
            cumulative = np.cumsum(self.block_hist[k])
            black.append(float(np.searchsorted(cumulative, cumulative[-1] * DARK_PERCENTILE / 100.0)))
        saturated = tuple(bool(n >= max(SATURATION_FRACTION * self.pixels, SATURATION_MIN_PIXELS)) for n in self.at_max)
        return LevelEstimate(tuple(channel_order), tuple(black), tuple(int(m) for m in self.max), saturated,
                             self.pixels)


def estimate_mosaic(mosaic, profile=sensor.CHALLENGE_PROFILE):
    """LevelEstimate of one Bayer mosaic [H, W] (uint16), packed with `profile`'s CFA and channel order."""
    return LevelStats().add(sensor.pack(mosaic, profile)).estimate(profile.channel_order)


def _pair_stats(pair, profile):
    """LevelStats of one pair's RAW, or None when the file is unreadable (others report those)."""
    try:
        packed, _ = dataset.read_pair(pair, profile)
    except DataError:
        return None
    return LevelStats().add(packed)


def estimate_pairs(pairs, profile=sensor.CHALLENGE_PROFILE, max_pairs=DEFAULT_MAX_PAIRS, workers=None):
    """LevelEstimate over the RAW files of `pairs` (at most `max_pairs`, spread evenly; bad pairs skipped)."""
    if not pairs:
        raise DataError("no image pairs to estimate black and white levels from; check the dataset folder")
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int)]
    total = LevelStats()
    with concurrent.futures.ThreadPoolExecutor(workers or dataset.io_workers()) as pool:
        for stats in pool.map(lambda p: _pair_stats(p, profile), pairs):
            if stats is not None:
                total.merge(stats)
    return total.estimate(profile.channel_order)


def pairs_floor_warning(pairs, profile):
    """`floor_warning` for the RAWs of `pairs` (FLOOR_CHECK_PAIRS of them at most), else None."""
    return floor_warning(estimate_pairs(pairs, profile, max_pairs=FLOOR_CHECK_PAIRS), profile)


def floor_warning(estimate, profile):
    """A warning when the data's dark floor sits far above the profile's black level, else None."""
    black = profile.black_per_channel()
    gap = float((np.asarray(estimate.black) - black).max())
    if gap <= FLOOR_WARNING_FRACTION * (profile.white_level - float(black.max())):
        return None
    given = ",".join(f"{b:g}" for b in profile.black_level)
    return (f"the data's dark floor ({estimate.describe().split(';')[0]}) sits up to {gap:.0f} DN above "
            f"--black-level {given}: blacks will come out grey and colours washed out; pass "
            f"--black-level {estimate.black_text()} (or --black-level auto)")
