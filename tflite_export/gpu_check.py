"""Static TFLite GPU-delegate checker: which ops of a .tflite file the GPU delegate would run.

TF 2.21's `tf.lite.experimental.Analyzer(..., gpu_compatibility=True)` no longer checks anything,
so this module reads the flatbuffer itself (with `ai_edge_litert.schema_py_generated`) and applies
the delegate's documented rules (op codes and constraints, REFERENCE.md §3) to every operator of
subgraph 0, in execution order. It is static: it never runs the model and needs no GPU.

Dynamic shapes (a `-1` in a tensor's shape signature) are a separate severity: the challenge's
`model_none.tflite` is dynamic by design, so `check(path, allow_dynamic=True)` reports them as
warnings instead of failures.
"""
import dataclasses
import json
import os

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from tflite_export.errors import ExportError

# Op codes the GPU delegate's parser accepts (REFERENCE.md §3).
GPU_OPS = frozenset("""
ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD
FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG
LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT
PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_0_TO_1
RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN
SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM
TANH TILE TRANSPOSE TRANSPOSE_CONV UNPACK
""".split())

BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                 if not name.startswith("_")}
TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}

FLOAT_TYPES = frozenset({schema.TensorType.FLOAT32, schema.TensorType.FLOAT16})
QUANTIZED_TYPES = frozenset({schema.TensorType.INT8, schema.TensorType.UINT8})
ALL = "all"
PAD_OPS = frozenset({"PAD", "PADV2", "MIRROR_PAD"})
SLICE_OPS = frozenset({"SLICE", "STRIDED_SLICE"})
REDUCE_OPS = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"})
WEIGHT_UNPACK_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})
# Activations that may be integral/boolean, by op: {op: {"inputs"|"outputs": ALL or operand indices}}.
# The delegate keeps index, mask and cast operands outside the float-only rule; everywhere else an
# int32/int64/bool/string activation means the op falls back to the CPU. An approximation of the
# delegate's per-op type checks, kept deliberately small. The paddings / axes / new-shape operands
# (input 1 of PAD, reduce and RESHAPE ops) are listed too: their own rule reports them when they
# are not constant.
INTEGRAL_OPERANDS = {
    **{op: {"inputs": {1}} for op in PAD_OPS | REDUCE_OPS | {"RESHAPE"}},
    "CAST": {"inputs": ALL, "outputs": ALL},
    "GATHER": {"inputs": {1}},
    "ONE_HOT": {"inputs": {0}},
    "SELECT": {"inputs": {0}},
    "SELECT_V2": {"inputs": {0}},
    "LOGICAL_AND": {"inputs": ALL, "outputs": ALL},
    **{op: {"outputs": ALL} for op in
       ("EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL")},
}
PARTITION_NOTE = ("partitions = maximal runs of consecutive GPU-supported ops in execution order, "
                  "an approximation of the delegate's partitioner (which follows data dependencies)")


@dataclasses.dataclass
class OpReport:
    """One operator of subgraph 0: `reasons` keep it off the GPU, `warnings` do not."""

    index: int
    op: str
    reasons: list
    warnings: list

    @property
    def gpu(self):
        """True when the GPU delegate would run this op."""
        return not self.reasons

    def to_dict(self):
        return {"index": self.index, "op": self.op, "gpu": self.gpu,
                "reasons": list(self.reasons), "warnings": list(self.warnings)}


