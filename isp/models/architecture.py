"""Models outside the registry (imported from ONNX): a functional tf_keras model saved as JSON + weights.

A run folder trained from such a model keeps its architecture as `model.json` (RunDir), so resume,
export and eval rebuild it without the folder it was imported from. `model_for_run` is the one place
that decides between that file and the registry.
"""
import json
import os

import tf_keras as keras

from data.atomic import write_text
from isp.errors import ISPError
from isp.layers import CUSTOM_OBJECTS
from isp.models.registry import build
from isp.rundir import ImportDir, RunDir


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


def init_source(path):
    """(architecture JSON path or None, weights file, model name) of a --init folder: an `isp import`
    folder (its Keras copy) or a trained run (its best float weights; None: a registry model)."""
    folder = ImportDir(path)
    if folder.exists():
        with open(folder.architecture_file) as f:
            name = json.load(f).get("config", {}).get("name", "model")
        return folder.architecture_file, folder.weights_file, f"imported-{name}"
    run = RunDir.locate(path)
    if run is not None:
        config = run.read_config()
        weights = run.best_weights("float")
        if not os.path.isfile(weights):
            raise ISPError(f"--init {path}: the run has no trained float weights yet ({weights})")
        architecture = run.architecture_file if os.path.isfile(run.architecture_file) else None
        return architecture, weights, config.model
    raise ISPError(f"--init {path}: neither an `isp import` output folder (no keras/model.json) nor a run folder "
                   "(no config.yaml)")


def copy_init_architecture(init, run):
    """Give RunDir `run` the architecture of --init folder `init` when that is not a registry model
    (every worker may call it: the write is atomic and the same everywhere)."""
    architecture = init_source(init)[0]
    if architecture is not None:
        with open(architecture) as f:
            write_text(run.architecture_file, f.read())


def load_init_weights(model, init):
    """Load the weights of --init folder `init` into `model` (built from the run's architecture); a
    mismatch (the folder was re-imported or retrained with another model since) is an ISPError."""
    weights = init_source(init)[1]
    try:
        model.load_weights(weights)
    except ValueError as exc:
        reason = str(exc).splitlines()[0]
        raise ISPError(f"--init {init}: its weights {weights} do not fit this run's model ({reason}); was it "
                       "re-imported since the run started? Start a new run (another --name)") from None
