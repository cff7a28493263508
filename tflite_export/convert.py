"""Conversion recipes: a tf_keras ISP model -> .tflite bytes (fp32, fp16, int8 PTQ, QAT int8).

Every recipe converts a batch-1 concrete function `raw [1, h, w, 4] -> rgb [1, 2h, 2w, 3]`
(h, w fixed for model.tflite, None for model_none.tflite) with builtin TFLite ops only: the GPU
delegate and stock benchmark_model cannot run Select-TF (Flex) ops. Recipes follow REFERENCE.md §4.
"""
import numpy as np
import tensorflow as tf

from tflite_export.errors import ExportError
from tflite_export.gpu_check import read_flatbuffer
from tflite_export.gpu_graph import op_code_name
from tflite_export.recipes import IO_TYPES, QUANTIZED_RECIPES, RECIPES


def concrete_function(model, input_shape):
    """Batch-1 concrete function of `model` with input signature [1, h, w, 4] (h, w may be None)."""
    spec = tf.TensorSpec([1, *input_shape], tf.float32, name="raw")
    fn = tf.function(lambda raw: model(raw, training=False), input_signature=[spec], autograph=False)
    return fn.get_concrete_function()


def convert(model, recipe, input_shape, representative_data=None, io_type="float"):
    """Convert a tf_keras model to .tflite bytes with one recipe.

    model: tf_keras model raw [1, h, w, 4] float32 in [0, 1] -> rgb [1, 2h, 2w, 3]; for "qat" a
        tfmot quantize-aware model.
    recipe: one of RECIPES. "fp32" as is; "fp16" float16 weights; "int8" full-integer post-training
        quantization calibrated on `representative_data`; "qat" int8 from the QAT model's ranges.
    input_shape: (h, w, 4) for a fixed input or (None, None, 4) for a dynamic one.
    representative_data: for "int8", an iterable of float32 arrays [1, h, w, 4] in [0, 1] (any
        concrete h, w when the input is dynamic).
    io_type: "float" keeps float32 input/output; "uint8" (int8/qat only) makes them uint8.
    """
    _check_args(recipe, input_shape, representative_data, io_type)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete_function(model, input_shape)], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    seen = []  # shapes of the representative samples the calibrator consumed
    if recipe != "fp32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if recipe == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if recipe == "int8":
        converter.representative_dataset = _representative_dataset(representative_data, input_shape, seen)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type == "uint8":
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    name = getattr(model, "name", "model")
    try:
        tflite_bytes = converter.convert()
    except ExportError:
        raise
    except Exception as exc:  # the converter raises ConverterError / ValueError / RuntimeError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"model '{name}': TFLite conversion ({recipe}) failed: {first_line}; "
                          "use GPU-safe builtin ops only (see REFERENCE.md §3)") from exc
    if recipe == "int8" and not seen:
        raise ExportError(f"model '{name}': the representative data for int8 is empty; "
                          "pass RAW patches [1, h, w, 4] in [0, 1]")
    return tflite_bytes


def _check_args(recipe, input_shape, representative_data, io_type):
    if recipe not in RECIPES:
        raise ExportError(f"unknown recipe '{recipe}'; choose one of {', '.join(RECIPES)}")
    if io_type not in IO_TYPES:
        raise ExportError(f"unknown io_type '{io_type}'; choose one of {', '.join(IO_TYPES)}")
    if io_type != "float" and recipe not in QUANTIZED_RECIPES:
        raise ExportError(f"io_type '{io_type}' needs a quantized recipe ({', '.join(QUANTIZED_RECIPES)}), "
                          f"not '{recipe}'")
    if len(input_shape) != 3 or input_shape[2] != 4 or (input_shape[0] is None) != (input_shape[1] is None):
        raise ExportError(f"input_shape {tuple(input_shape)} must be (h, w, 4) or (None, None, 4)")
    if recipe == "int8" and representative_data is None:
        raise ExportError("the int8 recipe needs representative data (RAW patches [1, h, w, 4] in "
                          "[0, 1], 100-500 of them); pass representative_data or use --recipe fp16")


def _representative_dataset(representative_data, input_shape, seen):
    """Converter callable yielding [sample] lists; checks each sample and records its shape in `seen`."""
    fixed = input_shape[0] is not None

    def generate():
        for sample in representative_data:
            sample = np.asarray(sample, dtype=np.float32)
            if sample.ndim != 4 or sample.shape[0] != 1 or sample.shape[3] != 4 or \
                    (fixed and tuple(sample.shape[1:3]) != tuple(input_shape[:2])):
                raise ExportError(f"representative sample of shape {sample.shape} does not fit the "
                                  f"model input [1, {input_shape[0]}, {input_shape[1]}, 4]")
            seen.append(sample.shape)
            yield [sample]
    return generate


def op_names(tflite_bytes):
    """Set of op names (e.g. {'CONV_2D', 'DEPTH_TO_SPACE'}) used in subgraph 0 of a .tflite flatbuffer."""
    model = read_flatbuffer(tflite_bytes, "<tflite bytes>")
    return {op_code_name(model.operatorCodes[op.opcodeIndex]) for op in model.subgraphs[0].operators or []}
