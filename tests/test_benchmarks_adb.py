"""bench_adb against the real adb client (no device) and a fake `adb` first on PATH (device paths)."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from benchmarks import bench_cli
from benchmarks.adb import BINARY_ENV, bench_adb, benchmark_command, elf_abi
from benchmarks.errors import BenchError
from benchmarks.parse import parse_benchmark_output
from benchmarks_testing import write_tiny_tflite

LOGS = os.path.join(os.path.dirname(__file__), "fixtures", "benchmark_logs")
REMOTE_BINARY = "/data/local/tmp/benchmark_model"

# Emulates the adb client: `devices`, `-s S push`, `-s S shell ...`. adb joins the shell arguments
# with spaces and the device's sh splits them again; the fake does the same split (with `;`, `&`,
# `|` as separate tokens, like sh) and records both argv and the words the remote shell would run.
FAKE_ADB = """#!{python}
import json, os, shlex, sys
cfg = json.load(open(os.environ["FAKE_ADB_CONFIG"]))
args = sys.argv[1:]
record = {{"argv": args}}
if len(args) > 3 and args[2] == "shell":
    lexer = shlex.shlex(" ".join(args[3:]), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    record["remote"] = list(lexer)
with open(os.environ["FAKE_ADB_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if args == ["devices"]:
    print("* daemon not running; starting now at tcp:5037", file=sys.stderr)
    print("List of devices attached")
    for serial, state in cfg["devices"]:
        print(serial + "\\t" + state)
    print()
    sys.exit(0)
if args[0] != "-s" or args[1] not in dict(cfg["devices"]):
    print("error: device '%s' not found" % args[1], file=sys.stderr)
    sys.exit(1)
command = args[2]
if command == "push":
    local, remote = args[3:]
    if cfg.get("push_fail") or not os.path.isfile(local):
        print("adb: error: failed to copy '%s' to '%s': remote couldn't create file: "
              "Permission denied" % (local, remote), file=sys.stderr)
        sys.exit(1)
    print("%s: 1 file pushed, 0 skipped. 21.3 MB/s (%d bytes in 0.001s)"
          % (local, os.path.getsize(local)))
    sys.exit(0)
words = record["remote"]
if words[:2] == ["getprop", "ro.product.cpu.abi"]:
    print(cfg["abi"])
    sys.exit(0)
if words[0] in ("chmod", "rm"):
    sys.exit(0)
sys.stdout.write(open(cfg["log"]).read())
sys.exit(cfg.get("exit", 0))
"""


def write_elf(path, machine):
    """A minimal 64-bit little-endian ELF header with e_machine = `machine`."""
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + (2).to_bytes(2, "little")
    path.write_bytes(header + machine.to_bytes(2, "little") + bytes(44))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adb_models")
    return {"static": write_tiny_tflite(folder / "static.tflite"),
            "dynamic": write_tiny_tflite(folder / "dynamic.tflite", input_shape=(None, None, 4))}


@pytest.fixture
def arm64_binary(tmp_path):
    return str(write_elf(tmp_path / "android_aarch64_benchmark_model", 183))


class FakeAdb:
    def __init__(self, folder, monkeypatch):
        self.config_path, self.log_path = folder / "config.json", folder / "calls.jsonl"
        script = folder / "bin" / "adb"
        script.parent.mkdir()
        script.write_text(FAKE_ADB.format(python=sys.executable))
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_ADB_CONFIG", str(self.config_path))
        monkeypatch.setenv("FAKE_ADB_LOG", str(self.log_path))
        self.configure()

    def configure(self, devices=(("R5CT1234ABC", "device"),), abi="arm64-v8a",
                  log="classic_gpu_full.txt", exit=0, push_fail=False):
        self.config_path.write_text(json.dumps({
            "devices": devices, "abi": abi, "log": os.path.join(LOGS, log), "exit": exit,
            "push_fail": push_fail}))

    def calls(self):
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def argvs(self):
        return [call["argv"] for call in self.calls()]


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    return FakeAdb(tmp_path, monkeypatch)


def test_successful_run_exact_adb_calls(fake_adb, models, arm64_binary):
    result = bench_adb(models["static"], binary=arm64_binary)
    serial, model = "R5CT1234ABC", str(models["static"])
    assert fake_adb.argvs() == [
        ["devices"],
        ["-s", serial, "shell", "getprop", "ro.product.cpu.abi"],
        ["-s", serial, "push", arm64_binary, REMOTE_BINARY],
        ["-s", serial, "push", model, "/data/local/tmp/static.tflite"],
        ["-s", serial, "shell", "chmod", "755", REMOTE_BINARY],
        ["-s", serial, "shell", REMOTE_BINARY, "--graph=/data/local/tmp/static.tflite",
         "--num_runs=50", "--warmup_runs=5", "--use_gpu=true", "--gpu_precision_loss_allowed=true",
         "--report_peak_memory_footprint=true"],
        ["-s", serial, "shell", "rm", "-f", REMOTE_BINARY, "/data/local/tmp/static.tflite"],
    ]
    with open(os.path.join(LOGS, "classic_gpu_full.txt")) as f:
        log = f.read()
    assert result["benchmark"] == parse_benchmark_output(log) and result["log"] == log
    assert (result["serial"], result["abi"]) == (serial, "arm64-v8a")
    assert result["accelerator"] == "gpu-fp16"
    assert result["latency_ms"] == pytest.approx({
        "mean": 38.5442, "p50": 38.452, "p5": 38.011, "p95": 39.870, "min": 37.986,
        "max": 41.873, "std": 0.612})
    assert result["init_ms"] == pytest.approx(412.338)
    assert result["input_shape"] == [1, 32, 32, 4]


def test_hostile_model_name_is_one_remote_argument(fake_adb, models, arm64_binary, tmp_path):
    hostile = tmp_path / "a b;rm -rf x.tflite"
    shutil.copy(models["static"], hostile)
    bench_adb(hostile, binary=arm64_binary)
    remote_model = "/data/local/tmp/a b;rm -rf x.tflite"
    calls = fake_adb.calls()
    assert calls[3]["argv"] == ["-s", "R5CT1234ABC", "push", str(hostile), remote_model]
    run = calls[5]
    assert run["argv"][3:5] == [REMOTE_BINARY, "'--graph=/data/local/tmp/a b;rm -rf x.tflite'"]
    assert f"--graph={remote_model}" in run["remote"]
    assert ";" not in run["remote"] and "rm" not in run["remote"]
    assert calls[6]["remote"] == ["rm", "-f", REMOTE_BINARY, remote_model]


def test_dynamic_model_gets_input_layer_flags(fake_adb, models, arm64_binary):
    bench_adb(models["dynamic"], binary=arm64_binary, input_shape=(272, 480))
    remote = fake_adb.calls()[5]["remote"]
    assert "--input_layer=serving_default_raw:0" in remote
    assert "--input_layer_shape=1,272,480,4" in remote


def test_all_flags_reach_the_command(fake_adb, models, arm64_binary):
    result = bench_adb(models["static"], binary=arm64_binary, fp16=False, threads=4, runs=10,
                       warmup=2, profile_ops=True, require_full_delegation=True, taskset="f0")
    assert fake_adb.calls()[5]["remote"] == [
        "taskset", "f0", REMOTE_BINARY, "--graph=/data/local/tmp/static.tflite", "--num_runs=10",
        "--warmup_runs=2", "--use_gpu=true", "--gpu_precision_loss_allowed=false",
        "--num_threads=4", "--enable_op_profiling=true", "--require_full_delegation=true",
        "--report_peak_memory_footprint=true"]
    assert result["accelerator"] == "gpu-fp32"


def test_cpu_command():
    spec = [{"name": "in", "shape_signature": [1, 8, 8, 4]}]
    assert benchmark_command("/b", "/m.tflite", spec, use_gpu=False) == [
        "/b", "--graph=/m.tflite", "--num_runs=50", "--warmup_runs=5", "--use_gpu=false",
        "--report_peak_memory_footprint=true"]


def test_serial_is_used_among_several_devices(fake_adb, models, arm64_binary):
    fake_adb.configure(devices=[["A1", "device"], ["B2", "device"]])
    result = bench_adb(models["static"], serial="B2", binary=arm64_binary)
    assert result["serial"] == "B2"
    assert all(argv[:2] == ["-s", "B2"] for argv in fake_adb.argvs()[1:])


@pytest.mark.parametrize("devices,serial,match", [
    ([], None, "no Android device found"),
    ([["A1", "unauthorized"]], None, "A1 is unauthorized: unlock the phone and accept"),
    ([["A1", "offline"]], None, "A1 is offline: reconnect"),
    ([["A1", "no permissions (user in plugdev group; are your udev rules wrong?); see [http://"
             "developer.android.com/tools/device.html]"]], None,
     r"A1 is no permissions \(user in plugdev group: your user may not open the USB device"),
    ([["A1", "device"], ["B2", "unauthorized"]], None,
     r"several devices connected: A1 \(device\), B2 \(unauthorized\); pass --serial"),
    ([["A1", "device"]], "Z9", r"device Z9 not found .*connected: A1 \(device\)"),
])
def test_device_errors(fake_adb, models, arm64_binary, devices, serial, match):
    fake_adb.configure(devices=devices)
    with pytest.raises(BenchError, match=match):
        bench_adb(models["static"], serial=serial, binary=arm64_binary)
    assert fake_adb.argvs() == [["devices"]]


def test_wrong_architecture(fake_adb, models):
    host_abi = elf_abi("/bin/true")
    device_abi = "arm64-v8a" if host_abi != "arm64-v8a" else "x86_64"
    fake_adb.configure(abi=device_abi)
    with pytest.raises(BenchError, match=f"built for {host_abi} but device R5CT1234ABC is "
                                         f"{device_abi}.*android_aarch64_benchmark_model"):
        bench_adb(models["static"], binary="/bin/true")
    assert not any("push" in argv for argv in fake_adb.argvs())


def test_push_failure_cleans_up(fake_adb, models, arm64_binary):
    fake_adb.configure(push_fail=True)
    with pytest.raises(BenchError, match="adb push of .* failed: .*Permission denied"):
        bench_adb(models["static"], binary=arm64_binary)
    assert fake_adb.argvs()[-1][2:4] == ["shell", "rm"]


def test_benchmark_crash_shows_last_lines_and_cleans_up(fake_adb, models, arm64_binary):
    fake_adb.configure(log="crash_require_full_delegation.txt", exit=1)
    with pytest.raises(BenchError) as info:
        bench_adb(models["static"], binary=arm64_binary, require_full_delegation=True)
    message = str(info.value)
    assert "\n" not in message and "exit 1" in message
    assert "Disallowed CPU fallback detected." in message and "Benchmarking failed." in message
    assert fake_adb.argvs()[-1][2:4] == ["shell", "rm"]


def test_run_without_timings_is_an_error(fake_adb, models, arm64_binary, tmp_path):
    fake_adb.configure(log="crash_require_full_delegation.txt", exit=0)
    with pytest.raises(BenchError, match="printed no timings"):
        bench_adb(models["static"], binary=arm64_binary)


def test_adb_not_installed(models, arm64_binary, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match="adb not found on PATH: install it"):
        bench_adb(models["static"], binary=arm64_binary)


def test_binary_lookup(fake_adb, models, arm64_binary, monkeypatch, tmp_path):
    monkeypatch.delenv(BINARY_ENV, raising=False)
    with pytest.raises(BenchError, match="--binary PATH or set ISP_BENCHMARK_MODEL.*"
                                         "android_aarch64_benchmark_model.*android_arm64"):
        bench_adb(models["static"])
    with pytest.raises(BenchError, match="does not exist"):
        bench_adb(models["static"], binary=str(tmp_path / "nope"))
    text = tmp_path / "benchmark_model"
    text.write_text("#!/bin/sh\n")
    with pytest.raises(BenchError, match="not an ELF executable"):
        bench_adb(models["static"], binary=str(text))
    monkeypatch.setenv(BINARY_ENV, arm64_binary)
    assert bench_adb(models["static"])["binary"] == arm64_binary
    assert fake_adb.argvs()[2] == ["-s", "R5CT1234ABC", "push", arm64_binary, REMOTE_BINARY]


def test_elf_abi(tmp_path):
    assert elf_abi(write_elf(tmp_path / "a", 183)) == "arm64-v8a"
    assert elf_abi(write_elf(tmp_path / "b", 40)) == "armeabi-v7a"
    assert elf_abi(write_elf(tmp_path / "c", 62)) == "x86_64"
    assert elf_abi(write_elf(tmp_path / "d", 243)) == "ELF machine 243"


def test_bad_taskset(models, arm64_binary):
    with pytest.raises(BenchError, match="--taskset"):
        bench_adb(models["static"], binary=arm64_binary, taskset="0-3; reboot")


def test_cli_adb_table(fake_adb, models, arm64_binary, capsys):
    fake_adb.configure(log="classic_op_profiling.txt")
    parser = argparse.ArgumentParser(prog="isp")
    bench_cli.add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", str(models["static"]), "--device", "adb", "--binary",
                              arm64_binary, "--profile-ops"])
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "adb R5CT1234ABC (arm64-v8a), gpu-fp16" in table
    assert "delegation" in table and "full" in table
    assert "input 32x32: no Full HD verdict (mean 39.02 ms" in table  # a 32x32 model is not judged on Full HD
    assert "TfLiteGpuDelegateV2" in table.split("slowest ops")[1]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("adb") is None, reason="adb client not installed (apt-get install adb)")
def test_real_adb_without_device(models, arm64_binary, monkeypatch):
    """The real client on a private server port: the server starts offline and lists nothing."""
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(_free_port()))
    try:
        with pytest.raises(BenchError, match="no Android device found"):
            bench_adb(models["static"], binary=arm64_binary)
    finally:
        subprocess.run(["adb", "kill-server"], capture_output=True, timeout=30)
