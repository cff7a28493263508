"""The torch path of `isp import`: a PyTorch ISP model (factory + state_dict) -> an ONNX file.

The ONNX file is what the ONNX -> tf_keras converter reads; its contract is the toolkit's one, in
PyTorch's layout: input "raw" [1, 4, H, W] float32 (packed RAW Bayer) -> output "rgb" [1, 3, 2H, 2W],
with H and W dynamic. torch is an optional extra (`pip install -e '.[torch]'`) and is imported only
inside `export_torch`, so importing this module costs nothing.
"""
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping

from data.atomic import atomic_path
from tflite_export.errors import ExportError

INPUT_NAME = "raw"
OUTPUT_NAME = "rgb"
DYNAMIC_AXES = {INPUT_NAME: {2: "H", 3: "W"}, OUTPUT_NAME: {2: "H2", 3: "W2"}}
DEFAULT_DUMMY_HW = (64, 96)
TORCH_EXTRA = "install the torch extra: pip install -e '.[torch]'"
SAVE_HINT = "save it with torch.save(model.state_dict(), PATH)"
_CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict", "params", "params_ema", "net", "network")


def _one_line(exc, limit=300):
    """`ExcType: first line of the message`, cut to `limit` characters."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    out = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return out if len(out) <= limit else out[:limit - 3] + "..."


def parse_spec(spec):
    """'MODULE:FACTORY' -> (module, factory). MODULE is a dotted module name or a path to a .py file."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ExportError(f"{spec!r}: model spec must be MODULE:FACTORY (e.g. my_isp:build or models/net.py:build)")
    module, _, factory = spec.rpartition(":")  # rpartition: a Windows path "C:\\x.py:f" keeps its drive
    if not module or not factory or not all(part.isidentifier() for part in factory.split(".")):
        raise ExportError(f"{spec!r}: model spec must be MODULE:FACTORY with FACTORY a Python name "
                          "(e.g. my_isp:build or models/net.py:build)")
    if _is_path(module) and not os.path.isfile(module):
        raise ExportError(f"{module}: model file not found; pass an existing .py file or an importable module name")
    return module, factory


def _is_path(module):
    return module.endswith(".py") or "/" in module or os.sep in module


def _import_module(module):
    """Import a dotted module (from the current folder first) or a .py file; user errors -> ExportError."""
    if _is_path(module):
        path = os.path.abspath(module)
        name = "_isp_torch_model_" + "".join(c if c.isalnum() else "_" for c in path)
        folder = os.path.dirname(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ExportError(f"{module}: not a Python source file; pass a .py file")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        sys.path.insert(0, folder)  # so the file can import its sibling modules
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            sys.modules.pop(name, None)
            raise ExportError(f"{module}: importing it failed ({_one_line(e)}); fix the model file") from e
        finally:
            sys.path.remove(folder)
        return mod
    cwd = os.getcwd()
    sys.path.insert(0, cwd)  # console scripts do not have the current folder on sys.path
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise ExportError(f"{module}: no such module in the current folder or on sys.path; run from the "
                              "folder that holds it or pass a path to the .py file") from e
        raise ExportError(f"{module}: importing it failed ({_one_line(e)}); install what it needs") from e
    except Exception as e:
        raise ExportError(f"{module}: importing it failed ({_one_line(e)}); fix the module") from e
    finally:
        sys.path.remove(cwd)


def _build(torch, spec, module, factory):
    """Call the factory; it must return a torch.nn.Module."""
    mod = _import_module(module)
    obj = mod
    for part in factory.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(mod) if not n.startswith("_") and callable(getattr(mod, n)))
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise ExportError(f"{spec}: {module} has no {factory!r}; callables it has: {shown or 'none'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ExportError(f"{spec}: {factory} is a {type(obj).__name__}, not a callable; name a function or class "
                          "that returns the nn.Module")
    try:
        model = obj()
    except Exception as e:
        raise ExportError(f"{spec}: calling {factory}() failed ({_one_line(e)}); the factory must build the "
                          "model with no arguments") from e
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"{spec}: {factory}() returned a {type(model).__name__}, not a torch.nn.Module; make "
                          "the factory return the model")
    return model


