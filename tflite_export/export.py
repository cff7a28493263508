"""`isp export`: a trained run -> the challenge pair (model.tflite fixed Full HD, model_none.tflite
dynamic) for one quantization recipe, plus export.json (recipe, value conventions, shapes, ops, sizes,
timings, GPU-delegate verdict, fidelity numbers). Every file is written atomically.
"""
import json
import os
import time

import numpy as np

from data import pipeline
from data.atomic import write_bytes, write_text
from data.challenge import FULL_HD_PACKED
from isp import qat
from isp.models.architecture import model_for_run
from isp.rundir import DYNAMIC_MODEL, FIXED_MODEL, RunDir
from isp.train import load_splits, profile_of
from tflite_export import conventions, convert, fidelity, gpu_check
from tflite_export.errors import ExportError
from tflite_export.recipes import DEFAULT_REP_COUNT
from tflite_export.runtime import TFLiteModel


def load_model(run_dir, recipe, input_shape=(None, None, 4)):
    """Keras model of a run for `recipe`: the QAT model for "qat", else the best float model."""
    run = RunDir(run_dir)
    config = run.read_config()
    stage = "qat" if recipe == "qat" else "float"
    weights = run.best_weights(stage)
    if not os.path.isfile(weights):
        hint = "train with --qat-epochs N first" if stage == "qat" else "training has not finished an epoch"
        raise ExportError(f"{weights}: checkpoint missing; {hint}")
    model = model_for_run(run, config, input_shape)
    if stage == "qat":
        with qat.scope():
            model = qat.quantize_aware(model)
            model.load_weights(weights)
    else:
        model.load_weights(weights)
    return model, config


def representative_inputs(pairs, profile, count, shape):
    """`count` calibration inputs [1, h, w, 4] float32 in [0, 1] for `shape` = (h, w), built from
    the real training `pairs`: each is a grid of consecutive real patches (a UltraISP patch is
    only 128x128 packed, smaller than a Full HD input), cropped to `shape`."""
    images = pipeline.decode_pairs(pairs, profile).repeat().as_numpy_iterator()
    first = next(images)[0]
    ph, pw = min(first.shape[0], shape[0]), min(first.shape[1], shape[1])
    rows, cols = -(-shape[0] // ph), -(-shape[1] // pw)
    samples = []
    for _ in range(count):
        grid = [np.concatenate([next(images)[0][:ph, :pw] for _ in range(cols)], axis=1) for _ in range(rows)]
        samples.append(np.concatenate(grid, axis=0)[None, :shape[0], :shape[1]])
    return samples


def write_pair(model, recipe, out_dir, fixed_shape=FULL_HD_PACKED, rep=None, io_type="float"):
    """Convert `model` (tf_keras, [1, h, w, 4] -> [1, 2h, 2w, 3]) with `recipe` into out_dir/model.tflite
    (input [1, *fixed_shape, 4]) and out_dir/model_none.tflite (dynamic), each written atomically and
    checked against the GPU delegate's rules; returns export.json's "files" entry (shapes, bytes,
    conversion seconds, op names, GPU verdict per file). `rep`: int8 calibration inputs."""
    files = {}
    for name, shape in ((FIXED_MODEL, (*fixed_shape, 4)), (DYNAMIC_MODEL, (None, None, 4))):
        started = time.time()
        flatbuffer = convert.convert(model, recipe, shape, rep, io_type)
        path = os.path.join(out_dir, name)
        write_bytes(path, flatbuffer)
        gpu = gpu_check.check(path, allow_dynamic=shape[0] is None)
        files[name] = {
            "input_shape": [1, *shape], "output_shape": [1, *(None if s is None else 2 * s for s in shape[:2]), 3],
            "bytes": len(flatbuffer), "convert_seconds": round(time.time() - started, 2),
            "ops": sorted(convert.op_names(flatbuffer)), "gpu_delegate": gpu.summary}
    return files


def export(source, recipe, out_dir, io_type="float", fixed_shape=FULL_HD_PACKED, rep_count=DEFAULT_REP_COUNT,
           val_images=0, check_fidelity=True, progress=True):
    """Write model.tflite + model_none.tflite + export.json for one recipe; returns the report dict."""
    if recipe not in convert.RECIPES:
        raise ExportError(f"unknown recipe {recipe!r}; use one of {', '.join(convert.RECIPES)}")
    run_dir = RunDir.find(source).path
    model, config = load_model(run_dir, recipe)
    splits = load_splits(config)
    profile = profile_of(config)
    rep = representative_inputs(splits["train"], profile, rep_count, fixed_shape) if recipe == "int8" else None
    report = {"run_dir": run_dir, "model": config.model, "recipe": recipe, "io_type": io_type,
              **conventions.record(), "files": write_pair(model, recipe, out_dir, fixed_shape, rep, io_type)}
    if check_fidelity:
        report["fidelity"] = fidelity.check_fidelity(
            TFLiteModel(os.path.join(out_dir, DYNAMIC_MODEL)), model, splits.get("val", [])[:val_images or None],
            profile, recipe, progress)
    write_text(os.path.join(out_dir, conventions.RECORD_FILE), json.dumps(report, indent=2, default=_plain))
    return report


def _plain(value):
    """JSON fallback for numpy scalars."""
    return value.item() if isinstance(value, np.generic) else str(value)


def format_report(report):
    """A few human-readable lines summarising an export report."""
    lines = [f"{report['model']} {report['recipe']} ({report['io_type']} I/O):"]
    for name, info in report["files"].items():
        lines.append(f"  {name:18s} {info['bytes'] / 1024:8.1f} KB  {info['convert_seconds']:6.1f} s  "
                     f"GPU delegate: {info['gpu_delegate']}")
    fid = report.get("fidelity")
    if fid:
        lines.append(f"  fidelity on {fid['images']} val images: TFLite {fid['tflite_psnr']:.2f} dB / "
                     f"SSIM {fid['tflite_ssim']:.4f}, Keras {fid['keras_psnr']:.2f} dB, "
                     f"delta {fid['psnr_delta_db']:+.3f} dB, vs Keras {fid['psnr_vs_keras']:.1f} dB")
        gpu = fid.get("gpu_fp16")
        if gpu:
            lines.append(f"  on the GPU at FP16: TFLite {gpu['tflite_psnr']:.2f} dB / SSIM {gpu['tflite_ssim']:.4f}, "
                         f"delta {gpu['psnr_delta_db']:+.3f} dB, vs Keras {gpu['psnr_vs_keras']:.1f} dB "
                         f"(the line above: {fid['tflite_arithmetic']})")
        if fid["fp16_overflow_risk"]:
            lines.append(f"  warning: activations reach {fid['max_abs_activation']:.0f} > 65504: FP16 may overflow")
        if fid.get("fp16_within_tolerance") is False:
            lines.append("  warning: FP16 loses more than 0.05 dB against FP32")
        if fid.get("fp16_arithmetic"):
            lines.append(f"  FP16 check ran with {fid['fp16_arithmetic']}")
        if fid.get("gpu_fp16_unavailable"):
            lines.append(f"  no FP16 GPU run: {fid['gpu_fp16_unavailable']}")
    return "\n".join(lines)
