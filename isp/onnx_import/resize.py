"""Map an ONNX Resize (mode, coordinate_transformation_mode, nearest_mode, scale) onto TFLite's
RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR flags (align_corners, half_pixel_centers), exactly.

Both sides are written down as the source coordinate (linear) or source index (nearest) of every
output pixel; a mapping is chosen only when it gives the same sources for every input length
1..MAX_CHECKED_LENGTH whose output is at least 2 pixels long at the given scale, so no approximation can
slip through (a 1-pixel output, where pytorch_half_pixel differs by definition, is not an ISP's case).
"""
import math

import numpy as np

TFLITE_FLAGS = ((False, True), (False, False), (True, False))  # (align_corners, half_pixel_centers)
MAX_CHECKED_LENGTH = 24


def onnx_source(out_len, in_len, scale, coordinate_mode, mode, nearest_mode="round_prefer_floor"):
    """ONNX's source coordinates (linear, clamped to [0, in_len - 1]) or indices (nearest) of each output."""
    o = np.arange(out_len, dtype=np.float64)
    if coordinate_mode == "half_pixel":
        x = (o + 0.5) / scale - 0.5
    elif coordinate_mode == "pytorch_half_pixel":
        x = (o + 0.5) / scale - 0.5 if out_len > 1 else np.zeros_like(o)
    elif coordinate_mode == "align_corners":
        x = o * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros_like(o)
    elif coordinate_mode == "asymmetric":
        x = o / scale
    elif coordinate_mode == "tf_half_pixel_for_nn":
        x = (o + 0.5) / scale
    else:
        return None
    if mode == "linear":
        return np.clip(x, 0, in_len - 1)
    rounding = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}.get(nearest_mode)
    return None if rounding is None else np.clip(rounding(x), 0, in_len - 1).astype(np.int64)


def tflite_source(out_len, in_len, mode, align_corners, half_pixel_centers):
    """TFLite's source coordinates (bilinear, clamped) or indices (nearest) of each output pixel."""
    o = np.arange(out_len, dtype=np.float64)
    ratio = (in_len - 1) / (out_len - 1) if align_corners and out_len > 1 else in_len / out_len
    if mode == "linear":
        x = (o + 0.5) * ratio - 0.5 if half_pixel_centers else o * ratio
        return np.clip(x, 0, in_len - 1)
    if align_corners:
        x = np.floor(o * ratio + 0.5)  # TfLiteRound: half away from zero, all values >= 0 here
    else:
        x = np.floor((o + (0.5 if half_pixel_centers else 0.0)) * ratio)
    return np.clip(x, 0, in_len - 1).astype(np.int64)


def tflite_flags(mode, coordinate_mode, nearest_mode, scale):
    """(align_corners, half_pixel_centers) that reproduce the ONNX mapping at `scale`, or None.

    mode: "linear" or "nearest"; scale: output/input length ratio (the same for every length).
    """
    lengths = [n for n in range(1, MAX_CHECKED_LENGTH + 1)
               if math.isclose(n * scale, round(n * scale)) and round(n * scale) >= 2]
    if mode not in ("linear", "nearest") or not lengths:
        return None
    for flags in TFLITE_FLAGS:
        same = True
        for in_len in lengths:
            out_len = int(round(in_len * scale))
            want = onnx_source(out_len, in_len, scale, coordinate_mode, mode, nearest_mode)
            if want is None or not np.allclose(want, tflite_source(out_len, in_len, mode, *flags), atol=1e-9):
                same = False
                break
        if same:
            return flags
    return None
