"""The classic TFLite GPU delegate's per-node rules (TfLiteGpuDelegateV2, as pinned by TF 2.21).

Re-expressed from the delegate's own sources (never copied):
  [MB] tensorflow/lite/delegates/gpu/common/model_builder.cc: NewOperationParser (which op codes
       have a parser), each parser's IsSupported (CheckMaxSupportedOpVersion, the logical-op and
       CAST-from-bool pairs), GetOpsToReplace (allowed tensor types, IsAllAllowedTensors, the
       partition limit max_delegated_partitions);
  [GC] tensorflow/lite/tools/versioning/gpu_compatibility.cc: CheckGpuDelegateCompatibility, the
       per-op case (input counts, options, shapes), with GpuCompatibilityFlags::kStandard, the
       flag the delegate itself passes (the offline analyzer uses kEnhancedBroadcast instead).
Read at tensorflow/tensorflow gpu_compatibility.cc (commit 03a5e4e) and the model builder as
mirrored in google-ai-edge/LiteRT tflite/delegates/gpu/common/model_builder.cc (commit 34ec5ba);
TF 2.21 ships the same delegate sources as that mirror.

`findings(graph, op, allow_quant_ops)` returns the rules one node breaks, in the order the
delegate tries them. `RULES` maps every rule id to what it checks and the function that decides it.
"""
import dataclasses

from tflite_export.gpu_graph import TYPE_NAMES, T

