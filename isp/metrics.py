"""Image quality metrics computed the standard way: on uint8-range images (data range 255)."""
import numpy as np
from skimage.metrics import structural_similarity

from data.image_io import to_uint8


PSNR_CAP_DB = 100.0


def psnr(pred, target):
    """PSNR in dB of RGB images [H, W, 3] float in [0, 1] after rounding both to uint8 (range 255).

    Identical images give PSNR_CAP_DB instead of infinity, so means and JSON stay finite.
    """
    diff = to_uint8(pred).astype(np.float64) - to_uint8(target).astype(np.float64)
    mse = np.mean(diff ** 2)
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, float(10.0 * np.log10(255.0 ** 2 / mse)))


def ssim(pred, target):
    """SSIM of RGB images [H, W, 3] float in [0, 1], uint8 range, Gaussian 11x11 window, sigma 1.5."""
    return float(structural_similarity(to_uint8(pred), to_uint8(target), channel_axis=-1, data_range=255,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def colour_fit(pred, target):
    """`pred` [H, W, 3] in [0, 1] after the per-image least-squares affine colour map onto `target`
    (a 3x3 matrix plus offset fitted over every pixel), clipped to [0, 1] -> float32 [H, W, 3].

    An oracle (it looks at the target): it undoes whatever one global colour transform can (white
    balance, colour matrix, brightness) and leaves what is local (detail, noise, demosaicking, local
    tone), so PSNR(colour_fit(pred, target), target) - PSNR(pred, target) is the share of the error
    that a right global colour rendering would remove.
    """
    flat = np.asarray(pred, np.float64).reshape(-1, 3)
    design = np.concatenate([flat, np.ones((len(flat), 1))], axis=1)
    matrix, *_ = np.linalg.lstsq(design, np.asarray(target, np.float64).reshape(-1, 3), rcond=None)
    return np.clip(design @ matrix, 0.0, 1.0).reshape(np.shape(pred)).astype(np.float32)


def colour_fit_psnr(pred, target):
    """PSNR in dB of `colour_fit(pred, target)` against `target` (see colour_fit; >= about psnr())."""
    return psnr(colour_fit(pred, target), target)


def psnr_ssim(pred, target):
    """(PSNR dB, SSIM) of one RGB pair [H, W, 3] float in [0, 1]."""
    return psnr(pred, target), ssim(pred, target)
