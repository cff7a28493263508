"""Parse the text printed by TFLite's / LiteRT's `benchmark_model` into one flat dict.

Two layouts are understood (REFERENCE.md section 5):
- "classic": the TFLite tool. Times in microseconds on `count=... avg=...` stat lines and on the
  `Inference timings in us: ...` summary line; the pre-2019 tool's `Average inference timings in
  us: Warmup: ..., Init: ..., Inference: ...` (or `no stats: ...`) summary, whose stat line may only
  exist as `Timings (microseconds): count=...`.
- "litert": the newer LiteRT tool, whose figures (`Model initialization: 4.48 ms`, `Inference (avg):
  71.45 ms (50 runs)`) follow a `========== BENCHMARK RESULTS ==========` banner or stand alone
  as separate log lines; units ms, us/µs or s, converted here to µs.

Every line may carry a logcat prefix, an absl/glog or TensorFlow log prefix (`I1130 12:00:00.000000
1234 file.cc:88] `), a severity prefix (`INFO: `, `WARN: `, ...) and a LiteRT source-location
prefix (`[benchmark_litert_model.h:88] `); all are stripped first. A value printed as nan/inf is
None. A run that printed `Benchmarking failed` keeps its reason in `failure`.
"""
import math
import re

from benchmarks.errors import BenchError

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = rf"{NUMBER}|[-+]?(?:nan|inf)\b"

RESULT_KEYS = (
    "init_us", "first_us", "warmup_avg_us", "avg_us", "min_us", "max_us", "std_us", "median_us",
    "p5_us", "p95_us", "mem_init_mb", "mem_overall_mb", "peak_mb", "delegation", "gpu_ops",
    "cpu_ops", "unsupported_ops",
)

_LOGCAT_PREFIX = re.compile(
    r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+)?[VDIWEF]/[\w.-]+\s*\(\s*\d+\):\s?"          # brief
    r"|^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[\w.-]+\s*:\s?")         # threadtime
_LOG_PREFIX = re.compile(
    r"^[IWEFV]\d{4}(?:\s+\d\d:\d\d:[\d.]+)?(?:\s+\d+)?\s+[\w./-]+:\d+\]\s?"             # absl / glog
    r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./-]+:\d+\]\s?")                # TensorFlow
_SEVERITY_PREFIX = re.compile(r"^(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s?")
_SOURCE_PREFIX = re.compile(r"^\[[\w./\\-]+:\d+\]\s?")
_REPEAT_PREFIX = re.compile(r"^\d+: (?=[A-Z]|\d+ operations)")  # "1: GATHER: ..." in pasted delegate logs

_SUMMARIES = {
    "Inference timings in us:": {"Init": "init_us", "First inference": "first_us",
                                 "Warmup (avg)": "warmup_avg_us", "Inference (avg)": "avg_us"},
    "Average inference timings in us:": {"Init": "init_us", "Warmup": "warmup_avg_us",
                                         "Inference": "avg_us", "no stats": "avg_us"},
}
_INFERENCE_KEYS = ("avg_us", "median_us", "min_us", "max_us")
_PROFILER_STATS = "Timings (microseconds): count="
_FAILED = "Benchmarking failed"
_STAT_FIELDS = {"first": "first_us", "min": "min_us", "max": "max_us", "avg": "avg_us",
                "std": "std_us", "median": "median_us", "p5": "p5_us", "p95": "p95_us"}
_MEMORY = re.compile(r"(?:Memory footprint delta from the start of the tool|Peak memory footprint)"
                     rf" \(MB\): init=({NUMBER}) overall=({NUMBER})")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({NUMBER})")

_LITERT_HEADER = "BENCHMARK RESULTS"
_LITERT_TIMES = {"Model initialization": "init_us", "Warmup (first)": "first_us",
                 "Warmup (avg)": "warmup_avg_us", "Inference (avg)": "avg_us",
                 "Inference (min)": "min_us", "Inference (max)": "max_us",
                 "Inference (std)": "std_us", "Inference (median)": "median_us",
                 "Inference (p5)": "p5_us", "Inference (p95)": "p95_us"}
