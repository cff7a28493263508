"""QAT copies of every registered model build, keep the float outputs, and convert to full int8."""
import numpy as np
import pytest
import tensorflow as tf

from isp import qat
from isp.models import build, list_models
from tflite_export import convert
from tflite_export.runtime import TFLiteModel


# microisp's ~300 layers take 90 s to clone and convert here; its float conversion is tested in test_isp_models
@pytest.mark.parametrize("name", [n for n in list_models() if n != "microisp"])
def test_quantize_aware_copy_converts_to_int8(name):
    model = build(name, (None, None, 4))
    with qat.scope():
        qmodel = qat.quantize_aware(model)
    raw = tf.random.stateless_uniform((1, 16, 16, 4), [0, 1])
    qat_out = qmodel(raw).numpy()
    assert qat_out.shape == (1, 32, 32, 3) and 0.0 <= qat_out.min() and qat_out.max() <= 1.0
    np.testing.assert_array_equal(qmodel.get_layer("quant_" + model.layers[1].name).get_weights()[:1],
                                  model.layers[1].get_weights()[:1])  # float weights carried over
    flat = convert.convert(qmodel, "qat", (16, 16, 4))
    ops = convert.op_names(flat)
    interp = TFLiteModel(flat).interpreter
    assert TFLiteModel(flat).run(raw.numpy()).shape == (1, 32, 32, 3)
    if not (name.startswith("unet") or name == "plain"):
        return  # reference models keep float islands (LeakyReLU, sigmoid gates) tfmot cannot quantize
    # our models: every conv runs in int8 (only the [0, 1] clip at the very end may stay float)
    tensors = interp.get_tensor_details()
    conv_outputs = [op["outputs"][0] for op in interp._get_ops_details()
                    if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")]
    assert conv_outputs and all(tensors[i]["dtype"] == np.int8 for i in conv_outputs), ops


def test_calibrated_ranges_match_the_float_model():
    """Without range calibration a fresh QAT model quantizes a [0, 1] output over [-6, 6]."""
    model = build("unet_tiny", (None, None, 4))
    batches = [tf.random.stateless_uniform((2, 16, 16, 4), [i, 5]) for i in range(4)]
    with qat.scope():
        fresh = qat.quantize_aware(model)
        calibrated = qat.quantize_aware(model)
    qat.calibrate_ranges(calibrated, batches)
    raw = batches[0]
    float_out = model(raw).numpy()
    err_fresh = np.abs(fresh(raw, training=False).numpy() - float_out).mean()
    err_calibrated = np.abs(calibrated(raw, training=False).numpy() - float_out).mean()
    assert err_calibrated < 0.01 < err_fresh
