"""Unprocessing, synthetic dataset writing and the built-in default dataset."""
import argparse
import logging
import os

import cv2
import numpy as np
import pytest

import data.default_data as default_data
import data.synth as synth
from data import cli as data_cli
from data import unprocess
from data.errors import DataError
from data.image_io import read_raw_png, read_rgb
from data.sensor import CFA_PATTERNS, SensorProfile, pack


def smoothstep(x):
    """The forward tone map that inverse_smoothstep undoes."""
    return 3.0 * x ** 2 - 2.0 * x ** 3


def photo(seed, h, w):
    """A smooth random colour image, uint8 [h, w, 3]."""
    small = np.random.default_rng(seed).uniform(0, 255, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def folder_bytes(root):
    """{relative path: bytes} of every file under root."""
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(root) for f in files}


# --- unprocessing -------------------------------------------------------------------------------

def test_inverse_smoothstep_inverts_smoothstep():
    x = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    np.testing.assert_allclose(unprocess.inverse_smoothstep(smoothstep(x)), x, atol=1e-5)


def test_gamma_expansion_inverts_gamma():
    x = np.linspace(0.01, 1.0, 50, dtype=np.float32)
    np.testing.assert_allclose(unprocess.gamma_expansion(x ** (1 / 2.2)), x, rtol=1e-4)


def test_random_ccm_rows_sum_to_one_and_invertible():
    ccm = unprocess.random_ccm(np.random.default_rng(3))
    assert ccm.shape == (3, 3)
    np.testing.assert_allclose(ccm.sum(axis=1), 1.0, atol=1e-5)
    assert abs(np.linalg.det(ccm)) > 1e-3


def test_random_gains_and_noise_levels_in_documented_ranges():
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, red, blue = unprocess.random_gains(rng)
        shot, read = unprocess.random_noise_levels(rng)
        assert 1.9 <= red <= 2.4 and 1.5 <= blue <= 1.9
        assert 1e-4 <= shot <= 0.012 and read > 0


def test_inverse_gains_make_grey_green_and_spare_highlights():
    grey = np.full((4, 4, 3), 0.3, np.float32)
    out = unprocess.safe_invert_gains(grey, 1.25, 2.0, 1.7)
    r, g, b = out[..., 0].mean(), out[..., 1].mean(), out[..., 2].mean()
    assert g > r and g > b
    white = np.ones((2, 2, 3), np.float32)
    np.testing.assert_allclose(unprocess.safe_invert_gains(white, 1.25, 2.0, 1.7), white, atol=1e-6)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_mosaic_follows_the_profile_cfa(cfa):
    image = np.broadcast_to(np.array([0.1, 0.2, 0.3], np.float32), (4, 6, 3)).copy()
    profile = SensorProfile(cfa=cfa)
    packed = pack(unprocess.mosaic(image, profile), profile)  # channels [B, Gb, R, Gr]
    np.testing.assert_allclose(packed[0, 0], [0.3, 0.2, 0.1, 0.2])


def test_mosaic_refuses_odd_size():
    with pytest.raises(DataError, match="even"):
        unprocess.mosaic(np.zeros((3, 4, 3), np.float32), SensorProfile())


def test_unprocess_to_raw_range_dtype_and_black_level():
    rgb = photo(0, 32, 32).astype(np.float32) / 255
    profile = SensorProfile(black_level=(64,), white_level=1023)
    clean = unprocess.unprocess_to_raw(rgb, np.random.default_rng(1), profile, noise=False)
    assert clean.dtype == np.uint16 and clean.shape == (32, 32)
    assert clean.min() >= 64 and clean.max() <= 1023
    noisy = unprocess.unprocess_to_raw(rgb, np.random.default_rng(1), profile)
    assert noisy.max() <= 1023 and not np.array_equal(noisy, clean)
    again = unprocess.unprocess_to_raw(rgb, np.random.default_rng(1), profile)
    np.testing.assert_array_equal(noisy, again)


