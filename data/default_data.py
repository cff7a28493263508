"""The built-in default data: synthetic RAW/RGB pairs from every natural colour photo that ships
inside the installed packages (scikit-image, matplotlib), plus DEAD_LEAVES procedural dead-leaves
images for colour variety, so `isp` trains out of the box with no download.

Layout under the cache root (`default_data_root()`):
    train/          TRAIN_PAIRS pairs of TRAIN_PATCH px from the training scenes and the dead-leaves
                    images, each with its own random camera matrix, white balance, brightness,
                    noise, crop and flips
    val/            VAL_PAIRS pairs of VAL_PATCH px from VAL_SCENES only (no scene is in both)
    cross-sensor/   a dataset root of its own: val/ from the same VAL_SCENES through one fixed
                    camera outside the training cameras, black level 64, 10-bit (white 1023);
                    its synth.json holds that sensor profile
The folder is built in a temporary sibling and renamed into place in one step, so an interrupted
or concurrent build never leaves a half dataset at the final path; when two processes race, the
loser uses the winner's folder.
"""
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from data.errors import DataError
from data.procedural import procedural_names, procedural_photos
from data.sensor import CHALLENGE_PROFILE, SensorProfile
from data.synth import PHOTO_SUFFIXES, SplitPlan, downscale_lossy, read_manifest, scene_of, synthesize_splits
from data.unprocess import camera_ccm

CACHE_ENV = "ISP_CACHE_DIR"
FOLDER = "default-v4"  # bump when the synthesis changes, so old caches are not reused
TRAIN_PAIRS = 2400     # 2400 x 128 px pairs: 142 MB, about 8 s to build on 2 shared cores
TRAIN_PATCH = 128      # packed 64 x 64: the default training crop
VAL_PAIRS = 48
VAL_PATCH = 256
VAL_SCENES = ("skimage.data.chelsea", "matplotlib.grace_hopper")
DEAD_LEAVES = 8        # procedural dead-leaves images beside the 8 training photos, half the pool (RESULTS.md)
CROSS_SENSOR = "cross-sensor"
# A fifth camera's XYZ -> camera matrix, not one of unprocess.XYZ2CAMS: 3 of the 9 entries of its
# sRGB -> camera matrix lie outside the range of 20,000 training draws (tests check this).
CROSS_SENSOR_XYZ2CAM = np.array([[0.6446, -0.0366, -0.0864],
                                 [-0.4436, 1.2204, 0.2513],
                                 [-0.0952, 0.2496, 0.6348]])
CROSS_SENSOR_PROFILE = SensorProfile(cfa="RGGB", channel_order=CHALLENGE_PROFILE.channel_order,
                                     black_level=(64.0,), white_level=1023.0)


def cache_root():
    """The toolkit's cache folder: $ISP_CACHE_DIR, else ~/.cache/mobile-isp (the built-in dataset, decoded caches)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mobile-isp")


def default_data_root():
    """Where the default dataset lives: $ISP_CACHE_DIR/default-v4, else ~/.cache/mobile-isp/default-v4."""
    return cache_root() / FOLDER


def cross_sensor_root(root=None):
    """The cross-sensor dataset root inside the default data (`root`, default `default_data_root()`)."""
    return Path(root or default_data_root()) / CROSS_SENSOR


def _grace_hopper():
    """matplotlib's Grace Hopper sample photo, uint8 [H, W, 3] RGB."""
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# Every natural colour photo shipped inside the installed packages (no network): name -> loader.
# Photos decoded from JPEG files are halved (`synth.downscale_lossy`); the two views of the stereo
# motorcycle share one scene (`synth.scene_of`).
BUNDLED_PHOTOS = {
    "skimage.data.astronaut": skimage.data.astronaut,
    "skimage.data.chelsea": skimage.data.chelsea,
    "skimage.data.coffee": skimage.data.coffee,
    "skimage.data.stereo_motorcycle[left]": lambda: skimage.data.stereo_motorcycle()[0],
    "skimage.data.stereo_motorcycle[right]": lambda: skimage.data.stereo_motorcycle()[1],
    "skimage.data.rocket": lambda: downscale_lossy(skimage.data.rocket()),
    "skimage.data.hubble_deep_field": lambda: downscale_lossy(skimage.data.hubble_deep_field()),
    "skimage.data.immunohistochemistry": skimage.data.immunohistochemistry,
    "skimage.data.retina": lambda: downscale_lossy(skimage.data.retina()),
    "matplotlib.grace_hopper": lambda: downscale_lossy(_grace_hopper()),
}


