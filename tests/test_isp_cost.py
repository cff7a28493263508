"""isp.cost: known-value MACs/params/traffic on hand-made graphs, scaling, input multiple, table."""
import pytest
import tf_keras as keras

from isp.cost import cost_table, format_table, input_multiple, model_cost
from isp.errors import ISPError
from isp.layers import DepthToSpace
from isp.models import build


def _single(layer, shape=(10, 10, 4)):
    inp = keras.Input(shape, name="x")
    return keras.Model(inp, layer(inp), name="single")


def test_single_conv_known_values():
    cost = model_cost(_single(keras.layers.Conv2D(8, 3, padding="same", name="c")))
    assert cost["macs"] == 10 * 10 * 8 * 4 * 9
    assert cost["params"] == 8 * 4 * 9 + 8
    assert cost["elementwise_gops"] == 0
    assert cost["act_traffic_mb_fp32"] == pytest.approx((400 + 800) * 4 / 1e6)
    assert cost["act_traffic_mb_fp16"] == pytest.approx((400 + 800) * 2 / 1e6)
    assert cost["input"] == "10x10x4" and cost["model"] == "single"


@pytest.mark.parametrize("layer, macs", [
    (keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c"), 5 * 5 * 8 * 4 * 9),
    (keras.layers.DepthwiseConv2D(3, padding="same", name="c"), 10 * 10 * 4 * 9),
    (keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="c"), 10 * 10 * 4 * 9 * 8),
    (keras.layers.Dense(6, name="c"), 10 * 10 * 4 * 6),
    (keras.layers.SeparableConv2D(8, 3, padding="same", name="c"), 10 * 10 * 4 * 9 + 10 * 10 * 4 * 8),
    (DepthToSpace(2, name="c"), 0),
])
def test_mac_rules(layer, macs):
    assert model_cost(_single(layer))["macs"] == macs


def test_elementwise_ops_are_counted_separately():
    inp = keras.Input((10, 10, 4), name="x")
    a = keras.layers.Conv2D(8, 1, activation="relu", name="a")(inp)      # 800 fused relu
    b = keras.layers.PReLU(shared_axes=[1, 2], name="b")(a)              # 800
    s = keras.layers.Add(name="s")([a, b, b])                            # 2 * 800
    p = keras.layers.MaxPooling2D(2, name="p")(s)                        # 200 outputs * 4
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name="g")(p)  # 200 inputs
    cost = model_cost(keras.Model(inp, keras.layers.Multiply(name="m")([p, g])))  # 200
    assert cost["macs"] == 10 * 10 * 8 * 4
    assert cost["elementwise_gops"] * 1e9 == pytest.approx(800 + 800 + 1600 + 800 + 200 + 200)


def test_macs_scale_with_resolution():
    small, large = (model_cost(build("plain", (h, h, 4)))["macs"] for h in (16, 32))
    assert large == 4 * small
    small, large = (model_cost(build("unet_tiny", (h, h, 4)))["macs"] for h in (16, 32))
    assert large == pytest.approx(4 * small, rel=1e-3)  # the attention's 1x1 convs on [1, 1, C] do not scale


def test_dynamic_model_is_rejected():
    with pytest.raises(ISPError, match="fixed shape"):
        model_cost(build("plain", (None, None, 4)))


def test_layer_without_mac_rule_is_an_error():
    with pytest.raises(ISPError, match="no MAC rule"):
        model_cost(_single(keras.layers.LayerNormalization(name="ln")))


@pytest.mark.parametrize("name, multiple", [
    ("unet_s", 2), ("unet_tiny", 2), ("punet", 16), ("plain", 1), ("syenet", 1),
    ("microisp", 1),  # its stride-3 gate ends in a global mean: no constraint
])
def test_input_multiple(name, multiple):
    assert input_multiple(build(name, (None, None, 4))) == multiple


def test_input_multiple_of_a_strided_path_reaching_the_output():
    inp = keras.Input((None, None, 4), name="x")
    x = keras.layers.Conv2D(72, 3, strides=3, padding="same", name="down")(inp)
    model = keras.Model(inp, DepthToSpace(6, name="up")(x))
    assert input_multiple(model) == 3


def test_cost_table_builds_registered_models():
    rows = cost_table(["plain"], input_shape=(8, 8, 4))
    assert len(rows) == 1 and rows[0]["model"] == "plain"
    assert rows[0]["macs"] == 8 * 8 * 9 * (4 * 16 + 16 * 16 + 16 * 12)


def test_format_table_prints_every_key_and_extra_columns():
    rows = [{"model": "a", "params": 1234, "gmacs": 1.23456},
            {"model": "b", "params": 5, "gmacs": 250.0, "tflite_kb": 158.2}]
    lines = format_table(rows).splitlines()
    assert lines[0] == "| model | params | gmacs | tflite_kb |"
    assert lines[2] == "| a | 1,234 | 1.23 |  |"
    assert lines[3] == "| b | 5 | 250 | 158 |"
    ordered = format_table(rows, columns=["tflite_kb", "model"]).splitlines()
    assert ordered[0] == "| tflite_kb | model |" and ordered[3] == "| 158 | b |"
