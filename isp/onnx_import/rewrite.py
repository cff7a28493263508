"""IR passes between probing and emitting: each keeps the graph's function exactly.

- `drop_identities`: Identity, Dropout and reshapes that keep the shape (the dynamo exporter writes
  them) -> gone, so the folds below see the conv next to a pixel shuffle;
- `pixel_shuffle_chains`: Reshape(6-D) -> Transpose -> Reshape(4-D) -> one DepthToSpace or
  SpaceToDepth node (the GPU delegate refuses rank-6 tensors);
- `channel_affines` + `fold_affines`: BatchNormalization and Mul/Add/Sub by per-channel constants ->
  one ChannelAffine each (consecutive ones merged), folded into the conv before it where there is
  one; the rest become a trainable 1x1 DEPTHWISE_CONV_2D (not a frozen MUL + ADD pair);
- `fold_crd`: PyTorch's pixel shuffle is CRD-ordered, TFLite's DEPTH_TO_SPACE is DCR. The CRD
  order is a fixed channel permutation, pushed through the per-channel ops around the tensor into
  the convs that produce it (output channels) and that read it (input channels). Where that
  cannot be done, a 1x1 permutation conv ("ChannelPermute", one CONV_2D) does it: cheaper on the
  GPU than GATHER (not delegated on every build) or C*r*r one-channel slices and a concat.
"""
import numpy as np

from isp.onnx_import.graph import Node

# one data input, per-element, keeps channels: a channel permutation passes straight through them
ELEMENTWISE = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Identity",
               "Dropout", "Cast", "Abs", "Neg", "Sqrt", "Exp", "Log")
CHANNEL_SPATIAL = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Resize", "Upsample", "Pad")
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


def channel_affines(graph, probe):
    """BatchNormalization (inference) and Mul/Add/Sub by per-channel constants -> ChannelAffine nodes
    (x * scale + bias, both [C, 1, 1]); consecutive affines merged into one. Returns the count made."""
    count = 0
    for node in list(graph.nodes):
        if node.op == "BatchNormalization" and all(t in graph.consts for t in node.inputs[1:5]):
            gamma, beta, mean, var = (graph.consts[t].astype(np.float64) for t in node.inputs[1:5])
            scale = gamma / np.sqrt(var + node.attrs.get("epsilon", 1e-5))
            _make_affine(graph, node, node.inputs[0], scale, beta - mean * scale)
            count += 1
        elif node.op in ("Mul", "Add", "Sub") and len(node.inputs) == 2:
            data, value = _per_channel_operand(graph, probe, node)
            if data is None or (node.op == "Sub" and data != node.inputs[0]):
                continue
            ones, zeros = np.ones_like(value), np.zeros_like(value)
            scale, bias = {"Mul": (value, zeros), "Add": (ones, value), "Sub": (ones, -value)}[node.op]
            _make_affine(graph, node, data, scale, bias)
            count += 1
    for node in [n for n in graph.nodes if n.op == "ChannelAffine"]:
        before = graph.producer(node.inputs[0])
        if before is not None and before.op == "ChannelAffine" and graph.only_reader(node.inputs[0]) is node:
            s1, b1, s2, b2 = (graph.consts[t].astype(np.float64) for t in (*before.inputs[1:], *node.inputs[1:]))
            _set_input(graph, before, 1, s1 * s2)
            _set_input(graph, before, 2, b1 * s2 + b2)
            before.outputs = list(node.outputs)
            graph.nodes.remove(node)
    return count


def _per_channel_operand(graph, probe, node):
    """(data input, constant as [C] float64) when `node` combines a rank-4 activation with a [C, 1, 1] or
    [1, C, 1, 1] constant of C > 1 channels; else (None, None)."""
    for data, const in (node.inputs, node.inputs[::-1]):
        value = graph.consts.get(const)
        shapes = probe.shapes.get(data)
        if value is None or shapes is None or len(shapes[0]) != 4 or data in graph.consts:
            continue
        channels = shapes[0][1]
        if channels > 1 and value.shape in ((channels, 1, 1), (1, channels, 1, 1)):
            return data, value.astype(np.float64).reshape(-1)
    return None, None


def _make_affine(graph, node, data, scale, bias):
    """Turn `node` into ChannelAffine(data, scale, bias) with private [C, 1, 1] constants."""
    node.op, node.inputs, node.attrs = "ChannelAffine", [data, "", ""], {}
    _set_input(graph, node, 1, np.asarray(scale, np.float32).reshape(-1, 1, 1))
    _set_input(graph, node, 2, np.asarray(bias, np.float32).reshape(-1, 1, 1))


