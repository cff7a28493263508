"""IR passes between probing and emitting: each keeps the graph's function exactly.

- `drop_identities`: Identity, Dropout and reshapes that keep the shape (the dynamo exporter writes
  them) -> gone, so the folds below see the conv next to a pixel shuffle;
- `pixel_shuffle_chains`: Reshape(6-D) -> Transpose -> Reshape(4-D) -> one DepthToSpace or
  SpaceToDepth node (the GPU delegate refuses rank-6 tensors);
- `fold_batchnorm`: BatchNormalization after a conv -> the conv's weights and bias;
- `fold_crd`: PyTorch's pixel shuffle is CRD-ordered, TFLite's DEPTH_TO_SPACE is DCR. The CRD
  order is folded into the conv that produces the tensor (a fixed permutation of its output
  channels and of every per-channel op in between); a pixel unshuffle (CRD SpaceToDepth) into the
  conv that reads it (its input channels). Where no single conv is there, a 1x1 permutation
  conv ("ChannelPermute", one CONV_2D) does it: cheaper on the GPU than GATHER (not delegated on
  every build) or C*r*r one-channel slices and a concat.
"""
import numpy as np

from isp.onnx_import.graph import Node

# one data input, per-element, keeps channels: a channel permutation passes straight through them
ELEMENTWISE = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Identity",
               "Dropout", "Abs", "Neg", "Sqrt", "Exp", "Softplus", "Selu", "Celu", "Gelu", "Mish")
PER_CHANNEL_CONST = ("Add", "Sub", "Mul", "Div", "PRelu", "Max", "Min", "Pow")
CONVS = ("Conv", "ConvTranspose")

# (perm of the 6-D transpose, what the chain is): N, C, r, r, H, W orders of each pixel (un)shuffle
CHAINS = {(0, 1, 4, 2, 5, 3): ("DepthToSpace", "CRD"), (0, 3, 4, 1, 5, 2): ("DepthToSpace", "DCR"),
          (0, 1, 3, 5, 2, 4): ("SpaceToDepth", "CRD"), (0, 3, 5, 1, 2, 4): ("SpaceToDepth", "DCR")}


