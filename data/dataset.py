"""UltraISP-layout dataset reader: pairs RAW mosaics with RGB targets by index.

Layout (REFERENCE.md §1):
    <root>/<split>/mediatek_raw/<i>.png   one-channel uint16 Bayer mosaic
    <root>/<split>/fujifilm/<i>.png|jpg   8-bit RGB target, same height and width as the mosaic
"""
import dataclasses
import os
import random

import numpy as np

from data import image_io, sensor
from data.errors import DataError

RAW_DIR = "mediatek_raw"
RGB_DIR = "fujifilm"
SPLITS = ("train", "val", "test")
RGB_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One training example on disk: index, RAW mosaic path, RGB target path."""

    index: str
    raw_path: str
    rgb_path: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file that cannot be used, and why (the message a user sees)."""

    path: str
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


def io_workers():
    """Threads for reading image files in parallel (decoding releases the GIL): 2 per core, at most 8."""
    return min(8, (os.cpu_count() or 1) * 2)


def _index_files(folder, extensions):
    """{index: path} of files in `folder` whose extension is in `extensions` (lower-case)."""
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions and not name.startswith("."):
            found.setdefault(stem, os.path.join(folder, name))
    return found


def _index_key(index):
    """Sort numeric indices numerically (2 before 10), others alphabetically after them."""
    return (0, int(index), "") if index.isdigit() else (1, 0, index)


def scan_split(root, split):
    """Pairs of one split plus a Problem for every RAW or RGB file without a partner.

    Returns (pairs sorted by index, problems). Raises DataError when the split folder lacks
    `mediatek_raw/` or `fujifilm/`.
    """
    raw_dir = os.path.join(root, split, RAW_DIR)
    rgb_dir = os.path.join(root, split, RGB_DIR)
    for folder in (raw_dir, rgb_dir):
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: folder missing; a split needs {RAW_DIR}/ and {RGB_DIR}/ "
                            "(see the dataset layout in the README)")
    raws = _index_files(raw_dir, (".png",))
    rgbs = _index_files(rgb_dir, RGB_EXTENSIONS)
    pairs = [Pair(i, raws[i], rgbs[i]) for i in sorted(set(raws) & set(rgbs), key=_index_key)]
    problems = [Problem(raws[i], f"missing partner: no {RGB_DIR}/{i}.png or .jpg")
                for i in sorted(set(raws) - set(rgbs), key=_index_key)]
    problems += [Problem(rgbs[i], f"missing partner: no {RAW_DIR}/{i}.png")
                 for i in sorted(set(rgbs) - set(raws), key=_index_key)]
    return pairs, problems


def available_splits(root):
    """The split names present under `root` (folders with a mediatek_raw/ inside)."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: dataset folder not found; pass --data with an UltraISP-layout folder")
    found = [s for s in SPLITS if os.path.isdir(os.path.join(root, s, RAW_DIR))]
    if not found:
        raise DataError(f"{root}: no split folder found; expected {root}/train/{RAW_DIR}/<i>.png "
                        f"and {root}/train/{RGB_DIR}/<i>.png")
    return found


def load_splits(root, val_fraction=0.1, seed=0):
    """{"train": [Pair], "val": [Pair], ...}: every split on disk; if `val` is absent, a
    deterministic `val_fraction` of train (shuffled by `seed`) becomes val.

    Pairs with a missing partner are left out (see `scan_split` for the list).
    """
    splits = {name: scan_split(root, name)[0] for name in available_splits(root)}
    if "val" not in splits and "train" in splits:
        splits["train"], splits["val"] = split_train(splits["train"], val_fraction, seed)
    return splits


def split_train(pairs, val_fraction, seed):
    """Deterministic (train, val) split of `pairs`: the same seed always gives the same split."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val fraction must be between 0 and 1, got {val_fraction}")
    order = list(pairs)
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(order) * val_fraction))) if len(order) > 1 else 0
    val = sorted(order[:n_val], key=lambda p: _index_key(p.index))
    train = sorted(order[n_val:], key=lambda p: _index_key(p.index))
    return train, val


def read_pair(pair, profile=sensor.CHALLENGE_PROFILE):
    """Read one pair as stored -> (packed raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3]).

    Raises DataError naming the file for a corrupt file, an 8-bit RAW, or a size mismatch.
    """
    mosaic = image_io.read_raw_png(pair.raw_path)
    rgb = image_io.read_rgb(pair.rgb_path)
    if rgb.shape[:2] != mosaic.shape:
        raise DataError(f"{pair.rgb_path}: size {rgb.shape[1]}x{rgb.shape[0]} does not match RAW "
                        f"{mosaic.shape[1]}x{mosaic.shape[0]}; the target must be 2x the packed RAW "
                        "(same size as the mosaic)")
    try:
        return sensor.pack(mosaic, profile), rgb
    except DataError as exc:
        raise DataError(f"{pair.raw_path}: {exc}") from None


def load_pair(pair, profile=sensor.CHALLENGE_PROFILE):
    """Read one pair -> (raw float32 [h, w, 4] in [0, 1], rgb float32 [2h, 2w, 3] in [0, 1])."""
    packed, rgb = read_pair(pair, profile)
    return sensor.normalize(packed, profile), rgb.astype(np.float32) / 255.0
