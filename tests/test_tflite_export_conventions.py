"""Value conventions: models that bake another input/output range into their graph, evaluated with and
without --input-range/--output-range; the wrong convention must fail visibly and warn."""
import argparse
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from data import dataset, image_io
from isp.layers import DepthToSpace
from tflite_export import conventions, evaluate_cli
from tflite_export.errors import ExportError

GAIN = 4.0     # the toy ISP brightens dark RAW, as a real one does
WHITE = 1020   # the challenge white level: mosaics below hold 0..204, i.e. 0..0.2 after /1020


def toy_weights():
    """The toy ISP's 1x1 kernel, HWIO [1, 1, 4, 12], output channels in DepthToSpace's DCR order (block, colour)."""
    weights = np.zeros((1, 1, 4, 12), np.float32)
    for block in range(4):
        weights[0, 0, 2, 3 * block] = GAIN
        weights[0, 0, 1, 3 * block + 1] = weights[0, 0, 3, 3 * block + 1] = GAIN / 2
        weights[0, 0, 0, 3 * block + 2] = GAIN
    return weights


def toy_isp(x):
    """raw [1, h, w, 4] in [0, 1] (B, Gb, R, Gr) -> rgb [1, 2h, 2w, 3]: GAIN * (R, mean G, B) per 2x2 cell."""
    conv = keras.layers.Conv2D(12, 1, use_bias=False, name="toy_isp",
                               kernel_initializer=keras.initializers.Constant(toy_weights()))
    return DepthToSpace(2, name="d2s")(conv(x))


def convention_model(path, input_range=(0.0, 1.0), output_range=(0.0, 1.0), shape=(None, None, 4)):
    """A .tflite of toy_isp that expects `input_range` for black..white and outputs `output_range`."""
    raw = keras.Input(shape, batch_size=1, name="raw")
    (ilo, ihi), (olo, ohi) = input_range, output_range
    x = keras.layers.Rescaling(1.0 / (ihi - ilo), offset=-ilo / (ihi - ilo), name="to_unit")(raw)  # e.g. / 4096
    rgb = keras.layers.Rescaling(ohi - olo, offset=olo, name="from_unit")(toy_isp(x))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(raw, rgb)).convert())
    return path


