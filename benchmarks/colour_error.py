"""Where a model's error is: global colour or local detail (oracle fits on its outputs).

Run from the repository root:
    python -m benchmarks.colour_error MODEL.tflite [MODEL.tflite ...] --data ROOT [--split val]

Every model (a dynamic-shape .tflite, e.g. runs/<name>/tflite/fp16/model_none.tflite) runs on the
pairs of ROOT/<split>; ROOT must be a synthetic set made by this toolkit (its synth.json gives the
sensor levels), such as the built-in data, its cross-sensor/ folder or the zoo's <runs-dir>/heldout.
Each output is then corrected per image by least squares against its own target, from the
weakest to the strongest fit:

- brightness: one gain for all three channels;
- channel gains: one gain per channel (what a right white balance would fix);
- colour-fit: a 3x3 matrix plus offset (isp.metrics.colour_fit: white balance, colour matrix and
  brightness together);
- one affine for the set: a single 3x3 matrix plus offset for every image at once (what a
  per-sensor colour calibration would fix: the systematic part).

The fits look at the target, so they are upper bounds, not methods: PSNR after a fit minus the
PSNR says how much of the error that kind of global colour transform explains; what colour-fit
leaves is local (detail, noise, demosaicking, local tone).

Two more columns look at the RAW input only, never at the target, and so are methods:

- content-blind ISP: the synthesis (data/unprocess.py) inverted with its typical parameters (the
  centre of its gain distributions, the mean training camera), the same for every frame whatever
  it shows;
- model + content-blind colour: the model's output with its global colour replaced by that ISP's
  (per image, the least-squares affine map of the output onto the content-blind rendering), so
  local detail is the model's and global colour ignores the content.

If the last beats the model, the set rewards ignoring content for colour: its gains are drawn
independently of the scene, so a model's content-driven white balance can only lose to the prior
mean there, however right it would be under real light. Mean PSNR over the pairs, dB, uint8
range. Nothing is asserted; the table goes to stdout.
"""
import argparse
import os
import sys

import numpy as np

FITS = ("PSNR", "brightness", "channel gains", "colour-fit", "one affine for the set")
CONTENT_BLIND = ("content-blind ISP", "model + content-blind colour")
COLUMNS = FITS + CONTENT_BLIND


def fitted_psnrs(outputs, targets):
    """{fit name: mean PSNR} of model `outputs` against `targets` (lists of [H, W, 3] in [0, 1])."""
    from isp import metrics

    def scored(fitted, target):
        return metrics.psnr(np.clip(fitted, 0.0, 1.0).astype(np.float32), target)

    rows = {name: [] for name in FITS}
    for out, target in zip(outputs, targets):
        o, t = np.asarray(out, np.float64), np.asarray(target, np.float64)
        rows["PSNR"].append(metrics.psnr(out, target))
        rows["brightness"].append(scored(o * (np.sum(o * t) / max(np.sum(o * o), 1e-12)), target))
        gains = np.sum(o * t, axis=(0, 1)) / np.maximum(np.sum(o * o, axis=(0, 1)), 1e-12)
        rows["channel gains"].append(scored(o * gains, target))
        rows["colour-fit"].append(metrics.colour_fit_psnr(out, target))
    matrix = metrics.fit_colour_map(outputs, targets)
    for out, target in zip(outputs, targets):
        rows["one affine for the set"].append(metrics.psnr(metrics.apply_colour_map(out, matrix), target))
    return {name: float(np.mean(values)) for name, values in rows.items()}


def content_blind_rendering(raw, profile):
    """Packed RAW [h, w, 4] in [0, 1] -> sRGB float32 [2h, 2w, 3] in [0, 1]: every step of the
    synthesis inverted with `unprocess.typical_gains()` and the mean training camera (the classic
    ISP's CAMERA_TO_SRGB), so the rendering's colour does not depend on what the frame shows."""
    from data import unprocess
    from isp import classic
    rgb_gain, red_gain, blue_gain = unprocess.typical_gains()
    channel_gain = {"R": red_gain, "Gb": 1.0, "Gr": 1.0, "B": blue_gain}
    gains = rgb_gain * np.array([channel_gain[name] for name in profile.channel_order], np.float32)
    gamma = np.clip(classic.linear_srgb(raw, profile, gains), 0.0, 1.0) ** (1.0 / 2.2)
    return (3.0 * gamma ** 2 - 2.0 * gamma ** 3).astype(np.float32)  # the tone map inverse_smoothstep undoes


def content_blind_psnrs(outputs, renderings, targets):
    """{CONTENT_BLIND name: mean PSNR}: the content-blind `renderings` themselves, and the model
    `outputs` with each one's global colour mapped onto its rendering (lists of [H, W, 3] in [0, 1])."""
    from isp import metrics
    return {"content-blind ISP": float(np.mean([metrics.psnr(r, t) for r, t in zip(renderings, targets)])),
            "model + content-blind colour": float(np.mean([metrics.psnr(metrics.colour_fit(o, r), t)
                                                           for o, r, t in zip(outputs, renderings, targets)]))}


def load_set(pairs, profile):
    """(packed RAW inputs, target RGBs, content-blind renderings) of `pairs` read with `profile`:
    everything that does not depend on the model, read and rendered once for every model."""
    from data import dataset
    raws, targets = zip(*(dataset.load_pair(pair, profile) for pair in pairs))
    return raws, targets, [content_blind_rendering(raw, profile) for raw in raws]


def scored_model(path, raws, targets, renderings):
    """{COLUMNS name: mean PSNR} of the .tflite at `path` on the set `load_set` read."""
    from tflite_export.runtime import TFLiteModel
    model = TFLiteModel(path)
    outputs = [np.asarray(model.run(raw[None]), np.float32)[0] for raw in raws]
    return {**fitted_psnrs(outputs, targets), **content_blind_psnrs(outputs, renderings, targets)}


def format_table(results):
    """Markdown table: one row per model, a column per fit or method (mean PSNR dB, its difference
    to the model's PSNR in brackets)."""
    lines = ["| model | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for name, scores in results.items():
        cells = [f"{scores['PSNR']:.2f}"] + [f"{scores[c]:.2f} ({scores[c] - scores['PSNR']:+.2f})"
                                             for c in COLUMNS[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.colour_error",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="MODEL.tflite", help="dynamic-shape .tflite files to score")
    parser.add_argument("--data", required=True, help="synthetic dataset root made by this toolkit (has synth.json)")
    parser.add_argument("--split", default="val", help="split to score (default: %(default)s)")
    args = parser.parse_args(argv)
    from data import dataset, synth
    from data.errors import DataError
    from tflite_export.errors import ExportError
    missing = [m for m in args.models if not os.path.isfile(m)]
    if missing:
        raise SystemExit(f"error: no such model file: {', '.join(missing)}")
    try:
        profile = synth.manifest_profile(args.data)
        pairs = dataset.load_splits(args.data).get(args.split)
        if not pairs:
            raise DataError(f"no {args.split}/ pairs here")
        scoring_set = load_set(pairs, profile)
        results = {path: scored_model(path, *scoring_set) for path in args.models}
    except (DataError, ExportError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{len(pairs)} pairs of {args.data}/{args.split}; mean PSNR dB after each per-image oracle fit, "
          "and of the two content-blind methods\n")
    print(format_table(results))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
