"""Data layer: sensor profiles and Bayer packing, dataset readers, checks, tf.data, RAW synthesis."""