# rule id: (what it checks, where TFLite decides it)
RULES = {
    "op-supported": ("the op code has a GPU parser (QUANTIZE/DEQUANTIZE only with quantized ops enabled)",
                     "[MB] NewOperationParser"),
    "op-version": ("op version <= the parser's maximum", "[MB] <Op>OperationParser::IsSupported, "
                   "CheckMaxSupportedOpVersion"),
    "logical-op": ("a comparison's bool output feeds exactly one CAST/SELECT/SELECT_V2 with a float output",
                   "[MB] ElementwiseOperationParser::IsSupported"),
    "cast-bool": ("CAST from bool: the bool input has one producer and one consumer, the output one consumer",
                  "[MB] CastOperationParser::IsSupported"),
    "runtime-inputs": ("number of runtime (non-constant) and constant inputs, and of outputs",
                       "[GC] CheckInputsOutputs, CheckInputsConstsOutputs, CheckConvoultionInputOutput"),
    "input-count": ("ADD/MUL take 2 inputs, ADD_N only 2, SLICE >= 3, STRIDED_SLICE >= 4",
                    "[GC] cases kTfLiteBuiltinAdd/AddN/Mul/Slice/StridedSlice"),
    "fused-activation": ("fused activation is NONE/RELU/RELU_N1_TO_1/RELU6/TANH (not SIGN_BIT)",
                         "[GC] IsActivationSupported (conv, depthwise, pooling, MUL, DIV, SUB)"),
    "broadcast": ("ADD/MUL operands of different rank >= 2: only 4-D with 3-D (batch 1), [1,1], or [b,c]",
                  "[GC] CheckAddMulBroadcastCompatibility (kStandard)"),
    "mul-shapes": ("MUL of equal rank: one operand not smaller than the other in every dimension",
                   "[GC] case kTfLiteBuiltinMul"),
    "cast-types": ("CAST type pair: bool->float, float->bool, or between float32 and int32",
                   "[GC] case kTfLiteBuiltinCast"),
    "gather": ("GATHER: params not int32, indices 1-D int32, one or two runtime inputs",
               "[GC] case kTfLiteBuiltinGather"),
    "depthwise": ("DEPTHWISE_CONV_2D: 4-D operands, out channels = in * multiplier, multiplier 1 unless 1 in channel",
                  "[GC] CheckDepthwiseConvGpuDelegateCompatibility"),
    "window": ("strides, dilations and pooling kernel sizes > 0", "[GC] CheckStrides, CheckDilation, CheckKernels"),
    "pad": ("PAD/PADV2/MIRROR_PAD: constant 4x2 or 3x2 paddings, MIRROR_PAD only REFLECT",
            "[GC] case kTfLiteBuiltinPad/Padv2/MirrorPad"),
    "slice": ("SLICE/STRIDED_SLICE on 3-D/4-D tensors, no ellipsis/new-axis/shrink-axis mask",
              "[GC] case kTfLiteBuiltinSlice/StridedSlice"),
    "reduce-axes": ("MEAN/SUM/REDUCE_*: constant int32 axes", "[GC] CheckAxesAreInt32Const"),
    "resize": ("RESIZE_BILINEAR not with both align_corners and half_pixel_centers",
               "[GC] case kTfLiteBuiltinResizeBilinear"),
    "block-size": ("DEPTH_TO_SPACE/SPACE_TO_DEPTH block_size > 1", "[GC] case kTfLiteBuiltinDepthToSpace/SpaceToDepth"),
    "softmax": ("SOFTMAX beta 1", "[GC] case kTfLiteBuiltinSoftmax"),
    "select": ("SELECT/SELECT_V2: bool/float condition, float branches shaped like the output or scalar",
               "[GC] CheckSelectV2GpuDelegateCompatibility"),
    "fully-connected": ("FULLY_CONNECTED: default weights format, runtime input first, keep_num_dims same rank",
                        "[GC] case kTfLiteBuiltinFullyConnected"),
    "cumsum": ("CUMSUM: float input/output, constant int32 axis", "[GC] CheckCumsumGpuDelegateCompatibility"),
    "one-hot": ("ONE_HOT: int32 indices, last axis, singleton leading dims, constant scalar float on/off",
                "[GC] CheckOneHotGpuDelegateCompatibility"),
    "lstm": ("LSTM: 20/24 inputs (full) or 3+2 inputs and 4 outputs (basic), tanh/sigmoid, no clipping",
             "[GC] case kTfLiteBuiltinLstm"),
    "dequantize": ("DEQUANTIZE: one input and output, not int16", "[GC] case kTfLiteBuiltinDequantize"),
    "tensor-types": ("runtime tensors float32/float16 (+int8/uint8 with quantized ops; bool/int32 where listed)",
                     "[MB] GetOpsToReplace allowed_in_types/allowed_out_types, IsAllAllowedTensors"),
    "tensor-rank": ("no operand with 5 or more dimensions", "[MB] IsAllAllowedTensors"),
    "quant-params": ("an int8/uint8 activation carries quantization parameters",
                     "toolkit rule: the delegate's quantized path reads them when it builds the graph"),
    "dynamic-shape": ("no dynamic-shape tensor (-1 in the shape signature)",
                      "toolkit rule (REFERENCE.md section 3: no dynamic-sized tensors)"),
    "partition": ("the op lies in one of the max_delegated_partitions largest GPU partitions (default 1)",
                  "[MB] GetOpsToReplace, FP16GraphPartitionHelper::GetNodesOfFirstNLargestPartitions"),
}

# Op code -> maximum op version accepted by its parser; None = the parser checks no version.
MAX_VERSION = {
    **dict.fromkeys("ABS ADD ADD_N COS DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD GELU GREATER "
                    "GREATER_EQUAL LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC MAXIMUM MINIMUM NEG "
                    "NOT_EQUAL POW RSQRT SIGN SIN SQRT SQUARE SQUARED_DIFFERENCE SUB TANH".split(), 2),
    "MUL": 3, "CONCATENATION": 2, "CONV_2D": 6, "DEPTHWISE_CONV_2D": 6, "CUMSUM": 1, "DENSIFY": 1,
    "DEQUANTIZE": 3, "QUANTIZE": 2, "FULLY_CONNECTED": 9, "GATHER": 1, "LSTM": 4, "ONE_HOT": 1,
    "PRELU": 1, "PAD": 2, "PADV2": 2, "MIRROR_PAD": 2, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2,
    **dict.fromkeys("RELU RELU6 RELU_0_TO_1 RELU_N1_TO_1 LEAKY_RELU".split(), 2),
    "RESHAPE": 1, "RESIZE_BILINEAR": 3, "RESIZE_NEAREST_NEIGHBOR": 3, "SELECT": 1, "SELECT_V2": 1,
    "SLICE": 2, "SOFTMAX": 2, "SPACE_TO_DEPTH": 2, "STRIDED_SLICE": 4, "TRANSPOSE": 4, "TRANSPOSE_CONV": 3,
    **dict.fromkeys("BATCH_MATMUL CAST DEPTH_TO_SPACE HARD_SWISH MEAN PACK REDUCE_MAX REDUCE_MIN "
                    "REDUCE_PROD SPLIT SPLIT_V SUM TILE UNPACK".split()),
}
QUANT_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
CUSTOM_PARSERS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})
LOGICAL_OPS = frozenset({"GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL"})
# parsers whose IsSupported never calls CheckGpuDelegateCompatibility
NO_COMPATIBILITY_CHECK = frozenset({"PRELU", "RELU", "RELU6", "RELU_0_TO_1", "RELU_N1_TO_1", "LEAKY_RELU",
                                    "UNPACK"}) | LOGICAL_OPS
