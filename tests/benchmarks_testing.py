"""Tiny .tflite files and fidelity-benchmark inputs shared by the benchmarks tests (not a test module itself)."""
import warnings

import cv2
import numpy as np
import tensorflow as tf
import tf_keras as keras


def write_tiny_tflite(path, input_shape=(32, 32, 4), quantized=False):
    """Two 3x3 convs, raw [1, H, W, 4] -> [1, H, W, 3]; `input_shape` may hold None for dynamic.

    `quantized=True` makes a full-int8 model with uint8 input and output.
    """
    raw = keras.Input(input_shape, batch_size=1, name="raw")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(raw)
    rgb = keras.layers.Conv2D(3, 3, padding="same", name="conv2")(x)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(raw, rgb, name="tiny"))
    if quantized:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.random((1,) + tuple(input_shape), dtype=np.float32)] for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": random data
        warnings.simplefilter("ignore", UserWarning)
        path.write_bytes(converter.convert())
    return path


def tiny_benchmark_inputs(tmp_path):
    """(a shared YAML config without MS-SSIM, a folder of 2 small held-out photos) for the smoke runs of
    the fidelity benchmarks on the 32x32 pair tree."""
    config = tmp_path / "shared.yaml"
    config.write_text("msssim_weight: 0.0\ncache: false\n")  # 16x16 packed images are too small for MS-SSIM
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        image = np.random.default_rng(k).integers(0, 256, (96, 96, 3), dtype=np.uint8)
        cv2.imwrite(str(photos / f"p{k}.png"), cv2.resize(image[::8, ::8], (96, 96)))
    return config, photos
