"""`isp bench`: latency of a `.tflite` file on the desktop or a phone, and `isp bench parse LOG`.

`isp bench MODEL.tflite --device desktop|desktop-gpu|adb [...]` prints a table with the budget
verdict (and the challenge score with --psnr); `isp bench parse LOGFILE` prints the JSON that
`parse_benchmark_output` makes of a saved benchmark_model log. The word `parse` in the model
position selects the second form.
"""
import argparse
import json

from benchmarks import measured
from benchmarks.adb import BINARY_ENV, WHERE_BINARY, bench_adb
from benchmarks.desktop import bench_desktop, bench_desktop_gpu
from benchmarks.errors import BenchError
from benchmarks.parse import parse_benchmark_output, require_timings
from benchmarks.score import parse_budget, sized_budget
from data.atomic import write_text
from data.challenge import BUDGET_TEXT, FULL_HD_PACKED, FULL_HD_TEXT, SCORE_C, challenge_score
from tflite_export.cli import parse_shape
from tflite_export.conventions import DEFAULT_RANGE, parse_range

# what each device measures (benchmarks.measured): the phone budget verdict needs a phone or a GPU
_MEASURED_ON = {"desktop": measured.DESKTOP_CPU, "desktop-gpu": measured.DESKTOP_GPU, "adb": measured.PHONE}
_DEFAULT_COUNTS = {"desktop": (20, 3), "desktop-gpu": (20, 3), "adb": (50, 5)}
_ADB_ONLY = {"serial": "--serial", "binary": "--binary", "processor": "--gpu/--cpu",
             "fp32": "--fp32", "profile_ops": "--profile-ops",
             "require_full_delegation": "--require-full-delegation", "taskset": "--taskset"}
_EXAMPLES = f"""examples:
  isp bench model.tflite                       desktop CPU, Full HD, table
  isp bench model_none.tflite --input-shape 272,480 --threads 4 --json cpu.json
  isp bench model.tflite --device desktop-gpu  LiteRT GPU accelerator (needs a GPU adapter)
  isp bench model.tflite --device adb --binary android_aarch64_benchmark_model --taskset f0
  isp bench parse saved_benchmark_log.txt      log -> JSON

benchmark_model for --device adb: --binary PATH or ${BINARY_ENV}; {WHERE_BINARY}.
"""


