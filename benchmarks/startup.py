"""Start-up time of the `isp` command, as a ratio to a bare `python -c pass`.

Run from the repository root:  python -m benchmarks.startup [--repeats 5]

Each command runs in a fresh interpreter (`python -m benchmarks.cli ...`, what the `isp` script
does), `--repeats` times interleaved with the others so machine noise hits every command alike;
the table shows the median wall time, the ratio to `python -c pass` measured the same way, and
whether the command imported TensorFlow. Commands that need TensorFlow (`isp models`) are shown
for comparison. Nothing is asserted: the script prints a table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG = os.path.join(REPO, "tests", "fixtures", "benchmark_logs", "classic_gpu_full.txt")
BASELINE = "python -c pass"
# reports whether tensorflow was imported, after the command (SystemExit of --help included)
_RUNNER = ("import sys, atexit; atexit.register(lambda: print('tensorflow' in sys.modules, file=sys.stderr)); "
           "from benchmarks.cli import main; sys.exit(main(sys.argv[1:]))")


def commands(work_dir):
    """[(label, argv after `isp`)] of the measured commands; writes the report JSON they read."""
    report = os.path.join(work_dir, "report.json")
    with open(report, "w") as f:
        json.dump({"rows": [{"label": "a fp16", "psnr": 23.0, "latency_ms": 30.0}]}, f)
    return [("isp --help", ["--help"]), ("isp train --help", ["train", "--help"]),
            ("isp bench --help", ["bench", "--help"]), ("isp bench parse LOG", ["bench", "parse", LOG]),
            ("isp report REPORT.json", ["report", report, "--out", os.path.join(work_dir, "board")]),
            ("isp models plain (TensorFlow)", ["models", "plain", "--shape", "16,16"])]


def time_once(argv):
    """(wall seconds, imported tensorflow) of one fresh interpreter running `isp argv` (None: python -c pass)."""
    cmd = [sys.executable, "-c", "pass"] if argv is None else [sys.executable, "-c", _RUNNER, *argv]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(argv)} failed: {done.stderr.strip().splitlines()[-1:]}")
    lines = done.stderr.strip().splitlines()
    return seconds, bool(lines) and lines[-1] == "True"


def measure(labelled, repeats):
    """{label: (median seconds, imported tensorflow)} over `repeats` interleaved rounds, baseline first."""
    runs = {label: [] for label, _ in labelled}
    tf_seen = {}
    for _ in range(repeats):
        for label, argv in labelled:
            seconds, tf_seen[label] = time_once(argv)
            runs[label].append(seconds)
    return {label: (statistics.median(times), tf_seen[label]) for label, times in runs.items()}


def format_table(results):
    """Markdown table: command, median s, ratio to the baseline, TensorFlow imported."""
    base = results[BASELINE][0]
    lines = ["| command | median s | ratio vs python -c pass | imports TensorFlow |", "|---|---|---|---|"]
    lines += [f"| {label} | {seconds:.2f} | {seconds / base:.1f} | {'yes' if tf else 'no'} |"
              for label, (seconds, tf) in results.items()]
    return "\n".join(lines)


def main(argv=None):
    """Measure and print the table; returns {label: (median seconds, imported tensorflow)}."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (default %(default)s)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with tempfile.TemporaryDirectory() as work_dir:
        results = measure([(BASELINE, None), *commands(work_dir)], args.repeats)
    print(format_table(results))
    return results


if __name__ == "__main__":
    from benchmarks.cli import run_guarded
    sys.exit(run_guarded(main))
