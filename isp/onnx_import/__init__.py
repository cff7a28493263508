"""ONNX -> tf_keras for ISP graphs (NCHW PyTorch exports -> NHWC functional Keras models).

Stages, one module each, in data-flow order:
- `graph`: read the .onnx file (external weights too) into a small IR of nodes and constants;
- `probe`: run the file in ONNX Runtime at two input sizes to learn every tensor's shape and to
  fold the shape arithmetic (Shape/Gather/Concat/...) to constants;
- `rewrite`: IR passes: 6-D pixel-(un)shuffle chains -> DepthToSpace/SpaceToDepth, BatchNorm
  folded into convs, PyTorch's CRD pixel-shuffle order folded into the producing conv (TFLite's
  DEPTH_TO_SPACE is DCR);
- `emit`: one Keras layer (or a few) per node, NHWC, GPU-delegate-safe;
- `convert`: the whole chain, `convert_onnx(path) -> ImportedModel`.
"""
