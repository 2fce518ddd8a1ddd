"""Integer reference interpreter in numpy for the .tflite files ``tflm_port.convert`` writes.

Runs a whole batch of inputs at once (vectorized over the batch), with TFLite's integer arithmetic:
int32 accumulation, requantization by a 31-bit fixed-point multiplier and a power-of-two shift,
implemented here from the published arithmetic. Two arithmetic flavours (``rounding=``):

* ``"tflm"`` (default; TFLite Micro and the firmware contract): FC multiplier from
  ``double(s_in) * double(s_w) / double(s_out)``; ``SaturatingRoundingDoublingHighMul`` then
  ``RoundingDivideByPOT``, both rounding half away from zero.
* ``"tflite"`` (tf.lite / LiteRT builtin CPU kernels, ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``): FC
  multiplier from ``double(float32(s_in * s_w)) / double(s_out)`` (the input x weight scale product
  rounded to float32 first), same high multiply, and the final shift rounds ties toward +infinity.
  Measured in docs/converter.md.

Both flavours are evaluated as ONE multiply-add-shift on |acc| in int64 (the two roundings fold into
one constant, see ``Requant``), bit-identical to the two-step definition.

Exact integer matrix products use float BLAS: each FC layer splits its inputs into chunks whose
worst-case partial sums (128 * sum|w| + |offset|) stay below 2^24, so float32 sums are exact
integers whatever order BLAS adds in; several chunks are added in float64 (exact below 2^53).
The input zero point and bias fold into one per-output offset ``bias - zp_in * sum_i w``.
A graph that is a chain of FC layers (plus reshapes) runs fused: activations stay float32 between
layers and rows are processed in cache-sized blocks, optionally on several threads.

Supported operators: FULLY_CONNECTED (INT8 / INT4 weights), SUB8_FULLY_CONNECTED (custom),
RESHAPE, QUANTIZE, DEQUANTIZE, SOFTMAX (int8), CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from training.errors import UserError
from tflm_port import packing, sparse
from tflm_port.tflite_io import (ACTIVATION_NAMES, CUSTOM_CODE, TENSOR_TYPE_NAMES, custom_options, load_model,
                                 op_name, quant_params, read_bytes, schema, tensor_data, tensor_name)

TT = schema.TensorType
CHUNK_K = 1024
BLOCK_ROWS = 2048  # generic (multi-op) path
FUSED_ROWS = 512  # fused FC chain: rows per block (tuned on the 2-core dev machine)
F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
MAX_WORK = 1 << 22  # elements per sample an operator may touch (im2col columns, windows): bounds memory
# operators implemented in their own modules: name -> module with build(reference, op, ins, outs, where)
OP_MODULES = {"UNIDIRECTIONAL_SEQUENCE_LSTM": "tflm_port.lstm"}


# --------------------------------------------------------------------------- fixed-point arithmetic

def quantize_multiplier(m: float) -> tuple[int, int]:
    """Real multiplier -> (q31 mantissa, shift) with m ~= q * 2^(shift-31); TFLite's convention."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    qf = math.floor(q * (1 << 31) + 0.5)  # q > 0: round half away from zero
    if qf == (1 << 31):
        qf //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(qf), int(shift)


