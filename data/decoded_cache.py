"""Decoded training pairs, read once: in memory or on disk, served by index (`--cache memory|disk|none|auto`).

A store holds every readable training pair as stored (packed RAW uint16 [h, w, 4], RGB uint8
[2h, 2w, 3]) and serves pair k of the kept pairs by index, so that an epoch's order is a permutation
drawn from (seed, epoch) (data/pipeline.py) and a resumed run sees the same batches:

- `MemoryStore`: a list of arrays in the process (fast; memory grows with the dataset);
- `DiskStore`: two flat files (raw.u16, rgb.u8) plus manifest.json in
  `$ISP_CACHE_DIR/decoded/<key>/` (default ~/.cache/mobile-isp, next to the built-in dataset), read
  with positioned reads (pread): the page cache holds what fits, the process holds one batch. Not
  memory-mapped on purpose: the pages a process touches through a mapping count in its RSS.

The disk store is built once, in a temporary sibling folder renamed into place after its manifest is
written, so a killed build leaves nothing that is ever read. The manifest records every file's path,
size and mtime and the packing (CFA, channel order); any change rebuilds the store. Bad pairs are
skipped with a warning, as in the tf.data reader.
"""
import collections
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile

import numpy as np
from tqdm import tqdm

from data import cache_mode, dataset, sensor
from data.errors import DataError

log = logging.getLogger(__name__)

FORMAT = 1                      # bump when the store's files change meaning
MAX_MEMORY_CACHE = 2 * 1024**3  # auto: the memory cache only below this and half of MemAvailable
BUDGET_ENV = "ISP_CACHE_MEMORY_BUDGET_MB"  # overrides the auto budget (tests, benchmarks)
PARALLEL_READS = 16  # disk store reads in flight in the training pipeline (a store larger than RAM reads the disk)
IN_FLIGHT_PER_WORKER = 4  # decoded pairs waiting per reading thread, at most
RAW_FILE, RGB_FILE, MANIFEST = "raw.u16", "rgb.u8", "manifest.json"


