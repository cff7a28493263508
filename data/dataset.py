"""Paired RAW/RGB dataset readers: pairs RAW mosaics with RGB targets by index.

Layouts, found from the folder names under each split (`detect_layout`):
    UltraISP (REFERENCE.md §1)  <root>/{train,val,test}/mediatek_raw/<i>.png + fujifilm/<i>.png|jpg
    Zurich RAW-to-RGB           <root>/{train,test}/huawei_raw/<i>.png + canon/<i>.jpg; its test/ is
                                read as val when val/ is absent
    any other (custom)          <root>/{train,val,test}/<raw_dir>/<i>.png + <rgb_dir>/<i>.png|jpg, named
                                by --raw-dir / --rgb-dir
RAW files are one-channel uint16 PNG Bayer mosaics; targets 8-bit RGB of the mosaic's height and width.
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
class Layout:
    """Where a dataset keeps its pairs: <root>/<split>/<raw_dir>/<i>.png and <rgb_dir>/<i>.png|jpg."""

    name: str
    raw_dir: str
    rgb_dir: str
    test_as_val: bool = False  # read test/ as val when val/ is absent (instead of splitting train)

    def describe(self):
        """One line for users: the layout's name and its folders."""
        return f"{self.name} ({self.raw_dir}/ + {self.rgb_dir}/)"


ULTRAISP = Layout("UltraISP", RAW_DIR, RGB_DIR)
ZURICH = Layout("Zurich RAW-to-RGB", "huawei_raw", "canon", test_as_val=True)
KNOWN_LAYOUTS = (ULTRAISP, ZURICH)


def custom_layout(raw_dir, rgb_dir):
    """The layout named by --raw-dir/--rgb-dir (both or neither); None when neither is given."""
    if not raw_dir and not rgb_dir:
        return None
    if not raw_dir or not rgb_dir:
        raise DataError("--raw-dir and --rgb-dir go together: name both folders of a split "
                        "(e.g. --raw-dir raw --rgb-dir rgb for <root>/train/raw/<i>.png + <root>/train/rgb/<i>.png)")
    for name in (raw_dir, rgb_dir):
        if os.sep in name or name in (".", ".."):
            raise DataError(f"--raw-dir/--rgb-dir {name!r}: give a folder name inside each split, not a path")
    known = next((k for k in KNOWN_LAYOUTS if (k.raw_dir, k.rgb_dir) == (raw_dir, rgb_dir)), None)
    return known or Layout("custom", raw_dir, rgb_dir)


def detect_layout(root, raw_dir="", rgb_dir=""):
    """The Layout of the dataset at `root`: the one --raw-dir/--rgb-dir name, else the known layout whose
    RAW folder a split holds. DataError when the folder is missing or matches no layout."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: dataset folder not found; pass --data with a dataset folder "
                        "(layouts: see 'Dataset layout' in the README)")
    layout = custom_layout(raw_dir, rgb_dir)
    if layout is not None:
        return layout
    for known in KNOWN_LAYOUTS:
        if any(os.path.isdir(os.path.join(root, s, known.raw_dir)) for s in SPLITS):
            return known
    expected = " or ".join(f"{root}/train/{k.raw_dir}/<i>.png + {root}/train/{k.rgb_dir}/<i>.png"
                           for k in KNOWN_LAYOUTS)
    raise DataError(f"{root}: no split folder found; expected {expected}, or name the folders of another "
                    "paired layout with --raw-dir NAME --rgb-dir NAME")


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


def scan_split(root, split, layout=None):
    """Pairs of one split plus a Problem for every RAW or RGB file without a partner.

    `layout` defaults to `detect_layout(root)`. Returns (pairs sorted by index, problems). Raises
    DataError when the split folder lacks the layout's RAW or RGB folder.
    """
    layout = layout or detect_layout(root)
    raw_dir = os.path.join(root, split, layout.raw_dir)
    rgb_dir = os.path.join(root, split, layout.rgb_dir)
    for folder in (raw_dir, rgb_dir):
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: folder missing; a split of the {layout.describe()} layout needs "
                            f"{layout.raw_dir}/ and {layout.rgb_dir}/ (see the dataset layouts in the README)")
    raws = _index_files(raw_dir, (".png",))
    rgbs = _index_files(rgb_dir, RGB_EXTENSIONS)
    pairs = [Pair(i, raws[i], rgbs[i]) for i in sorted(set(raws) & set(rgbs), key=_index_key)]
    problems = [Problem(raws[i], f"missing partner: no {layout.rgb_dir}/{i}.png or .jpg")
                for i in sorted(set(raws) - set(rgbs), key=_index_key)]
    problems += [Problem(rgbs[i], f"missing partner: no {layout.raw_dir}/{i}.png")
                 for i in sorted(set(rgbs) - set(raws), key=_index_key)]
    return pairs, problems


def available_splits(root, layout=None):
    """The split names present under `root` (folders with the layout's RAW folder inside)."""
    layout = layout or detect_layout(root)
    found = [s for s in SPLITS if os.path.isdir(os.path.join(root, s, layout.raw_dir))]
    if not found:
        raise DataError(f"{root}: no split folder found; expected {root}/train/{layout.raw_dir}/<i>.png "
                        f"and {root}/train/{layout.rgb_dir}/<i>.png")
    return found


def load_splits(root, val_fraction=0.1, seed=0, raw_dir="", rgb_dir=""):
    """{"train": [Pair], "val": [Pair], ...}: every split on disk. If `val` is absent: the Zurich layout
    reads test/ as val; others hold out a deterministic `val_fraction` of train (shuffled by `seed`).

    `raw_dir`/`rgb_dir` name the folders of a custom layout (default: detected from the folder names).
    Pairs with a missing partner are left out (see `scan_split` for the list).
    """
    layout = detect_layout(root, raw_dir, rgb_dir)
    splits = {name: scan_split(root, name, layout)[0] for name in available_splits(root, layout)}
    if "val" not in splits and layout.test_as_val and "test" in splits:
        splits["val"] = splits["test"]
    elif "val" not in splits and "train" in splits:
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
