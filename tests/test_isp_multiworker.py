"""Multi-worker training on 127.0.0.1: real worker processes started in either order share one run
folder (the chief creates it, the other worker joins)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import write_pair_tree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_GAP_S = 6  # the second worker starts this much later (the race took 8 s)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def job(tmp_path):
    """start(index) -> Popen of worker `index` of a two-worker job on one shared --runs-dir."""
    data = write_pair_tree(tmp_path / "data", "train", 4, size=16)
    write_pair_tree(data, "val", 1, size=16, seed=1)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    started = []

    def start(index, *extra):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        argv = [sys.executable, "train.py", "--data", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "mw",
                "--strategy", "multiworker", "--model", "unet_tiny",
                "--epochs", "1", "--steps-per-epoch", "2", "--qat-epochs", "0", "--batch-size", "2", "--crop", "8",
                "--msssim-weight", "0", "--no-cache", "--train-only", *extra]
        started.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True))
        return started[-1]

    start.run_dir = tmp_path / "runs" / "mw"
    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def finish(process, limit_s=300):
    out, err = process.communicate(timeout=limit_s)
    return process.returncode, out, err


@pytest.mark.parametrize("first", [0, 1], ids=["chief-first", "worker-first"])
def test_workers_join_one_run_in_any_start_order(job, first):
    processes = {first: job(first)}
    time.sleep(START_GAP_S)
    processes[1 - first] = job(1 - first)
    results = {index: finish(process) for index, process in processes.items()}
    for index, (code, out, err) in results.items():
        assert code == 0, f"worker {index}: {err[-2000:]}"
    assert (job.run_dir / "config.yaml").is_file() and (job.run_dir / "checkpoints" / "float").is_dir()
    assert (job.run_dir / "checkpoints" / ".worker-1" / "float").is_dir()
    assert "best val PSNR" in results[0][1]


def test_a_worker_that_never_starts_ends_the_job_with_one_line(job):
    chief = job(0, "--cluster-timeout", "20")
    started = time.monotonic()
    code, out, err = finish(chief, limit_s=120)
    assert code == 2 and time.monotonic() - started < 90
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines == [lines[0]] and "did not form within 20 s" in lines[0] and "--cluster-timeout" in lines[0]


def test_cluster_timeout_must_be_positive():
    from isp import cluster
    from isp.errors import ISPError
    with pytest.raises(ISPError, match="positive"):
        cluster.run_watched([sys.executable, "-c", "pass"], timeout_s=0)
    assert cluster.run_watched([sys.executable, "-c", "import sys; sys.exit(3)"], timeout_s=30) == 3


def test_a_worker_that_dies_mid_training_ends_the_others_with_one_line(job):
    chief = job(0, "--epochs", "50", "--steps-per-epoch", "50")
    worker = job(1, "--epochs", "50", "--steps-per-epoch", "50")
    deadline = time.monotonic() + 240
    while not (job.run_dir / "history.json").is_file() and time.monotonic() < deadline:
        time.sleep(1)  # the first epoch is done: the cluster trains
    assert (job.run_dir / "history.json").is_file()
    subprocess.run(["pkill", "-9", "-P", str(worker.pid)], check=False)  # its watched training child
    worker.kill()
    code, out, err = finish(chief, limit_s=180)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and "stopped or timed out" in lines[0] and "--resume" in lines[0]
