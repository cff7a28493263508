"""CFA-safe augmentation: augmenting the packed RAW equals augmenting the mosaic cell by cell."""
import numpy as np
import pytest
import tensorflow as tf

from data import augment, sensor


def cell_augment_mosaic(mosaic, flip_lr, flip_ud, quarter_turns):
    """Reference: flip/rotate the grid of 2x2 Bayer cells of a mosaic [H, W], each cell kept intact."""
    h, w = mosaic.shape
    cells = mosaic.reshape(h // 2, 2, w // 2, 2).transpose(0, 2, 1, 3)  # [h/2, w/2, 2, 2]
    if flip_lr:
        cells = cells[:, ::-1]
    if flip_ud:
        cells = cells[::-1]
    cells = np.rot90(cells, quarter_turns, axes=(0, 1))
    ch, cw = cells.shape[:2]
    return cells.transpose(0, 2, 1, 3).reshape(ch * 2, cw * 2)


def draws_for(seed):
    draws = tf.random.stateless_uniform([3], seed, 0, 4, dtype=tf.int32).numpy()
    return draws[0] % 2 == 1, draws[1] % 2 == 1, int(draws[2])


@pytest.mark.parametrize("cfa", sensor.CFA_PATTERNS)
@pytest.mark.parametrize("seed", range(8))
def test_augment_then_unpack_equals_unpack_then_augment(cfa, seed):
    profile = sensor.SensorProfile(cfa=cfa)
    rng = np.random.default_rng(seed)
    mosaic = rng.integers(0, 1020, (8, 12)).astype(np.float32)
    rgb = rng.random((8, 12, 3)).astype(np.float32)
    packed = sensor.pack(mosaic, profile)
    tf_seed = tf.constant([seed, 3], tf.int64)
    raw_aug, rgb_aug = augment.random_flip_rotate(tf.constant(packed), tf.constant(rgb), tf_seed)
    flip_lr, flip_ud, turns = draws_for(tf_seed)
    expected = cell_augment_mosaic(mosaic, flip_lr, flip_ud, turns)
    np.testing.assert_array_equal(sensor.unpack(raw_aug.numpy(), profile), expected)
    # the RGB target follows the same geometry at pixel level
    ref_rgb = rgb[:, ::-1] if flip_lr else rgb
    ref_rgb = ref_rgb[::-1] if flip_ud else ref_rgb
    np.testing.assert_array_equal(rgb_aug.numpy(), np.rot90(ref_rgb, turns, axes=(0, 1)))


def test_every_transform_is_drawn():
    seen = {draws_for(tf.constant([s, 3], tf.int64)) for s in range(200)}
    assert len(seen) == 16


def test_crop_is_aligned_to_bayer_cells():
    profile = sensor.CHALLENGE_PROFILE
    mosaic = np.arange(40 * 40, dtype=np.float32).reshape(40, 40)
    rgb = np.stack([mosaic] * 3, axis=-1)
    packed = sensor.pack(mosaic, profile)
    for s in range(10):
        raw_c, rgb_c = augment.random_crop(tf.constant(packed), tf.constant(rgb), 6, tf.constant([s, 0], tf.int64))
        crop_mosaic = sensor.unpack(raw_c.numpy(), profile)
        assert raw_c.shape == (6, 6, 4) and rgb_c.shape == (12, 12, 3)
        np.testing.assert_array_equal(crop_mosaic, rgb_c.numpy()[..., 0])  # same pixels, same phase
        assert int(crop_mosaic[0, 0]) % 2 == 0 and (int(crop_mosaic[0, 0]) // 40) % 2 == 0
