"""The run folder: the one owner of its layout. Every command finds its files through `RunDir`.

runs/<name>/
    config.yaml                   the resolved TrainConfig (resume reads it)
    model.json                    the Keras architecture, only for a model outside the registry (imported)
    history.json                  per-epoch loss / val PSNR / val SSIM of each stage
    checkpoints/<stage>/          last checkpoint of the float and QAT stages (model, optimizer, epoch)
    checkpoints/best.weights.h5   float weights with the best val PSNR
    checkpoints/qat.weights.h5    QAT weights with the best val PSNR
    logs/<stage>/                 TensorBoard
    tflite/<recipe>/              model.tflite (fixed), model_none.tflite (dynamic), export.json
    eval/, eval_qat/              `isp eval` of the run's float / QAT model; eval/classic*/ the baseline
    report.md, report.json, plots/<name>.png

No TensorFlow here: `isp eval` of a .tflite and `isp report` find runs without it.
"""
import os

from isp import config as config_mod
from isp.errors import ISPError

STAGES = ("float", "qat")
BEST_WEIGHTS = {"float": "best.weights.h5", "qat": "qat.weights.h5"}  # per stage, in checkpoints/
CONFIG_FILE = "config.yaml"
ARCHITECTURE_FILE = "model.json"  # a Keras functional model's JSON (isp.models.architecture)
FIXED_MODEL, DYNAMIC_MODEL = "model.tflite", "model_none.tflite"  # the challenge pair in tflite/<recipe>/
SEARCH_DEPTH = 3  # parent folders searched for the run: tflite/<recipe>/model.tflite is three levels down


def weights_stage(path):
    """The stage ("float" or "qat") whose best weights `path` names, else None."""
    return next((stage for stage, name in BEST_WEIGHTS.items() if os.path.basename(path) == name), None)


class RunDir:
    """Paths of one run folder `path` (as given: relative stays relative). Nothing is created here;
    writers create parent folders themselves (data.atomic)."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"RunDir({self.path!r})"

    @classmethod
    def of(cls, runs_dir, name):
        """The run called `name` under `runs_dir` (runs/<name>)."""
        return cls(os.path.join(runs_dir, name))

    @classmethod
    def locate(cls, source):
        """The run holding `source` (the run folder itself or any path up to SEARCH_DEPTH levels inside
        it), as an absolute RunDir; None when no such folder holds a config.yaml."""
        folder = os.path.abspath(source)
        for _ in range(SEARCH_DEPTH + 1):
            if cls(folder).exists():
                return cls(folder)
            folder = os.path.dirname(folder)
        return None

    @classmethod
    def find(cls, source):
        """`locate(source)`, or an ISPError saying what to pass."""
        run = cls.locate(source)
        if run is None:
            raise ISPError(f"{os.path.abspath(source)}: not a run folder or a file inside one (no {CONFIG_FILE} "
                           "found); pass runs/<name> as written by `isp train`")
        return run

    def join(self, *parts):
        """A path inside the run folder."""
        return os.path.join(self.path, *parts)

    @property
    def name(self):
        """The run's name: its folder's base name."""
        return os.path.basename(os.path.normpath(self.path))

    @property
    def config_file(self):
        return self.join(CONFIG_FILE)

    @property
    def architecture_file(self):
        """model.json: the architecture of a run whose model is not a registered one (else absent)."""
        return self.join(ARCHITECTURE_FILE)

    @property
    def history_file(self):
        return self.join("history.json")

    @property
    def report_md(self):
        return self.join("report.md")

    @property
    def report_json(self):
        return self.join("report.json")

    def exists(self):
        """True when the folder holds a run (its config.yaml)."""
        return os.path.isfile(self.config_file)

    def read_config(self, overrides=None):
        """The run's TrainConfig (<- `overrides`, a dict); ISPError when the folder holds no run."""
        if not self.exists():
            raise ISPError(f"{self.path}: not a run folder (no {CONFIG_FILE}); pass the folder that train created")
        return config_mod.resolve(overrides, config_file=self.config_file)

    def save_config(self, config):
        """Write the resolved TrainConfig (atomically)."""
        config_mod.save(config, self.config_file)

    def checkpoints(self, stage, worker=None):
        """Last-checkpoint folder of `stage`; `worker` (a task id) gives a non-chief worker's scratch copy."""
        if worker is None:
            return self.join("checkpoints", stage)
        return self.join("checkpoints", f".worker-{worker}", stage)

    def best_weights(self, stage):
        """The best-val-PSNR weights file of `stage` ("float" or "qat")."""
        return self.join("checkpoints", BEST_WEIGHTS[stage])

    def logs(self, stage):
        """TensorBoard folder of `stage`."""
        return self.join("logs", stage)

    def tflite(self, recipe):
        """Export folder of `recipe`: tflite/<recipe>/."""
        return self.join("tflite", recipe)

    def model(self, recipe, dynamic=False):
        """The fixed-shape model.tflite of `recipe`, or its dynamic model_none.tflite."""
        return os.path.join(self.tflite(recipe), DYNAMIC_MODEL if dynamic else FIXED_MODEL)

    def eval(self, *parts, qat=False):
        """Evaluation output folder: eval/ (eval_qat/ for the QAT model), or a folder inside it."""
        return self.join("eval_qat" if qat else "eval", *parts)

    def plot(self, name):
        """plots/<name>.png."""
        return self.join("plots", f"{name}.png")


class ImportDir:
    """The folder `isp import MODEL.onnx --out DIR` writes:

    DIR/model.tflite, model_none.tflite, export.json   the challenge pair, as in a run's tflite/<recipe>/
    DIR/keras/model.json, keras/weights.h5             the Keras model in the toolkit's value convention
                                                       (RAW in [0, 1] -> RGB in [0, 1]): `isp train --init DIR`
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def model(self, dynamic=False):
        return os.path.join(self.path, DYNAMIC_MODEL if dynamic else FIXED_MODEL)

    @property
    def architecture_file(self):
        return os.path.join(self.path, "keras", ARCHITECTURE_FILE)

    @property
    def weights_file(self):
        return os.path.join(self.path, "keras", "weights.h5")

    def exists(self):
        """True when the folder holds an imported Keras model."""
        return os.path.isfile(self.architecture_file) and os.path.isfile(self.weights_file)


RELATIVE = RunDir("")  # the layout relative to the run folder: links inside report.md
