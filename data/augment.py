"""CFA-safe augmentation of packed RAW / RGB pairs with stateless (seeded) randomness.

Every geometric op acts on whole 2x2 Bayer cells: the packed RAW [h, w, 4] is flipped/rotated
spatially with its channels untouched, so channel k keeps its colour; the RGB target [2h, 2w, 3]
gets the same op at twice the resolution. Crops start at even mosaic coordinates.
"""
import tensorflow as tf


def random_crop(raw, rgb, size, seed):
    """Aligned random crop: raw [h, w, 4] -> [size, size, 4], rgb [2h, 2w, 3] -> [2size, 2size, 3].

    `seed` is a stateless seed, int32/int64 tensor of shape [2].
    """
    shape = tf.shape(raw)
    top = tf.random.stateless_uniform([], seed, 0, shape[0] - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seed + [0, 1], 0, shape[1] - size + 1, dtype=tf.int32)
    raw = raw[top:top + size, left:left + size, :]
    rgb = rgb[2 * top:2 * (top + size), 2 * left:2 * (left + size), :]
    return raw, rgb


def random_flip_rotate(raw, rgb, seed):
    """Random horizontal flip, vertical flip and 90-degree rotation, the same for raw and rgb.

    raw [h, w, 4], rgb [2h, 2w, 3] -> same shapes (h and w swap under odd rotations).
    """
    draws = tf.random.stateless_uniform([3], seed, 0, 4, dtype=tf.int32)
    flip_lr, flip_ud, quarter_turns = draws[0] % 2 == 1, draws[1] % 2 == 1, draws[2]
    raw, rgb = _both(raw, rgb, lambda x: tf.cond(flip_lr, lambda: tf.reverse(x, [1]), lambda: x))
    raw, rgb = _both(raw, rgb, lambda x: tf.cond(flip_ud, lambda: tf.reverse(x, [0]), lambda: x))
    return _both(raw, rgb, lambda x: tf.image.rot90(x, quarter_turns))


def _both(raw, rgb, op):
    return op(raw), op(rgb)
