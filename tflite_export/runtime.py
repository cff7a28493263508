"""Run an exported ISP .tflite file on the desktop with LiteRT (`ai_edge_litert`)."""
import os

import numpy as np

from tflite_export.conventions import DEFAULT_RANGE, from_model, to_model
from tflite_export.errors import ExportError


PROBE_SIDE = 64  # packed side a dynamic model is first allocated at (a multiple of every input_multiple)


class TFLiteModel:
    """One-input, one-output ISP model: raw [1, h, w, 4] float32 in [0, 1] -> rgb [1, 2h, 2w, 3].

    path_or_bytes: a .tflite path, or the file's bytes. num_threads: LiteRT CPU threads (None:
    LiteRT's default). input_range/output_range: the model's values for black..white
    (tflite_export.conventions; ours are (0, 1)), mapped to and from [0, 1] around each call.
    Quantized (int8/uint8) inputs and outputs are converted with the model's own scale and zero
    point, so callers always see float32.
    """

    def __init__(self, path_or_bytes, num_threads=None, input_range=DEFAULT_RANGE, output_range=DEFAULT_RANGE):
        self.input_range, self.output_range = tuple(input_range), tuple(output_range)
        self.interpreter, self.name = load_interpreter(path_or_bytes, num_threads)
        try:
            details = self.interpreter.get_input_details()
            if len(details) == 1 and -1 in details[0]["shape_signature"]:
                # A dynamic input starts at size 1, too small for pooling or strided layers: allocate
                # at a size every registered model accepts; `run` resizes to the real input.
                probe = [PROBE_SIDE if d < 0 else int(d) for d in details[0]["shape_signature"]]
                self.interpreter.resize_tensor_input(details[0]["index"], probe, strict=True)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise _not_loadable(self.name, exc) from exc
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ExportError(f"{self.name}: has {len(inputs)} inputs and {len(outputs)} outputs; "
                              "an ISP model has one input [1, h, w, 4] and one output")
        self._input, self._output = inputs[0], outputs[0]

    @property
    def input_shape(self):
        """Input shape signature as a tuple, None for a dynamic dim: (1, h, w, 4) or (1, None, None, 4)."""
        return _signature(self._input)

    @property
    def output_shape(self):
        """Output shape signature as a tuple, None for a dynamic dim."""
        return _signature(self._output)

    @property
    def input_dtype(self):
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self):
        return np.dtype(self._output["dtype"])

    @property
    def input_quantization(self):
        """(scale, zero_point) of the input; (0.0, 0) when it is not quantized."""
        return self._input["quantization"]

    @property
    def output_quantization(self):
        """(scale, zero_point) of the output; (0.0, 0) when it is not quantized."""
        return self._output["quantization"]

    @property
    def is_dynamic(self):
        """True when the input or output shape signature has a dynamic (-1) dim."""
        return None in self.input_shape or None in self.output_shape

    def run(self, raw):
        """raw [1, h, w, 4] float32 in [0, 1] -> rgb [1, 2h, 2w, 3] float32 on a 0..1 scale (new array,
        not clipped: a model whose range is set wrong gives values outside [0, 1]).

        A dynamic model is resized (and its tensors re-allocated) only when h, w change; a fixed
        model raises ExportError for any other shape.
        """
        raw = np.asarray(raw, dtype=np.float32)
        self._ensure_shape(raw.shape)
        model_input = _quantize(to_model(raw, self.input_range), self.input_dtype, self.input_quantization)
        self.interpreter.set_tensor(self._input["index"], model_input)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        return from_model(_dequantize(out, self.output_quantization), self.output_range)

    def _ensure_shape(self, shape):
        check_input_fits(self.name, shape, self.input_shape)
        if tuple(self._input["shape"]) != tuple(shape):
            self.interpreter.resize_tensor_input(self._input["index"], list(shape), strict=True)
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]


def load_interpreter(path_or_bytes, num_threads=None):
    """The one LiteRT loader: (Interpreter, name) of a .tflite path or the file's bytes, tensors not
    yet allocated. A missing or unloadable file is an ExportError naming it and the fix.

    num_threads: LiteRT CPU threads (None: LiteRT's default). name is the path, or
    "<in-memory .tflite>" for bytes.
    """
    from ai_edge_litert.interpreter import Interpreter
    if isinstance(path_or_bytes, (bytes, bytearray)):
        name, content = "<in-memory .tflite>", bytes(path_or_bytes)
    else:
        name = os.fspath(path_or_bytes)
        if not os.path.isfile(name):
            raise ExportError(f"{name}: no such .tflite file; export the model first, or check the path")
        with open(name, "rb") as f:
            content = f.read()
    try:
        return Interpreter(model_content=content, num_threads=num_threads), name
    except (ValueError, RuntimeError) as exc:
        raise _not_loadable(name, exc) from exc


def check_input_fits(name, shape, expected):
    """ExportError unless an input of `shape` fits the model `name`'s input `expected` (None: any size)."""
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        raise ExportError(f"{name}: input of shape {list(shape)} does not fit the model's "
                          f"input {format_shape(expected)}; crop or pad the RAW frame to fit")


def format_shape(dims):
    """(1, None, None, 4) -> "[1, ?, ?, 4]"."""
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def first_line(exc):
    """The first line of a runtime's exception message (its type name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _not_loadable(name, exc):
    """The one-line ExportError for a file LiteRT cannot load or allocate."""
    return ExportError(f"{name}: not a loadable .tflite file ({first_line(exc)}); re-export it")


def _signature(detail):
    return tuple(None if d < 0 else int(d) for d in detail["shape_signature"])


def _quantize(x, dtype, quantization):
    """float32 -> the model's input dtype: round(x / scale) + zero_point, clipped to the dtype."""
    scale, zero_point = quantization
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(y, quantization):
    """The model's output -> float32: (y - zero_point) * scale for an integer output."""
    scale, zero_point = quantization
    if not np.issubdtype(y.dtype, np.integer):
        return y.astype(np.float32)
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)
