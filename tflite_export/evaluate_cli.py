"""`isp eval` and `isp process`: score a model on a dataset split, or run it on one full-size frame.

MODEL is a run folder, a checkpoint inside one (checkpoints/best.weights.h5 or qat.weights.h5),
a `.tflite` file (run with LiteRT), a PyTorch-side `.onnx` file (NCHW, run with ONNX Runtime on the
CPU: tflite_export/onnx_runtime.py), or `classic` (the classical ISP baseline, isp/classic.py). The
library work is in isp/evaluate.py and isp/inference.py; this module only turns MODEL into a predict
callable.

TensorFlow (isp.train, tflite_export.export) is imported by the handlers and onnxruntime by OnnxModel, not
here: `--help` stays instant.
"""
import argparse
import dataclasses
import os

from data import image_io, levels, sensor
from data.camera_raw import read_camera_raw
from isp import config as config_mod
from isp.classic import classic_isp, gray_world_gains
from isp.inference import DEFAULT_OVERLAP, DEFAULT_TILE, process_frame, rgb_to_uint8
from isp.rundir import BEST_WEIGHTS, RunDir, weights_stage
from tflite_export import conventions
from tflite_export.errors import ExportError
from tflite_export.onnx_runtime import OnnxModel
from tflite_export.runtime import TFLiteModel

CLASSIC = "classic"
RUNTIMES = {".tflite": TFLiteModel, ".onnx": OnnxModel}  # model file suffix -> its runtime wrapper
SENSOR_KEYS = ("cfa", "channel_order", "black_level", "white_level")
LAYOUT_KEYS = ("raw_dir", "rgb_dir")  # `isp eval` only: the folders of a custom dataset layout


@dataclasses.dataclass
class Predictor:
    """A loaded MODEL: `run` maps raw float32 [1, h, w, 4] in [0, 1] -> rgb [1, 2h, 2w, 3].

    fixed_shape: (h, w) of a .tflite/.onnx file with a fixed height and width, else None. config: the
    TrainConfig that gives the sensor profile and default dataset (the run's, else defaults). home:
    default output folder base. classic: the classical ISP (its white balance is global: `process`
    computes it per frame). ranges: (input_range, output_range) a .tflite/.onnx file is run with
    (tflite_export.conventions), else None.
    """

    run: object
    label: str
    config: config_mod.TrainConfig
    home: str
    fixed_shape: tuple = None
    classic: bool = False
    ranges: tuple = None

    def predict(self, raw):
        """raw [1, h, w, 4] -> rgb [1, 2h, 2w, 3] for any h, w (fixed-shape models go through the tiler)."""
        if self.fixed_shape is None:
            return self.run(raw)
        return process_frame(self.run, raw[0], fixed_shape=self.fixed_shape, progress=False)[None]


def _config(run, sensor_overrides):
    """The RunDir's TrainConfig (defaults without a run) with the sensor flags given on the command line."""
    return run.read_config(sensor_overrides) if run else config_mod.resolve(sensor_overrides)


def _keras_stage(model_arg, qat):
    """Whether to load the QAT model: --qat, or a checkpoint path naming the QAT weights."""
    if not os.path.isfile(model_arg):
        return qat
    stage = weights_stage(model_arg)
    if stage is None:
        raise ExportError(f"{model_arg}: not a checkpoint this toolkit reads; pass the run folder, "
                          f"checkpoints/{BEST_WEIGHTS['float']} or checkpoints/{BEST_WEIGHTS['qat']}")
    return qat or stage == "qat"


def load_predictor(model_arg, qat=False, sensor_overrides=None, ranges=(None, None)):
    """Turn MODEL (classic | .tflite | .onnx | run folder | checkpoint) into a Predictor.

    ranges: (input_range, output_range) from the flags, each None for the default (the export.json
    beside a .tflite/.onnx file, else 0,1); only those files take them.
    """
    runtime = RUNTIMES.get(os.path.splitext(model_arg)[1])
    if any(ranges) and runtime is None:
        raise ExportError(f"{model_arg}: --input-range/--output-range apply to .tflite and .onnx files only; "
                          "this toolkit's run folders and checkpoints use 0,1")
    if model_arg == CLASSIC:
        config = _config(None, sensor_overrides)
        # The baseline sees normalised RAW: it needs only the layout, never the levels.
        profile = sensor.SensorProfile(cfa=config.cfa, channel_order=tuple(config.channel_order.split(",")))
        return Predictor(lambda raw: classic_isp(raw[0], profile)[None], CLASSIC, config,
                         RunDir.of(config.runs_dir, CLASSIC).eval(), classic=True)
    if runtime is not None:
        input_range, output_range = conventions.resolve_ranges(model_arg, *ranges)
        model = runtime(model_arg, input_range=input_range, output_range=output_range)
        stem = os.path.splitext(os.path.basename(model_arg))[0]
        # Fixed by its height and width: a dynamic batch (common in PyTorch exports) still runs at batch 1.
        hw = tuple(model.input_shape[1:3])
        fixed = None if None in hw else hw
        return Predictor(model.run, os.path.basename(model_arg),
                         _config(RunDir.locate(model_arg), sensor_overrides),
                         os.path.join(os.path.dirname(os.path.abspath(model_arg)), f"{stem}_eval"), fixed,
                         ranges=(input_range, output_range))
    from tflite_export.export import load_model
    use_qat = _keras_stage(model_arg, qat)
    run = RunDir.find(model_arg)
    model, _ = load_model(run.path, "qat" if use_qat else "fp32")
    config = _config(run, sensor_overrides)
    label = f"{config.model} {run.name}{' qat' if use_qat else ''}"
    return Predictor(lambda raw: model(raw, training=False).numpy(), label, config, run.eval(qat=use_qat))


