"""`isp import MODEL.onnx --out DIR`: a PyTorch team's ONNX export -> the challenge pair, checked.

Steps: convert the graph to tf_keras (isp.onnx_import), check the Keras model against ONNX Runtime
(random inputs at the probe's sizes: two, or a fixed-shape file's own; with --data, real RAW crops
too; FP32 must agree within 1e-4 of the output range or the import fails), convert the pair with
one recipe (tflite_export.export.write_pair: the same files, GPU verdict and report as `isp export`),
check model_none.tflite against ONNX Runtime too, and with --data run the fidelity check of
`isp export` on the val split. The Keras model is saved in the toolkit's value convention so that
`isp train --init DIR` can fine-tune it.

Everything is written into a temporary folder beside DIR and moved in file by file at the end: an
error leaves DIR as it was.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from data import dataset
from data.atomic import write_text
from isp import config as config_mod
from isp.errors import ISPError
from isp.models.architecture import save_architecture
from data.challenge import FULL_HD_PACKED
from isp.onnx_import.convert import (FP32_TOLERANCE, compare, convert_onnx, in_toolkit_convention, keras_predict,
                                     onnx_session, random_inputs)
from isp.rundir import ImportDir
from isp.train import load_splits, profile_of
from tflite_export import conventions, fidelity
from tflite_export.errors import ExportError
from tflite_export.export import representative_inputs, write_pair
from tflite_export.recipes import DEFAULT_REP_COUNT, IMPORT_RECIPES
from tflite_export.runtime import TFLiteModel

DATA_KEYS = ("raw_dir", "rgb_dir", "cfa", "channel_order", "black_level", "white_level")  # how --data is read
DATA_CROP = 128                      # packed side of the real RAW crops of the --data check
DATA_CHECK_PAIRS = 4


def import_onnx(path, out_dir, recipe="fp16", data=None, data_keys=None, input_range=conventions.DEFAULT_RANGE,
                output_range=conventions.DEFAULT_RANGE, io_type="float", rep_count=DEFAULT_REP_COUNT,
                val_images=0, progress=True):
    """Import the ONNX file at `path` into `out_dir`; returns the export.json dict.

    recipe: fp32, fp16 or int8 (int8 needs `data` for calibration). data: a dataset root (UltraISP
    layout): real RAW crops join the check, int8 calibrates on its train split and the fidelity check
    runs on its val split (at most `val_images`, 0 = all). data_keys: TrainConfig keys of DATA_KEYS saying how to
    read `data` (its layout folders, sensor profile; 'auto' levels are estimated from its train RAWs).
    input_range/output_range: the model's own
    values for black..white (conventions), recorded in export.json.
    """
    if recipe not in IMPORT_RECIPES:
        raise ExportError(f"--quant {recipe}: an import converts with one of {', '.join(IMPORT_RECIPES)} "
                          "(QAT: `isp train --init DIR --qat-epochs N`, then `isp export RUN --quant qat`)")
    if recipe == "int8" and not data:
        raise ExportError("--quant int8 calibrates on real RAW inputs: pass --data ROOT")
    imported = convert_onnx(path)
    _check_isp_shapes(path, imported)
    session = onnx_session(path)
    config = config_mod.resolve({"data": data or "", **(data_keys or {})})
    splits = load_splits(config) if data else {}
    profile = profile_of(config, splits.get("train") or splits.get("val"))
    predict = keras_predict(imported.model)
    checks = {"random": _checked(compare(session, predict, random_inputs(
        4, imported.probe.sizes, value_range=input_range)), "random inputs")}
    crops = _data_crops(splits, profile, input_range)
    if crops:
        checks["data"] = _checked(compare(session, predict, crops), f"real RAW crops of {data}")
    toolkit_model = in_toolkit_convention(imported, input_range, output_range)
    rep = None
    if recipe == "int8":
        rep = [conventions.to_model(r, input_range) for r in
               representative_inputs(splits.get("train") or splits.get("val", []), profile, rep_count,
                                     FULL_HD_PACKED)]
    report = {"source": os.path.abspath(path), "model": imported.model.name, "recipe": recipe, "io_type": io_type,
              **conventions.record(input_range, output_range)}
    with _staging(out_dir) as stage:
        folder = ImportDir(stage)
        report["files"] = write_pair(imported.model, recipe, stage, rep=rep, io_type=io_type)
        tflite = TFLiteModel(folder.model(dynamic=True))  # default ranges: values pass through unchanged
        checks["tflite_vs_onnx"] = compare(session, tflite.run, random_inputs(4, imported.probe.sizes[:1],
                                                                              value_range=input_range))
        report["onnx"] = {"sha256": _sha256(path), "opset": imported.graph.opset, "ops": imported.graph.op_counts,
                          "import_seconds": round(imported.seconds, 2), "rewrites": imported.notes, "checks": checks}
        if splits.get("val"):
            ranged = TFLiteModel(folder.model(dynamic=True), input_range=input_range, output_range=output_range)
            report["fidelity"] = fidelity.check_fidelity(ranged, toolkit_model, splits["val"][:val_images or None],
                                                         profile, recipe, progress)
        save_architecture(toolkit_model, folder.architecture_file)
        toolkit_model.save_weights(folder.weights_file)
        write_text(os.path.join(stage, conventions.RECORD_FILE), json.dumps(report, indent=2, default=_plain))
    return report


def _check_isp_shapes(path, imported):
    """ISPError unless the graph maps [1, 4, H, W] -> [1, 3, 2H, 2W] at every probe size."""
    graph, probe = imported.graph, imported.probe
    channels = graph.input_dims[1]
    for (h, w), out in zip(probe.sizes, probe.shapes[graph.output_name]):
        if channels != 4 or tuple(out) != (1, 3, 2 * h, 2 * w):
            raise ISPError(f"{path}: maps [1, {channels}, {h}, {w}] to {list(out)}; a challenge ISP model maps "
                           "packed RAW [1, 4, H, W] to RGB [1, 3, 2H, 2W]")


def _checked(result, what):
    """`result` of convert.compare, or ISPError when Keras and ONNX Runtime disagree beyond FP32_TOLERANCE."""
    if result["relative_diff"] > FP32_TOLERANCE:
        raise ISPError(f"the converted model differs from ONNX Runtime on {what}: max |diff| "
                       f"{result['max_abs_diff']:.3g} = {result['relative_diff']:.2g} of the output range (allowed "
                       f"{FP32_TOLERANCE:g}); nothing was written. Please report this with the .onnx file")
    return result


def _data_crops(splits, profile, input_range):
    """Up to DATA_CHECK_PAIRS real packed RAW crops [1, s, s, 4] (s <= 128, a multiple of 16) in the
    model's input range."""
    pairs = (splits.get("val") or splits.get("train") or [])[:DATA_CHECK_PAIRS]
    crops = []
    for pair in pairs:
        raw = dataset.load_pair(pair, profile)[0]
        side = min(DATA_CROP, raw.shape[0] // 16 * 16, raw.shape[1] // 16 * 16)
        if side:
            crops.append(conventions.to_model(raw[None, :side, :side], input_range))
    return crops


@contextlib.contextmanager
def _staging(out_dir):
    """A temporary folder beside `out_dir`; on success its files replace out_dir's, on error it is removed."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".isp-import-", dir=parent)
    try:
        yield stage
        for root, _, names in os.walk(stage):
            for name in names:
                source = os.path.join(root, name)
                target = os.path.join(out_dir, os.path.relpath(source, stage))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(source, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value):
    """JSON fallback for numpy scalars."""
    return value.item() if isinstance(value, np.generic) else str(value)


def format_report(report):
    """A few human-readable lines summarising an import report."""
    onnx_info = report["onnx"]
    lines = [f"{report['model']} (opset {onnx_info['opset']}, {sum(onnx_info['ops'].values())} ONNX nodes) -> "
             f"{report['recipe']} in {onnx_info['import_seconds']:.1f} s"]
    lines += [f"  {note}" for note in onnx_info["rewrites"]]
    for what, check in onnx_info["checks"].items():
        lines.append(f"  check {what}: max |diff| {check['max_abs_diff']:.2e} ({check['relative_diff']:.1e} of the "
                     f"range), PSNR {check['psnr_db']:.1f} dB")
    for name, info in report["files"].items():
        lines.append(f"  {name:18s} {info['bytes'] / 1024:8.1f} KB  GPU delegate: {info['gpu_delegate']}")
    fid = report.get("fidelity")
    if fid:
        lines.append(f"  fidelity on {fid['images']} val images: TFLite {fid['tflite_psnr']:.2f} dB, Keras "
                     f"{fid['keras_psnr']:.2f} dB, delta {fid['psnr_delta_db']:+.3f} dB")
    return "\n".join(lines)