def add_command(subparsers):
    """Register `isp bench` on the `isp` subparsers."""
    parser = subparsers.add_parser(
        "bench", help="latency of a .tflite file (desktop CPU/GPU or phone via adb); "
                      "`bench parse LOG` parses a benchmark_model log",
        description="Time a .tflite model on the desktop (LiteRT CPU or GPU) or on an Android "
                    "phone's GPU through adb and TFLite's benchmark_model, and judge it against the "
                    "Full HD latency budget. `isp bench parse LOGFILE` turns a saved "
                    "benchmark_model log into JSON.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="MODEL.tflite|parse",
                        help="the .tflite file to time, or the word `parse`")
    parser.add_argument("logfile", nargs="?", metavar="LOGFILE",
                        help="with `parse`: a saved benchmark_model output (stdout+stderr)")
    parser.add_argument("--device", choices=sorted(_DEFAULT_COUNTS), default="desktop",
                        help="desktop: LiteRT Interpreter on the CPU (XNNPACK); desktop-gpu: LiteRT "
                             "CompiledModel on this machine's GPU (op split, FP16/FP32 accuracy vs the CPU); "
                             "adb: benchmark_model on a phone (default: desktop)")
    parser.add_argument("--runs", type=int, help="timed runs (default: 20 desktop, 50 adb)")
    parser.add_argument("--warmup", type=int, help="warm-up runs before timing "
                                                   "(default: 3 desktop, 5 adb)")
    parser.add_argument("--threads", type=int,
                        help="CPU threads (desktop, and adb's --num_threads; default: runtime's)")
    parser.add_argument("--input-shape", metavar="H,W",
                        help="height,width of a dynamic-shape model's packed RAW input "
                             f"(default: {FULL_HD_TEXT}, Full HD)")
    parser.add_argument("--input-range", metavar="LO,HI",
                        help="desktop devices: bounds of the random float input, the model's values for "
                             "black,white (default 0,1; 0,4095 for a model that expects 12-bit counts, "
                             "--input-range=-1,1); benchmark_model on a phone draws its own input")
    parser.add_argument("--budget-ms", metavar="LO,HI",
                        default=BUDGET_TEXT,
                        help="latency budget for the verdict (default: %(default)s)")
    parser.add_argument("--psnr", type=float, metavar="DB",
                        help="also print the challenge score 2^(2*PSNR)/(C*runtime_s)")
    parser.add_argument("--score-c", type=float, default=SCORE_C, metavar="C",
                        help="the score's constant C; the organisers never published it "
                             "(default: %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="also write the full result as JSON to OUT")
    adb = parser.add_argument_group("--device adb")
    adb.add_argument("--serial", help="device serial (required when several are connected)")
    adb.add_argument("--binary", metavar="PATH",
                     help=f"local Android benchmark_model executable (default: ${BINARY_ENV})")
    processor = adb.add_mutually_exclusive_group()
    processor.add_argument("--gpu", dest="processor", action="store_const", const="gpu",
                           help="run with the GPU delegate (default)")
    processor.add_argument("--cpu", dest="processor", action="store_const", const="cpu",
                           help="run on the CPU (no GPU delegate)")
    adb.add_argument("--fp32", action="store_true",
                     help="GPU in FP32 (--gpu_precision_loss_allowed=false); default FP16")
    adb.add_argument("--profile-ops", action="store_true",
                     help="per-op timings (--enable_op_profiling=true); slowest ops are listed")
    adb.add_argument("--require-full-delegation", action="store_true",
                     help="fail if any op would fall back from the GPU to the CPU")
    adb.add_argument("--taskset", metavar="MASK",
                     help="hex CPU mask for `taskset`, e.g. f0 to pin to the big cores")
    parser.set_defaults(func=run_bench)


def run_bench(args):
    """Handler of `isp bench`: benchmark (or parse a log), print a table, optionally write JSON."""
    if args.target == "parse":
        return _parse_log(args)
    if args.logfile is not None:
        raise BenchError(f"unexpected argument {args.logfile!r}: use `isp bench MODEL.tflite "
                         "[flags]` or `isp bench parse LOGFILE`")
    lo_ms, hi_ms = parse_budget(args.budget_ms)
    result = _benchmark(args)
    mean_ms = result["latency_ms"]["mean"]
    result["budget"] = sized_budget(mean_ms, result["input_shape"], lo_ms, hi_ms)
    if _MEASURED_ON[args.device] == measured.DESKTOP_CPU and result["budget"]["input_hw"] == list(FULL_HD_PACKED):
        # the budget is for a phone GPU (other sizes already have no verdict)
        result["budget"]["verdict"] = measured.verdict(mean_ms, measured.DESKTOP_CPU, (lo_ms, hi_ms))
    if args.psnr is not None:
        result["score"] = {"psnr_db": args.psnr, "c": args.score_c,
                           "value": challenge_score(args.psnr, mean_ms / 1000.0, args.score_c)}
    print(format_table(result))
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def format_table(result):
    """Human-readable table of a bench result (from bench_desktop/_gpu/bench_adb + budget)."""
    rows = [("model", result["model"]), ("device", _device_text(result)),
            ("input", "x".join(map(str, result["input_shape"]))
             + (f" {result['input_dtype']}" if result.get("input_dtype") else "")),
            ("runs", f"{result['runs']} timed after {result['warmup']} warm-up")]
    if result.get("init_ms") is not None:
        rows.append(("init", f"{result['init_ms']:.1f} ms"))
    rows += [(f"latency {name}", f"{value:.2f} ms")
             for name, value in result["latency_ms"].items() if value is not None]
    rows += _memory_rows(result)
    rows += _delegation_rows(result)
    if "budget" in result:
        rows.append(("budget", f"{result['budget']['verdict']} "
                               f"(mean {result['latency_ms']['mean']:.2f} ms, "
                               f"{result['budget']['ms_per_mp']:.2f} ms per output megapixel)"))
    if "score" in result:
        score = result["score"]
        rows.append(("score", f"{score['value']:.4g} (PSNR {score['psnr_db']} dB, C={score['c']:g})"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines + _slowest_ops(result))


def _benchmark(args):
    _check_device_flags(args)
    runs, warmup = _DEFAULT_COUNTS[args.device]
    runs = runs if args.runs is None else args.runs
    warmup = warmup if args.warmup is None else args.warmup
    input_shape = None if args.input_shape is None else parse_shape(args.input_shape, "--input-shape", BenchError)
    input_range = DEFAULT_RANGE if args.input_range is None else parse_range(args.input_range, "--input-range")
    if args.device == "desktop":
        return bench_desktop(args.target, threads=args.threads, runs=runs, warmup=warmup,
                             input_shape=input_shape, input_range=input_range)
    if args.device == "desktop-gpu":
        return bench_desktop_gpu(args.target, runs=runs, warmup=warmup, input_shape=input_shape,
                                 input_range=input_range)
    return bench_adb(args.target, serial=args.serial, binary=args.binary,
                     use_gpu=args.processor != "cpu", fp16=not args.fp32, threads=args.threads,
                     runs=runs, warmup=warmup, profile_ops=args.profile_ops,
                     require_full_delegation=args.require_full_delegation, taskset=args.taskset,
                     input_shape=input_shape)


def _check_device_flags(args):
    if args.device != "adb":
        given = [flag for dest, flag in _ADB_ONLY.items() if getattr(args, dest) not in (None, False)]
        if given:
            raise BenchError(f"{given[0]} only applies to --device adb")
    if args.device == "adb" and args.input_range is not None:
        raise BenchError("--input-range only applies to the desktop devices: benchmark_model on the phone "
                         "draws its own random input")
    if args.device == "desktop-gpu" and args.threads is not None:
        raise BenchError("--threads does not apply to --device desktop-gpu")


def _parse_log(args):
    if args.logfile is None:
        raise BenchError("`isp bench parse` needs a LOGFILE: isp bench parse benchmark_log.txt")
    try:
        with open(args.logfile, encoding="utf-8", errors="replace") as f:
            parsed = parse_benchmark_output(f.read())
    except OSError as exc:
        raise BenchError(f"cannot read {args.logfile}: {exc.strerror}; check the path") from None
    require_timings(parsed, args.logfile)
    text = json.dumps(parsed, indent=2)
    print(text)
    if args.json:
        write_text(args.json, text + "\n")
    return 0


def _device_text(result):
    if result["device"] == "adb":
        return f"adb {result['serial']} ({result['abi']}), {result['accelerator']}"
    threads = f", {result['threads']} threads" if result.get("threads") else ""
    return f"{result['device']}: {result['runtime']}{threads}"


def _memory_rows(result):
    rows = []
    if result.get("peak_rss_mb") is not None:
        rows.append(("peak RSS", f"{result['peak_rss_mb']:.1f} MB"))
    if result.get("load_rss_delta_mb") is not None:
        rows.append(("RSS added by load", f"{result['load_rss_delta_mb']:.1f} MB"))
    parsed = result.get("benchmark", {})
    for key, name in (("mem_init_mb", "memory init"), ("mem_overall_mb", "memory overall"),
                      ("peak_mb", "memory peak")):
        if parsed.get(key) is not None:
            rows.append((name, f"{parsed[key]:.1f} MB"))
    return rows


def _delegation_rows(result):
    if "op_split" in result:
        return _desktop_gpu_rows(result)
    parsed = result.get("benchmark")
    if not parsed:
        return []
    text = parsed["delegation"] or "unknown"
    if parsed["gpu_ops"] is not None:
        text += f" ({parsed['gpu_ops']} ops on GPU, {parsed['cpu_ops']} on CPU)"
    rows = [("delegation", text)]
    if parsed["unsupported_ops"]:
        rows.append(("unsupported ops", ", ".join(op["op"] for op in parsed["unsupported_ops"])))
    return rows


def _desktop_gpu_rows(result):
    """Op split as LiteRT's accelerator logged it (never `is_fully_accelerated()`), and GPU vs CPU accuracy."""
    split = result["op_split"]
    rows = [("GPU-only compile", "succeeds: every op runs on the GPU" if split["gpu_only_compiles"]
             else "fails: some op needs the CPU"),
            ("delegation", measured.measured_delegation(result) or "unknown: the accelerator logged no op split")]
    for key, name in (("fp16", "GPU FP16 vs CPU"), ("enforce_f32", "GPU FP32 vs CPU")):
        acc = result["accuracy"][key]
        rows.append((name, f"{acc['non_finite']} non-finite (NaN/inf) outputs" if acc["non_finite"]
                     else f"max |diff| {acc['max_abs_diff']:.3g}, PSNR {acc['psnr_db']:.2f} dB"))
    return rows


def _slowest_ops(result, count=10):
    ops = (result.get("benchmark") or {}).get("op_profile")
    if not ops:
        return []
    ops = sorted(ops, key=lambda op: op.get("avg_ms", 0.0), reverse=True)[:count]
    return ["", "slowest ops (avg ms, node type, name):"] + [
        f"  {op.get('avg_ms', 0.0):9.3f}  {op.get('node_type', '?')}  {op.get('name', '')}"
        for op in ops]
