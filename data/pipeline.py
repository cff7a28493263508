"""tf.data input pipeline: parallel decode, packing, normalisation, aligned crops, CFA-safe
augmentation, seeded shuffle, batching and prefetch.

Each epoch's order and augmentation are a pure function of (seed, epoch), so a resumed training
run sees exactly the batches an uninterrupted run would.
"""
import logging

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from data import augment, dataset, sensor
from data.errors import DataError

log = logging.getLogger(__name__)


def _reader(profile):
    """numpy function (raw_path, rgb_path) -> (raw uint16 [h,w,4], rgb uint8 [2h,2w,3], ok); bad pairs
    are logged and flagged, never raised, so one bad file cannot stop an epoch."""
    def read(raw_path, rgb_path):
        pair = dataset.Pair("", raw_path.decode(), rgb_path.decode())
        try:
            raw, rgb = dataset.read_pair(pair, profile)
        except DataError as exc:
            log.warning("skipping bad pair: %s", exc)
            return np.zeros((2, 2, 4), np.uint16), np.zeros((4, 4, 3), np.uint8), False
        return raw, rgb, True
    return read


def read_pairs(pairs, profile=sensor.CHALLENGE_PROFILE, parallel=tf.data.AUTOTUNE):
    """Dataset of pairs as stored: (raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3]), bad pairs skipped.

    Integers are 3.2x smaller than floats: this is what a decoded cache keeps (data/decoded_cache.py).
    """
    if not pairs:
        raise DataError("no image pairs to read; check the dataset folder with `isp data check`")
    paths = tf.data.Dataset.from_tensor_slices(([p.raw_path for p in pairs], [p.rgb_path for p in pairs]))
    read = _reader(profile)

    def decode(raw_path, rgb_path):
        raw, rgb, ok = tf.numpy_function(read, [raw_path, rgb_path], [tf.uint16, tf.uint8, tf.bool])
        raw.set_shape([None, None, 4])
        rgb.set_shape([None, None, 3])
        ok.set_shape([])
        return raw, rgb, ok

    def is_ok(raw, rgb, ok):
        return ok

    def drop_flag(raw, rgb, ok):
        return raw, rgb

    decoded = paths.map(decode, num_parallel_calls=parallel, deterministic=True)
    return decoded.filter(is_ok).map(drop_flag)


def normalizer(profile):
    """tf function (raw uint16 [..., 4], rgb uint8 [..., 3]) -> float32 in [0, 1]: the RAW through
    `sensor.normalize` itself (run on tensors), so it equals `dataset.load_pair` bit for bit."""
    def normalize(raw, rgb):
        return sensor.normalize(raw, profile, xp=tnp), tf.cast(rgb, tf.float32) / 255.0
    return normalize


def decode_pairs(pairs, profile=sensor.CHALLENGE_PROFILE, parallel=tf.data.AUTOTUNE):
    """Dataset of (raw [h, w, 4], rgb [2h, 2w, 3]) float32 in [0, 1], bad pairs skipped with a warning."""
    return read_pairs(pairs, profile, parallel).map(normalizer(profile), num_parallel_calls=parallel)


def store_pairs(store, order, parallel=tf.data.AUTOTUNE):
    """Dataset of the pairs of `store` (data.decoded_cache: `len`, `get(k)`) in `order` (indices into it):
    (raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3])."""
    def get(k):
        return store.get(int(k))

    def fetch(k):
        raw, rgb = tf.numpy_function(get, [k], [tf.uint16, tf.uint8])
        raw.set_shape([None, None, 4])
        rgb.set_shape([None, None, 3])
        return raw, rgb

    indices = tf.data.Dataset.from_tensor_slices(np.asarray(order, np.int64))
    return indices.map(fetch, num_parallel_calls=parallel, deterministic=True)


def training_dataset(pairs, batch_size, epoch, seed=0, crop=None, augment_geometry=True,
                     profile=sensor.CHALLENGE_PROFILE, store=None):
    """One epoch of shuffled, augmented batches: raw [B, crop, crop, 4], rgb [B, 2crop, 2crop, 3].

    `crop` is the packed patch size (None keeps whole images, which must then share one size).
    The epoch's order and augmentation draw only from (seed, epoch): the order is a permutation of the
    pairs (of `store`'s readable pairs when given) from numpy's generator seeded by [seed, epoch], so
    a memory and a disk store give the same batches. `store` (data.decoded_cache.MemoryStore or
    DiskStore) serves pairs decoded once; without it every epoch reads the files. Crops are taken from
    the stored integers and normalised after.
    """
    epoch_seed = seed * 100003 + epoch
    if store is None:
        order = np.random.default_rng([seed, epoch]).permutation(len(pairs))
        data = read_pairs([pairs[i] for i in order], profile)
    else:
        if not len(store):
            raise DataError("no readable image pairs to train on; check the dataset folder with `isp data check`")
        order = np.random.default_rng([seed, epoch]).permutation(len(store))
        data = store_pairs(store, order, getattr(store, "parallel_reads", tf.data.AUTOTUNE))
    return augmented_batches(data, batch_size, epoch_seed, crop, augment_geometry, profile)


def augmented_batches(data, batch_size, epoch_seed, crop=None, augment_geometry=True,
                      profile=sensor.CHALLENGE_PROFILE):
    """Dataset of stored pairs (raw uint16 [h, w, 4], rgb uint8 [2h, 2w, 3]) in an epoch's order -> its
    cropped, augmented, normalised batches; element k's crop and flips draw from (epoch_seed, k)."""
    data = data.enumerate()
    normalize = normalizer(profile)

    def transform(index, example):
        raw, rgb = example
        element_seed = tf.stack([tf.constant(epoch_seed, tf.int64), index])
        if crop is not None:
            raw, rgb = augment.random_crop(raw, rgb, crop, element_seed)
        if augment_geometry:
            raw, rgb = augment.random_flip_rotate(raw, rgb, element_seed + [0, 7919])
        return raw, rgb

    data = data.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.batch(batch_size, drop_remainder=True).map(normalize, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def eval_dataset(pairs, profile=sensor.CHALLENGE_PROFILE):
    """Whole validation images one at a time: raw [1, h, w, 4], rgb [1, 2h, 2w, 3], in index order."""
    return decode_pairs(pairs, profile).batch(1).prefetch(tf.data.AUTOTUNE)
