"""Full-resolution tiled inference: tile layout, blending weights, tiled == whole, fixed shapes, memory."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tf_keras as keras

from data.image_io import to_uint8
from isp.errors import ISPError
from isp.inference import ALIGN, axis_weights, feather, process_frame, rgb_to_uint8, tile_starts
from isp.models import build

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_predict(name, **kwargs):
    """predict callable of a registry model with fixed random weights."""
    keras.utils.set_random_seed(0)
    model = build(name, (None, None, 4), **kwargs)
    return lambda raw: model(raw, training=False).numpy()


def random_frame(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 4), dtype=np.float32)


@pytest.mark.parametrize("length,tile,overlap", [(100, 64, 16), (1500, 512, 64), (513, 512, 64),
                                                 (700, 352, 224), (40, 8, 4), (544, 544, 64)])
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts, covered = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == covered >= length
    align = min(ALIGN, 2 ** int(np.log2(tile - overlap)))
    assert all(s % align == 0 for s in starts)
    if len(starts) > 1:
        assert covered - length < align
    shared = [a + tile - b for a, b in zip(starts, starts[1:])]
    assert all(overlap <= s < tile for s in shared)


def test_axis_weights_partition_unity_and_drop_outer_quarter():
    starts, covered = tile_starts(300, 128, 64)
    weights = axis_weights(starts, 128, 64, covered)
    total = np.zeros(covered)
    for start, weight in zip(starts, weights):
        total[start:start + 128] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    middle = feather(128, 64, first=False, last=False)
    assert not middle[:16].any() and not middle[-16:].any() and middle[48:80].min() == 1.0
    assert np.all(np.diff(middle[:48]) >= 0)
    edge = feather(128, 64, first=True, last=True)
    assert edge.min() == 1.0


@pytest.mark.parametrize("name,kwargs,tile,overlap,shape", [
    ("plain", {}, 64, 16, (200, 232)),
    # attention=False: the squeeze-excite gate pools globally; without it the receptive-field
    # radius is about 55 packed px, below overlap // 4 = 56.
    ("unet_tiny", {"attention": False, "depth": 3}, 352, 224, (448, 576)),
])
def test_tiled_equals_whole_frame(name, kwargs, tile, overlap, shape):
    predict = keras_predict(name, **kwargs)
    frame = random_frame(*shape)
    whole = predict(frame[None])[0]
    tiled = process_frame(predict, frame, tile=tile, overlap=overlap, progress=False)
    assert tiled.shape == whole.shape == (2 * shape[0], 2 * shape[1], 3) and tiled.dtype == np.float32
    border = 2 * (overlap // 4)  # output px at the frame edge, where the tiler mirror-pads
    assert np.abs(tiled - whole)[border:-border, border:-border].max() <= 1 / 255


def test_too_small_overlap_shows_seams():
    """The check above can fail: an overlap below 4x the receptive field leaves visible differences."""
    predict = keras_predict("unet_tiny", attention=False, depth=3)
    frame = random_frame(448, 576)
    tiled = process_frame(predict, frame, tile=352, overlap=32, progress=False)
    assert np.abs(tiled - predict(frame[None])[0])[16:-16, 16:-16].max() > 1 / 255


def test_fixed_shape_tiles_and_pads():
    predict = keras_predict("plain")
    shapes = []

    def fixed_predict(raw):
        shapes.append(raw.shape)
        return predict(raw)

    large, small = random_frame(100, 90, 1), random_frame(20, 30, 2)
    out_large = process_frame(fixed_predict, large, fixed_shape=(48, 64), progress=False)
    out_small = process_frame(fixed_predict, small, fixed_shape=(48, 64), progress=False)
    assert set(shapes) == {(1, 48, 64, 4)} and len(shapes) > 2
    assert out_large.shape == (200, 180, 3) and out_small.shape == (40, 60, 3)
    for frame, out in ((large, out_large), (small, out_small)):
        whole = predict(frame[None])[0]
        np.testing.assert_allclose(out[:-8, :-8], whole[:-8, :-8], atol=1 / 255)


def test_small_frame_runs_whole_and_odd_sizes_work():
    calls = []
    predict = keras_predict("unet_tiny")  # needs multiples of 8: the tiler pads 30x42 to 32x48

    def counted(raw):
        calls.append(raw.shape)
        return predict(raw)
    out = process_frame(counted, random_frame(30, 42), progress=False)
    assert out.shape == (60, 84, 3) and calls == [(1, 32, 48, 4)]


def test_progress_bar_counts_tiles(capsys):
    process_frame(keras_predict("plain"), random_frame(64, 96), tile=32, overlap=8, progress=True)
    assert "tiles" in capsys.readouterr().err


def test_errors_name_the_fix():
    frame = random_frame(64, 64)
    with pytest.raises(ISPError, match="multiple of 16"):
        process_frame(keras_predict("plain"), frame, tile=40, progress=False)
    with pytest.raises(ISPError, match="overlap 30 does not fit tile side 32"):
        process_frame(keras_predict("plain"), frame, tile=32, overlap=30, progress=False)
    with pytest.raises(ISPError, match=r"must return \[1, 64, 64, 3\]"):
        process_frame(lambda raw: raw, frame, tile=32, overlap=8, progress=False)
    with pytest.raises(ISPError, match=r"\[h, w, 4\]"):
        process_frame(keras_predict("plain"), frame[..., :3], progress=False)


def test_rgb_to_uint8_matches_to_uint8():
    rgb = np.random.default_rng(3).uniform(-0.2, 1.2, (700, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(rgb_to_uint8(rgb, band=256), to_uint8(rgb))


MEMORY_SCRIPT = """
import gc, json, os, resource, sys
import numpy as np
import tf_keras as keras
from isp.inference import DEFAULT_TILE, process_frame
from isp.models import build

megapixels = float(sys.argv[1])
h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5 / 2)) // 2 * 2   # 4:3 frame, packed size
w = h * 4 // 3
model = build("plain", (None, None, 4))
predict = lambda raw: model(raw, training=False).numpy()
packed = np.random.default_rng(0).random((h, w, 4), dtype=np.float32)
predict(packed[None, :DEFAULT_TILE, :DEFAULT_TILE])  # warm up the kernels on one tile
gc.collect()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = process_frame(predict, packed, progress=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"frame": [2 * h, 2 * w], "growth": peak - before, "output": out.nbytes}))
"""


def measure_peak_growth(megapixels):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(megapixels)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_memory_stays_bounded_for_a_12mp_frame():
    """Peak RSS growth = the full-res float output + a few tiles, not the whole frame's activations.

    Whole-frame "plain" (width 16) would hold >= 5 activations of 3 MP x 16 channels (~1 GB).
    """
    result = measure_peak_growth(12)
    assert result["frame"][0] * result["frame"][1] >= 11.9e6
    assert result["growth"] < result["output"] + 200 * 2 ** 20, result