def srdhm(a: np.ndarray, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul on int64 arrays holding int32 values; b >= 0 (a multiplier)."""
    ab = a * np.asarray(b, dtype=np.int64)
    q = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C integer division by 2^31 truncates toward zero
    return np.where(q >= 0, q >> 31, -((-q) >> 31))


def rdbypot(x: np.ndarray, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def multiply_by_quantized_multiplier(x: np.ndarray, mult, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier: RoundingDivideByPOT(SRDHM(x << left, mult), right)."""
    if np.ndim(mult) == 0 and np.ndim(shift) == 0:
        return _mbqm_scalar(x, int(mult), int(shift))
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbypot(srdhm(x << left, mult), right)


def _mbqm_scalar(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """Same arithmetic for a per-tensor multiplier, branch-free and in place (the hot path).
    ``x`` (int64) is consumed."""
    ab = np.array(x, dtype=np.int64, copy=True)
    if shift > 0:
        ab <<= shift
    ab *= mult                                        # |x| < 2^31, mult < 2^31: fits int64
    neg = ab >> 63                                    # -1 where negative, else 0
    ab += (1 << 30)
    ab += neg & (1 - (1 << 31))                       # nudge 1 - 2^30 for negative products
    ab += (ab >> 63) & ((1 << 31) - 1)                # truncating division by 2^31 ...
    ab >>= 31                                         # ... = srdhm result
    e = max(-shift, 0)
    if e:
        mask = (1 << e) - 1
        thr = (ab >> 63)
        np.negative(thr, out=thr)
        thr += mask >> 1                              # threshold: mask/2 (+1 if negative)
        rem = ab & mask
        ab >>= e
        ab += rem > thr
    return ab


def multiply_by_quantized_multiplier_tieup(x: np.ndarray, mult, shift) -> np.ndarray:
    """TFLite builtin CPU kernels (ruy) variant: same high multiply, but the final shift rounds ties
    toward +infinity instead of away from zero. Differs from TFLM only on negative exact ties."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    h = srdhm(x << left, mult)
    return (h + ((np.int64(1) << right) >> 1)) >> right


ROUNDING = {"tflm": multiply_by_quantized_multiplier, "tflite": multiply_by_quantized_multiplier_tieup}


class Requant:
    """Fused requantization ``acc -> MultiplyByQuantizedMultiplier(acc, mult, shift)`` for one flavour.

    With u = |acc|, P = u * (mult << left), e = right shift, h = 2^(e-1) (0 if e = 0), the two-step
    definition equals one shift because floor((floor(A / 2^31) + b) / 2^e) = floor((A + b 2^31) / 2^(31+e)):

    * acc >= 0 (both flavours): ``(P + 2^30 + h 2^31) >> (31 + e)``
    * acc < 0, "tflm" (ties away from zero): ``-((P + 2^30 - 1 + h 2^31) >> (31 + e))``
    * acc < 0, "tflite" (final ties toward +inf): ``-((P + 2^30 - 1 + (h - 1) 2^31) >> (31 + e))``, e > 0;
      ``-((P + 2^30 - 1) >> 31)`` for e = 0.

    ``mult``/``shift`` may be per-channel arrays (broadcast over the last axis). Valid while
    |acc| * (mult << left) < 2^63, i.e. for every int32 accumulator when shift <= 0.
    """

    def __init__(self, mult, shift, rounding: str = "tflm"):
        if rounding not in ROUNDING:
            raise UserError(f"rounding '{rounding}' unknown (use one of {', '.join(ROUNDING)})")
        mult = np.asarray(mult, np.int64)
        shift = np.asarray(shift, np.int64)
        left = np.maximum(shift, 0)
        e = np.maximum(-shift, 0)
        half = np.where(e > 0, np.int64(1) << np.maximum(e - 1, 0), 0)
        self.m = mult << left
        self.s = 31 + e
        self.c_pos = (1 << 30) + half * (1 << 31)
        if rounding == "tflm":
            self.c_neg = self.c_pos - 1
        else:
            self.c_neg = np.where(e > 0, (1 << 30) - 1 + (half - 1) * (1 << 31), (1 << 30) - 1)
        self.dc = self.c_pos - self.c_neg  # subtracted where acc < 0
        self.left_max = int(np.max(left)) if left.size else 0

    def nonneg(self, u: np.ndarray) -> np.ndarray:
        """u: int64 >= 0, consumed in place."""
        u *= self.m
        u += self.c_pos
        u >>= self.s
        return u

    def signed(self, acc: np.ndarray) -> np.ndarray:
        """acc: float (integer-valued, exact) or int64 array; returns a new int64 array."""
        neg = acc < 0
        u = np.abs(acc).astype(np.int64)
        u *= self.m
        u += self.c_pos
        if np.ndim(self.dc) == 0 and self.dc == 1:
            u -= neg
        else:
            u -= neg * self.dc
        u >>= self.s
        np.negative(u, out=u, where=neg)
        return u


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


def exact_int_matmul(x: np.ndarray, wt_chunks: list[tuple[slice, np.ndarray]]) -> np.ndarray:
    """x int8-valued [N, K]; wt_chunks: (K-slice, float32 [k, out]) -> exact int64 [N, out]."""
    acc = None
    for sl, wt in wt_chunks:
        part = np.matmul(x[:, sl].astype(np.float32), wt).astype(np.int64)
        acc = part if acc is None else acc + part
    return acc


def _chunks(w_int: np.ndarray) -> list[tuple[slice, np.ndarray]]:
    """w_int [out, K] -> float32 transposed chunks for exact_int_matmul (|x| <= 128: <= 1024 terms
    of <= 2^14 stay below 2^24)."""
    k = w_int.shape[1]
    return [(slice(s, min(s + CHUNK_K, k)), np.ascontiguousarray(w_int[:, s:s + CHUNK_K].T.astype(np.float32)))
            for s in range(0, k, CHUNK_K)]


def exact_plan(w_int: np.ndarray, offset: np.ndarray, x_abs_max: int = 128) -> list[tuple[int, int]]:
    """Split K into [start, stop) chunks such that every partial sum of x*w over a chunk plus the
    offset stays below 2^24 (exact in float32) for |x| <= x_abs_max."""
    aw = np.abs(w_int.astype(np.int64)) * x_abs_max
    off = int(np.max(np.abs(offset))) if np.size(offset) else 0
    if off >= F32_EXACT:
        return []  # the float32 path cannot hold the offset: caller uses float64
    csum = np.cumsum(aw, axis=1)  # [out, K]
    k = w_int.shape[1]
    out, start = [], 0
    while start < k:
        base = csum[:, start - 1] if start else 0
        room = (csum - (base[:, None] if start else 0)).max(axis=0)  # worst row, chunk [start, j]
        ok = np.nonzero(room[start:] + off < F32_EXACT)[0]
        if ok.size == 0:
            return []
        stop = start + int(ok[-1]) + 1
        out.append((start, stop))
        start = stop
    return out


# --------------------------------------------------------------------------- operators

# Custom operators defined in their own modules: custom code -> builder(reference, op, ins, outs, where)
# returning an _Op. A module in CUSTOM_OP_MODULES registers its builders when imported (on first use).
CUSTOM_BUILDERS: dict = {}
CUSTOM_OP_MODULES = ("tflm_port.fc_a4",)


def custom_builder(name: str):
    if name not in CUSTOM_BUILDERS:
        import importlib

        for mod in CUSTOM_OP_MODULES:
            importlib.import_module(mod)
    return CUSTOM_BUILDERS.get(name)


class _Op:
    inputs: list[int]
    outputs: list[int]
    rq = staticmethod(multiply_by_quantized_multiplier)  # requantization; Reference sets it per rounding

    def __call__(self, env: dict, n: int) -> None:
        raise NotImplementedError


def _per_sample_shape(model_tensor) -> tuple[int, ...]:
    shape = [int(s) for s in (model_tensor.shape if model_tensor.shape is not None else [])]
    return tuple(shape[1:]) if shape else ()


class _FullyConnected(_Op):
    """Shared by FULLY_CONNECTED and SUB8_FULLY_CONNECTED once the integer weights are known."""

    def __init__(self, w_int, bias, s_in, zp_in, s_w, s_out, zp_out, act_min, act_max, inputs, outputs, out_shape,
                 rounding="tflm"):
        self.out_features, self.in_features = w_int.shape
        w64 = w_int.astype(np.int64)
        self.colsum = w64.sum(axis=1)
        offset = -int(zp_in) * self.colsum
        if bias is not None:
            offset = offset + bias.astype(np.int64)
        self.offset = offset
        s_w = np.atleast_1d(np.asarray(s_w, dtype=np.float32))
        if rounding == "tflite":  # tf.lite: float32 product s_in * s_w, then / s_out in double
            reals = [float(np.float64(np.float32(s_in) * sw) / np.float64(np.float32(s_out))) for sw in s_w]
        else:  # TFLM: double(s_in) * double(s_w) / double(s_out)
            reals = [float(np.float64(np.float32(s_in)) * np.float64(sw) / np.float64(np.float32(s_out))) for sw in s_w]
        mults = [quantize_multiplier(r) for r in reals]
        self.mult = np.array([m for m, _ in mults], np.int64)
        self.shift = np.array([s for _, s in mults], np.int64)
        if len(mults) == 1:
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


class _FloatFullyConnected(_Op):
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


class _Reshape(_Op):
    def __init__(self, inputs, outputs, out_shape):
        self.inputs, self.outputs, self.out_shape = inputs, outputs, out_shape

    def __call__(self, env, n):
        env[self.outputs[0]] = env[self.inputs[0]].reshape((n,) + self.out_shape)


class _ShapeArith(_Op):
    """SHAPE/STRIDED_SLICE/PACK on int32 shape tensors: RESHAPE uses its output tensor's static
    shape instead, so these compute nothing."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, env, n):
        for o in self.outputs:
            env[o] = None


class _Quantize(_Op):
    def __init__(self, in_t, out_t, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs
        s_out, zp_out, _ = quant_params(out_t)
        self.s_out, self.zp_out = np.float32(s_out[0]), int(zp_out[0])
        self.float_in = in_t.type == TT.FLOAT32
        if not self.float_in:
            s_in, zp_in, _ = quant_params(in_t)
            self.zp_in = int(zp_in[0])
            self.mult, self.shift = quantize_multiplier(float(np.float64(s_in[0]) / np.float64(s_out[0])))

    def __call__(self, env, n):
        x = env[self.inputs[0]]
        if self.float_in:
            q = _round_half_away(x.astype(np.float32) / self.s_out).astype(np.int64) + self.zp_out
        else:
            q = self.rq(x.astype(np.int64) - self.zp_in, self.mult, self.shift) + self.zp_out
        env[self.outputs[0]] = np.clip(q, -128, 127).astype(np.int8)


def _round_half_away(x):
    """Exact round half away from zero (C round), float in, same float type out:
    r = trunc(x); d = x - r (exact: fractional bits only); r + trunc(2 d) adds +-1 iff |d| >= 0.5.
    (floor(x + 0.5) is not exact: 0.49999997f + 0.5f rounds to 1.0f.)"""
    x = np.asarray(x)
    r = np.trunc(x)
    d = x - r
    d += d
    np.trunc(d, out=d)
    r += d
    return r


def quantize_f32(x: np.ndarray, scale: float, zp: int, out: np.ndarray | None = None) -> np.ndarray:
    """float32 [..] -> float32 holding int8 values: clamp(round_half_away(x / scale) + zp, -128, 127).
    The clamp is applied to x / scale first: its bounds are integers, so rounding stays inside them.
    Rounding as in _round_half_away, in place (``out`` may be given: same shape, float32)."""
    r = np.divide(x, np.float32(scale), dtype=np.float32, out=out)
    np.clip(r, np.float32(-128 - zp), np.float32(127 - zp), out=r)
    d = r - np.trunc(r)          # exact fraction
    r -= d                       # trunc
    d += d
    np.trunc(d, out=d)           # +-1 iff |fraction| >= 0.5
    r += d
    if zp:
        r += np.float32(zp)
    return r


QUANT_ROWS = 128  # float -> int8 quantization sub-block (its temporaries stay in L2)


class _Dequantize(_Op):
    def __init__(self, in_t, inputs, outputs):
        s, zp, _ = quant_params(in_t)
        self.s, self.zp = np.float32(s[0]), int(zp[0])
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, env, n):
        env[self.outputs[0]] = ((env[self.inputs[0]].astype(np.int32) - self.zp).astype(np.float32) * self.s)


def _check_work(op: str, work: int, padded: int) -> None:
    """Refuse an operator whose per-sample work (or padded input) would not fit in memory."""
    if work > MAX_WORK or padded > MAX_WORK:
        raise UserError(f"{op}: {max(work, padded)} elements per sample, above the reference's limit of {MAX_WORK}")


def _same_padding(in_size, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    if padding == schema.Padding.SAME:
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - eff + stride) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2, total - total // 2


def _windows(x, kh, kw, sh, sw, dh, dw, pads, fill):
    """x [N,H,W,C] -> padded windows [N, OH, OW, C, KH, KW] (a strided view where possible)."""
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return v[:, ::sh, ::sw, :, ::dh, ::dw]


class _Conv2D(_Op):
    def __init__(self, model, op, tensors):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, w_t, o_t = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        opt = op.builtinOptions
        w = tensor_data(model, w_t).astype(np.int64)  # [Cout, KH, KW, Cin]
        self.cout, self.kh, self.kw, self.cin = w.shape
        self.sh, self.sw = opt.strideH, opt.strideW
        self.dh, self.dw = max(opt.dilationHFactor, 1), max(opt.dilationWFactor, 1)
        self.padding = opt.padding
        s_in, zp_in, _ = quant_params(x_t)
        s_w, _, _ = quant_params(w_t)
        s_out, zp_out, _ = quant_params(o_t)
        self.zp_in = int(zp_in[0])
        wmat = w.transpose(0, 1, 2, 3).reshape(self.cout, -1)  # order (kh, kw, cin)
        self.chunks = _chunks(wmat)
        offset = -self.zp_in * wmat.sum(axis=1)
        b = tensor_data(model, tensors[op.inputs[2]]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if b is not None:
            offset = offset + b.astype(np.int64)
        self.offset = offset
        s_w = np.broadcast_to(s_w, (self.cout,))
        ms = [quantize_multiplier(float(np.float64(s_in[0]) * np.float64(sw) / np.float64(s_out[0]))) for sw in s_w]
        self.mult = np.array([m for m, _ in ms], np.int64)
        self.shift = np.array([s for _, s in ms], np.int64)
        self.zp_out = int(zp_out[0])
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), self.zp_out)
        self.out_shape = _per_sample_shape(o_t)

    def __call__(self, env, n):
        x = env[self.inputs[0]]
        _, h, w_, _ = x.shape
        oh, pt, pb = _same_padding(h, self.kh, self.sh, self.dh, self.padding)
        ow, pl, pr = _same_padding(w_, self.kw, self.sw, self.dw, self.padding)
        _check_work("CONV_2D", oh * ow * self.kh * self.kw * self.cin, h * w_)
        win = _windows(x, self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, ((pt, pb), (pl, pr)), self.zp_in)
        win = win[:, :oh, :ow]
        cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * oh * ow, -1)
        acc = exact_int_matmul(cols, self.chunks) + self.offset
        y = self.rq(acc, self.mult, self.shift) + self.zp_out
        env[self.outputs[0]] = np.clip(y, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)


