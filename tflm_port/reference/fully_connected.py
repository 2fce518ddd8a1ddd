"""FULLY_CONNECTED (int8 / int4 weights, TFLite's sparse encoding) and SUB8_FULLY_CONNECTED (the
packed sub-8-bit custom op): one integer kernel once the weight matrix is known; and the float32
FULLY_CONNECTED of an unquantized model."""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
from tflm_port import packing, sparse
from tflm_port.reference.common import MAX_WORK, TT, Op, activation_range, per_sample_shape
from tflm_port.reference.exact import F64_EXACT, exact_plan
from tflm_port.reference.fixedpoint import Requant, channel_multipliers
from tflm_port.tflite_io import TENSOR_TYPE_NAMES, buffer_bytes, custom_options, quant_params, schema, tensor_data


class FullyConnected(Op):
    """Shared by FULLY_CONNECTED and SUB8_FULLY_CONNECTED once the integer weights are known.

    The input zero point and bias fold into one per-output offset ``bias - zp_in * sum_i w``; the
    product runs on float BLAS in exact chunks (``exact.exact_plan``)."""

    def __init__(self, w_int, bias, s_in, zp_in, s_w, s_out, zp_out, act_min, act_max, inputs, outputs, out_shape,
                 rounding="tflm"):
        self.out_features, self.in_features = w_int.shape
        w64 = w_int.astype(np.int64)
        self.colsum = w64.sum(axis=1)
        offset = -int(zp_in) * self.colsum
        if bias is not None:
            offset = offset + bias.astype(np.int64)
        self.offset = offset
        self.mult, self.shift = channel_multipliers(s_in, s_w, s_out, rounding)
        if len(self.mult) == 1:
            self.mult, self.shift = self.mult[0], self.shift[0]
        self.rqf = Requant(self.mult, self.shift, rounding)
        self.zp_out, self.act_min, self.act_max = int(zp_out), int(act_min), int(act_max)
        # ReLU-like clamp (act_min == zp_out): negative accumulators always give act_min
        self.relu_like = self.act_min >= self.zp_out
        self.inputs, self.outputs, self.out_shape = inputs, outputs, out_shape
        plan = exact_plan(w64, offset)
        if plan:
            self.dtype = np.float32
            self.parts = [(a, b, np.ascontiguousarray(w64[:, a:b].T.astype(np.float32))) for a, b in plan]
        else:  # float64 holds every int32 accumulator exactly (bounded by 2^53)
            bound = int((np.abs(w64).sum(axis=1) * 128).max()) + int(np.abs(offset).max())
            if bound >= F64_EXACT:  # pragma: no cover - needs K > 2^38
                raise UserError("fully connected layer too large for the exact float64 product")
            self.dtype = np.float64
            self.parts = [(0, self.in_features, np.ascontiguousarray(w64.T.astype(np.float64)))]
        self.offset_f = offset.astype(self.dtype)

    def forward(self, xf: np.ndarray) -> np.ndarray:
        """xf: float32 [n, in] holding int8 values -> float32 [n, out] holding int8 values."""
        if len(self.parts) == 1:
            a, b, wt = self.parts[0]
            xin = xf if (a == 0 and b == self.in_features) else xf[:, a:b]
            acc = np.matmul(xin if xin.dtype == wt.dtype else xin.astype(wt.dtype), wt)
            acc += self.offset_f
        else:
            acc = np.array(self.offset_f, np.float64)
            for a, b, wt in self.parts:
                acc = acc + np.matmul(xf[:, a:b], wt)  # float32 exact part, summed in float64
        zp = self.zp_out
        if self.relu_like:
            np.maximum(acc, 0, out=acc)
            u = self.rqf.nonneg(acc.astype(np.int64))
            np.minimum(u, self.act_max - zp, out=u)
            y = u.astype(np.float32)
            if zp:
                y += np.float32(zp)
            return y
        u = self.rqf.signed(acc)
        np.clip(u, self.act_min - zp, self.act_max - zp, out=u)
        y = u.astype(np.float32)
        if zp:
            y += np.float32(zp)
        return y

    def __call__(self, env, n):
        x = env[self.inputs[0]].reshape(-1, self.in_features)
        y = self.forward(x.astype(np.float32))
        env[self.outputs[0]] = y.astype(np.int8).reshape((n,) + self.out_shape)


class FloatFullyConnected(Op):
    """FULLY_CONNECTED on float32 tensors (the float model, as TFLiteConverter writes it without
    quantization): y = x W^T + b, fused ReLU/RELU6 or none. Float arithmetic: not bit-exact with any
    particular runtime, only close (it is the reference for the float model's numbers)."""

    def __init__(self, w, bias, act, inputs, outputs, out_shape):
        self.out_features, self.in_features = w.shape
        self.wt = np.ascontiguousarray(w.T.astype(np.float32))
        self.bias = None if bias is None else bias.astype(np.float32)
        self.act = act
        self.inputs, self.outputs, self.out_shape = inputs, outputs, out_shape

    def __call__(self, env, n):
        x = env[self.inputs[0]].reshape(-1, self.in_features).astype(np.float32)
        y = x @ self.wt
        if self.bias is not None:
            y += self.bias
        if self.act == schema.ActivationFunctionType.RELU:
            np.maximum(y, 0, out=y)
        elif self.act == schema.ActivationFunctionType.RELU6:
            np.clip(y, 0, 6, out=y)
        env[self.outputs[0]] = y.reshape((n,) + self.out_shape)


