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


def _affine_design(rgb):
    """[H, W, 3] -> float64 [H*W, 4]: the pixels with a constant 1 column (for an affine colour map)."""
    flat = np.asarray(rgb, np.float64).reshape(-1, 3)
    return np.concatenate([flat, np.ones((len(flat), 1))], axis=1)


def fit_colour_map(preds, targets):
    """The least-squares affine colour map (3x3 matrix plus offset, as float64 [4, 3]) taking every
    pixel of the images `preds` onto the same pixel of `targets` (lists of [H, W, 3] in [0, 1])."""
    design = np.concatenate([_affine_design(p) for p in preds])
    wanted = np.concatenate([np.asarray(t, np.float64).reshape(-1, 3) for t in targets])
    matrix, *_ = np.linalg.lstsq(design, wanted, rcond=None)
    return matrix


def apply_colour_map(pred, matrix):
    """`pred` [H, W, 3] through the affine colour map `matrix` [4, 3], clipped to [0, 1] -> float32."""
    return np.clip(_affine_design(pred) @ matrix, 0.0, 1.0).reshape(np.shape(pred)).astype(np.float32)


def colour_fit(pred, target):
    """`pred` [H, W, 3] in [0, 1] after the per-image least-squares affine colour map onto `target`
    (a 3x3 matrix plus offset fitted over every pixel), clipped to [0, 1] -> float32 [H, W, 3].

    An oracle (it looks at the target): it undoes whatever one global colour transform can (white
    balance, colour matrix, brightness) and leaves what is local (detail, noise, demosaicking, local
    tone), so PSNR(colour_fit(pred, target), target) - PSNR(pred, target) is the share of the error
    that a right global colour rendering would remove.
    """
    return apply_colour_map(pred, fit_colour_map([pred], [target]))


def colour_fit_psnr(pred, target):
    """PSNR in dB of `colour_fit(pred, target)` against `target` (see colour_fit; >= about psnr())."""
    return psnr(colour_fit(pred, target), target)


def psnr_ssim(pred, target):
    """(PSNR dB, SSIM) of one RGB pair [H, W, 3] float in [0, 1]."""
    return psnr(pred, target), ssim(pred, target)
