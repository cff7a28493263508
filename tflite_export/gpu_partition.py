"""Which supported ops the GPU delegate actually takes: dependency-aware partitions, largest N.

TFLite splits the execution plan into node subsets that are each all-supported or all-unsupported
and can run one after the other (a subset only needs tensors produced by earlier subsets). The
delegate then replaces only the `max_delegated_partitions` largest supported subsets (default 1,
`TfLiteGpuDelegateOptionsV2.max_delegated_partitions`); every other op, supported or not, runs on
the CPU. This module re-expresses that: subsets are grown greedily from the ops whose inputs are
ready, alternating between supported and unsupported ops, which is how the interpreter's
partitioner builds them (tensorflow/lite/graph_info.cc PartitionGraphIntoIndependentNodeSubsets,
via delegates/utils.cc GraphPartitionHelper).

FP16 weight-unpacking DEQUANTIZE ops (`Op.weight_unpack`) take no part: the delegate folds them
into their consumers; they count as delegated when every consumer is.
"""
import dataclasses

DEFAULT_MAX_PARTITIONS = 1


@dataclasses.dataclass(frozen=True)
class Partition:
    """A node subset in execution order: `supported` tells GPU-capable from CPU-only subsets."""

    supported: bool
    ops: tuple


def partition(graph, supported):
    """Split `graph.ops` into Partitions; `supported` is the set of op indices the rules accept."""
    ready = set(graph.graph_inputs) | {t.index for t in graph.tensors if t.constant}
    remaining = [op for op in graph.ops if not op.weight_unpack]
    if not remaining:
        return []
    kind = remaining[0].index in supported
    partitions = []
    while remaining:
        taken = []
        for op in remaining:
            if (op.index in supported) == kind and all(j is None or j in ready for j in op.inputs):
                taken.append(op)
                ready.update(op.outputs)
        if taken:
            partitions.append(Partition(kind, tuple(op.index for op in taken)))
            remaining = [op for op in remaining if op not in taken]
        kind = not kind
    return partitions


def delegated_ops(graph, partitions, max_partitions=DEFAULT_MAX_PARTITIONS):
    """Op indices the delegate replaces: the ops of the `max_partitions` largest supported partitions.

    Ties keep execution order. Weight-unpacking DEQUANTIZE ops join when all their consumers do.
    """
    gpu = sorted((p for p in partitions if p.supported), key=lambda p: -len(p.ops))[:max_partitions]
    taken = {i for p in gpu for i in p.ops}
    for op in graph.ops:
        users = {u for j in op.outputs for u in graph.consumers.get(j, [])}
        if op.weight_unpack and users and users <= taken:
            taken.add(op.index)
    return taken