def io_quant(model, T, ins, outs, where):
    """(s_in, zp_in, s_out, zp_out, bias) of an int8 -> int8 weighted operator."""
    x_t, o_t = T[ins[0]], T[outs[0]]
    if x_t.type != TT.INT8 or o_t.type != TT.INT8:
        raise UserError(f"{where}: needs int8 input/output, got {TENSOR_TYPE_NAMES.get(x_t.type)}/"
                        f"{TENSOR_TYPE_NAMES.get(o_t.type)}")
    s_in, zp_in, _ = quant_params(x_t)
    s_out, zp_out, _ = quant_params(o_t)
    bias = None
    if len(ins) > 2 and ins[2] >= 0:
        bias = tensor_data(model, T[ins[2]])
    return float(s_in[0]), int(zp_in[0]), float(s_out[0]), int(zp_out[0]), bias


def build_fully_connected(model, T, op, ins, outs, where, rounding):
    w_t = T[ins[1]]
    if w_t.type == TT.FLOAT32 and T[ins[0]].type == TT.FLOAT32 and T[outs[0]].type == TT.FLOAT32:
        w = tensor_data(model, w_t)
        if w is None:
            raise UserError(f"{where}: weights are not constant")
        bias = tensor_data(model, T[ins[2]]) if len(ins) > 2 and ins[2] >= 0 else None
        opt = op.builtinOptions
        act = opt.fusedActivationFunction if opt is not None else 0
        if act not in (schema.ActivationFunctionType.NONE, schema.ActivationFunctionType.RELU,
                       schema.ActivationFunctionType.RELU6):
            raise UserError(f"{where}: fused activation {act} not supported")
        return FloatFullyConnected(w.reshape(w.shape[0], -1), bias, act, ins, outs, per_sample_shape(T[outs[0]]))
    if w_t.type not in (TT.INT8, TT.INT4):
        raise UserError(f"{where}: weights type {TENSOR_TYPE_NAMES.get(w_t.type)} not supported (INT8/INT4 only)")
    if w_t.sparsity is not None:   # TFLite's standard sparse encoding: densify (validated)
        w = sparse.decode_tflite_sparsity(w_t, np.frombuffer(buffer_bytes(model, w_t.buffer) or b"", np.int8),
                                          where)
    else:
        w = tensor_data(model, w_t)
    if w is None:
        raise UserError(f"{where}: weights are not constant")
    s_w, zp_w, _ = quant_params(w_t)
    if np.any(zp_w != 0):
        raise UserError(f"{where}: non-zero weight zero point")
    s_in, zp_in, s_out, zp_out, bias = io_quant(model, T, ins, outs, where)
    opt = op.builtinOptions
    act = opt.fusedActivationFunction if opt is not None else 0
    amin, amax = activation_range(act, s_out, zp_out)
    return FullyConnected(w.reshape(w.shape[0], -1), bias, s_in, zp_in, s_w, s_out, zp_out, amin, amax,
                          ins, outs, per_sample_shape(T[outs[0]]), rounding)


def build_sub8_fully_connected(model, T, op, ins, outs, where, rounding):
    o = custom_options(op)
    for key in ("version", "bits", "layout", "in_features", "out_features", "activation"):
        if key not in o:
            raise UserError(f"{where}: custom options lack '{key}'")
    if o["version"] != 1:
        raise UserError(f"{where}: custom op version {o['version']} not supported (1)")
    try:
        bits, layout, nin, nout = int(o["bits"]), int(o["layout"]), int(o["in_features"]), int(o["out_features"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: custom options bits/layout/in_features/out_features must be integers") from None
    if not (1 <= nin and 1 <= nout and nin * nout <= MAX_WORK):
        raise UserError(f"{where}: {nout} x {nin} weights (each must be >= 1, product <= {MAX_WORK})")
    w_t = T[ins[1]]
    raw = tensor_data(model, w_t)
    if raw is None or w_t.type != TT.UINT8:
        raise UserError(f"{where}: packed weights must be a constant UINT8 tensor")
    if layout in sparse.SPARSE_LAYOUTS:   # N:M / block-sparse rows: same integer matrix, zeros restored
        w = sparse.unpack(raw.reshape(-1), bits, nout, nin, layout, o, where)
    else:
        w = packing.unpack(raw.reshape(-1), bits, nout, nin, layout)
    s_w, zp_w, _ = quant_params(w_t)
    s_in, zp_in, s_out, zp_out, bias = io_quant(model, T, ins, outs, where)
    act = {"NONE": schema.ActivationFunctionType.NONE, "RELU": schema.ActivationFunctionType.RELU}.get(o["activation"])
    if act is None:
        raise UserError(f"{where}: activation '{o['activation']}' not supported")
    amin, amax = activation_range(act, s_out, zp_out)
    return FullyConnected(w, bias, s_in, zp_in, s_w, s_out, zp_out, amin, amax, ins, outs,
                          per_sample_shape(T[outs[0]]), rounding)