@dataclasses.dataclass
class GpuReport:
    """Per-op verdicts for one .tflite file plus the delegation summary."""

    path: str
    ops: list
    allow_dynamic: bool
    is_dynamic: bool

    @property
    def num_gpu_ops(self):
        return sum(op.gpu for op in self.ops)

    @property
    def partitions(self):
        """Number of maximal runs of consecutive supported ops (see PARTITION_NOTE)."""
        return sum(op.gpu and (i == 0 or not self.ops[i - 1].gpu) for i, op in enumerate(self.ops))

    @property
    def fully_delegated(self):
        return bool(self.ops) and self.num_gpu_ops == len(self.ops)

    @property
    def status(self):
        """'fully delegated', 'partially delegated' or 'not delegated'."""
        if self.fully_delegated:
            return "fully delegated"
        return "partially delegated" if self.num_gpu_ops else "not delegated"

    @property
    def summary(self):
        """One line: status, k of n ops, GPU partitions."""
        return (f"{self.status}: {self.num_gpu_ops} of {len(self.ops)} ops on the GPU "
                f"in {self.partitions} GPU partition(s)")

    def to_dict(self):
        return {"path": self.path, "status": self.status, "fully_delegated": self.fully_delegated,
                "num_ops": len(self.ops), "num_gpu_ops": self.num_gpu_ops,
                "partitions": self.partitions, "summary": self.summary, "partition_note": PARTITION_NOTE,
                "is_dynamic": self.is_dynamic, "allow_dynamic": self.allow_dynamic,
                "ops": [op.to_dict() for op in self.ops]}


def read_flatbuffer(data, name):
    """Parse .tflite bytes into the schema's object tree (`ModelT`); ExportError when corrupt."""
    fix = "re-export it or check that it is a .tflite file"
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ExportError(f"{name}: not a TFLite flatbuffer (no 'TFL3' identifier); {fix}")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the generated reader raises struct/index/unicode errors on junk
        raise ExportError(f"{name}: corrupt TFLite flatbuffer ({type(exc).__name__}: {exc}); {fix}")
    if not model.subgraphs:
        raise ExportError(f"{name}: the TFLite model has no subgraph; {fix}")
    return model


def write_flatbuffer(model):
    """Serialise a `ModelT` back to .tflite bytes (for tools and tests that edit a model)."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_code_name(op_code):
    """Name of an `OperatorCodeT`: the builtin name, or the custom code for CUSTOM ops.

    Codes >= 127 live in `builtin_code` while `deprecated_builtin_code` holds 127
    (PLACEHOLDER_FOR_GREATER_OP_CODES); older files only fill the deprecated field: use the max.
    """
    if is_custom(op_code):
        return _text(op_code.customCode) or "CUSTOM"
    code = max(op_code.builtinCode, op_code.deprecatedBuiltinCode)
    return BUILTIN_NAMES.get(code, f"UNKNOWN_{code}")


def is_custom(op_code):
    """True for a CUSTOM op code (custom ops and Flex ops)."""
    return max(op_code.builtinCode, op_code.deprecatedBuiltinCode) == schema.BuiltinOperator.CUSTOM


def check(path, allow_dynamic=False):
    """Check every op of subgraph 0 of the .tflite file at `path` against the GPU-delegate rules.

    allow_dynamic: report dynamic-shape tensors as warnings (for model_none.tflite) instead of
    reasons that keep the op off the GPU. Raises ExportError for a missing or corrupt file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such .tflite file; give the path of an exported model")
    with open(path, "rb") as f:
        model = read_flatbuffer(f.read(), path)
    checker = _Checker(model)
    ops = []
    for index, op in enumerate(model.subgraphs[0].operators or []):
        reasons, dynamic = checker.op_reasons(op)
        warnings = []
        (warnings if allow_dynamic else reasons).extend(dynamic)
        ops.append(OpReport(index, checker.op_name(op), reasons, warnings))
    return GpuReport(path, ops, allow_dynamic, checker.is_dynamic())