ONE_ARG = frozenset("ABS CEIL COS ELU EXP FLOOR GELU LOG LOGISTIC NEG RSQRT SIGN SIN SQRT SQUARE TANH".split())
TWO_ARG = frozenset("ATAN2 DIV EQUAL FLOOR_DIV FLOOR_MOD GREATER GREATER_EQUAL LOGICAL_AND LESS LESS_EQUAL "
                    "MAXIMUM MINIMUM NOT_EQUAL POW SQUARED_DIFFERENCE SUB".split())
FLOATS = frozenset({T.FLOAT32, T.FLOAT16})
ACTIVATION_SIGN_BIT = 5  # schema ActivationFunctionType.SIGN_BIT
MIRROR_REFLECT = 0  # schema MirrorPadMode.REFLECT


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken rule: `rule` is a key of RULES, `message` says what the node has."""

    rule: str
    message: str

    def __str__(self):
        return f"{self.message} [{self.rule}]"


def findings(graph, op, allow_quant_ops=True):
    """Rules the node `op` of `graph` breaks, first failing delegate check first (empty = supported).

    Like the delegate: an unsupported op code or version stops the checks; the op-specific checks
    come next; the tensor-type/rank check of GetOpsToReplace runs only when those passed.
    """
    if op.custom:
        if op.name not in CUSTOM_PARSERS:
            kind = "Flex (Select TF) op" if op.name.startswith("Flex") else "custom op"
            return [Finding("op-supported", f"{kind} {op.name} has no GPU parser")]
    elif op.name not in MAX_VERSION or (op.name in QUANT_OPS and not allow_quant_ops):
        return [Finding("op-supported", f"op {op.name} has no GPU parser"
                        + (" without quantized ops" if op.name in QUANT_OPS else ""))]
    limit = MAX_VERSION.get(op.name)
    if limit is not None and op.version > limit:
        return [Finding("op-version", f"{op.name} version {op.version} (the GPU parser takes <= {limit})")]
    found = list(_parser_checks(graph, op))
    if not found and op.name not in NO_COMPATIBILITY_CHECK:
        found = list(_compatibility(graph, op))
    if not found:
        found = list(_tensor_checks(graph, op, allow_quant_ops))
    return found


def _parser_checks(graph, op):
    """Producer/consumer rules of the model builder's IsSupported (logical ops, CAST from bool)."""
    if op.name in LOGICAL_OPS:
        out = op.outputs[0]
        users = graph.consumers.get(out, [])
        if len(graph.producers.get(out, [])) != 1 or len(users) != 1:
            yield Finding("logical-op", f"{op.name} output feeds {len(users)} ops (needs exactly one)")
            return
        user = graph.ops[users[0]]
        dst = graph.tensors[user.outputs[0]].type if user.outputs else None
        if user.name not in ("CAST", "SELECT", "SELECT_V2") or dst not in FLOATS:
            yield Finding("logical-op", f"{op.name} feeds {user.name} (needs CAST/SELECT/SELECT_V2 to float)")
    elif op.name == "CAST":
        src, dst = (graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]])
        if src.type == T.BOOL and dst.type in FLOATS:
            if len(graph.producers.get(src.index, [])) != 1 or len(graph.consumers.get(src.index, [])) != 1:
                yield Finding("cast-bool", "CAST from bool whose input has several producers or consumers")
            elif len(graph.consumers.get(dst.index, [])) != 1:
                yield Finding("cast-bool", "CAST from bool to a model output (cast to float runs on the CPU)")


