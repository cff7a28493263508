"""The `isp` front door: help, log parsing and reports start without TensorFlow, and quietly."""
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG = os.path.join(REPO, "tests", "fixtures", "benchmark_logs", "classic_gpu_full.txt")
HELP_COMMANDS = ([], ["train"], ["data"], ["data", "check"], ["data", "synth"], ["data", "prepare-default"],
                 ["models"], ["export"], ["check-gpu"], ["eval"], ["process"], ["bench"], ["report"], ["zoo"])

# runs every argv in one fresh interpreter; prints the argvs after which tensorflow was imported
_PROBE = """
import json, sys
from benchmarks.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit:
        pass
    if "tensorflow" in sys.modules or "tf_keras" in sys.modules:
        print("IMPORTED TENSORFLOW AFTER", json.dumps(argv))
        break
"""


def _probe(argvs, cwd):
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], cwd=cwd, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=300)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("IMPORTED TENSORFLOW AFTER")]


def test_help_parse_and_report_import_no_tensorflow(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"rows": [{"label": "a fp16", "psnr": 23.0, "latency_ms": 30.0}]}))
    argvs = [[*cmd, "--help"] for cmd in HELP_COMMANDS]
    argvs += [["bench", "parse", LOG], ["report", str(report), "--out", str(tmp_path / "board")]]
    assert _probe(argvs, tmp_path) == []
    assert (tmp_path / "board" / "leaderboard.md").is_file()


@pytest.mark.slow
def test_tensorflow_commands_start_quietly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli", "models", "plain", "--shape", "16,16"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")})
    assert done.returncode == 0, done.stderr
    assert "plain" in done.stdout
    for noise in ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit"):
        assert noise not in done.stderr
    assert not re.search(r"^[IWEF]\d{4} ", done.stderr, re.MULTILINE)  # absl's log-line prefix


def test_run_guarded_is_the_one_front_door_wrapper(capsys):
    from benchmarks.cli import run_guarded
    from data.errors import DataError

    def failing():
        raise DataError("bad.png: unreadable; re-export it")
    assert run_guarded(failing) == 2
    assert capsys.readouterr().err == "error: bad.png: unreadable; re-export it\n"
    assert run_guarded(lambda: {"rates": 1.0}) == 0 and run_guarded(lambda: 1) == 1