def crd_source(channels, block):
    """a[k]: the CRD channel that DCR channel k holds, for `channels` output channels and block r.

    DCR channel (i*r + j)*C + c and CRD channel c*r*r + i*r + j feed the same output pixel (c, i, j).
    """
    r2 = block * block
    return np.array([(k % channels) * r2 + k // channels for k in range(channels * r2)])


RESHAPES = ("Reshape", "Unsqueeze", "Squeeze", "Flatten")
NO_OPS = ("Identity", "Dropout")  # at inference


def drop_identities(graph, probe):
    """Remove no-op nodes (Identity, Dropout, a reshape whose output shape is its input's at every
    probe size) on data tensors, rewiring their readers; returns the count."""
    count = 0
    for node in [n for n in graph.nodes if n.op in NO_OPS + RESHAPES]:
        source, target = node.inputs[0], node.outputs[0]
        shapes = probe.shapes.get(source)
        if shapes is None or (node.op in RESHAPES and probe.shapes.get(target) != shapes):
            continue
        if target == graph.output_name:
            if source == graph.input_name:
                continue
            graph.output_name = source
        for reader in graph.consumers(target):
            reader.inputs = [source if t == target else t for t in reader.inputs]
        graph.nodes.remove(node)
        count += 1
    return count


def pixel_shuffle_chains(graph, probe):
    """Replace every 6-D pixel-(un)shuffle chain by one DepthToSpace/SpaceToDepth node; returns the count.

    A chain is a Transpose of a rank-6 tensor with one of the CHAINS permutations, with reshape-like
    nodes (each read only by the next) from a rank-4 tensor before it to a rank-4 tensor after it:
    the dynamo exporter writes Reshape -> Transpose -> Reshape, the TorchScript one Unsqueeze ->
    Reshape -> Reshape -> Transpose -> Reshape -> Squeeze. The chain counts only when its two ends
    have the shapes of that pixel (un)shuffle at every probe size.
    """
    count = 0
    for transpose in [n for n in graph.nodes if n.op == "Transpose"]:
        kind = CHAINS.get(tuple(transpose.attrs.get("perm", ())))
        shape6 = probe.shapes.get(transpose.inputs[0], [()])[0]
        if kind is None or len(shape6) != 6:
            continue
        before, start = _reshapes_back(graph, probe, transpose.inputs[0])
        after, end = _reshapes_forward(graph, probe, transpose.outputs[0])
        block = _chain_block(kind, shape6)
        if start is None or end is None or block is None or \
                not _chain_shapes_fit(kind[0], block, probe.shapes[start], probe.shapes[end]):
            continue
        chain = [*before, transpose, *after]
        index = graph.nodes.index(chain[0])
        for node in chain:
            graph.nodes.remove(node)
        graph.nodes.insert(index, Node(kind[0], f"{transpose.name}_as_{kind[0]}", [start], [end],
                                       {"blocksize": block, "mode": kind[1]}))
        count += 1
    return count


def _reshapes_back(graph, probe, tensor):
    """(reshape-like nodes in order, the rank-4 tensor they start from) walking back from `tensor`."""
    nodes, reader = [], None
    while len(probe.shapes.get(tensor, [()])[0]) != 4:
        node = graph.producer(tensor)
        if node is None or node.op not in RESHAPES or (reader and graph.only_reader(tensor) is not reader):
            return [], None
        nodes.insert(0, node)
        reader, tensor = node, node.inputs[0]
    return nodes, tensor


def _reshapes_forward(graph, probe, tensor):
    """(reshape-like nodes in order, the rank-4 tensor they end at) walking forward from `tensor`."""
    nodes = []
    while True:
        node = graph.only_reader(tensor)
        if node is None or node.op not in RESHAPES:
            return [], None
        nodes.append(node)
        tensor = node.outputs[0]
        if len(probe.shapes.get(tensor, [()])[0]) == 4:
            return nodes, tensor


def _chain_shapes_fit(op, block, starts, ends):
    """True when every probe's start/end NCHW shapes are those of `op` with `block`."""
    r = block
    for (n, c, h, w), end in zip(starts, ends):
        want = (n, c // (r * r), h * r, w * r) if op == "DepthToSpace" else (n, c * r * r, h // r, w // r)
        if tuple(end) != want:
            return False
    return True


def _chain_block(kind, shape6):
    """The block size r of a chain's 6-D shape, or None when its factors do not fit `kind`."""
    op, mode = kind
    if op == "DepthToSpace":
        r1, r2 = (shape6[2], shape6[3]) if mode == "CRD" else (shape6[1], shape6[2])
    else:
        r1, r2 = shape6[3], shape6[5]
    return int(r1) if r1 == r2 and r1 > 1 else None


def fold_batchnorm(graph):
    """Fold each BatchNormalization whose input is a group-1 conv read by nothing else; returns the count."""
    count = 0
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
        conv = graph.producer(bn.inputs[0])
        if conv is None or conv.op not in CONVS or graph.only_reader(bn.inputs[0]) is not bn \
                or not all(t in graph.consts for t in bn.inputs[1:5]) or conv.attrs.get("group", 1) != 1:
            continue
        gamma, beta, mean, var = (graph.consts[t].astype(np.float64) for t in bn.inputs[1:5])
        scale = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        axis = 0 if conv.op == "Conv" else 1
        weights = graph.consts[conv.inputs[1]].astype(np.float64)
        shape = [1] * weights.ndim
        shape[axis] = -1
        bias = graph.consts[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
        _set_input(graph, conv, 1, (weights * scale.reshape(shape)).astype(np.float32))
        _set_input(graph, conv, 2, ((bias - mean) * scale + beta).astype(np.float32))
        conv.outputs = list(bn.outputs)
        graph.nodes.remove(bn)
        count += 1
    return count


def fold_crd(graph, probe):
    """Make every DepthToSpace/SpaceToDepth DCR (TFLite's order) without changing the function.

    Returns one line per CRD node saying how its order was folded.
    """
    notes = []
    for node in [n for n in graph.nodes if n.op in ("DepthToSpace", "SpaceToDepth")]:
        if node.attrs.get("mode", "DCR") != "CRD":
            continue
        block = int(node.attrs["blocksize"])
        node.attrs["mode"] = "DCR"
        channels = probe.shapes[node.outputs[0] if node.op == "DepthToSpace" else node.inputs[0]][0][1]
        if channels == 1:
            notes.append(f"{node.name}: CRD = DCR with 1 channel, nothing to permute")
            continue
        source = crd_source(channels, block)
        notes.append(_fold_depth_to_space(graph, node, source) if node.op == "DepthToSpace"
                     else _fold_space_to_depth(graph, node, source))
    return notes


def _fold_depth_to_space(graph, node, source):
    """Permute the producing conv (and the per-channel ops after it) so that DCR reads what CRD did."""
    chain, tensor = [], node.inputs[0]
    while True:
        producer = graph.producer(tensor)
        if producer is None or graph.only_reader(tensor) is not (chain[-1] if chain else node):
            break
        if producer.op in CONVS and producer.attrs.get("group", 1) == 1:
            axis = 0 if producer.op == "Conv" else 1
            _set_input(graph, producer, 1, np.take(graph.consts[producer.inputs[1]], source, axis=axis))
            if len(producer.inputs) > 2 and producer.inputs[2]:
                _set_input(graph, producer, 2, graph.consts[producer.inputs[2]][source])
            for between in chain:
                _permute_channel_consts(graph, between, source)
            return (f"{node.name}: CRD folded into the output channels of {producer.op} {producer.name}"
                    + (f" and {len(chain)} per-channel op(s) after it" if chain else ""))
        data = _single_data_input(graph, producer)
        if data is None or not (producer.op in ELEMENTWISE or producer.op in PER_CHANNEL_CONST):
            break
        chain.append(producer)
        tensor = data
    return _insert_permute(graph, node, source, before=True)


def _fold_space_to_depth(graph, node, source):
    """Permute the input channels of the one conv reading a CRD SpaceToDepth (DCR output -> CRD order)."""
    reader = graph.only_reader(node.outputs[0])
    if reader is not None and reader.op == "Conv" and reader.attrs.get("group", 1) == 1 \
            and reader.inputs[0] == node.outputs[0]:
        _set_input(graph, reader, 1, np.take(graph.consts[reader.inputs[1]], source, axis=1))
        return f"{node.name}: CRD folded into the input channels of Conv {reader.name}"
    return _insert_permute(graph, node, np.argsort(source), before=False)


def _insert_permute(graph, node, perm, before):
    """A ChannelPermute node (out[k] = in[perm[k]]) before or after `node`; returns the note."""
    tensor = graph.fresh(f"{node.name}_permuted")
    if before:
        permute = Node("ChannelPermute", f"{node.name}_permute", [node.inputs[0]], [tensor], {"perm": list(perm)})
        node.inputs[0] = tensor
        graph.nodes.insert(graph.nodes.index(node), permute)
    else:
        permute = Node("ChannelPermute", f"{node.name}_permute", [tensor], list(node.outputs), {"perm": list(perm)})
        node.outputs = [tensor]
        graph.nodes.insert(graph.nodes.index(node) + 1, permute)
    where = "before" if before else "after"
    return (f"{node.name}: no single group-1 conv next to it, so a 1x1 CONV_2D permutes its channels "
            f"{where} the {node.op.upper()} (GPU-delegated; no GATHER or TRANSPOSE)")


def _single_data_input(graph, node):
    """The one non-constant input of `node`, or None when it has several (or none)."""
    data = [t for t in node.inputs if t and t not in graph.consts]
    return data[0] if len(data) == 1 else None


def _permute_channel_consts(graph, node, source):
    """Reorder the per-channel constants of an elementwise `node` (NCHW broadcasting) by `source`."""
    channels = len(source)
    for index, tensor in enumerate(node.inputs):
        value = graph.consts.get(tensor) if tensor else None
        if value is None or value.size <= 1:
            continue
        axis = value.ndim - 3  # NCHW broadcasting: the channel axis is third from the end
        if axis >= 0 and value.shape[axis] == channels:
            _set_input(graph, node, index, np.take(value, source, axis=axis))


def _set_input(graph, node, index, value):
    """Give `node` a private constant as input `index` (shared initializers stay untouched)."""
    name = graph.fresh(f"{node.name}_in{index}")
    graph.consts[name] = np.asarray(value)
    while len(node.inputs) <= index:
        node.inputs.append("")
    node.inputs[index] = name