def _load_weights(torch, model, weights, spec):
    """Load a state_dict file into `model` (strict); every mismatch is named in one line."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ExportError(f"{weights}: cannot be read as a state_dict with weights_only=True ({_one_line(e)}); "
                          f"{SAVE_HINT}") from e
    if not isinstance(state, Mapping):
        raise ExportError(f"{weights}: holds a {type(state).__name__}, not a state_dict; {SAVE_HINT}")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(map(str, list(state)[:8])) + (", ..." if len(state) > 8 else "")
        wrapped = [k for k in _CHECKPOINT_KEYS if isinstance(state.get(k), Mapping)]
        hint = f"save checkpoint[{wrapped[0]!r}] alone" if wrapped else "keep only the parameter tensors"
        raise ExportError(f"{weights}: a checkpoint dict (keys: {keys}), not a plain state_dict; {hint}: "
                          f"{SAVE_HINT}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} file {list(state[k].shape)} vs model {list(expected[k].shape)}"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        def few(items):
            return ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({few(unexpected)})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape ({few(wrong)})")
        if unexpected and all(k.startswith("module.") for k in state):
            fix = "the keys carry DataParallel's 'module.' prefix: strip it before saving"
        else:
            fix = "build the model the weights were trained with (factory arguments) or pass the matching file"
        raise ExportError(f"{weights}: state_dict does not fit {spec}: {'; '.join(parts)}; {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as e:
        raise ExportError(f"{weights}: loading into {spec} failed ({_one_line(e)}); pass the matching file") from e


def export_torch(spec, weights, out_path, opset=17, dynamo=False, dummy_hw=DEFAULT_DUMMY_HW):
    """Export a PyTorch ISP model to ONNX at `out_path` (written atomically); returns a small report dict.

    spec: "MODULE:FACTORY" -- MODULE a dotted module importable from the current folder (or sys.path) or a path
        to a .py file; FACTORY a callable (function or class, dotted attributes allowed) that takes no arguments
        and returns a torch.nn.Module mapping packed RAW [N, 4, H, W] float32 to RGB [N, 3, 2H, 2W].
    weights: a state_dict file (.pt / .pth, from torch.save(model.state_dict(), path)), loaded with
        torch.load(map_location="cpu", weights_only=True) and load_state_dict(strict=True); None keeps the
        factory's own weights.
    out_path: the .onnx file. opset: ONNX opset (the dynamo exporter writes 18 and converts down if asked lower).
    dynamo: False (default) uses the legacy TorchScript exporter, True torch.export's exporter (needs onnxscript).
    dummy_hw: (H, W) of the trace input [1, 4, H, W] (uniform [0, 1) values); H and W stay dynamic in the file.

    The model is put in eval mode, run once on the dummy (its output must be [1, 3, 2H, 2W]), then exported with
    input "raw" [1, 4, H, W] and output "rgb" [1, 3, H2, W2], H/W dynamic; everything is in one file (no external
    data). Every problem a user can cause (torch missing, bad spec, missing or unfitting weights, a factory that
    does not return a Module, a failing export) raises tflite_export.errors.ExportError with a one-line message.

    Returns {"path", "exporter", "opset" (as written in the file), "input_shape", "output_shape", "torch_version"}.
    """
    module, factory = parse_spec(spec)
    if weights is not None and not os.path.isfile(weights):
        raise ExportError(f"{weights}: weights file not found; pass the state_dict file ({SAVE_HINT})")
    try:
        import torch
    except ImportError as e:
        raise ExportError(f"PyTorch is not installed ({_one_line(e)}); {TORCH_EXTRA}") from e
    for needed in ("onnx", "onnxscript") if dynamo else ("onnx",):
        try:
            importlib.import_module(needed)
        except ImportError as e:
            raise ExportError(f"{needed} is not installed (the {'dynamo' if dynamo else 'legacy'} ONNX exporter "
                              f"needs it); {TORCH_EXTRA}") from e

    model = _build(torch, spec, module, factory)
    if weights is not None:
        _load_weights(torch, model, weights, spec)
    model.eval()

    h, w = dummy_hw
    dummy = torch.rand((1, 4, h, w), generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = model(dummy)
    except Exception as e:
        raise ExportError(f"{spec}: the model fails on a [1, 4, {h}, {w}] input ({_one_line(e)}); it must take "
                          "packed RAW [N, 4, H, W]") from e
    want = (1, 3, 2 * h, 2 * w)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ExportError(f"{spec}: the model returns {got} for a [1, 4, {h}, {w}] input, expected {list(want)} "
                          "(RGB [N, 3, 2H, 2W]); return one tensor of that shape")

    exporter = "dynamo" if dynamo else "legacy"
    names = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset)
    try:
        with atomic_path(out_path) as tmp:
            if dynamo:
                from torch.export import Dim
                # a tuple (one entry per forward argument) so the argument's name does not matter;
                # external_data=False: the default (True) would write a .data file named after the temp file
                torch.onnx.export(model, (dummy,), tmp, dynamo=True, external_data=False, verbose=False,
                                  dynamic_shapes=({2: Dim("H"), 3: Dim("W")},), **names)
            else:
                torch.onnx.export(model, (dummy,), tmp, dynamo=False, dynamic_axes=DYNAMIC_AXES, **names)
    except OSError as e:
        raise ExportError(f"{out_path}: cannot write the ONNX file ({_one_line(e)}); pick a writable path") from e
    except Exception as e:
        other = "the legacy exporter (dynamo=False)" if dynamo else "the dynamo exporter (dynamo=True)"
        raise ExportError(f"{spec}: torch.onnx.export failed ({exporter} exporter, opset {opset}: {_one_line(e)}); "
                          f"try {other} or another opset, or replace the op it names") from e
    import onnx
    written = onnx.load(os.fspath(out_path), load_external_data=False)
    opset = next((o.version for o in written.opset_import if o.domain in ("", "ai.onnx")), opset)
    return {"path": os.fspath(out_path), "exporter": exporter, "opset": opset, "input_shape": [1, 4, h, w],
            "output_shape": list(want), "torch_version": torch.__version__}