class _DepthwiseConv2D(_Op):
    def __init__(self, model, op, tensors):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, w_t, o_t = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        opt = op.builtinOptions
        w = tensor_data(model, w_t).astype(np.int64)  # [1, KH, KW, Cout]
        _, self.kh, self.kw, self.cout = w.shape
        self.w = w[0]
        self.dm = max(opt.depthMultiplier, 1)
        self.sh, self.sw = opt.strideH, opt.strideW
        self.dh, self.dw = max(opt.dilationHFactor, 1), max(opt.dilationWFactor, 1)
        self.padding = opt.padding
        s_in, zp_in, _ = quant_params(x_t)
        s_w, _, _ = quant_params(w_t)
        s_out, zp_out, _ = quant_params(o_t)
        self.zp_in = int(zp_in[0])
        b = tensor_data(model, tensors[op.inputs[2]]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        self.bias = b.astype(np.int64) if b is not None else np.zeros(self.cout, np.int64)
        s_w = np.broadcast_to(s_w, (self.cout,))
        ms = [quantize_multiplier(float(np.float64(s_in[0]) * np.float64(sw) / np.float64(s_out[0]))) for sw in s_w]
        self.mult = np.array([m for m, _ in ms], np.int64)
        self.shift = np.array([s for _, s in ms], np.int64)
        self.zp_out = int(zp_out[0])
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), self.zp_out)
        self.out_shape = _per_sample_shape(o_t)

    def __call__(self, env, n):
        x = env[self.inputs[0]].astype(np.int32) - self.zp_in  # padding with 0 == padding with zp_in
        if self.dm > 1:
            x = np.repeat(x, self.dm, axis=3)
        _, h, w_, _ = x.shape
        oh, pt, pb = _same_padding(h, self.kh, self.sh, self.dh, self.padding)
        ow, pl, pr = _same_padding(w_, self.kw, self.sw, self.dw, self.padding)
        _check_work("DEPTHWISE_CONV_2D", oh * ow * self.cout, (h + pt + pb) * (w_ + pl + pr) * x.shape[3])
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        acc = np.zeros((n, oh, ow, self.cout), np.int64)
        for i in range(self.kh):
            for j in range(self.kw):
                r0, c0 = i * self.dh, j * self.dw
                patch = xp[:, r0:r0 + (oh - 1) * self.sh + 1:self.sh, c0:c0 + (ow - 1) * self.sw + 1:self.sw, :]
                acc += patch * self.w[i, j]
        acc += self.bias
        y = self.rq(acc, self.mult, self.shift) + self.zp_out
        env[self.outputs[0]] = np.clip(y, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)


