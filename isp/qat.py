"""Quantization-aware training copies of registry models (tensorflow-model-optimization, tf_keras only).

Layers tfmot's default 8-bit registry supports are annotated for fake quantization. Multiply, PReLU
and our custom layers (DepthToSpace, and the ONNX importer's ConstantOp, Binary, Unary, Reduce, Pad,
Resize, SpaceToDepth, Slice), which the registry lacks, get an output-quantizing config, so the
converter can keep their outputs int8 (without it an imported model kept 11 of its 23 compute ops
in float: benchmarks/RESULTS.md).
(For DepthToSpace a no-op config also clones, but then the converter leaves DEPTH_TO_SPACE and
everything after it in float: measured on `plain`, 4 float tensors more than with the output
config.) Any other layer stays float inside the QAT graph.
"""
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras import quant_ops
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_configs, default_8bit_quantize_registry)

from isp.layers import CUSTOM_OBJECTS

quantize = tfmot.quantization.keras
OutputQuantizeConfig = default_8bit_quantize_configs.Default8BitOutputQuantizeConfig
OUTPUT_QUANTIZED_LAYERS = (keras.layers.Multiply, keras.layers.PReLU, *CUSTOM_OBJECTS.values())


def scope():
    """Context manager under which QAT models (with our custom layers) can be built and loaded."""
    return quantize.quantize_scope({**CUSTOM_OBJECTS, "Default8BitOutputQuantizeConfig": OutputQuantizeConfig})


def quantize_aware(model):
    """Quantize-aware copy of a float tf_keras functional `model` (weights copied), same I/O shapes."""
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()

    def annotate(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if registry.supports(layer):
            return quantize.quantize_annotate_layer(clone)
        if isinstance(layer, OUTPUT_QUANTIZED_LAYERS):
            return quantize.quantize_annotate_layer(clone, quantize_config=OutputQuantizeConfig())
        return clone

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with scope():
        return quantize.quantize_apply(annotated)


def calibrate_ranges(qat_model, batches):
    """Initialise every moving-average activation range to the mean batch min/max over `batches`.

    tfmot starts each range at [-6, 6] and moves it by an EMA with decay 0.999, so a short QAT
    fine-tune (a few hundred steps) ends with ranges still near [-6, 6]: an output in [0, 1] then
    gets ~20 levels instead of 256 (measured on unet_s: 22.0 dB / SSIM 0.47 instead of 22.9 / 0.70).
    Running the model in training mode with the EMA decay set to i/(i+1) on batch i makes each
    range the running mean of the per-batch ranges. `batches`: iterable of raw [B, h, w, 4] in [0, 1].
    """
    original = quant_ops.MovingAvgQuantize
    try:
        for i, raw in enumerate(batches):
            def running_mean(*args, decay=i / (i + 1), **kwargs):
                return original(*args, **{**kwargs, "ema_decay": decay})
            quant_ops.MovingAvgQuantize = running_mean
            qat_model(raw, training=True)
    finally:
        quant_ops.MovingAvgQuantize = original