def _compatibility(graph, op):
    """The op's case of CheckGpuDelegateCompatibility (kStandard broadcast)."""
    name, opt = op.name, op.options
    ins, outs = graph.operands(op), graph.operands(op, "outputs")
    if name in ONE_ARG:
        yield from _counts(graph, op, runtime=1, const=0)
    elif name in TWO_ARG:
        yield from _one_or_two_operands(graph, op)
        if name in ("DIV", "SUB"):
            yield from _activation(opt)
    elif name in ("ADD", "MUL"):
        if len(op.inputs) != 2:
            yield Finding("input-count", f"{name} with {len(op.inputs)} inputs (needs 2)")
            return
        a, b = ins
        if name == "MUL" and len(a.shape) == len(b.shape):
            if any(x < y for x, y in zip(a.shape, b.shape)) and any(y < x for x, y in zip(a.shape, b.shape)):
                yield Finding("mul-shapes", f"MUL of {list(a.shape)} and {list(b.shape)}: each is smaller "
                              "than the other in some dimension")
        else:
            yield from _broadcast(name, a.shape, b.shape)
        if name == "MUL":
            yield from _activation(opt)
    elif name == "ADD_N":
        if len(op.inputs) != 2:
            yield Finding("input-count", f"ADD_N with {len(op.inputs)} inputs (the GPU takes only 2)")
    elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "MaxPoolingWithArgmax2D"):
        yield from _counts(graph, op, runtime=1, outputs=2 if op.custom else 1)
        if opt is not None:
            yield from _positive("kernel", opt.filterHeight, opt.filterWidth)
            yield from _positive("stride", opt.strideH, opt.strideW)
            yield from _activation(opt)
    elif name == "BATCH_MATMUL":
        if len(op.inputs) != 2 or len(outs) != 1:
            yield Finding("runtime-inputs", f"BATCH_MATMUL with {len(op.inputs)} inputs, {len(outs)} outputs")
    elif name == "CAST":
        yield from _counts(graph, op, runtime=1)
        yield from _cast_pair(ins[0], outs[0])
    elif name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"):
        yield from _conv_io(graph, op)
        yield from _positive("stride", opt.strideH, opt.strideW)
        if name != "TRANSPOSE_CONV":
            yield from _positive("dilation", opt.dilationHFactor, opt.dilationWFactor)
            yield from _activation(opt)
        if name == "DEPTHWISE_CONV_2D":
            yield from _depthwise(graph, op)
    elif name == "CUMSUM":
        if len(op.inputs) != 2 or ins[0].type not in FLOATS or outs[0].type != ins[0].type \
                or ins[1].type != T.INT32 or not ins[1].constant:
            yield Finding("cumsum", "CUMSUM needs a float input/output and a constant int32 axis")
    elif name == "DENSIFY":
        yield from _counts(graph, op, runtime=0)
    elif name in ("DEPTH_TO_SPACE", "SPACE_TO_DEPTH"):
        yield from _counts(graph, op, runtime=1)
        if opt is not None and opt.blockSize <= 1:
            yield Finding("block-size", f"{name} block_size {opt.blockSize} (must be > 1)")
    elif name == "DEQUANTIZE":
        if len(op.inputs) != 1 or len(outs) != 1 or ins[0].type == T.INT16:
            yield Finding("dequantize", "DEQUANTIZE needs one non-int16 input and one output")
    elif name == "FULLY_CONNECTED":
        yield from _fully_connected(graph, op)
    elif name == "GATHER":
        yield from _gather(graph, op)
    elif name in ("HARD_SWISH", "QUANTIZE", "RESHAPE", "TILE", "TRANSPOSE", "RESIZE_NEAREST_NEIGHBOR"):
        yield from _counts(graph, op, runtime=1)
    elif name == "RESIZE_BILINEAR":
        yield from _counts(graph, op, runtime=1)
        if opt is not None and opt.alignCorners and opt.halfPixelCenters:
            yield Finding("resize", "RESIZE_BILINEAR with both align_corners and half_pixel_centers")
    elif name == "LSTM":
        yield from _lstm(graph, op)
    elif name == "MEAN":
        yield from _counts(graph, op, runtime=1, const=1)
        yield from _axes(name, ins)
    elif name in ("SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
        yield from _counts(graph, op, runtime=1)
        yield from _axes(name, ins)
    elif name == "ONE_HOT":
        yield from _one_hot(op, ins)
    elif name in ("SELECT", "SELECT_V2"):
        yield from _select(ins, outs)
    elif name in ("SLICE", "STRIDED_SLICE"):
        yield from _slice(op, ins)
    elif name == "SOFTMAX":
        if opt is not None and opt.beta != 1.0:
            yield Finding("softmax", f"SOFTMAX beta {opt.beta:g} (the GPU needs beta 1)")
    elif name in ("PAD", "PADV2", "MIRROR_PAD"):
        yield from _pad(graph, op, ins)
    elif name in ("MaxUnpooling2D", "Resampler"):
        yield from _counts(graph, op, runtime=2)
    elif name == "Convolution2DTransposeBias" and len(op.inputs) < 2:
        yield Finding("runtime-inputs", "Convolution2DTransposeBias without a weights input")


def _counts(graph, op, runtime, const=None, outputs=1):
    """Exactly `runtime` non-constant inputs (and `const` constant ones when given), `outputs` outputs."""
    n_runtime = len(graph.runtime_inputs(op))
    n_const = sum(t.constant for t in graph.operands(op))
    if n_runtime != runtime or (const is not None and n_const != const) or len(op.outputs) != outputs:
        want = f"{runtime} runtime" + (f" + {const} constant" if const is not None else "")
        yield Finding("runtime-inputs", f"{op.name} has {n_runtime} runtime + {n_const} constant inputs and "
                      f"{len(op.outputs)} outputs (needs {want} inputs, {outputs} output(s))")


def _one_or_two_operands(graph, op):
    """Two-argument ops: two runtime operands, or one runtime and one constant."""
    n_runtime = len(graph.runtime_inputs(op))
    n_const = sum(t.constant for t in graph.operands(op))
    if (n_runtime, n_const) not in ((2, 0), (1, 1)) or len(op.outputs) != 1:
        yield Finding("runtime-inputs", f"{op.name} has {n_runtime} runtime + {n_const} constant inputs "
                      "(needs 2 runtime, or 1 runtime and 1 constant)")


def _conv_io(graph, op):
    n_runtime = len(graph.runtime_inputs(op))
    if n_runtime > 2 or len(op.outputs) != 1 or (n_runtime == 1 and len(op.inputs) < 2):
        yield Finding("runtime-inputs", f"{op.name} has {n_runtime} runtime inputs and {len(op.outputs)} "
                      "outputs (needs 1-2 runtime inputs incl. weights, 1 output)")


def _activation(options):
    if options is not None and getattr(options, "fusedActivationFunction", 0) == ACTIVATION_SIGN_BIT:
        yield Finding("fused-activation", "fused activation SIGN_BIT")


def _positive(what, height, width):
    if height <= 0 or width <= 0:
        yield Finding("window", f"{what} {height}x{width} (must be > 0)")


def _broadcast(name, a, b):
    """kStandard broadcast of ADD/MUL operands whose ranks differ and are both > 1."""
    if len(a) <= 1 or len(b) <= 1 or len(a) == len(b):
        return
    long, short = (a, b) if len(a) >= len(b) else (b, a)
    ok = len(long) == 4 and long[0] == 1 and len(short) == 3
    ok = ok or (len(long) == 4 and len(short) == 2 and long[0] == 1 and tuple(short) == (1, 1))
    ok = ok or (len(long) == 4 and len(short) == 2 and long[0] == short[0] and long[3] == short[1])
    if not ok:
        yield Finding("broadcast", f"{name} cannot broadcast {list(a)} with {list(b)}")


def _cast_pair(src, dst):
    ok = (src.type == T.BOOL and dst.type in FLOATS) or (src.type in FLOATS and dst.type == T.BOOL) \
        or (src.type in (T.FLOAT32, T.INT32) and dst.type in (T.FLOAT32, T.INT32))
    if not ok:
        yield Finding("cast-types", f"CAST {src.type_name} -> {dst.type_name} is not a GPU cast pair")


def _depthwise(graph, op):
    src, weights = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    bias = graph.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] is not None else None
    dst = graph.tensors[op.outputs[0]]
    multiplier = op.options.depthMultiplier
    if len(src.shape) != 4 or len(weights.shape) != 4 or len(dst.shape) != 4:
        yield Finding("depthwise", "DEPTHWISE_CONV_2D operands are not all 4-D")
        return
    problem = None
    if src.shape[0] != dst.shape[0]:
        problem = "input and output batch differ"
    elif weights.shape[3] != dst.shape[3] or dst.shape[3] != src.shape[3] * multiplier:
        problem = f"output channels {dst.shape[3]} != input channels {src.shape[3]} x multiplier {multiplier}"
    elif bias is not None and _elements(bias.shape) != dst.shape[3]:
        problem = "bias size != output channels"
    elif multiplier != 1 and src.shape[3] != 1:
        problem = f"depth multiplier {multiplier} on {src.shape[3]} input channels (only on 1 channel)"
    if problem:
        yield Finding("depthwise", f"DEPTHWISE_CONV_2D: {problem}")


