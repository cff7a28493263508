"""Training loop: fit a registered model on RAW/RGB pairs, with per-epoch validation, best/last
checkpoints, exact resume, a NaN guard, optional QAT fine-tuning and tf.distribute strategies.

Everything lands in one run folder, whose layout isp/rundir.py owns.
"""
import contextlib
import dataclasses
import json
import math
import os
import signal
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from data import dataset, decoded_cache, levels, pipeline, sensor
from data.atomic import atomic_path, write_text
from isp import cluster, losses, metrics, qat
from isp.errors import ISPError
from isp.models.architecture import copy_init_architecture, init_source, load_init_weights, model_for_run
from isp.rundir import STAGES, RunDir

QAT_CALIBRATION_BATCHES = 16
# What a collective raises when a peer worker died or timed out (tf.distribute multi-worker).
PEER_FAILURES = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)


def profile_of(config, pairs=None):
    """SensorProfile described by a TrainConfig's cfa/channel_order/black_level/white_level; "auto"
    levels are estimated from the RAW files of `pairs` (data/levels.py)."""
    def estimate(layout):
        if not pairs:
            raise ISPError("--black-level/--white-level auto: no RAW pairs to estimate the levels from")
        return levels.estimate_pairs(pairs, layout)
    return sensor.profile_from_text(config.cfa, config.channel_order, config.black_level, config.white_level,
                                    estimate)


def resolve_levels(config):
    """`config` with "auto" levels replaced by the numbers estimated from its training pairs (so the run
    folder records what the model was trained with), printing them and any dark-floor warning."""
    train_pairs = load_splits(config).get("train", [])
    auto = sensor.is_auto(config.black_level, config.white_level)
    profile = profile_of(config, train_pairs)
    if auto:
        config = dataclasses.replace(config, black_level=",".join(f"{b:g}" for b in profile.black_level),
                                     white_level=f"{profile.white_level:g}")
        print(f"auto levels from {min(len(train_pairs), levels.DEFAULT_MAX_PAIRS)} training RAWs: black "
              f"{config.black_level}, white {config.white_level}")
    elif train_pairs:
        warning = levels.pairs_floor_warning(train_pairs, profile)
        if warning:
            print(f"warning: {warning}")
    return config


def dataset_root(config):
    """The dataset folder: `config.data`, or the built-in default data (synthesised once)."""
    if config.data:
        return config.data
    from data.default_data import ensure_default_data
    return str(ensure_default_data())


def load_splits(config, root=None):
    """The dataset splits a TrainConfig reads ({"train": [Pair], "val": [Pair], ...}) from `root` (default
    `dataset_root(config)`): the one place its layout, val fraction and seed reach `dataset.load_splits`."""
    return dataset.load_splits(root or dataset_root(config), config.val_fraction, config.seed,
                               raw_dir=config.raw_dir, rgb_dir=config.rgb_dir)


