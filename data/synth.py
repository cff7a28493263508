"""Synthetic RAW/RGB training pairs from ordinary photos, written in the UltraISP folder layout.

`<out>/<split>/mediatek_raw/<i>.png` holds a uint16 one-channel Bayer mosaic made by
unprocessing (data/unprocess.py); `<out>/<split>/fujifilm/<i>.png` holds the 8-bit sRGB crop it
came from (the target). Indices start at 0 in each split. `<out>/synth.json` is written last:
a folder without it is incomplete.

Splits are scene-disjoint: every photo (and every view of one scene, see `scene_of`) feeds exactly
one split, so validation crops never show a scene seen in training.
"""
import dataclasses
import json
import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from data.atomic import write_text
from data.dataset import RAW_DIR, RGB_DIR, load_splits
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
        image = downscale_lossy(image)
    return image


def downscale_lossy(image):
    """Halve a photo decoded from a lossy (JPEG) file: [H, W, C] -> [H/2, W/2, C], same dtype.

    Block artefacts and chroma subsampling shrink below one pixel, so the target is clean.
    """
    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


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


def scene_of(name):
    """The scene a photo shows: its name without a trailing "[...]" view tag (stereo pairs share one)."""
    return name.split("[", 1)[0]


def make_pair(photo, rng, patch, profile, rgb2cam=None):
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
    raw = unprocess_to_raw(target.astype(np.float32) / 255.0, rng, profile, rgb2cam=rgb2cam)
    return raw, target


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """What one split of a synthetic dataset holds: `count` pairs of `patch` x `patch` pixels cut
    from the photos `names` (pair i from photo i mod len(names))."""

    names: tuple
    count: int
    patch: int


def _check_output_folder(out_root):
    """`out_root` as a Path; DataError when it exists and is not empty (nothing is ever overwritten)."""
    out_root = Path(out_root)
    if out_root.exists() and any(out_root.iterdir()):
        raise DataError(f"{out_root}: output folder is not empty; choose a new --out or delete it")
    return out_root


def _check_patch(patch):
    """DataError unless `patch` is a positive even number of pixels (the mosaic needs whole 2x2 cells)."""
    if patch < 2 or patch % 2:
        raise DataError(f"patch must be a positive even number of pixels, got {patch}")


def assign_by_scene(names, fractions, seed):
    """{split: [photo names]}: whole scenes (see `scene_of`) shared among splits by `fractions`, so
    no scene appears in two splits. Deterministic for a seed; DataError if there are too few scenes."""
    scenes = sorted({scene_of(n) for n in names})
    order = np.random.default_rng(seed).permutation(len(scenes))
    sizes = _split_sizes(len(scenes), fractions, "scenes")
    assignment, start = {}, 0
    for split in fractions:
        chosen = {scenes[k] for k in order[start:start + sizes[split]]}
        start += sizes[split]
        assignment[split] = [n for n in names if scene_of(n) in chosen]
    return assignment


def synthesize_splits(photos, out_root, plans, seed=0, profile=SensorProfile(), rgb2cam=None, progress=True):
    """Write the splits `plans` = {split: SplitPlan} into `out_root`; returns the manifest dict.

    photos: as for `synthesize_dataset`. Every pair draws its own crop, flips, gains, noise and
    (unless `rgb2cam` fixes one camera [3, 3]) camera matrix from a generator seeded by
    (seed, split, index): deterministic byte for byte, and no two pairs share a camera.
    """
    out_root = _check_output_folder(out_root)
    source = _PhotoSource(photos)
    for split, plan in plans.items():
        _check_patch(plan.patch)
        unknown = set(plan.names) - set(source.names())
        if unknown or not plan.names:
            raise DataError(f"split {split!r}: no photos, or unknown photos {sorted(unknown)}")
    total = sum(plan.count for plan in plans.values())
    with tqdm(total=total, desc="synth", unit="pair", disable=not progress) as bar:
        for split_index, (split, plan) in enumerate(plans.items()):
            names = list(plan.names)[:plan.count]
            for slot, name in enumerate(names):
                photo = source.load(name)
                for i in range(slot, plan.count, len(names)):
                    rng = np.random.default_rng([seed, split_index, i])
                    raw, target = make_pair(photo, rng, plan.patch, profile, rgb2cam)
                    write_png(out_root / split / RAW_DIR / f"{i}.png", raw)
                    write_png(out_root / split / RGB_DIR / f"{i}.png", target)
                    bar.update(1)
    manifest = {"format": 2, "seed": seed, "profile": profile.to_dict(),
                "camera": "random per pair" if rgb2cam is None else np.asarray(rgb2cam).round(6).tolist(),
                "pairs": {split: plan.count for split, plan in plans.items()},
                "patch": {split: plan.patch for split, plan in plans.items()},
                "sources": {split: list(plan.names)[:plan.count] for split, plan in plans.items()}}
    write_text(out_root / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def synthesize_dataset(photos, out_root, count, patch=256, seed=0, splits=None,
                       profile=SensorProfile(), rgb2cam=None, progress=True):
    """Write `count` synthetic pairs from `photos` into `out_root`; returns the manifest dict.

    photos: a folder of .jpg/.jpeg/.png/.tif files, a list of RGB arrays [H, W, 3] (float in
    [0, 1], or uint8/uint16), or a dict name -> array. splits: name -> fraction of pairs and of
    scenes (default {"train": 0.9, "val": 0.1}); splits never share a scene. `rgb2cam`: one fixed
    camera [3, 3] for every pair (default: a random camera per pair). Deterministic for a seed.
    """
    splits = dict(splits or {"train": 0.9, "val": 0.1})
    _check_patch(patch)
    if count < 1:
        raise DataError(f"count must be at least 1, got {count}")
    _check_output_folder(out_root)  # before decoding any photo
    usable = _usable_photos(_PhotoSource(photos), patch)
    if not usable:
        raise DataError(f"no usable photo: every photo is grey or smaller than {patch}x{patch}; "
                        "add larger colour photos or lower --patch")
    assignment = assign_by_scene(usable, splits, seed)
    pair_counts = _split_sizes(count, splits, "pairs")
    plans = {split: SplitPlan(tuple(assignment[split]), pair_counts[split], patch)
             for split in splits if pair_counts[split]}
    return synthesize_splits(photos, out_root, plans, seed, profile, rgb2cam, progress)


def read_manifest(root):
    """The synth.json dict of a complete synthetic dataset, or None when absent or unreadable."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def split_with_profile(root, split="val"):
    """(pairs of `split`, the SensorProfile they were written with) of the synthetic dataset at `root`."""
    return load_splits(root)[split], manifest_profile(root)


def manifest_profile(root):
    """The SensorProfile a synthetic dataset at `root` was written with (DataError if it has no synth.json)."""
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(f"{root}: no {MANIFEST}; not a synthetic dataset made by this toolkit")
    return SensorProfile(**manifest["profile"])
