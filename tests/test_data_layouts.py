"""Dataset layouts: UltraISP and Zurich RAW-to-RGB found from the folder names, any other paired layout
by --raw-dir/--rgb-dir, through every command that reads data (one TrainConfig path)."""
import numpy as np
import pytest

from benchmarks.cli import main
from data import check, dataset, image_io, sensor
from data.errors import DataError
from isp import config as config_mod
from tests.conftest import write_pair_tree, write_zurich_tree


def test_zurich_layout_is_detected_and_reads_test_as_val(tmp_path):
    write_zurich_tree(tmp_path, train=5, test=3)
    assert dataset.detect_layout(tmp_path) == dataset.ZURICH
    splits = dataset.load_splits(tmp_path, val_fraction=0.5, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 5, "test": 3, "val": 3}
    assert splits["val"] == splits["test"]
    pair = splits["train"][0]
    assert pair.raw_path.endswith("train/huawei_raw/0.png") and pair.rgb_path.endswith("train/canon/0.jpg")


def test_zurich_pair_uses_the_challenge_packing_and_scale(tmp_path):
    write_zurich_tree(tmp_path, train=1, test=1)
    pair = dataset.load_splits(tmp_path)["train"][0]
    raw, rgb = dataset.load_pair(pair)
    mosaic = image_io.read_raw_png(pair.raw_path)
    assert raw.shape == (16, 16, 4) and rgb.shape == (32, 32, 3)
    np.testing.assert_array_equal(raw[..., 0], np.minimum(mosaic[1::2, 1::2] / np.float32(1020), 1))  # B
    np.testing.assert_array_equal(raw[..., 2], np.minimum(mosaic[0::2, 0::2] / np.float32(1020), 1))  # R
    np.testing.assert_array_equal(raw, sensor.normalize(sensor.pack(mosaic)))


def test_zurich_with_a_val_folder_keeps_it(tmp_path):
    write_zurich_tree(tmp_path, train=4, test=2)
    write_pair_tree(tmp_path, "val", 1, raw_dir="huawei_raw", rgb_dir="canon", rgb_ext=".jpg")
    splits = dataset.load_splits(tmp_path)
    assert len(splits["val"]) == 1 and len(splits["test"]) == 2 and len(splits["train"]) == 4


def test_custom_layout_by_flags(tmp_path):
    write_pair_tree(tmp_path, "train", 10, raw_dir="raw", rgb_dir="rgb")
    with pytest.raises(DataError, match="--raw-dir NAME --rgb-dir NAME"):
        dataset.load_splits(tmp_path)
    splits = dataset.load_splits(tmp_path, val_fraction=0.2, seed=1, raw_dir="raw", rgb_dir="rgb")
    assert len(splits["train"]) == 8 and len(splits["val"]) == 2
    assert all("/raw/" in p.raw_path and "/rgb/" in p.rgb_path for p in splits["train"])
    assert dataset.detect_layout(tmp_path, "raw", "rgb").name == "custom"
    assert dataset.detect_layout(tmp_path, "huawei_raw", "canon") == dataset.ZURICH


@pytest.mark.parametrize("raw_dir, rgb_dir", [("raw", ""), ("", "rgb"), ("a/b", "rgb")])
def test_bad_layout_flags_are_one_line_errors(tmp_path, raw_dir, rgb_dir):
    write_pair_tree(tmp_path, "train", 1, raw_dir="raw", rgb_dir="rgb")
    with pytest.raises(DataError, match="--raw-dir"):
        dataset.load_splits(tmp_path, raw_dir=raw_dir, rgb_dir=rgb_dir)


def test_custom_split_missing_rgb_folder_names_the_layout(tmp_path):
    write_pair_tree(tmp_path, "train", 2, raw_dir="raw", rgb_dir="rgb")
    (tmp_path / "val" / "raw").mkdir(parents=True)
    with pytest.raises(DataError, match=r"val/rgb: folder missing; a split of the custom \(raw/ \+ rgb/\) layout"):
        dataset.load_splits(tmp_path, raw_dir="raw", rgb_dir="rgb")


def test_data_check_names_the_layout(tmp_path, capsys):
    write_zurich_tree(tmp_path / "z")
    write_pair_tree(tmp_path / "c", "train", 3, raw_dir="bayer", rgb_dir="srgb")
    write_pair_tree(tmp_path / "u", "train", 2)
    assert main(["data", "check", str(tmp_path / "z")]) == 0
    out = capsys.readouterr().out
    assert "layout Zurich RAW-to-RGB (huawei_raw/ + canon/)" in out and "train: 6 pairs" in out and "test : 2" in out
    assert main(["data", "check", str(tmp_path / "c"), "--raw-dir", "bayer", "--rgb-dir", "srgb"]) == 0
    assert "layout custom (bayer/ + srgb/)" in capsys.readouterr().out
    assert check.check_dataset(tmp_path / "u", progress=False).layout == "UltraISP (mediatek_raw/ + fujifilm/)"
    assert main(["data", "check", str(tmp_path / "c")]) == 2
    assert "--raw-dir NAME --rgb-dir NAME" in capsys.readouterr().err


def test_layout_flags_are_config_keys_and_reach_the_training_splits(tmp_path):
    from isp import train
    write_pair_tree(tmp_path, "train", 4, raw_dir="raw", rgb_dir="rgb")
    write_pair_tree(tmp_path, "val", 1, raw_dir="raw", rgb_dir="rgb")
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {tmp_path}\nraw_dir: raw\nrgb_dir: rgb\n")
    cfg = config_mod.resolve({}, config_file=str(path))
    assert {k: len(v) for k, v in train.load_splits(cfg).items()} == {"train": 4, "val": 1}


def test_train_flags_include_the_layout():
    import argparse

    from isp import cli
    parser = argparse.ArgumentParser()
    cli.add_train_arguments(parser)
    args = parser.parse_args(["--raw-dir", "raw", "--rgb-dir", "rgb"])
    assert cli.overrides_from_args(args) == {"raw_dir": "raw", "rgb_dir": "rgb"}


def test_a_short_training_run_on_the_zurich_and_a_custom_layout(tmp_path):
    from isp import train
    write_zurich_tree(tmp_path / "z", train=4, test=1, size=16)
    write_pair_tree(tmp_path / "c", "train", 5, size=16, raw_dir="raw", rgb_dir="rgb")
    common = dict(runs_dir=str(tmp_path / "runs"), model="plain", epochs=1, batch_size=2, crop=4, qat_epochs=0,
                  msssim_weight=0.0, val_images=1)
    for name, extra in (("z", {}), ("c", {"raw_dir": "raw", "rgb_dir": "rgb"})):
        cfg = config_mod.resolve(dict(common, data=str(tmp_path / name), name=name, **extra))
        assert np.isfinite(train.train(cfg, progress=False)["best_val_psnr"])
