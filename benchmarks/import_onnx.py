"""What `isp import` gives a PyTorch team (`python -m benchmarks.import_onnx`).

A SYENet-style ISP written as an NCHW ONNX graph the way torch.onnx.export writes one (`syenet_onnx`:
opset 17, dynamic H and W, PyTorch's PixelShuffle order) goes through the library's importer and
trainer, and two questions are measured in one run:

1. Graph: does the imported model.tflite (FP16, Full HD fixed) come out as lean as the toolkit's
   own `syenet` exported at FP16? Op counts per type of both files, their sizes, the static GPU
   verdict of both (tflite_export.gpu_check), and the import time (mean of `--import-repeats` runs
   of tflite_export.import_onnx.import_onnx, ONNX Runtime checks and both TFLite conversions included).
2. INT8: post-training quantization (`isp export --quant int8`) against quantization-aware
   fine-tuning (`--quant qat`) of the imported model. Per seed (`--seeds`, weights seeded by the
   seed) the ONNX file is imported, fine-tuned with the project's trainer on the built-in data
   (`isp train --init DIR`: float epochs, then QAT epochs), exported with fp16, int8 and qat, and
   each model_none.tflite is scored on val, cross-sensor val and held-out photos exactly as the zoo
   scores (benchmarks.zoo.eval_sets / score_tflite). Cells are mean ± sample sd over the seeds; the
   PTQ - QAT row is the paired per-seed difference (both recipes start from the same float stage).

Output: two Markdown tables printed and written to `--out` (default runs/import_onnx.md) with the
same data as JSON beside it, both atomically. Run folders: <runs-dir>/imported-<graph>-s<seed>/ (a
rerun with the same budget resumes them; with another budget it is an error, as in the zoo).

TensorFlow (import, training, export) is imported inside the functions that use it, so `--help`
answers at once.
"""
import argparse
import collections
import dataclasses
import json
import os
import sys
import time

import numpy as np

from benchmarks import zoo
from benchmarks.errors import BenchError
from data.atomic import write_bytes, write_text
from data.challenge import FULL_HD_PACKED
from isp import config as config_mod
from isp.rundir import FIXED_MODEL, ImportDir, RunDir
from tflite_export.recipes import DEFAULT_REP_COUNT

GRAPH_NAME = "syenet_torch"  # the ONNX graph's name; the imported Keras model and the run folders take it
CHANNELS = 12                # SYENet's width (3 colours x 2x2 before the pixel shuffle)
OPSET = 17
IMPORT_RECIPE = "fp16"
RECIPES = ("fp16", "int8", "qat")  # exported from every fine-tuned run
PTQ, QAT = "int8", "qat"
SETS = ("val", "cross-sensor", zoo.SCORE_SET)  # zoo.eval_sets also builds "held-out, auto": not scored here
DEFAULT_SEEDS = 3
DEFAULT_EPOCHS = 4
DEFAULT_QAT_EPOCHS = 2
DEFAULT_STEPS = 0  # one pass over the training pairs, as the zoo and `isp train`
DEFAULT_IMPORT_REPEATS = 3
DEFAULT_RUNS_DIR = os.path.join("runs", "import_onnx")
DEFAULT_OUT = os.path.join("runs", "import_onnx.md")


