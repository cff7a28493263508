"""evaluate(): metrics against isp.metrics, CSV/JSON/sheet files, LPIPS missing/failing/present paths."""
import csv
import importlib.util
import json

import numpy as np
import pytest

from data import dataset, image_io
from data.sensor import CHALLENGE_PROFILE
from isp import evaluate as ev
from isp import metrics
from isp.errors import ISPError


def gray_predict(raw):
    """A constant mid-gray 'model': raw [1, h, w, 4] -> [1, 2h, 2w, 3]."""
    return np.full((1, 2 * raw.shape[1], 2 * raw.shape[2], 3), 0.5, np.float32)


@pytest.fixture
def val_pairs(pair_tree):
    return dataset.load_splits(pair_tree)["val"]


def test_scores_files_and_sheet(val_pairs, tmp_path):
    out = tmp_path / "eval"
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(out), sheet_count=4,
                         progress=False)
    expected = [metrics.psnr_ssim(np.full((32, 32, 3), 0.5), dataset.load_pair(p)[1]) for p in val_pairs]
    assert result["images"] == 2 and [r["index"] for r in result["rows"]] == ["0", "1"]
    for row, (psnr, ssim) in zip(result["rows"], expected):
        assert row["psnr"] == pytest.approx(psnr) and row["ssim"] == pytest.approx(ssim)
        assert row["lpips"] is None
    assert result["psnr"] == pytest.approx(np.mean([e[0] for e in expected]))
    assert result["lpips"] is None and result["lpips_note"] == ev.LPIPS_NOT_REQUESTED

    with open(out / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["index"] for r in table] == ["0", "1", "mean"]
    assert float(table[0]["psnr_db"]) == pytest.approx(expected[0][0], abs=1e-4)
    assert table[0]["lpips"] == "" and table[2]["lpips"] == ev.LPIPS_NOT_REQUESTED
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ssim"] == pytest.approx(result["ssim"]) and len(summary["rows"]) == 2
    sheet = image_io.read_rgb(out / "sheet.png")
    assert sheet.shape[1] == 1120 and sheet.shape[0] > 400  # 4 panels wide, 2 rows
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "sheet.png", "summary.json"]


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None, reason="needs lpips to be absent")
def test_lpips_not_installed_leaves_a_note(val_pairs, tmp_path):
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(tmp_path), lpips=True,
                         progress=False)
    assert result["lpips"] is None and result["lpips_note"] == "lpips not installed: pip install -e .[lpips]"
    assert result["psnr"] > 0 and (tmp_path / "sheet.png").is_file()
    assert ev.format_summary(result, "gray").splitlines()[1].endswith(
        "- (lpips not installed: pip install -e .[lpips])")


def test_lpips_weights_failure_leaves_a_note(val_pairs, tmp_path, monkeypatch):
    def offline():
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
    monkeypatch.setattr(ev, "_load_lpips", offline)
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(tmp_path), lpips=True,
                         progress=False)
    assert result["lpips"] is None
    assert result["lpips_note"] == "lpips weights unavailable: <urlopen error [Errno -3] Temporary failure " \
                                   "in name resolution>"
    with open(tmp_path / "metrics.csv") as f:
        assert list(csv.DictReader(f))[-1]["lpips"] == result["lpips_note"]


def test_lpips_values_fill_the_column(val_pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "_load_lpips", lambda: lambda pred, target: float(np.mean(np.abs(pred - target))))
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(tmp_path), lpips=True,
                         progress=False)
    per_image = [r["lpips"] for r in result["rows"]]
    assert all(0.1 < v < 0.4 for v in per_image) and result["lpips"] == pytest.approx(np.mean(per_image))
    assert result["lpips_note"] == ""
    with open(tmp_path / "metrics.csv") as f:
        assert float(list(csv.DictReader(f))[-1]["lpips"]) == pytest.approx(result["lpips"], abs=1e-6)


def test_no_out_dir_writes_nothing_and_no_sheet(val_pairs, tmp_path):
    assert ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, progress=False)["files"] == {}
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(tmp_path), sheet_count=0,
                         progress=False)
    assert "sheet.png" not in result["files"] and not (tmp_path / "sheet.png").exists()
    assert "sheet.png" not in json.loads((tmp_path / "summary.json").read_text())["files"]


def test_wrong_output_shape_and_empty_pairs(val_pairs):
    with pytest.raises(ISPError, match=r"mediatek_raw/0.png: the model returned \[1, 16, 16, 3\]"):
        ev.evaluate(lambda raw: np.zeros((1, 16, 16, 3)), val_pairs, CHALLENGE_PROFILE, progress=False)
    with pytest.raises(ISPError, match="no image pairs"):
        ev.evaluate(gray_predict, [], CHALLENGE_PROFILE, progress=False)


def test_crop_box_and_error_map():
    assert ev.center_crop_box(300, 600) == (22, 172, 256, 256)
    assert ev.center_crop_box(32, 40) == (0, 0, 32, 40)
    assert ev.center_crop_box(300, 262) == (22, 2, 256, 256)
    target = np.zeros((4, 4, 3), np.float32)
    pred = target.copy()
    pred[0, 0] = 1.0
    colours = ev.error_map(pred, target)
    assert colours.shape == (4, 4, 3)
    np.testing.assert_allclose(colours[1, 1], [0.001462, 0.000466, 0.013866], atol=1e-5)  # inferno(0)
    np.testing.assert_allclose(colours[0, 0], [0.988362, 0.998364, 0.644924], atol=1e-5)  # inferno(1)


def test_colour_fit_undoes_a_global_colour_transform_but_not_local_error():
    rng = np.random.default_rng(0)
    target = rng.uniform(0.1, 0.9, (32, 32, 3)).astype(np.float32)
    matrix = np.array([[0.8, 0.1, 0.0], [0.05, 0.7, 0.1], [0.0, 0.2, 0.6]], np.float32)
    cast = target @ matrix + 0.05  # a wrong white balance / colour matrix, nothing local
    assert metrics.psnr(cast, target) < 25
    assert metrics.colour_fit_psnr(cast, target) > 50
    noisy = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1).astype(np.float32)  # local error only
    assert abs(metrics.colour_fit_psnr(noisy, target) - metrics.psnr(noisy, target)) < 0.3


def test_colour_fit_psnr_is_reported_per_image_and_in_the_mean(val_pairs, tmp_path):
    result = ev.evaluate(gray_predict, val_pairs, CHALLENGE_PROFILE, out_dir=str(tmp_path), progress=False)
    expected = [metrics.colour_fit_psnr(np.full((32, 32, 3), 0.5, np.float32), dataset.load_pair(p)[1])
                for p in val_pairs]
    assert [r["psnr_colour_fit"] for r in result["rows"]] == pytest.approx(expected)
    assert result["psnr_colour_fit"] == pytest.approx(np.mean(expected)) and result["psnr_colour_fit"] >= result["psnr"]
    with open(tmp_path / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert float(table[-1]["psnr_colour_fit_db"]) == pytest.approx(result["psnr_colour_fit"], abs=1e-4)
    assert "colour-fit PSNR" in ev.format_summary(result, "gray").splitlines()[0]
