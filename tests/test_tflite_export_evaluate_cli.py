"""`isp eval` / `isp process` end to end: a trained run folder, its checkpoint, dynamic and fixed
.tflite and .onnx files, the classical baseline, dataset RAW PNGs and a camera DNG."""
import argparse
import csv
import json
import os

import numpy as np
import pytest

from conftest import write_pair_tree
from data import dataset, image_io
from data.sensor import SensorProfile, normalize, pack
from isp import config as config_mod
from isp.classic import classic_isp
from isp.errors import ISPError
from isp.train import train
from onnx_testing import crd_from_dcr_hwio, isp_onnx, mosaic_reference, mosaic_weight
from test_data_camera_raw import COLOUR_CODE, write_dng
from test_tflite_export_conventions import toy_weights, write_toy_data
from tflite_export import conventions, evaluate_cli
from tflite_export.convert import convert
from tflite_export.errors import ExportError
from tflite_export.export import load_model


def run_cli(*argv):
    """Parse `argv` with a parser holding only eval/process, run the handler, return its status."""
    parser = argparse.ArgumentParser(prog="isp")
    evaluate_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def mean_row(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["index"] == "mean"
    return rows


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_pair_tree(root, "train", 4)
    write_pair_tree(root, "val", 2, seed=1)
    return root


@pytest.fixture(scope="module")
def run(data_root, tmp_path_factory):
    """A real one-epoch run folder of the "plain" model: (run_dir, train summary)."""
    config = config_mod.resolve(dict(data=str(data_root), runs_dir=str(tmp_path_factory.mktemp("runs")),
                                     name="tiny", model="plain", epochs=1, batch_size=2, crop=8, qat_epochs=0,
                                     msssim_weight=0.0, val_images=2, cache=False))
    summary = train(config, progress=False)
    return summary["run_dir"], summary


@pytest.fixture(scope="module")
def keras_model(run):
    return load_model(run[0], "fp32")[0]


def test_eval_run_folder_matches_training_validation(run, capsys):
    run_dir, summary = run
    assert run_cli("eval", run_dir, "--no-progress") == 0
    out = os.path.join(run_dir, "eval", "val")
    rows = mean_row(os.path.join(out, "metrics.csv"))
    assert len(rows) == 3  # two val images + mean
    # Same weights, same images, same metric code as the validation inside training.
    assert float(rows[-1]["psnr_db"]) == pytest.approx(summary["best_val_psnr"], abs=1e-3)
    assert rows[-1]["lpips"] == "not requested (pass --lpips)"
    printed = capsys.readouterr().out
    assert "plain tiny" in printed and f"wrote {os.path.join(out, 'sheet.png')}" in printed
    assert os.path.isfile(os.path.join(out, "summary.json"))


def test_eval_checkpoint_limit_and_out(run, tmp_path):
    checkpoint = os.path.join(run[0], "checkpoints", "best.weights.h5")
    assert run_cli("eval", checkpoint, "--limit", 1, "--out", tmp_path / "ev", "--no-progress") == 0
    assert [r["index"] for r in mean_row(tmp_path / "ev" / "metrics.csv")] == ["0", "mean"]


def test_eval_dynamic_tflite_with_lpips_note(run, keras_model, data_root, tmp_path, capsys):
    path = tmp_path / "model_none.tflite"
    path.write_bytes(convert(keras_model, "fp32", (None, None, 4)))
    assert run_cli("eval", path, "--data", data_root, "--lpips", "--no-progress") == 0
    rows = mean_row(tmp_path / "model_none_eval" / "val" / "metrics.csv")
    assert float(rows[-1]["psnr_db"]) == pytest.approx(run[1]["best_val_psnr"], abs=0.05)
    assert rows[-1]["lpips"].startswith("lpips ")  # "not installed: ..." or "weights unavailable: ..."
    assert "model_none.tflite" in capsys.readouterr().out


def test_eval_fixed_tflite_inside_run_goes_through_the_tiler(run, keras_model):
    """A 8x8 fixed model on 16x16 packed val images: tiled, with the run's data and profile."""
    path = os.path.join(run[0], "tflite", "fp32", "model.tflite")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(convert(keras_model, "fp32", (8, 8, 4)))
    assert run_cli("eval", path, "--no-progress") == 0
    rows = mean_row(os.path.join(run[0], "tflite", "fp32", "model_eval", "val", "metrics.csv"))
    assert float(rows[-1]["psnr_db"]) == pytest.approx(run[1]["best_val_psnr"], abs=0.3)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    """Val pairs whose targets are the toy ISP of their RAW (test_tflite_export_conventions)."""
    return write_toy_data(tmp_path_factory.mktemp("toy"))


def toy_onnx(path, input_dims=(1, 4, "H", "W")):
    """The toy ISP as a PyTorch-style .onnx (NCHW, PixelShuffle order) whose graph divides its input by 4096."""
    return isp_onnx(path, crd_from_dcr_hwio(toy_weights()), input_dims=input_dims, input_scale=1 / 4096)


def test_eval_dynamic_onnx_with_its_input_range(toy_root, tmp_path, capsys):
    path = toy_onnx(tmp_path / "torch_isp.onnx")
    assert run_cli("eval", path, "--data", toy_root, "--input-range", "0,4096", "--no-progress") == 0
    rows = mean_row(tmp_path / "torch_isp_eval" / "val" / "metrics.csv")
    assert len(rows) == 3 and float(rows[-1]["psnr_db"]) > 40.0
    printed = capsys.readouterr().out
    assert "torch_isp.onnx" in printed and "warning: the model's output" not in printed


def test_eval_fixed_onnx_reads_export_json_and_goes_through_the_tiler(toy_root, tmp_path):
    """8x8 packed with a dynamic batch, on 16x16 packed val images; its range from the export.json beside it."""
    path = toy_onnx(tmp_path / "fixed.onnx", input_dims=("batch", 4, 8, 8))
    (tmp_path / "export.json").write_text(json.dumps(conventions.record((0, 4096))))
    predictor = evaluate_cli.load_predictor(str(path))
    assert predictor.fixed_shape == (8, 8) and predictor.ranges == ((0.0, 4096.0), (0.0, 1.0))
    assert run_cli("eval", path, "--data", toy_root, "--out", tmp_path / "ev", "--no-progress") == 0
    assert float(mean_row(tmp_path / "ev" / "metrics.csv")[-1]["psnr_db"]) > 40.0


def test_process_onnx_on_one_frame(tmp_path):
    """A closed-form .onnx (unpack the 2x2 cells, one gain per colour): the PNG is that, exactly."""
    scales = (1.0, 0.75, 0.5)
    path = isp_onnx(tmp_path / "unpack.onnx", mosaic_weight(scales))
    mosaic = np.random.default_rng(4).integers(0, 1021, (64, 96), dtype=np.uint16)
    image_io.write_png(tmp_path / "frame.png", mosaic)
    assert run_cli("process", path, tmp_path / "frame.png", tmp_path / "out.png", "--no-progress") == 0
    expected = mosaic_reference(normalize(pack(mosaic))[None], scales)[0]
    np.testing.assert_array_equal(image_io.read_rgb(tmp_path / "out.png"), image_io.to_uint8(expected))


def test_eval_classic_baseline(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli("eval", "classic", "--data", data_root, "--split", "train", "--no-progress") == 0
    rows = mean_row(tmp_path / "runs" / "classic" / "eval" / "train" / "metrics.csv")
    assert len(rows) == 5 and 0 < float(rows[-1]["psnr_db"]) < 100
    lines = capsys.readouterr().out.splitlines()
    assert lines[1 + next(i for i, line in enumerate(lines) if line.startswith("model "))].startswith("classic")


def test_process_dataset_png_whole_and_tiled(run, keras_model, tmp_path):
    rng = np.random.default_rng(5)
    mosaic = rng.integers(0, 1021, (128, 96), dtype=np.uint16)
    raw_path = tmp_path / "frame.png"
    image_io.write_png(raw_path, mosaic)
    assert run_cli("process", run[0], raw_path, tmp_path / "whole.png", "--no-progress") == 0
    assert run_cli("process", run[0], raw_path, tmp_path / "tiled.png", "--tile", 32, "--overlap", 16,
                   "--no-progress") == 0
    whole = image_io.read_rgb(tmp_path / "whole.png")
    expected = image_io.to_uint8(keras_model(normalize(pack(mosaic))[None]).numpy()[0])
    np.testing.assert_array_equal(whole, expected)
    tiled = image_io.read_rgb(tmp_path / "tiled.png")
    assert np.abs(tiled.astype(int) - whole.astype(int))[8:-8, 8:-8].max() <= 1


def test_process_classic_and_fixed_tflite(run, keras_model, data_root, tmp_path):
    pair = dataset.load_splits(str(data_root))["val"][0]
    assert run_cli("process", "classic", pair.raw_path, tmp_path / "classic.png", "--no-progress") == 0
    raw, _ = dataset.load_pair(pair)
    np.testing.assert_array_equal(image_io.read_rgb(tmp_path / "classic.png"),
                                  image_io.to_uint8(classic_isp(raw, SensorProfile())))
    fixed = tmp_path / "model.tflite"
    fixed.write_bytes(convert(keras_model, "fp32", (8, 8, 4)))
    assert run_cli("process", fixed, pair.raw_path, tmp_path / "fixed.png", "--no-progress") == 0
    assert image_io.read_rgb(tmp_path / "fixed.png").shape == (32, 32, 3)


def test_process_camera_dng(run, keras_model, tmp_path):
    # Packed 32x48: multiples of 16, so the frame runs at its own size (no mirror padding at the edge).
    mosaic = np.random.default_rng(2).integers(64, 4000, (64, 96)).astype(np.uint16)
    dng = tmp_path / "shot.dng"
    write_dng(dng, mosaic, [COLOUR_CODE[c] for c in "GRBG"])
    assert run_cli("process", run[0], dng, tmp_path / "shot.png", "--no-progress") == 0
    # GRBG cell black levels (60, 61, 62, 63) in raster order -> channels [B, Gb, R, Gr] = [62, 60, 61, 63].
    profile = SensorProfile(cfa="GRBG", black_level=(62, 60, 61, 63), white_level=4095)
    expected = keras_model(normalize(pack(mosaic, profile), profile)[None]).numpy()[0]
    np.testing.assert_array_equal(image_io.read_rgb(tmp_path / "shot.png"), image_io.to_uint8(expected))


def test_camera_raw_follows_the_runs_channel_order(tmp_path):
    mosaic = np.random.default_rng(3).integers(64, 4000, (40, 48)).astype(np.uint16)
    dng = tmp_path / "shot.dng"
    write_dng(dng, mosaic, [COLOUR_CODE[c] for c in "GRBG"])
    packed, profile = evaluate_cli.read_input(str(dng), config_mod.resolve({"channel_order": "R,Gb,Gr,B"}))
    assert profile.channel_order == ("R", "Gb", "Gr", "B") and profile.black_level == (61, 60, 63, 62)
    np.testing.assert_allclose(packed[..., 0], (mosaic[0::2, 1::2] - 61) / (4095 - 61), rtol=1e-6)


def test_user_errors(run, data_root, tmp_path):
    with pytest.raises(ExportError, match="name it \\*.png"):
        run_cli("process", run[0], "in.png", tmp_path / "out.jpg")
    other = tmp_path / "checkpoints" / "epoch3.weights.h5"
    other.parent.mkdir()
    other.write_bytes(b"")
    with pytest.raises(ExportError, match="epoch3.weights.h5: not a checkpoint"):
        run_cli("eval", other)
    with pytest.raises(ExportError, match="no 'test' split"):
        run_cli("eval", "classic", "--data", data_root, "--split", "test")
    with pytest.raises(ISPError, match="not a run folder"):
        run_cli("eval", tmp_path / "nothing")
    with pytest.raises(ExportError, match="nothing.onnx: no such .onnx file"):
        run_cli("eval", tmp_path / "nothing.onnx")


@pytest.mark.parametrize("command", ["eval", "process"])
def test_help(command, capsys):
    with pytest.raises(SystemExit):
        run_cli(command, "--help")
    text = capsys.readouterr().out
    assert "classic" in text and "--black-level" in text and "--qat" in text and ".onnx" in text


@pytest.fixture(scope="module")
def leveled_root(tmp_path_factory):
    """Synthetic val pairs of a sensor with black levels 62,60,58,61 and white 1023."""
    from test_data_levels import write_leveled_tree
    return write_leveled_tree(tmp_path_factory.mktemp("leveled"), "val")


def test_eval_auto_levels_are_estimated_from_the_split(leveled_root, tmp_path, capsys):
    out = tmp_path / "auto"
    assert run_cli("eval", "classic", "--data", leveled_root, "--black-level", "auto", "--white-level", "auto",
                   "--out", out, "--no-progress") == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if line.startswith("auto levels from the val RAWs"))
    black = [float(b) for b in line.split("black ")[1].split(",")[:4]]
    np.testing.assert_allclose(black, (62, 60, 58, 61), atol=2)
    assert "white 1023" in line and "dark floor" not in text
    assert run_cli("eval", "classic", "--data", leveled_root, "--out", tmp_path / "zero", "--no-progress") == 0
    assert "dark floor" in capsys.readouterr().out  # the default black level 0 is far below the data's floor


def test_process_png_with_auto_levels_from_the_frame(run, leveled_root, tmp_path, capsys):
    raw_png = leveled_root / "val" / "mediatek_raw" / "0.png"
    assert run_cli("process", "classic", raw_png, tmp_path / "zero.png", "--no-progress") == 0
    assert "dark floor" in capsys.readouterr().out
    assert run_cli("process", "classic", raw_png, tmp_path / "auto.png", "--black-level", "auto",
                   "--white-level", "auto", "--no-progress") == 0
    assert "dark floor" not in capsys.readouterr().out
    assert image_io.read_rgb(tmp_path / "auto.png").mean() < image_io.read_rgb(tmp_path / "zero.png").mean()
