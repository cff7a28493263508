"""The ONNX importer op by op: each graph (onnx.helper, seeded weights) converted to tf_keras and
compared with ONNX Runtime on random NHWC-transposed inputs at two sizes, atol 1e-4."""
import os

import numpy as np
import pytest

from isp.errors import ISPError
from isp.onnx_import import rewrite
from isp.onnx_import.convert import compare, convert_onnx, keras_predict, onnx_session, random_inputs
from onnx_testing import GraphBuilder, isp_head, pixel_shuffle_6d, pixel_unshuffle_6d, save

ATOL = 1e-4
SIZES = ((16, 24), (20, 12))
I64 = np.int64


def check(tmp_path, model, channels=4, sizes=SIZES, name="graph"):
    """Convert, compare with ONNX Runtime; returns (ImportedModel, compare result)."""
    path = save(model, tmp_path / f"{name}.onnx")
    imported = convert_onnx(path)
    result = compare(onnx_session(path), keras_predict(imported.model), random_inputs(channels, sizes, seed=1))
    assert result["max_abs_diff"] < ATOL, result
    return imported, result


def unary_graph(op, **attrs):
    b = GraphBuilder()
    return b, b.model(b.op(op, [b.conv("raw", 4, 8)], **attrs))


CONV_CASES = {
    "same_3x3": dict(k=3),
    "asymmetric_pads": dict(k=3, pads=[0, 1, 1, 2]),
    "stride2_pads1": dict(k=3, strides=[2, 2]),
    "stride2_k4_pads1": dict(k=4, pads=[1, 1, 1, 1], strides=[2, 2]),
    "dilation2": dict(k=3, pads=[2, 2, 2, 2], dilations=[2, 2]),
    "valid_5x5": dict(k=5, pads=[0, 0, 0, 0]),
    "auto_same_upper_stride2": dict(k=3, pads=None, auto_pad="SAME_UPPER", strides=[2, 2]),
    "auto_same_lower": dict(k=4, pads=None, auto_pad="SAME_LOWER"),
    "auto_valid": dict(k=3, pads=None, auto_pad="VALID"),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_padding_modes(tmp_path, case):
    attrs = dict(CONV_CASES[case])
    k = attrs.pop("k")
    b = GraphBuilder()
    if attrs.get("pads", 0) is None:
        attrs.pop("pads")
        y = b.op("Conv", ["raw", b.weight(6, 4, k, k), b.const(np.zeros(6))], kernel_shape=[k, k], **attrs)
    else:
        y = b.conv("raw", 4, 6, k=k, **attrs)
    check(tmp_path, b.model(y))


@pytest.mark.parametrize("group,cout", [(2, 8), (4, 8), (4, 4)], ids=["grouped", "depthwise_x2", "depthwise"])
def test_conv_groups(tmp_path, group, cout):
    b = GraphBuilder()
    check(tmp_path, b.model(b.conv("raw", 4, cout, group=group)))


@pytest.mark.parametrize("k,stride,pads,output_padding", [(2, 2, 0, 0), (4, 2, 1, 0), (3, 2, 1, 1), (3, 1, 1, 0)])
def test_conv_transpose(tmp_path, k, stride, pads, output_padding):
    b = GraphBuilder()
    y = b.op("ConvTranspose", ["raw", b.weight(4, 5, k, k), b.const(np.linspace(-0.1, 0.1, 5))],
             kernel_shape=[k, k], strides=[stride, stride], pads=[pads] * 4, output_padding=[output_padding] * 2)
    check(tmp_path, b.model(y))


def test_batchnorm_folded_and_standalone(tmp_path):
    b = GraphBuilder()

    def stats(c):
        return [b.const(b.rng.uniform(0.5, 1.5, c)), b.const(b.rng.normal(0, 0.2, c)),
                b.const(b.rng.normal(0, 0.2, c)), b.const(b.rng.uniform(0.5, 2, c))]
    y = b.op("BatchNormalization", [b.conv("raw", 4, 8), *stats(8)], epsilon=1e-3)
    y = b.op("BatchNormalization", [b.op("Relu", [y]), *stats(8)])
    imported, _ = check(tmp_path, b.model(y))
    assert any("2 BatchNormalization / per-channel Mul, Add, Sub -> 1 folded" in note for note in imported.notes)
    assert [type(layer).__name__ for layer in imported.model.layers[1:]] == ["Conv2D", "ReLU", "DepthwiseConv2D"]


ACTIVATIONS = {
    "Relu": {}, "LeakyRelu": {"alpha": 0.2}, "Sigmoid": {}, "Tanh": {}, "HardSigmoid": {"alpha": 1 / 6},
    "HardSwish": {}, "Elu": {"alpha": 0.7}, "Abs": {}, "Neg": {},
}


@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(tmp_path, op):
    check(tmp_path, unary_graph(op, **ACTIVATIONS[op])[1])


@pytest.mark.parametrize("slope_shape", [(8, 1, 1), (1,)], ids=["per_channel", "shared"])
def test_prelu(tmp_path, slope_shape):
    b = GraphBuilder()
    check(tmp_path, b.model(b.op("PRelu", [b.conv("raw", 4, 8), b.const(b.rng.uniform(0, 0.5, slope_shape))])))


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (0.0, 6.0), (-0.3, 0.4), (None, 0.2), (0.1, None)])
def test_clip(tmp_path, lo, hi):
    b = GraphBuilder()
    bounds = [b.const(v) if v is not None else "" for v in (lo, hi)]
    check(tmp_path, b.model(b.op("Clip", [b.conv("raw", 4, 8), *bounds])))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("other", ["per_channel", "scalar", "pooled", "same_shape", "constant_first"])
