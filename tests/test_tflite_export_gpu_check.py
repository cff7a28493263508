"""Static GPU-delegate checker: one model per rule that breaks it, plus clean models that pass."""
import argparse
import json

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from tflite_export import gpu_check, gpu_check_cli, gpu_rules
from tflite_export.gpu_check_cli import format_ops
from tflite_export.gpu_graph import op_code_name
from tflite_export.convert import convert
from tflite_export.errors import ExportError
from tflite_export_testing import convert_function, tiny_isp_model

X = tf.TensorSpec([1, 8, 8, 4], tf.float32, name="x")
X_DYNAMIC = tf.TensorSpec([1, None, None, 4], tf.float32, name="x")


@pytest.fixture(scope="module")
def keras_model():
    return tiny_isp_model()


def save(tmp_path, name, tflite_bytes):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(tflite_bytes)
    return path


def failing_rules(report):
    """{op name: set of rule ids that keep ops of that name off the GPU}."""
    rules = {}
    for op in report.ops:
        rules.setdefault(op.op, set()).update(r.rule for r in op.reasons)
    return rules


def failing_ops(report):
    """{op name: all reasons of the ops of that name that stay off the GPU, joined with ' | '}."""
    failing = {}
    for op in report.ops:
        if not op.gpu:
            failing[op.op] = " | ".join(([failing[op.op]] if op.op in failing else []) + [str(r) for r in op.reasons])
    return failing


def edited(tflite_bytes, edit, loadable=True):
    """Parse with the schema object API, apply `edit(model_t)`, re-serialise.

    loadable: also check that LiteRT still loads the edited model.
    """
    model = gpu_check.read_flatbuffer(tflite_bytes, "edited")
    edit(model)
    out = gpu_check.write_flatbuffer(model)
    if loadable:
        Interpreter(model_content=out)
    return out


def operator(model, name):
    """The first operator of subgraph 0 whose op name is `name`."""
    return next(op for op in model.subgraphs[0].operators
                if op_code_name(model.operatorCodes[op.opcodeIndex]) == name)


@pytest.mark.parametrize("recipe", ["fp32", "fp16", "int8"])
def test_clean_conv_depth_to_space_model_is_fully_delegated(keras_model, tmp_path, recipe):
    calibration = [np.random.default_rng(0).random((1, 8, 8, 4), dtype=np.float32) for _ in range(4)]
    tflite_bytes = convert(keras_model, recipe, (8, 8, 4), calibration if recipe == "int8" else None)
    report = gpu_check.check(save(tmp_path, recipe, tflite_bytes))
    assert report.fully_delegated, format_ops(report)
    assert report.status == "fully delegated" and report.partitions == 1 and not report.is_dynamic
    assert {"CONV_2D", "DEPTH_TO_SPACE"} <= {op.op for op in report.ops}


def test_dynamic_shape_is_a_separate_severity(keras_model, tmp_path):
    path = save(tmp_path, "model_none", convert(keras_model, "fp32", (None, None, 4)))
    strict = gpu_check.check(path)
    assert strict.is_dynamic and strict.status == "not delegated"
    assert all("dynamic-shape" in {r.rule for r in op.reasons} for op in strict.ops)
    relaxed = gpu_check.check(path, allow_dynamic=True)
    assert relaxed.fully_delegated and all(op.warnings for op in relaxed.ops)
    assert "warning: dynamic shape" in format_ops(relaxed)


# Violations the converter produces from plain TF functions: (case, function, specs, op, rule).
CONVERTED_VIOLATIONS = [
    ("unsupported_op", lambda x: tf.cast(tf.argmax(x, -1), tf.float32), [X], "ARG_MAX", "op-supported"),
    ("five_dims", lambda x: tf.reshape(tf.reshape(x, [1, 8, 8, 2, 2]) * 2.0, [1, 8, 8, 4]), [X],
     "MUL", "tensor-rank"),
    ("shape_op", lambda x: tf.reshape(x, tf.shape(x)[1:]), [X_DYNAMIC], "SHAPE", "op-supported"),
    ("dynamic_reshape", lambda x: tf.reshape(x, tf.shape(x)[1:]), [X_DYNAMIC], "RESHAPE", "runtime-inputs"),
    ("int32_activation", lambda x: tf.cast(tf.cast(x * 10.0, tf.int32) + 1, tf.float32), [X],
     "ADD", "tensor-types"),
    ("pad_not_constant", tf.pad, [X, tf.TensorSpec([4, 2], tf.int32)], "PAD", "runtime-inputs"),
    ("pad_2d", lambda x: tf.reshape(tf.pad(tf.reshape(x, [64, 4]), [[1, 1], [0, 0]]), [1, 66, 4, 1]), [X],
     "PAD", "pad"),
    ("slice_2d", lambda x: tf.reshape(tf.slice(tf.reshape(x, [64, 4]), [0, 0], [32, 4]), [1, 4, 8, 4]), [X],
     "SLICE", "slice"),
    ("mean_axes_not_constant", lambda x, axes: tf.reduce_mean(x, axes, keepdims=True),
     [X, tf.TensorSpec([1], tf.int32)], "MEAN", "reduce-axes"),
]


