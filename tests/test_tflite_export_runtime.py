"""TFLiteModel: loading, shape/dtype/quantization properties, dynamic resize, (de)quantization."""
import numpy as np
import pytest

from tflite_export.convert import convert
from tflite_export.errors import ExportError
from tflite_export.runtime import TFLiteModel
from tflite_export_testing import tiny_isp_model

RNG = np.random.default_rng(1)


def raw_batch(h, w):
    return RNG.random((1, h, w, 4), dtype=np.float32)


@pytest.fixture(scope="module")
def keras_model():
    return tiny_isp_model()


@pytest.fixture(scope="module")
def fixed_file(keras_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("tflite") / "model.tflite"
    path.write_bytes(convert(keras_model, "fp32", (8, 12, 4)))
    return path


@pytest.fixture(scope="module")
def dynamic_bytes(keras_model):
    return convert(keras_model, "fp32", (None, None, 4))


def test_fixed_model_properties_and_output(fixed_file, keras_model):
    model = TFLiteModel(fixed_file, num_threads=1)
    assert model.input_shape == (1, 8, 12, 4) and model.output_shape == (1, 16, 24, 3)
    assert not model.is_dynamic
    assert model.input_dtype == np.float32 and model.output_dtype == np.float32
    assert model.input_quantization == (0.0, 0)
    raw = raw_batch(8, 12)
    out = model.run(raw)
    assert out.shape == (1, 16, 24, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, keras_model(raw).numpy(), atol=1e-5)


def test_fixed_model_rejects_other_shape(fixed_file):
    with pytest.raises(ExportError, match="model.tflite.*does not fit"):
        TFLiteModel(fixed_file).run(raw_batch(8, 8))


def test_dynamic_model_resizes_only_when_shape_changes(dynamic_bytes, keras_model, monkeypatch):
    model = TFLiteModel(dynamic_bytes)
    assert model.is_dynamic and model.input_shape == (1, None, None, 4)
    resizes = []
    original = model.interpreter.resize_tensor_input
    monkeypatch.setattr(model.interpreter, "resize_tensor_input",
                        lambda *a, **k: (resizes.append(a[1]), original(*a, **k)))
    for h, w in [(6, 10), (6, 10), (12, 8), (12, 8)]:
        raw = raw_batch(h, w)
        out = model.run(raw)
        assert out.shape == (1, 2 * h, 2 * w, 3)
        np.testing.assert_allclose(out, keras_model(raw).numpy(), atol=1e-5)
    assert resizes == [[1, 6, 10, 4], [1, 12, 8, 4]]


@pytest.mark.parametrize("bad", [(1, 8, 8, 3), (2, 8, 8, 4), (8, 8, 4)])
def test_dynamic_model_rejects_wrong_rank_batch_or_channels(dynamic_bytes, bad):
    with pytest.raises(ExportError, match="does not fit"):
        TFLiteModel(dynamic_bytes).run(np.zeros(bad, np.float32))


def test_uint8_model_quantizes_input_and_dequantizes_output(keras_model):
    calibration = [raw_batch(8, 8) for _ in range(8)]
    model = TFLiteModel(convert(keras_model, "int8", (None, None, 4), calibration, io_type="uint8"))
    assert model.input_dtype == np.uint8 and model.output_dtype == np.uint8
    scale, zero_point = model.output_quantization
    assert scale > 0
    raw = raw_batch(8, 8)
    out = model.run(raw)
    assert out.dtype == np.float32 and out.shape == (1, 16, 16, 3)
    # every value lies on the output's quantization grid, and near the float model's output
    np.testing.assert_allclose(out / scale + zero_point, np.round(out / scale + zero_point), atol=1e-3)
    assert np.abs(out - keras_model(raw).numpy()).max() < 0.08


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ExportError, match="nothere.tflite"):
        TFLiteModel(tmp_path / "nothere.tflite")


@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_corrupt_file_is_an_error(fixed_file, tmp_path, damage):
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"not a flatbuffer" * 10 if damage == "junk" else fixed_file.read_bytes()[:300])
    with pytest.raises(ExportError, match="broken.tflite"):
        TFLiteModel(path)