def test_binary_broadcasting(tmp_path, op, other):
    b = GraphBuilder()
    x = b.op("Sigmoid", [b.conv("raw", 4, 8)])
    if other == "per_channel":
        operands = [x, b.const(b.rng.uniform(0.5, 1.5, (8, 1, 1)))]
    elif other == "scalar":
        operands = [x, b.const(1.7)]
    elif other == "constant_first":
        operands = [b.const(b.rng.uniform(0.5, 1.5, (1, 8, 1, 1))), x]
    elif other == "pooled":
        operands = [x, b.op("Sigmoid", [b.op("GlobalAveragePool", [b.conv("raw", 4, 8)])])]
    else:
        operands = [x, b.op("Sigmoid", [b.conv("raw", 4, 8)])]
    check(tmp_path, b.model(b.op(op, operands)))


def test_pow_and_unaries_with_constants(tmp_path):
    b = GraphBuilder()
    y = b.op("Sigmoid", [b.conv("raw", 4, 8)])
    y = b.op("Sqrt", [b.op("Pow", [y, b.const(2.0)])])
    y = b.op("Log", [b.op("Add", [b.op("Exp", [y]), b.const(1.0)])])
    check(tmp_path, b.model(y))


def test_concat_slice_split(tmp_path):
    b = GraphBuilder()
    a, c = b.conv("raw", 4, 6), b.conv("raw", 4, 2)
    y = b.op("Concat", [a, c], axis=1)
    first, second = b.op("Split", [y, b.const([3, 5], I64)], outputs=2, axis=1)
    part = b.op("Slice", [second, b.const([1], I64), b.const([2 ** 62], I64), b.const([1], I64)])
    check(tmp_path, b.model(b.op("Concat", [first, part, b.op("Relu", [first])], axis=1)))


@pytest.mark.parametrize("mode", ["CRD", "DCR"])
def test_depth_to_space_both_modes_with_three_colours(tmp_path, mode):
    b = GraphBuilder()
    imported, _ = check(tmp_path, b.model(isp_head(b, "raw", crd=mode == "CRD")))
    if mode == "CRD":
        assert any("CRD folded into the channels of 1 conv(s) (conv3) and 2 per-channel op(s)" in note
                   for note in imported.notes), imported.notes


def test_space_to_depth_and_6d_chains(tmp_path):
    b = GraphBuilder()
    y = b.op("SpaceToDepth", [b.conv("raw", 4, 3)], blocksize=2)          # [1, 12, H/2, W/2], ONNX order
    y = pixel_shuffle_6d(b, b.conv(y, 12, 12), channels=3)               # back to [1, 3, H, W]
    y = pixel_unshuffle_6d(b, y, channels=3)                             # PyTorch pixel_unshuffle, CRD
    y = pixel_shuffle_6d(b, b.conv(y, 12, 12, k=1), channels=3)
    imported, _ = check(tmp_path, b.model(y))
    assert any("six-dimensional" in note for note in imported.notes)
    assert not [layer for layer in imported.model.layers if "Reshape" in type(layer).__name__]


