"""Atomic file writes: write to a temporary file in the same folder, then rename over the target."""
import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it.

    `suffix` defaults to the target's extensions (".weights.h5") so that writers that infer the format from the
    file name (OpenCV, matplotlib) still work.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = "".join(pathlib.Path(path).suffixes)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_bytes(path, payload):
    """Atomically write `payload` (bytes) to `path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)


def write_text(path, text):
    """Atomically write `text` (str, UTF-8) to `path`."""
    write_bytes(path, text.encode("utf-8"))