# ---- choosing ------------------------------------------------------------------------------
def _png_size(path):
    """(height, width) from a PNG's IHDR chunk, without decoding; None when it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def estimate_bytes(pairs, samples=16):
    """Estimated decoded size of `pairs` in bytes (uint16 mosaic + uint8 RGB of the same size), from the
    PNG headers of up to `samples` RAW files spread over the list."""
    if not pairs:
        return 0
    picks = [pairs[i] for i in np.linspace(0, len(pairs) - 1, min(samples, len(pairs))).astype(int)]
    sizes = [s for s in (_png_size(p.raw_path) for p in picks) if s]
    if not sizes:
        return 0
    pixels = np.mean([h * w for h, w in sizes])
    return int(pixels * (2 + 3) * len(pairs))


def memory_available():
    """MemAvailable of /proc/meminfo in bytes (total physical memory where that is missing)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_budget():
    """Bytes the auto choice lets the memory cache use: $ISP_CACHE_MEMORY_BUDGET_MB, else
    min(half of MemAvailable, MAX_MEMORY_CACHE)."""
    if os.environ.get(BUDGET_ENV):
        try:
            return int(float(os.environ[BUDGET_ENV]) * 1024**2)
        except ValueError:
            raise DataError(f"${BUDGET_ENV} must be a number of MB, got {os.environ[BUDGET_ENV]!r}") from None
    return min(memory_available() // 2, MAX_MEMORY_CACHE)


def choose(mode, pairs, budget=None):
    """(mode, reason): `mode` itself, or for "auto" memory when the estimated decoded size fits
    `budget` bytes (default `memory_budget()`), else disk."""
    mode = cache_mode.parse(mode)
    if mode != "auto":
        return mode, "as asked"
    size = estimate_bytes(pairs)
    budget = memory_budget() if budget is None else budget
    picked = "memory" if size <= budget else "disk"
    relation = "fits" if picked == "memory" else "exceeds"
    return picked, f"auto: {len(pairs)} pairs decode to about {size / 1024**2:.0f} MB, which {relation} the " \
                   f"memory budget of {budget / 1024**2:.0f} MB"


# ---- reading pairs -------------------------------------------------------------------------
def _read_or_none(pair, profile):
    """dataset.read_pair, or None (with the warning of the tf.data reader) for a bad pair."""
    try:
        return dataset.read_pair(pair, profile)
    except DataError as exc:
        log.warning("skipping bad pair: %s", exc)
        return None


def _decoded(pairs, profile, progress, desc):
    """Iterator over (index in `pairs`, raw, rgb) of the readable pairs, in order, decoded in parallel with
    at most a few pairs per thread in flight (a consumer slowed by disk writes never piles up decoded pairs)."""
    workers = dataset.io_workers()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, \
            tqdm(total=len(pairs), desc=desc, unit="pair", disable=not progress) as bar:
        pending = collections.deque()
        for i, pair in enumerate(pairs):
            pending.append((i, pool.submit(_read_or_none, pair, profile)))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers or i == len(pairs) - 1:
                while pending and (len(pending) >= IN_FLIGHT_PER_WORKER * workers or i == len(pairs) - 1):
                    k, job = pending.popleft()
                    result = job.result()
                    bar.update(1)
                    if result is not None:
                        yield k, result[0], result[1]


class MemoryStore:
    """Every readable pair decoded into process memory; `get(k)` -> (raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3])."""

    mode = "memory"

    def __init__(self, pairs, profile=sensor.CHALLENGE_PROFILE, progress=True):
        self.items = [(raw, rgb) for _, raw, rgb in _decoded(pairs, profile, progress, "decoding pairs (memory)")]

    def __len__(self):
        return len(self.items)

    def get(self, k):
        return self.items[k]


# ---- the disk store ------------------------------------------------------------------------
def cache_folder():
    """$ISP_CACHE_DIR/decoded (default ~/.cache/mobile-isp/decoded): beside the built-in dataset."""
    from data.default_data import cache_root
    return os.path.join(cache_root(), "decoded")


def _file_facts(pairs):
    """[[raw path, size, mtime_ns, rgb path, size, mtime_ns], ...] of `pairs` (absolute paths)."""
    facts = []
    for pair in pairs:
        row = []
        for path in (pair.raw_path, pair.rgb_path):
            try:
                st = os.stat(path)
            except OSError as exc:
                raise DataError(f"{path}: cannot read ({exc.strerror}); check the dataset with `isp data check`") \
                    from None
            row += [os.path.abspath(path), st.st_size, st.st_mtime_ns]
        facts.append(row)
    return facts


def _packing(profile):
    return {"cfa": profile.cfa, "channel_order": list(profile.channel_order)}


def store_key(pairs, profile):
    """Folder name of the disk store of `pairs` packed with `profile`'s CFA and channel order."""
    text = json.dumps([[os.path.abspath(p.raw_path), os.path.abspath(p.rgb_path)] for p in pairs]
                      + [_packing(profile)])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _is_valid(folder, files, packing):
    """True when `folder` holds a complete store of exactly `files` (paths, sizes, mtimes) and `packing`."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            manifest = json.load(f)
        sizes_ok = (os.path.getsize(os.path.join(folder, RAW_FILE)) == manifest["raw_bytes"]
                    and os.path.getsize(os.path.join(folder, RGB_FILE)) == manifest["rgb_bytes"])
    except (OSError, ValueError, KeyError):
        return False
    return (sizes_ok and manifest.get("format") == FORMAT and manifest.get("files") == files
            and manifest.get("packing") == packing)


def _write_store(folder, pairs, profile, files, progress):
    """Decode `pairs` into `folder` (a fresh temporary folder): the two flat files, then the manifest."""
    kept, raw_index, rgb_index = [], [], []
    raw_offset = rgb_offset = 0
    with open(os.path.join(folder, RAW_FILE), "wb") as raw_file, open(os.path.join(folder, RGB_FILE), "wb") as rgb_file:
        for i, raw, rgb in _decoded(pairs, profile, progress, "decoding pairs (disk cache)"):
            raw_file.write(np.ascontiguousarray(raw, "<u2").tobytes())
            rgb_file.write(np.ascontiguousarray(rgb, np.uint8).tobytes())
            kept.append(i)
            raw_index.append([raw_offset, *raw.shape])
            rgb_index.append([rgb_offset, *rgb.shape])
            raw_offset += raw.nbytes
            rgb_offset += rgb.nbytes
        for f in (raw_file, rgb_file):
            f.flush()
            os.fsync(f.fileno())
    manifest = {"format": FORMAT, "packing": _packing(profile), "files": files, "kept": kept,
                "raw": raw_index, "rgb": rgb_index, "raw_bytes": raw_offset, "rgb_bytes": rgb_offset}
    with open(os.path.join(folder, MANIFEST), "w") as f:  # last: a folder without it is never read
        json.dump(manifest, f)
        f.flush()
        os.fsync(f.fileno())


def _discard(folder):
    shutil.rmtree(folder, ignore_errors=True)


def _stale_temporaries(parent, key):
    """Temporary build folders of `key` whose building process is gone (a killed build)."""
    for name in os.listdir(parent):
        if name.startswith(f".{key}.tmp-"):
            pid = name.split(".tmp-", 1)[1].split("-", 1)[0]
            with contextlib.suppress(ValueError):
                if not _alive(int(pid)):
                    yield os.path.join(parent, name)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_disk_store(pairs, profile=sensor.CHALLENGE_PROFILE, progress=True, root=None):
    """The folder of a valid disk store of `pairs` under `root` (default `cache_folder()`), built when
    missing or out of date (a file added, removed, resized or touched; another packing)."""
    parent = os.fspath(root or cache_folder())
    os.makedirs(parent, exist_ok=True)
    key = store_key(pairs, profile)
    final = os.path.join(parent, key)
    files, packing = _file_facts(pairs), _packing(profile)
    if _is_valid(final, files, packing):
        return final
    for stale in _stale_temporaries(parent, key):
        _discard(stale)
    tmp = tempfile.mkdtemp(prefix=f".{key}.tmp-{os.getpid()}-", dir=parent)
    try:
        _write_store(tmp, pairs, profile, files, progress)
        if os.path.isdir(final):
            if _is_valid(final, files, packing):  # another process won the race
                _discard(tmp)
                return final
            _discard(final)  # out of date
        try:
            os.rename(tmp, final)
        except OSError:  # another process renamed its build into place first
            if not _is_valid(final, files, packing):
                raise
            _discard(tmp)
    except BaseException:
        _discard(tmp)
        raise
    return final


class DiskStore:
    """A built disk store; `get(k)` -> (raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3]) by positioned reads."""

    mode = "disk"
    parallel_reads = PARALLEL_READS
    _raw = _rgb = None

    def __init__(self, pairs, profile=sensor.CHALLENGE_PROFILE, progress=True, root=None):
        self.folder = ensure_disk_store(pairs, profile, progress, root)
        with open(os.path.join(self.folder, MANIFEST)) as f:
            manifest = json.load(f)
        self.raw_index, self.rgb_index = manifest["raw"], manifest["rgb"]
        self._raw = os.open(os.path.join(self.folder, RAW_FILE), os.O_RDONLY)
        self._rgb = os.open(os.path.join(self.folder, RGB_FILE), os.O_RDONLY)
        for fd in (self._raw, self._rgb):  # reads jump by index: read-ahead would fetch bytes nobody reads
            with contextlib.suppress(AttributeError, OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)

    def __len__(self):
        return len(self.raw_index)

    @staticmethod
    def _read(fd, entry, dtype):
        offset, *shape = entry
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        data = os.pread(fd, count, offset)
        if len(data) != count:
            raise DataError(f"decoded cache truncated at offset {offset}; delete it (it is rebuilt): "
                            f"{cache_folder()}")
        return np.frombuffer(data, dtype).reshape(shape)

    def get(self, k):
        return self._read(self._raw, self.raw_index[k], "<u2").astype(np.uint16, copy=False), \
            self._read(self._rgb, self.rgb_index[k], np.uint8)

    def close(self):
        """Close the two files (once; a closed store cannot read)."""
        for fd in (self._raw, self._rgb):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._raw = self._rgb = None

    def __del__(self):
        self.close()


def open_store(mode, pairs, profile=sensor.CHALLENGE_PROFILE, progress=True, budget=None, root=None):
    """(store or None for "none", mode picked, reason) for the training pairs `pairs`."""
    picked, reason = choose(mode, pairs, budget)
    if picked == "memory":
        return MemoryStore(pairs, profile, progress), picked, reason
    if picked == "disk":
        return DiskStore(pairs, profile, progress, root), picked, reason
    return None, picked, reason
