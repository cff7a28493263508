"""Speed of the input pipeline: patches/s of tf.data vs a plain Python loop vs the training step.

Run from the repository root:  python -m benchmarks.input_pipeline [--pairs 512] [--seconds 10]

Four measurements on one synthetic dataset (>= 500 pairs of 256x256 mosaics by default,
unprocessed from the scikit-image photos and cached in --work-dir for later runs):

- python loop: one thread reads each pair with `data.dataset.load_pair`, takes an aligned random
  crop, a random flip/rotation and stacks a batch in numpy: the same work as the pipeline;
- tf.data pipeline: `data.pipeline.training_dataset` without the decoded cache, so every epoch
  decodes the PNG files again (the OS page cache may still hold the bytes);
- on-the-fly synthesis: one thread makes every patch from scratch (crop of a bundled photo,
  unprocessing with a fresh camera, gains and noise, packing): the cost of synthesising in the
  input pipeline instead of reading a pre-built pool;
- training step: the default model's real distributed train step (`isp.train.Trainer.make_step`:
  forward, loss of the default TrainConfig, backward, Adam update) on in-memory batches.

Each rate is patches/s (one patch = packed RAW [crop, crop, 4] + RGB [2crop, 2crop, 3]); warm-up
batches are not timed. The machine may be shared and noisy, so each measurement keeps its best
of --rounds interleaved rounds and only ratios within one run are meaningful. Nothing is
asserted: the script prints a table. The helpers below are shared with
benchmarks/train_throughput.py.
"""
import argparse
import collections
import contextlib
import itertools
import os
import sys
import tempfile
import time

import numpy as np

DEFAULT_WORK_DIR = os.path.join(tempfile.gettempdir(), "isp-speed-bench")
SYNTH_PATCH = 256  # mosaic side of each synthetic pair: packed 128x128x4, RGB 256x256x3


# ---- shared by both speed benchmarks ----------------------------------------------------------
def add_common_arguments(parser, batches):
    """The flags both speed benchmarks take; `batches` is this script's default for --batches."""
    parser.add_argument("--pairs", type=int, default=512,
                        help="synthetic pairs to read (default 512: >= 500 so an epoch is not a toy)")
    parser.add_argument("--batches", type=int, default=batches,
                        help=f"at most this many timed batches per measurement (default {batches})")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="time budget of one measurement in seconds (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; each measurement keeps its best (default 3)")
    parser.add_argument("--crop", type=int, default=64,
                        help="packed patch size: RAW [crop, crop, 4], RGB [2crop, 2crop, 3]; "
                             "a multiple of 8 for the default model (default 64)")
    parser.add_argument("--batch-size", type=int, default=8, help="patches per batch (default 8)")
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR,
                        help="where the synthetic dataset is built once and reused "
                             f"(default {DEFAULT_WORK_DIR})")