def _sensor_overrides(args):
    return {key: getattr(args, key) for key in SENSOR_KEYS + LAYOUT_KEYS if hasattr(args, key)}


def run_eval(args):
    """`isp eval`: evaluate MODEL on one split; print the mean table and where the files went."""
    from isp.evaluate import evaluate, format_summary
    from isp.train import dataset_root, load_splits, profile_of
    predictor = load_predictor(args.model, args.qat, _sensor_overrides(args), conventions.ranges_from_args(args))
    config = predictor.config
    root = args.data or dataset_root(config)
    splits = load_splits(config, root)
    if args.split not in splits:
        raise ExportError(f"{root}: no '{args.split}' split (found {', '.join(splits)}); pass --split")
    pairs = splits[args.split][:args.limit or None]
    out_dir = args.out or os.path.join(predictor.home, args.split)
    profile = profile_of(config, pairs)
    if sensor.is_auto(config.black_level, config.white_level):
        print(f"auto levels from the {args.split} RAWs: black {','.join(f'{b:g}' for b in profile.black_level)}, "
              f"white {profile.white_level:g}")
    elif warning := levels.pairs_floor_warning(pairs, profile):
        print(f"warning: {warning}")
    check = conventions.OutputCheck()
    result = evaluate(check.wrap(predictor.predict), pairs, profile, out_dir=out_dir, lpips=args.lpips,
                      sheet_count=args.sheets, progress=args.progress)
    print(format_summary(result, predictor.label))
    warn_conventions(predictor, check)
    for path in result["files"].values():
        print(f"wrote {path}")
    return 0


def read_input(path, config):
    """INPUT -> (packed float32 [h, w, 4] in [0, 1], SensorProfile).

    A .png is a dataset RAW (uint16 mosaic) read with the config's profile ("auto" levels estimated
    from the frame, data/levels.py; a warning when its dark floor sits far above the black level);
    anything else is a camera RAW file whose CFA, black and white levels come from the file (its
    metadata, whatever the level flags say), its packed channels in the config's channel order
    (the order the model was trained on).
    """
    if path.lower().endswith(".png"):
        mosaic = image_io.read_raw_png(path)
        profile = sensor.profile_from_text(config.cfa, config.channel_order, config.black_level,
                                           config.white_level, lambda layout: levels.estimate_mosaic(mosaic, layout))
        warning = levels.floor_warning(levels.estimate_mosaic(mosaic, profile), profile)
        if warning:
            print(f"warning: {warning}")
    else:
        mosaic, found = read_camera_raw(path)
        order = tuple(config.channel_order.split(","))
        black = dict(zip(found.channel_order, found.black_per_channel()))
        profile = sensor.SensorProfile(cfa=found.cfa, channel_order=order,
                                       black_level=[black[name] for name in order],
                                       white_level=found.white_level)
    return sensor.normalize(sensor.pack(mosaic, profile), profile), profile


def warn_conventions(predictor, check):
    """Print the one-line warning of `check` (a conventions.OutputCheck) for a .tflite/.onnx predictor."""
    warning = predictor.ranges and check.warning(*predictor.ranges)
    if warning:
        print(warning)


def classic_for_frame(packed, profile):
    """The baseline as a tile predictor for one frame: its profile, gray-world gains of the whole frame."""
    gains = gray_world_gains(packed, profile)

    def run(raw):
        return classic_isp(raw[0], profile, gains=gains)[None]
    return run


def run_process(args):
    """`isp process`: MODEL on one full-size frame -> 8-bit PNG."""
    if not args.output.lower().endswith(".png"):
        raise ExportError(f"{args.output}: the output is written as PNG; name it *.png")
    predictor = load_predictor(args.model, args.qat, _sensor_overrides(args), conventions.ranges_from_args(args))
    packed, profile = read_input(args.input, predictor.config)
    run = classic_for_frame(packed, profile) if predictor.classic else predictor.run
    rgb = process_frame(run, packed, tile=args.tile, overlap=args.overlap, fixed_shape=predictor.fixed_shape,
                        progress=args.progress)
    del packed  # free the input and the float output before the PNG encoder's copies
    check = conventions.OutputCheck()
    check.observe(rgb)
    warn_conventions(predictor, check)
    image = rgb_to_uint8(rgb)
    del rgb
    image_io.write_png(args.output, image)
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]}, {predictor.label})")
    return 0


