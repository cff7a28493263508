"""Names of the conversion recipes and I/O types (tflite_export.convert implements them).

Kept apart from convert.py so that command-line parsers can offer the choices without importing
TensorFlow.
"""

RECIPES = ("fp32", "fp16", "int8", "qat")
IO_TYPES = ("float", "uint8")
QUANTIZED_RECIPES = ("int8", "qat")
IMPORT_RECIPES = ("fp32", "fp16", "int8")  # `isp import`: QAT needs training (`isp train --init`)
DEFAULT_REP_COUNT = 32  # calibration inputs of the int8 recipe, for `isp export` and the main job alike
