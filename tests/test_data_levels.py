"""Black/white level estimation (data/levels.py) and the 'auto' level flags."""
import cv2
import numpy as np
import pytest

from data import check, dataset, levels, sensor, synth
from data.errors import DataError

TRUE_BLACK = (62.0, 60.0, 58.0, 61.0)
TRUE_WHITE = 1023.0
PROFILE = sensor.SensorProfile(black_level=TRUE_BLACK, white_level=TRUE_WHITE)


def scene(seed, size=128):
    """A smooth random colour photo with some black shadows and some clipped highlights, uint8 [size, size, 3]."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (size // 16, size // 16, 3)).astype(np.float32)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    image[: size // 6] = 0            # a shadow band
    image[-size // 8:, : size // 4] = 255  # a blown highlight
    return np.clip(image, 0, 255).astype(np.uint8)


def write_leveled_tree(root, split):
    """24 synthetic pairs in `root`/`split` of a sensor with known per-channel black levels (TRUE_BLACK)
    and a 10-bit white level (TRUE_WHITE); returns `root`."""
    synth.synthesize_dataset({f"scene-{k}": scene(k) for k in range(4)}, root, count=24, patch=64,
                             splits={split: 1.0}, profile=PROFILE, progress=False)
    return root


@pytest.fixture(scope="module")
def sensor_tree(tmp_path_factory):
    """A synthetic training set with known levels (see write_leveled_tree)."""
    return write_leveled_tree(tmp_path_factory.mktemp("levels"), "train")


def test_estimates_recover_known_levels_per_channel(sensor_tree):
    pairs = dataset.load_splits(sensor_tree, val_fraction=0.1)["train"]
    found = levels.estimate_pairs(pairs + dataset.load_splits(sensor_tree, val_fraction=0.1)["val"], PROFILE)
    np.testing.assert_allclose(found.black, TRUE_BLACK, atol=2)
    assert found.white_level() == TRUE_WHITE and any(found.saturated)


def test_one_frame_estimate_and_order_follow_the_profile():
    from data.unprocess import unprocess_to_raw
    mosaic = unprocess_to_raw(scene(7, 256).astype(np.float32) / 255, np.random.default_rng(1), PROFILE)
    found = levels.estimate_mosaic(mosaic, PROFILE)
    assert found.channel_order == PROFILE.channel_order
    np.testing.assert_allclose(found.black, TRUE_BLACK, atol=2)
    reordered = sensor.SensorProfile(channel_order=("R", "Gr", "Gb", "B"))
    again = levels.estimate_mosaic(mosaic, reordered)
    by_name = dict(zip(found.channel_order, found.black))
    assert list(again.black) == [by_name[name] for name in ("R", "Gr", "Gb", "B")]


def test_black_zero_data_estimates_zero_and_no_saturation_snaps_to_a_common_level():
    rng = np.random.default_rng(0)
    dark = np.clip(rng.normal(0, 6, (64, 64)), 0, None)  # read noise clipped at black 0
    frame = np.concatenate([dark, rng.uniform(100, 900, (64, 64))]).astype(np.uint16)
    found = levels.estimate_mosaic(frame)
    assert max(found.black) <= 2
    assert not any(found.saturated) and found.white_level() == 1023


def test_profile_from_text_auto_uses_the_estimate_once():
    calls = []

    def estimate(layout):
        calls.append(layout)
        return levels.LevelEstimate(layout.channel_order, (64.0, 63.0, 65.0, 64.0), (1023,) * 4, (True,) * 4, 100)

    profile = sensor.profile_from_text("RGGB", "B,Gb,R,Gr", "auto", "auto", estimate)
    assert profile.black_level == (64, 63, 65, 64) and profile.white_level == 1023 and len(calls) == 1
    only_white = sensor.profile_from_text("RGGB", "B,Gb,R,Gr", "10", "auto", estimate)
    assert only_white.black_level == (10,) and only_white.white_level == 1023
    with pytest.raises(DataError, match="auto needs RAW data"):
        sensor.profile_from_text("RGGB", "B,Gb,R,Gr", "auto", "1020")
    with pytest.raises(DataError, match="white level 'ten'"):
        sensor.profile_from_text("RGGB", "B,Gb,R,Gr", "0", "ten")


def test_floor_far_above_the_black_level_warns(sensor_tree):
    pairs = dataset.load_splits(sensor_tree, val_fraction=0.1)["train"]
    found = levels.estimate_pairs(pairs, PROFILE)
    warning = levels.floor_warning(found, sensor.CHALLENGE_PROFILE)
    assert "dark floor" in warning and "--black-level auto" in warning
    assert levels.floor_warning(found, PROFILE) is None


def test_data_check_reports_levels_and_the_floor_warning(sensor_tree, capsys):
    from benchmarks.cli import main
    report = check.check_dataset(sensor_tree, sensor.CHALLENGE_PROFILE, progress=False)
    np.testing.assert_allclose(report.levels["black"], TRUE_BLACK, atol=2)
    assert report.levels["white_level"] == TRUE_WHITE
    assert any("dark floor" in w for w in report.warnings)
    assert main(["data", "check", str(sensor_tree), "--black-level", "auto", "--white-level", "auto"]) == 0
    out = capsys.readouterr().out
    assert "estimated black level per channel" in out and "dark floor" not in out


def test_train_resolves_auto_levels_into_the_config(sensor_tree):
    from isp import config as config_mod
    from isp.train import resolve_levels
    config = config_mod.resolve({"data": str(sensor_tree), "black_level": "auto", "white_level": "auto"})
    resolved = resolve_levels(config)
    black = [float(b) for b in resolved.black_level.split(",")]
    np.testing.assert_allclose(black, TRUE_BLACK, atol=2)
    assert float(resolved.white_level) == TRUE_WHITE
