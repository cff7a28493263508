"""`isp` subcommands of the exporter: export, check-gpu, eval, process, models (cost table with TFLite sizes).

Parsers only: TensorFlow is imported by the handlers that need it, so `--help` answers at once.
"""
import os

from tflite_export import conventions, evaluate_cli, gpu_check_cli
from tflite_export.conventions import RECORD_FILE
from tflite_export.errors import ExportError
from data.challenge import FULL_HD_RGB, FULL_HD_TEXT
from data.cli import add_layout_arguments, add_profile_arguments
from isp.rundir import DYNAMIC_MODEL, FIXED_MODEL, RunDir
from tflite_export.recipes import DEFAULT_REP_COUNT, IMPORT_RECIPES, IO_TYPES, RECIPES

SIZE_RECIPES = ("fp32", "fp16")
TORCH_ONNX = "model.onnx"  # where --torch writes its ONNX export inside --out
BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2}


def parse_shape(text, flag="--shape", error=ExportError):
    """'544,960' -> (544, 960): a packed input height and width given as flag `flag`; a malformed
    value raises `error` (the calling package's user-error type)."""
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise error(f"{flag} {text!r}: expected H,W (packed input size) such as {FULL_HD_TEXT}") from None
    if h < 1 or w < 1:
        raise error(f"{flag} {text!r}: height and width must be positive")
    return h, w


def run_export(args):
    """Handler of `isp export`."""
    from tflite_export import export
    out_dir = args.out or RunDir.find(args.source).tflite(args.quant)
    report = export.export(args.source, args.quant, out_dir, io_type=args.io, fixed_shape=parse_shape(args.shape),
                           rep_count=args.rep_count, val_images=args.val_images,
                           check_fidelity=not args.no_fidelity)
    print(export.format_report(report))
    print(f"wrote {os.path.join(out_dir, FIXED_MODEL)}, {DYNAMIC_MODEL}, {RECORD_FILE}")
    return 0


def run_import(args):
    """Handler of `isp import`."""
    from tflite_export import import_onnx
    if bool(args.onnx) == bool(args.torch):
        raise ExportError("give either MODEL.onnx or --torch MODULE:FACTORY --weights FILE")
    source = args.onnx
    if args.torch:
        from tflite_export.torch_export import export_torch
        source = os.path.join(args.out, TORCH_ONNX)
        export_torch(args.torch, args.weights, source, opset=args.opset)
        print(f"exported {args.torch} to {source}")
    input_range, output_range = conventions.ranges_from_args(args)
    report = import_onnx.import_onnx(source, args.out, recipe=args.quant, data=args.data,
                                     data_keys={key: getattr(args, key) for key in import_onnx.DATA_KEYS},
                                     input_range=input_range or conventions.DEFAULT_RANGE,
                                     output_range=output_range or conventions.DEFAULT_RANGE, io_type=args.io,
                                     rep_count=args.rep_count, val_images=args.val_images)
    print(import_onnx.format_report(report))
    print(f"wrote {os.path.join(args.out, FIXED_MODEL)}, {DYNAMIC_MODEL}, {RECORD_FILE}, keras/ "
          f"(fine-tune with `isp train --init {args.out}`)")
    return 0


def run_models(args):
    """Handler of `isp models`: parameters, MACs, activation traffic and TFLite sizes per model.

    Sizes are the weights' bytes (parameters x 4 or 2, `weights_kb_*`) unless --sizes converts every
    model and reports the .tflite file sizes (`fp32_kb`, `fp16_kb`)."""
    from tqdm import tqdm

    from isp import cost
    from isp.models import build, list_models
    from tflite_export import convert

    shape = (*parse_shape(args.shape), 4)
    rows = cost.cost_table(args.names or list_models(), shape)
    for row in rows:
        row.update({f"weights_kb_{recipe}": round(row["params"] * BYTES_PER_WEIGHT[recipe] / 1024, 1)
                    for recipe in SIZE_RECIPES})
    if args.sizes:
        for row in tqdm(rows, desc="converting", unit="model"):
            model = build(row["model"], shape)
            for recipe in SIZE_RECIPES:
                row[f"{recipe}_kb"] = round(len(convert.convert(model, recipe, shape)) / 1024, 1)
    print(cost.format_table(rows))
    return 0


