"""`isp import`: the challenge pair from an ONNX graph, its checks, its structure, and `isp train --init`."""
import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

from benchmarks.cli import main
from isp import config as config_mod
from isp import train
from isp.errors import ISPError
from isp.models.architecture import load_architecture, load_init_weights
from isp.onnx_import import rewrite
from isp.onnx_import.convert import compare, onnx_session, random_inputs
from isp.rundir import ImportDir, RunDir
from onnx_testing import GraphBuilder, isp_head, pixel_shuffle_6d, save
from tflite_export import import_onnx
from tflite_export.gpu_check import read_flatbuffer
from tflite_export.gpu_graph import op_code_name
from tflite_export.runtime import TFLiteModel
from train_testing import train_interrupted


def head_onnx(tmp_path, name="head", six_d=False, scale=None):
    """An ISP head [1, 4, H, W] -> [1, 3, 2H, 2W] with PyTorch's CRD pixel shuffle (or its 6-D form);
    `scale`: the graph divides its input by it first (a model that expects RAW counts)."""
    b = GraphBuilder()
    x = b.op("Div", ["raw", b.const(scale)]) if scale else "raw"
    if six_d:
        y = pixel_shuffle_6d(b, b.conv(x, 4, 12), channels=3)
        y = b.op("Clip", [b.conv(y, 3, 3), b.const(0.0), b.const(1.0)])
    else:
        y = isp_head(b, x)
    return save(b.model(y), tmp_path / f"{name}.onnx")


def tensor_ranks_and_ops(path):
    """(set of op names, largest tensor rank) of a .tflite file."""
    with open(path, "rb") as f:
        model = read_flatbuffer(f.read(), path)
    graph = model.subgraphs[0]
    ops = {op_code_name(model.operatorCodes[op.opcodeIndex]) for op in graph.operators}
    return ops, max(len(t.shape) for t in graph.tensors)


@pytest.mark.parametrize("six_d", [False, True], ids=["depth_to_space_crd", "six_d_chain"])
def test_import_writes_checked_gpu_clean_pair(tmp_path, six_d, capsys):
    path = head_onnx(tmp_path, six_d=six_d)
    out = tmp_path / "imported"
    assert main(["import", path, "--out", str(out), "--quant", "fp32"]) == 0
    folder = ImportDir(out)
    assert folder.exists()
    report = json.load(open(out / "export.json"))
    assert report["files"]["model.tflite"]["input_shape"] == [1, 544, 960, 4]
    assert report["files"]["model.tflite"]["output_shape"] == [1, 1088, 1920, 3]
    assert report["onnx"]["checks"]["random"]["relative_diff"] < 1e-4
    assert report["onnx"]["checks"]["tflite_vs_onnx"]["max_abs_diff"] < 1e-4
    fixed = TFLiteModel(folder.model())
    assert fixed.input_shape == (1, 544, 960, 4) and fixed.output_shape == (1, 1088, 1920, 3)
    for name in (folder.model(), folder.model(dynamic=True)):
        ops, rank = tensor_ranks_and_ops(name)
        assert not ops & {"TRANSPOSE", "GATHER", "RESHAPE", "RELU_0_TO_1"} and rank <= 4, (ops, rank)
    assert main(["check-gpu", folder.model()]) == 0
    # model_none is right at two sizes against ONNX Runtime
    dynamic = TFLiteModel(folder.model(dynamic=True))
    result = compare(onnx_session(path), dynamic.run, random_inputs(4, [(24, 40), (48, 32)], seed=3))
    assert result["max_abs_diff"] < 1e-4
    assert "check random: max |diff|" in capsys.readouterr().out


def test_fixed_size_file_is_checked_at_its_own_size(tmp_path):
    b = GraphBuilder()
    path = save(b.model(isp_head(b, "raw"), dims=(1, 4, 24, 40)), tmp_path / "fixed.onnx")
    report = import_onnx.import_onnx(path, str(tmp_path / "out"), "fp32", progress=False)
    assert report["onnx"]["checks"]["random"]["inputs"] == 1
    assert report["onnx"]["checks"]["tflite_vs_onnx"]["max_abs_diff"] < 1e-4
    assert any("fixed at 24x40" in note for note in report["onnx"]["rewrites"])


def test_negative_control_fails_the_import_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """CRD read as DCR without the permutation: the ONNX Runtime check must stop the import."""
    path = head_onnx(tmp_path)
    out = tmp_path / "imported"
    out.mkdir()
    (out / "keep.txt").write_text("earlier file")
    monkeypatch.setattr(rewrite, "crd_source", lambda channels, block: np.arange(channels * block * block))
    assert main(["import", path, "--out", str(out)]) == 2
    assert "differs from ONNX Runtime on random inputs" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["keep.txt"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".isp-import-")]


