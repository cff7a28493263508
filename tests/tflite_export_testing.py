"""Tiny models and conversions shared by the tflite_export tests (not a test module itself)."""
import tensorflow as tf
import tf_keras as keras

from isp.layers import DepthToSpace


def tiny_isp_model(input_shape=(None, None, 4)):
    """conv 4->12, relu, conv 12->12, DepthToSpace(2), sigmoid: raw [1, h, w, 4] -> rgb [1, 2h, 2w, 3]."""
    raw = keras.Input(input_shape, batch_size=1, name="raw")
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv1")(raw)
    x = keras.layers.Conv2D(12, 3, padding="same", name="conv2")(x)
    x = DepthToSpace(2, name="depth_to_space")(x)
    rgb = keras.layers.Activation("sigmoid", name="rgb")(x)
    return keras.Model(raw, rgb, name="tiny_isp")


def convert_function(fn, *specs, select_tf_ops=False):
    """Convert a plain TF function with the given input TensorSpecs to .tflite bytes.

    Used to produce graphs a keras ISP model would never contain (ARG_MAX, 5-D reshapes, ...).
    """
    module = tf.Module()
    module.fn = tf.function(fn, input_signature=list(specs), autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.fn.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
        [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
    return converter.convert()