def make_strategy(name):
    """tf.distribute strategy by name; multiworker reads the cluster from TF_CONFIG."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ISPError("--strategy multiworker needs the TF_CONFIG environment variable "
                           "(see 'Scaling out' in the README)")
        # Collectives give up after the cluster timeout, so a worker that dies mid-training ends the others.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=cluster.timeout_s())
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        cluster.mark_cluster_formed()
        return strategy
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """True on the one worker that writes checkpoints and reports (always true outside multiworker)."""
    return _resolver_is_chief(getattr(strategy, "cluster_resolver", None))


def is_chief_process(config):
    """`is_chief` from TF_CONFIG alone, before any strategy (and its servers) exists."""
    if config.strategy != "multiworker":
        return True
    return _resolver_is_chief(tf.distribute.cluster_resolver.TFConfigClusterResolver())


def _resolver_is_chief(resolver):
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def lr_schedule(base_lr, steps_per_epoch, epochs, warmup_epochs, min_lr_ratio):
    """Linear warm-up from base_lr/10 to base_lr, then cosine decay to base_lr * min_lr_ratio."""
    total = max(1, steps_per_epoch * epochs)
    warmup = min(int(warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=base_lr / 10.0, decay_steps=total - warmup, alpha=min_lr_ratio,
        warmup_target=base_lr, warmup_steps=warmup)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt (like SIGINT) for the duration of training."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Trainer:
    """Trains one run folder; `run()` does the float stage then the QAT stage, both resumable."""

    def __init__(self, config, run_dir, progress=True):
        self.config = config
        self.run_dir = run_dir
        self.folder = RunDir(run_dir)
        self.progress = progress
        self.profile = profile_of(config)
        self.strategy = make_strategy(config.strategy)
        self.chief = is_chief(self.strategy)
        splits = load_splits(config)
        self.train_pairs = splits.get("train", [])
        self.val_pairs = splits.get("val", [])[:config.val_images or None]
        if not self.train_pairs:
            raise ISPError(f"{dataset_root(config)}: no training pairs found; check it with `isp data check`")
        self.store, mode, reason = decoded_cache.open_store(config.cache, self.train_pairs, self.profile, progress)
        print(f"decoded cache: {mode} ({reason})")
        self.steps = config.steps_per_epoch or len(self.train_pairs) // config.batch_size
        if self.steps < 1:
            raise ISPError(f"{len(self.train_pairs)} training pairs cannot fill one batch of "
                           f"{config.batch_size}; lower --batch-size")
        self.history = self._load_history()

    # ---- files -----------------------------------------------------------------------------
    def _load_history(self):
        path = self.folder.history_file
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
        return {stage: [] for stage in STAGES}

    def _save_history(self):
        if self.chief:
            write_text(self.folder.history_file, json.dumps(self.history, indent=2))

    def _checkpoint_dir(self, stage):
        if self.chief:
            return self.folder.checkpoints(stage)
        return self.folder.checkpoints(stage, worker=self.strategy.cluster_resolver.task_id)

    def _save_best(self, model, stage):
        if self.chief:
            with atomic_path(self.folder.best_weights(stage)) as tmp:
                model.save_weights(tmp)

    # ---- stages ----------------------------------------------------------------------------
    def run(self):
        """Train the float model, then QAT fine-tune it; returns a summary dict."""
        keras.utils.set_random_seed(self.config.seed)
        tf.config.experimental.enable_op_determinism()
        if self.config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            with self.strategy.scope():
                model = model_for_run(self.folder, self.config)
                if self.config.init and not tf.train.latest_checkpoint(self._checkpoint_dir("float")):
                    load_init_weights(model, self.config.init)
            best_float = self._fit("float", model, self.config.epochs, self.config.lr)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        summary = {"run_dir": self.run_dir, "best_val_psnr": best_float, "qat_best_val_psnr": None}
        if self.config.qat_epochs:
            with self.strategy.scope():
                float_model = model_for_run(self.folder, self.config)
                float_model.load_weights(self.folder.best_weights("float"))
                qat_model = qat.quantize_aware(float_model)
                calibration = self._batches(epoch=0).take(QAT_CALIBRATION_BATCHES)
                qat.calibrate_ranges(qat_model, (raw for raw, _ in calibration))
            summary["qat_best_val_psnr"] = self._fit("qat", qat_model, self.config.qat_epochs, self.config.qat_lr)
        return summary

    def _fit(self, stage, model, epochs, base_lr):
        """Train `model` for `epochs` (resuming from the stage's last checkpoint); best val PSNR."""
        cfg = self.config
        with self.strategy.scope():
            optimizer = keras.optimizers.Adam(lr_schedule(base_lr, self.steps, epochs, cfg.warmup_epochs,
                                                          cfg.min_lr_ratio))
            if cfg.mixed_precision and stage == "float":
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        best_var = tf.Variable(-math.inf, dtype=tf.float64, trainable=False)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var, best_psnr=best_var)
        manager = tf.train.CheckpointManager(checkpoint, self._checkpoint_dir(stage), max_to_keep=1)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            print(f"[{stage}] resumed from {manager.latest_checkpoint} at epoch {int(epoch_var)}")
        self.history[stage] = self.history.get(stage, [])[:int(epoch_var)]
        step_fn = self.make_step(model, optimizer, cfg.mixed_precision and stage == "float")
        predict = tf.function(lambda raw: model(raw, training=False), reduce_retracing=True)
        writer = tf.summary.create_file_writer(self.folder.logs(stage)) if self.chief else None
        for epoch in range(int(epoch_var), epochs):
            started = time.time()
            train_loss = self.train_epoch(stage, step_fn, epoch, epochs)
            val_psnr, val_ssim = self._validate(predict)
            row = {"epoch": epoch + 1, "loss": train_loss, "val_psnr": val_psnr, "val_ssim": val_ssim,
                   "seconds": round(time.time() - started, 2)}
            if writer:
                with writer.as_default(step=epoch + 1):
                    for key in ("loss", "val_psnr", "val_ssim"):
                        tf.summary.scalar(key, row[key])
            if val_psnr > float(best_var) or not os.path.isfile(self.folder.best_weights(stage)):
                best_var.assign(val_psnr)
                self._save_best(model, stage)
            epoch_var.assign(epoch + 1)
            manager.save()
            self.history[stage].append(row)
            self._save_history()
            print(f"[{stage}] epoch {epoch + 1}/{epochs} loss {train_loss:.4f} "
                  f"val PSNR {val_psnr:.2f} dB SSIM {val_ssim:.4f} ({row['seconds']:.0f} s)")
        return float(best_var)

    def make_step(self, model, optimizer, scaled):
        """Distributed train step: global batch (raw, rgb) -> mean loss over the global batch."""
        loss_fn = losses.build_loss(self.config)
        global_batch = self.config.batch_size

        def replica_step(raw, rgb):
            with tf.GradientTape() as tape:
                per_example, _ = loss_fn(model(raw, training=True), rgb)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                objective = optimizer.get_scaled_loss(loss) if scaled else loss
            grads = tape.gradient(objective, model.trainable_variables)
            if scaled:
                grads = optimizer.get_unscaled_gradients(grads)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def step(raw, rgb):
            per_replica = self.strategy.run(replica_step, args=(raw, rgb))
            return self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        return step

    def _batches(self, epoch):
        """The training batches of one epoch: raw [B, crop, crop, 4], rgb [B, 2crop, 2crop, 3]."""
        cfg = self.config
        return pipeline.training_dataset(self.train_pairs, cfg.batch_size, epoch, cfg.seed, cfg.crop,
                                         cfg.augment, self.profile, self.store)

    def train_epoch(self, stage, step_fn, epoch, epochs):
        """One epoch of steps with a progress bar; raises ISPError on a non-finite loss."""
        data = self._batches(epoch).repeat().take(self.steps)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        data = self.strategy.experimental_distribute_dataset(data.with_options(options))
        bar = keras.utils.Progbar(self.steps, verbose=1 if self.progress else 0, unit_name="step")
        total = 0.0
        for step, (raw, rgb) in enumerate(data):
            loss = float(step_fn(raw, rgb))
            if not math.isfinite(loss):
                raise ISPError(f"training diverged: loss is {loss} at {stage} epoch {epoch + 1} step {step + 1}; "
                               f"{self._divergence_advice(stage)}; or check the data with `isp data check`")
            total += loss
            bar.update(step + 1, [("loss", loss)])
        return total / self.steps

    def _divergence_advice(self, stage):
        """What a diverged run leaves to continue from: the stage's last checkpoint when one was written
        (the first is written at the end of the stage's first epoch), else a restart of the stage."""
        flag = "--qat-lr" if stage == "qat" else "--lr"
        latest = tf.train.latest_checkpoint(self._checkpoint_dir(stage))
        if latest:
            return (f"the last good checkpoint is {latest}; continue from it with a lower learning rate: "
                    f"--resume {self.run_dir} {flag} LOWER")
        if stage == "qat":
            return ("no QAT checkpoint was written yet (the first is written at the end of QAT epoch 1); the float "
                    f"stage is complete: --resume {self.run_dir} {flag} LOWER runs QAT again from the best float "
                    "weights")
        return ("no checkpoint was written yet (the first is written at the end of epoch 1): "
                f"--resume {self.run_dir} {flag} LOWER starts this run again from the beginning")

    def _validate(self, predict):
        """Mean (PSNR dB, SSIM) of `predict` over the val pairs (whole images, uint8 range)."""
        scores = [metrics.psnr_ssim(predict(raw).numpy()[0], rgb.numpy()[0])
                  for raw, rgb in pipeline.eval_dataset(self.val_pairs, self.profile)]
        if not scores:
            return float("nan"), float("nan")
        return tuple(float(np.mean(v)) for v in zip(*scores))


