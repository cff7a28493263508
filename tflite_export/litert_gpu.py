"""What LiteRT's own GPU accelerator (ML Drift over WebGPU/Vulkan, `ai-edge-litert`) does with a model.

Its rules are not the classic delegate's (it accepts e.g. MUL with both inputs broadcast), so the
only trustworthy source is the accelerator itself: compile with the GPU alone (fails on any op it
cannot run), then with GPU|CPU and read the op split from the delegate's log line ("N operations
will run on the GPU, and the remaining M operations will run on the CPU" or the interpreter's
"Replacing N out of M node(s) with delegate"). `is_fully_accelerated()` is not used for the split:
with GPU|CPU it counts XNNPACK (the CPU) as an accelerator.

`adapter_problem` says, once per process, whether the accelerator has a GPU adapter at all;
`run_fp16` runs a model on it at its default FP16 precision (the export's FP16 fidelity check).

Everything runs in a child process: the native code explains failures ("No adapters found") only on
stderr, and a broken driver may abort the process instead of raising.
"""
import functools
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from tflite_export.errors import ExportError

RESULT_MARKER = "ISP_LITERT_GPU "
CHILD_MODULE = "tflite_export.litert_gpu"
PROBE_TIMEOUT_S = 120
FAILURES = (
    ("No adapters found", "LiteRT's GPU accelerator found no GPU adapter"),
    ("Couldn't load Vulkan", "the Vulkan loader libvulkan.so.1 is missing"),
)
_SPLIT = re.compile(r"(\d+) operations will run on the GPU, and the remaining (\d+) operations will run on the CPU")
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate")


def failure_reason(stderr, returncode):
    """One phrase explaining why the accelerator could not run, or None when stderr shows no known cause."""
    reasons = [reason for needle, reason in FAILURES if needle in stderr]
    if reasons:
        return "; ".join(reasons)
    if returncode < 0:
        return f"the LiteRT GPU accelerator crashed (signal {-returncode})"
    return None


def op_split(log):
    """(gpu_ops, cpu_ops) from an accelerator log, or (None, None) when it names no split."""
    match = _SPLIT.search(log)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = _REPLACING.search(log)
    if match:
        return int(match.group(1)), int(match.group(2)) - int(match.group(1))
    return None, None


def run_child(module, job, timeout_s, what):
    """Run `python -m module JSON` with this package importable; (result dict, stderr) or ExportError."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        proc = subprocess.run([sys.executable, "-m", module, json.dumps(job)], capture_output=True, text=True,
                              env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{what} did not finish in {timeout_s} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):]), proc.stderr
    reason = failure_reason(proc.stderr, proc.returncode)
    if reason:
        raise ExportError(f"{what} impossible on this machine: {reason}")
    last = next((ln for ln in reversed(proc.stderr.strip().splitlines()) if ln.strip()), "no output")
    raise ExportError(f"{what} failed (exit {proc.returncode}): {last.strip()}")


def accelerator_split(path, timeout_s=300):
    """The accelerator's verdict on `path`: {"gpu_only_compiles", "gpu_ops", "cpu_ops", "fully_accelerated"}.

    gpu_only_compiles: a GPU-only compile succeeded (every op runs on the GPU). gpu_ops/cpu_ops:
    the split the GPU|CPU compile logged (None when it logged none). Raises a one-line ExportError
    on a machine without a usable GPU adapter.
    """
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such .tflite file; give the path of an exported model")
    result, stderr = run_child(CHILD_MODULE, {"kind": "split", "path": os.path.abspath(path)}, timeout_s,
                               f"LiteRT GPU accelerator check of {path}")
    return split_from_log(result, stderr)


@functools.cache
def adapter_problem():
    """None when LiteRT's GPU accelerator has a usable adapter here, else why not (one line).

    Probed once per process, then cached: a child compiles a one-op model (`probe_model`) for the
    GPU alone, about a second on a machine without an adapter.
    """
    try:
        run_child(CHILD_MODULE, {"kind": "probe"}, PROBE_TIMEOUT_S, "LiteRT GPU adapter probe")
    except ExportError as exc:
        return str(exc)
    return None


def run_fp16(path, inputs, outputs, timeout_s=600):
    """Run `path` on LiteRT's GPU accelerator (GPU|CPU) at its default FP16 precision, in a child process.

    inputs: .npy files, one float32 model input each (a dynamic model is resized to each); the output
    for inputs[i] is saved to outputs[i]. Returns the op split (`split_from_log`; ops left to the CPU
    fallback compute in FP32). Raises a one-line ExportError when the accelerator cannot run.
    """
    job = {"kind": "fp16", "path": os.path.abspath(path), "inputs": list(inputs), "outputs": list(outputs)}
    result, stderr = run_child(CHILD_MODULE, job, timeout_s, f"FP16 run of {path} on LiteRT's GPU accelerator")
    return split_from_log(result, stderr)


def split_from_log(facts, log):
    """`facts` of `compile_split` plus "gpu_ops"/"cpu_ops": the split in the accelerator's `log` (stderr).

    A GPU-only compile that succeeded without logging a split means every op runs on the GPU; with
    neither, the split is unknown (None, None).
    """
    gpu_ops, cpu_ops = op_split(log)
    if facts["gpu_only_compiles"] and gpu_ops is None:
        gpu_ops, cpu_ops = facts["num_ops"], 0
    return dict(facts, gpu_ops=gpu_ops, cpu_ops=cpu_ops)


def compile_model(path, accelerators, enforce_f32=False):
    """LiteRT `CompiledModel` of `path` on `accelerators`; the GPU uses FP16 unless `enforce_f32`."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.options import GpuOptions, Options
    return CompiledModel.from_file(path, options=Options(hardware_accelerators=accelerators,
                                                         gpu_options=GpuOptions(enforce_f32=enforce_f32)))


