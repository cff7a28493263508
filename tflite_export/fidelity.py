"""Fidelity check: does the .tflite compute what the Keras model computes, on real validation data?

Runs the dynamic-shape .tflite with LiteRT on each validation image and reports PSNR/SSIM of its
output against the target and against the Keras output, the PSNR change that the recipe causes,
and the FP16 overflow risk (any activation of the float Keras model above 65504 in magnitude).
"""
import numpy as np
import tf_keras as keras
from tqdm import tqdm

from data import dataset
from isp import metrics

FP16_MAX = 65504.0
FP16_TOLERANCE_DB = 0.05
FP16_CHECK_ARITHMETIC = "FP32 (LiteRT CPU: FP16 weights, FP32 arithmetic; no FP16 GPU path used)"


def activation_probe(model):
    """fn(raw [1, h, w, 4]) -> largest |value| of any layer output of the float Keras `model`."""
    outputs = [layer.output for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, outputs)

    def max_abs(raw):
        return float(max(np.max(np.abs(v.numpy())) for v in probe(raw, training=False)))
    return max_abs


def check_fidelity(tflite_model, keras_model, pairs, profile, recipe, progress=True):
    """Compare a TFLiteModel with the Keras model it came from on validation `pairs`.

    Returns a dict: images, tflite_psnr/tflite_ssim (vs target), keras_psnr/keras_ssim (vs target),
    psnr_delta_db (tflite - keras), psnr_vs_keras/ssim_vs_keras (tflite output vs Keras output),
    max_abs_activation and fp16_overflow_risk (float models only; None for a QAT model), and for
    fp16 `fp16_within_tolerance` (|delta| <= 0.05 dB) and `fp16_arithmetic`: the check runs on
    LiteRT's CPU interpreter, which dequantizes FP16 weights and computes in FP32, so it measures
    the FP16 weight rounding, not FP16 arithmetic (that needs a GPU: `isp bench --device desktop-gpu`).
    """
    rows, peak = [], 0.0
    probe = None if recipe == "qat" else activation_probe(keras_model)
    for pair in tqdm(pairs, desc=f"fidelity {recipe}", unit="img", disable=not progress):
        raw, target = dataset.load_pair(pair, profile)
        raw = raw[None]
        keras_out = keras_model(raw, training=False).numpy()[0]
        tflite_out = tflite_model.run(raw)[0]
        rows.append((*metrics.psnr_ssim(tflite_out, target), *metrics.psnr_ssim(keras_out, target),
                     *metrics.psnr_ssim(tflite_out, keras_out)))
        peak = max(peak, probe(raw)) if probe else None
    means = np.mean(np.array(rows, dtype=np.float64), axis=0) if rows else [float("nan")] * 6
    result = dict(zip(("tflite_psnr", "tflite_ssim", "keras_psnr", "keras_ssim", "psnr_vs_keras",
                       "ssim_vs_keras"), (float(m) for m in means)))
    result.update(images=len(rows), psnr_delta_db=result["tflite_psnr"] - result["keras_psnr"],
                  max_abs_activation=peak, fp16_overflow_risk=None if peak is None else peak > FP16_MAX)
    if recipe == "fp16":
        result["fp16_within_tolerance"] = abs(result["psnr_delta_db"]) <= FP16_TOLERANCE_DB
        result["fp16_arithmetic"] = FP16_CHECK_ARITHMETIC
    return result
