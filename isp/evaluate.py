"""Evaluate any RAW -> RGB predictor on dataset pairs: PSNR/SSIM (isp.metrics), optional LPIPS,
a per-image CSV, a JSON summary and a sheet of side-by-side crops.

Files written (atomically) into `out_dir`:
    metrics.csv   one row per image (index, psnr_db, ssim, lpips, psnr_colour_fit_db), then a "mean"
                  row; when LPIPS is empty the mean row's lpips cell says why. psnr_colour_fit_db is
                  the PSNR after the per-image least-squares colour map onto the target
                  (isp.metrics.colour_fit): its gap to psnr_db is the error that one global colour
                  transform per image explains (white balance, colour matrix, brightness)
    summary.json  means, image count, lpips_note, per-image rows
    sheet.png     for the first `sheet_count` images: input preview | output | target | error map
"""
import csv
import io
import json
import os

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from data import dataset
from data.atomic import atomic_path, write_text
from isp import metrics
from isp.classic import quick_preview
from isp.errors import ISPError

SHEET_CROP = 256        # output pixels per side of each sheet crop
ERROR_GAIN = 4.0        # the error map shows |output - target| (mean over RGB) times this
ERROR_COLORMAP = "inferno"
LPIPS_NOT_REQUESTED = "not requested (pass --lpips)"
LPIPS_NOT_INSTALLED = "lpips not installed: pip install -e .[lpips]"


def _load_lpips():
    """LPIPS (AlexNet) distance fn(pred [H, W, 3], target [H, W, 3] float in [0, 1]) -> float.

    Needs the optional `lpips` extra (torch); building the net downloads the AlexNet backbone
    weights unless they are in the torch cache.
    """
    import lpips
    import torch

    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def to_tensor(image):
        # [H, W, 3] -> [1, 3, H, W]; normalize=True below maps [0, 1] to the [-1, 1] LPIPS expects.
        chw = np.clip(image, 0.0, 1.0).transpose(2, 0, 1)[None]
        return torch.from_numpy(np.ascontiguousarray(chw, np.float32))

    def distance(pred, target):
        with torch.no_grad():
            return float(net(to_tensor(pred), to_tensor(target), normalize=True).item())
    return distance


def lpips_metric():
    """(distance fn or None, note): LPIPS if the extra and its weights are available, else why not."""
    try:
        return _load_lpips(), ""
    except ImportError:
        return None, LPIPS_NOT_INSTALLED
    except Exception as exc:  # offline download, corrupt cache, ...: the evaluation goes on without it
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"lpips weights unavailable: {reason}"


def center_crop_box(height, width, size=SHEET_CROP):
    """(y, x, h, w): a centred crop of at most `size` px per side, on even coordinates."""
    h, w = min(size, height), min(size, width)
    return (height - h) // 4 * 2, (width - w) // 4 * 2, h, w


def error_map(pred, target):
    """|pred - target| averaged over RGB, times ERROR_GAIN, colour-mapped -> RGB float32 [H, W, 3]."""
    error = np.clip(np.mean(np.abs(np.clip(pred, 0.0, 1.0) - target), axis=-1) * ERROR_GAIN, 0.0, 1.0)
    return matplotlib.colormaps[ERROR_COLORMAP](error)[..., :3].astype(np.float32)


def sheet_row(raw, pred, target, profile):
    """Crops [preview, output, target, error] (RGB float [c, c, 3]) of one image for the sheet."""
    y, x, h, w = center_crop_box(*target.shape[:2])
    # The preview is computed on the packed crop only: packed coordinates are half the output's.
    preview = quick_preview(raw[y // 2:(y + h) // 2, x // 2:(x + w) // 2], profile)
    box = (slice(y, y + h), slice(x, x + w))
    return [preview, np.clip(pred[box], 0.0, 1.0), target[box], error_map(pred[box], target[box])]


def write_sheet(path, rows, labels):
    """Atomically write a PNG grid: one row per image of [input preview, output, target, error]."""
    titles = ("input (RAW preview)", "output", "target", f"|error| x{ERROR_GAIN:g}")
    figure = Figure(figsize=(4 * 2.8, len(rows) * 2.9), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), 4, squeeze=False)
    for r, (crops, label) in enumerate(zip(rows, labels)):
        for c, (image, title) in enumerate(zip(crops, titles)):
            axes[r, c].imshow(image, interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            axes[r, c].set_title(title if c else f"{label}\n{title}", fontsize=8)
    with atomic_path(path) as tmp:
        figure.savefig(tmp)


def _mean(values):
    return float(np.mean(values)) if values else None


def _csv_text(rows, result):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "psnr_db", "ssim", "lpips", "psnr_colour_fit_db"])
    for row in rows:
        writer.writerow([row["index"], f"{row['psnr']:.4f}", f"{row['ssim']:.6f}",
                         "" if row["lpips"] is None else f"{row['lpips']:.6f}", f"{row['psnr_colour_fit']:.4f}"])
    mean_lpips = result["lpips_note"] if result["lpips"] is None else f"{result['lpips']:.6f}"
    writer.writerow(["mean", f"{result['psnr']:.4f}", f"{result['ssim']:.6f}", mean_lpips,
                     f"{result['psnr_colour_fit']:.4f}"])
    return buffer.getvalue()


