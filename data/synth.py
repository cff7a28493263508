"""Synthetic RAW/RGB training pairs from ordinary photos, written in the UltraISP folder layout.

`<out>/<split>/mediatek_raw/<i>.png` holds a uint16 one-channel Bayer mosaic made by
unprocessing (data/unprocess.py); `<out>/<split>/fujifilm/<i>.png` holds the 8-bit sRGB crop it
came from (the target). Indices start at 0 in each split. `<out>/synth.json` is written last:
a folder without it is incomplete.

Splits are photo-disjoint: every photo feeds exactly one split, so validation crops never show
a scene seen in training.
"""
import json
import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from data.atomic import write_text
from data.dataset import RAW_DIR, RGB_DIR
from data.errors import DataError
from data.image_io import to_uint8, write_png
from data.sensor import SensorProfile
from data.unprocess import unprocess_to_raw

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
LOSSY_SUFFIXES = (".jpg", ".jpeg")
MANIFEST = "synth.json"


def _as_float_rgb(image, name):
    """uint8/uint16/float image -> float32 RGB [H, W, 3] in [0, 1]; None (with a warning) if grey."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] < 3:
        log.warning("%s: not a colour photo (shape %s), skipped", name, image.shape)
        return None
    image = image[..., :3]
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(image, 0.0, 1.0).astype(np.float32)
    raise DataError(f"{name}: unsupported pixel type {image.dtype}; use 8/16-bit or float in [0, 1]")


def _read_photo(path):
    """Photo file -> float32 RGB [H, W, 3] in [0, 1] (lossy JPEGs downscaled by 2), or None if grey."""
    try:
        buffer = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read photo ({exc.strerror}); check the path") from None
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt or truncated?); re-copy or remove it")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    image = _as_float_rgb(image, path)
    if image is not None and path.suffix.lower() in LOSSY_SUFFIXES:
        # Halve lossy sources: block artefacts and chroma subsampling shrink below one pixel.
        h, w, _ = image.shape
        image = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return image


class _PhotoSource:
    """Named photos, loaded lazily from files or held in memory: name -> float RGB [H, W, 3]."""

    def __init__(self, photos):
        if isinstance(photos, (str, os.PathLike)):
            folder = Path(photos)
            if not folder.is_dir():
                raise DataError(f"{folder}: photo folder not found; pass a folder of .jpg/.png/.tif files")
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
            if not files:
                raise DataError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)}) in this folder")
            self._loaders = {str(p): (lambda p=p: _read_photo(p)) for p in files}
        else:
            if not isinstance(photos, dict):
                photos = {f"photo-{k}": image for k, image in enumerate(photos)}
            self._loaders = {name: (lambda n=name, im=im: _as_float_rgb(im, n))
                             for name, im in photos.items()}

    def names(self):
        """Photo names in a fixed order."""
        return list(self._loaders)

    def load(self, name):
        """float32 RGB [H, W, 3] in [0, 1], or None for a photo that is not in colour."""
        return self._loaders[name]()


def _split_sizes(total, fractions, what):
    """Share `total` items (`what`: "photos"/"pairs") among splits; each split with a fraction > 0 gets one.

    The largest split takes what the others leave. DataError if `total` is too small.
    """
    if any(f < 0 for f in fractions.values()) or not math.isclose(sum(fractions.values()), 1.0):
        raise DataError(f"split fractions {fractions} must be >= 0 and sum to 1")
    active = sorted((name for name, f in fractions.items() if f > 0), key=lambda n: -fractions[n])
    sizes = {name: max(1, round(fractions[name] * total)) for name in active[1:]}
    sizes[active[0]] = total - sum(sizes.values())
    if sizes[active[0]] < 1:
        raise DataError(f"{total} usable {what} cannot fill the splits {active}: "
                        f"add more {what}, or drop a split (e.g. --val-fraction 0)")
    return {name: sizes.get(name, 0) for name in fractions}


def _usable_photos(source, patch):
    """Names of colour photos at least `patch` x `patch`; decodes each once (corrupt -> DataError)."""
    usable = []
    for name in source.names():
        image = source.load(name)
        if image is None:
            continue
        if min(image.shape[:2]) < patch:
            log.warning("%s: %dx%d is smaller than the %d-pixel patch, skipped",
                        name, image.shape[1], image.shape[0], patch)
            continue
        usable.append(name)
    return usable


def _make_pair(photo, rng, patch, profile):
    """Random flipped crop of RGB [H, W, 3] -> (uint16 mosaic [P, P], uint8 RGB [P, P, 3]), P = patch."""
    h, w, _ = photo.shape
    top = rng.integers(0, h - patch + 1)
    left = rng.integers(0, w - patch + 1)
    crop = photo[top:top + patch, left:left + patch]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    # The target is the 8-bit photo; the RAW is unprocessed from exactly those pixels.
    target = to_uint8(crop)
    raw = unprocess_to_raw(target.astype(np.float32) / 255.0, rng, profile)
    return raw, target


def synthesize_dataset(photos, out_root, count, patch=256, seed=0, splits=None,
                       profile=SensorProfile(), progress=True):
    """Write `count` synthetic pairs from `photos` into `out_root`; returns the manifest dict.

    photos: a folder of .jpg/.jpeg/.png/.tif files, a list of RGB arrays [H, W, 3] (float in
    [0, 1], or uint8/uint16), or a dict name -> array. splits: name -> fraction of pairs and of
    photos (default {"train": 0.9, "val": 0.1}). Deterministic for a seed, byte for byte.
    """
    splits = dict(splits or {"train": 0.9, "val": 0.1})
    if patch < 2 or patch % 2:
        raise DataError(f"patch must be a positive even number of pixels, got {patch}")
    if count < 1:
        raise DataError(f"count must be at least 1, got {count}")
    out_root = Path(out_root)
    if out_root.exists() and any(out_root.iterdir()):
        raise DataError(f"{out_root}: output folder is not empty; choose a new --out or delete it")
    source = _PhotoSource(photos)
    usable = _usable_photos(source, patch)
    if not usable:
        raise DataError(f"no usable photo: every photo is grey or smaller than {patch}x{patch}; "
                        "add larger colour photos or lower --patch")
    order = np.random.default_rng(seed).permutation(len(usable))
    photo_counts = _split_sizes(len(usable), splits, "photos")
    pair_counts = _split_sizes(count, splits, "pairs")
    assignment, start = {}, 0
    with tqdm(total=count, desc="synth", unit="pair", disable=not progress) as bar:
        for split_index, split in enumerate(splits):
            names = [usable[k] for k in order[start:start + photo_counts[split]]][:pair_counts[split]]
            start += photo_counts[split]
            assignment[split] = names
            for slot, name in enumerate(names):
                photo = source.load(name)
                # Pair i of this split comes from photo i mod len(names), with its own generator.
                for i in range(slot, pair_counts[split], len(names)):
                    rng = np.random.default_rng([seed, split_index, i])
                    raw, target = _make_pair(photo, rng, patch, profile)
                    write_png(out_root / split / RAW_DIR / f"{i}.png", raw)
                    write_png(out_root / split / RGB_DIR / f"{i}.png", target)
                    bar.update(1)
    manifest = {"format": 1, "seed": seed, "count": count, "patch": patch, "profile": profile.to_dict(),
                "pairs": pair_counts, "sources": assignment}
    write_text(out_root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(root):
    """The synth.json dict of a complete synthetic dataset, or None when absent or unreadable."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _handler(args):
    """`isp data synth`: synthesise a dataset and print where it went."""
    from data.cli import profile_from_args

    val = args.val_fraction
    if not 0.0 <= val < 1.0:
        raise DataError(f"--val-fraction must be in [0, 1), got {val}")
    manifest = synthesize_dataset(args.photos, args.out, args.count, patch=args.patch, seed=args.seed,
                                  splits={"train": 1.0 - val, "val": val}, profile=profile_from_args(args))
    counts = " + ".join(f"{n} {split}" for split, n in manifest["pairs"].items() if n)
    print(f"wrote {counts} pairs to {args.out}")
    return 0


def add_command(data_subparsers):
    """Register `synth` under the `isp data` group."""
    from data.cli import add_profile_arguments

    parser = data_subparsers.add_parser(
        "synth", help="make RAW/RGB training pairs from ordinary photos (unprocessing)",
        description="Unprocess ordinary sRGB photos into synthetic Bayer RAW mosaics (Brooks et al. 2019) "
                    "and write RAW/target pairs in the UltraISP layout: "
                    "<out>/<split>/mediatek_raw/<i>.png and <out>/<split>/fujifilm/<i>.png.")
    parser.add_argument("--photos", required=True, help="folder of .jpg/.jpeg/.png/.tif colour photos")
    parser.add_argument("--out", required=True, help="dataset root to write (train/ and val/ inside)")
    parser.add_argument("--count", type=int, required=True, help="number of pairs over all splits")
    parser.add_argument("--patch", type=int, default=256,
                        help="crop size in pixels, even (default 256: RAW 256x256 -> packed 128x128x4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of pairs and photos for val/ (default 0.1; 0 writes train/ only)")
    add_profile_arguments(parser)
    parser.set_defaults(func=_handler)
