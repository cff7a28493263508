"""Quiet TensorFlow start-up for the `isp` command.

TensorFlow's native libraries print 6-12 lines when they load (`All log messages before
absl::InitializeLog()`, `oneDNN custom operations are on`, `Could not find cuda drivers`), and
TF_CPP_MIN_LOG_LEVEL does not reach them: they are written before absl's logging starts. `quiet()`
sets the log-level variables and silences file descriptor 2 while `tensorflow` is first imported,
wherever in the stack that happens. `isp --verbose` or ISP_VERBOSE=1 keeps everything.
"""
import contextlib
import importlib.abc
import importlib.machinery
import os
import sys

VERBOSE_ENV = "ISP_VERBOSE"
# after absl::InitializeLog: 3 also hides C++ ERROR lines such as "failed call to cuInit" on a machine
# without a GPU; failures that matter still surface as Python exceptions
LOG_LEVELS = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_CPP_MAX_VLOG_LEVEL": "-1"}
QUIET_MODULE = "tensorflow"


def verbose_requested(flag=False):
    """True when --verbose was given or ISP_VERBOSE is set to anything but '' or '0'."""
    return flag or os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def quiet():
    """Set the log-level variables (unless already set) and silence the first `import tensorflow`."""
    for name, value in LOG_LEVELS.items():
        os.environ.setdefault(name, value)
    if QUIET_MODULE not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextlib.contextmanager
def silenced_stderr():
    """Redirect file descriptor 2 (native libraries' stderr) to /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, with a loader whose module execution runs under `silenced_stderr`."""

    def find_spec(self, fullname, path=None, target=None):
        """The normal spec of QUIET_MODULE with a silenced exec_module; None for every other module."""
        if fullname != QUIET_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quiet_exec(module):
                with silenced_stderr():
                    exec_module(module)
            spec.loader.exec_module = quiet_exec
        return spec
