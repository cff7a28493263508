"""Static check of a .tflite file against the classic TFLite GPU delegate's rules (what phones run).

TF 2.21's `tf.lite.experimental.Analyzer(..., gpu_compatibility=True)` no longer checks anything,
so this module reads the flatbuffer itself and applies, to every operator of subgraph 0, the rules
of the classic delegate (`gpu_rules`, each mapped to its TFLite source), then the delegate's
partitioning (`gpu_partition`: only the largest `max_partitions` GPU partitions are delegated).
It is static: it never runs the model and needs no GPU.

Dynamic shapes (a `-1` in a tensor's shape signature) are a separate severity: the challenge's
`model_none.tflite` is dynamic by design, so `check(path, allow_dynamic=True)` reports them as
warnings instead of failures.
"""
import dataclasses
import os

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from tflite_export import gpu_partition, gpu_rules
from tflite_export.errors import ExportError
from tflite_export.gpu_graph import Graph
from tflite_export.gpu_rules import Finding

RULE_SET = "classic TFLite GPU delegate (TF 2.21 rules)"


@dataclasses.dataclass
class OpReport:
    """One operator of subgraph 0.

    `reasons` are the broken rules that keep it off the GPU (the op itself is unsupported);
    `partition` is its partition number, `delegated` whether the delegate takes that partition;
    `warnings` never keep it off the GPU.
    """

    index: int
    op: str
    reasons: list
    warnings: list
    partition: int = 0
    delegated: bool = True

    @property
    def supported(self):
        """True when the delegate's per-node rules accept this op."""
        return not self.reasons

    @property
    def gpu(self):
        """True when the GPU delegate would run this op (supported and in a delegated partition)."""
        return self.supported and self.delegated

    @property
    def where(self):
        """'GPU', 'CPU (unsupported)' or 'CPU (partition not delegated)'."""
        if self.gpu:
            return "GPU"
        return "CPU (unsupported)" if self.reasons else "CPU (partition not delegated)"

    def to_dict(self):
        return {"index": self.index, "op": self.op, "gpu": self.gpu, "supported": self.supported,
                "partition": self.partition, "where": self.where,
                "reasons": [str(r) for r in self.reasons], "rules": [r.rule for r in self.reasons],
                "warnings": list(self.warnings)}


@dataclasses.dataclass
class GpuReport:
    """Per-op verdicts for one .tflite file plus the delegation summary."""

    path: str
    ops: list
    allow_dynamic: bool
    is_dynamic: bool
    max_partitions: int = gpu_partition.DEFAULT_MAX_PARTITIONS
    gpu_partitions: list = dataclasses.field(default_factory=list)

    @property
    def num_gpu_ops(self):
        return sum(op.gpu for op in self.ops)

    @property
    def partitions(self):
        """Number of GPU-capable partitions (delegated or not)."""
        return len(self.gpu_partitions)

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
        """One line: status, k of n ops, partitions delegated."""
        delegated = min(self.partitions, self.max_partitions)
        return (f"{self.status}: {self.num_gpu_ops} of {len(self.ops)} ops on the GPU; "
                f"{self.partitions} GPU partition(s), {delegated} delegated "
                f"(max_delegated_partitions={self.max_partitions})")

    def to_dict(self):
        return {"path": self.path, "rule_set": RULE_SET, "status": self.status,
                "fully_delegated": self.fully_delegated, "num_ops": len(self.ops),
                "num_gpu_ops": self.num_gpu_ops, "partitions": self.partitions,
                "partition_sizes": [len(p) for p in self.gpu_partitions],
                "max_delegated_partitions": self.max_partitions, "summary": self.summary,
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


def check(path, allow_dynamic=False, max_partitions=gpu_partition.DEFAULT_MAX_PARTITIONS,
          allow_quant_ops=True):
    """Check every op of subgraph 0 of the .tflite file at `path` against the classic GPU delegate.

    allow_dynamic: report dynamic-shape tensors as warnings (for model_none.tflite) instead of
    reasons that keep the op off the GPU. max_partitions: the delegate's max_delegated_partitions
    (>= 1). allow_quant_ops: the delegate's quantized-ops flag (on by default in TfLiteGpuDelegateV2
    and benchmark_model). Raises ExportError for a missing or corrupt file or a bad limit.
    """
    path = os.fspath(path)
    if max_partitions < 1:
        raise ExportError(f"max delegated partitions must be >= 1, got {max_partitions}")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such .tflite file; give the path of an exported model")
    with open(path, "rb") as f:
        graph = Graph(read_flatbuffer(f.read(), path))
    ops = []
    for op in graph.ops:
        reasons = gpu_rules.findings(graph, op, allow_quant_ops)
        dynamic = [t.describe() for role in ("inputs", "outputs") for t in graph.operands(op, role)
                   if -1 in t.signature]
        warnings = []
        if dynamic:
            finding = Finding("dynamic-shape", f"dynamic shape on {', '.join(dynamic)}")
            (warnings.append(str(finding)) if allow_dynamic else reasons.append(finding))
        ops.append(OpReport(op.index, op.name, reasons, warnings))
    partitions = gpu_partition.partition(graph, {o.index for o in ops if o.supported})
    taken = gpu_partition.delegated_ops(graph, partitions, max_partitions)
    number = {i: n for n, p in enumerate(partitions) for i in p.ops}
    for report in ops:
        report.partition = number.get(report.index, number.get(_first_user(graph, report.index), 0))
        report.delegated = report.index in taken
    return GpuReport(path, ops, allow_dynamic, graph.is_dynamic(), max_partitions,
                     [p.ops for p in partitions if p.supported])


def _first_user(graph, index):
    """The first consumer of an op's output (where a folded weight-unpacking op belongs)."""
    users = [u for j in graph.ops[index].outputs for u in graph.consumers.get(j, [])]
    return min(users) if users else None
