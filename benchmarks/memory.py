"""Training memory and speed against dataset size: peak RSS and patches/s of one training epoch per cache mode.

Run from the repository root:
    python -m benchmarks.memory [--sizes 2000,8000,23520] [--modes before,memory,disk,none] [--steps 200]
                                [--source ROOT] [--work DIR]

--source is a dataset with at least max(--sizes) training pairs (e.g. made with `isp data synth --patch 256`);
without it the script synthesises one into --work from the photos bundled with scikit-image (RAW 256x256,
the challenge's patch). Each size is a dataset of the first N training pairs (symbolic links). Each
measurement runs in its own child process: an `isp.train.Trainer` with the default TrainConfig and
`--cache MODE` (its decoded cache built from scratch: the disk store of every size is deleted before its
disk row), then one epoch of --steps real training steps (`Trainer.train_epoch`, the default unet_s,
batch 16, crop 64); 0 steps means a whole pass over the pairs. Peak RSS is the child's
(`os.wait4` rusage: ru_maxrss), so it covers the cache build and the epoch. The disk store lives in
--work/cache (ISP_CACHE_DIR); what of it the OS page cache keeps is read from memory, the rest from the
disk. `auto` shows what the default flags pick for each size (with this machine's memory budget).
`before` is the trainer's input as it was before the decoded stores (a tf.data `.cache()` of every pair,
filled before the timed epoch, and a shuffle buffer of the whole set); "vs <first mode>" divides by the
first mode's best patches/s. "cache build s" is the trainer's start
plus the decoding (the files are read once there). Nothing is asserted.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

DEFAULT_SIZES = (2000, 8000, 23520)
MODES = ("before", "memory", "disk", "none")  # before: the tf.data .cache() + whole-set shuffle of issue 21's start
PATCH = 256  # mosaic pixels: packed 128 x 128 x 4, the challenge's training patch


def make_subset(source, root, count):
    """`root`: a dataset of the first `count` training pairs of `source` (symbolic links) and its val split."""
    from data import dataset
    if os.path.isdir(root):
        return root
    layout = dataset.detect_layout(source)
    pairs = dataset.scan_split(source, "train", layout)[0]
    if len(pairs) < count:
        raise SystemExit(f"{source} has {len(pairs)} training pairs, fewer than {count}")
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split, chosen in (("train", pairs[:count]), ("val", dataset.scan_split(source, "val", layout)[0][:8])):
        for pair in chosen:
            for path, folder in ((pair.raw_path, layout.raw_dir), (pair.rgb_path, layout.rgb_dir)):
                os.makedirs(os.path.join(tmp, split, folder), exist_ok=True)
                os.symlink(os.path.abspath(path), os.path.join(tmp, split, folder, os.path.basename(path)))
    os.rename(tmp, root)
    return root


def synthesize(work, count):
    """A synthetic dataset of `count` training pairs (+ 2% val) in work/source, from scikit-image's photos."""
    import skimage.data

    from data import synth
    root = os.path.join(work, "source")
    if not os.path.isdir(root):
        photos = {name: getattr(skimage.data, name)() for name in
                  ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")}
        synth.synthesize_dataset(photos, root, int(count / 0.98) + 1, patch=PATCH, splits={"train": 0.98, "val": 0.02})
    return root


def before_batches(trainer, decoded, epoch):
    """The training batches as the trainer made them before the decoded stores: a tf.data `.cache()` of
    every decoded pair, shuffled with a buffer of the whole dataset."""
    from data import pipeline
    cfg = trainer.config
    epoch_seed = cfg.seed * 100003 + epoch
    data = decoded.shuffle(len(trainer.train_pairs), seed=epoch_seed, reshuffle_each_iteration=False)
    return pipeline.augmented_batches(data, cfg.batch_size, epoch_seed, cfg.crop, cfg.augment, trainer.profile)


def child(root, mode, steps):
    """One measurement (in the child): {cache, build_s, epoch_s, patches_per_s, steps, pairs}."""
    from benchmarks.input_pipeline import make_trainer, train_step
    from data import pipeline
    started = time.perf_counter()
    trainer = make_trainer(root, 16, 64, cache="none" if mode == "before" else mode, steps_per_epoch=steps)
    if mode == "before":
        decoded = pipeline.read_pairs(trainer.train_pairs, trainer.profile).cache()
        for _ in decoded:  # fill the cache (before, the first epoch did this)
            pass
        trainer._batches = lambda epoch: before_batches(trainer, decoded, epoch)
    build_s = time.perf_counter() - started
    step = train_step(trainer)
    raw, rgb = next(iter(trainer._batches(1)))
    step(raw, rgb)  # trace the step outside the timed epoch
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    trainer.train_epoch("float", step, 0, 1)
    epoch_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    picked = "before (tf.data cache)" if mode == "before" else trainer.store.mode if trainer.store else "none"
    return {"cache": picked, "build_s": build_s, "epoch_s": epoch_s, "steps": trainer.steps,
            "cpu_ms_per_patch": cpu_s * 1000 / (trainer.steps * trainer.config.batch_size),
            "patches_per_s": trainer.steps * trainer.config.batch_size / epoch_s, "pairs": len(trainer.train_pairs)}


def measure(root, mode, steps, env):
    """Run `child` in a fresh process; its result dict plus peak_rss_gb (the child's ru_maxrss)."""
    command = [sys.executable, "-m", "benchmarks.memory", "--child", root, mode, str(steps)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"measurement {mode} on {root} failed (exit {proc.returncode}):\n{out[-2000:]}")
    result = json.loads(lines[-1])
    result["peak_rss_gb"] = usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KB on Linux
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="training pairs per dataset")
    parser.add_argument("--modes", default=",".join(MODES), help="cache modes to measure (before,memory,disk,none)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of the timed epoch (0: whole pass)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of every mode per size; the table shows the best patches/s and the "
                             "highest peak RSS (the machine may be shared and noisy) (default 2)")
    parser.add_argument("--source", help="dataset with enough training pairs (default: synthesised into --work)")
    parser.add_argument("--work", default="/tmp/isp-memory-benchmark", help="subsets, synthesis and disk cache")
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "MODE", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        root, mode, steps = args.child
        print(json.dumps(child(root, mode, int(steps))), flush=True)
        return 0
    from data import dataset, decoded_cache

    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    os.makedirs(args.work, exist_ok=True)
    source = args.source or synthesize(args.work, max(sizes))
    env = dict(os.environ, ISP_CACHE_DIR=os.path.join(args.work, "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    os.environ["ISP_CACHE_DIR"] = env["ISP_CACHE_DIR"]
    print(f"memory budget of --cache auto on this machine: {decoded_cache.memory_budget() / 1e9:.2f} GB; "
          f"{os.cpu_count()} CPU cores; {args.steps or 'a whole pass of'} steps per timed epoch")
    print(f"| training pairs | decoded GB (est.) | auto picks | cache | peak RSS GB | cache build s | "
          f"epoch s | patches/s | CPU ms/patch | patches/s vs {modes[0]} |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for size in sizes:
        root = make_subset(source, os.path.join(args.work, f"pairs-{size}"), size)
        pairs = dataset.load_splits(root)["train"]
        auto = decoded_cache.choose("auto", pairs)[0]
        estimate = decoded_cache.estimate_bytes(pairs) / 1e9
        shutil.rmtree(os.path.join(env["ISP_CACHE_DIR"], "decoded"), ignore_errors=True)  # every build from scratch
        results = {mode: [] for mode in modes}
        for _ in range(args.rounds):
            for mode in modes:
                results[mode].append(measure(root, mode, args.steps, env))
        reference = max(r["patches_per_s"] for r in results[modes[0]])
        for mode in modes:
            best = max(results[mode], key=lambda r: r["patches_per_s"])
            row = dict(best, size=size, auto=auto, estimate_gb=estimate, rounds=results[mode],
                       peak_rss_gb=max(r["peak_rss_gb"] for r in results[mode]),
                       build_s=results[mode][0]["build_s"])  # the first round builds the disk store
            rows.append(row)
            print(f"| {size} | {estimate:.2f} | {auto} | {row['cache']} | {row['peak_rss_gb']:.2f} | "
                  f"{row['build_s']:.1f} | {row['epoch_s']:.1f} | {row['patches_per_s']:.1f} | "
                  f"{row['cpu_ms_per_patch']:.2f} | {row['patches_per_s'] / reference:.2f} |", flush=True)
    with open(os.path.join(args.work, "memory.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
