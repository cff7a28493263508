"""Rule parity with the classic TFLite GPU delegate: per rule, one graph it refuses and one it accepts.

Graphs are tiny tf.functions converted with the stock TFLiteConverter; where the converter never
writes a violating graph (a stride of 0, a SIGN_BIT activation, an op version) one field of a
converted graph is edited in the flatbuffer.
"""
import pytest
import tensorflow as tf
import tf_keras as keras

from tflite_export import gpu_check, gpu_rules
from tflite_export.gpu_graph import op_code_name
from tflite_export_testing import convert_function

X = tf.TensorSpec([1, 8, 8, 4], tf.float32, name="x")


def spec(shape, dtype=tf.float32, name="y"):
    return tf.TensorSpec(shape, dtype, name=name)


def report_of(tmp_path, tflite_bytes, name="m", **kwargs):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(tflite_bytes)
    return gpu_check.check(path, **kwargs)


def refused_rules(report):
    """{rule id} over every op the rules refuse."""
    return {finding.rule for op in report.ops for finding in op.reasons}


def edited(tflite_bytes, op_name, edit):
    """Apply `edit(op, model)` to the first op named `op_name`; returns new .tflite bytes."""
    model = gpu_check.read_flatbuffer(tflite_bytes, "edited")
    op = next(o for o in model.subgraphs[0].operators
              if op_code_name(model.operatorCodes[o.opcodeIndex]) == op_name)
    edit(op, model)
    return gpu_check.write_flatbuffer(model)


def keras_bytes(layer, shape=(8, 8, 4)):
    inputs = keras.Input(shape, batch_size=1)
    return convert_function(keras.Model(inputs, layer(inputs)), spec([1, *shape], name="x"))


def _set_version(version):
    def edit(op, model):
        model.operatorCodes[op.opcodeIndex].version = version
    return edit


def _set_option(field, value):
    def edit(op, model):
        setattr(op.builtinOptions, field, value)
    return edit


