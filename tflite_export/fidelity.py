"""Fidelity check: does the .tflite compute what the Keras model computes, on real validation data?

Runs the dynamic-shape .tflite with LiteRT on each validation image and reports PSNR/SSIM of its
output against the target and against the Keras output, the PSNR change that the recipe causes,
and the FP16 overflow risk (any activation of the float Keras model above 65504 in magnitude).

LiteRT's CPU interpreter computes an FP16 model in FP32 (it dequantizes the FP16 weights), so for
the fp16 recipe the same images also run on LiteRT's GPU accelerator at FP16 when this machine
has a GPU adapter (`litert_gpu`), and the FP16 verdict uses those numbers.
"""
import os
import tempfile

import numpy as np
import tf_keras as keras
from tqdm import tqdm

from data import dataset
from isp import metrics
from tflite_export import litert_gpu
from tflite_export.conventions import from_model, to_model
from tflite_export.errors import ExportError

FP16_MAX = 65504.0
FP16_TOLERANCE_DB = 0.05
CPU_FP16_ARITHMETIC = "FP32 (LiteRT CPU: FP16 weights, FP32 arithmetic)"
FP16_CHECK_ARITHMETIC = "FP32 (LiteRT CPU: FP16 weights, FP32 arithmetic; no FP16 GPU path used)"
METRICS = ("tflite_psnr", "tflite_ssim", "keras_psnr", "keras_ssim", "psnr_vs_keras", "ssim_vs_keras")
GPU_METRICS = ("tflite_psnr", "tflite_ssim", "psnr_vs_keras", "ssim_vs_keras")


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
    max_abs_activation and fp16_overflow_risk (float models only; None for a QAT model).

    The tflite_* numbers come from LiteRT's CPU interpreter, which computes an FP16 model in FP32
    (FP16 weight rounding only). For fp16 the result also has the fields of `fp16_fields`: the same
    images on LiteRT's GPU accelerator at FP16 (`gpu_fp16`) when this machine has a GPU adapter and
    `tflite_model` was loaded from a file, the arithmetic behind each number, and the verdict.
    """
    with tempfile.TemporaryDirectory(prefix="isp-fp16-gpu-") as folder:
        gpu_outputs, split, problem = (gpu_fp16_outputs(tflite_model, pairs, profile, folder)
                                       if recipe == "fp16" else (None, None, None))
        rows, gpu_rows, peak = [], [], 0.0
        probe = None if recipe == "qat" else activation_probe(keras_model)
        for index, pair in enumerate(tqdm(pairs, desc=f"fidelity {recipe}", unit="img", disable=not progress)):
            raw, target = dataset.load_pair(pair, profile)
            raw = raw[None]
            keras_out = keras_model(raw, training=False).numpy()[0]
            tflite_out = tflite_model.run(raw)[0]
            rows.append((*metrics.psnr_ssim(tflite_out, target), *metrics.psnr_ssim(keras_out, target),
                         *metrics.psnr_ssim(tflite_out, keras_out)))
            if gpu_outputs:
                gpu_out = from_model(np.load(gpu_outputs[index]), tflite_model.output_range)[0]
                gpu_rows.append((*metrics.psnr_ssim(gpu_out, target), *metrics.psnr_ssim(gpu_out, keras_out)))
            peak = max(peak, probe(raw)) if probe else None
    result = _means(METRICS, rows)
    result.update(images=len(rows), psnr_delta_db=result["tflite_psnr"] - result["keras_psnr"],
                  max_abs_activation=peak, fp16_overflow_risk=None if peak is None else peak > FP16_MAX)
    if recipe == "fp16":
        result.update(fp16_fields(result, gpu_rows, split, problem))
    return result


def gpu_fp16_outputs(tflite_model, pairs, profile, folder):
    """Run the file of TFLiteModel `tflite_model` on LiteRT's GPU accelerator at FP16 on every pair's
    RAW input (in the model's input convention), if this machine can.

    Returns (raw output .npy files in `folder`, in pair order; the op split; None), or (None, None,
    why not): no file to compile, no GPU adapter (`litert_gpu.adapter_problem`, probed once per
    process) or a failed GPU run.
    """
    path = tflite_model.name
    if not os.path.isfile(path):
        return None, None, f"{path} is not a file, so it cannot be compiled for the GPU"
    problem = litert_gpu.adapter_problem()
    if problem:
        return None, None, problem
    inputs = [os.path.join(folder, f"raw_{i}.npy") for i in range(len(pairs))]
    outputs = [os.path.join(folder, f"rgb_{i}.npy") for i in range(len(pairs))]
    for pair, name in zip(pairs, inputs):
        np.save(name, to_model(dataset.load_pair(pair, profile)[0][None], tflite_model.input_range))
    try:
        return outputs, litert_gpu.run_fp16(path, inputs, outputs), None
    except ExportError as exc:
        return None, None, str(exc)


def fp16_fields(result, gpu_rows, split, problem):
    """The fp16 recipe's extra fields, given the CPU `result`, per-image GPU metric rows and op split.

    tflite_arithmetic: what the tflite_* numbers computed in (FP32). gpu_fp16: None, or the GPU's
    tflite_psnr/tflite_ssim/psnr_vs_keras/ssim_vs_keras, psnr_delta_db (vs Keras), op_split and
    `arithmetic`. gpu_fp16_unavailable: why there is no GPU run (None when there is).
    fp16_within_tolerance: |delta| <= 0.05 dB, with the GPU's delta when it ran, else the CPU's.
    fp16_arithmetic: the arithmetic that verdict rests on (FP16_CHECK_ARITHMETIC without a GPU).
    """
    gpu = None
    if problem is None:
        gpu = _means(GPU_METRICS, gpu_rows)
        gpu.update(psnr_delta_db=gpu["tflite_psnr"] - result["keras_psnr"], op_split=split,
                   arithmetic=gpu_arithmetic(split))
    delta = result["psnr_delta_db"] if gpu is None else gpu["psnr_delta_db"]
    return {"tflite_arithmetic": CPU_FP16_ARITHMETIC, "gpu_fp16": gpu, "gpu_fp16_unavailable": problem,
            "fp16_within_tolerance": bool(abs(delta) <= FP16_TOLERANCE_DB),
            "fp16_arithmetic": FP16_CHECK_ARITHMETIC if gpu is None else gpu["arithmetic"]}


def gpu_arithmetic(split):
    """What a GPU|CPU run computed in, from its op split: ops left to the CPU fallback run in FP32."""
    gpu_ops, cpu_ops = split["gpu_ops"], split["cpu_ops"]
    if gpu_ops is None:
        return "FP16 (LiteRT GPU accelerator, default precision; its GPU/CPU op split was not logged)"
    if not cpu_ops:
        return f"FP16 (LiteRT GPU accelerator, default precision: all {gpu_ops} ops on the GPU)"
    return (f"FP16 for {gpu_ops} ops (LiteRT GPU accelerator, default precision), "
            f"FP32 for the other {cpu_ops} (its CPU fallback)")


def _means(names, rows):
    """{name: mean over `rows` of that column} as floats; NaN for every name when there are no rows."""
    means = np.mean(np.array(rows, dtype=np.float64), axis=0) if rows else [float("nan")] * len(names)
    return {name: float(m) for name, m in zip(names, means)}
