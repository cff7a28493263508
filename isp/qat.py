"""Quantization-aware training copies of registry models (tensorflow-model-optimization, tf_keras only).

Layers tfmot's default 8-bit registry supports are annotated for fake quantization; the custom
DepthToSpace gets a no-op QuantizeConfig (it only moves values, so it needs no quantizers of its
own and lowers to an int8 DEPTH_TO_SPACE); any other layer stays float inside the QAT graph.
"""
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantize_registry

from isp.layers import CUSTOM_OBJECTS, DepthToSpace

quantize = tfmot.quantization.keras


class NoOpQuantizeConfig(quantize.QuantizeConfig):
    """QuantizeConfig that adds no quantizers: for layers that only rearrange values."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def scope():
    """Context manager under which QAT models (with our custom layers) can be built and loaded."""
    return quantize.quantize_scope({**CUSTOM_OBJECTS, "NoOpQuantizeConfig": NoOpQuantizeConfig})


def quantize_aware(model):
    """Quantize-aware copy of a float tf_keras functional `model` (weights copied), same I/O shapes."""
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()

    def annotate(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, DepthToSpace):
            return quantize.quantize_annotate_layer(clone, quantize_config=NoOpQuantizeConfig())
        if registry.supports(layer):
            return quantize.quantize_annotate_layer(clone)
        return clone

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    with scope():
        return quantize.quantize_apply(annotated)
