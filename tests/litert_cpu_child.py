"""`python -m tests.litert_cpu_child JOB`: the child process of tflite_export.litert_gpu with LiteRT's
GPU accelerator swapped for its CPU accelerator at the adapter boundary (`compile_model`), so the
tests drive every GPU code path, process boundary included, on a machine without a GPU adapter.
Not a test module itself.
"""
import sys

from ai_edge_litert.hardware_accelerator import HardwareAccelerator

from tflite_export import litert_gpu

_real_compile = litert_gpu.compile_model


def cpu_compile(path, accelerators, enforce_f32=False):
    """`litert_gpu.compile_model` on the CPU accelerator, whatever `accelerators` asks for."""
    return _real_compile(path, HardwareAccelerator.CPU, enforce_f32)


if __name__ == "__main__":
    litert_gpu.compile_model = cpu_compile
    litert_gpu.child_main(sys.argv)
