"""Bounded start of a multi-worker job.

`tf.distribute.MultiWorkerMirroredStrategy()` waits for every worker of TF_CONFIG with no timeout,
inside a call that keeps Python threads from running and ignores SIGTERM, so a worker that never
starts hangs the others for good. The front door therefore runs a multi-worker training in a child
process and watches it: the child touches a marker file (named in MARKER_ENV) as soon as its
strategy exists; when that has not happened within the timeout, the parent kills the child and
reports which start-up failed, in one line.
"""
import os
import subprocess
import sys
import tempfile
import time

from isp.errors import ISPError

MARKER_ENV = "ISP_CLUSTER_MARKER"
TIMEOUT_ENV = "ISP_CLUSTER_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
POLL_S = 0.5


def in_watched_child():
    """True inside the child process that `run_watched` started."""
    return MARKER_ENV in os.environ


def timeout_s():
    """The cluster timeout in seconds the watching parent passed down (DEFAULT_TIMEOUT_S without one)."""
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def mark_cluster_formed():
    """Tell the watching parent (if any) that the cluster has formed; called right after the strategy exists."""
    path = os.environ.get(MARKER_ENV)
    if path:
        with open(path, "w"):
            pass


def run_watched(command, timeout_s=DEFAULT_TIMEOUT_S):
    """Run `command` (argv list) in a child process that inherits stdout/stderr; returns its exit status.

    ISPError (after killing the child) when the child has not called `mark_cluster_formed` within
    `timeout_s` seconds; Ctrl-C kills the child too.
    """
    if timeout_s <= 0:
        raise ISPError(f"--cluster-timeout must be positive, got {timeout_s:g}")
    folder = tempfile.mkdtemp(prefix="isp-cluster-")
    marker = os.path.join(folder, "formed")
    child = subprocess.Popen(command, env=dict(os.environ, **{MARKER_ENV: marker, TIMEOUT_ENV: str(timeout_s)}))
    deadline = time.monotonic() + timeout_s
    try:
        while child.poll() is None and not os.path.exists(marker):
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                raise ISPError(f"the multi-worker cluster did not form within {timeout_s:g} s: a worker named in "
                               "TF_CONFIG never started or cannot be reached; start every worker (any order) "
                               "or raise --cluster-timeout")
            time.sleep(POLL_S)
        return child.wait()
    except KeyboardInterrupt:
        child.kill()
        child.wait()
        raise
    finally:
        if os.path.exists(marker):
            os.remove(marker)
        os.rmdir(folder)


def python_command(argv):
    """The argv that runs the `isp` front door with `argv` in a fresh interpreter."""
    return [sys.executable, "-m", "benchmarks.cli", *argv]
