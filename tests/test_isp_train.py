"""Training: config resolution, losses, a real short run, exact resume, NaN guard, QAT stage."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from isp import config as config_mod
from isp import losses, train
from isp.errors import ISPError
from isp.models import build
from train_testing import train_interrupted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(data, runs, **kw):
    base = dict(data=str(data), runs_dir=str(runs), model="plain", epochs=2, batch_size=2, crop=8,
                val_images=2, qat_epochs=0, cache=False, msssim_weight=0.0)
    base.update(kw)
    return config_mod.resolve(base)


def test_config_layers_and_unknown_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlr: 0.01\n")
    cfg = config_mod.resolve({"lr": "0.5", "augment": "no"}, config_file=str(path))
    assert (cfg.epochs, cfg.lr, cfg.augment) == (3, 0.5, False)
    path.write_text("epochz: 3\n")
    with pytest.raises(ISPError, match="unknown config key 'epochz'"):
        config_mod.resolve({}, config_file=str(path))
    with pytest.raises(ISPError, match="expects int"):
        config_mod.resolve({"epochs": "many"})
    config_mod.save(cfg, tmp_path / "out.yaml")
    assert config_mod.resolve({}, config_file=str(tmp_path / "out.yaml")) == cfg


def test_losses_are_per_example_and_zero_on_identity():
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((2, 64, 64, 3)), tf.float32)
    b = tf.constant(rng.random((2, 64, 64, 3)), tf.float32)
    for fn in (losses.l1, losses.charbonnier, losses.ssim_loss, losses.ms_ssim_loss, losses.color_loss):
        assert fn(a, b).shape == (2,)
        assert float(tf.reduce_max(fn(a, a))) < 2e-3 < float(tf.reduce_min(fn(a, b)))


def test_ms_ssim_loss_matches_tensorflow_ms_ssim():
    # The separable, stacked-moment blur must give TF's MS-SSIM (5 scales at 192 px) where TF's is defined.
    rng = np.random.default_rng(1)
    a = rng.random((2, 192, 192, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    ours = 1.0 - losses.ms_ssim_loss(tf.constant(a), tf.constant(b)).numpy()
    np.testing.assert_allclose(ours, tf.image.ssim_multiscale(a, b, max_val=1.0).numpy(), atol=1e-4)


def test_perceptual_loss_without_weights_is_a_clear_error():
    cfg = config_mod.resolve({"perceptual_weight": 1.0})
    with pytest.raises(ISPError, match="VGG19"):
        losses.build_loss(cfg)


def last_weights(run_dir):
    model = build("plain", (None, None, 4))
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints", "float"))
    tf.train.Checkpoint(model=model).read(latest).expect_partial()
    return model.get_weights()


def test_train_writes_run_folder_and_resume_matches(pair_tree, tmp_path, monkeypatch):
    cfg = tiny_config(pair_tree, tmp_path / "runs", name="full", epochs=3)
    summary = train.train(cfg, progress=False)
    run = summary["run_dir"]
    history = json.load(open(os.path.join(run, "history.json")))
    assert [r["epoch"] for r in history["float"]] == [1, 2, 3]
    assert np.isfinite(history["float"][-1]["val_psnr"])
    assert config_mod.resolve({}, config_file=os.path.join(run, "config.yaml")) == cfg
    # the same run, interrupted during epoch 2, then resumed, ends with identical weights
    train_interrupted(dataclasses.replace(cfg, name="split"), monkeypatch)
    train.resume(os.path.join(cfg.runs_dir, "split"), progress=False)
    assert os.path.isfile(os.path.join(run, "checkpoints", "best.weights.h5"))
    for a, b in zip(last_weights(os.path.join(cfg.runs_dir, "split")), last_weights(run)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ISPError, match="already holds a run"):
        train.train(cfg, progress=False)


def test_nan_guard_before_the_first_checkpoint_says_none_exists(pair_tree, tmp_path):
    cfg = tiny_config(pair_tree, tmp_path / "runs", lr=1e30, epochs=1, name="nan")
    with pytest.raises(ISPError, match=r"diverged: loss is nan at float epoch 1 step \d") as caught:
        train.train(cfg, progress=False)
    message = str(caught.value)
    assert "no checkpoint was written yet" in message and "last good checkpoint" not in message
    assert not tf.train.latest_checkpoint(str(tmp_path / "runs" / "nan" / "checkpoints" / "float"))
    # what the message says to do works: the same folder starts again from the beginning
    train.resume(str(tmp_path / "runs" / "nan"), {"lr": 1e-3}, progress=False)
    history = json.load(open(tmp_path / "runs" / "nan" / "history.json"))
    assert [r["epoch"] for r in history["float"]] == [1]


def test_nan_guard_after_a_checkpoint_names_it(pair_tree, tmp_path, monkeypatch):
    cfg = tiny_config(pair_tree, tmp_path / "runs", epochs=2, name="late")
    steps_per_epoch = 3  # 6 train pairs, batch 2
    original = train.Trainer.make_step

    def diverging_in_epoch_2(self, *args):
        step, calls = original(self, *args), []

        def counted(raw, rgb):
            calls.append(1)
            loss = step(raw, rgb)
            return float("nan") if len(calls) > steps_per_epoch else loss
        return counted

    monkeypatch.setattr(train.Trainer, "make_step", diverging_in_epoch_2)
    with pytest.raises(ISPError, match=r"at float epoch 2 step 1; the last good checkpoint is \S+; continue") as caught:
        train.train(cfg, progress=False)
    latest = tf.train.latest_checkpoint(str(tmp_path / "runs" / "late" / "checkpoints" / "float"))
    assert latest and f"the last good checkpoint is {latest};" in str(caught.value)
    assert "--resume" in str(caught.value) and "--lr LOWER" in str(caught.value)


@pytest.mark.slow
def test_qat_stage_saves_quantize_aware_weights(pair_tree, tmp_path):
    cfg = tiny_config(pair_tree, tmp_path / "runs", epochs=1, qat_epochs=1, model="unet_tiny")
    summary = train.train(cfg, progress=False)
    assert os.path.isfile(os.path.join(summary["run_dir"], "checkpoints", "qat.weights.h5"))
    assert np.isfinite(summary["qat_best_val_psnr"])


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume(pair_tree, tmp_path):
    """A real SIGTERM in the middle of training loses at most the current epoch."""
    runs = tmp_path / "runs"
    args = [sys.executable, "train.py", "--data", str(pair_tree), "--runs-dir", str(runs), "--name", "killed",
            "--model", "plain", "--epochs", "40", "--batch-size", "2", "--crop", "8", "--qat-epochs", "0",
            "--no-cache", "--val-images", "1", "--msssim-weight", "0"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "epoch 2/40" in line:
            proc.terminate()
            break
    proc.wait(timeout=120)
    assert proc.returncode == 130
    history = json.load(open(runs / "killed" / "history.json"))
    done = len(history["float"])
    assert 2 <= done < 40
    train.resume(str(runs / "killed"), {"epochs": done + 1}, progress=False)
    history = json.load(open(runs / "killed" / "history.json"))
    assert [r["epoch"] for r in history["float"]] == list(range(1, done + 2))


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(pair_tree, tmp_path):
    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from isp import config, train
cfg = config.resolve(dict(data={str(pair_tree)!r}, runs_dir={str(tmp_path)!r}, model="plain", epochs=1,
                          batch_size=4, crop=8, qat_epochs=1, strategy="mirrored", msssim_weight=0.0))
t = train.Trainer(cfg, {str(tmp_path / "m")!r}, progress=False)
assert t.strategy.num_replicas_in_sync == 2, t.strategy.num_replicas_in_sync
print("PSNR", t.run()["best_val_psnr"])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PSNR" in out.stdout


def test_loss_gradients_finite_on_black_and_saturated_pixels():
    pred = tf.Variable(tf.concat([tf.zeros((1, 64, 32, 3)), tf.ones((1, 64, 32, 3))], axis=2))
    target = tf.random.stateless_uniform((1, 64, 64, 3), [1, 2])
    for fn in (losses.l1, losses.charbonnier, losses.ssim_loss, losses.ms_ssim_loss, losses.color_loss):
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(pred, target))
        assert np.all(np.isfinite(tape.gradient(value, pred).numpy())), fn.__name__


def test_mixed_precision_float_stage_then_float32_qat(pair_tree, tmp_path):
    cfg = tiny_config(pair_tree, tmp_path / "runs", epochs=1, qat_epochs=1, mixed_precision=True)
    summary = train.train(cfg, progress=False)
    assert np.isfinite(summary["best_val_psnr"]) and np.isfinite(summary["qat_best_val_psnr"])
    import tf_keras as keras
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the float stage


@pytest.mark.slow
def test_perceptual_loss_with_local_weights_file(tmp_path):
    """The VGG19 path runs end to end from a local .h5 (random weights here: no ImageNet download)."""
    import tf_keras as keras
    path = str(tmp_path / "vgg19_notop.h5")
    keras.applications.VGG19(include_top=False, weights=None).save_weights(path)
    loss = losses.build_loss(config_mod.resolve({"perceptual_weight": 0.1, "vgg_weights": path}))
    a = tf.random.stateless_uniform((2, 32, 32, 3), [0, 1])
    total, parts = loss(a, tf.random.stateless_uniform((2, 32, 32, 3), [2, 3]))
    assert total.shape == (2,) and float(tf.reduce_min(parts["perceptual"])) > 0
    assert float(tf.reduce_max(loss(a, a)[1]["perceptual"])) == 0.0