def _fully_connected(graph, op):
    opt = op.options
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    problem = None
    if opt.weightsFormat != 0:
        problem = f"weights format {opt.weightsFormat} (only DEFAULT)"
    elif len(graph.runtime_inputs(op)) > 2:
        problem = "more than 2 runtime inputs"
    elif src.constant:
        problem = "a constant first input"
    elif opt.keepNumDims and len(src.shape) != len(dst.shape):
        problem = "keep_num_dims with input and output of different rank"
    if problem:
        yield Finding("fully-connected", f"FULLY_CONNECTED with {problem}")


def _gather(graph, op):
    n_runtime = len(graph.runtime_inputs(op))
    n_const = sum(t.constant for t in graph.operands(op))
    if (n_runtime, n_const) not in ((2, 0), (1, 1)) or len(op.outputs) != 1:
        yield Finding("runtime-inputs", f"GATHER has {n_runtime} runtime + {n_const} constant inputs")
        return
    params, indices = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if params.type == T.INT32:
        yield Finding("gather", "GATHER of int32 params")
    elif len(indices.shape) != 1:
        yield Finding("gather", f"GATHER with {len(indices.shape)}-D indices (only 1-D)")
    elif indices.type != T.INT32:
        yield Finding("gather", f"GATHER with {indices.type_name} indices (only int32)")


