"""GPU-delegate-safe custom layers (named, serialisable, QAT-friendly).

DepthToSpace serves the model zoo; the others are the Keras form of ONNX ops that no stock
tf_keras layer computes exactly (isp.onnx_import.emit builds them). Each lowers to the TFLite ops
its docstring names, all on the GPU delegate's list (REFERENCE.md section 3).
"""
import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="mobile_isp")
class DepthToSpace(keras.layers.Layer):
    """Pixel shuffle: [B, h, w, C*b*b] -> [B, h*b, w*b, C], lowered to TFLite DEPTH_TO_SPACE.

    A layer (not a Lambda, not a 6-D reshape) so that it converts to one GPU-delegate op and
    survives tfmot's model cloning for quantization-aware training.
    """

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        if block_size < 2:
            raise ValueError("DepthToSpace block_size must be >= 2 (the GPU delegate rejects 1)")
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        scale = self.block_size
        return (b, None if h is None else h * scale, None if w is None else w * scale, c // scale ** 2)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.utils.register_keras_serializable(package="mobile_isp")
class SpaceToDepth(keras.layers.Layer):
    """Pixel unshuffle: [B, h*b, w*b, C] -> [B, h, w, C*b*b] in DCR order (TFLite SPACE_TO_DEPTH)."""

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.block_size)

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Resize(keras.layers.Layer):
    """Resize [B, H, W, C] -> [B, H*scale_h, W*scale_w, C] (RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR).

    method: "bilinear" or "nearest". align_corners / half_pixel_centers: TFLite's two flags (at most
    one set), which together with the method cover every coordinate mapping an ONNX Resize that
    this toolkit imports uses (isp.onnx_import.resize picks them).
    """

    def __init__(self, scale=(2.0, 2.0), method="bilinear", align_corners=False, half_pixel_centers=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.scale = tuple(float(s) for s in scale)
        self.method, self.align_corners, self.half_pixel_centers = method, bool(align_corners), bool(half_pixel_centers)

    def call(self, inputs):
        static = inputs.shape[1:3]
        if None in static:
            size = tf.cast(tf.round(tf.cast(tf.shape(inputs)[1:3], tf.float32) * self.scale), tf.int32)
        else:
            size = [int(round(d * s)) for d, s in zip(static, self.scale)]
        resize = tf.raw_ops.ResizeBilinear if self.method == "bilinear" else tf.raw_ops.ResizeNearestNeighbor
        return resize(images=inputs, size=size, align_corners=self.align_corners,
                      half_pixel_centers=self.half_pixel_centers)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, *(None if d is None else int(round(d * s)) for d, s in zip((h, w), self.scale)), c)

    def get_config(self):
        return {**super().get_config(), "scale": list(self.scale), "method": self.method,
                "align_corners": self.align_corners, "half_pixel_centers": self.half_pixel_centers}


