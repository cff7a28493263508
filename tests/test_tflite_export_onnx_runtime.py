"""OnnxModel: an NCHW .onnx seen as the NHWC ISP interface of TFLiteModel (shapes, transposes, ranges, errors)."""
import os
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

from onnx_testing import isp_onnx, mosaic_reference, mosaic_weight
from tflite_export.errors import ExportError
from tflite_export.onnx_runtime import OnnxModel

RNG = np.random.default_rng(7)
SCALES = (1.0, 0.5, 0.25)  # a different gain per colour, so a swapped channel axis shows


def raw_batch(h, w):
    return RNG.random((1, h, w, 4), dtype=np.float32)


@pytest.fixture(scope="module")
def random_file(tmp_path_factory):
    """Conv 4->12 (3x3, seeded weights) -> DepthToSpace(2, CRD) -> Sigmoid, dynamic H and W."""
    rng = np.random.default_rng(0)
    return isp_onnx(tmp_path_factory.mktemp("onnx") / "random.onnx", rng.normal(0, 0.5, (12, 4, 3, 3)),
                    bias=rng.normal(0, 0.1, 12), sigmoid=True)


def test_dynamic_model_matches_ort_on_the_nchw_input(random_file):
    model = OnnxModel(random_file, num_threads=1)
    assert model.input_shape == (1, None, None, 4) and model.output_shape == (1, None, None, 3)
    assert model.is_dynamic and model.name == str(random_file)
    assert model.input_range == model.output_range == (0.0, 1.0)
    session = onnxruntime.InferenceSession(str(random_file), providers=["CPUExecutionProvider"])
    for h, w in [(6, 10), (9, 4)]:
        raw = raw_batch(h, w)
        out = model.run(raw)
        expected = session.run(None, {"raw": raw.transpose(0, 3, 1, 2)})[0].transpose(0, 2, 3, 1)
        assert out.shape == (1, 2 * h, 2 * w, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_closed_form_unpacking_with_ranges(tmp_path):
    """Packed channel 2i + j lands in mosaic cell (i, j), colour c scaled by SCALES[c]: exact, on a non-square frame."""
    path = isp_onnx(tmp_path / "mosaic.onnx", mosaic_weight(SCALES))
    raw = raw_batch(3, 5)
    np.testing.assert_allclose(OnnxModel(path).run(raw), mosaic_reference(raw, SCALES), atol=1e-7)
    # The model sees 0..4 for black..white and its output 0..2 means black..white: 4 / 2 = 2x the unit result.
    ranged = OnnxModel(path, input_range=(0, 4), output_range=(0, 2))
    assert ranged.input_range == (0, 4) and ranged.output_range == (0, 2)
    np.testing.assert_allclose(ranged.run(raw), 2 * mosaic_reference(raw, SCALES), atol=1e-6)


def test_fixed_size_with_dynamic_batch(tmp_path):
    path = isp_onnx(tmp_path / "fixed.onnx", mosaic_weight(SCALES), input_dims=("N", 4, 8, 12))
    model = OnnxModel(path)
    assert model.input_shape == (None, 8, 12, 4) and model.output_shape == (None, 16, 24, 3)
    assert model.run(raw_batch(8, 12)).shape == (1, 16, 24, 3)
    with pytest.raises(ExportError, match=r"fixed.onnx: input of shape \[1, 8, 8, 4\] does not fit .*\[\?, 8, 12, 4\]"):
        model.run(raw_batch(8, 8))


def test_missing_dims_are_dynamic(tmp_path):
    model = OnnxModel(isp_onnx(tmp_path / "m.onnx", mosaic_weight(SCALES), input_dims=(None, 4, None, None)))
    assert model.input_shape == (None, None, None, 4) and model.output_shape == (None, None, None, 3)


def test_runtime_failure_is_one_line(tmp_path):
    """A graph that only runs at 4x4 (its fixed-size Mul constant) fails inside ORT at any other size."""
    path = isp_onnx(tmp_path / "only4.onnx", mosaic_weight(SCALES), input_scale=np.ones((1, 4, 4, 4)))
    assert OnnxModel(path).run(raw_batch(4, 4)).shape == (1, 8, 8, 3)
    with pytest.raises(ExportError, match=r"only4.onnx: ONNX Runtime failed on the NCHW input \[1, 4, 4, 6\]") as info:
        OnnxModel(path).run(raw_batch(4, 6))
    assert "\n" not in str(info.value)


def _error(path):
    with pytest.raises(ExportError) as info:
        OnnxModel(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    return str(info.value)


def test_user_errors_name_the_file_and_the_fix(tmp_path):
    assert "no such .onnx file; export it with torch.onnx.export" in _error(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file\xff" * 10)
    assert "not a loadable .onnx file" in _error(garbage) and "re-export it with torch.onnx" in _error(garbage)
    rgb_in = isp_onnx(tmp_path / "rgb_in.onnx", np.zeros((12, 3, 1, 1)), input_dims=(1, 3, "H", "W"))
    assert "input [1, 3, ?, ?] is not packed RAW [N, 4, H, W]" in _error(rgb_in)
    nhwc = isp_onnx(tmp_path / "nhwc.onnx", np.zeros((12, 8, 1, 1)), input_dims=(1, 8, 8, 4))
    assert "input [1, 8, 8, 4] is not packed RAW" in _error(nhwc)


def test_the_cli_modules_import_no_onnxruntime():
    code = "import sys, tflite_export.evaluate_cli, benchmarks.report; print('onnxruntime' in sys.modules)"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo,
                          env=dict(os.environ, PYTHONPATH=repo))
    assert done.stdout.strip() == "False"
