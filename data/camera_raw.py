"""Camera RAW files (DNG, CR2, NEF, ARW, ...) -> Bayer mosaic and sensor profile, through rawpy (LibRaw)."""
import os

import numpy as np
import rawpy

from data.errors import DataError
from data.sensor import CFA_PATTERNS, CHALLENGE_PROFILE, SensorProfile


def _cfa_of(raw, path):
    """2x2 colour-index cell of the visible image [2, 2] and its CFA name such as "RGGB"."""
    if raw.raw_pattern is None or raw.raw_pattern.shape != (2, 2):
        shape = None if raw.raw_pattern is None else raw.raw_pattern.shape
        raise DataError(f"{path}: not a 2x2 Bayer sensor (CFA cell {shape}, e.g. Fujifilm X-Trans or "
                        "a linear DNG); only Bayer RAW files can be read")
    # The visible area may start on an odd row/column: take the cell where the visible image starts.
    cell = np.asarray(raw.raw_colors_visible[:2, :2])
    desc = raw.color_desc.decode("ascii")
    cfa = "".join(desc[index] for index in cell.ravel())
    if cfa not in CFA_PATTERNS:
        raise DataError(f"{path}: CFA {cfa!r} is not an RGB Bayer pattern ({', '.join(CFA_PATTERNS)})")
    return cell, cfa


def read_camera_raw(path):
    """Camera RAW file -> (uint16 Bayer mosaic [H, W] with H, W even, SensorProfile).

    The mosaic is LibRaw's visible area, cropped to even size, in raw digital numbers. The
    profile carries the file's CFA, per-channel black level and white level, with the packed
    channels in the challenge order [B, Gb, R, Gr].
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: camera RAW file not found; check the path")
    try:
        with rawpy.imread(path) as raw:
            cell, cfa = _cfa_of(raw, path)
            mosaic = np.array(raw.raw_image_visible, dtype=np.uint16)
            # black_level_per_channel is indexed by colour index: look it up per cell position.
            black_by_index = np.asarray(raw.black_level_per_channel, np.float64)
            white = float(raw.white_level)
    except (rawpy.LibRawError, OSError) as exc:
        raise DataError(f"{path}: not a readable camera RAW file ({type(exc).__name__}); "
                        "check the path and that LibRaw supports this camera") from None
    black_cell = black_by_index[cell]
    order = CHALLENGE_PROFILE.channel_order
    layout = SensorProfile(cfa=cfa, channel_order=order)
    black = [black_cell[r, c] for r, c in layout.channel_offsets()]
    profile = SensorProfile(cfa=cfa, channel_order=order, black_level=black, white_level=white)
    h, w = mosaic.shape
    return mosaic[:h - h % 2, :w - w % 2], profile
