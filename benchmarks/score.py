"""Latency budget verdict of a measured latency, and the --budget-ms flag.

The organisers' budget for a Full HD frame on the phone GPU is "less than 20-50 ms"
(REFERENCE.md section 2); the constants and the challenge score 2^(2*PSNR) / (C * runtime) live in
data/challenge.py (C was never published, so scores compare only at the same C). The budget is for Full HD only (packed
input 544x960, output 1088x1920): any other input size gets no verdict, only ms per output megapixel.
"""
from benchmarks.errors import BenchError
from data.challenge import BUDGET_MS, BUDGET_TEXT, FULL_HD_PACKED


def budget_verdict(latency_ms, lo_ms=BUDGET_MS[0], hi_ms=BUDGET_MS[1]):
    """Verdict for one latency (ms): "within LO ms", "within LO–HI ms budget" or "over budget"."""
    if not 0 < lo_ms <= hi_ms:
        raise ValueError(f"budget bounds must satisfy 0 < lo <= hi, got {lo_ms}, {hi_ms}")
    if latency_ms <= lo_ms:
        return f"within {lo_ms:g} ms"
    if latency_ms <= hi_ms:
        return f"within {lo_ms:g}–{hi_ms:g} ms budget"
    return "over budget"


def sized_budget(latency_ms, input_shape, lo_ms=BUDGET_MS[0], hi_ms=BUDGET_MS[1]):
    """Budget entry for a latency (ms) measured at packed `input_shape` ([1, h, w, 4] or (h, w)).

    Returns {"lo_ms", "hi_ms", "input_hw", "ms_per_mp", "verdict"}: `ms_per_mp` is ms per megapixel
    of RGB output (2h x 2w); `verdict` is `budget_verdict` for Full HD input, else
    "input HxW: no Full HD verdict".
    """
    h, w = (int(d) for d in (input_shape[1:3] if len(input_shape) == 4 else input_shape))
    verdict = (budget_verdict(latency_ms, lo_ms, hi_ms) if (h, w) == FULL_HD_PACKED
               else f"input {h}x{w}: no Full HD verdict")
    return {"lo_ms": lo_ms, "hi_ms": hi_ms, "input_hw": [h, w],
            "ms_per_mp": latency_ms / (4 * h * w / 1e6), "verdict": verdict}


def parse_budget(text):
    """`"20,50"` -> (20.0, 50.0); a malformed value raises BenchError naming the flag."""
    parts = text.split(",")
    try:
        lo_ms, hi_ms = (float(part) for part in parts)
    except ValueError:
        raise BenchError(f"--budget-ms {text!r}: expected two numbers LO,HI in ms, "
                         f"e.g. --budget-ms {BUDGET_TEXT}") from None
    if not 0 < lo_ms <= hi_ms:
        raise BenchError(f"--budget-ms {text!r}: need 0 < LO <= HI, e.g. --budget-ms {BUDGET_TEXT}")
    return lo_ms, hi_ms