def check_arguments(args):
    """BenchError for sizes that cannot make a measurement."""
    from benchmarks.errors import BenchError
    for name in ("pairs", "batches", "rounds", "crop", "batch_size"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seconds <= 0:
        raise BenchError(f"--seconds must be > 0, got {args.seconds}")
    if args.crop > SYNTH_PATCH // 2:
        raise BenchError(f"--crop {args.crop} exceeds the {SYNTH_PATCH // 2}-pixel packed size of the "
                         "synthetic pairs; lower --crop")
    if args.pairs < 2 * args.batch_size:
        raise BenchError(f"--pairs {args.pairs} cannot fill two batches of {args.batch_size}; raise --pairs")


@contextlib.contextmanager
def _environment(name, value):
    """Set environment variable `name` to `value` for the duration of the block."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def synthetic_dataset(work_dir, pairs):
    """Root of `pairs` synthetic pairs (SYNTH_PATCH mosaics) from the bundled photos, built once.

    Reuses the built-in default-data builder (atomic, reused when complete) pointed at `work_dir`,
    so the user's own default-data cache is left alone. Returns (root, every pair of every split).
    """
    from data import dataset, default_data, sensor, synth
    names = tuple(name for name, photo in default_data.bundled_photos().items() if min(photo.shape[:2]) >= SYNTH_PATCH)
    plans = {".": ({"train": synth.SplitPlan(names, pairs, SYNTH_PATCH)}, sensor.CHALLENGE_PROFILE, None)}
    root = str(default_data.ensure_dataset(os.path.join(work_dir, f"pairs-{pairs}"), plans,
                                           default_data.bundled_photos, progress=False))
    splits = dataset.load_splits(root)
    return root, [pair for split in splits.values() for pair in split]


class Rate(collections.namedtuple("Rate", "patches_per_s cpu_ms_per_patch")):
    """Wall-clock patches/s, and process CPU milliseconds (every thread) spent per patch.

    On a shared machine the CPU cost per patch is the steadier number: the wall-clock rate also
    depends on how much of the cores the other processes leave.
    """


class Stopwatch:
    """Wall-clock and process CPU time since it was made."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rate(self, patches):
        """The Rate of `patches` patches done since the stopwatch was made."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return Rate(patches / wall, 1e3 * cpu / patches)


def measure(run_batch, batch_size, max_batches, seconds, warmup=2):
    """Rate of `run_batch()` (one batch of `batch_size` patches per call) after `warmup` untimed calls.

    Timing stops after `max_batches` batches or once `seconds` have passed, whichever is first.
    """
    for _ in range(warmup):
        run_batch()
    done, watch = 0, Stopwatch()
    while done < max_batches:
        run_batch()
        done += 1
        if time.perf_counter() - watch.wall >= seconds:
            break
    return watch.rate(done * batch_size)


def best_of_rounds(measurements, rounds):
    """Run {name: fn() -> Rate} `rounds` times interleaved; {name: the Rate with the most patches/s}."""
    best = {}
    for _ in range(rounds):
        for name, fn in measurements.items():
            rate = fn()
            if name not in best or rate.patches_per_s > best[name].patches_per_s:
                best[name] = rate
    return best


def print_rates(label, rates, reference):
    """Print {name: Rate} as a table: label | patches/s | CPU ms/patch | ratio vs `reference` (a name)."""
    header = [label, "patches/s", "CPU ms/patch", f"ratio vs {reference}"]
    base = rates[reference].patches_per_s
    body = [[name, f"{r.patches_per_s:.1f}", f"{r.cpu_ms_per_patch:.2f}", f"{r.patches_per_s / base:.2f}"]
            for name, r in rates.items()]
    widths = [max(len(row[k]) for row in [header, *body]) for k in range(len(header))]
    for row in [header, ["-" * w for w in widths], *body]:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def as_numbers(rates, keys):
    """{key: patches/s, "cpu_ms_per_patch": {key: ms}} from {name: Rate} and {name: key}."""
    numbers = {keys[name]: r.patches_per_s for name, r in rates.items()}
    numbers["cpu_ms_per_patch"] = {keys[name]: r.cpu_ms_per_patch for name, r in rates.items()}
    return numbers


def make_trainer(root, batch_size, crop, **overrides):
    """An `isp.train.Trainer` with the default TrainConfig on `root` (plus `overrides`).

    Used only for its batches and its train step: nothing is written to its run folder.
    """
    from isp import config as config_mod
    from isp import train

    config = config_mod.resolve({"data": root, "batch_size": batch_size, "crop": crop, **overrides})
    return train.Trainer(config, os.path.join(root, "no-run"), progress=False)


def train_step(trainer):
    """The trainer's real distributed train step, with its model, loss and Adam built as `Trainer._fit` does.

    step(raw [B, crop, crop, 4], rgb [B, 2crop, 2crop, 3], float in [0, 1]) -> mean loss. The
    process-wide seed and op determinism are set as `Trainer.run` sets them.
    """
    import tensorflow as tf
    import tf_keras as keras

    from isp import train
    from isp.models import build

    cfg = trainer.config
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    with trainer.strategy.scope():
        model = build(cfg.model, (None, None, 4))
        schedule = train.lr_schedule(cfg.lr, trainer.steps, cfg.epochs, cfg.warmup_epochs, cfg.min_lr_ratio)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)
    return trainer.make_step(model, optimizer, scaled=False)


def in_memory_batches(trainer, count):
    """`count` batches of the trainer's own pipeline (epoch 0) held as eager tensors."""
    from data import pipeline
    cfg = trainer.config
    data = pipeline.training_dataset(trainer.train_pairs, cfg.batch_size, 0, cfg.seed, cfg.crop, cfg.augment,
                                     trainer.profile)
    return list(data.repeat().take(count))


def step_runner(step, batches):
    """run_batch() for `measure`: one train step on the next in-memory batch, synced by reading the loss."""
    cycle = itertools.cycle(batches)

    def run_batch():
        raw, rgb = next(cycle)
        float(step(raw, rgb))
    return run_batch


# ---- this benchmark -------------------------------------------------------------------------
def _stacking_runner(one_patch, batch_size):
    """run_batch() that stacks `batch_size` calls of one_patch() -> (raw, rgb) into (raws, rgbs) arrays."""
    def run_batch():
        raws, rgbs = zip(*(one_patch() for _ in range(batch_size)))
        return np.stack(raws), np.stack(rgbs)
    return run_batch


def _python_loop_runner(pairs, batch_size, crop, seed=0):
    """run_batch() that builds one batch in plain Python/numpy on one thread, like the pipeline.

    Returns raw [B, crop, crop, 4] and rgb [B, 2crop, 2crop, 3] float32 in [0, 1].
    """
    from data import dataset
    rng = np.random.default_rng(seed)
    order = itertools.cycle(pairs)

    def one_patch():
        raw, rgb = dataset.load_pair(next(order))
        # Aligned crop: packed (top, left) is mosaic/RGB (2top, 2left).
        top = rng.integers(0, raw.shape[0] - crop + 1)
        left = rng.integers(0, raw.shape[1] - crop + 1)
        raw = raw[top:top + crop, left:left + crop]
        rgb = rgb[2 * top:2 * (top + crop), 2 * left:2 * (left + crop)]
        flip_lr, flip_ud, turns = rng.integers(0, 2), rng.integers(0, 2), rng.integers(0, 4)
        if flip_lr:
            raw, rgb = raw[:, ::-1], rgb[:, ::-1]
        if flip_ud:
            raw, rgb = raw[::-1], rgb[::-1]
        return np.rot90(raw, turns), np.rot90(rgb, turns)

    return _stacking_runner(one_patch, batch_size)


def _on_the_fly_runner(batch_size, crop, seed=0):
    """run_batch() that synthesises every patch on the spot (one thread): a random crop of a bundled
    photo, unprocessed with a fresh random camera, gains and noise (`data.synth.make_pair`), packed
    and normalised. What an on-the-fly tf.data source would cost per patch instead of reading a pool.
    """
    from data import default_data, sensor, synth
    photos = [p.astype(np.float32) / 255.0 for p in default_data.bundled_photos().values()]
    rng = np.random.default_rng(seed)

    def one_patch():
        photo = photos[rng.integers(len(photos))]
        mosaic, target = synth.make_pair(photo, rng, 2 * crop, sensor.CHALLENGE_PROFILE)
        return sensor.normalize(sensor.pack(mosaic)), target.astype(np.float32) / 255.0

    return _stacking_runner(one_patch, batch_size)


def _pipeline_runner(pairs, batch_size, crop):
    """run_batch() that pulls the next batch of `training_dataset` (no decoded cache), epoch after epoch."""
    from data import pipeline

    def batches():
        for epoch in itertools.count():
            yield from pipeline.training_dataset(pairs, batch_size, epoch, crop=crop)
    stream = batches()
    return lambda: next(stream)


def main(argv=None):
    """Measure and print python loop / tf.data pipeline / training step patches/s; returns the numbers.

    Returns {"pairs", "python_loop", "pipeline", "train_step" (patches/s), "cpu_ms_per_patch": {same
    keys}, "pipeline_vs_python", "pipeline_vs_train_step"}.
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.input_pipeline",
        description="patches/s of the tf.data input pipeline against a plain Python loop reading the same "
                    "files, and against what the default model's training step consumes")
    add_common_arguments(parser, batches=200)
    args = parser.parse_args(argv)
    check_arguments(args)
    root, pairs = synthetic_dataset(args.work_dir, args.pairs)
    trainer = make_trainer(root, args.batch_size, args.crop)
    step = step_runner(train_step(trainer), in_memory_batches(trainer, min(args.batches, 8)))
    runners = {"python loop": _python_loop_runner(pairs, args.batch_size, args.crop),
               "tf.data pipeline": _pipeline_runner(pairs, args.batch_size, args.crop),
               "on-the-fly synthesis": _on_the_fly_runner(args.batch_size, args.crop),
               "training step": step}
    rates = best_of_rounds({name: (lambda run=run: measure(run, args.batch_size, args.batches, args.seconds))
                            for name, run in runners.items()}, args.rounds)
    print(f"{len(pairs)} synthetic pairs in {root}; batch {args.batch_size}, crop {args.crop} "
          f"(RAW {args.crop}x{args.crop}x4, RGB {2 * args.crop}x{2 * args.crop}x3); "
          f"best of {args.rounds} round(s) of <= {args.batches} batches or {args.seconds:g} s")
    print("tf.data pipeline: no decoded cache, every epoch decodes the PNG files again; "
          f"training step: {trainer.config.model} on in-memory batches")
    print_rates("method", rates, "python loop")
    numbers = as_numbers(rates, {"python loop": "python_loop", "tf.data pipeline": "pipeline",
                                 "on-the-fly synthesis": "on_the_fly", "training step": "train_step"})
    numbers["pairs"] = len(pairs)
    numbers["pipeline_vs_python"] = numbers["pipeline"] / numbers["python_loop"]
    numbers["pipeline_vs_train_step"] = numbers["pipeline"] / numbers["train_step"]
    print(f"pipeline / training-step = {numbers['pipeline_vs_train_step']:.1f} "
          "(the pipeline must exceed 1 by a wide margin)")
    cpu = numbers["cpu_ms_per_patch"]
    print(f"CPU per patch: pipeline {cpu['pipeline']:.2f} ms, training step {cpu['train_step']:.2f} ms; "
          f"without the decoded cache, feeding the step costs "
          f"{100 * cpu['pipeline'] / cpu['train_step']:.0f}% on top of it on the same cores")
    print(f"on-the-fly synthesis {cpu['on_the_fly']:.2f} CPU ms per patch = "
          f"{100 * cpu['on_the_fly'] / cpu['train_step']:.0f}% of a training step, every epoch; a pre-built "
          "pool costs that once, then the decoded cache")
    return numbers


if __name__ == "__main__":
    from benchmarks.cli import run_guarded
    sys.exit(run_guarded(main))
