"""Sensor profiles and Bayer packing: mosaic [H, W] <-> packed [H/2, W/2, 4].

A profile says where each colour sits in the 2x2 CFA cell, in which order the four packed
channels are stacked, and how raw digital numbers map to [0, 1]:
`(raw - black) / (white - black)`.

Channel names: "R", "B", and the two greens "Gb" and "Gr". "Gb" is the first green of the 2x2
cell in raster order and "Gr" the second; on an RGGB sensor this reproduces the official
challenge scripts (`Gb = raw[0::2, 1::2]`, `Gr = raw[1::2, 0::2]`).
"""
import dataclasses

import numpy as np

from data import challenge
from data.errors import DataError

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
CHANNEL_NAMES = ("R", "Gb", "Gr", "B")
CELL_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))  # raster order inside the 2x2 cell


@dataclasses.dataclass(frozen=True)
class SensorProfile:
    """How to read one sensor's RAW mosaic.

    cfa: colour layout of the 2x2 cell in raster order, one of CFA_PATTERNS.
    channel_order: the four packed channel names, a permutation of CHANNEL_NAMES.
    black_level: one number, or four numbers in `channel_order`.
    white_level: the raw value that maps to 1.0 (the challenge divides by 4*255 = 1020).
    """

    cfa: str = challenge.CFA
    channel_order: tuple = challenge.CHANNEL_ORDER
    black_level: tuple = (challenge.BLACK_LEVEL,)
    white_level: float = challenge.WHITE_LEVEL

    def __post_init__(self):
        if self.cfa not in CFA_PATTERNS:
            raise DataError(f"unknown CFA pattern {self.cfa!r}: use one of {', '.join(CFA_PATTERNS)}")
        order = tuple(self.channel_order)
        if sorted(order) != sorted(CHANNEL_NAMES):
            raise DataError(f"channel order {order} must be a permutation of {CHANNEL_NAMES}")
        object.__setattr__(self, "channel_order", order)
        black = np.atleast_1d(np.asarray(self.black_level, dtype=np.float64))
        if black.size not in (1, 4):
            raise DataError(f"black level needs 1 or 4 values, got {black.size}")
        object.__setattr__(self, "black_level", tuple(float(b) for b in black))
        if not float(self.white_level) > float(black.max()):
            raise DataError(f"white level {self.white_level} must exceed the black level {black.max()}")
        object.__setattr__(self, "white_level", float(self.white_level))

    def channel_offsets(self):
        """[(row, col)] offset in the 2x2 cell of each packed channel, in channel order."""
        greens = [off for off, colour in zip(CELL_OFFSETS, self.cfa) if colour == "G"]
        position = {"Gb": greens[0], "Gr": greens[1]}
        for off, colour in zip(CELL_OFFSETS, self.cfa):
            if colour != "G":
                position[colour] = off
        return [position[name] for name in self.channel_order]

    def black_per_channel(self):
        """Black level as a float32 array of shape [4] in channel order."""
        return np.broadcast_to(np.asarray(self.black_level, np.float32), (4,)).copy()

    def to_dict(self):
        """Plain dict for config files and reports."""
        return {"cfa": self.cfa, "channel_order": list(self.channel_order),
                "black_level": list(self.black_level), "white_level": self.white_level}


CHALLENGE_PROFILE = SensorProfile()  # the defaults above: the challenge convention (data/challenge.py)


AUTO = "auto"


def is_auto(black_level, white_level):
    """True when either level text (flag or config value) asks for estimation ("auto")."""
    return AUTO in (str(black_level).strip().lower(), str(white_level).strip().lower())


def profile_from_text(cfa, channel_order, black_level, white_level, estimate=None):
    """SensorProfile from command-line/config text: channel_order "B,Gb,R,Gr", black_level "0",
    "62,60,58,61" or "auto", white_level "1020" or "auto" (DataError for anything else).

    `estimate(layout) -> data.levels.LevelEstimate` is called (once) when a level is "auto", with a
    profile that has the CFA and channel order; without it "auto" is an error.
    """
    order = tuple(str(channel_order).split(","))
    texts = {"black": str(black_level).strip().lower(), "white": str(white_level).strip().lower()}
    if is_auto(black_level, white_level):
        if estimate is None:
            raise DataError("--black-level/--white-level auto needs RAW data to estimate from, and this "
                            "command has none; give the levels as numbers")
        found = estimate(SensorProfile(cfa=cfa, channel_order=order))
        if texts["black"] == AUTO:
            texts["black"] = found.black_text()
        if texts["white"] == AUTO:
            texts["white"] = f"{found.white_level():g}"
    try:
        black = tuple(float(v) for v in texts["black"].split(","))
    except ValueError:
        raise DataError(f"black level {black_level!r}: expected one number, 4 comma-separated numbers "
                        "or auto") from None
    try:
        white = float(texts["white"])
    except ValueError:
        raise DataError(f"white level {white_level!r}: expected a number or auto") from None
    return SensorProfile(cfa=cfa, channel_order=order, black_level=black, white_level=white)


def pack(mosaic, profile=CHALLENGE_PROFILE):
    """Bayer mosaic [H, W] (any dtype, H and W even) -> packed [H/2, W/2, 4], same dtype."""
    if mosaic.ndim != 2:
        raise DataError(f"a Bayer mosaic has one channel, got shape {mosaic.shape}")
    h, w = mosaic.shape
    if h % 2 or w % 2:
        raise DataError(f"a Bayer mosaic needs even height and width, got {h}x{w}")
    return np.stack([mosaic[r::2, c::2] for r, c in profile.channel_offsets()], axis=-1)


def unpack(packed, profile=CHALLENGE_PROFILE):
    """Packed [h, w, 4] -> Bayer mosaic [2h, 2w], the exact inverse of `pack`."""
    if packed.ndim != 3 or packed.shape[-1] != 4:
        raise DataError(f"packed RAW must be [h, w, 4], got shape {packed.shape}")
    h, w, _ = packed.shape
    mosaic = np.empty((2 * h, 2 * w), dtype=packed.dtype)
    for k, (r, c) in enumerate(profile.channel_offsets()):
        mosaic[r::2, c::2] = packed[..., k]
    return mosaic


def _black_and_span(profile):
    """(black, white - black) as float32 arrays of shape [4] in channel order."""
    black = profile.black_per_channel()
    return black, np.float32(profile.white_level) - black


def normalize(packed, profile=CHALLENGE_PROFILE, xp=np):
    """Packed raw digital numbers [..., 4] -> float32 in [0, 1] (clipped) after black/white levels.

    The one mapping from RAW counts to model input in the toolkit. `xp` is the array namespace it
    runs in: numpy (default) for arrays, `tensorflow.experimental.numpy` for tensors in a tf.data
    graph (`data.pipeline.normalizer`); both give bit-identical float32 results.
    """
    black, span = _black_and_span(profile)
    return xp.clip((xp.asarray(packed, dtype=xp.float32) - black) / span, 0.0, 1.0)


def denormalize(normalized, profile=CHALLENGE_PROFILE):
    """Inverse of `normalize` for values in [0, 1]: float [h, w, 4] -> raw digital numbers (float32)."""
    black, span = _black_and_span(profile)
    return normalized.astype(np.float32) * span + black
