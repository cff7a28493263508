"""Why post-training INT8 runs slower than QAT INT8 on the desktop CPU: per-op timings of the model's
output tail (clip to [0, 1] at the full output size) under LiteRT, float vs full-integer INT8.

Run from the repository root:  python -m benchmarks.int8_tail [--height 1088 --width 1920] [--runs 20]

Each variant is a one-layer model [1, H, W, 3] -> [1, H, W, 3] converted as FP32 and as full-integer
INT8 post-training quantization (float I/O, as `isp export --quant int8`), timed with LiteRT on
--threads CPU threads (median of --runs after 3 warm-ups). The execution plan is printed too: one
DELEGATE entry per XNNPACK partition, so two mean an op in between ran on TFLite's builtin kernel.
Nothing is asserted.
"""
import argparse
import os
import sys
import time

import numpy as np

VARIANTS = ("relu", "clip", "relu6_scaled")  # clip = ReLU(max_value=1) = the models' "clip" output (blocks.py)


def build(kind, height, width):
    """A one-layer tf_keras model of `kind` on [1, height, width, 3]."""
    import tensorflow as tf
    import tf_keras as keras
    x = keras.Input((height, width, 3), batch_size=1)
    if kind == "relu":
        y = keras.layers.ReLU()(x)
    elif kind == "clip":
        y = keras.layers.ReLU(max_value=1.0)(x)
    else:  # min(relu(x), 1) written as relu6(6 x) / 6: MUL with a fused RELU6, then MUL
        y = keras.layers.Lambda(lambda t: tf.nn.relu6(t * 6.0) * (1.0 / 6.0))(x)
    return keras.Model(x, y)


def convert(model, int8, height, width):
    """.tflite bytes: FP32, or full-integer INT8 calibrated on uniform [-0.2, 1.2] inputs."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(-0.2, 1.2, (1, height, width, 3)).astype(np.float32)]
                                                    for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def time_model(tflite_bytes, threads, runs):
    """(median ms per invoke, execution plan op names) of `tflite_bytes` under LiteRT."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=tflite_bytes, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.random.default_rng(1).uniform(-0.2, 1.2, detail["shape"])
                           .astype(np.float32))
    for _ in range(3):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000, [op["op_name"] for op in interpreter._get_ops_details()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1088, help="output height (default: Full HD, 1088)")
    parser.add_argument("--width", type=int, default=1920, help="output width (default: Full HD, 1920)")
    parser.add_argument("--runs", type=int, default=20, help="timed invocations per variant (default 20)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT CPU threads")
    args = parser.parse_args(argv)
    print("| tail | recipe | median ms | execution plan (DELEGATE = one XNNPACK partition) |")
    print("|---|---|---|---|")
    for kind in VARIANTS:
        for int8 in (False, True):
            ms, plan = time_model(convert(build(kind, args.height, args.width), int8, args.height, args.width),
                                  args.threads, args.runs)
            print(f"| {kind} | {'int8' if int8 else 'fp32'} | {ms:.2f} | {' '.join(plan)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