_LITERT_LINE = re.compile(rf"^([A-Za-z ]+(?:\(\w+\))?):\s+({_VALUE})\s*(ms|us|µs|s|MB)?\b")
_LITERT_US_PER_UNIT = {"ms": 1000.0, None: 1000.0, "us": 1.0, "µs": 1.0, "s": 1e6}
_LITERT_MEMORY = {"Init footprint": "mem_init_mb", "Overall footprint": "mem_overall_mb",
                  "Peak footprint": "peak_mb", "Peak memory usage": "peak_mb",
                  "Peak memory footprint": "peak_mb", "Peak memory": "peak_mb"}

_APPLIED = re.compile(r"Explicitly applied (\w+) delegate, and the model graph will be "
                      r"(completely|partially) executed by the delegate")
_NOT_APPLIED = re.compile(r"Though (\w+) delegate is explicitly applied, the model graph will not "
                          r"be executed by the delegate")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\)")
_UNSUPPORTED_HEADER = re.compile(r"(?:Following|Next) operations are not supported by GPU delegate:")
_UNSUPPORTED_OP = re.compile(r"^([A-Z][A-Z0-9_]*(?: \S+)?):\s*(.*)$")
_OP_SPLIT = re.compile(r"(?:First )?(\d+) operations will run on the GPU, and the remaining (\d+)"
                       r"(?: operations will run)? on the CPU")
_NO_GPU_OPS = re.compile(r"No operations will run on the GPU, and all (\d+) operations will run on the CPU")
_CPU_ONLY = re.compile(r"Created TensorFlow Lite XNNPACK delegate for CPU"
                       r"|GPU acceleration is unsupported on this platform"
                       r"|^Use gpu\s*: \[0\]")

_OP_COLUMNS = {"node type": "node_type", "start": "start_ms", "first": "first_ms",
               "avg ms": "avg_ms", "%": "percent", "cdf%": "cdf_percent", "mem KB": "mem_kb",
               "times called": "times_called", "Name": "name"}
_TEXT_COLUMNS = ("node_type", "name")
_CELL_SPLIT = re.compile(r"\t|\s{2,}")


def parse_benchmark_output(text):
    """Parse the full stdout+stderr of one `benchmark_model` run.

    Returns a dict with exactly the keys of `RESULT_KEYS` plus `op_profile`, `format` and
    `failure`: times in microseconds (float), memory in MB (float), `delegation` in
    {"full", "partial", "none", None}, `gpu_ops`/`cpu_ops` ints, `unsupported_ops` a list of
    {"op", "reason"}, `op_profile` a list of per-op dicts from the "Run Order" table of the
    regular (timed) runs, `format` "classic" or "litert", `failure` None or the reason of a run
    that printed `Benchmarking failed`. A value the log does not give (or prints as nan) is None.
    """
    lines = [clean_line(line) for line in text.splitlines()]
    result = dict.fromkeys(RESULT_KEYS)
    result.update(_stat_values(lines))
    for line in lines:
        _read_summary_line(line, result)
        _read_memory_line(line, result)
    litert = _read_litert_lines(lines, result)
    result.update(_delegation(lines))
    result["op_profile"] = _op_profile(lines)
    result["format"] = "litert" if litert else "classic"
    result["failure"] = _failure(text.splitlines(), lines)
    return result


def require_timings(parsed, source):
    """Raise BenchError (one line naming `source`) for a failed run or a log without inference times."""
    if parsed["failure"] is not None:
        raise BenchError(f"{source}: benchmark_model reported a failed run ({parsed['failure']}); "
                         "fix the cause and run it again")
    if all(parsed[key] is None for key in _INFERENCE_KEYS):
        raise BenchError(f"{source} holds no benchmark_model timings; save the tool's full "
                         "stdout+stderr of a finished run (e.g. `adb shell ... > log.txt 2>&1`)")
    return parsed


