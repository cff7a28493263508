"""Training throughput: patches/s of the default model fed by the real input pipeline vs in-memory tensors.

Run from the repository root:  python -m benchmarks.train_throughput [--pairs 512] [--seconds 10]

The training machinery is the real one (`isp.train.Trainer` with the default TrainConfig on a
synthetic dataset of --pairs pairs): the same distributed train step (`Trainer.make_step`) is fed

- in-memory tensors: --batches batches (at most 16 distinct ones, cycled) taken from the trainer's
  pipeline beforehand and held as eager tensors; the loss is read after every step, as in training;
- pipeline, decoded cache: `Trainer.train_epoch` (tf.data -> tf.distribute dataset -> step) with
  the decoded cache (the training default), warmed by one untimed epoch that fills the cache, so
  the rate is that of epoch 2 onwards;
- pipeline, no cache: the same with `cache=False`, decoding the PNG files every epoch.

The number of steps of a timed pipeline epoch is what the in-memory source ran in --seconds
(capped by --batches); each timed epoch includes its own pipeline start-up, as in training.
The pipeline is not the bottleneck when its rate is >= 0.9 of the in-memory rate. Rates are the
best of --rounds interleaved rounds (the machine may be shared and noisy); the CPU time per patch
is printed too, as it barely depends on the other processes. Nothing is asserted.
"""
import argparse
import itertools
import sys

from benchmarks.input_pipeline import (Stopwatch, add_common_arguments, as_numbers, best_of_rounds,
                                       check_arguments, in_memory_batches, make_trainer, measure, print_rates,
                                       step_runner, synthetic_dataset, train_step)

NOT_BOTTLENECK = 0.9  # pipeline/in-memory at or above this: the input pipeline keeps up
MAX_DISTINCT_BATCHES = 16
IN_MEMORY = "in-memory tensors"
CACHED = "pipeline, decoded cache (default)"
UNCACHED = "pipeline, no cache (decode every epoch)"


def _epoch_runner(trainer, step):
    """fn() -> Rate of one `Trainer.train_epoch` fed by `trainer`'s pipeline; the first epoch warms up."""
    epochs = itertools.count()
    trainer.train_epoch("float", step, next(epochs), trainer.config.epochs)

    def run():
        watch = Stopwatch()
        trainer.train_epoch("float", step, next(epochs), trainer.config.epochs)
        return watch.rate(trainer.steps * trainer.config.batch_size)
    return run


def _verdict(name, ratio):
    """One line saying whether the pipeline named `name` is the bottleneck."""
    if ratio >= NOT_BOTTLENECK:
        return f"{name}/in-memory = {ratio:.2f} (>= {NOT_BOTTLENECK}: the pipeline is not the bottleneck)"
    return f"{name}/in-memory = {ratio:.2f} (< {NOT_BOTTLENECK}: the pipeline IS the bottleneck)"


def main(argv=None):
    """Measure and print training patches/s from the pipeline (with/without cache) vs in-memory tensors.

    Returns {"pairs", "steps", "in_memory", "pipeline_cached", "pipeline_uncached" (patches/s),
    "cpu_ms_per_patch": {same keys}, "cached_vs_in_memory", "uncached_vs_in_memory" (wall-clock
    ratios), "cached_cpu_ratio", "uncached_cpu_ratio" (in-memory CPU ms/patch over the pipeline's)}.
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.train_throughput",
        description="training patches/s of the default model fed by the real input pipeline (with and "
                    "without the decoded cache) vs the same batches held in memory")
    add_common_arguments(parser, batches=200)
    args = parser.parse_args(argv)
    check_arguments(args)
    root, pairs = synthetic_dataset(args.work_dir, args.pairs)
    base = make_trainer(root, args.batch_size, args.crop, cache=False)
    step = train_step(base)
    in_memory = step_runner(step, in_memory_batches(base, min(args.batches, MAX_DISTINCT_BATCHES)))
    # Size the pipeline epochs so that one takes about --seconds at the in-memory speed.
    probe = measure(in_memory, args.batch_size, args.batches, args.seconds)
    steps = max(2, min(args.batches, round(probe.patches_per_s * args.seconds / args.batch_size)))
    sources = {IN_MEMORY: lambda: measure(in_memory, args.batch_size, steps, args.seconds, warmup=0)}
    for name, cache in ((CACHED, True), (UNCACHED, False)):
        trainer = make_trainer(root, args.batch_size, args.crop, steps_per_epoch=steps, cache=cache)
        sources[name] = _epoch_runner(trainer, step)
    rates = best_of_rounds(sources, args.rounds)
    print(f"{base.config.model}, batch {args.batch_size}, crop {args.crop}; {len(base.train_pairs)} training "
          f"pairs of {len(pairs)} synthetic in {root}; {steps} timed steps per measurement, "
          f"best of {args.rounds} round(s)")
    print_rates("source", rates, IN_MEMORY)
    numbers = as_numbers(rates, {IN_MEMORY: "in_memory", CACHED: "pipeline_cached",
                                 UNCACHED: "pipeline_uncached"})
    numbers.update(pairs=len(pairs), steps=steps,
                   cached_vs_in_memory=numbers["pipeline_cached"] / numbers["in_memory"],
                   uncached_vs_in_memory=numbers["pipeline_uncached"] / numbers["in_memory"])
    cpu = numbers["cpu_ms_per_patch"]
    numbers.update(cached_cpu_ratio=cpu["in_memory"] / cpu["pipeline_cached"],
                   uncached_cpu_ratio=cpu["in_memory"] / cpu["pipeline_uncached"])
    print(f"input work per patch (CPU ms above the in-memory step): "
          f"decoded cache {cpu['pipeline_cached'] - cpu['in_memory']:.2f}, "
          f"no cache {cpu['pipeline_uncached'] - cpu['in_memory']:.2f}; CPU-time ratios "
          f"{numbers['cached_cpu_ratio']:.2f} and {numbers['uncached_cpu_ratio']:.2f} (what cores saturated "
          "by the step would give; steadier than wall-clock on a shared machine)")
    print(_verdict("pipeline (decoded cache, the training default)", numbers["cached_vs_in_memory"]))
    print(_verdict("pipeline (no cache)", numbers["uncached_vs_in_memory"]))
    return numbers


if __name__ == "__main__":
    from benchmarks.cli import run_guarded
    sys.exit(run_guarded(main))