def bundled_photos():
    """The BUNDLED_PHOTOS decoded: name -> uint8 [H, W, 3]."""
    return {name: load() for name, load in BUNDLED_PHOTOS.items()}


def default_images(dead_leaves=DEAD_LEAVES):
    """The images the default data is cut from: `bundled_photos()` plus `dead_leaves` procedural
    images (data/procedural.py), name -> uint8 [H, W, 3]."""
    return {**bundled_photos(), **procedural_photos(dead_leaves)}


def default_plans(dead_leaves=DEAD_LEAVES):
    """{dataset root relative to the default root: (SplitPlan per split, profile, fixed camera or None)};
    procedural images, if any, go to train only."""
    names = list(BUNDLED_PHOTOS) + procedural_names(dead_leaves)
    val = tuple(n for n in names if scene_of(n) in VAL_SCENES)
    train = tuple(n for n in names if scene_of(n) not in VAL_SCENES)
    return {".": ({"train": SplitPlan(train, TRAIN_PAIRS, TRAIN_PATCH), "val": SplitPlan(val, VAL_PAIRS, VAL_PATCH)},
                  CHALLENGE_PROFILE, None),
            CROSS_SENSOR: ({"val": SplitPlan(val, VAL_PAIRS, VAL_PATCH)}, CROSS_SENSOR_PROFILE,
                           camera_ccm(CROSS_SENSOR_XYZ2CAM))}


def _expected(plans, seed):
    """{relative root: the manifest fields that must match} for a complete build of `plans`."""
    return {rel: {"seed": seed, "profile": profile.to_dict(),
                  "pairs": {s: p.count for s, p in splits.items()},
                  "patch": {s: p.patch for s, p in splits.items()},
                  "sources": {s: list(p.names)[:p.count] for s, p in splits.items()}}
            for rel, (splits, profile, _) in plans.items()}


def _is_complete(root, expected):
    """True if `root` holds a finished default dataset whose manifests match `expected`."""
    for rel, fields in expected.items():
        manifest = read_manifest(Path(root) / rel)
        if manifest is None or any(manifest.get(k) != v for k, v in fields.items()):
            return False
    return True


def _discard(folder):
    """Move `folder` out of the way in one rename, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    try:
        os.replace(folder, trash / folder.name)
    except FileNotFoundError:  # someone else already moved it
        pass
    shutil.rmtree(trash, ignore_errors=True)


def ensure_dataset(root, plans, photos, seed=0, force=False, progress=True):
    """Return `root` holding the synthetic dataset `plans` describes, building it first if absent, stale or
    `force`d: {relative root: ({split: SplitPlan}, SensorProfile, fixed camera [3, 3] or None)}.

    photos: zero-argument callable returning what `synth.synthesize_splits` takes (called only to build).
    """
    root = Path(root)
    expected = _expected(plans, seed)
    if not force and _is_complete(root, expected):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    try:
        source = photos()
        for rel, (splits, profile, camera) in plans.items():
            synthesize_splits(source, building / rel, splits, seed=seed, profile=profile, rgb2cam=camera,
                              progress=progress)
        if force or (root.exists() and not _is_complete(root, expected)):
            _discard(root)
        try:
            os.rename(building, root)
        except OSError:
            # Another process finished first; its folder is as good as ours.
            if not _is_complete(root, expected):
                raise DataError(f"{root}: could not replace the dataset (in use by another "
                                "process?); retry, or delete the folder") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def ensure_default_data(plans=None, seed=0, force=False, progress=True):
    """Return the root of the default dataset, building it first if absent, stale or `force`d.

    plans: `default_plans()` unless given (tests pass smaller ones). The root holds `train/`,
    `val/` and `cross-sensor/val/` in the UltraISP layout (see data/synth.py).
    """
    return ensure_dataset(default_data_root(), plans or default_plans(), default_images, seed, force, progress)


def ensure_cross_sensor_set(photo_dir, root, count, patch, seed=0, progress=True):
    """A held-out evaluation set: `count` pairs (`patch` px) from the photos in `photo_dir` through the
    cross-sensor camera and profile, as `root`/val/ (built once, then reused)."""
    folder = Path(photo_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: photo folder not found")
    names = tuple(sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES))
    if not names:
        raise DataError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)}) in this folder")
    plans = {".": ({"val": SplitPlan(names, count, patch)}, CROSS_SENSOR_PROFILE, camera_ccm(CROSS_SENSOR_XYZ2CAM))}
    return ensure_dataset(root, plans, lambda: folder, seed, progress=progress)
