"""`isp check-gpu MODEL.tflite`: the GPU-delegate verdict as a one-screen summary, per-op list or JSON.

`--delegate classic` (default) applies the classic TFLite GPU delegate's rules statically
(`gpu_check`), which is what phones run under benchmark_model and what the challenge measured.
`--delegate litert` asks LiteRT's own GPU accelerator (`litert_gpu`), which needs a GPU adapter.
"""
import collections
import json

from tflite_export import gpu_check, gpu_partition, litert_gpu
from tflite_export.gpu_rules import RULES

COUNTS_PER_LINE = 4


def format_summary(report):
    """Op counts per type, every refused or CPU-bound op with its reason, partitions, status."""
    lines = [f"GPU delegate check ({gpu_check.RULE_SET}): {report.path}"]
    counts = collections.Counter(op.op for op in report.ops)
    cells = [f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    lines.append(f"{len(report.ops)} ops:")
    lines += ["  " + ", ".join(cells[i:i + COUNTS_PER_LINE]) for i in range(0, len(cells), COUNTS_PER_LINE)]
    refused = [op for op in report.ops if op.reasons]
    lines.append(f"refused by the rules: {len(refused)}" + (":" if refused else ""))
    lines += [f"  #{op.index} {op.op}: {'; '.join(str(r) for r in op.reasons)}" for op in refused]
    sizes = [len(p) for p in report.gpu_partitions]
    undelegated = [op for op in report.ops if op.supported and not op.delegated]
    lines.append(f"GPU partitions: {len(sizes)} (sizes {sizes}); the delegate takes the largest "
                 f"{report.max_partitions} (--max-delegated-partitions); {len(undelegated)} supported ops "
                 "stay on the CPU")
    lines += _warnings(report)
    lines.append(report.summary)
    return "\n".join(lines)


def format_ops(report):
    """One row per op: index, op, where it runs, partition, then its reasons and warnings."""
    width = max([len(op.op) for op in report.ops] + [2])
    lines = [f"GPU delegate check ({gpu_check.RULE_SET}): {report.path}",
             f"{'#':>4}  {'op':<{width}}  {'runs on':<29}  part  notes"]
    for op in report.ops:
        notes = [str(r) for r in op.reasons] + [f"warning: {w}" for w in op.warnings]
        lines.append(f"{op.index:>4}  {op.op:<{width}}  {op.where:<29}  {op.partition:>4}  "
                     f"{notes[0] if notes else ''}")
        lines += [f"{'':>4}  {'':<{width}}  {'':<29}        {note}" for note in notes[1:]]
    lines += _warnings(report)
    lines.append(report.summary)
    return "\n".join(lines)


def _warnings(report):
    if report.is_dynamic and report.allow_dynamic:
        return ["dynamic shapes allowed (--allow-dynamic): listed as warnings, not failures"]
    return []


def format_litert(path, split):
    """One line per fact LiteRT's accelerator reported for `path`."""
    gpu_only = "succeeds" if split["gpu_only_compiles"] else "fails (some op cannot run on the GPU)"
    ops = (f"{split['gpu_ops']} ops on the GPU, {split['cpu_ops']} on the CPU"
           if split["gpu_ops"] is not None else "the accelerator logged no op split")
    return "\n".join([f"LiteRT GPU accelerator (ML Drift; not the classic delegate phones run): {path}",
                      f"GPU-only compile {gpu_only}", f"GPU|CPU compile: {ops}"])


def run_check_command(args):
    """`isp check-gpu` handler: print the report; 0 when fully delegated/accelerated, else 1."""
    if args.delegate == "litert":
        split = litert_gpu.accelerator_split(args.model)
        print(json.dumps(split, indent=2) if args.json else format_litert(args.model, split))
        return 0 if split["gpu_only_compiles"] else 1
    report = gpu_check.check(args.model, allow_dynamic=args.allow_dynamic,
                             max_partitions=args.max_delegated_partitions,
                             allow_quant_ops=not args.disable_quant)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_ops(report) if args.ops else format_summary(report))
    return 0 if report.fully_delegated else 1


def add_command(subparsers):
    """Register `check-gpu MODEL.tflite [--ops|--json] [--delegate classic|litert] [...]`."""
    parser = subparsers.add_parser(
        "check-gpu", help="check which ops of a .tflite file the GPU delegate runs",
        description="Check each op of a .tflite file's main subgraph against the classic TFLite GPU "
                    "delegate's rules (op codes and versions, fused activations, broadcast, types, constant "
                    "inputs, op options) and its partitioning, or ask LiteRT's GPU accelerator "
                    f"(--delegate litert). Rules: {', '.join(sorted(RULES))}. Exit 0 when every op runs "
                    "on the GPU, 1 otherwise, 2 for an unreadable file or no GPU adapter.")
    parser.add_argument("model", metavar="MODEL.tflite", help="the .tflite file to check")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--ops", action="store_true", help="list every op instead of the summary")
    output.add_argument("--json", action="store_true", help="print the machine-readable report")
    parser.add_argument("--delegate", choices=("classic", "litert"), default="classic",
                        help="classic: the TFLite GPU delegate's rules, statically (what phones run; default); "
                             "litert: what LiteRT's GPU accelerator reports (needs a GPU adapter)")
    parser.add_argument("--max-delegated-partitions", type=int, default=gpu_partition.DEFAULT_MAX_PARTITIONS,
                        metavar="N", help="how many of the largest GPU partitions the delegate takes "
                                          "(benchmark_model --max_delegated_partitions; default 1)")
    parser.add_argument("--disable-quant", action="store_true",
                        help="the delegate without quantized ops (benchmark_model "
                             "--gpu_experimental_enable_quant=false): int8 tensors and QUANTIZE fall back")
    parser.add_argument("--allow-dynamic", action="store_true",
                        help="treat dynamic-shape tensors (a -1 in the shape signature, as in "
                             "model_none.tflite) as warnings instead of failures")
    parser.set_defaults(func=run_check_command)
    return parser
