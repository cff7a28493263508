"""Parse the text printed by TFLite's / LiteRT's `benchmark_model` into one flat dict.

Two layouts are understood (REFERENCE.md section 5):
- "classic": the TFLite tool. Times in microseconds on `count=... avg=...` stat lines and on the
  `Inference timings in us: ...` summary line.
- "litert": the newer LiteRT tool, whose summary is a block headed
  `========== BENCHMARK RESULTS ==========` with times in milliseconds (converted here to µs).

Every line may carry a logcat prefix, a severity prefix (`INFO: `, `WARN: `, ...) and a LiteRT
source-location prefix (`[benchmark_litert_model.h:88] `); all are stripped first.
"""
import re

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

RESULT_KEYS = (
    "init_us", "first_us", "warmup_avg_us", "avg_us", "min_us", "max_us", "std_us", "median_us",
    "p5_us", "p95_us", "mem_init_mb", "mem_overall_mb", "peak_mb", "delegation", "gpu_ops",
    "cpu_ops", "unsupported_ops",
)

_LOGCAT_PREFIX = re.compile(
    r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+)?[VDIWEF]/[\w.-]+\s*\(\s*\d+\):\s?"          # brief
    r"|^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[\w.-]+\s*:\s?")         # threadtime
_SEVERITY_PREFIX = re.compile(r"^(?:INFO|WARN|WARNING|ERROR|VERBOSE|DEBUG):\s?")
_SOURCE_PREFIX = re.compile(r"^\[[\w./\\-]+:\d+\]\s?")

_TIMINGS_LINE = "Inference timings in us:"
_TIMINGS_FIELDS = {"Init": "init_us", "First inference": "first_us",
                   "Warmup (avg)": "warmup_avg_us", "Inference (avg)": "avg_us"}
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
_LITERT_LINE = re.compile(rf"^([A-Za-z ]+(?:\(\w+\))?):\s+({NUMBER})\s*(ms|us|MB)?")
_LITERT_MEMORY = {"Init footprint": "mem_init_mb", "Overall footprint": "mem_overall_mb",
                  "Peak footprint": "peak_mb", "Peak memory usage": "peak_mb",
                  "Peak memory footprint": "peak_mb"}

_APPLIED = re.compile(r"Explicitly applied (\w+) delegate, and the model graph will be "
                      r"(completely|partially) executed by the delegate")
_NOT_APPLIED = re.compile(r"Though (\w+) delegate is explicitly applied, the model graph will not "
                          r"be executed by the delegate")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\)")
_UNSUPPORTED_HEADER = re.compile(r"(?:Following|Next) operations are not supported by GPU delegate:")
_UNSUPPORTED_OP = re.compile(r"^([A-Z][A-Z0-9_]*(?: \S+)?):\s*(.*)$")
_OP_SPLIT = re.compile(r"(?:First )?(\d+) operations will run on the GPU, and the remaining (\d+)"
                       r"(?: operations will run)? on the CPU")
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

    Returns a dict with exactly the keys of `RESULT_KEYS` plus `op_profile` and `format`:
    times in microseconds (float), memory in MB (float), `delegation` in
    {"full", "partial", "none", None}, `gpu_ops`/`cpu_ops` ints, `unsupported_ops` a list of
    {"op", "reason"}, `op_profile` a list of per-op dicts from the "Run Order" table of the
    regular (timed) runs, `format` "classic" or "litert". A value the log does not give is None.
    """
    lines = [clean_line(line) for line in text.splitlines()]
    result = dict.fromkeys(RESULT_KEYS)
    result.update(_stat_values(lines))
    litert = any(_is_litert_header(line) for line in lines)
    for line in lines:
        _read_summary_line(line, result)
        _read_memory_line(line, result)
    if litert:
        _read_litert_block(lines, result)
    result.update(_delegation(lines))
    result["op_profile"] = _op_profile(lines)
    result["format"] = "litert" if litert else "classic"
    return result


def clean_line(line):
    """One log line without carriage return, logcat, severity or source-location prefix."""
    line = line.rstrip("\r\n")
    line = _LOGCAT_PREFIX.sub("", line, count=1)
    line = _SEVERITY_PREFIX.sub("", line, count=1)
    return _SOURCE_PREFIX.sub("", line, count=1)


def _stat_values(lines):
    """Values of the last `count=...` stat line (the timed runs; earlier ones are warm-up)."""
    stats = None
    for line in lines:
        if line.startswith("count="):
            stats = dict(re.findall(rf"(\w+)=({NUMBER})", line))
    if stats is None:
        return {}
    if "curr" in stats and "avg" not in stats:
        # every run took the same time: the tool prints only count, curr (and percentiles)
        for key in ("first", "min", "max", "avg"):
            stats[key] = stats["curr"]
        stats["std"] = "0"
    return {out: float(stats[key]) for key, out in _STAT_FIELDS.items() if key in stats}


def _read_summary_line(line, result):
    """`Inference timings in us: Init: 1, First inference: 2, ...` (overrides the stat line avg)."""
    if not line.startswith(_TIMINGS_LINE):
        return
    for part in line[len(_TIMINGS_LINE):].split(","):
        name, _, value = part.strip().rpartition(": ")
        if name in _TIMINGS_FIELDS and re.fullmatch(NUMBER, value):
            result[_TIMINGS_FIELDS[name]] = float(value)


def _read_memory_line(line, result):
    """Classic memory lines: init/overall delta and the periodic-monitoring peak."""
    match = _MEMORY.search(line)
    if match:
        result["mem_init_mb"], result["mem_overall_mb"] = map(float, match.groups())
    match = _PEAK.search(line)
    if match:
        result["peak_mb"] = float(match.group(1))


def _is_litert_header(line):
    return line.strip(" =") == _LITERT_HEADER


def _read_litert_block(lines, result):
    """The LiteRT `BENCHMARK RESULTS` block: ms values (converted to µs) and MB footprints."""
    start = max(i for i, line in enumerate(lines) if _is_litert_header(line))
    for line in lines[start + 1:]:
        match = _LITERT_LINE.match(line.strip())
        if not match:
            continue
        name, value, unit = match.group(1).strip(), float(match.group(2)), match.group(3)
        if name in _LITERT_TIMES:
            result[_LITERT_TIMES[name]] = value if unit == "us" else round(value * 1000.0, 3)
        elif name in _LITERT_MEMORY:
            result[_LITERT_MEMORY[name]] = value


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
            in_unsupported = False
        if _UNSUPPORTED_HEADER.search(line):
            found["unsupported_ops"] = found["unsupported_ops"] or []
            in_unsupported = True
        split = _OP_SPLIT.search(line)
        if split:
            found["gpu_ops"], found["cpu_ops"] = int(split.group(1)), int(split.group(2))
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
        found["delegation"] = "partial" if found["cpu_ops"] else "full"
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