def add_import_command(subparsers):
    """`isp import`: an ONNX (or PyTorch) model -> the checked challenge pair + a Keras copy to fine-tune."""
    parser = subparsers.add_parser(
        "import", help="import a PyTorch/ONNX model as the TFLite challenge pair",
        description="Convert an ONNX export of a PyTorch ISP model (packed RAW [1,4,H,W] -> RGB [1,3,2H,2W], NCHW) "
                    "to a Keras model, check it against ONNX Runtime (FP32 within 1e-4 of the output range, "
                    f"else nothing is written), then write OUT/model.tflite ([1,{FULL_HD_TEXT},4]), "
                    "OUT/model_none.tflite (dynamic), OUT/export.json (GPU verdict, checks, sizes) and "
                    "OUT/keras/ (fine-tune with `isp train --init OUT`).")
    parser.add_argument("onnx", nargs="?", help="the .onnx file (weights may sit beside it as external data)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quant", choices=IMPORT_RECIPES, default="fp16",
                        help="fp32; fp16 (GPU default); int8 (post-training, calibrated on --data). For QAT: "
                             "`isp train --init OUT --qat-epochs N`. Default %(default)s")
    parser.add_argument("--data", help="dataset root: real RAW crops join the ONNX Runtime check, int8 calibrates "
                                       "on its train split, the fidelity check runs on its val split")
    add_layout_arguments(parser)
    add_profile_arguments(parser)
    conventions.add_range_arguments(parser)
    parser.add_argument("--io", choices=IO_TYPES, default="float", help="input/output type; uint8 only with int8")
    parser.add_argument("--rep-count", type=int, default=DEFAULT_REP_COUNT,
                        help="representative inputs for int8 calibration (default %(default)s)")
    parser.add_argument("--val-images", type=int, default=0,
                        help="fidelity check on at most this many val images (0: all)")
    parser.add_argument("--torch", metavar="MODULE:FACTORY",
                        help="instead of an .onnx file: a PyTorch factory (module or .py path, then a callable "
                             "returning the nn.Module), exported with torch.onnx to OUT/model.onnx; needs "
                             "`pip install -e '.[torch]'`")
    parser.add_argument("--weights", help="with --torch: the state_dict file (.pt/.pth) to load")
    parser.add_argument("--opset", type=int, default=17, help="with --torch: ONNX opset (default %(default)s)")
    parser.set_defaults(func=run_import)


def add_commands(subparsers):
    """Register the exporter's subcommands."""
    parser = subparsers.add_parser(
        "export", help="export a trained run to the TFLite challenge pair",
        description=f"Convert a trained run to model.tflite (fixed [1,{FULL_HD_TEXT},4] -> "
                    f"[1,{FULL_HD_RGB[0]},{FULL_HD_RGB[1]},3]) and "
                    "model_none.tflite ([1,None,None,4] -> [1,None,None,3]) with one quantization recipe, "
                    "check GPU-delegate compatibility and fidelity on the validation split, write export.json.")
    parser.add_argument("source", help="run folder (runs/<name>) or a checkpoint file inside it")
    parser.add_argument("--quant", choices=RECIPES, default="fp16",
                        help="fp32; fp16 (float16 weights, GPU default); int8 (post-training, calibrated on "
                             "real training inputs); qat (int8 from the QAT model; needs --qat-epochs in "
                             "training). Default %(default)s")
    parser.add_argument("--io", choices=IO_TYPES, default="float",
                        help="input/output type; uint8 only with int8/qat (default %(default)s)")
    parser.add_argument("--out", help="output folder (default: <run>/tflite/<quant>)")
    parser.add_argument("--shape", default=FULL_HD_TEXT,
                        help="packed input H,W of the fixed model.tflite (default %(default)s = Full HD output)")
    parser.add_argument("--rep-count", type=int, default=DEFAULT_REP_COUNT,
                        help="representative inputs for int8 calibration (default %(default)s)")
    parser.add_argument("--val-images", type=int, default=0,
                        help="fidelity check on at most this many val images (0: all)")
    parser.add_argument("--no-fidelity", action="store_true", help="skip the fidelity check")
    parser.set_defaults(func=run_export)
    add_import_command(subparsers)
    gpu_check_cli.add_command(subparsers)
    evaluate_cli.add_commands(subparsers)
    models = subparsers.add_parser(
        "models", help="cost profile of every registered model",
        description="Parameters, multiply-accumulates per frame, activation memory traffic and FP32/FP16 "
                    "weight sizes (parameters x 4 or 2 bytes) of registered models, counted from the built "
                    "graphs at one input size; --sizes also converts each model and reports its .tflite sizes.")
    models.add_argument("names", nargs="*", help="models to profile (default: all registered)")
    models.add_argument("--shape", default=FULL_HD_TEXT, help="packed input H,W (default %(default)s = Full HD)")
    models.add_argument("--sizes", action="store_true",
                        help="convert every model to FP32 and FP16 TFLite and report the file sizes (slow)")
    models.set_defaults(func=run_models)