@keras.utils.register_keras_serializable(package="mobile_isp")
class ConstantOp(keras.layers.Layer):
    """x <op> constant (or constant <op> x with `constant_first`): ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, POW.

    The constant is a non-trainable weight of shape `shape` (broadcast against [B, H, W, C]), so the
    model's JSON stays small and the weights file carries the values.
    """

    OPS = {"add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "div": tf.divide, "max": tf.maximum,
           "min": tf.minimum, "pow": tf.pow}

    def __init__(self, op="add", shape=(), constant_first=False, **kwargs):
        super().__init__(**kwargs)
        if op not in self.OPS:
            raise ValueError(f"ConstantOp op must be one of {sorted(self.OPS)}, got {op!r}")
        self.op, self.shape, self.constant_first = op, tuple(int(d) for d in shape), bool(constant_first)
        self.constant = self.add_weight(name="constant", shape=self.shape, initializer="zeros", trainable=False)

    def call(self, inputs):
        a, b = (self.constant, inputs) if self.constant_first else (inputs, self.constant)
        return self.OPS[self.op](a, b)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "shape": list(self.shape),
                "constant_first": self.constant_first}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Binary(keras.layers.Layer):
    """Two tensors -> one, broadcasting [B, H, W, C] against [B, 1, 1, C]: DIV, MAXIMUM, MINIMUM or POW."""

    def __init__(self, op="div", **kwargs):
        super().__init__(**kwargs)
        if op not in ("div", "max", "min", "pow"):
            raise ValueError(f"Binary op must be div, max, min or pow, got {op!r}")
        self.op = op

    def call(self, inputs):
        return ConstantOp.OPS[self.op](inputs[0], inputs[1])

    def get_config(self):
        return {**super().get_config(), "op": self.op}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Unary(keras.layers.Layer):
    """One elementwise function of ONNX's: abs, neg, sqrt, exp, log, elu, hard_sigmoid (alpha, beta),
    hard_swish, clip (lo, hi). HardSigmoid is relu6(6*alpha*x + 6*beta) / 6 (MUL, ADD, RELU6, MUL);
    hard_swish x * relu6(x + 3) / 6 (TFLite fuses it into HARD_SWISH); clip MAXIMUM then MINIMUM."""

    FUNCTIONS = ("abs", "neg", "sqrt", "exp", "log", "elu", "hard_sigmoid", "hard_swish", "clip")

    def __init__(self, function="abs", alpha=0.0, beta=0.0, **kwargs):
        super().__init__(**kwargs)
        if function not in self.FUNCTIONS:
            raise ValueError(f"Unary function must be one of {self.FUNCTIONS}, got {function!r}")
        self.function, self.alpha, self.beta = function, float(alpha), float(beta)

    def call(self, x):
        f = self.function
        if f == "hard_sigmoid":
            return tf.nn.relu6(x * (6.0 * self.alpha) + 6.0 * self.beta) * (1.0 / 6.0)
        if f == "hard_swish":
            return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)
        if f == "clip":
            return tf.minimum(tf.maximum(x, self.alpha), self.beta)
        if f == "elu":
            return tf.nn.elu(x) if self.alpha == 1.0 else tf.where(x > 0, x, self.alpha * (tf.exp(x) - 1.0))
        return {"abs": tf.abs, "neg": tf.negative, "sqrt": tf.sqrt, "exp": tf.exp, "log": tf.math.log}[f](x)

    def get_config(self):
        return {**super().get_config(), "function": self.function, "alpha": self.alpha, "beta": self.beta}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Pad(keras.layers.Layer):
    """Pad H and W of [B, H, W, C]: `pads` = ((top, bottom), (left, right)); mode "constant" (PAD/PADV2
    with `value`) or "reflect" (MIRROR_PAD, edge pixel not repeated)."""

    def __init__(self, pads=((0, 0), (0, 0)), mode="constant", value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.pads = tuple(tuple(int(p) for p in pair) for pair in pads)
        self.mode, self.value = mode, float(value)

    def call(self, x):
        paddings = [[0, 0], list(self.pads[0]), list(self.pads[1]), [0, 0]]
        if self.mode == "reflect":
            return tf.pad(x, paddings, mode="REFLECT")
        return tf.pad(x, paddings, constant_values=self.value)

    def get_config(self):
        return {**super().get_config(), "pads": [list(p) for p in self.pads], "mode": self.mode, "value": self.value}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Reduce(keras.layers.Layer):
    """MEAN / REDUCE_MAX / REDUCE_MIN / SUM over constant NHWC `axes`, keepdims or not."""

    def __init__(self, op="mean", axes=(1, 2), keepdims=True, **kwargs):
        super().__init__(**kwargs)
        self.op, self.axes, self.keepdims = op, tuple(int(a) for a in axes), bool(keepdims)

    def call(self, x):
        reduce = {"mean": tf.reduce_mean, "max": tf.reduce_max, "min": tf.reduce_min, "sum": tf.reduce_sum}[self.op]
        return reduce(x, axis=list(self.axes), keepdims=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "op": self.op, "axes": list(self.axes), "keepdims": self.keepdims}


@keras.utils.register_keras_serializable(package="mobile_isp")
class Slice(keras.layers.Layer):
    """x[begin:end:step] along one NHWC `axis` (STRIDED_SLICE, 4-D); end None = to the end."""

    def __init__(self, axis=3, begin=0, end=None, step=1, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.begin, self.end, self.step = int(axis), int(begin), end if end is None else int(end), int(step)

    def call(self, x):
        index = [slice(None)] * len(x.shape)
        index[self.axis] = slice(self.begin, self.end, self.step)
        return x[tuple(index)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "begin": self.begin, "end": self.end, "step": self.step}


CUSTOM_OBJECTS = {cls.__name__: cls for cls in (DepthToSpace, SpaceToDepth, Resize, ConstantOp, Binary, Unary,
                                                Pad, Reduce, Slice)}