class _Checker:
    """The rules, over one model's subgraph 0."""

    def __init__(self, model):
        self.model = model
        self.codes = model.operatorCodes
        self.tensors = model.subgraphs[0].tensors or []
        self.constants = {i for i in range(len(self.tensors)) if self.has_data(i)}
        # fp16 / sparse weights are unpacked at load time by DEQUANTIZE / DENSIFY of a constant:
        # the delegate treats their outputs as weights, not activations
        for op in model.subgraphs[0].operators or []:
            if self.op_name(op) in WEIGHT_UNPACK_OPS and \
                    all(i in self.constants for i in _operands(op.inputs)):
                self.constants.update(_operands(op.outputs))

    def op_name(self, op):
        return op_code_name(self.codes[op.opcodeIndex])

    def has_data(self, index):
        """True when the tensor has a non-empty buffer (inline data or an external offset)."""
        buffer = self.model.buffers[self.tensors[index].buffer] if self.tensors[index].buffer else None
        return buffer is not None and (
            (buffer.data is not None and len(buffer.data) > 0) or buffer.size > 0)

    def is_constant(self, index):
        """Constant = a non-empty buffer, or a DEQUANTIZE/DENSIFY output of one (unpacked weights)."""
        return index in self.constants

    def signature(self, index):
        """Shape signature of a tensor ([-1] marks a dynamic dim), or its shape when static."""
        tensor = self.tensors[index]
        for dims in (tensor.shapeSignature, tensor.shape):
            if dims is not None and len(dims):
                return [int(d) for d in dims]
        return []

    def is_dynamic(self):
        return any(-1 in self.signature(i) for i in range(len(self.tensors)))

    def op_reasons(self, op):
        """(reasons the op stays off the GPU, dynamic-shape findings) for one operator."""
        name = self.op_name(op)
        reasons = self.op_code_reasons(name, is_custom(self.codes[op.opcodeIndex]))
        inputs, outputs = _operands(op.inputs), _operands(op.outputs)
        dynamic = []  # operands with a -1 in their shape signature
        for role, indices in (("inputs", inputs), ("outputs", outputs)):
            for position, index in enumerate(indices):
                reasons += self.tensor_reasons(name, role, position, index)
                if -1 in self.signature(index):
                    dynamic.append(self.describe(index))
        reasons += self.option_reasons(name, op, inputs)
        return reasons, ([f"dynamic shape on {', '.join(dynamic)}"] if dynamic else [])

    @staticmethod
    def op_code_reasons(name, custom):
        if custom and name.startswith("Flex"):
            return [f"Flex (Select TF) op {name}: needs the TF runtime, never runs on the GPU; "
                    "rewrite the graph with builtin ops"]
        if custom:
            return [f"custom op {name}: not a builtin op, the GPU delegate cannot run it"]
        if name not in GPU_OPS:
            return [f"op {name} is not supported by the GPU delegate"]
        return []

    def tensor_reasons(self, op_name, role, position, index):
        """Rank, batch and dtype rules for one operand."""
        tensor, sig = self.tensors[index], self.signature(index)
        reasons = []
        if len(sig) >= 5:
            reasons.append(f"{len(sig)}-D tensor {self.describe(index)} (the GPU delegate takes at most 4-D)")
        if self.is_constant(index):
            return reasons
        if len(sig) == 4 and sig[0] not in (1, -1):
            reasons.append(f"batch {sig[0]} on {self.describe(index)} (the GPU delegate needs batch 1)")
        allowed = INTEGRAL_OPERANDS.get(op_name, {}).get(role, ())
        integral_ok = allowed == ALL or position in allowed
        dtype = tensor.type
        quantized = tensor.quantization is not None and tensor.quantization.scale is not None \
            and len(tensor.quantization.scale) > 0
        if dtype in FLOAT_TYPES or (dtype in QUANTIZED_TYPES and quantized) or \
                (integral_ok and dtype != schema.TensorType.STRING):
            return reasons
        detail = "without quantization parameters" if dtype in QUANTIZED_TYPES else "activation"
        reasons.append(f"{TYPE_NAMES.get(dtype, dtype)} {detail} {self.describe(index)} "
                       "(activations must be float32/float16 or quantized int8/uint8)")
        return reasons

    def option_reasons(self, name, op, inputs):
        """Op-specific constraints read from builtin options and constant operands."""
        options = op.builtinOptions
        if name == "RESIZE_BILINEAR" and options is not None and options.alignCorners \
                and options.halfPixelCenters:
            return ["RESIZE_BILINEAR with both align_corners and half_pixel_centers"]
        if name == "DEPTH_TO_SPACE" and options is not None and options.blockSize <= 1:
            return [f"DEPTH_TO_SPACE block_size {options.blockSize} (must be > 1)"]
        if name == "SOFTMAX" and options is not None and options.beta != 1.0:
            return [f"SOFTMAX beta {options.beta:g} (the GPU delegate needs beta 1)"]
        if name in PAD_OPS and len(inputs) > 1:
            if not self.is_constant(inputs[1]):
                return [f"{name} paddings {self.describe(inputs[1])} are not constant"]
            if self.signature(inputs[1]) != [4, 2]:
                return [f"{name} paddings of shape {self.signature(inputs[1])} (must be 4x2)"]
        if name in SLICE_OPS and inputs and len(self.signature(inputs[0])) not in (3, 4):
            return [f"{name} on a {len(self.signature(inputs[0]))}-D tensor (only 3-D/4-D)"]
        if name in REDUCE_OPS and len(inputs) > 1 and not self.is_constant(inputs[1]):
            return [f"{name} axes {self.describe(inputs[1])} are not constant"]
        if name == "RESHAPE" and len(inputs) > 1 and not self.is_constant(inputs[1]):
            return [f"RESHAPE to a computed shape {self.describe(inputs[1])} (a dynamic reshape)"]
        return []

    def describe(self, index):
        tensor = self.tensors[index]
        return f"'{_text(tensor.name)}' {self.signature(index)}"


