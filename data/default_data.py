"""The built-in default dataset: synthetic pairs from the colour photos bundled with scikit-image.

It lets `isp` train out of the box with no download. The folder is built in a temporary sibling
and renamed into place in one step, so an interrupted or concurrent build never leaves a half
dataset at the final path; when two processes race, the loser uses the winner's folder.
"""
import os
import shutil
import tempfile
from pathlib import Path

import skimage.data

from data.errors import DataError
from data.sensor import SensorProfile
from data.synth import read_manifest, synthesize_dataset

CACHE_ENV = "ISP_CACHE_DIR"
FOLDER = "default-v1"  # bump when the synthesis changes, so old caches are not reused
DEFAULT_COUNT = 360  # 324 train + 36 val pairs (76 MB); 3-6 s to build on 2 shared cores
DEFAULT_PATCH = 256


def default_data_root():
    """Where the default dataset lives: $ISP_CACHE_DIR/default-v1, else ~/.cache/mobile-isp/default-v1."""
    cache = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mobile-isp"
    return Path(cache) / FOLDER


def bundled_photos():
    """Natural colour photos shipped inside scikit-image (PNG, no network): name -> uint8 [H, W, 3]."""
    left, right, _ = skimage.data.stereo_motorcycle()
    return {"skimage.data.astronaut": skimage.data.astronaut(),
            "skimage.data.coffee": skimage.data.coffee(),
            "skimage.data.chelsea": skimage.data.chelsea(),
            "skimage.data.stereo_motorcycle[left]": left,
            "skimage.data.stereo_motorcycle[right]": right}


def _is_complete(root, count, patch, seed):
    """True if `root` holds a finished default dataset built with these parameters."""
    manifest = read_manifest(root)
    return (manifest is not None and manifest.get("count") == count and manifest.get("patch") == patch
            and manifest.get("seed") == seed and manifest.get("profile") == SensorProfile().to_dict())


def _discard(folder):
    """Move `folder` out of the way in one rename, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    try:
        os.replace(folder, trash / folder.name)
    except FileNotFoundError:  # someone else already moved it
        pass
    shutil.rmtree(trash, ignore_errors=True)


def ensure_default_data(count=DEFAULT_COUNT, patch=DEFAULT_PATCH, seed=0, force=False, progress=True):
    """Return the root of the default dataset, building it first if absent, stale or `force`d.

    The root holds `train/` and `val/` in the UltraISP layout (see data/synth.py).
    """
    root = default_data_root()
    if not force and _is_complete(root, count, patch, seed):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    try:
        synthesize_dataset(bundled_photos(), building, count, patch=patch, seed=seed, progress=progress)
        if force or (root.exists() and not _is_complete(root, count, patch, seed)):
            _discard(root)
        try:
            os.rename(building, root)
        except OSError:
            # Another process finished first; its folder is as good as ours.
            if not _is_complete(root, count, patch, seed):
                raise DataError(f"{root}: could not replace the default dataset (in use by another "
                                "process?); retry, or delete the folder") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def _handler(args):
    """`isp data prepare-default`: build (or find) the default dataset and print its path."""
    print(ensure_default_data(force=args.force))
    return 0


def add_command(data_subparsers):
    """Register `prepare-default` under the `isp data` group."""
    parser = data_subparsers.add_parser(
        "prepare-default", help="build the built-in default dataset and print its path",
        description="Synthesise the built-in default dataset (RAW/RGB pairs unprocessed from the colour "
                    f"photos bundled with scikit-image) into ${CACHE_ENV} (default ~/.cache/mobile-isp) "
                    "and print its path. Does nothing when it is already complete.")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete copy exists")
    parser.set_defaults(func=_handler)
