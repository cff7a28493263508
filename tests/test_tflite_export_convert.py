"""Conversion recipes on a tiny conv + DepthToSpace model, fixed and dynamic input shapes."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter

from isp.layers import DepthToSpace
from tflite_export.convert import RECIPES, convert, op_names
from tflite_export.errors import ExportError
from tflite_export_testing import tiny_isp_model

FIXED, DYNAMIC = (8, 12, 4), (None, None, 4)
RNG = np.random.default_rng(0)
# max |tflite - keras| on a sigmoid output in [0, 1]: fp32 exact, fp16 weights, int8 (scale 1/256)
TOLERANCE = {"fp32": 1e-5, "fp16": 5e-3, "int8": 0.08, "qat": 0.08}


class NoOpQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Leaves DepthToSpace unquantized in the QAT graph (it has no weights; ranges pass through)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def raw_batch(h=8, w=12):
    return RNG.random((1, h, w, 4), dtype=np.float32)


def representative(n=8, h=8, w=12):
    return [raw_batch(h, w) for _ in range(n)]


def qat_model(model):
    """tfmot quantize-aware copy of the tiny model, DepthToSpace annotated with a no-op config."""
    qkeras = tfmot.quantization.keras

    def annotate(layer):
        if isinstance(layer, DepthToSpace):
            return qkeras.quantize_annotate_layer(layer, quantize_config=NoOpQuantizeConfig())
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    with qkeras.quantize_scope({"NoOpQuantizeConfig": NoOpQuantizeConfig, "DepthToSpace": DepthToSpace}):
        return qkeras.quantize_model(qkeras.quantize_annotate_model(annotated))


@pytest.fixture(scope="module")
def models():
    float_model = tiny_isp_model()
    return {"float": float_model, "qat": qat_model(float_model)}


def convert_recipe(models, recipe, shape, io_type="float"):
    model = models["qat" if recipe == "qat" else "float"]
    return model, convert(model, recipe, shape, representative_data=representative(), io_type=io_type)


def run(tflite_bytes, raw):
    """Run with LiteRT directly, resizing a dynamic input; float in -> float out."""
    interpreter = Interpreter(model_content=tflite_bytes)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(raw.shape), strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], raw)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


@pytest.mark.parametrize("shape", [FIXED, DYNAMIC], ids=["fixed", "dynamic"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_converts_with_builtin_ops_and_matches_keras(models, recipe, shape):
    model, tflite_bytes = convert_recipe(models, recipe, shape)
    ops = op_names(tflite_bytes)
    assert {"CONV_2D", "DEPTH_TO_SPACE", "LOGISTIC"} <= ops
    assert not any(op.startswith("Flex") for op in ops)
    interpreter = Interpreter(model_content=tflite_bytes)
    signature = list(interpreter.get_input_details()[0]["shape_signature"])
    assert signature == ([1, 8, 12, 4] if shape == FIXED else [1, -1, -1, 4])
    sizes = [(8, 12)] if shape == FIXED else [(8, 12), (6, 10)]
    for h, w in sizes:
        raw = raw_batch(h, w)
        out = run(tflite_bytes, raw)
        assert out.shape == (1, 2 * h, 2 * w, 3) and out.dtype == np.float32
        assert np.abs(out - model(raw, training=False).numpy()).max() < TOLERANCE[recipe]


def test_fp16_stores_float16_weights(models):
    _, tflite_bytes = convert_recipe(models, "fp16", FIXED)
    assert "DEQUANTIZE" in op_names(tflite_bytes)
    tensors = Interpreter(model_content=tflite_bytes).get_tensor_details()
    assert sum(t["dtype"] == np.float16 for t in tensors) >= 2  # both conv kernels at least


@pytest.mark.parametrize("recipe", ["int8", "qat"])
@pytest.mark.parametrize("io_type", ["float", "uint8"])
def test_quantized_recipes_have_int8_tensors(models, recipe, io_type):
    _, tflite_bytes = convert_recipe(models, recipe, DYNAMIC, io_type=io_type)
    interpreter = Interpreter(model_content=tflite_bytes)
    io_dtype = np.uint8 if io_type == "uint8" else np.float32
    assert interpreter.get_input_details()[0]["dtype"] == io_dtype
    assert interpreter.get_output_details()[0]["dtype"] == io_dtype
    io = {interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]}
    inner = [t for t in interpreter.get_tensor_details() if t["index"] not in io]
    assert {np.dtype(t["dtype"]) for t in inner} <= {np.dtype(np.int8), np.dtype(np.int32)}  # int32: biases
    activations = [t for t in inner if len(t["shape"]) == 4 and t["shape"][0] == 1]
    assert len(activations) >= 3 and all(t["quantization"][0] > 0 for t in activations)


def test_int8_without_representative_data_is_an_error(models):
    with pytest.raises(ExportError, match="representative data"):
        convert(models["float"], "int8", FIXED)


def test_int8_with_empty_representative_data_is_an_error(models):
    with pytest.raises(ExportError, match="empty"):
        convert(models["float"], "int8", FIXED, representative_data=[])


def test_int8_with_wrong_sample_shape_is_an_error(models):
    with pytest.raises(ExportError, match="does not fit"):
        convert(models["float"], "int8", FIXED, representative_data=representative(h=16, w=16))


@pytest.mark.parametrize("kwargs, message", [
    ({"recipe": "int4", "input_shape": FIXED}, "unknown recipe"),
    ({"recipe": "fp32", "input_shape": FIXED, "io_type": "uint8"}, "needs a quantized recipe"),
    ({"recipe": "fp32", "input_shape": (8, 8, 3)}, "input_shape"),
    ({"recipe": "fp32", "input_shape": (None, 8, 4)}, "input_shape"),
])
def test_bad_arguments_are_errors(models, kwargs, message):
    with pytest.raises(ExportError, match=message):
        convert(models["float"], **kwargs)


def test_non_builtin_op_is_refused_not_flexed():
    """tf.math.erf has no builtin TFLite kernel: the converter must fail (no SELECT_TF_OPS)."""
    raw = keras.Input((None, None, 4), batch_size=1)
    model = keras.Model(raw, keras.layers.Lambda(tf.math.erf)(raw), name="erf_model")
    with pytest.raises(ExportError, match="erf_model"):
        convert(model, "fp32", DYNAMIC)