def fold_affines(graph):
    """Fold each ChannelAffine whose input is a group-1 conv read by nothing else into that conv; returns
    the count (the rest are emitted as one 1x1 DEPTHWISE_CONV_2D each)."""
    count = 0
    for affine in [n for n in graph.nodes if n.op == "ChannelAffine"]:
        conv = graph.producer(affine.inputs[0])
        if conv is None or conv.op not in CONVS or graph.only_reader(affine.inputs[0]) is not affine \
                or conv.attrs.get("group", 1) != 1:
            continue
        scale, shift = (graph.consts[t].astype(np.float64).reshape(-1) for t in affine.inputs[1:])
        axis = 0 if conv.op == "Conv" else 1
        weights = graph.consts[conv.inputs[1]].astype(np.float64)
        shape = [1] * weights.ndim
        shape[axis] = -1
        bias = graph.consts[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
        _set_input(graph, conv, 1, (weights * scale.reshape(shape)).astype(np.float32))
        _set_input(graph, conv, 2, (bias * scale + shift).astype(np.float32))
        conv.outputs = list(affine.outputs)
        graph.nodes.remove(affine)
        count += 1
    return count


def fold_crd(graph, probe):
    """Make every DepthToSpace/SpaceToDepth DCR (TFLite's order) without changing the function.

    The tensor next to the node (a DepthToSpace's input, a SpaceToDepth's output) must then hold, at
    channel k, the CRD channel crd_source[k]. That permutation is pushed through every op around the
    tensor that keeps channels apart (elementwise, per-channel, pooling, resizing, depthwise convs) until
    group-1 convs absorb it: the ones producing those tensors in their output channels, the ones reading
    them in their input channels. Where some path ends elsewhere (a concat, the graph's input or
    output), a ChannelPermute node does it. Returns one line per CRD node saying which.
    """
    notes = []
    for node in [n for n in graph.nodes if n.op in ("DepthToSpace", "SpaceToDepth")]:
        if node.attrs.get("mode", "DCR") != "CRD":
            continue
        block = int(node.attrs["blocksize"])
        node.attrs["mode"] = "DCR"
        to_space = node.op == "DepthToSpace"
        channels = probe.shapes[node.outputs[0] if to_space else node.inputs[0]][0][1]
        if channels == 1:
            notes.append(f"{node.name}: CRD = DCR with 1 channel, nothing to permute")
            continue
        source = crd_source(channels, block)
        actions = _permutation_closure(graph, probe, node.inputs[0] if to_space else node.outputs[0], node,
                                       len(source))
        if actions is None:
            notes.append(_insert_permute(graph, node, source if to_space else np.argsort(source), before=to_space))
            continue
        for side, other in actions:
            _permute(graph, other, side, source)
        convs = [other.name for side, other in actions if side != "through"]
        notes.append(f"{node.name}: CRD folded into the channels of {len(convs)} conv(s) ({', '.join(convs)}) and "
                     f"{len(actions) - len(convs)} per-channel op(s) between them")
    return notes


def _permutation_closure(graph, probe, start, target, channels):
    """[(side, node)] that carry a channel permutation of tensor `start` (beside `target`): side "out" or
    "in" for a group-1 conv absorbing it in its output or input channels, "through" for a per-channel op
    it passes (its constants move with it); None when some tensor reached cannot be permuted."""
    tensors, queue, seen, actions = {start}, [start], {(target.name, "any")}, []
    while queue:
        tensor = queue.pop()
        shape = probe.shapes.get(tensor, [()])[0]
        if tensor in (graph.input_name, graph.output_name) or len(shape) != 4 or shape[1] != channels:
            return None
        producer = graph.producer(tensor)
        if producer is None:
            return None
        for node, side in [(producer, "out")] + [(reader, "in") for reader in graph.consumers(tensor)]:
            if (node.name, "any") in seen or (node.name, side) in seen:
                continue
            if node.op in CONVS and node.attrs.get("group", 1) == 1 and (side == "out" or node.inputs[0] == tensor):
                seen.add((node.name, side))
                actions.append((side, node))
            elif _passes_channels(graph, node, channels):
                seen.add((node.name, "any"))
                actions.append(("through", node))
                for other in [t for t in node.inputs if t and t not in graph.consts] + node.outputs:
                    if other not in tensors:
                        tensors.add(other)
                        queue.append(other)
            else:
                return None
    return actions


def _passes_channels(graph, node, channels):
    """True when `node` computes every output channel from the same input channel only (so a permutation
    of its data inputs is the same permutation of its output)."""
    if node.op in ELEMENTWISE + CHANNEL_SPATIAL + ("ChannelAffine", "PRelu", "Add", "Sub", "Mul", "Div", "Max",
                                                   "Min", "Pow"):
        return True
    if node.op in ("ReduceMean", "ReduceMax"):
        axes = node.attrs.get("axes")
        if axes is None and len(node.inputs) > 1:
            axes = graph.consts.get(node.inputs[1])
        return axes is not None and sorted(int(a) % 4 for a in np.ravel(axes)) == [2, 3] and \
            node.attrs.get("keepdims", 1) == 1
    return node.op == "Conv" and node.attrs.get("group", 1) == channels and \
        graph.consts[node.inputs[1]].shape[0] == channels  # depthwise, multiplier 1


def _permute(graph, node, side, source):
    """Apply a channel permutation (new channel k = old channel source[k]) to one node of the closure."""
    if side == "in":
        _set_input(graph, node, 1, np.take(graph.consts[node.inputs[1]], source, axis=1 if node.op == "Conv" else 0))
        return
    if side == "out" or node.op == "Conv":  # a producing conv, or a depthwise one the permutation passes
        axis = 1 if node.op == "ConvTranspose" else 0
        _set_input(graph, node, 1, np.take(graph.consts[node.inputs[1]], source, axis=axis))
        if len(node.inputs) > 2 and node.inputs[2]:
            _set_input(graph, node, 2, graph.consts[node.inputs[2]][source])
        return
    _permute_channel_consts(graph, node, source)


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