class OnnxBuilder:
    """Nodes and initializers of an NCHW ONNX graph with input `raw` [N, 4, H, W] (H, W dynamic), weights
    drawn from numpy's default_rng(seed): conv weight and bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)) like
    PyTorch's default initialisers (kaiming_uniform with a = sqrt(5)); see prelu and affine for the rest."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def const(self, name, value):
        """A float32 initializer `name` holding `value`; returns its name."""
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op_type, inputs, name, **attrs):
        """Add one node called `name` whose single output is also `name`; returns it."""
        from onnx import helper
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name

    def conv(self, x, name, cin, cout, k, bias=None):
        """'same' Conv [N, cin, H, W] -> [N, cout, H, W]; `bias`: a constant start for every output channel."""
        bound = 1.0 / np.sqrt(cin * k * k)
        weight = self.rng.uniform(-bound, bound, (cout, cin, k, k))
        b = np.full(cout, bias) if bias is not None else self.rng.uniform(-bound, bound, cout)
        return self.node("Conv", [x, self.const(f"{name}.weight", weight), self.const(f"{name}.bias", b)], name,
                         kernel_shape=[k, k], pads=[k // 2] * 4)

    def prelu(self, x, name, channels):
        """nn.PReLU(channels): slopes [C, 1, 1] in U(0, 0.5) (around PyTorch's 0.25) broadcast over [N, C, H, W]."""
        return self.node("PRelu", [x, self.const(f"{name}.weight", self.rng.uniform(0, 0.5, (channels, 1, 1)))], name)

    def affine(self, x, name, channels):
        """Per-channel x * scale + bias with [C, 1, 1] constants: scale U(0.05, 0.15) around syenet.py's 0.1,
        bias U(-0.1, 0.1) (not 0, so that the converter cannot fold the ADD away as a trained file's would not)."""
        scale = self.const(f"{name}.scale", self.rng.uniform(0.05, 0.15, (channels, 1, 1)))
        y = self.node("Mul", [x, scale], f"{name}_mul")
        return self.node("Add", [y, self.const(f"{name}.bias", self.rng.uniform(-0.1, 0.1, (channels, 1, 1)))], name)

    def model(self, output, name=GRAPH_NAME):
        """The checked ONNX ModelProto: raw [N, 4, H, W] -> `output` [N, 3, 2H, 2W] (dim_params N, H, W)."""
        import onnx
        from onnx import TensorProto, helper
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N", 4, "H", "W"])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 3, "2H", "2W"])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="benchmarks.import_onnx")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def syenet_onnx(path, seed=0, channels=CHANNELS):
    """Write isp/models/syenet.py's structure as a PyTorch NCHW ONNX graph to `path`; returns the path.

    raw [N, 4, H, W] in [0, 1] -> rgb [N, 3, 2H, 2W] in [0, 1], H and W dynamic, weights seeded by `seed`:
    head = affine((conv3x3(PReLU(conv5x5(raw))) * conv5x5(raw)); body = affine(conv3x3(h) * conv1x1(h));
    gate = Sigmoid(conv1x1(PReLU(conv1x1(ReduceMean_HW(body))))), body * gate; DepthToSpace(2, CRD) on
    12 channels; conv3x3 3->3 (bias 0.5, as syenet.py's clipped tail) -> Clip(0, 1).
    """
    b = OnnxBuilder(seed)
    a = b.conv(b.prelu(b.conv("raw", "head_a1", 4, channels, 5), "head_a1_prelu", channels),
               "head_a2", channels, channels, 3)
    h = b.affine(b.node("Mul", [a, b.conv("raw", "head_b", 4, channels, 5)], "head_prod"), "head_affine", channels)
    x = b.affine(b.node("Mul", [b.conv(h, "body_a", channels, 12, 3), b.conv(h, "body_b", channels, 12, 1)],
                        "body_prod"), "body_affine", 12)
    g = b.node("ReduceMean", [x], "att_mean", axes=[2, 3], keepdims=1)
    g = b.conv(b.prelu(b.conv(g, "att_fc1", 12, 12, 1), "att_fc1_prelu", 12), "att_fc2", 12, 12, 1)
    x = b.node("Mul", [x, b.node("Sigmoid", [g], "att_sigmoid")], "att_gate")
    x = b.node("DepthToSpace", [x], "tail_d2s", blocksize=2, mode="CRD")
    x = b.conv(x, "tail_conv", 3, 3, 3, bias=0.5)
    out = b.node("Clip", [x, b.const("clip.min", 0.0), b.const("clip.max", 1.0)], "rgb")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_bytes(path, b.model(out).SerializeToString())
    return path


def tflite_graph(path):
    """What a .tflite file is made of: {"ops": {op type: count}, "bytes", "gpu_delegate" (the static verdict's
    summary, tflite_export.gpu_check), "compute_ops" (ops other than QUANTIZE / DEQUANTIZE), "float_ops" (those
    of them whose output is float32/float16: the part an int8 file leaves in float)}."""
    from tflite_export import gpu_check
    from tflite_export.gpu_graph import T, Graph
    report = gpu_check.check(path)
    with open(path, "rb") as f:
        graph = Graph(gpu_check.read_flatbuffer(f.read(), path))
    compute = [op for op in graph.ops if op.name not in ("QUANTIZE", "DEQUANTIZE")]
    floating = [op for op in compute if graph.tensors[op.outputs[0]].type in (T.FLOAT32, T.FLOAT16)]
    return {"ops": dict(collections.Counter(op.op for op in report.ops)), "bytes": os.path.getsize(path),
            "gpu_delegate": report.summary, "compute_ops": len(compute), "float_ops": len(floating)}


def compare_graphs(onnx_path, import_dir, native_path, repeats=DEFAULT_IMPORT_REPEATS, progress=True):
    """Import `onnx_path` at FP16 into `import_dir` `repeats` times and export the native syenet at FP16 to
    `native_path` (packed Full HD input); returns {"import_seconds": [per import, wall clock],
    "conversion_seconds": [ONNX -> Keras part of each], "imported": tflite_graph, "native": tflite_graph}."""
    from isp.models import build
    from tflite_export.convert import convert
    from tflite_export.import_onnx import import_onnx
    if repeats < 1:
        raise BenchError(f"--import-repeats must be >= 1, got {repeats}")
    wall, conversion = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        report = import_onnx(onnx_path, import_dir, IMPORT_RECIPE, progress=progress)
        wall.append(time.perf_counter() - started)
        conversion.append(report["onnx"]["import_seconds"])
    shape = (*FULL_HD_PACKED, 4)
    write_bytes(native_path, convert(build("syenet", shape), IMPORT_RECIPE, shape))
    return {"import_seconds": wall, "conversion_seconds": conversion,
            "imported": tflite_graph(ImportDir(import_dir).model()), "native": tflite_graph(native_path)}


def finetune_config(import_dir, runs_dir, budget, seed, qat_epochs, config_file=None):
    """The TrainConfig of one fine-tuning run: the zoo's budget_config for the imported model (named as
    `isp train --init` names it, so a rerun resumes the folder) with init=`import_dir` and QAT epochs."""
    from isp.models.architecture import init_source
    config = zoo.budget_config(init_source(import_dir)[2], runs_dir, budget, seed, config_file)
    return dataclasses.replace(config, init=os.path.abspath(import_dir), qat_epochs=qat_epochs)


def measure_recipes(runs_dir, budget, seeds, qat_epochs, heldout_photos=zoo.HELDOUT_PHOTOS, config_file=None,
                    rep_count=DEFAULT_REP_COUNT, progress=True):
    """Per seed: write and import the seeded ONNX graph, fine-tune it (float + QAT), export RECIPES and score
    every model_none.tflite on SETS. Returns (rows, sets, run_dirs, seconds): one row per recipe {"recipe", "kb"
    and "graph" (tflite_graph) of its model.tflite per seed, "scores": {set: {metric: [per seed]}}, "summary"}
    plus the PTQ - QAT row (per-seed int8 minus qat scores), the EvalSets scored, the run folders and per seed
    {"import_and_train", "export_and_score"} seconds."""
    from tflite_export.export import export
    from tflite_export.import_onnx import import_onnx
    rows = {recipe: {"recipe": recipe, "kb": [], "graph": [], "scores": {}} for recipe in RECIPES}
    cache, run_dirs, sets, seconds = {}, [], [], []
    for seed in range(seeds):
        started = {"start": time.time()}
        import_dir = os.path.join(runs_dir, f"import-s{seed}")
        if not ImportDir(import_dir).exists():
            import_onnx(syenet_onnx(os.path.join(runs_dir, "onnx", f"{GRAPH_NAME}-s{seed}.onnx"), seed),
                        import_dir, IMPORT_RECIPE, progress=progress)
        config = finetune_config(import_dir, runs_dir, budget, seed, qat_epochs, config_file)
        run = RunDir(zoo.train_model(config, progress)["run_dir"])
        started["trained"] = time.time()
        split = (config.data, config.val_fraction, config.seed, config.val_images)  # what the sets depend on
        if split not in cache:
            cache[split] = [s for s in zoo.eval_sets(config, runs_dir, heldout_photos, progress) if s.name in SETS]
        sets = cache[split]
        for recipe in RECIPES:
            report = export(run.path, recipe, run.tflite(recipe), val_images=config.val_images,
                            rep_count=rep_count, check_fidelity=False, progress=progress)
            row = rows[recipe]
            row["kb"].append(report["files"][FIXED_MODEL]["bytes"] / 1024)
            row["graph"].append(tflite_graph(run.model(recipe)))
            for name, value in zoo.score_tflite(run.model(recipe, dynamic=True), sets).items():
                cell = row["scores"].setdefault(name, {key: [] for key in zoo.METRICS})
                for metric in zoo.METRICS:
                    cell[metric].append(value[metric])
        run_dirs.append(run.path)
        seconds.append({"import_and_train": round(started["trained"] - started["start"], 1),
                        "export_and_score": round(time.time() - started["trained"], 1)})
    delta = {"recipe": f"{PTQ} - {QAT}", "scores": {
        name: {key: list(np.subtract(rows[PTQ]["scores"][name][key], rows[QAT]["scores"][name][key]))
               for key in zoo.METRICS} for name in rows[PTQ]["scores"]}}
    table = [*rows.values(), delta]
    for row in table:
        zoo.summarize(row)
    return table, sets, run_dirs, seconds


def run_benchmark(runs_dir, budget, seeds=DEFAULT_SEEDS, qat_epochs=DEFAULT_QAT_EPOCHS,
                  repeats=DEFAULT_IMPORT_REPEATS, heldout_photos=zoo.HELDOUT_PHOTOS, config_file=None,
                  rep_count=DEFAULT_REP_COUNT, progress=True):
    """Both measurements; returns {"settings", "graph" (compare_graphs), "sets", "rows" (measure_recipes),
    "run_dirs", "seconds" (wall clock of the whole run), "phase_seconds" ({"graph", "seeds": per seed})}.
    `budget`: TrainConfig overrides of the float stage (zoo.budget_overrides)."""
    if seeds < 1 or qat_epochs < 1:
        raise BenchError(f"need --seeds >= 1 and --qat-epochs >= 1, got {seeds} and {qat_epochs}")
    from isp import train
    started = time.time()
    onnx_path = syenet_onnx(os.path.join(runs_dir, "onnx", f"{GRAPH_NAME}-s0.onnx"), 0)
    native = os.path.join(runs_dir, "native", FIXED_MODEL)
    graph = compare_graphs(onnx_path, os.path.join(runs_dir, "import-s0"), native, repeats, progress)
    graph_seconds = time.time() - started
    rows, sets, run_dirs, seconds = measure_recipes(runs_dir, budget, seeds, qat_epochs, heldout_photos,
                                                    config_file, rep_count, progress)
    config = train.resolve_levels(finetune_config(os.path.join(runs_dir, "import-s0"), runs_dir, budget, 0,
                                                  qat_epochs, config_file))
    keys = ("data", "epochs", "qat_epochs", "steps_per_epoch", "batch_size", "crop", "lr", "qat_lr", "val_images")
    settings = {key: getattr(config, key) for key in keys}
    settings.update(seeds=seeds, data_root=train.dataset_root(config), import_repeats=repeats, rep_count=rep_count,
                    opset=OPSET, graph=GRAPH_NAME, import_recipe=IMPORT_RECIPE)
    return {"settings": settings, "graph": graph, "rows": rows, "run_dirs": run_dirs,
            "sets": [{"name": s.name, "images": len(s.pairs), "note": s.note} for s in sets],
            "seconds": round(time.time() - started, 1),
            "phase_seconds": {"graph": round(graph_seconds, 1), "seeds": seconds}}


def graph_table(graph):
    """Markdown table op type | imported | native: counts per op type, then total ops, compute ops,
    model.tflite KB and the static GPU verdict."""
    from isp.cost import format_table
    imported, native = graph["imported"], graph["native"]
    names = sorted(set(imported["ops"]) | set(native["ops"]))
    rows = [{"op type": name, "imported": imported["ops"].get(name, 0), "native": native["ops"].get(name, 0)}
            for name in names]
    rows.append({"op type": "**total ops**", "imported": sum(imported["ops"].values()),
                 "native": sum(native["ops"].values())})
    rows.append({"op type": "**compute ops** (no QUANTIZE/DEQUANTIZE)", "imported": imported["compute_ops"],
                 "native": native["compute_ops"]})
    rows.append({"op type": "**model.tflite KB**", "imported": f"{imported['bytes'] / 1024:.1f}",
                 "native": f"{native['bytes'] / 1024:.1f}"})
    rows.append({"op type": "**GPU delegate (static)**", "imported": imported["gpu_delegate"],
                 "native": native["gpu_delegate"]})
    return format_table(rows, ["op type", "imported", "native"])


def recipe_table(rows, names=SETS):
    """Markdown table recipe | <set> PSNR (mean ± sd over seeds) ... | model.tflite KB | float ops (of the
    compute ops, seed 0's model.tflite); the difference row has signed means and no file columns."""
    from isp.cost import format_table
    cells = []
    for row in rows:
        files = "kb" in row
        cell = {"recipe": row["recipe"]}
        if files:
            graph = row["graph"][0]
            cell.update({"model.tflite KB": f"{np.mean(row['kb']):.1f}",
                         "float ops": f"{graph['float_ops']} of {graph['compute_ops']}"})
        for name in names:
            summary = row["summary"].get(name)
            cell[f"{name} PSNR"] = (f"{summary['psnr_mean']:{'' if files else '+'}.2f} ± {summary['psnr_sd']:.2f}"
                                    if summary else "not measured")
        cells.append(cell)
    return format_table(cells, ["recipe", *[f"{name} PSNR" for name in names], "model.tflite KB", "float ops"])


def format_markdown(result):
    """The result of run_benchmark as a Markdown document: settings, both tables, the sets."""
    s, graph = result["settings"], result["graph"]
    steps = f"{s['steps_per_epoch']} steps" if s["steps_per_epoch"] else "one pass over the train pairs"
    wall, conv = graph["import_seconds"], graph["conversion_seconds"]
    lines = ["# Imported PyTorch/ONNX models (isp import)", "",
             f"Graph: SYENet-style NCHW ONNX (opset {s['opset']}, dynamic H/W, DepthToSpace CRD) imported with "
             f"`isp import --quant {s['import_recipe']}` vs the native `syenet` converted at {s['import_recipe']}; "
             "both model.tflite fixed at Full HD (packed 544x960x4), op counts from the flatbuffer, GPU verdict "
             "from the static classic-delegate check.",
             f"Import time: {np.mean(wall):.1f} ± {_sd(wall):.1f} s wall clock per import (mean of {len(wall)}; "
             "ONNX Runtime checks and both TFLite conversions included), of which ONNX -> Keras "
             f"{np.mean(conv):.2f} s.", "", graph_table(graph), "",
             f"INT8 recipes: each of {s['seeds']} seeds imports its seeded graph, fine-tunes it with `isp train "
             f"--init` for {s['epochs']} float epochs (lr {s['lr']:g}) + {s['qat_epochs']} QAT epochs (lr "
             f"{s['qat_lr']:g}) of {steps}, batch {s['batch_size']}, crop {s['crop']}, data {s['data_root']}; "
             f"then `isp export` fp16, int8 (post-training, {s['rep_count']} calibration inputs) and qat. "
             "PSNR of each model_none.tflite, mean ± sample sd over the seeds, on:"]
    lines += [f"- **{item['name']}**: {item['images']} pairs, {item['note']}" for item in result["sets"]]
    lines += [f"\"{PTQ} - {QAT}\": per-seed PTQ minus QAT PSNR (same float stage), mean ± sd.", "",
              recipe_table(result["rows"], [item["name"] for item in result["sets"]]), ""]
    return "\n".join(lines)


def _sd(values):
    """Sample standard deviation (0 for one value)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def write_outputs(result, out):
    """Write the Markdown to `out` and the result as JSON beside it (same stem, .json), atomically."""
    write_text(out, format_markdown(result))
    write_text(os.path.splitext(out)[0] + ".json", json.dumps(result, indent=2) + "\n")


def add_arguments(parser):
    """The benchmark's flags."""
    defaults = config_mod.TrainConfig()
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                        help="seeds 0..N-1 of the ONNX weights and of the fine-tuning; cells are mean ± sd "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                        help="float fine-tuning epochs per seed (default: %(default)s)")
    parser.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS,
                        help="quantization-aware epochs after the float ones (>= 1; default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=DEFAULT_STEPS,
                        help="optimizer steps per epoch, both stages (0: one pass over the training pairs; "
                             "default: %(default)s)")
    parser.add_argument("--batch-size", type=int, help=f"batch size (default: {defaults.batch_size})")
    parser.add_argument("--crop", type=int, help=f"packed training patch size (default: {defaults.crop})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate of the float stage (default: {defaults.lr:g})")
    parser.add_argument("--data", help="dataset root in the UltraISP layout (default: the built-in default data)")
    parser.add_argument("--val-images", type=int,
                        help="validate and score on at most this many val pairs (default: all)")
    parser.add_argument("--heldout-photos", default=zoo.HELDOUT_PHOTOS, metavar="DIR",
                        help="folder of photos never used for training, synthesised through the unseen "
                             "cross-sensor camera for the held-out column (default: %(default)s, from "
                             "`apt-get install mate-backgrounds`; '' leaves it out)")
    parser.add_argument("--config", metavar="FILE",
                        help="TrainConfig YAML (losses etc.); flags override it, and model, seed, name, runs_dir, "
                             "init and qat_epochs are set by the benchmark")
    parser.add_argument("--rep-count", type=int, default=DEFAULT_REP_COUNT,
                        help="calibration inputs of the post-training int8 export (default: %(default)s, as "
                             "`isp export`)")
    parser.add_argument("--import-repeats", type=int, default=DEFAULT_IMPORT_REPEATS,
                        help="imports timed for the graph table; the time is their mean (default: %(default)s)")
    parser.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR,
                        help="folder of the ONNX files, import folders and run folders (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="Markdown output; JSON goes beside it (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args):
    """Run the benchmark from parsed args, print the tables, write --out; returns the result dict."""
    result = run_benchmark(args.runs_dir, zoo.budget_overrides(args), args.seeds, args.qat_epochs,
                           args.import_repeats, args.heldout_photos, args.config, args.rep_count,
                           not args.no_progress)
    write_outputs(result, args.out)
    print(format_markdown(result))
    print(f"written: {args.out} and {os.path.splitext(args.out)[0]}.json ({result['seconds']:.0f} s)")
    return result


def main(argv=None):
    """`python -m benchmarks.import_onnx [flags]`: run the benchmark; returns the result dict."""
    first, rest = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_onnx", description=first, epilog=rest,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    from benchmarks.cli import run_guarded
    sys.exit(run_guarded(main))