def clean_line(line):
    """One log line without carriage return, logcat, severity or source-location prefix."""
    line = line.rstrip("\r\n")
    line = _LOGCAT_PREFIX.sub("", line, count=1)
    line = _LOG_PREFIX.sub("", line, count=1)
    line = _SEVERITY_PREFIX.sub("", line, count=1)
    line = _SOURCE_PREFIX.sub("", line, count=1)
    return _REPEAT_PREFIX.sub("", line, count=1)


def _number(text):
    """A printed value as float, None for nan/inf (a run count of 0 prints `nan`)."""
    value = float(text)
    return value if math.isfinite(value) else None


def _stat_values(lines):
    """Values of the last `count=...` stat line (the timed runs; earlier ones are warm-up).

    Without any bare stat line (the pre-2019 tool with op profiling), the last profiler
    `Timings (microseconds): count=...` line stands in for it.
    """
    stats = None
    for prefix in ("count=", _PROFILER_STATS):
        for line in lines:
            if line.startswith(prefix):
                stats = dict(re.findall(rf"(\w+)=({_VALUE})", line))
        if stats is not None:
            break
    if stats is None:
        return {}
    if "curr" in stats and "avg" not in stats:
        # every run took the same time: the tool prints only count, curr (and percentiles)
        for key in ("first", "min", "max", "avg"):
            stats[key] = stats["curr"]
        stats["std"] = "0"
    return {out: _number(stats[key]) for key, out in _STAT_FIELDS.items() if key in stats}


def _read_summary_line(line, result):
    """`Inference timings in us: Init: 1, ...` or the pre-2019 `Average inference timings in us:
    Warmup: ..., Init: ..., Inference: ...` (overrides the stat line avg)."""
    for head, fields in _SUMMARIES.items():
        if line.startswith(head):
            for part in line[len(head):].split(","):
                name, _, value = part.strip().rpartition(": ")
                if name in fields and re.fullmatch(_VALUE, value):
                    result[fields[name]] = _number(value)


def _read_memory_line(line, result):
    """Classic memory lines: init/overall delta and the periodic-monitoring peak."""
    match = _MEMORY.search(line)
    if match:
        result["mem_init_mb"], result["mem_overall_mb"] = map(float, match.groups())
    match = _PEAK.search(line)
    if match:
        result["peak_mb"] = float(match.group(1))


def _read_litert_lines(lines, result):
    """LiteRT figures, under the `BENCHMARK RESULTS` banner or as loose log lines: times in ms, us,
    µs or s (converted to µs; ms when no unit is printed) and MB footprints. Returns whether the log
    is the LiteRT tool's (a banner or at least one LiteRT timing line)."""
    litert = False
    for line in lines:
        litert = litert or line.strip(" =") == _LITERT_HEADER
        match = _LITERT_LINE.match(line.strip())
        if not match:
            continue
        name, value, unit = match.group(1).strip(), _number(match.group(2)), match.group(3)
        if name in _LITERT_TIMES and unit != "MB":
            litert = True
            result[_LITERT_TIMES[name]] = None if value is None else round(value * _LITERT_US_PER_UNIT[unit], 3)
        elif name in _LITERT_MEMORY and unit in ("MB", None):
            result[_LITERT_MEMORY[name]] = value
    return litert


def _failure(raw_lines, lines):
    """Reason of a failed run: the last ERROR line before `Benchmarking failed`, else that line itself."""
    ends = [i for i, line in enumerate(lines) if line.startswith(_FAILED)]
    if not ends:
        return None
    end = ends[-1]
    for raw, line in zip(reversed(raw_lines[:end]), reversed(lines[:end])):
        if line.strip() and re.search(r"\bE(?:RROR:|\s+tflite|/tflite|\d{4}\s)", raw):
            return line.strip().rstrip(".")
    return lines[end].strip().rstrip(".")


