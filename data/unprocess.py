"""Unprocessing: sRGB photos -> plausible camera RAW mosaics (Brooks et al., CVPR 2019).

Every step approximately inverts one stage of a camera ISP, in reverse order: tone map, gamma,
colour correction, white balance and brightening, then the Bayer mosaic and sensor noise.
Images are float32 [H, W, 3] in [0, 1]; all randomness comes from a numpy Generator passed in.
"""
import numpy as np

from data.errors import DataError
from data.sensor import CELL_OFFSETS, denormalize, pack, unpack

# XYZ -> camera matrices of four real cameras (from the reference implementation).
XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
# Linear sRGB -> XYZ (D65).
RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])
RGB_INDEX = {"R": 0, "G": 1, "B": 2}


def _check_rgb(image):
    """Refuse anything that is not [H, W, 3]."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise DataError(f"unprocessing needs an RGB image [H, W, 3], got shape {image.shape}")


def camera_ccm(xyz2cam):
    """XYZ -> camera matrix [3, 3] of one camera -> linear-sRGB -> camera matrix [3, 3], rows summing to 1."""
    # Chain with sRGB -> XYZ to get sRGB -> camera.
    rgb2cam = np.asarray(xyz2cam, np.float64) @ RGB2XYZ
    # Normalise rows so that white stays white.
    return (rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)).astype(np.float32)


def random_ccm(rng):
    """Random linear-sRGB -> camera matrix [3, 3], rows summing to 1."""
    # A random convex combination of real cameras' XYZ -> camera matrices.
    weights = rng.uniform(1e-8, 1e8, size=(len(XYZ2CAMS), 1, 1))
    return camera_ccm((XYZ2CAMS * weights).sum(axis=0) / weights.sum())


INVERSE_RGB_GAIN = (0.8, 0.1)  # mean and sd of 1 / brightening gain (normal)
RED_GAIN_RANGE = (1.9, 2.4)    # uniform white-balance gain of the red channel
BLUE_GAIN_RANGE = (1.5, 1.9)   # uniform white-balance gain of the blue channel


def random_gains(rng):
    """Random (rgb_gain, red_gain, blue_gain): brightening and white balance of a camera ISP."""
    rgb_gain = 1.0 / rng.normal(*INVERSE_RGB_GAIN)
    red_gain = rng.uniform(*RED_GAIN_RANGE)
    blue_gain = rng.uniform(*BLUE_GAIN_RANGE)
    return float(rgb_gain), float(red_gain), float(blue_gain)


def typical_gains():
    """(rgb_gain, red_gain, blue_gain) at the centre of `random_gains`' distributions: what an ISP
    that knows the synthesis but not the frame would assume."""
    return (1.0 / INVERSE_RGB_GAIN[0], float(np.mean(RED_GAIN_RANGE)), float(np.mean(BLUE_GAIN_RANGE)))


def inverse_smoothstep(image):
    """Approximately invert the global tone map y = 3x^2 - 2x^3; any shape, values in [0, 1]."""
    image = np.clip(image, 0.0, 1.0)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * image) / 3.0)).astype(np.float32)


def gamma_expansion(image):
    """Invert the gamma curve: x^2.2 (clamped away from 0); any shape, values in [0, 1]."""
    return (np.maximum(image, 1e-8) ** 2.2).astype(np.float32)


def apply_ccm(image, ccm):
    """Multiply every pixel of [H, W, 3] by the colour matrix [3, 3] (out = ccm @ pixel)."""
    _check_rgb(image)
    return (image @ np.asarray(ccm, np.float32).T).astype(np.float32)


def safe_invert_gains(image, rgb_gain, red_gain, blue_gain):
    """Undo white balance and brightening on [H, W, 3], sparing near-white highlights."""
    _check_rgb(image)
    gains = np.array([1.0 / red_gain, 1.0, 1.0 / blue_gain], np.float32) / np.float32(rgb_gain)
    # Smoothly keep gains near 1 where the pixel is almost saturated, so highlights stay white.
    gray = image.mean(axis=-1, keepdims=True)
    inflection = 0.9
    mask = (np.maximum(gray - inflection, 0.0) / (1.0 - inflection)) ** 2.0
    safe_gains = np.maximum(mask + (1.0 - mask) * gains, gains)
    return (image * safe_gains).astype(np.float32)


def mosaic(image, profile):
    """Sample [H, W, 3] through the profile's CFA -> Bayer mosaic [H, W] (H and W even)."""
    _check_rgb(image)
    h, w, _ = image.shape
    if h % 2 or w % 2:
        raise DataError(f"a Bayer mosaic needs even height and width, got {h}x{w}")
    out = np.empty((h, w), dtype=image.dtype)
    for (r, c), colour in zip(CELL_OFFSETS, profile.cfa):
        out[r::2, c::2] = image[r::2, c::2, RGB_INDEX[colour]]
    return out


def random_noise_levels(rng):
    """Random (shot, read) noise variances of a real sensor at some ISO, in [0, 1] units."""
    # Shot noise is log-uniform over the range seen in real cameras.
    log_shot = rng.uniform(np.log(1e-4), np.log(0.012))
    # Read noise follows a fitted line in log space, with Gaussian scatter.
    log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
    return float(np.exp(log_shot)), float(np.exp(log_read))


def add_noise(rng, image, shot_noise=0.01, read_noise=0.0005):
    """Heteroscedastic Gaussian noise: variance = image * shot + read; any shape, linear values."""
    variance = np.maximum(image, 0.0) * shot_noise + read_noise
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.sqrt(variance).astype(np.float32)
    return (image + noise).astype(np.float32)


def unprocess_to_raw(rgb, rng, profile, noise=True, rgb2cam=None):
    """sRGB float [H, W, 3] in [0, 1] (H, W even) -> uint16 Bayer mosaic [H, W] in [0, white level].

    The mosaic follows `profile`'s CFA, carries its black level(s) and is quantised to its
    white level, like a sensor dump on disk. `rgb2cam`: a fixed linear-sRGB -> camera matrix
    [3, 3] (one camera), or None for a random camera per call (`random_ccm`).
    """
    _check_rgb(rgb)
    if profile.white_level > np.iinfo(np.uint16).max:
        raise DataError(f"white level {profile.white_level} does not fit a uint16 RAW file")
    rgb2cam = random_ccm(rng) if rgb2cam is None else np.asarray(rgb2cam, np.float32)
    rgb_gain, red_gain, blue_gain = random_gains(rng)
    # Approximately invert the global tone map.
    image = inverse_smoothstep(np.asarray(rgb, np.float32))
    # Invert gamma compression.
    image = gamma_expansion(image)
    # Invert colour correction: linear sRGB -> camera RGB.
    image = apply_ccm(image, rgb2cam)
    # Invert white balance and brightening.
    image = safe_invert_gains(image, rgb_gain, red_gain, blue_gain)
    # Clip saturated pixels.
    image = np.clip(image, 0.0, 1.0)
    # Keep one colour per pixel, as the colour filter array does.
    linear = mosaic(image, profile)
    # Sensor noise, in linear units before the black level.
    if noise:
        linear = add_noise(rng, linear, *random_noise_levels(rng))
    # Scale to digital numbers on top of the black level, then quantise like the ADC.
    digital = unpack(denormalize(pack(linear, profile), profile), profile)
    return np.clip(np.round(digital), 0, profile.white_level).astype(np.uint16)