def _lstm(graph, op):
    opt = op.options
    if opt.kernelType == 0:  # FULL
        if len(op.inputs) not in (20, 24) or len(op.outputs) != 1 or opt.fusedActivationFunction != 4:
            yield Finding("lstm", "full LSTM needs 20 or 24 inputs, 1 output, tanh")
        return
    yield from _counts(graph, op, runtime=3, const=2, outputs=4)
    if opt.fusedActivationFunction != 4 or opt.cellClip != 0.0 or opt.projClip != 0.0:
        yield Finding("lstm", "basic LSTM needs tanh and no cell/projection clipping")


def _axes(name, ins):
    axes = ins[1] if len(ins) > 1 else None
    if axes is None or not axes.constant or axes.type != T.INT32:
        yield Finding("reduce-axes", f"{name} axes {axes.describe() if axes else '(none)'} are not constant int32")


def _one_hot(op, ins):
    if len(ins) != 4:
        yield Finding("one-hot", "ONE_HOT needs 4 inputs")
        return
    indices, on, off = ins[0], ins[2], ins[3]
    dims = indices.shape
    ok = indices.type == T.INT32 and (op.options.axis == -1 or (dims and op.options.axis == dims[-1]))
    ok = ok and all(d == 1 for i, d in enumerate(dims[:-1]) if not (len(dims) > 3 and i == 0))
    ok = ok and all(t.type == T.FLOAT32 and t.constant and len(t.shape) <= 1 and _elements(t.shape) <= 1
                    for t in (on, off))
    if not ok:
        yield Finding("one-hot", "ONE_HOT needs int32 indices on the last axis and constant scalar float on/off")