# (rule, refused graph, accepted graph); a graph is a zero-argument function returning .tflite bytes
CASES = [
    ("op-supported", lambda: convert_function(lambda x: tf.reverse(x, [2]), X),
     lambda: convert_function(tf.nn.relu, X)),
    ("op-version", lambda: edited(convert_function(tf.nn.relu, X), "RELU", _set_version(3)),
     lambda: edited(convert_function(tf.nn.relu, X), "RELU", _set_version(2))),
    ("logical-op", lambda: convert_function(lambda x: tf.where(x > 0.5, x, 0.0) + tf.cast(x > 0.5, tf.float32), X),
     lambda: convert_function(lambda x: tf.cast(x > 0.5, tf.float32) * x, X)),
    ("cast-bool", lambda: convert_function(lambda x, b: tf.cast(b, tf.float32) * x, X, spec([1, 8, 8, 4], tf.bool)),
     lambda: convert_function(lambda x: tf.cast(x > 0.5, tf.float32) * x, X)),
    ("runtime-inputs", lambda: convert_function(tf.tile, X, spec([4], tf.int32)),
     lambda: convert_function(lambda x: tf.tile(x, [1, 2, 1, 1]), X)),
    ("input-count", lambda: convert_function(lambda x: tf.add_n([x, x * 2.0, x * 3.0]), X),
     lambda: convert_function(lambda x: tf.add_n([x, x * 2.0]), X)),
    ("fused-activation", lambda: edited(keras_bytes(keras.layers.Conv2D(4, 3, activation="relu")), "CONV_2D",
                                        _set_option("fusedActivationFunction", gpu_rules.ACTIVATION_SIGN_BIT)),
     lambda: keras_bytes(keras.layers.Conv2D(4, 3, activation="relu"))),
    ("broadcast", lambda: convert_function(lambda x, y: x + y, X, spec([8, 4])),
     lambda: convert_function(lambda x, y: x + y, X, spec([8, 8, 4]))),
    ("mul-shapes", lambda: convert_function(lambda x, y: x * y, spec([1, 8, 1, 4], name="x"), spec([1, 1, 8, 4])),
     lambda: convert_function(lambda x, y: x * y, X, spec([1, 1, 1, 4]))),
    ("cast-types", lambda: convert_function(lambda x: tf.cast(x, tf.int64), X),
     lambda: convert_function(lambda x: tf.cast(tf.cast(x * 9.0, tf.int32), tf.float32), X)),
    ("gather", lambda: convert_function(lambda x: tf.gather(x, [[0, 1], [2, 3]], axis=3), X),
     lambda: convert_function(lambda x: tf.gather(x, [3, 2, 1, 0], axis=3), X)),
    ("depthwise", lambda: keras_bytes(keras.layers.DepthwiseConv2D(3, depth_multiplier=2)),
     lambda: keras_bytes(keras.layers.DepthwiseConv2D(3, depth_multiplier=1))),
    ("window", lambda: edited(keras_bytes(keras.layers.Conv2D(4, 3)), "CONV_2D", _set_option("strideW", 0)),
     lambda: keras_bytes(keras.layers.Conv2D(4, 3, strides=2))),
    ("pad", lambda: convert_function(lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"), X),
     lambda: convert_function(lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT"), X)),
    ("slice", lambda: convert_function(lambda x: x[:, 0] * 2.0, X),
     lambda: convert_function(lambda x: x[:, 1:5] * 2.0, X)),
    ("reduce-axes", lambda: convert_function(lambda x, a: tf.reduce_mean(x, a, keepdims=True), X, spec([1], tf.int32)),
     lambda: convert_function(lambda x: tf.reduce_mean(x, [1, 2], keepdims=True), X)),
    ("resize", lambda: convert_function(lambda x: tf.raw_ops.ResizeBilinear(
        images=x, size=[16, 16], align_corners=True, half_pixel_centers=True), X),
     lambda: convert_function(lambda x: tf.image.resize(x, [16, 16]), X)),
    ("block-size", lambda: edited(convert_function(lambda x: tf.nn.depth_to_space(x, 2), X), "DEPTH_TO_SPACE",
                                  _set_option("blockSize", 1)),
     lambda: convert_function(lambda x: tf.nn.depth_to_space(x, 2), X)),
    ("softmax", lambda: edited(convert_function(tf.nn.softmax, X), "SOFTMAX", _set_option("beta", 2.0)),
     lambda: convert_function(tf.nn.softmax, X)),
    ("select", lambda: convert_function(lambda x, y: tf.where(x > 0.5, x, y), X, spec([1, 1, 1, 4])),
     lambda: convert_function(lambda x, y: tf.where(x > 0.5, x, y), X, spec([1, 8, 8, 4]))),
    ("fully-connected", lambda: edited(keras_bytes(keras.layers.Dense(8), (16,)), "FULLY_CONNECTED",
                                       _set_option("weightsFormat", 1)),
     lambda: keras_bytes(keras.layers.Dense(8), (16,))),
    ("cumsum", lambda: convert_function(lambda x: tf.cast(tf.cumsum(tf.cast(x * 9.0, tf.int32), 3), tf.float32), X),
     lambda: convert_function(lambda x: tf.cumsum(x, 3), X)),
    ("one-hot", lambda: convert_function(lambda i: tf.one_hot(i, 4), spec([4, 2], tf.int32, "i")),
     lambda: convert_function(lambda i: tf.one_hot(i, 4), spec([1, 4], tf.int32, "i"))),
    ("tensor-types", lambda: convert_function(lambda x: tf.cast(tf.cast(x * 9.0, tf.int32) + 1, tf.float32), X),
     lambda: convert_function(lambda x: x + 1.0, X)),
    ("tensor-rank", lambda: convert_function(lambda x: tf.reshape(tf.reshape(x, [1, 8, 8, 2, 2]) * 2.0,
                                                                  [1, 8, 8, 4]), X),
     lambda: convert_function(lambda x: tf.reshape(tf.reshape(x, [1, 8, 16, 2]) * 2.0, [1, 8, 8, 4]), X)),
]


@pytest.mark.parametrize("rule, refused, accepted", CASES, ids=[case[0] for case in CASES])
def test_rule_refuses_one_graph_and_accepts_the_other(tmp_path, rule, refused, accepted):
    assert rule in gpu_rules.RULES
    bad = report_of(tmp_path, refused(), "refused")
    assert rule in refused_rules(bad), gpu_check_summary(bad)
    good = report_of(tmp_path, accepted(), "accepted")
    assert good.fully_delegated, gpu_check_summary(good)


def gpu_check_summary(report):
    from tflite_export.gpu_check_cli import format_ops
    return format_ops(report)


def test_the_six_graphs_of_issue_12_are_refused_with_the_delegates_reason(tmp_path):
    graphs = {
        "ADD_N": (lambda: convert_function(lambda x: tf.add_n([x, x * 2.0, x * 3.0]), X), "only 2"),
        "CAST": (lambda: convert_function(lambda x: tf.cast(x, tf.int64), X), "FLOAT32 -> INT64"),
        "DEPTHWISE_CONV_2D": (lambda: keras_bytes(keras.layers.DepthwiseConv2D(3, depth_multiplier=2)),
                              "depth multiplier 2 on 4 input channels"),
        "MIRROR_PAD": (lambda: convert_function(lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], "SYMMETRIC"),
                                                X), "SYMMETRIC"),
        "MUL": (lambda: convert_function(lambda x, y: x * y, spec([1, 8, 1, 4], name="x"), spec([1, 1, 8, 4])),
                "each is smaller"),
        "STRIDED_SLICE": (lambda: convert_function(lambda x: x[:, 0] * 2.0, X), "shrinkAxisMask"),
    }
    for op_name, (build, reason) in graphs.items():
        report = report_of(tmp_path, build(), op_name)
        refused = {op.op: " ".join(map(str, op.reasons)) for op in report.ops if op.reasons}
        assert not report.fully_delegated and reason in refused.get(op_name, ""), (op_name, refused)


def test_partitions_only_the_largest_is_delegated_by_default(tmp_path):
    """RELU | REVERSE_V2 (CPU only) | MUL, LOGISTIC: two GPU partitions of 1 and 2 ops."""
    tflite_bytes = convert_function(lambda x: tf.sigmoid(tf.reverse(tf.nn.relu(x), [2]) * 3.0), X)
    default = report_of(tmp_path, tflite_bytes)
    where = {op.op: op.where for op in default.ops}
    assert sorted(len(p) for p in default.gpu_partitions) == [1, 2]
    assert where == {"RELU": "CPU (partition not delegated)", "REVERSE_V2": "CPU (unsupported)",
                     "MUL": "GPU", "LOGISTIC": "GPU"}
    assert default.num_gpu_ops == 2 and default.status == "partially delegated"
    two = report_of(tmp_path, tflite_bytes, max_partitions=2)
    assert two.num_gpu_ops == 3 and {op.op for op in two.ops if not op.gpu} == {"REVERSE_V2"}


def test_partitions_follow_data_dependencies_not_execution_order(tmp_path):
    """Two GPU branches independent of the CPU op join one partition even if the CPU op runs between them."""
    def fn(x):
        left = tf.nn.relu(x) * 2.0
        cpu = tf.reverse(x, [2])
        return tf.concat([left + 1.0, cpu], axis=3)

    report = report_of(tmp_path, convert_function(fn, X))
    ops_on_gpu = {op.op for op in report.ops if op.gpu}
    assert "REVERSE_V2" not in ops_on_gpu and {"RELU", "MUL", "ADD"} <= ops_on_gpu


def test_int8_runs_only_as_quantized_ops(tmp_path):
    import numpy as np
    from tflite_export.convert import convert
    from tflite_export_testing import tiny_isp_model
    calibration = [np.random.default_rng(0).random((1, 8, 8, 4), dtype=np.float32) for _ in range(2)]
    int8 = convert(tiny_isp_model(), "int8", (8, 8, 4), calibration)
    assert report_of(tmp_path, int8).fully_delegated
    plain = report_of(tmp_path, int8, allow_quant_ops=False)
    assert {"op-supported", "tensor-types"} <= refused_rules(plain)


def test_every_rule_names_its_source():
    for rule, (what, source) in gpu_rules.RULES.items():
        assert what and ("[MB]" in source or "[GC]" in source or source.startswith("toolkit rule")), rule
