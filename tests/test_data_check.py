"""`isp data check` finds each kind of bad file and reports RAW value range problems."""
import numpy as np

from benchmarks.cli import main
from data import check, image_io, sensor
from tests.conftest import write_pair_tree


def reasons(report):
    return [str(p) for p in report.problems]


def test_clean_tree(pair_tree, capsys):
    report = check.check_dataset(pair_tree, progress=False)
    assert report.clean and report.pairs_per_split == {"train": 6, "val": 2}
    assert 0 <= report.raw_min and report.raw_max <= 1020
    assert main(["data", "check", str(pair_tree)]) == 0
    assert "clean" in capsys.readouterr().out


def test_corrupt_png(pair_tree):
    (pair_tree / "train" / "fujifilm" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    [problem] = reasons(check.check_dataset(pair_tree, progress=False))
    assert "train/fujifilm/1.png" in problem and "corrupt" in problem


def test_missing_partner(pair_tree):
    (pair_tree / "val" / "fujifilm" / "1.png").unlink()
    [problem] = reasons(check.check_dataset(pair_tree, progress=False))
    assert "val/mediatek_raw/1.png" in problem and "missing partner" in problem


def test_eight_bit_raw(pair_tree):
    image_io.write_png(pair_tree / "train" / "mediatek_raw" / "3.png", np.zeros((32, 32), np.uint8))
    [problem] = reasons(check.check_dataset(pair_tree, progress=False))
    assert "mediatek_raw/3.png" in problem and "16-bit" in problem


def test_wrong_size_ratio(pair_tree):
    image_io.write_png(pair_tree / "train" / "fujifilm" / "4.png", np.zeros((16, 16, 3), np.uint8))
    [problem] = reasons(check.check_dataset(pair_tree, progress=False))
    assert "fujifilm/4.png" in problem and "2x the packed RAW" in problem


def test_values_above_white_level_suggest_12_bit(tmp_path, capsys):
    write_pair_tree(tmp_path, "train", 2, white=4095)
    report = check.check_dataset(tmp_path, progress=False)
    assert report.clean and report.fraction_above_white > 0.5
    assert any("--white-level 4095" in w for w in report.warnings)
    warnings = check.check_dataset(tmp_path, sensor.SensorProfile(white_level=4095), progress=False).warnings
    assert not [w for w in warnings if "white level" in w]


def test_values_below_black_level_warn(pair_tree):
    report = check.check_dataset(pair_tree, sensor.SensorProfile(black_level=(64,)), progress=False)
    assert any("below the black level" in w for w in report.warnings)


def test_cli_exit_codes(pair_tree, tmp_path, capsys):
    (pair_tree / "train" / "fujifilm" / "0.png").unlink()
    assert main(["data", "check", str(pair_tree)]) == 2
    assert "missing partner" in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
