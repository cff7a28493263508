"""RunDir: the one owner of the run-folder layout (README "Everything lands in runs/<name>/")."""
import os

import pytest

from isp import config as config_mod
from isp.errors import ISPError
from isp.rundir import RELATIVE, RunDir, weights_stage


def test_layout_is_the_readme_layout(tmp_path):
    run = RunDir.of(tmp_path, "full")
    assert os.path.relpath(run.config_file, tmp_path) == "full/config.yaml"
    paths = {RELATIVE.history_file: "history.json", RELATIVE.checkpoints("float"): "checkpoints/float",
             RELATIVE.checkpoints("qat", worker=1): "checkpoints/.worker-1/qat",
             RELATIVE.best_weights("float"): "checkpoints/best.weights.h5",
             RELATIVE.best_weights("qat"): "checkpoints/qat.weights.h5", RELATIVE.logs("qat"): "logs/qat",
             RELATIVE.tflite("int8"): "tflite/int8", RELATIVE.model("fp16"): "tflite/fp16/model.tflite",
             RELATIVE.model("fp16", dynamic=True): "tflite/fp16/model_none.tflite",
             RELATIVE.eval("classic"): "eval/classic", RELATIVE.eval(qat=True): "eval_qat",
             RELATIVE.report_md: "report.md", RELATIVE.report_json: "report.json",
             RELATIVE.plot("pareto"): "plots/pareto.png"}
    for path, expected in paths.items():
        assert path == expected
    assert run.name == "full" and not run.exists()


def test_config_round_trip_and_find_from_any_path_inside(tmp_path):
    run = RunDir.of(tmp_path / "runs", "r")
    config = config_mod.resolve({"model": "unet_tiny", "epochs": 3})
    run.save_config(config)
    assert run.exists() and run.read_config() == config
    assert run.read_config({"epochs": 5}).epochs == 5
    inside = [run.path, run.best_weights("float"), run.model("fp16"), os.path.join(run.checkpoints("float"), "ckpt-1")]
    for path in inside:
        assert RunDir.locate(path).path == os.path.abspath(run.path)
        assert RunDir.find(path).path == os.path.abspath(run.path)


def test_outside_a_run(tmp_path):
    assert RunDir.locate(tmp_path / "a.tflite") is None
    with pytest.raises(ISPError, match="not a run folder or a file inside one"):
        RunDir.find(tmp_path)
    with pytest.raises(ISPError, match="not a run folder"):
        RunDir(tmp_path).read_config()


def test_weights_stage():
    assert weights_stage("runs/x/checkpoints/best.weights.h5") == "float"
    assert weights_stage("qat.weights.h5") == "qat"
    assert weights_stage("epoch3.weights.h5") is None


def test_no_module_outside_rundir_spells_the_layout():
    # One owner per concept: a second copy of a run-folder file name in package code is a defect.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    literals = [f'"{name}"' for name in ("config.yaml", "history.json", "best.weights.h5", "qat.weights.h5",
                                         "checkpoints")]
    offenders = []
    for package in ("data", "isp", "tflite_export", "benchmarks"):
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                path = os.path.join(folder, name)
                if name.endswith(".py") and os.path.relpath(path, root) != os.path.join("isp", "rundir.py"):
                    text = open(path).read()
                    offenders += [f"{os.path.relpath(path, root)}: {lit}" for lit in literals if lit in text]
    assert not offenders
