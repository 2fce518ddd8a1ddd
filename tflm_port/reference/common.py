"""What the operator modules share: the operator base class, shapes, the fused-activation clamp,
padding and sliding windows, and the per-sample work limit."""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
from tflm_port.reference.fixedpoint import Requant, channel_multipliers
from tflm_port.tflite_io import ACTIVATION_NAMES, quant_params, schema, tensor_data

TT = schema.TensorType
MAX_WORK = 1 << 22  # elements per sample an operator may touch (im2col columns, windows): bounds memory


class Op:
    """One operator of the graph, built once from the model (TFLM's Init + Prepare); calling it
    reads its inputs from ``env`` (tensor index -> array of n samples) and writes its outputs."""
    inputs: list[int]
    outputs: list[int]

    def __call__(self, env: dict, n: int) -> None:
        raise NotImplementedError


def per_sample_shape(model_tensor) -> tuple[int, ...]:
    shape = [int(s) for s in (model_tensor.shape if model_tensor.shape is not None else [])]
    return tuple(shape[1:]) if shape else ()


def np_type(t):
    """numpy dtype of a tensor (or of a TensorType value)."""
    t = getattr(t, "type", t)
    return {TT.INT8: np.int8, TT.FLOAT32: np.float32, TT.UINT8: np.uint8, TT.INT16: np.int16}.get(t, np.int8)


def activation_range(act: int, scale: float, zp: int, qmin=-128, qmax=127) -> tuple[int, int]:
    def q(v):
        return zp + int(np.round(np.float32(v) / np.float32(scale)))  # |v/scale| never a .5 tie here

    A = schema.ActivationFunctionType
    if act == A.NONE:
        return qmin, qmax
    if act == A.RELU:
        return max(qmin, q(0.0)), qmax
    if act == A.RELU6:
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == A.RELU_N1_TO_1:
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise UserError(f"activation {ACTIVATION_NAMES.get(act, act)} not supported by the reference")


def check_work(op: str, work: int, padded: int) -> None:
    """Refuse an operator whose per-sample work (or padded input) would not fit in memory."""
    if work > MAX_WORK or padded > MAX_WORK:
        raise UserError(f"{op}: {max(work, padded)} elements per sample, above the reference's limit of {MAX_WORK}")


def same_padding(in_size, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    if padding == schema.Padding.SAME:
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - eff + stride) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total - total // 2


def windows(x, kh, kw, sh, sw, dh, dw, pads, fill):
    """x [N,H,W,C] -> padded windows [N, OH, OW, C, KH, KW] (a strided view where possible)."""
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return v[:, ::sh, ::sw, :, ::dh, ::dw]


def optional_bias(model, tensors, op_inputs):
    """The bias tensor's int64 data, or None when the operator has none."""
    if len(op_inputs) > 2 and op_inputs[2] >= 0:
        b = tensor_data(model, tensors[op_inputs[2]])
        return None if b is None else b.astype(np.int64)
    return None


class WindowedOp(Op):
    """What CONV_2D and DEPTHWISE_CONV_2D share once the weights are read: strides, dilations and
    padding, the input zero point, the per-channel requantization (multiplier as TFLM computes it for
    convolutions, in both rounding flavours), the output zero point and the fused-activation clamp."""

    def _prepare_windowed(self, op, tensors, cout: int, rounding: str) -> None:
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, w_t, o_t = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        opt = op.builtinOptions
        self.sh, self.sw = opt.strideH, opt.strideW
        self.dh, self.dw = max(opt.dilationHFactor, 1), max(opt.dilationWFactor, 1)
        self.padding = opt.padding
        s_in, zp_in, _ = quant_params(x_t)
        s_w, _, _ = quant_params(w_t)
        s_out, zp_out, _ = quant_params(o_t)
        self.zp_in, self.zp_out = int(zp_in[0]), int(zp_out[0])
        self.mult, self.shift = channel_multipliers(s_in[0], np.broadcast_to(s_w, (cout,)), s_out[0])
        self.rq = Requant(self.mult, self.shift, rounding)
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), self.zp_out)
        self.out_shape = per_sample_shape(o_t)
