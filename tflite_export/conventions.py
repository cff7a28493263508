"""Value conventions of a `.tflite` (or `.onnx`) ISP model: which numbers it expects for black..white
RAW and which numbers its output uses for black..white RGB.

The toolkit's own convention is (0, 1): packed RAW divided by the white level in, RGB in [0, 1]
out. Published challenge models differ (REFERENCE.md section 7): a graph that divides 12-bit counts
by 4096 itself expects (0, 4096); SYENet-style counts (0, 4095); [-1, 1] models (-1, 1). A range
(lo, hi) is the model-side value of the toolkit's 0 and 1; values map linearly between the two.
Our exports record theirs in `export.json` next to the `.tflite` file.
"""
import json
import os

import numpy as np

from tflite_export.errors import ExportError

DEFAULT_RANGE = (0.0, 1.0)
RECORD_FILE = "export.json"
NEARLY_CONSTANT_STD = 0.01   # output std (in [0, 1] units) below which an output counts as constant
MOSTLY_CLIPPED = 0.5         # share of output values outside [0, 1] that counts as mostly clipped
_CLIP_TOLERANCE = 0.5 / 255  # half an 8-bit step: rounding, not clipping
_INPUT_HINT = "try --input-range 0,1 (ours), 0,1023 or 0,4095 (RAW counts) or --input-range=-1,1"


def parse_range(text, flag):
    """'0,4095' -> (0.0, 4095.0) for the flag `flag`; a malformed or empty range raises ExportError."""
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise ExportError(f"{flag} {text!r}: expected LO,HI (the model's values for black and white), "
                          f"e.g. {flag} 0,4095") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo == hi:
        raise ExportError(f"{flag} {text!r}: LO and HI must be two different finite numbers, e.g. {flag} 0,1")
    return lo, hi


def to_model(x, value_range):
    """Toolkit values (float array, 0 = black, 1 = white) -> the model's `value_range` (float32)."""
    lo, hi = value_range
    return (lo + np.asarray(x, np.float32) * np.float32(hi - lo)).astype(np.float32)


def from_model(y, value_range):
    """The model's values in `value_range` -> toolkit values (float32, 0 = black, 1 = white)."""
    lo, hi = value_range
    return ((np.asarray(y, np.float32) - np.float32(lo)) / np.float32(hi - lo)).astype(np.float32)


def record(input_range=DEFAULT_RANGE, output_range=DEFAULT_RANGE):
    """The `export.json` entries that state a model's conventions."""
    return {"input_range": [float(v) for v in input_range], "output_range": [float(v) for v in output_range]}


def recorded_ranges(model_path):
    """(input_range, output_range) from the `export.json` beside `model_path`; None for each one missing."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), RECORD_FILE)
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None, None
    return tuple(tuple(saved[key]) if isinstance(saved, dict) and key in saved else None
                 for key in ("input_range", "output_range"))


def resolve_ranges(model_path, input_range=None, output_range=None):
    """The ranges to use for `model_path`: the given ones (flags), else its export.json, else (0, 1)."""
    saved_in, saved_out = recorded_ranges(model_path)
    return (input_range or saved_in or DEFAULT_RANGE), (output_range or saved_out or DEFAULT_RANGE)


def add_range_arguments(parser, output=True):
    """--input-range (and --output-range) LO,HI on `parser`; parse them with `ranges_from_args`."""
    parser.add_argument("--input-range", metavar="LO,HI",
                        help="the model's input values for black,white RAW: 0,1 for this toolkit's models "
                             "(default: the export.json beside the model file, else 0,1); 0,4095 for 12-bit "
                             "counts, --input-range=-1,1 for [-1,1] models")
    if output:
        parser.add_argument("--output-range", metavar="LO,HI",
                            help="the model's output values for black,white RGB (default: export.json, "
                                 "else 0,1); e.g. --output-range=-1,1 or 0,255")


def ranges_from_args(args):
    """(input_range or None, output_range or None) from the parsed --input-range/--output-range flags."""
    return tuple(None if getattr(args, key, None) is None else parse_range(getattr(args, key), flag)
                 for key, flag in (("input_range", "--input-range"), ("output_range", "--output-range")))


class OutputCheck:
    """Running statistics of a model's outputs (toolkit units, before clipping) to catch a wrong convention.

    `observe(rgb)` takes any float array; `warning(input_range, output_range)` is one line (or None)
    when the outputs were nearly constant, mostly outside [0, 1], or not finite.
    """

    def __init__(self):
        self.count = self.below = self.above = self.nonfinite = 0
        self.total = self.total_sq = 0.0

    def observe(self, rgb):
        """Add one output array to the statistics; returns it unchanged."""
        values = np.asarray(rgb, np.float64).ravel()
        finite = values[np.isfinite(values)]
        self.count += values.size
        self.nonfinite += values.size - finite.size
        self.below += int(np.count_nonzero(finite < -_CLIP_TOLERANCE))
        self.above += int(np.count_nonzero(finite > 1.0 + _CLIP_TOLERANCE))
        self.total += float(finite.sum())
        self.total_sq += float(np.square(finite).sum())
        return rgb

    def wrap(self, predict):
        """`predict` with every output observed."""
        return lambda raw: self.observe(predict(raw))

    def warning(self, input_range=DEFAULT_RANGE, output_range=DEFAULT_RANGE):
        """One line naming the likely cause and the flag, or None when the outputs look like an image."""
        finite = self.count - self.nonfinite
        if not self.count:
            return None
        given = f"(given --input-range={_fmt(input_range)} --output-range={_fmt(output_range)})"
        if self.nonfinite:
            return (f"warning: {self.nonfinite / self.count:.0%} of the model's output is NaN/Inf: the input "
                    f"range is likely wrong {given}; {_INPUT_HINT}")
        mean = self.total / finite
        std = float(np.sqrt(max(self.total_sq / finite - mean * mean, 0.0)))
        below, above = self.below / self.count, self.above / self.count
        if std < NEARLY_CONSTANT_STD:
            return (f"warning: the model's output is nearly constant (mean {mean:.3f}, std {std:.4f} on a 0..1 "
                    f"scale): it likely expects another input range {given}; {_INPUT_HINT}")
        if below + above > MOSTLY_CLIPPED:
            if below >= above:
                cause = "it likely outputs -1..1: pass --output-range=-1,1"
            else:
                cause = ("it likely outputs 0..255 (pass --output-range 0,255) or expects another input range: "
                         + _INPUT_HINT)
            return (f"warning: {below + above:.0%} of the model's output lies outside 0..1 and is clipped "
                    f"({below:.0%} below, {above:.0%} above) {given}; {cause}")
        return None


def _fmt(value_range):
    return ",".join(f"{v:g}" for v in value_range)
