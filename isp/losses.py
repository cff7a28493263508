"""Training losses. Each takes pred, target [B, H, W, 3] float in [0, 1] and returns a
per-example loss [B] (so tf.distribute can average over the global batch)."""
import math
import os

import tensorflow as tf
import tf_keras as keras

from isp.errors import ISPError

MS_SSIM_POWERS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_FILTER = 11


def l1(pred, target):
    """Mean absolute error per example."""
    return tf.reduce_mean(tf.abs(pred - target), axis=[1, 2, 3])


def charbonnier(pred, target, eps=1e-3):
    """Robust L1: mean of sqrt((pred - target)^2 + eps^2) per example."""
    return tf.reduce_mean(tf.sqrt(tf.square(pred - target) + eps * eps), axis=[1, 2, 3])


def ssim_loss(pred, target):
    """1 - SSIM (11x11 Gaussian window, sigma 1.5) per example."""
    return 1.0 - tf.image.ssim(pred, target, max_val=1.0)


def _gaussian_taps(size=SSIM_FILTER, sigma=1.5):
    """1-D Gaussian taps [size] summing to 1 (the 2-D SSIM window is their outer product)."""
    x = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    g = tf.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return g / tf.reduce_sum(g)


def _gaussian_blur(t, taps):
    """Valid separable Gaussian blur [B, H, W, C] -> [B, H-size+1, W-size+1, C]: one column pass and
    one row pass (2*size MACs per pixel instead of size^2 for the 2-D window)."""
    channels = t.shape[-1]
    column = tf.tile(taps[:, None, None, None], [1, 1, channels, 1])
    row = tf.tile(taps[None, :, None, None], [1, 1, channels, 1])
    t = tf.nn.depthwise_conv2d(t, column, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(t, row, [1, 1, 1, 1], "VALID")


def _ssim_and_cs(x, y, taps, c1=0.01 ** 2, c2=0.03 ** 2):
    """Mean SSIM and contrast-structure term per example, valid 11x11 Gaussian windows.

    The five local moments are blurred in one pass over a [B, H, W, 5C] stack."""
    moments = _gaussian_blur(tf.concat([x, y, x * x, y * y, x * y], axis=-1), taps)
    mu_x, mu_y, xx, yy, xy = tf.split(moments, 5, axis=-1)
    var_x = xx - mu_x ** 2
    var_y = yy - mu_y ** 2
    cov = xy - mu_x * mu_y
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    return tf.reduce_mean(luminance * cs, axis=[1, 2, 3]), tf.reduce_mean(cs, axis=[1, 2, 3])


def ms_ssim_loss(pred, target):
    """1 - MS-SSIM per example, with as many of the 5 standard scales as the patch size allows.

    Written out instead of tf.image.ssim_multiscale, whose relu-then-power has an infinite
    gradient (NaN after the chain rule) whenever a scale's contrast term reaches 0: here each
    term is floored at a small positive value before the power.
    """
    size = min(pred.shape[1] or 0, pred.shape[2] or 0)
    scales = max(1, min(len(MS_SSIM_POWERS), int(math.log2(max(size, 1) / SSIM_FILTER)) + 1))
    powers = [p / sum(MS_SSIM_POWERS[:scales]) for p in MS_SSIM_POWERS[:scales]]
    taps = _gaussian_taps()
    result = 1.0
    for k, power in enumerate(powers):
        ssim, cs = _ssim_and_cs(pred, target, taps)
        term = ssim if k == scales - 1 else cs
        result = result * tf.maximum(term, 1e-4) ** power
        pred = tf.nn.avg_pool2d(pred, 2, 2, "VALID")
        target = tf.nn.avg_pool2d(target, 2, 2, "VALID")
    return 1.0 - result


def color_loss(pred, target, eps=1e-6):
    """Mean (1 - cosine similarity) between predicted and target RGB vectors, per example."""
    dot = tf.reduce_sum(pred * target, axis=-1)
    # sqrt(|x|^2 + eps) rather than tf.norm: the norm's gradient is NaN at a black (all-zero) pixel
    norms = (tf.sqrt(tf.reduce_sum(tf.square(pred), axis=-1) + eps)
             * tf.sqrt(tf.reduce_sum(tf.square(target), axis=-1) + eps))
    return tf.reduce_mean(1.0 - dot / norms, axis=[1, 2])


class PerceptualLoss:
    """Mean |VGG19 features(pred) - features(target)| at block3_conv4 and block4_conv4, per example.

    Needs ImageNet weights from a local file (`vgg_weights`, a Keras VGG19 `include_top=False` .h5);
    nothing is downloaded.
    """

    LAYERS = ("block3_conv4", "block4_conv4")

    def __init__(self, vgg_weights):
        if not vgg_weights or not os.path.isfile(vgg_weights):
            raise ISPError(
                f"perceptual loss needs local VGG19 ImageNet weights (--vgg-weights FILE.h5, the Keras "
                f"'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'); {vgg_weights or 'none given'} "
                "not found. Set --perceptual-weight 0 to train without it.")
        vgg = keras.applications.VGG19(include_top=False, weights=None)
        vgg.load_weights(vgg_weights)
        vgg.trainable = False
        self.features = keras.Model(vgg.input, [vgg.get_layer(n).output for n in self.LAYERS])

    def __call__(self, pred, target):
        prep = keras.applications.vgg19.preprocess_input
        pred_feats = self.features(prep(pred * 255.0))
        target_feats = self.features(prep(target * 255.0))
        return tf.add_n([tf.reduce_mean(tf.abs(p - t), axis=[1, 2, 3]) for p, t in zip(pred_feats, target_feats)])


def build_loss(config):
    """Weighted sum from a TrainConfig: fn(pred, target) -> (total [B], {name: [B]} of the parts)."""
    parts = {}
    if config.l1_weight:
        name, fn = ("charbonnier", charbonnier) if config.charbonnier else ("l1", l1)
        parts[name] = (config.l1_weight, fn)
    if config.ssim_weight:
        parts["ssim"] = (config.ssim_weight, ssim_loss)
    if config.msssim_weight:
        parts["ms_ssim"] = (config.msssim_weight, ms_ssim_loss)
    if config.color_weight:
        parts["color"] = (config.color_weight, color_loss)
    if config.perceptual_weight:
        parts["perceptual"] = (config.perceptual_weight, PerceptualLoss(config.vgg_weights))
    if not parts:
        raise ISPError("every loss weight is 0; set at least one of --l1-weight, --ssim-weight, ...")

    def loss(pred, target):
        pred = tf.cast(pred, tf.float32)
        values = {name: fn(pred, target) for name, (_, fn) in parts.items()}
        total = tf.add_n([parts[name][0] * v for name, v in values.items()])
        return total, values
    return loss