@pytest.mark.parametrize("case, fn, specs, op, rule", CONVERTED_VIOLATIONS,
                         ids=[case[0] for case in CONVERTED_VIOLATIONS])
def test_converted_violation_is_reported(tmp_path, case, fn, specs, op, rule):
    report = gpu_check.check(save(tmp_path, case, convert_function(fn, *specs)))
    assert not report.fully_delegated
    assert rule in failing_rules(report).get(op, set()), format_ops(report)


def test_batch_2_is_accepted_like_the_delegate_does(tmp_path):
    """The delegate's IsSupported checks no batch size (its shapes are BHWC)."""
    report = gpu_check.check(save(tmp_path, "batch2", convert_function(tf.nn.relu, tf.TensorSpec([2, 8, 8, 4]))))
    assert report.fully_delegated, format_ops(report)


def test_flex_op_is_reported(tmp_path):
    """tf.math.erf has no builtin kernel; with SELECT_TF_OPS it becomes the Flex op FlexErf."""
    report = gpu_check.check(save(tmp_path, "flex", convert_function(tf.math.erf, X, select_tf_ops=True)))
    assert "Flex (Select TF) op FlexErf" in failing_ops(report)["FlexErf"]


def test_custom_op_is_reported(tmp_path):
    """The converter emits no custom op for plain TF here: a RELU's op code is edited into CUSTOM 'MyOp'."""
    def to_custom(model):
        code = model.operatorCodes[operator(model, "RELU").opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "MyOp"

    # LiteRT refuses to load an unknown custom op, hence loadable=False
    custom = edited(convert_function(tf.nn.relu, X), to_custom, loadable=False)
    report = gpu_check.check(save(tmp_path, "custom", custom))
    assert "custom op MyOp" in failing_ops(report)["MyOp"]


def test_softmax_beta_is_reported(tmp_path):
    """TF folds no scale into SOFTMAX's beta, so beta is set to 2 in the flatbuffer (object API)."""
    def set_beta(model):
        operator(model, "SOFTMAX").builtinOptions.beta = 2.0

    report = gpu_check.check(save(tmp_path, "softmax", edited(convert_function(tf.nn.softmax, X), set_beta)))
    assert "SOFTMAX beta 2" in failing_ops(report)["SOFTMAX"]


def test_depth_to_space_block_1_is_reported(tmp_path):
    """TF rejects depth_to_space with block 1, so block_size is set to 1 in the flatbuffer."""
    def set_block(model):
        operator(model, "DEPTH_TO_SPACE").builtinOptions.blockSize = 1

    clean = convert_function(lambda x: tf.nn.depth_to_space(x, 2), X)
    assert gpu_check.check(save(tmp_path, "d2s", clean)).fully_delegated
    report = gpu_check.check(save(tmp_path, "d2s_1", edited(clean, set_block)))
    assert "DEPTH_TO_SPACE block_size 1" in failing_ops(report)["DEPTH_TO_SPACE"]


def test_int8_activation_without_quantization_is_reported(keras_model, tmp_path):
    """A converter never writes this: the quantization params of one int8 activation are removed."""
    calibration = [np.random.default_rng(0).random((1, 8, 8, 4), dtype=np.float32) for _ in range(4)]
    int8 = convert(keras_model, "int8", (8, 8, 4), calibration)

    def strip(model):
        conv = operator(model, "CONV_2D")
        model.subgraphs[0].tensors[conv.outputs[0]].quantization = None

    report = gpu_check.check(save(tmp_path, "stripped", edited(int8, strip)))
    assert "has no quantization parameters" in failing_ops(report)["CONV_2D"]


def test_op_codes_above_127_use_builtin_code(tmp_path):
    """GELU (150) is stored with deprecated_builtin_code 127; its name comes from builtin_code."""
    tflite_bytes = convert_function(tf.nn.gelu, X)
    codes = gpu_check.read_flatbuffer(tflite_bytes, "gelu").operatorCodes
    assert [(c.deprecatedBuiltinCode, c.builtinCode) for c in codes] == [(127, schema.BuiltinOperator.GELU)]
    report = gpu_check.check(save(tmp_path, "gelu", tflite_bytes))
    assert [op.op for op in report.ops] == ["GELU"] and report.fully_delegated


def test_status_and_summary_from_op_verdicts():
    def report(*where):
        refused = [gpu_rules.Finding("op-supported", "no")]
        ops = [gpu_check.OpReport(i, "ADD", refused if w == "refused" else [], [], delegated=w == "gpu")
               for i, w in enumerate(where)]
        return gpu_check.GpuReport("m.tflite", ops, allow_dynamic=False, is_dynamic=False,
                                   gpu_partitions=[(0,), (2,)])

    partial = report("gpu", "refused", "cpu")
    assert partial.status == "partially delegated" and partial.partitions == 2
    assert [op.where for op in partial.ops] == ["GPU", "CPU (unsupported)", "CPU (partition not delegated)"]
    assert partial.summary == ("partially delegated: 1 of 3 ops on the GPU; 2 GPU partition(s), 1 delegated "
                               "(max_delegated_partitions=1)")
    assert report("refused", "refused").status == "not delegated"
    assert report("gpu", "gpu").status == "fully delegated"
    data = partial.to_dict()
    assert (data["num_ops"], data["num_gpu_ops"], data["partition_sizes"]) == (3, 1, [1, 1])


def test_missing_and_corrupt_files_are_errors(tmp_path):
    with pytest.raises(ExportError, match="missing.tflite"):
        gpu_check.check(tmp_path / "missing.tflite")
    junk = save(tmp_path, "junk", b"\x00" * 64)
    with pytest.raises(ExportError, match="junk.tflite"):
        gpu_check.check(junk)
    truncated = save(tmp_path, "truncated", convert_function(tf.nn.relu, X)[:200])
    with pytest.raises(ExportError, match="truncated.tflite"):
        gpu_check.check(truncated)


def run_cli(argv):
    parser = argparse.ArgumentParser()
    gpu_check_cli.add_command(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_exit_codes_table_and_json(keras_model, tmp_path, capsys):
    clean = save(tmp_path, "clean", convert(keras_model, "fp32", (8, 8, 4)))
    assert run_cli(["check-gpu", str(clean)]) == 0
    table = capsys.readouterr().out
    assert "DEPTH_TO_SPACE" in table and "fully delegated: 4 of 4 ops" in table

    argmax = save(tmp_path, "argmax", convert_function(lambda x: tf.nn.relu(tf.argmax(x, -1)), X))
    assert run_cli(["check-gpu", str(argmax), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["fully_delegated"] is False
    assert any(op["op"] == "ARG_MAX" and not op["gpu"] for op in data["ops"])

    dynamic = save(tmp_path, "none", convert(keras_model, "fp32", (None, None, 4)))
    assert run_cli(["check-gpu", str(dynamic)]) == 1
    assert run_cli(["check-gpu", str(dynamic), "--allow-dynamic"]) == 0
    with pytest.raises(ExportError):
        run_cli(["check-gpu", str(tmp_path / "nope.tflite")])


def test_cli_summary_ops_list_and_partition_flag(tmp_path, capsys):
    path = save(tmp_path, "two_parts", convert_function(lambda x: tf.sigmoid(tf.reverse(tf.nn.relu(x), [2]) * 3.0), X))
    assert run_cli(["check-gpu", str(path)]) == 1
    summary = capsys.readouterr().out
    assert "4 ops:" in summary and "#1 REVERSE_V2: op REVERSE_V2 has no GPU parser [op-supported]" in summary
    assert "GPU partitions: 2 (sizes [1, 2])" in summary and "partially delegated: 2 of 4 ops" in summary
    assert run_cli(["check-gpu", str(path), "--ops", "--max-delegated-partitions", "2"]) == 1
    ops = capsys.readouterr().out.splitlines()
    assert any(line.split()[1:3] == ["RELU", "GPU"] for line in ops if line.strip()[:1].isdigit())
    with pytest.raises(ExportError, match="partitions must be >= 1"):
        run_cli(["check-gpu", str(path), "--max-delegated-partitions", "0"])


def test_summary_fits_one_screen_for_hundreds_of_ops(tmp_path):
    """300 ops of 3 types: the summary stays a few lines; the per-op list has one line per op."""
    def fn(x):
        for _ in range(100):
            x = tf.nn.relu(x * 1.5 + 0.5)
        return x

    report = gpu_check.check(save(tmp_path, "deep", convert_function(fn, X)))
    assert len(report.ops) >= 200
    assert len(gpu_check_cli.format_summary(report).splitlines()) <= 10
    assert len(gpu_check_cli.format_ops(report).splitlines()) >= len(report.ops)


def test_cli_litert_delegate_stops_with_one_line_without_gpu_adapter(tmp_path):
    """This machine has no GPU adapter: the accelerator's own failure becomes one ExportError line."""
    path = save(tmp_path, "relu", convert_function(tf.nn.relu, X))
    with pytest.raises(ExportError) as info:
        run_cli(["check-gpu", str(path), "--delegate", "litert"])
    assert "\n" not in str(info.value) and "no GPU adapter" in str(info.value)


def test_litert_split_and_failure_parsing():
    from tflite_export import litert_gpu
    log = "INFO: 3 operations will run on the GPU, and the remaining 1 operations will run on the CPU."
    assert litert_gpu.op_split(log) == (3, 1)
    assert litert_gpu.op_split("Replacing 5 out of 7 node(s) with delegate (x) node") == (5, 2)
    assert litert_gpu.op_split("nothing") == (None, None)
    assert "no GPU adapter" in litert_gpu.failure_reason("ERROR: INTERNAL: No adapters found", 1)
    assert litert_gpu.failure_reason("", -11) == "the LiteRT GPU accelerator crashed (signal 11)"
    assert litert_gpu.failure_reason("other", 1) is None
    text = gpu_check_cli.format_litert("m.tflite", {"gpu_only_compiles": False, "gpu_ops": 1, "cpu_ops": 3})
    assert "GPU-only compile fails" in text and "1 ops on the GPU, 3 on the CPU" in text
