"""Run a PyTorch-side ISP `.onnx` file on the desktop CPU with ONNX Runtime, as `TFLiteModel` runs a `.tflite`.

The file is NCHW, as `torch.onnx.export` writes it: input [N, 4, H, W] packed RAW, output
[N, 3, 2H, 2W] RGB. `OnnxModel` shows the toolkit's NHWC side ([1, h, w, 4] -> [1, 2h, 2w, 3]) and
transposes around each call, so `isp eval`/`isp process` treat it like a `.tflite` file.
onnxruntime is imported when a model is loaded, not with this module.
"""
import os

import numpy as np

from tflite_export.conventions import DEFAULT_RANGE, from_model, to_model
from tflite_export.errors import ExportError
from tflite_export.runtime import check_input_fits, first_line, format_shape

PROVIDERS = ["CPUExecutionProvider"]
_EXPORT_CALL = "torch.onnx.export(model, torch.rand(1, 4, H, W), path)"
_FLOAT = "tensor(float)"


class OnnxModel:
    """One-input, one-output NCHW ISP graph seen as NHWC: raw [1, h, w, 4] float32 in [0, 1] -> rgb [1, 2h, 2w, 3].

    path: a .onnx file (input [N, 4, H, W], output [N, 3, 2H, 2W], float32). num_threads: ONNX
    Runtime intra-op CPU threads (None: its default). input_range/output_range: the model's values
    for black..white (tflite_export.conventions), mapped to and from [0, 1] around each call. A
    missing or unloadable file, or an input that is not rank 4 with 4 channels in dim 1, is an
    ExportError naming the file and the fix.
    """

    def __init__(self, path, num_threads=None, input_range=DEFAULT_RANGE, output_range=DEFAULT_RANGE):
        import onnxruntime
        self.input_range, self.output_range = tuple(input_range), tuple(output_range)
        self.name = os.fspath(path)
        if not os.path.isfile(self.name):
            raise ExportError(f"{self.name}: no such .onnx file; export it with {_EXPORT_CALL}, or check the path")
        self._errors = _runtime_errors(onnxruntime)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4  # fatal only: its errors reach the user as one ExportError line
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        try:
            self.session = onnxruntime.InferenceSession(self.name, sess_options=options, providers=PROVIDERS)
        except self._errors as exc:
            raise ExportError(f"{self.name}: not a loadable .onnx file ({first_line(exc)}); "
                              f"re-export it with {_EXPORT_CALL}") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ExportError(f"{self.name}: has {len(inputs)} inputs and {len(outputs)} outputs; an ISP model "
                              "has one input [N, 4, H, W] and one output [N, 3, 2H, 2W]")
        self._input, self._output = inputs[0], outputs[0]
        self._nchw_in, self._nchw_out = _dims(self._input.shape), _dims(self._output.shape)
        _check_nchw(self.name, "input", self._nchw_in, 4, "packed RAW [N, 4, H, W]")
        _check_nchw(self.name, "output", self._nchw_out, 3, "RGB [N, 3, 2H, 2W]")
        for arg in (self._input, self._output):
            if arg.type != _FLOAT:
                raise ExportError(f"{self.name}: {arg.name} is {arg.type}, not {_FLOAT}; export the model "
                                  "in float32 (model.float() before torch.onnx.export)")

    @property
    def input_shape(self):
        """Input shape as NHWC, None for a dynamic dim: (1, h, w, 4), (None, None, None, 4), ..."""
        return _to_nhwc(self._nchw_in)

    @property
    def output_shape(self):
        """Output shape as NHWC, None for a dynamic dim: (1, 2h, 2w, 3), ..."""
        return _to_nhwc(self._nchw_out)

    @property
    def is_dynamic(self):
        """True when the input or output shape has a dynamic (named or missing) dim, the batch included."""
        return None in self.input_shape or None in self.output_shape

    def run(self, raw):
        """raw [1, h, w, 4] float32 in [0, 1] -> rgb [1, 2h, 2w, 3] float32 on a 0..1 scale (new array,
        not clipped: a model whose range is set wrong gives values outside [0, 1]).

        The graph runs on the NCHW transpose [1, 4, h, w]; a shape the graph's fixed dims do not
        accept, or a failure inside ONNX Runtime, raises ExportError.
        """
        raw = np.asarray(raw, dtype=np.float32)
        check_input_fits(self.name, raw.shape, self.input_shape)
        nchw = np.ascontiguousarray(to_model(raw, self.input_range).transpose(0, 3, 1, 2))
        try:
            (out,) = self.session.run([self._output.name], {self._input.name: nchw})
        except self._errors as exc:
            raise ExportError(f"{self.name}: ONNX Runtime failed on the NCHW input {list(nchw.shape)} "
                              f"({first_line(exc)}); check the sizes the model accepts") from exc
        return from_model(out.transpose(0, 2, 3, 1), self.output_range)


def _runtime_errors(onnxruntime):
    """The exception types ONNX Runtime raises for a graph it cannot load or run (they share no base class)."""
    state = onnxruntime.capi.onnxruntime_pybind11_state
    return (RuntimeError, ValueError, state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf,
            state.NotImplemented, state.RuntimeException)


def _dims(shape):
    """ORT's shape list (ints, dim_param strings, None) -> a tuple with None for every dynamic dim."""
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in shape)


def _check_nchw(name, role, dims, channels, expected):
    """ExportError unless `dims` is rank 4 with `channels` in dim 1."""
    if len(dims) != 4 or dims[1] != channels:
        raise ExportError(f"{name}: {role} {format_shape(dims)} is not {expected} (NCHW, {channels} channels "
                          "in dim 1); export the model for packed 4-channel RAW in, RGB out")


def _to_nhwc(dims):
    """(N, C, H, W) -> (N, H, W, C)."""
    n, c, h, w = dims
    return n, h, w, c