def new_run_dir(config, chief=True):
    """Create runs/<name>/ for a new run; ISPError if it already holds a run.

    Only the chief creates a run: another worker of a multi-worker job joins the folder whether or
    not the chief has made it yet (workers start in any order), so every worker needs the same --name.
    """
    if config.strategy == "multiworker" and not config.name:
        raise ISPError("--strategy multiworker needs --name, the same on every worker, so that they share one run")
    run = RunDir.of(config.runs_dir, config.name or f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    if chief and run.exists():
        raise ISPError(f"{run.path} already holds a run; continue it with --resume {run.path} or pick another --name")
    os.makedirs(run.path, exist_ok=True)
    return run.path


def train(config, progress=True):
    """Start a new run from a TrainConfig; returns the summary dict of Trainer.run()."""
    config = resolve_levels(config)
    chief = is_chief_process(config)
    if config.init:
        config = dataclasses.replace(config, model=init_source(config.init)[2])
    run_dir = new_run_dir(config, chief)
    if config.init:
        copy_init_architecture(config.init, RunDir(run_dir))
    if chief:
        RunDir(run_dir).save_config(config)
    return _run_trainer(config, run_dir, progress)


def resume(run_dir, overrides=None, progress=True):
    """Continue the run in `run_dir` from its last checkpoints (overrides e.g. {"epochs": 20})."""
    run = RunDir(run_dir)
    config = run.read_config(overrides)
    if is_chief_process(config):
        run.save_config(config)
    return _run_trainer(config, run_dir, progress)


def _run_trainer(config, run_dir, progress):
    """Trainer(config, run_dir, progress).run() with SIGTERM turned into Ctrl-C, and a peer worker's
    failure in a multi-worker job (a collective that lost its peer or timed out) as one ISPError."""
    with sigterm_as_interrupt():
        try:
            return Trainer(config, run_dir, progress).run()
        except PEER_FAILURES as exc:
            if config.strategy != "multiworker":
                raise
            detail = str(exc).split("aborted by: ", 1)[-1].splitlines()[0][:160]
            raise ISPError(f"a worker of the multi-worker job stopped or timed out ({type(exc).__name__}: "
                           f"{detail}); the last checkpoint of each stage is kept in "
                           f"{os.path.dirname(RunDir(run_dir).checkpoints('float'))}; restart every worker "
                           f"with --resume {run_dir}") from None
