"""Reading and writing dataset images with OpenCV (16-bit safe; Pillow drops 16-bit RGB to 8-bit)."""
import os

import cv2
import numpy as np

from data.atomic import atomic_path
from data.errors import DataError


def _decode(path, flags):
    """Decode an image file with OpenCV; DataError naming the file when it is missing or corrupt."""
    try:
        buffer = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror}); check the path") from None
    image = cv2.imdecode(buffer, flags) if buffer.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt or truncated?); re-copy or remove it")
    return image


def read_raw_png(path):
    """One-channel uint16 Bayer mosaic PNG -> uint16 array [H, W].

    An 8-bit or multi-channel file is refused: that is not a sensor RAW dump.
    """
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16:
        raise DataError(f"{path}: RAW must be a 16-bit PNG, found {image.dtype} "
                        "(an 8-bit file lost the sensor's bit depth; export the RAW as uint16)")
    if image.ndim != 2:
        raise DataError(f"{path}: RAW must be a one-channel Bayer mosaic, found {image.shape[-1]} channels")
    return image


def read_rgb(path):
    """8-bit RGB target (PNG or JPEG) -> uint8 array [H, W, 3] in RGB order."""
    image = _decode(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise DataError(f"{path}: target must be 8-bit RGB, found {image.dtype}")
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise DataError(f"{path}: target must be a 3-channel RGB image, found shape {image.shape}")
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def write_png(path, image):
    """Atomically write a PNG: uint8/uint16 [H, W] mosaic or [H, W, 3] RGB (RGB order)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, image):
            raise DataError(f"{path}: could not write PNG; check the folder is writable")


def to_uint8(rgb):
    """Float RGB in [0, 1] (any shape) -> uint8 with rounding and clipping."""
    return np.clip(np.round(np.asarray(rgb, np.float32) * 255.0), 0, 255).astype(np.uint8)