class _AveragePool2D(_Op):
    def __init__(self, op, tensors):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        opt = op.builtinOptions
        o_t = tensors[op.outputs[0]]
        self.fh, self.fw, self.sh, self.sw, self.padding = opt.filterHeight, opt.filterWidth, opt.strideH, opt.strideW, opt.padding
        s_out, zp_out, _ = quant_params(o_t)
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), int(zp_out[0]))
        self.out_shape = _per_sample_shape(o_t)

    def __call__(self, env, n):
        x = env[self.inputs[0]].astype(np.int64)
        _, h, w_, c = x.shape
        oh, pt, pb = _same_padding(h, self.fh, self.sh, 1, self.padding)
        ow, pl, pr = _same_padding(w_, self.fw, self.sw, 1, self.padding)
        _check_work("AVERAGE_POOL_2D", oh * ow * c * self.fh * self.fw, (h + pt + pb) * (w_ + pl + pr))
        win = _windows(x, self.fh, self.fw, self.sh, self.sw, 1, 1, ((pt, pb), (pl, pr)), 0)[:, :oh, :ow]
        ones = np.ones((1, h, w_, 1), np.int64)
        cnt = _windows(ones, self.fh, self.fw, self.sh, self.sw, 1, 1, ((pt, pb), (pl, pr)), 0)[:, :oh, :ow]
        acc = win.sum(axis=(4, 5))
        count = cnt.sum(axis=(4, 5))
        half = count // 2
        num = np.where(acc > 0, acc + half, acc - half)
        q = np.where(num >= 0, num // count, -((-num) // count))  # C division truncates
        env[self.outputs[0]] = np.clip(q, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)


class _SoftmaxInt8(_Op):
    """int8 -> int8 softmax as TFLite's reference kernel computes it (fixed-point exp, 5 integer bits)."""

    def __init__(self, op, tensors):
        from tflm_port import softmax_fixed

        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, o_t = tensors[op.inputs[0]], tensors[op.outputs[0]]
        s_in, _, _ = quant_params(x_t)
        s_out, zp_out, _ = quant_params(o_t)
        if o_t.type != TT.INT8:
            raise UserError("SOFTMAX: only int8 output is supported by the reference")
        self.impl = softmax_fixed.SoftmaxInt8(float(op.builtinOptions.beta), float(s_in[0]), int(zp_out[0]))

    def __call__(self, env, n):
        env[self.outputs[0]] = self.impl(env[self.inputs[0]])


# --------------------------------------------------------------------------- interpreter

_BLAS_CTL = []


def _blas_threads(n: int):
    """Context manager limiting BLAS threads (threadpoolctl when installed; it comes with
    scikit-learn, a dependency of audiomentations), else a no-op. Setting OPENBLAS_NUM_THREADS after
    numpy was imported has no effect, so the limit is applied here at call time."""
    import contextlib

    if not _BLAS_CTL:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS_CTL.append(ThreadpoolController())
        except Exception:  # pragma: no cover - optional
            _BLAS_CTL.append(None)
    ctl = _BLAS_CTL[0]
    if ctl is None:
        return contextlib.nullcontext()
    return ctl.limit(limits=n, user_api="blas")


class Reference:
    """Vectorized integer reference for one-subgraph, batch-1 .tflite models."""

    def __init__(self, model, name: str = "<model>", rounding: str = "tflm"):
        """``rounding``: "tflm" (default; TFLite Micro kernels and the firmware contract) or "tflite"
        (tf.lite / LiteRT builtin CPU kernels without XNNPACK: FC multiplier from the float32 product
        s_in * s_w, final shift ties toward +infinity). See the module docstring."""
        if rounding not in ROUNDING:
            raise UserError(f"rounding '{rounding}' unknown (use one of {', '.join(ROUNDING)})")
        self.rounding = rounding
        self.name = name
        self.model = model
        sg = model.subgraphs[0]
        self.tensors = sg.tensors
        if len(sg.inputs) != 1 or len(sg.outputs) != 1:
            raise UserError(f"{name}: reference supports one input and one output (got {len(sg.inputs)}, {len(sg.outputs)})")
        self.input_index, self.output_index = int(sg.inputs[0]), int(sg.outputs[0])
        it, ot = self.tensors[self.input_index], self.tensors[self.output_index]
        for t in (it, ot):
            if t.shape is None or len(t.shape) == 0 or int(t.shape[0]) != 1:
                raise UserError(f"{name}: tensor {tensor_name(t)} must have batch dimension 1")
        self.input_shape = _per_sample_shape(it)
        self.output_shape = _per_sample_shape(ot)
        self.input_dtype = _np_type(it)
        self.output_dtype = _np_type(ot)
        s, zp, _ = quant_params(it)
        self.input_quant = (float(s[0]), int(zp[0])) if len(s) else (0.0, 0)
        s, zp, _ = quant_params(ot)
        self.output_quant = (float(s[0]), int(zp[0])) if len(s) else (0.0, 0)
        self.ops = [self._build(op, k) for k, op in enumerate(sg.operators or [])]
        for op in self.ops:
            op.rq = ROUNDING[rounding]
        self.fc_chain = self._fc_chain()
        self.ends_in_softmax = bool(self.ops) and isinstance(self.ops[-1], _SoftmaxInt8)
        self._prepare()

    def _prepare(self) -> None:
        """Run one zero input through the graph once (TFLM's Prepare): a model whose operators do not
        fit together (shapes that disagree, a tensor read before it is written) fails here with one
        UserError, before any tool uses it or writes anything."""
        produced = {self.input_index}
        produced.update(i for i, t in enumerate(self.tensors) if self.model.buffers[t.buffer].data is not None
                        and len(self.model.buffers[t.buffer].data))
        for k, op in enumerate(self.ops):
            for i in op.inputs[:1]:
                if i not in produced:
                    raise UserError(f"{self.name}: operator {k} reads tensor {i} before any operator writes it")
            produced.update(op.outputs)
        if self.output_index not in produced:
            raise UserError(f"{self.name}: no operator writes the output tensor {self.output_index}")
        if int(np.prod(self.input_shape)) > MAX_WORK or int(np.prod(self.output_shape)) > MAX_WORK:
            raise UserError(f"{self.name}: input/output shapes {self.input_shape} / {self.output_shape} above "
                            f"the reference's limit of {MAX_WORK} elements per sample")
        try:
            y = self.run(np.zeros((1,) + self.input_shape, self.input_dtype))
        except UserError as e:
            raise UserError(f"{self.name}: {e}") from None
        except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError, AttributeError) as e:
            raise UserError(f"{self.name}: operators do not fit together ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
        if y.shape[1:] != self.output_shape:
            raise UserError(f"{self.name}: the graph computes an output of shape {y.shape[1:]}, the output tensor "
                            f"says {self.output_shape}")
        self.reset_state()

    def reset_state(self) -> None:
        """Stateful operators (LSTM) start their streams again: rows of the next run() are new streams."""
        for op in self.ops:
            if hasattr(op, "reset"):
                op.reset()

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>", rounding: str = "tflm") -> "Reference":
        return cls(load_model(data, name), name, rounding)

    @classmethod
    def from_file(cls, path: str | Path, rounding: str = "tflm") -> "Reference":
        return cls.from_bytes(read_bytes(path), str(path), rounding)

    # -- building
    def _build(self, op, k):
        model, T = self.model, self.tensors
        name = op_name(model, op)
        self._k = k
        ins = [int(i) for i in op.inputs]
        outs = [int(i) for i in op.outputs]
        where = f"{self.name}: operator {k} ({name})"
        try:
            self._check_arity(name, ins, outs, where)
            if name == "FULLY_CONNECTED":
                return self._build_fc(op, ins, outs, where)
            if name == CUSTOM_CODE:
                return self._build_sub8(op, ins, outs, where)
            if name in ("SHAPE", "STRIDED_SLICE", "PACK") and all(T[o].type == TT.INT32 for o in outs):
                return _ShapeArith(ins, outs)  # batch-size arithmetic feeding RESHAPE's shape input
            if name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
                return _Reshape(ins[:1], outs, _per_sample_shape(T[outs[0]]))
            if name == "QUANTIZE":
                return _Quantize(T[ins[0]], T[outs[0]], ins, outs)
            if name == "DEQUANTIZE":
                return _Dequantize(T[ins[0]], ins, outs)
            if name == "SOFTMAX":
                return _SoftmaxInt8(op, T)
            if name == "CONV_2D":
                return _Conv2D(model, op, T)
            if name == "DEPTHWISE_CONV_2D":
                return _DepthwiseConv2D(model, op, T)
            if name == "AVERAGE_POOL_2D":
                return _AveragePool2D(op, T)
            if custom_builder(name) is not None:
                return custom_builder(name)(self, op, ins, outs, where)
            if name in OP_MODULES:
                import importlib

                return importlib.import_module(OP_MODULES[name]).build(self, op, ins, outs, where)
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError, OverflowError, AttributeError) as e:
            # load_model checked the file's structure; what is left is an operator whose tensors or
            # options do not make sense together (e.g. weights of the wrong rank): one line, no traceback
            raise UserError(f"{where}: malformed operator ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
        raise UserError(f"{where}: operator not supported by the reference")

    # operator -> (minimum inputs, builtin options class name or None, options required)
    _ARITY = {"FULLY_CONNECTED": (2, "FullyConnectedOptionsT", False), CUSTOM_CODE: (2, None, False),
              "RESHAPE": (1, None, False), "SQUEEZE": (1, None, False), "EXPAND_DIMS": (1, None, False),
              "QUANTIZE": (1, None, False), "DEQUANTIZE": (1, None, False),
              "SOFTMAX": (1, "SoftmaxOptionsT", True), "CONV_2D": (2, "Conv2DOptionsT", True),
              "DEPTHWISE_CONV_2D": (2, "DepthwiseConv2DOptionsT", True),
              "AVERAGE_POOL_2D": (1, "Pool2DOptionsT", True)}

    def _check_arity(self, name, ins, outs, where):
        if name not in self._ARITY:
            return
        n_in, opt_cls, required = self._ARITY[name]
        if len(ins) < n_in or any(i < 0 for i in ins[:n_in]) or len(outs) != 1:
            raise UserError(f"{where}: needs {n_in}+ inputs and one output, has {len(ins)} inputs "
                            f"{ins[:8]} and {len(outs)} outputs")
        op = self.model.subgraphs[0].operators[self._k]
        opt = op.builtinOptions
        if opt is None and required:
            raise UserError(f"{where}: builtin options missing")
        if opt is not None and opt_cls is not None and type(opt).__name__ != opt_cls:
            raise UserError(f"{where}: builtin options are {type(opt).__name__[:-1]}, expected {opt_cls[:-1]}")
        for attr in ("strideH", "strideW", "filterHeight", "filterWidth", "dilationHFactor", "dilationWFactor"):
            v = getattr(opt, attr, 1)
            if not 1 <= v <= 4096:
                raise UserError(f"{where}: {attr} = {v} (must be 1..4096)")
        if name == "SOFTMAX" and not (math.isfinite(opt.beta) and opt.beta > 0):
            raise UserError(f"{where}: softmax beta {opt.beta} is not finite and positive")

    def _io_quant(self, ins, outs, where):
        T = self.tensors
        x_t, o_t = T[ins[0]], T[outs[0]]
        if x_t.type != TT.INT8 or o_t.type != TT.INT8:
            raise UserError(f"{where}: needs int8 input/output, got {TENSOR_TYPE_NAMES.get(x_t.type)}/"
                            f"{TENSOR_TYPE_NAMES.get(o_t.type)}")
        s_in, zp_in, _ = quant_params(x_t)
        s_out, zp_out, _ = quant_params(o_t)
        bias = None
        if len(ins) > 2 and ins[2] >= 0:
            bias = tensor_data(self.model, T[ins[2]])
        return float(s_in[0]), int(zp_in[0]), float(s_out[0]), int(zp_out[0]), bias

    def _build_fc(self, op, ins, outs, where):
        T = self.tensors
        w_t = T[ins[1]]
        if w_t.type == TT.FLOAT32 and T[ins[0]].type == TT.FLOAT32 and T[outs[0]].type == TT.FLOAT32:
            w = tensor_data(self.model, w_t)
            if w is None:
                raise UserError(f"{where}: weights are not constant")
            bias = tensor_data(self.model, T[ins[2]]) if len(ins) > 2 and ins[2] >= 0 else None
            opt = op.builtinOptions
            act = opt.fusedActivationFunction if opt is not None else 0
            if act not in (schema.ActivationFunctionType.NONE, schema.ActivationFunctionType.RELU,
                           schema.ActivationFunctionType.RELU6):
                raise UserError(f"{where}: fused activation {act} not supported")
            return _FloatFullyConnected(w.reshape(w.shape[0], -1), bias, act, ins, outs, _per_sample_shape(T[outs[0]]))
        if w_t.type not in (TT.INT8, TT.INT4):
            raise UserError(f"{where}: weights type {TENSOR_TYPE_NAMES.get(w_t.type)} not supported (INT8/INT4 only)")
        if w_t.sparsity is not None:   # TFLite's standard sparse encoding: densify (validated)
            from tflm_port.tflite_io import buffer_bytes

            w = sparse.decode_tflite_sparsity(w_t, np.frombuffer(buffer_bytes(self.model, w_t.buffer) or b"", np.int8),
                                              where)
        else:
            w = tensor_data(self.model, w_t)
        if w is None:
            raise UserError(f"{where}: weights are not constant")
        s_w, zp_w, _ = quant_params(w_t)
        if np.any(zp_w != 0):
            raise UserError(f"{where}: non-zero weight zero point")
        s_in, zp_in, s_out, zp_out, bias = self._io_quant(ins, outs, where)
        opt = op.builtinOptions
        act = opt.fusedActivationFunction if opt is not None else 0
        amin, amax = activation_range(act, s_out, zp_out)
        return _FullyConnected(w.reshape(w.shape[0], -1), bias, s_in, zp_in, s_w, s_out, zp_out, amin, amax,
                               ins, outs, _per_sample_shape(T[outs[0]]), self.rounding)

    def _build_sub8(self, op, ins, outs, where):
        T = self.tensors
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
        raw = tensor_data(self.model, w_t)
        if raw is None or w_t.type != TT.UINT8:
            raise UserError(f"{where}: packed weights must be a constant UINT8 tensor")
        if layout in sparse.SPARSE_LAYOUTS:   # N:M / block-sparse rows: same integer matrix, zeros restored
            w = sparse.unpack(raw.reshape(-1), bits, nout, nin, layout, o, where)
        else:
            w = packing.unpack(raw.reshape(-1), bits, nout, nin, layout)
        s_w, zp_w, _ = quant_params(w_t)
        s_in, zp_in, s_out, zp_out, bias = self._io_quant(ins, outs, where)
        act = {"NONE": schema.ActivationFunctionType.NONE, "RELU": schema.ActivationFunctionType.RELU}.get(o["activation"])
        if act is None:
            raise UserError(f"{where}: activation '{o['activation']}' not supported")
        amin, amax = activation_range(act, s_out, zp_out)
        return _FullyConnected(w, bias, s_in, zp_in, s_w, s_out, zp_out, amin, amax, ins, outs,
                               _per_sample_shape(T[outs[0]]), self.rounding)

    def _fc_chain(self):
        """The FC operators in order if the graph is input -> FC -> ... -> FC -> output with only
        reshapes / shape arithmetic between them (the fused fast path), else None."""
        alias = {}
        fcs = []
        for op in self.ops:
            if isinstance(op, _FullyConnected):
                fcs.append(op)
            elif isinstance(op, _Reshape):
                alias[op.outputs[0]] = op.inputs[0]
            elif not isinstance(op, _ShapeArith):
                return None

        def src(t):
            while t in alias:
                t = alias[t]
            return t

        if not fcs or self.input_dtype != np.int8 or src(fcs[0].inputs[0]) != self.input_index:
            return None
        for a, b in zip(fcs, fcs[1:]):
            if src(b.inputs[0]) != a.outputs[0]:
                return None
        if src(self.output_index) != fcs[-1].outputs[0]:
            return None
        return fcs

    # -- running
    def run(self, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
        """inputs [N, *input_shape] (int8, or float32 if the model input is float) -> outputs [N, *output_shape].

        ``threads`` > 1 splits the rows of an FC-chain model over a thread pool (numpy releases the
        GIL); results do not depend on it."""
        x = self._check_input(inputs)
        if self.fc_chain is not None:
            return self._run_fused(x, threads)
        outs = []
        rows = max(len(x), 1) if any(hasattr(op, "reset") for op in self.ops) else BLOCK_ROWS  # state per row
        for s in range(0, max(len(x), 1), rows):
            blk = x[s:s + rows]
            env = {self.input_index: blk}
            for op in self.ops:
                op(env, len(blk))
            outs.append(env[self.output_index])
        return np.concatenate(outs, axis=0) if outs else np.zeros((0,) + self.output_shape, self.output_dtype)

    def _run_fused(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        with _blas_threads(1):  # small GEMMs: OpenBLAS threads only spin (10-30x slower on 2 busy cores)
            return self._run_fused_rows(x, threads)

    def posteriors_from_frames(self, frames: np.ndarray, context: int, stride: int = 1, threads: int = 1) -> np.ndarray:
        """Normalized feature frames [T, B] -> posteriors of every context window, [T - span + 1,
        classes], span = (context - 1) * stride + 1; windows as ``training.features.stack_context``
        builds them (window i = frames i, i + stride, ..., frame-major). Equals
        ``posteriors(stack_context(frames, context, stride))`` but quantizes each frame once instead of
        ``context`` times and never materializes the windows (streaming evaluation)."""
        f = np.asarray(frames, np.float32)
        if f.ndim != 2 or f.shape[1] * context != int(np.prod(self.input_shape)):
            raise UserError(f"frames {f.shape} x context {context} do not match model input {self.input_shape}")
        span = (context - 1) * stride + 1
        n = max(len(f) - span + 1, 0)
        if n == 0:
            return np.zeros((0, int(np.prod(self.output_shape))), np.float64)
        if self.fc_chain is None:
            win = np.lib.stride_tricks.sliding_window_view(f, (span, f.shape[1]))[:, 0, ::stride]
            return self.posteriors(win.reshape(n, -1), threads)
        s, zp = self.input_quant
        qf = np.empty_like(f)
        for a in range(0, len(f), QUANT_ROWS * 8):
            quantize_f32(f[a:a + QUANT_ROWS * 8], s, zp, out=qf[a:a + QUANT_ROWS * 8])
        win = np.lib.stride_tricks.sliding_window_view(qf, (span, f.shape[1]))[:, 0, ::stride]  # [n, ctx, B] view
        local = threading.local()

        def prep(blk):  # blk: rows of the window view -> contiguous float32 block
            buf = getattr(local, "buf", None)
            if buf is None:
                buf = local.buf = np.empty((FUSED_ROWS, context * f.shape[1]), np.float32)
            h = buf[:len(blk)]
            h.reshape(len(blk), context, f.shape[1])[...] = blk
            return h

        with _blas_threads(1):
            y = self._run_fused_rows(win, threads, prep, flatten=False)
        return self._to_posteriors(y)

    def _fused_posteriors(self, xf: np.ndarray, threads: int = 1) -> np.ndarray:
        s, zp = self.input_quant
        xf = np.asarray(xf, np.float32)
        local = threading.local()

        def prep(blk):
            buf = getattr(local, "buf", None)
            if buf is None or buf.shape[1] != blk.shape[1]:
                buf = local.buf = np.empty((FUSED_ROWS, blk.shape[1]), np.float32)
            h = buf[:len(blk)]
            for a in range(0, len(blk), QUANT_ROWS):
                quantize_f32(blk[a:a + QUANT_ROWS], s, zp, out=h[a:a + QUANT_ROWS])
            return h

        with _blas_threads(1):
            return self._run_fused_rows(xf, threads, prep)

    def _run_fused_rows(self, x: np.ndarray, threads: int = 1, prep=None, flatten: bool = True) -> np.ndarray:
        n = len(x)
        x2 = x.reshape(n, -1) if flatten else x
        out = np.empty((n, self.fc_chain[-1].out_features), np.int8)

        def block(s):
            blk = x2[s:s + FUSED_ROWS]
            h = prep(blk) if prep is not None else blk.astype(np.float32)
            for fc in self.fc_chain:
                h = fc.forward(h)
            out[s:s + FUSED_ROWS] = h  # float32 holding int8 values: exact cast

        starts = range(0, n, FUSED_ROWS)
        if threads > 1 and n > FUSED_ROWS:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(block, starts))
        else:
            for s in starts:
                block(s)
        return out.reshape((n,) + self.output_shape)

    def _check_input(self, inputs: np.ndarray) -> np.ndarray:
        """inputs [N, *input_shape] (int8, or float32 if the model input is float) -> outputs [N, *output_shape]."""
        x = np.asarray(inputs)
        if x.shape[1:] != self.input_shape:
            if x.ndim >= 1 and x.size % max(int(np.prod(self.input_shape)), 1) == 0 and x.ndim == 2:
                x = x.reshape((x.shape[0],) + self.input_shape)
            else:
                raise UserError(f"input shape {x.shape} does not match model input [N, {', '.join(map(str, self.input_shape))}]")
        if x.dtype != self.input_dtype:
            if self.input_dtype == np.int8 and (x.min(initial=0) < -128 or x.max(initial=0) > 127):
                raise UserError("int8 input out of range")
            x = x.astype(self.input_dtype)
        return x

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """float -> int8 with the model's input scale / zero point: round(x / s) half away from zero
        (x / s in float32, rounded exactly; C ``roundf``), + zp, clamped to [-128, 127]."""
        s, zp = self.input_quant
        x = np.asarray(x, np.float32)
        if x.ndim < 2:
            return quantize_f32(x, s, zp).astype(np.int8)
        out = np.empty(x.shape, np.int8)
        for a in range(0, len(x), QUANT_ROWS):  # row blocks: temporaries stay in cache
            out[a:a + QUANT_ROWS] = quantize_f32(x[a:a + QUANT_ROWS], s, zp)
        return out

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        s, zp = self.output_quant
        return (np.asarray(y).astype(np.int32) - zp).astype(np.float32) * np.float32(s)

    def posteriors(self, float_windows: np.ndarray, threads: int = 1) -> np.ndarray:
        """Float model inputs [N, *input_shape] (already normalized features) -> class posteriors
        [N, classes] in float64: quantize with the input scale/zero point, run the integer model,
        dequantize, softmax in float64. A model whose last operator is SOFTMAX already outputs
        probabilities: those are returned dequantized (as float64), without a second softmax."""
        x = np.asarray(float_windows)
        n = len(x)
        if n == 0:
            return np.zeros((0, int(np.prod(self.output_shape))), np.float64)
        if self.fc_chain is not None and x.size == n * self.fc_chain[0].in_features:
            y = self._fused_posteriors(x.reshape(n, -1), threads)  # quantize inside the cache-sized blocks
        else:
            q = self.quantize_input(x) if self.input_dtype == np.int8 else x.astype(self.input_dtype)
            y = self.run(q.reshape((n,) + self.input_shape), threads=threads).reshape(n, -1)
        return self._to_posteriors(y)

    def _to_posteriors(self, y: np.ndarray) -> np.ndarray:
        if self.output_dtype == np.int8:
            s, zp = self.output_quant
            z = (y.astype(np.float64) - zp) * float(np.float32(s))
        else:
            z = y.astype(np.float64)
        if self.ends_in_softmax:
            return z
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


def _np_type(t):
    """numpy dtype of a tensor (or of a TensorType value)."""
    t = getattr(t, "type", t)
    return {TT.INT8: np.int8, TT.FLOAT32: np.float32, TT.UINT8: np.uint8, TT.INT16: np.int16}.get(t, np.int8)