def test_pixel_unshuffle_behind_a_no_op_reshape_folds_into_the_conv(tmp_path):
    """The dynamo exporter follows the 6-D chain by a Reshape to the same shape: the CRD order still goes
    into the reading conv's input channels, with no permutation conv."""
    b = GraphBuilder()
    y = pixel_unshuffle_6d(b, b.conv("raw", 4, 3), channels=3)
    y = b.op("Reshape", [b.op("Identity", [y]), b.op("Shape", [y])])
    imported, _ = check(tmp_path, b.model(b.conv(y, 12, 12, k=1)))
    assert any("CRD folded into the channels of 1 conv(s)" in note for note in imported.notes)
    assert not [layer for layer in imported.model.layers if not layer.trainable]


def channel_probe(imported):
    """Output of `imported` for an input whose channel k holds the value k: [2h, 2w, C]."""
    x = np.broadcast_to(np.arange(12, dtype=np.float32), (1, 4, 6, 12)).copy()
    return imported.model(x).numpy()[0]


@pytest.mark.parametrize("through_conv", [False, True], ids=["no_conv_permute", "folded_into_conv"])
def test_crd_channel_order_probe(tmp_path, through_conv):
    """Input channel k = k: every output pixel (c, 2y+i, 2x+j) must come from CRD channel c*4 + i*2 + j."""
    b = GraphBuilder(channels=12)
    x = "raw"
    if through_conv:
        x = b.op("Conv", ["raw", b.const(np.eye(12).reshape(12, 12, 1, 1)), b.const(np.zeros(12))],
                 kernel_shape=[1, 1])
    path = save(b.model(b.op("DepthToSpace", [x], blocksize=2, mode="CRD")), tmp_path / "probe.onnx")
    imported = convert_onnx(path)
    out = channel_probe(imported)
    yy, xx = np.meshgrid(np.arange(8), np.arange(12), indexing="ij")
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], c * 4 + (yy % 2) * 2 + (xx % 2))
    note = " ".join(imported.notes)
    assert ("folded into the channels of 1 conv(s)" in note) == through_conv
    assert ("1x1 CONV_2D permutes" in note) != through_conv


def test_crd_permutation_passes_through_a_gated_product_into_four_convs(tmp_path):
    """SYENet's tail: (conv_a * conv_b) * scale -> x; gate = sigmoid(conv(prelu(conv(mean_HW(x))))); x * gate ->
    pixel shuffle. The CRD order goes into conv_a, conv_b, the gate's last conv (output channels) and its
    first conv (input channels): no permutation conv is left."""
    b = GraphBuilder()
    x = b.op("Mul", [b.conv("raw", 4, 12), b.conv("raw", 4, 12, k=1)])
    x = b.op("Mul", [x, b.const(b.rng.uniform(0.5, 1.5, (12, 1, 1)))])
    gate = b.op("ReduceMean", [x], axes=[2, 3], keepdims=1)
    gate = b.op("PRelu", [b.conv(gate, 12, 6, k=1), b.const(np.full((6, 1, 1), 0.2))])
    gate = b.op("Sigmoid", [b.conv(gate, 6, 12, k=1)])
    y = b.op("DepthToSpace", [b.op("Mul", [x, gate])], blocksize=2, mode="CRD")
    imported, _ = check(tmp_path, b.model(y))
    assert any("CRD folded into the channels of 4 conv(s)" in note for note in imported.notes), imported.notes
    assert all(layer.trainable for layer in imported.model.layers)


def test_crd_negative_control_fails_the_check(tmp_path, monkeypatch):
    """Flipping CRD to DCR without permuting the weights must make the ONNX Runtime check fail."""
    b = GraphBuilder()
    path = save(b.model(isp_head(b, "raw")), tmp_path / "head.onnx")
    monkeypatch.setattr(rewrite, "crd_source", lambda channels, block: np.arange(channels * block * block))
    imported = convert_onnx(path)
    result = compare(onnx_session(path), keras_predict(imported.model), random_inputs(4, SIZES, seed=1))
    assert result["max_abs_diff"] > 1e-2


RESIZE_LINEAR = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
# nearest: PyTorch's mode="nearest" (asymmetric + floor) and "nearest-exact" (half_pixel + round_prefer_floor)
# and the other mappings that TFLite's flags reproduce; the refused ones have no TFLite form and are refused
RESIZE_NEAREST = [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                  ("pytorch_half_pixel", "round_prefer_ceil"), ("align_corners", "round_prefer_floor"),
                  ("tf_half_pixel_for_nn", "floor"), ("asymmetric", "round_prefer_floor")]
RESIZE_NEAREST_REFUSED = [("half_pixel", "floor"), ("pytorch_half_pixel", "floor"), ("asymmetric", "round_prefer_ceil"),
                          ("half_pixel", "ceil")]


