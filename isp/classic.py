"""A classical (non-learned) ISP: the pipeline a phone would otherwise run, as the evaluation baseline.

Steps, on a packed RAW frame already black-level corrected and scaled to [0, 1] by
`data.sensor.normalize` (every reader in the toolkit does that with the sensor profile):

1. white balance by the gray-world assumption (mean R = mean G = mean B);
2. OpenCV bilinear demosaicing of the Bayer mosaic;
3. a fixed camera-RGB -> linear-sRGB colour matrix, CAMERA_TO_SRGB;
4. the sRGB transfer curve (gamma).

CAMERA_TO_SRGB is a "typical camera" matrix: the inverse of the mean linear-sRGB -> camera matrix
of the four real cameras that the RAW synthesis (`data.unprocess`, Brooks et al. 2019) draws from,
with rows normalised so white stays white. Its value (rows sum to 1):

    [[ 1.6215, -0.5658, -0.0558],
     [-0.1820,  1.4761, -0.2941],
     [ 0.0228, -0.4260,  1.4031]]
"""
import cv2
import numpy as np

from data.sensor import unpack
from data.unprocess import RGB2XYZ, XYZ2CAMS
from isp.errors import ISPError

# OpenCV names a Bayer pattern by the colours at row 1, columns 1-2 (the second row, second and
# third pixels), not by the top-left 2x2 cell: an RGGB sensor is OpenCV's "BG".
OPENCV_BAYER = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
                "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}
UINT16_MAX = 65535.0
GRAY_WORLD_FLOOR = 1e-4  # channel means below this (a black frame) get no white-balance gain


def _typical_camera_to_srgb():
    """[3, 3] camera RGB -> linear sRGB: inverse of the mean sRGB -> camera matrix, rows sum to 1."""
    rgb2cam = XYZ2CAMS.mean(axis=0) @ RGB2XYZ
    rgb2cam /= rgb2cam.sum(axis=-1, keepdims=True)
    return np.linalg.inv(rgb2cam).astype(np.float32)


CAMERA_TO_SRGB = _typical_camera_to_srgb()


def _check_packed(raw_packed):
    if raw_packed.ndim != 3 or raw_packed.shape[-1] != 4:
        raise ISPError(f"the classic ISP needs a packed RAW frame [h, w, 4], got shape {raw_packed.shape}")


def _channel(raw_packed, profile, name):
    """One packed channel [h, w] by name ("R", "Gb", "Gr", "B")."""
    return raw_packed[..., profile.channel_order.index(name)]


def gray_world_gains(raw_packed, profile):
    """White-balance gains float32 [4] in channel order: G/R for R, 1 for greens, G/B for B.

    raw_packed: [h, w, 4] float in [0, 1]. Gray world: the scene averages to gray.
    """
    _check_packed(raw_packed)
    means = {name: float(np.mean(_channel(raw_packed, profile, name), dtype=np.float64))
             for name in profile.channel_order}
    green = (means["Gb"] + means["Gr"]) / 2.0
    gain = {"R": green / means["R"] if means["R"] > GRAY_WORLD_FLOOR else 1.0, "Gb": 1.0, "Gr": 1.0,
            "B": green / means["B"] if means["B"] > GRAY_WORLD_FLOOR else 1.0}
    return np.array([gain[name] for name in profile.channel_order], np.float32)


def demosaic(mosaic, cfa):
    """OpenCV bilinear demosaicing: Bayer mosaic [H, W] float in [0, 1] -> RGB float32 [H, W, 3] in [0, 1]."""
    if cfa not in OPENCV_BAYER:
        raise ISPError(f"unknown CFA pattern {cfa!r}: use one of {', '.join(OPENCV_BAYER)}")
    # OpenCV demosaics 8- or 16-bit images only: quantise to 16 bits (finer than any sensor).
    mosaic16 = np.round(np.clip(mosaic, 0.0, 1.0) * UINT16_MAX).astype(np.uint16)
    return cv2.cvtColor(mosaic16, OPENCV_BAYER[cfa]).astype(np.float32) / np.float32(UINT16_MAX)


def srgb_gamma(linear):
    """The sRGB transfer curve: linear float (any shape) -> sRGB-encoded float32 in [0, 1]."""
    x = np.clip(linear, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def linear_srgb(raw_packed, profile, gains, ccm=CAMERA_TO_SRGB):
    """The linear part of the classical ISP: packed RAW [h, w, 4] float in [0, 1] -> linear sRGB
    float32 [2h, 2w, 3] (not clipped: the colour matrix may leave [0, 1]).

    gains: white-balance gains [4] in channel order; ccm: [3, 3] camera RGB -> linear sRGB matrix
    (out = ccm @ pixel).
    """
    _check_packed(raw_packed)
    # White balance on the RAW planes, clipping what the gains push past saturation.
    balanced = np.clip(raw_packed * np.asarray(gains, np.float32), 0.0, 1.0)
    # Back to the Bayer mosaic and demosaic it.
    rgb = demosaic(unpack(balanced, profile), profile.cfa)
    # Camera RGB -> linear sRGB.
    return rgb @ np.asarray(ccm, np.float32).T


def classic_isp(raw_packed, profile, ccm=CAMERA_TO_SRGB, gains=None):
    """Classical ISP: packed RAW [h, w, 4] float in [0, 1] -> sRGB float32 [2h, 2w, 3] in [0, 1].

    profile: the SensorProfile the frame was packed with (CFA and channel order).
    ccm: [3, 3] camera RGB -> linear sRGB matrix (out = ccm @ pixel).
    gains: white-balance gains [4] in channel order; None: gray world over `raw_packed`. Pass the
        whole frame's gains when running tile by tile, so every tile is balanced alike.
    """
    _check_packed(raw_packed)
    if gains is None:
        gains = gray_world_gains(raw_packed, profile)
    # Linear -> sRGB encoding.
    return srgb_gamma(linear_srgb(raw_packed, profile, gains, ccm))


def quick_preview(raw_packed, profile):
    """What the RAW looks like untouched: [h, w, 4] in [0, 1] -> RGB float32 [2h, 2w, 3] in [0, 1].

    Each packed pixel becomes a 2x2 block of (R, mean of the greens, B), gamma 1/2.2; no white
    balance, no colour matrix (hence the typical green cast of RAW data).
    """
    _check_packed(raw_packed)
    green = (_channel(raw_packed, profile, "Gb") + _channel(raw_packed, profile, "Gr")) / 2.0
    rgb = np.stack([_channel(raw_packed, profile, "R"), green, _channel(raw_packed, profile, "B")], axis=-1)
    rgb = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)
    return np.power(np.clip(rgb, 0.0, 1.0), 1.0 / 2.2).astype(np.float32)