def _add_model_arguments(parser):
    """MODEL, --qat, the sensor flags and --no-progress, shared by eval and process."""
    parser.add_argument("model", metavar="MODEL",
                        help="a run folder, a checkpoint inside one (checkpoints/best.weights.h5 or "
                             f"qat.weights.h5), a .tflite file, a PyTorch-side .onnx file (NCHW: [N, 4, H, "
                             "W] in, [N, 3, 2H, 2W] out; run with ONNX Runtime on the CPU), or "
                             f"'{CLASSIC}' for the classical ISP baseline")
    parser.add_argument("--qat", action="store_true",
                        help="for a run folder: use the quantization-aware model (qat.weights.h5)")
    for key in SENSOR_KEYS:
        field = config_mod.FIELDS[key]
        parser.add_argument("--" + key.replace("_", "-"), dest=key, type=type(field.default),
                            default=argparse.SUPPRESS,
                            help=f"{config_mod.HELP[key]} (default: the run's, else {field.default!r})")
    conventions.add_range_arguments(parser)
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def add_commands(subparsers):
    """Register `eval` and `process`."""
    ev = subparsers.add_parser(
        "eval", help="PSNR/SSIM (and LPIPS) of a model on a dataset split, with a CSV and a crop sheet",
        description="Evaluate MODEL on every pair of a split: PSNR and SSIM on uint8 images (SSIM "
                    "with a Gaussian 11x11 window, sigma 1.5), optional LPIPS, per-image metrics.csv, "
                    "summary.json and sheet.png (RAW preview | output | target | error map). A dynamic "
                    ".tflite or .onnx file runs at each image's size; a fixed-shape one goes through the "
                    "tiler. A .onnx file runs with ONNX Runtime on the CPU: its PSNR sits beside the "
                    ".tflite files' (same images, same metrics). "
                    f"'isp eval {CLASSIC}' scores the classical ISP baseline the same way.")
    _add_model_arguments(ev)
    ev.add_argument("--data", metavar="ROOT",
                    help="dataset root (default: the run's dataset, else the built-in default data)")
    for key in LAYOUT_KEYS:
        ev.add_argument("--" + key.replace("_", "-"), dest=key, default=argparse.SUPPRESS, metavar="NAME",
                        help=f"{config_mod.HELP[key]} (default: the run's, else detected from the folder names)")
    ev.add_argument("--split", default="val", help="split to evaluate: train, val or test (default: val)")
    ev.add_argument("--limit", type=int, default=0, metavar="N",
                    help="evaluate only the first N pairs (0: all)")
    ev.add_argument("--lpips", action="store_true",
                    help="also compute LPIPS (needs the extra: pip install -e .[lpips], and the AlexNet "
                         "weights; if missing the column stays empty and says why)")
    ev.add_argument("--sheets", type=int, default=4, metavar="N",
                    help="images shown in sheet.png, 256 px crops (default: 4)")
    ev.add_argument("--out", metavar="DIR",
                    help="output folder (default: <run>/eval/<split>, <run>/eval_qat/<split> with --qat, "
                         "<name>_eval/<split> next to a .tflite or .onnx file, "
                         f"runs/{CLASSIC}/eval/<split> for the baseline)")
    ev.set_defaults(func=run_eval)

    pr = subparsers.add_parser(
        "process", help="run a model on one full-resolution RAW frame and write an 8-bit PNG",
        description="Process one frame of any size: a dataset RAW PNG (uint16 Bayer mosaic, read with "
                    "the run's sensor profile) or a camera RAW file (DNG, CR2, NEF, ARW, ...: CFA, black "
                    "and white levels from the file; the sensor flags apply to PNGs only). Frames larger "
                    "than a fixed-shape model or than the memory budget are processed in overlapping "
                    "tiles blended with cosine feathering.")
    _add_model_arguments(pr)
    pr.add_argument("input", metavar="INPUT", help="dataset RAW .png or camera RAW file")
    pr.add_argument("output", metavar="OUTPUT.png", help="where to write the 8-bit RGB PNG")
    pr.add_argument("--tile", type=int, metavar="N",
                    help="tile side in packed pixels, a multiple of 16 (default: the whole frame up to "
                         f"1 MP packed, else {DEFAULT_TILE}; a fixed-shape .tflite or .onnx uses its input "
                         "size)")
    pr.add_argument("--overlap", type=int, metavar="N",
                    help="packed pixels shared by neighbouring tiles; exact for models whose receptive-"
                         f"field radius is at most N/4 (default: {DEFAULT_OVERLAP}, at most half the tile)")
    pr.set_defaults(func=run_process)