def _delegation(lines):
    """GPU delegation verdict, op split and unsupported-op list.

    "full"/"partial" come from the accelerator delegate's own report; an XNNPACK-only run, a GPU
    delegate that took no node, or a build without GPU support is "none"; no evidence -> None.
    XNNPACK is the CPU's delegate, so it never counts as acceleration.
    """
    found = {"delegation": None, "gpu_ops": None, "cpu_ops": None, "unsupported_ops": None}
    cpu_only = False
    in_unsupported = False
    for line in lines:
        if in_unsupported:
            op = _UNSUPPORTED_OP.match(line)
            if op:
                found["unsupported_ops"].append({"op": op.group(1), "reason": op.group(2)})
                continue
            # a reason ending in a newline (GATHER's do) leaves a blank line inside the list
            in_unsupported = not line.strip()
            if in_unsupported:
                continue
        if _UNSUPPORTED_HEADER.search(line):
            found["unsupported_ops"] = found["unsupported_ops"] or []
            in_unsupported = True
        split = _OP_SPLIT.search(line)
        if split:
            found["gpu_ops"], found["cpu_ops"] = int(split.group(1)), int(split.group(2))
        no_gpu = _NO_GPU_OPS.search(line)
        if no_gpu:
            found["gpu_ops"], found["cpu_ops"] = 0, int(no_gpu.group(1))
        applied = _APPLIED.search(line)
        if applied and applied.group(1) != "XNNPACK":
            found["delegation"] = "full" if applied.group(2) == "completely" else "partial"
        replacing = _REPLACING.search(line)
        if replacing and "Gpu" in replacing.group(3) and found["delegation"] is None:
            done, total = int(replacing.group(1)), int(replacing.group(2))
            found["delegation"] = "full" if done == total else "partial"
        cpu_only = cpu_only or bool(_CPU_ONLY.search(line) or _NOT_APPLIED.search(line)
                                    or (applied and applied.group(1) == "XNNPACK"))
    if found["delegation"] is None and found["gpu_ops"] is not None:
        found["delegation"] = "none" if not found["gpu_ops"] else "partial" if found["cpu_ops"] else "full"
    if found["delegation"] is None and cpu_only:
        found["delegation"] = "none"
    return found


def _op_profile(lines):
    """Rows of the "Run Order" table(s) of the regular runs, or None without op profiling.

    Classic logs print an initialization table first, then the regular-runs tables under
    "Operator-wise Profiling Info for Regular Benchmark Runs"; LiteRT prints only the latter,
    without that heading.
    """
    tables = {"init": [], "regular": [], None: []}
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if "Profiling Info for Benchmark Initialization" in line:
            section = "init"
        elif "Profiling Info for Regular Benchmark Runs" in line:
            section = "regular"
        if "= Run Order =" in line and i + 1 < len(lines):
            rows, i = _read_table(lines, i + 1)
            tables[section].append(rows)
            continue
        i += 1
    chosen = tables["regular"] or tables[None]
    if not chosen:
        return None
    return [row for table in chosen for row in table]


def _read_table(lines, header_at):
    """Parse a tab-separated profiling table; return (rows, index of the first line after it)."""
    header = [_column_key(cell) for cell in _cells(lines[header_at])]
    rows = []
    i = header_at + 1
    while i < len(lines):
        cells = _cells(lines[i])
        if len(cells) != len(header):
            break
        rows.append({key: _cell_value(key, cell) for key, cell in zip(header, cells)})
        i += 1
    return rows, i


def _cells(line):
    return [cell.strip() for cell in _CELL_SPLIT.split(line.strip()) if cell.strip()]


def _column_key(cell):
    name = cell.strip("[]")
    return _OP_COLUMNS.get(name, re.sub(r"\W+", "_", name).strip("_").lower())


def _cell_value(key, cell):
    if key in _TEXT_COLUMNS:
        return cell
    number = cell.rstrip("%")
    if re.fullmatch(r"[-+]?\d+", number):
        return int(number)
    if re.fullmatch(NUMBER, number):
        return float(number)
    return cell