def test_unsupported_op_is_one_line_per_op_and_exit_2(tmp_path, capsys):
    b = GraphBuilder()
    y = b.op("Transpose", [b.conv("raw", 4, 12)], perm=[0, 1, 3, 2])
    path = save(b.model(b.op("DepthToSpace", [b.op("Transpose", [y], perm=[0, 1, 3, 2])], blocksize=2)),
                tmp_path / "bad.onnx")
    assert main(["import", path, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unsupported ONNX op Transpose" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_import_reads_a_custom_layout_with_its_profile(tmp_path, pair_tree, capsys):
    """--raw-dir/--rgb-dir and the sensor flags reach the --data check."""
    for split in ("train", "val"):
        (pair_tree / split / "mediatek_raw").rename(pair_tree / split / "bayer")
        (pair_tree / split / "fujifilm").rename(pair_tree / split / "srgb")
    args = ["import", head_onnx(tmp_path), "--out", str(tmp_path / "o"), "--data", str(pair_tree), "--val-images", "1"]
    assert main(args) == 2  # the UltraISP folders are gone
    assert main([*args, "--raw-dir", "bayer", "--rgb-dir", "srgb", "--white-level", "1023"]) == 0
    report = json.load(open(tmp_path / "o" / "export.json"))
    assert report["onnx"]["checks"]["data"]["inputs"] == 2 and report["fidelity"]["images"] == 1


def test_non_isp_shapes_and_missing_file_are_clear(tmp_path, capsys):
    b = GraphBuilder()
    path = save(b.model(b.conv("raw", 4, 3)), tmp_path / "same_size.onnx")
    assert main(["import", path, "--out", str(tmp_path / "o")]) == 2
    assert "maps packed RAW [1, 4, H, W] to RGB [1, 3, 2H, 2W]" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "none.onnx"), "--out", str(tmp_path / "o")]) == 2
    assert "no such ONNX file" in capsys.readouterr().err
    assert main(["import", "--out", str(tmp_path / "o")]) == 2
    assert main(["import", path, "--out", str(tmp_path / "o"), "--quant", "int8"]) == 2
    assert "pass --data ROOT" in capsys.readouterr().err


def test_int8_with_data_and_a_model_that_expects_counts(tmp_path, pair_tree):
    """A graph that divides 10-bit counts by 1023 itself: --input-range 0,1023 is recorded and used by the
    fidelity check; int8 calibrates on the real training RAWs."""
    path = head_onnx(tmp_path, scale=1023.0)
    out = tmp_path / "imported"
    report = import_onnx.import_onnx(path, str(out), "int8", data=str(pair_tree), input_range=(0.0, 1023.0),
                                     data_keys={"black_level": "auto"}, rep_count=2, progress=False)
    assert report["input_range"] == [0.0, 1023.0]
    assert report["onnx"]["checks"]["data"]["inputs"] == 2 and report["onnx"]["checks"]["data"]["relative_diff"] < 1e-4
    assert report["fidelity"]["images"] == 2 and abs(report["fidelity"]["psnr_delta_db"]) < 3
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(report["files"]["model.tflite"]["ops"])
    assert TFLiteModel(ImportDir(out).model()).input_dtype == np.float32


def test_init_fine_tunes_an_imported_model_and_resumes_exactly(tmp_path, pair_tree, monkeypatch):
    out = tmp_path / "imported"
    import_onnx.import_onnx(head_onnx(tmp_path), str(out), "fp32", progress=False)
    base = dict(data=str(pair_tree), runs_dir=str(tmp_path / "runs"), init=str(out), epochs=2, batch_size=2,
                crop=8, val_images=2, qat_epochs=1, cache=False, msssim_weight=0.0)
    cfg = config_mod.resolve({**base, "name": "full"})
    full = train.train(cfg, progress=False)["run_dir"]
    run = RunDir(full)
    assert run.read_config().model == "imported-test" and os.path.isfile(run.architecture_file)
    assert os.path.isfile(run.best_weights("qat"))
    train_interrupted(dataclasses.replace(cfg, name="split"), monkeypatch)
    split = train.resume(os.path.join(cfg.runs_dir, "split"), progress=False)["run_dir"]
    weights = []
    for folder in (full, split):
        model = load_architecture(RunDir(folder).architecture_file)
        model.load_weights(RunDir(folder).best_weights("float"))
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the fine-tuned run exports like any other, QAT included
    assert main(["export", full, "--quant", "qat", "--val-images", "1"]) == 0
    # a new run from a folder re-imported with another architecture says so in one line
    import_onnx.import_onnx(head_onnx(tmp_path, "other", six_d=True), str(out), "fp32", progress=False)
    with pytest.raises(ISPError, match="do not fit this run's model"):
        load_init_weights(load_architecture(RunDir(full).architecture_file), str(out))
    with pytest.raises(ISPError, match="neither an `isp import` output folder"):
        train.train(config_mod.resolve({**base, "init": str(tmp_path), "name": "bad"}), progress=False)


def test_torch_path_exports_then_imports(tmp_path):
    pytest.importorskip("torch")
    module = tmp_path / "tiny_isp.py"
    module.write_text(
        "import torch\n"
        "class Tiny(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(4, 12, 3, padding=1)\n"
        "        self.shuffle = torch.nn.PixelShuffle(2)\n"
        "    def forward(self, x):\n"
        "        return torch.clamp(self.shuffle(self.conv(x)), 0, 1)\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return Tiny()\n")
    weights = tmp_path / "tiny.pt"
    spec = importlib.util.spec_from_file_location("tiny_isp", module)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    loaded.torch.save(loaded.make().state_dict(), weights)
    out = tmp_path / "imported"
    assert main(["import", "--torch", f"{module}:make", "--weights", str(weights), "--out", str(out)]) == 0
    assert os.path.isfile(out / "model.onnx") and ImportDir(out).exists()
