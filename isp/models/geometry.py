"""Input-size constraint of a built model: packed h and w must be multiples of `input_multiple`."""
import tf_keras as keras

from isp.layers import DepthToSpace

DOWNSAMPLERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.AveragePooling2D,
                keras.layers.MaxPooling2D)
GLOBAL_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _scale_change(layer):
    """Factor by which `layer` divides (>1) or multiplies (<1) spatial size."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return 1.0 / layer.strides[0]
    if isinstance(layer, DOWNSAMPLERS):
        return float(layer.strides[0])
    if isinstance(layer, DepthToSpace):
        return 1.0 / layer.block_size
    if isinstance(layer, keras.layers.UpSampling2D):
        return 1.0 / layer.size[0]
    return 1.0


def _parents(layer):
    """The layers that feed `layer` in a functional graph."""
    parents = []
    for node in layer._inbound_nodes:
        inbound = node.inbound_layers
        parents += inbound if isinstance(inbound, list) else [inbound]
    return parents


def input_multiple(model):
    """Largest cumulative downsampling factor on a path into the output of a functional model.

    A U-Net with three stride-2 levels gives 8: a packed input of 544x960 works, 545x960 does not.
    Branches that end in a global pooling (attention gates) broadcast back and do not constrain.
    """
    state = {}  # layer name -> (current downsampling factor, largest factor on the way)
    for layer in model.layers:
        parents = [state[p.name] for p in _parents(layer)]
        if isinstance(layer, GLOBAL_POOLS):
            state[layer.name] = (1.0, 1.0)
            continue
        current = max((p[0] for p in parents), default=1.0) * _scale_change(layer)
        state[layer.name] = (current, max([current] + [p[1] for p in parents]))
    return int(round(max(state[layer.name][1] for layer in model._output_layers)))