def _operands(indices):
    """Tensor indices of an operator's inputs or outputs, without the -1 of omitted optional ones."""
    return [int(i) for i in (indices if indices is not None else []) if i >= 0]


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def format_report(report):
    """The report as a text table: one row per op, then the summary line."""
    width = max([len(op.op) for op in report.ops] + [2])
    lines = [f"GPU delegate check: {report.path}", f"{'#':>4}  {'op':<{width}}  gpu  notes"]
    for op in report.ops:
        notes = op.reasons + [f"warning: {w}" for w in op.warnings]
        lines.append(f"{op.index:>4}  {op.op:<{width}}  {'yes' if op.gpu else 'NO ':<3}  "
                     f"{notes[0] if notes else ''}")
        lines += [f"{'':>4}  {'':<{width}}       {note}" for note in notes[1:]]
    lines.append(report.summary)
    if report.is_dynamic and report.allow_dynamic:
        lines.append("dynamic shapes allowed (--allow-dynamic): they are listed as warnings")
    lines.append(f"note: {PARTITION_NOTE}")
    return "\n".join(lines)


def run_check_command(args):
    """`isp check-gpu` handler: print the table (or JSON); 0 when fully delegated, else 1."""
    report = check(args.model, allow_dynamic=args.allow_dynamic)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.fully_delegated else 1


def add_command(subparsers):
    """Register `check-gpu MODEL.tflite [--allow-dynamic] [--json]`."""
    parser = subparsers.add_parser(
        "check-gpu", help="statically check which ops of a .tflite file the GPU delegate runs",
        description="Read a .tflite flatbuffer and check each op of its main subgraph against the "
                    "TFLite GPU delegate's rules (supported op codes, at most 4-D tensors, batch 1, "
                    "float or quantized activations, static shapes, op-specific constraints). "
                    "Exit 0 when every op would run on the GPU, 1 otherwise, 2 for an unreadable file.")
    parser.add_argument("model", metavar="MODEL.tflite", help="the .tflite file to check")
    parser.add_argument("--allow-dynamic", action="store_true",
                        help="treat dynamic-shape tensors (a -1 in the shape signature, as in "
                             "model_none.tflite) as warnings instead of failures")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.set_defaults(func=run_check_command)
    return parser
