"""The torch path of `isp import` (tflite_export.torch_export): user errors without torch always run; the real
exports need the torch extra and skip without it (CI installs only .[dev])."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tflite_export import torch_export
from tflite_export.errors import ExportError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Tiny(nn.Module):
        """[N, 4, H, W] -> [N, 3, 2H, 2W]: conv to 12 channels, PReLU, PixelShuffle(2) (C = 3, so CRD order matters)."""

        def __init__(self, width=12):
            super().__init__()
            self.conv = nn.Conv2d(4, width, 3, padding=1)
            self.act = nn.PReLU(width)
            self.to_sub = nn.Conv2d(width, 12, 1)
            self.shuffle = nn.PixelShuffle(2)

        def forward(self, x):
            return self.shuffle(self.to_sub(self.act(self.conv(x))))


    def build():
        torch.manual_seed(0)
        return Tiny()


    def wide():
        return Tiny(width=16)


    def not_a_module():
        return {"conv": 1}


    def broken():
        raise ValueError("needs a config")


    def same_size():
        return nn.Conv2d(4, 3, 1)


    class Unexportable(Tiny):
        def forward(self, x):
            return torch.special.i0(super().forward(x))  # aten::i0 has no ONNX symbolic in the legacy exporter


    def unexportable():
        return Unexportable()


    NOT_CALLABLE = 3
''')


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny_isp.py"
    path.write_text(TINY)
    return path


@pytest.fixture
def weights_file(tmp_path):
    """A placeholder weights file for the checks that fail before it is read."""
    path = tmp_path / "w.pt"
    path.write_bytes(b"not read")
    return path


# --- errors that need no torch -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["tiny_isp", "tiny_isp:", ":build", "tiny_isp:build-it", "tiny_isp:1x", 42])
def test_bad_spec_names_the_form(spec, tmp_path):
    with pytest.raises(ExportError, match="MODULE:FACTORY"):
        torch_export.export_torch(spec, None, tmp_path / "m.onnx")


def test_missing_model_file(tmp_path):
    with pytest.raises(ExportError, match=r"nope\.py: model file not found"):
        torch_export.export_torch(f"{tmp_path}/nope.py:build", None, tmp_path / "m.onnx")


def test_missing_weights_file(model_file, tmp_path):
    with pytest.raises(ExportError, match=r"absent\.pt: weights file not found.*torch\.save"):
        torch_export.export_torch(f"{model_file}:build", tmp_path / "absent.pt", tmp_path / "m.onnx")


def test_torch_missing_names_the_extra(model_file, weights_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ExportError, match=r"PyTorch is not installed.*pip install -e '\.\[torch\]'"):
        torch_export.export_torch(f"{model_file}:build", weights_file, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_error_messages_are_one_line(model_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    for spec, weights in [("x", None), (f"{model_file}:build", tmp_path / "absent.pt"), (f"{model_file}:build", None)]:
        with pytest.raises(ExportError) as info:
            torch_export.export_torch(spec, weights, tmp_path / "m.onnx")
        assert "\n" not in str(info.value)


def test_import_does_not_load_torch():
    code = "import sys; import tflite_export.torch_export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- with torch ----------------------------------------------------------------------------------------------------

@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    return torch


@pytest.fixture
def saved_weights(torch, model_file, tmp_path):
    """The state_dict of a seeded Tiny with non-trivial PReLU slopes, and the reference model itself."""
    sys.path.insert(0, str(model_file.parent))
    try:
        mod = torch_export._import_module(str(model_file))
    finally:
        sys.path.remove(str(model_file.parent))
    torch.manual_seed(1)
    ref = mod.Tiny()
    with torch.no_grad():
        ref.act.weight.uniform_(-0.2, 0.5)
    path = tmp_path / "tiny.pt"
    torch.save(ref.state_dict(), path)
    return path, ref.eval()


def _run_onnx(path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["rgb"], {"raw": x})[0]


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_export_matches_torch_at_two_sizes(torch, model_file, saved_weights, tmp_path, dynamo):
    if dynamo:
        pytest.importorskip("onnxscript")
    weights, ref = saved_weights
    out = tmp_path / "out" / "tiny.onnx"
    report = torch_export.export_torch(f"{model_file}:build", weights, out, dynamo=dynamo,
                                       opset=18 if dynamo else 17)
    assert report["path"] == str(out) and report["output_shape"] == [1, 3, 128, 192]
    assert report["exporter"] == ("dynamo" if dynamo else "legacy")
    assert sorted(os.listdir(out.parent)) == ["tiny.onnx"]  # one file, no temp or external-data leftovers
    for h, w in [(64, 96), (40, 56)]:  # a second size: H and W are dynamic
        x = np.random.default_rng(h).random((1, 4, h, w), dtype=np.float32)
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        got = _run_onnx(out, x)
        assert got.shape == (1, 3, 2 * h, 2 * w)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_export_io_names_and_dynamic_axes(torch, model_file, saved_weights, tmp_path):
    import onnx
    out = tmp_path / "tiny.onnx"
    report = torch_export.export_torch(f"{model_file}:build", saved_weights[0], out)
    model = onnx.load(str(out))
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    assert [model.graph.input[0].name, model.graph.output[0].name] == ["raw", "rgb"]
    assert dims == [[1, 4, "H", "W"], [1, 3, "H2", "W2"]]
    assert report["opset"] == 17
    assert "DepthToSpace" in {n.op_type for n in model.graph.node}


def test_module_importable_from_cwd(torch, model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(model_file.parent)
    monkeypatch.delitem(sys.modules, "tiny_isp", raising=False)
    out = tmp_path / "cwd.onnx"
    torch_export.export_torch("tiny_isp:build", None, out)  # None: keep the factory's weights
    sys.modules.pop("tiny_isp", None)
    assert out.is_file()


def test_no_such_module(torch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError, match="no_such_isp_module: no such module"):
        torch_export.export_torch("no_such_isp_module:build", None, tmp_path / "m.onnx")


def test_model_file_that_fails_to_import(torch, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise RuntimeError('oops')\n")
    with pytest.raises(ExportError, match=r"bad\.py: importing it failed \(RuntimeError: oops\)"):
        torch_export.export_torch(f"{bad}:build", None, tmp_path / "m.onnx")


@pytest.mark.parametrize("factory, message", [
    ("missing", r"has no 'missing'; callables it has: .*build"),
    ("NOT_CALLABLE", r"NOT_CALLABLE is a int, not a callable"),
    ("not_a_module", r"not_a_module\(\) returned a dict, not a torch\.nn\.Module"),
    ("broken", r"calling broken\(\) failed \(ValueError: needs a config\)"),
    ("same_size", r"returns \[1, 3, 64, 96\].*expected \[1, 3, 128, 192\]"),
])
def test_bad_factory(torch, model_file, tmp_path, factory, message):
    with pytest.raises(ExportError, match=message) as info:
        torch_export.export_torch(f"{model_file}:{factory}", None, tmp_path / "m.onnx")
    assert "\n" not in str(info.value)


def test_state_dict_mismatch_names_keys_and_shapes(torch, model_file, saved_weights, tmp_path):
    weights, _ = saved_weights
    with pytest.raises(ExportError, match=r"does not fit .*:wide: 4 of another shape \(conv\.weight file "
                                          r"\[12, 4, 3, 3\] vs model \[16, 4, 3, 3\]"):
        torch_export.export_torch(f"{model_file}:wide", weights, tmp_path / "m.onnx")
    state = torch.load(weights, weights_only=True)
    state["extra.bias"] = torch.zeros(3)
    del state["conv.bias"]
    torch.save(state, tmp_path / "keys.pt")
    with pytest.raises(ExportError, match=r"1 missing \(conv\.bias\); 1 unexpected \(extra\.bias\)"):
        torch_export.export_torch(f"{model_file}:build", tmp_path / "keys.pt", tmp_path / "m.onnx")
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "dp.pt")
    with pytest.raises(ExportError, match="DataParallel's 'module.' prefix"):
        torch_export.export_torch(f"{model_file}:build", tmp_path / "dp.pt", tmp_path / "m.onnx")


def test_checkpoint_dict_and_unreadable_weights(torch, model_file, saved_weights, weights_file, tmp_path):
    weights, _ = saved_weights
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": torch.load(weights, weights_only=True)}, ckpt)
    with pytest.raises(ExportError, match=r"a checkpoint dict \(keys: epoch, state_dict\).*checkpoint\['state_dict'\]"):
        torch_export.export_torch(f"{model_file}:build", ckpt, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match=r"w\.pt: cannot be read as a state_dict with weights_only=True"):
        torch_export.export_torch(f"{model_file}:build", weights_file, tmp_path / "m.onnx")
    torch.save(torch.nn.Conv2d(1, 1, 1), tmp_path / "whole_model.pt")  # a pickled module, not a state_dict
    with pytest.raises(ExportError, match=r"whole_model\.pt: cannot be read .*torch\.save\(model\.state_dict"):
        torch_export.export_torch(f"{model_file}:build", tmp_path / "whole_model.pt", tmp_path / "m.onnx")


def test_export_failure_leaves_nothing(torch, model_file, tmp_path):
    out = tmp_path / "out" / "m.onnx"
    with pytest.raises(ExportError, match=r"torch\.onnx\.export failed \(legacy exporter, opset 17.*try the dynamo") \
            as info:
        torch_export.export_torch(f"{model_file}:unexportable", None, out)
    assert "\n" not in str(info.value)
    assert not out.exists() and os.listdir(out.parent) == []