def evaluate(predict, pairs, profile, out_dir=None, lpips=False, sheet_count=4, progress=True):
    """Score `predict` on dataset `pairs`; write metrics.csv, summary.json and sheet.png to `out_dir`.

    predict: raw float32 [1, h, w, 4] in [0, 1] -> rgb [1, 2h, 2w, 3] in [0, 1].
    pairs: data.dataset.Pair list; profile: the SensorProfile to read their RAW with.
    lpips: also compute LPIPS; when the extra or its weights are missing the column stays empty
        and `lpips_note` says why.
    Returns {"images", "psnr", "ssim", "lpips" (mean or None), "lpips_note", "psnr_colour_fit",
    "rows": [{"index", "psnr", "ssim", "lpips", "psnr_colour_fit"}], "files": {name: path}}.
    """
    distance, note = lpips_metric() if lpips else (None, LPIPS_NOT_REQUESTED)
    rows, sheet, labels = [], [], []
    for pair in tqdm(pairs, desc="eval", unit="img", disable=not progress):
        raw, target = dataset.load_pair(pair, profile)
        pred = np.asarray(predict(raw[None]), np.float32)
        if pred.shape != (1, *target.shape):
            raise ISPError(f"{pair.raw_path}: the model returned {list(pred.shape)} for input "
                           f"{[1, *raw.shape]}; expected [1, {target.shape[0]}, {target.shape[1]}, 3]")
        psnr, ssim = metrics.psnr_ssim(pred[0], target)
        rows.append({"index": pair.index, "psnr": psnr, "ssim": ssim,
                     "lpips": distance(pred[0], target) if distance else None,
                     "psnr_colour_fit": metrics.colour_fit_psnr(pred[0], target)})
        if len(sheet) < sheet_count:
            sheet.append(sheet_row(raw, pred[0], target, profile))
            labels.append(f"#{pair.index}  {psnr:.2f} dB")
    if not rows:
        raise ISPError("no image pairs to evaluate; check --data, --split and --limit")
    result = {"images": len(rows), "psnr": _mean([r["psnr"] for r in rows]),
              "ssim": _mean([r["ssim"] for r in rows]),
              "lpips": _mean([r["lpips"] for r in rows]) if distance else None,
              "lpips_note": note, "psnr_colour_fit": _mean([r["psnr_colour_fit"] for r in rows]),
              "rows": rows, "files": {}}
    if out_dir is not None:
        names = ("metrics.csv", "summary.json") + (("sheet.png",) if sheet else ())
        result["files"] = {name: os.path.join(out_dir, name) for name in names}
        write_text(result["files"]["metrics.csv"], _csv_text(rows, result))
        write_text(result["files"]["summary.json"], json.dumps(result, indent=2))
        if sheet:
            write_sheet(result["files"]["sheet.png"], sheet, labels)
    return result


def format_summary(result, label):
    """The mean table printed after an evaluation (a few lines of text)."""
    lpips = f"{result['lpips']:.4f}" if result["lpips"] is not None else f"- ({result['lpips_note']})"
    width = max(len(label), 5)
    row = (f"{label:{width}s}  {result['images']:6d}  {result['psnr']:7.3f}  {result['ssim']:.4f}  "
           f"{result['psnr_colour_fit']:14.3f}   {lpips}")
    return f"{'model':{width}s}  images  PSNR dB    SSIM  colour-fit PSNR   LPIPS\n{row}"