def compile_split(path):
    """GPU-only compile, then GPU|CPU compile (which must succeed on a GPU machine): (facts, GPU|CPU model).

    facts: {"gpu_only_compiles", "num_ops"}; the op split is on this process's stderr (`split_from_log`).
    """
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from tflite_export.runtime import load_interpreter
    num_ops = len(load_interpreter(path)[0]._get_ops_details())
    try:
        compile_model(path, HardwareAccelerator.GPU)
        gpu_only = True
    except RuntimeError:
        gpu_only = False
    return ({"gpu_only_compiles": gpu_only, "num_ops": num_ops},
            compile_model(path, HardwareAccelerator.GPU | HardwareAccelerator.CPU))


def probe_model():
    """Bytes of a one-op .tflite file (RELU on a float32 [1, 4] tensor): the least a GPU compile needs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    code.version = 1
    tensors = []
    for index, name in enumerate((b"x", b"y")):
        tensor = schema.TensorT()
        tensor.shape, tensor.type, tensor.name, tensor.buffer = [1, 4], schema.TensorType.FLOAT32, name, index + 1
        tensors.append(tensor)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = tensors, [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [subgraph]
    model.buffers = [schema.BufferT() for _ in range(3)]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _split_job(job):
    """Child body of `accelerator_split`."""
    facts, model = compile_split(job["path"])
    return dict(facts, fully_accelerated=model.is_fully_accelerated())


def _probe_job(job):
    """Child body of `adapter_problem`: a GPU-only compile of `probe_model` (raises without an adapter)."""
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    with tempfile.TemporaryDirectory(prefix="isp-litert-probe-") as folder:
        path = os.path.join(folder, "probe.tflite")
        with open(path, "wb") as f:
            f.write(probe_model())
        compile_model(path, HardwareAccelerator.GPU)
    return {"adapter": True}


def _fp16_job(job):
    """Child body of `run_fp16`: the op-split compiles, then every input through the GPU|CPU FP16 model."""
    facts, model = compile_split(job["path"])
    signature = next(iter(model.get_signature_list()))
    shape = buffers = None
    for source, target in zip(job["inputs"], job["outputs"]):
        feed = np.load(source)
        if list(feed.shape) != shape:
            shape = list(feed.shape)
            model.resize_input_tensor(0, shape)
            buffers = model.create_input_buffers(0), model.create_output_buffers(0)
        buffers[0][0].write(feed)
        model.run_by_index(0, *buffers)
        out = next(iter(model.get_output_tensor_details(signature).values()))
        np.save(target, buffers[1][0].read(int(np.prod(out["shape"])), np.dtype(out["dtype"])).reshape(out["shape"]))
    return facts


CHILD_JOBS = {"split": _split_job, "probe": _probe_job, "fp16": _fp16_job}


def child_main(argv):
    """Body of `python -m tflite_export.litert_gpu JOB`: run the job named by JOB's "kind", print its result."""
    job = json.loads(argv[1])
    print(RESULT_MARKER + json.dumps(CHILD_JOBS[job["kind"]](job)), flush=True)


if __name__ == "__main__":
    child_main(sys.argv)
