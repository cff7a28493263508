"""What a latency was measured on, and which verdict that measurement allows.

The challenge budget (Full HD in 20-50 ms) is a phone-GPU budget. Only a phone measurement (adb)
or a desktop GPU measurement (LiteRT's GPU accelerator) gets the budget verdict. A desktop-CPU
latency says nothing about a phone GPU: such rows say so and show instead the ratio to the default
model (`isp.models.unet.DEFAULT_MODEL`, its first recipe) measured in the same run, or to the first
timed row when the default model is not there.

The GPU delegation has two columns that are never mixed: the static check of the classic delegate's
rules (`tflite_export.gpu_check`) and what a real delegate reported where one ran (the phone's
benchmark_model log, or the desktop GPU accelerator's op split).
"""
from benchmarks.score import budget_verdict

PHONE, DESKTOP_GPU, DESKTOP_CPU = "phone GPU", "desktop GPU", "desktop CPU"
_DELEGATION = {"full": "fully delegated", "partial": "partially delegated", "none": "not delegated"}


def kind_of(latency_source):
    """PHONE, DESKTOP_GPU or DESKTOP_CPU from a row's "latency_source" text ("phone ...", "desktop GPU ...")."""
    source = (latency_source or "").lower()
    if source.startswith("phone") or "adb" in source:
        return PHONE
    return DESKTOP_GPU if source.startswith("desktop gpu") else DESKTOP_CPU


def verdict(latency_ms, latency_source, budget_ms, reference=None):
    """Budget verdict for phone/desktop-GPU latencies; for desktop CPU the ratio to `reference`.

    reference: (label, latency_ms) of the default model measured in the same run, or None.
    """
    if kind_of(latency_source) != DESKTOP_CPU:
        return budget_verdict(latency_ms, *budget_ms)
    if reference is None or not reference[1]:
        return "desktop CPU: no phone verdict"
    return f"desktop CPU: no phone verdict; {latency_ms / reference[1]:.2f}x {reference[0]}"


def reference_row(rows, default_model):
    """(label, latency_ms) of the first timed row of `default_model`, else of the first timed row."""
    timed = [r for r in rows if r.get("latency_ms") is not None]
    chosen = next((r for r in timed if r.get("model") == default_model), timed[0] if timed else None)
    return (chosen["label"], chosen["latency_ms"]) if chosen else None


def apply_verdicts(rows, budget_ms, default_model):
    """Set row["budget"] on every timed row of one run (see `verdict`); returns `rows`."""
    reference = reference_row(rows, default_model)
    for row in rows:
        if row.get("latency_ms") is not None:
            row["budget"] = verdict(row["latency_ms"], row.get("latency_source"), budget_ms, reference)
    return rows


def measured_delegation(result):
    """The delegation a real GPU runtime reported in a bench result, or None when none ran.

    adb: benchmark_model's parsed log ("full"/"partial"/"none", with the op split when logged);
    desktop-gpu: the accelerator's GPU/CPU op split.
    """
    parsed = (result or {}).get("benchmark")
    if parsed and parsed.get("delegation"):
        text = _DELEGATION.get(parsed["delegation"], parsed["delegation"])
        return text + _split(parsed.get("gpu_ops"), parsed.get("cpu_ops"))
    split = (result or {}).get("op_split")
    if split and split.get("gpu_ops") is not None:
        status = "fully delegated" if not split["cpu_ops"] else "partially delegated" if split["gpu_ops"] \
            else "not delegated"
        return status + _split(split["gpu_ops"], split["cpu_ops"])
    return None


def _split(gpu_ops, cpu_ops):
    return f" ({gpu_ops} GPU / {cpu_ops} CPU ops)" if gpu_ops is not None and cpu_ops is not None else ""