def _select(ins, outs):
    if len(ins) != 3 or len(outs) != 1:
        yield Finding("select", "SELECT needs 3 inputs and 1 output")
        return
    cond, then, other = ins
    if cond.type not in FLOATS | {T.BOOL} or then.type not in FLOATS or other.type not in FLOATS:
        yield Finding("select", f"SELECT of {cond.type_name}/{then.type_name}/{other.type_name} "
                      "(condition bool/float, branches float)")
        return
    for branch in (then, other):
        if branch.shape and branch.shape != outs[0].shape and (len(branch.shape) > 1 or branch.shape[0] > 1):
            yield Finding("select", f"SELECT branch {list(branch.shape)} is neither the output shape nor scalar")
        elif branch.constant and len(branch.shape) == 2:
            yield Finding("select", "SELECT with a constant 2-D branch")


def _slice(op, ins):
    need = 3 if op.name == "SLICE" else 4
    if op.name == "STRIDED_SLICE":
        opt = op.options
        for mask in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"):
            if getattr(opt, mask):
                yield Finding("slice", f"STRIDED_SLICE with {mask} {getattr(opt, mask)}")
                return
    if len(op.inputs) < need:
        yield Finding("input-count", f"{op.name} with {len(op.inputs)} inputs (needs {need})")
    elif len(ins[0].shape) not in (3, 4):
        yield Finding("slice", f"{op.name} on a {len(ins[0].shape)}-D tensor (only 3-D/4-D)")


def _pad(graph, op, ins):
    if op.name == "MIRROR_PAD" and op.options is not None and op.options.mode != MIRROR_REFLECT:
        yield Finding("pad", "MIRROR_PAD in SYMMETRIC mode (only REFLECT)")
        return
    found = list(_counts(graph, op, runtime=1))
    if found or len(ins) < 2:
        yield from found or [Finding("pad", f"{op.name} without paddings")]
        return
    dims = ins[1].shape
    if len(dims) != 2 or dims[0] not in (3, 4) or dims[1] != 2:
        yield Finding("pad", f"{op.name} paddings of shape {list(dims)} (must be 4x2 or 3x2)")


def _tensor_checks(graph, op, allow_quant_ops):
    """GetOpsToReplace: rank < 5 everywhere, allowed types on runtime tensors, quantized int8."""
    allowed_in, allowed_out = _allowed_types(op.name, allow_quant_ops)
    for role, allowed in (("inputs", allowed_in), ("outputs", allowed_out)):
        for tensor in graph.operands(op, role):
            if len(tensor.shape) >= 5:
                yield Finding("tensor-rank", f"{len(tensor.shape)}-D tensor {tensor.describe()} (at most 4-D)")
            elif not tensor.constant and tensor.type not in allowed:
                yield Finding("tensor-types", f"{role[:-1]} {tensor.describe()}: {tensor.type_name} is not "
                              f"allowed for {op.name} ({', '.join(_type_names(allowed))})")
            elif not tensor.constant and tensor.type in (T.INT8, T.UINT8) and not tensor.quantized:
                yield Finding("quant-params", f"{tensor.type_name} {role[:-1]} {tensor.describe()} has no "
                              "quantization parameters")


def _allowed_types(name, allow_quant_ops):
    """Allowed runtime tensor types (inputs, outputs) for one op code."""
    base = {T.FLOAT32, T.FLOAT16} | ({T.INT8, T.UINT8} if allow_quant_ops else set())
    extra_in, extra_out = {
        "CAST": ({T.BOOL, T.FLOAT32, T.INT32}, {T.FLOAT32, T.INT32, T.BOOL}),
        "ONE_HOT": ({T.INT32}, set()), "SELECT": ({T.BOOL}, set()), "SELECT_V2": ({T.BOOL}, set()),
        "LOGICAL_AND": ({T.BOOL}, {T.BOOL}), "GATHER": ({T.INT32}, set()),
    }.get(name, (set(), {T.BOOL} if name in LOGICAL_OPS else set()))
    return base | extra_in, base | extra_out


def _type_names(types):
    return sorted(TYPE_NAMES[t] for t in types)


def _elements(shape):
    count = 1
    for d in shape:
        count *= d
    return count
