"""Every registered model: shapes, range, dynamic shapes, naming, get_config, weights, TFLite + GPU ops."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from isp.cost import input_multiple, model_cost
from isp.errors import ISPError
from isp.layers import CUSTOM_OBJECTS, DepthToSpace
from isp.models import build, list_models
from isp.models.unet import DEFAULT_MODEL

MODELS = list_models()
UNETS = [name for name in MODELS if name.startswith("unet_")]
SLOW_TO_CONVERT = {"microisp"}  # ~400 layers: the converter's tracing takes 20-35 s on 2 cores

# REFERENCE.md §3: op codes the TFLite GPU delegate parser accepts.
GPU_OPS = set("""
ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD
FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG
LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT
PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_0_TO_1
RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE
SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM TANH
TILE TRANSPOSE TRANSPOSE_CONV UNPACK
""".split())


def _side(name):
    """Smallest packed test side for `name`: a multiple of its input_multiple and of 8."""
    return math.lcm(8, input_multiple(build(name, (None, None, 4))))


def _raw(h, w, seed=0, batch=1):
    return np.random.default_rng(seed).uniform(0, 1, (batch, h, w, 4)).astype(np.float32)


def _check_rgb(out, batch, h, w):
    out = np.asarray(out)
    assert out.shape == (batch, 2 * h, 2 * w, 3)
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_registry_lists_the_zoo_and_default():
    assert {"unet_tiny", "unet_s", "unet_base", "punet", "microisp", "syenet", "plain"} <= set(MODELS)
    assert DEFAULT_MODEL == "unet_s" and DEFAULT_MODEL in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_fixed_shape_output_shape_and_range(name):
    side = _side(name)
    model = build(name, (side, side, 4))
    _check_rgb(model(_raw(side, side, batch=2)), 2, side, side)


@pytest.mark.parametrize("name", MODELS)
def test_dynamic_shape_runs_several_sizes(name):
    side = _side(name)
    model = build(name, (None, None, 4))
    assert model.output_shape == (None, None, None, 3)
    for h, w in ((2 * side, 3 * side), (side, side)):
        _check_rgb(model(_raw(h, w)), 1, h, w)


@pytest.mark.parametrize("name", MODELS)
def test_every_layer_named_and_no_lambda(name):
    """Auto-generated names would change between two builds (conv2d, conv2d_1, ...)."""
    first = [layer.name for layer in build(name, (None, None, 4)).layers]
    second = build(name, (None, None, 4))
    assert first == [layer.name for layer in second.layers]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in second.layers)


@pytest.mark.parametrize("name", MODELS)
def test_get_config_round_trip(name):
    side = _side(name)
    model = build(name, (None, None, 4))
    clone = keras.Model.from_config(model.get_config(), custom_objects=CUSTOM_OBJECTS)
    assert clone.count_params() == model.count_params()
    assert [type(x).__name__ for x in clone.layers] == [type(x).__name__ for x in model.layers]
    clone.set_weights(model.get_weights())
    x = _raw(side, side, seed=1)
    np.testing.assert_allclose(clone(x), model(x), atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_weights(name, tmp_path):
    side = _side(name)
    model = build(name, (None, None, 4))
    path = str(tmp_path / "weights.h5")
    model.save_weights(path)
    fresh = build(name, (None, None, 4))
    x = _raw(side, side, seed=2)
    assert not np.allclose(fresh(x), model(x), atol=1e-6)  # different random init
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh(x), model(x), atol=1e-6)


def _to_tflite(model, side):
    """Builtin-ops-only conversion with batch fixed to 1, as for the challenge's [1, 544, 960, 4]."""
    inp = keras.Input((side, side, 4), batch_size=1, name="raw")
    fixed = keras.Model(inp, model(inp))
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_CONVERT else n
                                  for n in MODELS])
def test_tflite_builtin_numerics_and_gpu_ops(name):
    side = max(32, _side(name))
    model = build(name, (side, side, 4))
    flatbuffer = _to_tflite(model, side)

    interp = Interpreter(model_content=flatbuffer)
    interp.allocate_tensors()
    x = _raw(side, side, seed=3)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    assert out.shape == (1, 2 * side, 2 * side, 3)
    np.testing.assert_allclose(out, model(x), atol=1e-4)

    plain = Interpreter(model_content=flatbuffer,
                        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = {op["op_name"] for op in plain._get_ops_details()}
    assert ops <= GPU_OPS, f"ops outside the GPU delegate list: {sorted(ops - GPU_OPS)}"
    assert "DEPTH_TO_SPACE" in ops or "TRANSPOSE_CONV" in ops
    assert max(len(t["shape"]) for t in plain.get_tensor_details()) <= 4


@pytest.mark.parametrize("name", UNETS)
def test_unet_channels_are_multiples_of_4_and_upsample_by_depth_to_space(name):
    model = build(name, (None, None, 4))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.filters % 4 == 0 for layer in convs)
    depth = sum(isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2) for layer in model.layers)
    assert depth >= 1
    assert sum(isinstance(layer, DepthToSpace) for layer in model.layers) == 1 + depth  # tail + one per level
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in model.layers)


def test_unet_sizes_fit_their_full_hd_mac_budgets():
    gmacs = {name: model_cost(build(name, (544, 960, 4)))["gmacs"] for name in UNETS}
    assert gmacs["unet_tiny"] < gmacs["unet_s"] < gmacs["unet_base"]
    assert 3 <= gmacs["unet_s"] <= 8
    assert gmacs["unet_tiny"] <= 3 and 15 <= gmacs["unet_base"] <= 25


def test_unet_width_and_depth_are_arguments():
    model = build("unet_s", (None, None, 4), width=12, depth=2)
    assert input_multiple(model) == 4
    assert model.get_layer("stem").filters == 12 and model.get_layer("mid_res0_conv1").filters == 48
    _check_rgb(model(_raw(12, 20)), 1, 12, 20)


@pytest.mark.parametrize("kwargs", [{"width": 6}, {"depth": 0}, {"output": "tanh"}])
def test_bad_unet_arguments_raise_isp_error(kwargs):
    with pytest.raises(ISPError):
        build("unet_s", (None, None, 4), **kwargs)


def test_bad_input_shape_raises_isp_error():
    with pytest.raises(ISPError, match="packed Bayer"):
        build("plain", (16, 16, 3))


def test_sigmoid_output_option():
    model = build("unet_tiny", (8, 8, 4), output="sigmoid")
    assert model.layers[-1].activation is keras.activations.sigmoid
    _check_rgb(model(_raw(8, 8)), 1, 8, 8)


def test_published_sizes_of_reference_models():
    assert 5000 <= build("syenet", (None, None, 4)).count_params() <= 7000  # SYENet: ~6K parameters
    microisp = build("microisp", (None, None, 4))
    convs = [layer for layer in microisp.layers if isinstance(layer, keras.layers.Conv2D)]
    assert all(layer.filters == 4 for layer in convs)  # MicroISP: 4-channel convs throughout