def test_unprocess_to_raw_keeps_white_white():
    white = np.ones((8, 8, 3), np.float32)
    raw = unprocess.unprocess_to_raw(white, np.random.default_rng(0), SensorProfile(), noise=False)
    assert raw.min() == 1020


# --- synthesize_dataset -------------------------------------------------------------------------

@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, (h, w) in enumerate([(80, 96), (72, 100), (90, 70)]):
        cv2.imwrite(str(folder / f"p{k}.png"), photo(k, h, w))
    return folder


def test_layout_pairs_and_values(photo_dir, tmp_path):
    out = tmp_path / "out"
    manifest = synth.synthesize_dataset(photo_dir, out, count=10, patch=64, seed=1, progress=False)
    assert manifest["pairs"] == {"train": 9, "val": 1}
    assert not set(manifest["sources"]["train"]) & set(manifest["sources"]["val"])
    for split, n in manifest["pairs"].items():
        for sub in ("mediatek_raw", "fujifilm"):
            assert sorted(os.listdir(out / split / sub)) == sorted(f"{i}.png" for i in range(n))
        for i in range(n):
            raw = read_raw_png(out / split / "mediatek_raw" / f"{i}.png")
            rgb = read_rgb(out / split / "fujifilm" / f"{i}.png")
            assert raw.shape == (64, 64) and raw.max() <= 1020
            assert rgb.shape == (64, 64, 3)
    assert synth.read_manifest(out)["pairs"] == {"train": 9, "val": 1}


