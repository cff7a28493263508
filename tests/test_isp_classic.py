"""Classical ISP baseline: OpenCV Bayer-code mapping, gray-world white balance, colour matrix, gamma."""
import numpy as np
import pytest
import skimage.data

from data.sensor import CFA_PATTERNS, SensorProfile, normalize, pack
from data.unprocess import mosaic, unprocess_to_raw
from isp import metrics
from isp.classic import (CAMERA_TO_SRGB, classic_isp, demosaic, gray_world_gains, quick_preview,
                         srgb_gamma)
from isp.errors import ISPError
from isp.inference import process_frame

FLAT = np.array([0.2, 0.5, 0.8], np.float32)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_demosaic_of_flat_colour_gives_that_colour(cfa):
    """A flat (R, G, B) scene mosaicked through `cfa` demosaics back to (R, G, B), not a permutation."""
    image = np.broadcast_to(FLAT, (16, 20, 3)).copy()
    rgb = demosaic(mosaic(image, SensorProfile(cfa=cfa)), cfa)
    assert rgb.shape == (16, 20, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[2:-2, 2:-2], image[2:-2, 2:-2], atol=2 / 65535)


def test_demosaic_rejects_unknown_pattern():
    with pytest.raises(ISPError, match="unknown CFA"):
        demosaic(np.zeros((4, 4), np.float32), "RGBG")


def test_camera_matrix_keeps_white_and_matches_docstring():
    np.testing.assert_allclose(CAMERA_TO_SRGB.sum(axis=1), 1.0, atol=1e-5)
    documented = [[1.6215, -0.5658, -0.0558], [-0.1820, 1.4761, -0.2941], [0.0228, -0.4260, 1.4031]]
    np.testing.assert_allclose(CAMERA_TO_SRGB, documented, atol=1e-4)


def test_srgb_gamma_known_values():
    values = srgb_gamma(np.array([-0.1, 0.0, 0.0031308, 0.18, 0.5, 1.0, 1.5]))
    np.testing.assert_allclose(values, [0.0, 0.0, 0.04045, 0.46135, 0.73536, 1.0, 1.0], atol=2e-4)


def test_gray_world_gains_in_channel_order_and_black_frame():
    profile = SensorProfile(channel_order=("R", "Gb", "B", "Gr"))
    packed = np.broadcast_to(np.array([0.25, 0.5, 0.1, 0.5], np.float32), (4, 4, 4))
    np.testing.assert_allclose(gray_world_gains(packed, profile), [2.0, 1.0, 5.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(gray_world_gains(np.zeros((4, 4, 4), np.float32), profile), [1, 1, 1, 1])


@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_gray_scene_with_colour_cast_comes_out_neutral(cfa):
    profile = SensorProfile(cfa=cfa, channel_order=("Gr", "B", "Gb", "R"))
    # A gray of 0.3 seen under a colour cast.
    cast = np.broadcast_to(np.array([0.15, 0.3, 0.2], np.float32), (24, 24, 3)).copy()
    rgb = classic_isp(pack(mosaic(cast, profile), profile), profile)
    assert rgb.shape == (24, 24, 3)
    np.testing.assert_allclose(rgb[2:-2, 2:-2], srgb_gamma(0.3), atol=1e-3)


def test_classic_isp_beats_the_raw_preview_on_a_synthetic_raw():
    """On an unprocessed photo the baseline recovers far more than the untouched RAW preview."""
    photo = skimage.data.astronaut()[:128, :128].astype(np.float32) / 255.0
    scores = {}
    for cfa in ("RGGB", "BGGR"):
        profile = SensorProfile(cfa=cfa, black_level=(64,), white_level=1023)
        raw = unprocess_to_raw(photo, np.random.default_rng(0), profile, noise=False)
        packed = normalize(pack(raw, profile), profile)
        scores[cfa] = metrics.psnr(classic_isp(packed, profile), photo)
        assert scores[cfa] > metrics.psnr(quick_preview(packed, profile), photo) + 3.0
    assert abs(scores["RGGB"] - scores["BGGR"]) < 0.2  # the CFA handling does not favour one layout


def test_quick_preview_blocks_and_gamma():
    profile = SensorProfile()  # channels B, Gb, R, Gr
    packed = np.zeros((2, 3, 4), np.float32)
    packed[0, 0] = [0.25, 0.5, 1.0, 0.0]
    preview = quick_preview(packed, profile)
    assert preview.shape == (4, 6, 3)
    np.testing.assert_allclose(preview[:2, :2], np.broadcast_to([1.0, 0.25 ** (1 / 2.2), 0.25 ** (1 / 2.2)],
                                                                (2, 2, 3)), atol=1e-6)
    assert not preview[2:].any() and not preview[:, 2:].any()


def test_classic_isp_rejects_unpacked_input():
    with pytest.raises(ISPError, match=r"\[h, w, 4\]"):
        classic_isp(np.zeros((8, 8), np.float32), SensorProfile())


def test_tiled_with_frame_gains_equals_whole_frame():
    """With the frame's gains passed in, the baseline can run through the tiler (bounded memory)."""
    profile = SensorProfile(cfa="GRBG")
    packed = np.random.default_rng(4).random((64, 96, 4), dtype=np.float32) * [0.3, 0.6, 0.5, 0.6]
    gains = gray_world_gains(packed, profile)
    tiled = process_frame(lambda raw: classic_isp(raw[0], profile, gains=gains)[None], packed, tile=32,
                          overlap=8, progress=False)
    whole = classic_isp(packed, profile)
    np.testing.assert_allclose(tiled[4:-4, 4:-4], whole[4:-4, 4:-4], atol=1e-4)
