"""Shared pytest setup: repo root on sys.path, quiet TensorFlow, CPU only."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def write_pair_tree(root, split, count, size=32, seed=0, white=1020):
    """Write `count` random UltraISP-layout pairs (uint16 mosaic size x size, RGB same size)."""
    from data import image_io
    rng = np.random.default_rng(seed)
    for i in range(count):
        mosaic = rng.integers(0, white + 1, (size, size), dtype=np.uint16)
        rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        image_io.write_png(root / split / "mediatek_raw" / f"{i}.png", mosaic)
        image_io.write_png(root / split / "fujifilm" / f"{i}.png", rgb)
    return root


@pytest.fixture
def pair_tree(tmp_path):
    """A small dataset: 6 train pairs and 2 val pairs of 32x32 mosaics."""
    write_pair_tree(tmp_path, "train", 6)
    write_pair_tree(tmp_path, "val", 2, seed=1)
    return tmp_path
