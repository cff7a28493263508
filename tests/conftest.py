"""Shared pytest setup: repo root on sys.path, quiet TensorFlow, CPU only."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def write_pair_tree(root, split, count, size=32, seed=0, white=1020, raw_dir="mediatek_raw", rgb_dir="fujifilm",
                    rgb_ext=".png"):
    """Write `count` random index-matched pairs (uint16 mosaic size x size, RGB same size), by default in the
    UltraISP layout; `raw_dir`/`rgb_dir`/`rgb_ext` give another (Zurich: huawei_raw, canon, .jpg)."""
    import cv2

    from data import image_io
    rng = np.random.default_rng(seed)
    for i in range(count):
        mosaic = rng.integers(0, white + 1, (size, size), dtype=np.uint16)
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image_io.write_png(root / split / raw_dir / f"{i}.png", mosaic)
        if rgb_ext == ".png":
            image_io.write_png(root / split / rgb_dir / f"{i}.png", rgb)
        else:
            (root / split / rgb_dir).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / rgb_dir / f"{i}{rgb_ext}"), rgb[..., ::-1])
    return root


def write_zurich_tree(root, train=6, test=2, size=32):
    """A small Zurich RAW-to-RGB tree: {train,test}/huawei_raw/<i>.png + canon/<i>.jpg, no val/."""
    write_pair_tree(root, "train", train, size=size, raw_dir="huawei_raw", rgb_dir="canon", rgb_ext=".jpg")
    write_pair_tree(root, "test", test, size=size, seed=1, raw_dir="huawei_raw", rgb_dir="canon", rgb_ext=".jpg")
    return root


@pytest.fixture
def pair_tree(tmp_path):
    """A small dataset: 6 train pairs and 2 val pairs of 32x32 mosaics."""
    write_pair_tree(tmp_path, "train", 6)
    write_pair_tree(tmp_path, "val", 2, seed=1)
    return tmp_path