def resize_graph(mode, coordinate_mode, nearest_mode="round_prefer_floor", scale=2.0, by_sizes=False):
    b = GraphBuilder()
    x = b.conv("raw", 4, 5)
    if by_sizes:  # F.interpolate(size=...) from the input's own shape, as exporters write it
        shape = b.op("Shape", [x])
        hw = b.op("Slice", [shape, b.const([2], I64), b.const([4], I64)])
        hw = b.op("Cast", [b.op("Mul", [b.op("Cast", [hw], to=1), b.const(scale)])], to=7)
        sizes = b.op("Concat", [b.op("Slice", [shape, b.const([0], I64), b.const([2], I64)]), hw], axis=0)
        inputs = [x, "", "", sizes]
    else:
        inputs = [x, "", b.const([1, 1, scale, scale])]
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinate_mode}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    return b.model(b.op("Resize", inputs, **attrs))


@pytest.mark.parametrize("coordinate_mode", RESIZE_LINEAR)
@pytest.mark.parametrize("scale", [2.0, 0.5])
def test_resize_linear_every_coordinate_mode(tmp_path, coordinate_mode, scale):
    check(tmp_path, resize_graph("linear", coordinate_mode, scale=scale))


@pytest.mark.parametrize("coordinate_mode,nearest_mode", RESIZE_NEAREST)
def test_resize_nearest_every_coordinate_mode(tmp_path, coordinate_mode, nearest_mode):
    check(tmp_path, resize_graph("nearest", coordinate_mode, nearest_mode))


@pytest.mark.parametrize("coordinate_mode,nearest_mode", RESIZE_NEAREST_REFUSED)
def test_resize_nearest_without_tflite_form_is_refused(tmp_path, coordinate_mode, nearest_mode):
    path = save(resize_graph("nearest", coordinate_mode, nearest_mode), tmp_path / "nearest.onnx")
    with pytest.raises(ISPError, match=f"coordinate_transformation_mode={coordinate_mode}, nearest_mode="
                                       f"{nearest_mode} at scale .* has no exact TFLite equivalent"):
        convert_onnx(path)


def test_resize_sizes_from_shape_arithmetic_and_upsample(tmp_path):
    check(tmp_path, resize_graph("linear", "half_pixel", by_sizes=True), name="sizes")
    b = GraphBuilder()
    model = b.model(b.op("Upsample", [b.conv("raw", 4, 5), b.const([1, 1, 2, 2])], mode="nearest"), opset=9)
    path = save(model, tmp_path / "upsample.onnx")
    with pytest.raises(ISPError, match="opset 9 is not supported"):
        convert_onnx(path)


def test_resize_without_exact_tflite_form_is_refused(tmp_path):
    path = save(resize_graph("cubic", "half_pixel"), tmp_path / "cubic.onnx")
    with pytest.raises(ISPError, match="no exact TFLite equivalent"):
        convert_onnx(path)


POOLS = {
    "max_k2s2": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    "max_k3s1p1": ("MaxPool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "max_k3s2p1": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "max_ceil": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "avg_k2s2": ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    "avg_k3s1p1_exclude": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "avg_k3s1p1_include": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    "avg_k3s2p1_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                               count_include_pad=1)),
}


@pytest.mark.parametrize("case", sorted(POOLS))
def test_pooling(tmp_path, case):
    op, attrs = POOLS[case]
    b = GraphBuilder()
    check(tmp_path, b.model(b.op(op, [b.conv("raw", 4, 6)], **attrs)), sizes=((16, 24), (18, 14)))


@pytest.mark.parametrize("opset", [13, 18])
def test_global_pools_and_reductions(tmp_path, opset):
    b = GraphBuilder()
    x = b.conv("raw", 4, 8)
    axes = {"axes": [2, 3]} if opset < 18 else {}
    axis_input = [b.const([2, 3], I64)] if opset >= 18 else []
    mean = b.op("ReduceMean", [x, *axis_input], keepdims=1, **axes)
    channel_max = b.op("ReduceMax", [x, *([b.const([1], I64)] if opset >= 18 else [])], keepdims=1,
                       **({"axes": [1]} if opset < 18 else {}))
    y = b.op("Add", [b.op("Mul", [x, b.op("GlobalAveragePool", [x])]), b.op("GlobalMaxPool", [x])])
    y = b.op("Add", [b.op("Sub", [y, mean]), channel_max])
    check(tmp_path, b.model(y, opset=opset))


