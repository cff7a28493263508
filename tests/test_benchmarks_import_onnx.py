"""benchmarks.import_onnx: the PyTorch-style SYENet graph it writes, its tables, and a tiny end-to-end run."""
import collections
import json

import numpy as np
import onnx
import pytest

from benchmarks import import_onnx as bench
from benchmarks.errors import BenchError
from benchmarks_testing import tiny_benchmark_inputs
from data import default_data


def test_syenet_onnx_is_a_dynamic_nchw_isp_graph_seeded_by_the_seed(tmp_path):
    import onnxruntime as ort
    path = bench.syenet_onnx(tmp_path / "s0.onnx", seed=0)
    model = onnx.load(path)
    assert model.opset_import[0].version == bench.OPSET
    assert [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == ["N", 4, "H", "W"]
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert ops == {"Conv": 8, "Mul": 5, "Add": 2, "PRelu": 2, "ReduceMean": 1, "Sigmoid": 1, "DepthToSpace": 1,
                   "Clip": 1}
    d2s = next(node for node in model.graph.node if node.op_type == "DepthToSpace")
    assert {a.name: onnx.helper.get_attribute_value(a) for a in d2s.attribute} == {"blocksize": 2, "mode": b"CRD"}
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for h, w in ((16, 24), (32, 40)):
        rgb = session.run(None, {"raw": np.random.default_rng(h).random((1, 4, h, w), np.float32)})[0]
        assert rgb.shape == (1, 3, 2 * h, 2 * w) and 0 <= rgb.min() and rgb.max() <= 1 and rgb.std() > 0
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    again, other = ({i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
                    for path in (bench.syenet_onnx(tmp_path / "b.onnx"), bench.syenet_onnx(tmp_path / "s1.onnx", 1)))
    assert all(np.array_equal(weights[k], again[k]) for k in weights)
    assert not np.array_equal(weights["head_a1.weight"], other["head_a1.weight"])
    assert weights["body_affine.scale"].shape == (12, 1, 1) and weights["tail_conv.bias"].tolist() == [0.5] * 3


def test_counts_are_checked_before_any_work():
    with pytest.raises(BenchError, match="seeds"):
        bench.run_benchmark("unused", {}, seeds=0)
    with pytest.raises(BenchError, match="qat-epochs"):
        bench.run_benchmark("unused", {}, qat_epochs=0)


@pytest.fixture
def tiny_args(pair_tree, tmp_path, monkeypatch):
    """1 seed, 1 float + 1 QAT epoch of 2 steps on 32x32 pairs, 2 val images, 2 tiny held-out photos."""
    config, photos = tiny_benchmark_inputs(tmp_path)
    monkeypatch.setattr(bench.zoo, "HELDOUT_PAIRS", 2)
    monkeypatch.setattr(bench.zoo, "HELDOUT_PATCH", 64)
    monkeypatch.setenv("ISP_CACHE_DIR", str(tmp_path / "cache"))  # a small built-in dataset, for the cross-sensor set
    for key, value in (("TRAIN_PAIRS", 4), ("VAL_PAIRS", 2), ("VAL_PATCH", 64)):
        monkeypatch.setattr(default_data, key, value)
    return ["--seeds", "1", "--epochs", "1", "--qat-epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2",
            "--crop", "8", "--data", str(pair_tree), "--val-images", "2", "--config", str(config),
            "--heldout-photos", str(photos), "--rep-count", "1", "--import-repeats", "1",
            "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out" / "import.md"), "--no-progress"]


def table_rows(text, header):
    """{first cell: cells} of the Markdown table whose header row starts with `header`."""
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"| {header} |")))
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if not set(cells[0]) <= set("-|"):  # the separator row
            rows[cells[0]] = cells
    return rows


@pytest.mark.slow
def test_end_to_end_tiny_run(tiny_args, tmp_path, capsys):
    result = bench.main(tiny_args)
    text = (tmp_path / "out" / "import.md").read_text()
    assert text in capsys.readouterr().out

    graph = table_rows(text, "op type")
    assert graph["op type"] == ["op type", "imported", "native"]
    for op in ("CONV_2D", "DEPTH_TO_SPACE", "PRELU", "MEAN", "LOGISTIC", "**total ops**", "**model.tflite KB**"):
        assert op in graph
    assert int(graph["DEPTH_TO_SPACE"][1]) == int(graph["DEPTH_TO_SPACE"][2]) == 1
    assert graph["**GPU delegate (static)**"][1].startswith("fully delegated")
    assert graph["**GPU delegate (static)**"][2].startswith("fully delegated")
    assert len(result["graph"]["import_seconds"]) == 1 and result["graph"]["import_seconds"][0] > 0

    recipes = table_rows(text, "recipe")
    assert recipes["recipe"] == ["recipe", "val PSNR", "cross-sensor PSNR", "held-out PSNR", "model.tflite KB",
                                 "float ops"]
    assert set(recipes) == {"recipe", "fp16", "int8", "qat", "int8 - qat"}
    floating, compute = recipes["fp16"][5].split(" of ")
    assert floating == compute and recipes["int8"][5] == f"0 of {compute}"  # fp16 all float, PTQ all int8
    assert recipes["int8 - qat"][1][0] in "+-" and " ± " in recipes["int8 - qat"][1]

    saved = json.loads((tmp_path / "out" / "import.json").read_text())
    assert [s["name"] for s in saved["sets"]] == ["val", "cross-sensor", "held-out"]
    assert saved["sets"][0]["images"] == 2 and saved["settings"]["qat_epochs"] == 1
    by_recipe = {row["recipe"]: row for row in saved["rows"]}
    for recipe in ("fp16", "int8", "qat"):
        assert 0 < by_recipe[recipe]["summary"]["val"]["psnr_mean"] < 60
    delta = by_recipe["int8 - qat"]["scores"]["held-out"]["psnr"][0]
    assert delta == pytest.approx(by_recipe["int8"]["scores"]["held-out"]["psnr"][0]
                                  - by_recipe["qat"]["scores"]["held-out"]["psnr"][0])
    assert saved["run_dirs"][0].endswith(f"imported-{bench.GRAPH_NAME}-s0")