def test_same_seed_same_bytes_other_seed_differs(photo_dir, tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        synth.synthesize_dataset(photo_dir, tmp_path / name, count=4, patch=32, seed=seed, progress=False)
    a, b, c = (folder_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys() and a["train/mediatek_raw/0.png"] != c["train/mediatek_raw/0.png"]


def test_arrays_small_and_grey_photos(tmp_path, caplog):
    photos = [photo(0, 40, 40).astype(np.float32) / 255, photo(1, 20, 60), np.zeros((50, 50), np.uint8)]
    with caplog.at_level(logging.WARNING):
        manifest = synth.synthesize_dataset(photos, tmp_path, count=3, patch=32,
                                            splits={"train": 1.0}, progress=False)
    assert manifest["sources"] == {"train": ["photo-0"]}
    assert "photo-1" in caplog.text and "photo-2" in caplog.text


def test_jpeg_sources_are_halved(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.jpg"), photo(0, 80, 80))
    cv2.imwrite(str(folder / "small.jpg"), photo(1, 60, 60))
    manifest = synth.synthesize_dataset(folder, tmp_path / "out", count=2, patch=40,
                                        splits={"train": 1.0}, progress=False)
    assert manifest["sources"] == {"train": [str(folder / "big.jpg")]}


def test_corrupt_photo_names_the_file(photo_dir, tmp_path):
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        synth.synthesize_dataset(photo_dir, tmp_path / "out", count=4, patch=32, progress=False)
    assert not (tmp_path / "out").exists()


def test_too_few_photos_for_the_splits(tmp_path):
    with pytest.raises(DataError, match="1 usable scenes.*val-fraction"):
        synth.synthesize_dataset([photo(0, 40, 40)], tmp_path, count=4, patch=32, progress=False)


def test_refuses_a_non_empty_output_folder(photo_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        synth.synthesize_dataset(photo_dir, tmp_path / "out", count=2, patch=32, progress=False)


def test_cli_synth(photo_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_cli.add_commands(parser.add_subparsers())
    out = tmp_path / "cli"
    args = parser.parse_args(["data", "synth", "--photos", str(photo_dir), "--out", str(out), "--count", "3",
                              "--patch", "32", "--val-fraction", "0", "--black-level", "64",
                              "--white-level", "4095"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("wrote 3 train pairs")
    assert synth.read_manifest(out)["profile"]["white_level"] == 4095
    assert read_raw_png(out / "train" / "mediatek_raw" / "0.png").max() > 1020
    assert sorted(os.listdir(out / "train" / "fujifilm")) == ["0.png", "1.png", "2.png"]
    assert not (out / "val").exists()


def test_views_of_one_scene_stay_in_one_split(tmp_path):
    photos = {"a[left]": photo(0, 64, 64), "a[right]": photo(1, 64, 64), "b": photo(2, 64, 64),
              "c": photo(3, 64, 64)}
    for seed in range(6):
        manifest = synth.synthesize_dataset(photos, tmp_path / str(seed), count=8, patch=32, seed=seed,
                                            splits={"train": 0.5, "val": 0.5}, progress=False)
        scenes = {split: {synth.scene_of(n) for n in names} for split, names in manifest["sources"].items()}
        assert not scenes["train"] & scenes["val"]
        assert any(set(names) >= {"a[left]", "a[right]"} for names in manifest["sources"].values())


def test_fixed_camera_is_used_for_every_pair(tmp_path):
    grey = np.full((64, 64, 3), 128, np.uint8)
    identity = np.eye(3, dtype=np.float32)
    manifest = synth.synthesize_splits({"grey": grey}, tmp_path, {"val": synth.SplitPlan(("grey",), 3, 32)},
                                       rgb2cam=identity, progress=False)
    assert manifest["camera"] == identity.tolist()
    random_manifest = synth.synthesize_splits({"grey": grey}, tmp_path / "r",
                                              {"val": synth.SplitPlan(("grey",), 3, 32)}, progress=False)
    assert random_manifest["camera"] == "random per pair"


# --- default dataset ----------------------------------------------------------------------------

def small_plans(train=4, val=2):
    """Tiny default-data plans: the real photos and layout, few and small pairs."""
    plans = default_data.default_plans()
    return {rel: ({split: synth.SplitPlan(plan.names, train if split == "train" else val, 64)
                   for split, plan in splits.items()}, profile, camera)
            for rel, (splits, profile, camera) in plans.items()}


SMALL = {"plans": small_plans(), "progress": False}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ISP_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_default_data_builds_once(cache):
    root = default_data.ensure_default_data(**SMALL)
    assert root == cache / default_data.FOLDER
    assert len(os.listdir(root / "train" / "mediatek_raw")) + len(os.listdir(root / "val" / "fujifilm")) == 6
    assert len(os.listdir(default_data.cross_sensor_root(root) / "val" / "mediatek_raw")) == 2
    stamp = os.stat(root / "synth.json").st_mtime_ns
    assert default_data.ensure_default_data(**SMALL) == root
    assert os.stat(root / "synth.json").st_mtime_ns == stamp
    assert os.listdir(cache) == [default_data.FOLDER]


def test_default_data_force_rebuilds(cache):
    root = default_data.ensure_default_data(**SMALL)
    (root / "stale.txt").write_text("left over")
    assert default_data.ensure_default_data(force=True, **SMALL) == root
    assert not (root / "stale.txt").exists() and synth.read_manifest(root)["pairs"] == {"train": 4, "val": 2}
    assert os.listdir(cache) == [default_data.FOLDER]


def test_default_data_rebuilds_on_other_parameters(cache):
    default_data.ensure_default_data(**SMALL)
    root = default_data.ensure_default_data(**{**SMALL, "plans": small_plans(train=2)})
    assert synth.read_manifest(root)["pairs"] == {"train": 2, "val": 2}
    assert len(os.listdir(root / "train" / "fujifilm")) + len(os.listdir(root / "val" / "fujifilm")) == 4
    assert os.listdir(cache) == [default_data.FOLDER]


def test_interrupted_build_leaves_nothing(cache, monkeypatch):
    calls = []
    real_write = synth.write_png

    def failing_write(path, image):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_write(path, image)

    monkeypatch.setattr(synth, "write_png", failing_write)
    with pytest.raises(KeyboardInterrupt):
        default_data.ensure_default_data(**SMALL)
    assert os.listdir(cache) == []


def test_losing_a_race_uses_the_winners_folder(cache, monkeypatch):
    real_synthesize = default_data.synthesize_splits
    winner = []

    def synthesize_then_lose(*args, **kwargs):
        manifest = real_synthesize(*args, **kwargs)
        if not winner:  # another process publishes its copy while we are still building
            winner.append(None)
            winner[0] = default_data.ensure_default_data(**SMALL)
        return manifest

    monkeypatch.setattr(default_data, "synthesize_splits", synthesize_then_lose)
    root = default_data.ensure_default_data(**SMALL)
    assert root == winner[0] and synth.read_manifest(root)["pairs"] == {"train": 4, "val": 2}
    assert os.listdir(cache) == [default_data.FOLDER]


def test_cli_prepare_default(cache, monkeypatch, capsys):
    real_ensure = default_data.ensure_default_data
    monkeypatch.setattr(default_data, "ensure_default_data", lambda force: real_ensure(force=force, **SMALL))
    parser = argparse.ArgumentParser()
    data_cli.add_commands(parser.add_subparsers())
    args = parser.parse_args(["data", "prepare-default"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(cache / default_data.FOLDER)


# --- what the default data is made of -----------------------------------------------------------

def test_default_photos_are_colour_and_split_by_scene():
    photos = default_data.bundled_photos()
    assert len({synth.scene_of(n) for n in photos}) >= 9
    assert all(p.ndim == 3 and p.shape[-1] == 3 and p.dtype == np.uint8 for p in photos.values())
    splits, _, _ = default_data.default_plans()["."]
    train_scenes = {synth.scene_of(n) for n in splits["train"].names}
    val_scenes = {synth.scene_of(n) for n in splits["val"].names}
    assert val_scenes == set(default_data.VAL_SCENES) and not train_scenes & val_scenes
    procedural = {"procedural.dead_leaves"} if default_data.DEAD_LEAVES else set()
    assert train_scenes | val_scenes == {synth.scene_of(n) for n in photos} | procedural


def test_default_plans_name_the_photos_without_decoding_them(monkeypatch):
    def refuse():
        raise AssertionError("default_plans decoded a photo")
    monkeypatch.setattr(default_data, "BUNDLED_PHOTOS", {name: refuse for name in default_data.BUNDLED_PHOTOS})
    splits, _, _ = default_data.default_plans()["."]
    assert set(splits["train"].names) | set(splits["val"].names) >= set(default_data.BUNDLED_PHOTOS)


def test_cross_sensor_camera_and_levels_are_outside_the_training_distribution():
    rng = np.random.default_rng(0)
    draws = np.stack([unprocess.random_ccm(rng) for _ in range(20000)])
    camera = unprocess.camera_ccm(default_data.CROSS_SENSOR_XYZ2CAM)
    outside = (camera < draws.min(axis=0)) | (camera > draws.max(axis=0))
    assert outside.sum() >= 3
    _, profile, fixed = default_data.default_plans()[default_data.CROSS_SENSOR]
    np.testing.assert_allclose(fixed, camera)
    train_profile = default_data.default_plans()["."][1]
    assert profile.black_level != train_profile.black_level and min(profile.black_level) >= 32
    assert profile.white_level == 1023 != train_profile.white_level


def test_dead_leaves_are_deterministic_colourful_and_train_only():
    from data import procedural
    images = procedural.procedural_photos(2, seed=3, size=128)
    again = procedural.procedural_photos(2, seed=3, size=128)
    assert list(images) == ["procedural.dead_leaves[0]", "procedural.dead_leaves[1]"]
    for name, image in images.items():
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, again[name])
        hues = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 0]
        assert len(np.unique(hues // 10)) >= 10  # many dominant colours, not one cast
    assert not np.array_equal(*images.values())
    splits, _, _ = default_data.default_plans(dead_leaves=2)["."]
    assert {n for n in splits["train"].names if n.startswith("procedural.")} == set(images)
    assert not any(n.startswith("procedural.") for n in splits["val"].names)