@pytest.mark.parametrize("mode,value", [("constant", 0.0), ("constant", 0.5), ("reflect", 0.0)])
def test_pad(tmp_path, mode, value):
    b = GraphBuilder()
    pads = b.const([0, 0, 1, 2, 0, 0, 3, 0], I64)
    y = b.op("Pad", [b.conv("raw", 4, 5), pads, b.const(value)], mode=mode)
    check(tmp_path, b.model(b.conv(y, 5, 3, pads=[0, 0, 0, 0])))


def test_squeeze_excite_with_linear_layers_and_identity(tmp_path):
    """x.mean((2, 3)) -> Linear -> ReLU -> Linear -> sigmoid -> view(N, C, 1, 1) -> x * gate."""
    b = GraphBuilder()
    x = b.op("Identity", [b.conv("raw", 4, 8)])
    g = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    g = b.op("Relu", [b.op("Gemm", [g, b.weight(4, 8), b.const(np.zeros(4))], transB=1)])
    g = b.op("Sigmoid", [b.op("Gemm", [g, b.weight(4, 8), b.const(np.full(8, 0.1))])])
    g = b.op("Reshape", [g, b.const([1, 8, 1, 1], I64)])
    check(tmp_path, b.model(b.op("Dropout", [b.op("Mul", [x, g])])))


@pytest.mark.parametrize("opset", [11, 13, 17, 18, 20])
def test_isp_head_at_every_opset(tmp_path, opset):
    b = GraphBuilder()
    check(tmp_path, b.model(isp_head(b, "raw"), opset=opset))


def test_fixed_input_size(tmp_path):
    b = GraphBuilder()
    imported, result = check(tmp_path, b.model(isp_head(b, "raw"), dims=(1, 4, 16, 24)), sizes=((16, 24),))
    assert imported.probe.sizes == [(16, 24)]
    assert any("fixed at 16x24" in note for note in imported.notes)


def test_external_weight_data(tmp_path):
    import onnx
    b = GraphBuilder()
    model = b.model(isp_head(b, "raw"))
    path = tmp_path / "external.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    assert (tmp_path / "weights.bin").stat().st_size > 1000
    imported = convert_onnx(str(path))
    result = compare(onnx_session(str(path)), keras_predict(imported.model), random_inputs(4, SIZES, seed=1))
    assert result["max_abs_diff"] < ATOL


def test_unsupported_ops_one_line_each(tmp_path):
    b = GraphBuilder()
    x = b.conv("raw", 4, 8)
    y = b.op("Softmax", [b.op("Transpose", [x], perm=[0, 1, 3, 2])], axis=1)
    y = b.op("Transpose", [y], perm=[0, 1, 3, 2])
    path = save(b.model(y), tmp_path / "bad.onnx")
    with pytest.raises(ISPError) as info:
        convert_onnx(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("unsupported ONNX op Transpose (node 'transpose") and "and 1 more" in lines[0]
    assert "permute()" in lines[0]
    assert lines[1].startswith("unsupported ONNX op Softmax") and "sigmoid" in lines[1]


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(ISPError, match="no such ONNX file"):
        convert_onnx(str(tmp_path / "missing.onnx"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(ISPError, match="not a readable ONNX file|opset"):
        convert_onnx(str(garbage))


TORCH_FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch_onnx")
TORCH_FILES = sorted(name[:-len(".onnx")] for name in os.listdir(TORCH_FIXTURES) if name.endswith(".onnx"))


@pytest.mark.parametrize("name", TORCH_FILES)
def test_files_written_by_both_torch_exporters_match_pytorch(name):
    """Real torch.onnx.export files (TorchScript and dynamo, fixtures/torch_onnx/make_fixtures.py): the
    converted model gives PyTorch's own output, and ONNX Runtime's at another size."""
    path = os.path.join(TORCH_FIXTURES, f"{name}.onnx")
    imported = convert_onnx(path)
    saved = np.load(os.path.join(TORCH_FIXTURES, f"{name}.npz"))
    got = imported.model(saved["raw"].transpose(0, 2, 3, 1)).numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, saved["rgb"], atol=ATOL)
    scale = 4095.0 if name.startswith("se_linear") else 1.0
    inputs = random_inputs(4, [(40, 56)], seed=2, value_range=(0.0, scale))
    assert compare(onnx_session(path), keras_predict(imported.model), inputs)["relative_diff"] < ATOL
    reshapes = [layer for layer in imported.model.layers if type(layer).__name__ == "Reshape"]
    assert all(len(layer.input_shape) == 2 for layer in reshapes)  # only the pooled [N, C] -> [N, 1, 1, C]
