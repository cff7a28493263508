"""A read-only view of subgraph 0 of a parsed .tflite model, in the terms the GPU delegate uses.

The classic TFLite GPU delegate judges each node from its op code, op version, builtin options
and, per operand, the type, the dimensions and whether the tensor is constant (a read-only
buffer). It also looks at who produces and who consumes a tensor (the logical-op and CAST pairs).
This module extracts exactly that from the flatbuffer object tree (`schema.ModelT`), so the rules
in `gpu_rules` never touch the schema classes.

FP16 weights: an FP16 model stores its weights as float16 constants unpacked by DEQUANTIZE ops.
The delegate's FP16 partition helper treats those DEQUANTIZE outputs as constant float16 inputs of
their consumers, and never delegates the DEQUANTIZE nodes themselves; `Op.weight_unpack` marks them.
"""
import dataclasses

from ai_edge_litert import schema_py_generated as schema

BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items()
                 if not name.startswith("_")}
TYPE_NAMES = {code: name for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
T = schema.TensorType


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One tensor: `shape` as the interpreter allocates it (a dynamic dim shows as 1),
    `signature` with -1 for dynamic dims, `constant` = read-only buffer (or FP16 unpacked weight)."""

    index: int
    name: str
    type: int
    shape: tuple
    signature: tuple
    constant: bool
    quantized: bool

    @property
    def type_name(self):
        return TYPE_NAMES.get(self.type, str(self.type))

    def describe(self):
        return f"'{self.name}' {list(self.signature)} {self.type_name}"


@dataclasses.dataclass(frozen=True)
class Op:
    """One operator in execution order; `inputs` keeps None for an omitted optional operand."""

    index: int
    name: str
    custom: bool
    version: int
    options: object
    inputs: tuple
    outputs: tuple
    weight_unpack: bool


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


class Graph:
    """Tensors, ops, producers and consumers of subgraph 0 of a `schema.ModelT`."""

    def __init__(self, model):
        subgraph = model.subgraphs[0]
        raw_tensors = subgraph.tensors or []
        raw_ops = subgraph.operators or []
        with_data = {i for i, t in enumerate(raw_tensors) if _has_data(model, t)}
        names = [op_code_name(model.operatorCodes[op.opcodeIndex]) for op in raw_ops]
        unpack = {i for i, op in enumerate(raw_ops) if names[i] == "DEQUANTIZE"
                  and all(j in with_data and raw_tensors[j].type == T.FLOAT16 for j in _present(op.inputs))}
        constant = with_data | {j for i in unpack for j in _present(raw_ops[i].outputs)}
        self.tensors = [_tensor(i, t, i in constant) for i, t in enumerate(raw_tensors)]
        self.ops = []
        for i, op in enumerate(raw_ops):
            code = model.operatorCodes[op.opcodeIndex]
            self.ops.append(Op(i, names[i], is_custom(code), int(code.version or 1), op.builtinOptions,
                               tuple(None if j < 0 else int(j) for j in _list(op.inputs)),
                               tuple(_present(op.outputs)), i in unpack))
        self.graph_inputs = frozenset(_present(subgraph.inputs))
        self.graph_outputs = frozenset(_present(subgraph.outputs))
        self.producers, self.consumers = {}, {}
        for op in self.ops:
            for j in op.outputs:
                self.producers.setdefault(j, []).append(op.index)
            for j in set(op.inputs) - {None}:
                self.consumers.setdefault(j, []).append(op.index)

    def operands(self, op, role="inputs"):
        """The present `Tensor`s of an op's inputs or outputs (omitted optional inputs skipped)."""
        return [self.tensors[j] for j in getattr(op, role) if j is not None]

    def runtime_inputs(self, op):
        """Inputs that are neither constant nor omitted (the delegate's "runtime inputs")."""
        return [t for t in self.operands(op) if not t.constant]

    def is_dynamic(self):
        return any(-1 in t.signature for t in self.tensors)


def _tensor(index, tensor, constant):
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))
    signature = tuple(int(d) for d in tensor.shapeSignature) if tensor.shapeSignature is not None \
        and len(tensor.shapeSignature) else shape
    quantization = tensor.quantization
    quantized = quantization is not None and quantization.scale is not None and len(quantization.scale) > 0
    return Tensor(index, _text(tensor.name), int(tensor.type), shape, signature, constant, quantized)


def _has_data(model, tensor):
    """True when the tensor has a non-empty buffer (inline data or an external offset)."""
    buffer = model.buffers[tensor.buffer] if tensor.buffer else None
    return buffer is not None and ((buffer.data is not None and len(buffer.data) > 0) or buffer.size > 0)


def _list(indices):
    return [int(i) for i in (indices if indices is not None else [])]


def _present(indices):
    """Tensor indices without the -1 of omitted optional operands."""
    return [i for i in _list(indices) if i >= 0]


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")