def write_toy_data(root):
    """Two dark 32x32 val pairs under `root` whose targets are exactly toy_isp of their RAW (8-bit rounded)."""
    rng = np.random.default_rng(3)
    reference = keras.Model(*(lambda i: (i, toy_isp(i)))(keras.Input((None, None, 4), batch_size=1)))
    for i in range(2):
        mosaic = rng.integers(0, WHITE // 5 + 1, (32, 32), dtype=np.uint16)
        image_io.write_png(root / "val" / "mediatek_raw" / f"{i}.png", mosaic)
        image_io.write_png(root / "val" / "fujifilm" / f"{i}.png", np.zeros((32, 32, 3), np.uint8))
        pair = dataset.load_splits(root, 0.1, 0)["val"][i]
        raw, _ = dataset.load_pair(pair)
        rgb = reference(raw[None]).numpy()[0]
        image_io.write_png(root / "val" / "fujifilm" / f"{i}.png", np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return write_toy_data(tmp_path_factory.mktemp("conv_data"))


def convention_warnings(out):
    """The conventions warnings in printed output (other checks, e.g. the RAW dark floor, may warn too)."""
    return [line for line in out.splitlines() if line.startswith("warning:") and "model's output" in line]


def run_eval(model, data_root, tmp_path, *flags):
    parser = argparse.ArgumentParser(prog="isp")
    evaluate_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / f"eval_{len(list(tmp_path.iterdir()))}"
    args = parser.parse_args(["eval", str(model), "--data", str(data_root), "--out", str(out), "--no-progress",
                              *map(str, flags)])
    assert args.func(args) == 0
    return json.loads((out / "summary.json").read_text())["psnr"]


INPUT_HINT = "or --input-range=-1,1"  # the end of the input-range suggestion list
CONVENTIONS = [  # (baked-in input range, baked-in output range, flags that state it, what the warning suggests)
    ((0.0, 4096.0), (0.0, 1.0), ["--input-range", "0,4096"], "nearly constant"),  # the graph divides by 4096
    ((0.0, 1023.0), (0.0, 1.0), ["--input-range", "0,1023"], "0,1023 or 0,4095 (RAW counts)"),
    ((-1.0, 1.0), (0.0, 1.0), ["--input-range=-1,1"], INPUT_HINT),
    ((0.0, 1.0), (-1.0, 1.0), ["--output-range=-1,1"], "pass --output-range=-1,1"),
    ((0.0, 1.0), (0.0, 255.0), ["--output-range", "0,255"], "pass --output-range 0,255"),
    ((-1.0, 1.0), (-1.0, 1.0), ["--input-range=-1,1", "--output-range=-1,1"], INPUT_HINT),
]


@pytest.mark.parametrize("input_range,output_range,flags,hint", CONVENTIONS)
def test_convention_needs_its_flag_and_warns_without(input_range, output_range, flags, hint, data_root, tmp_path,
                                                     capsys):
    model = convention_model(tmp_path / "model.tflite", input_range, output_range)
    right = run_eval(model, data_root, tmp_path, *flags)
    right_out = capsys.readouterr().out
    wrong = run_eval(model, data_root, tmp_path)
    wrong_out = capsys.readouterr().out
    assert right > 40.0 and not convention_warnings(right_out)
    assert wrong < right - 15.0
    warnings = convention_warnings(wrong_out)
    assert len(warnings) == 1 and hint in warnings[0]


def test_our_model_with_a_wrong_flag_fails_and_warns(data_root, tmp_path, capsys):
    model = convention_model(tmp_path / "model.tflite")
    assert run_eval(model, data_root, tmp_path) > 40.0
    assert run_eval(model, data_root, tmp_path, "--input-range", "0,4095") < 20.0
    assert "outside 0..1" in capsys.readouterr().out


def test_export_json_beside_the_model_gives_its_conventions(data_root, tmp_path, capsys):
    model = convention_model(tmp_path / "model.tflite", (0.0, 4096.0))
    (tmp_path / "export.json").write_text(json.dumps(conventions.record((0, 4096))))
    assert conventions.resolve_ranges(model) == ((0.0, 4096.0), (0.0, 1.0))
    assert run_eval(model, data_root, tmp_path) > 40.0
    assert run_eval(model, data_root, tmp_path, "--input-range", "0,1") < 20.0  # the flag wins
    assert "nearly constant" in capsys.readouterr().out


def test_process_warns_on_one_frame(data_root, tmp_path, capsys):
    model = convention_model(tmp_path / "model.tflite", (0.0, 4096.0))
    parser = argparse.ArgumentParser(prog="isp")
    evaluate_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    raw = data_root / "val" / "mediatek_raw" / "0.png"
    for flags, warned in (([], True), (["--input-range", "0,4096"], False)):
        args = parser.parse_args(["process", str(model), str(raw), str(tmp_path / "out.png"), "--no-progress",
                                  *flags])
        assert args.func(args) == 0
        assert ("warning: the model's output is nearly constant" in capsys.readouterr().out) == warned


@pytest.mark.parametrize("text", ["0", "0,1,2", "a,b", "1,1", "0,inf"])
def test_bad_range_is_one_line_error(text):
    with pytest.raises(ExportError, match="--input-range") as info:
        conventions.parse_range(text, "--input-range")
    assert "\n" not in str(info.value)


def test_ranges_are_for_model_files_only():
    with pytest.raises(ExportError, match="apply to .tflite and .onnx files only"):
        evaluate_cli.load_predictor("classic", ranges=((0.0, 4095.0), None))


def test_output_check_names_the_cause():
    def warning_of(values):
        check = conventions.OutputCheck()
        check.observe(np.asarray(values, np.float32))
        return check.warning()
    ramp = np.linspace(0, 1, 1000)
    assert warning_of(ramp) is None
    assert "nearly constant" in warning_of(np.full(1000, 0.02))
    assert "--output-range=-1,1" in warning_of(ramp * 2 - 1.5)
    assert "--output-range 0,255" in warning_of(ramp * 255)
    assert "NaN/Inf" in warning_of(np.r_[ramp, np.nan])


def test_to_and_from_model_round_trip():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    assert np.allclose(conventions.to_model(x, (-1, 1)), x * 2 - 1)
    assert np.allclose(conventions.from_model(conventions.to_model(x, (0, 4095)), (0, 4095)), x)
