"""Models outside the registry (imported from ONNX): a functional tf_keras model saved as JSON + weights.

A run folder trained from such a model keeps its architecture as `model.json` (RunDir), so resume,
export and eval rebuild it without the folder it was imported from. `model_for_run` is the one place
that decides between that file and the registry.
"""
import os

import tf_keras as keras

from data.atomic import write_text
from isp.errors import ISPError
from isp.layers import CUSTOM_OBJECTS
from isp.models.registry import build


def save_architecture(model, path):
    """Write the model's architecture (functional JSON) to `path`, atomically."""
    write_text(path, model.to_json())


def load_architecture(path):
    """A fresh (untrained) functional tf_keras model from the JSON at `path`."""
    try:
        with open(path) as f:
            return keras.models.model_from_json(f.read(), custom_objects=CUSTOM_OBJECTS)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ISPError(f"{path}: not a readable Keras model architecture ({exc}); re-run `isp import`") from None


def model_for_run(run, config, input_shape=(None, None, 4)):
    """The untrained model of RunDir `run`: its model.json when it has one (an imported model, any
    input size), else registry model `config.model` built for `input_shape`."""
    if os.path.isfile(run.architecture_file):
        return load_architecture(run.architecture_file)
    return build(config.model, input_shape)
