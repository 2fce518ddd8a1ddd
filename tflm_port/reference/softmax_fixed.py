"""int8 softmax arithmetic in fixed point, as TFLite Micro's reference kernel computes it (vectorized over rows).

The published arithmetic (gemmlowp fixed point): the input difference to the row maximum is scaled by
beta*s_in into a Q5.26 number, exp() of it is evaluated on [-1/4, 0) by a 4th-order Taylor polynomial
around -1/8 times a barrel of exp(-2^k) factors for the higher bits, the exps are summed in Q12.19,
the reciprocal of the sum is found by three Newton-Raphson steps, and each output is
exp * reciprocal rounded to 8 bits with output zero point -128 and scale 1/256.
Written from that description; all constants are computed below from their definitions.
"""
from __future__ import annotations

import math

import numpy as np

from tflm_port.reference.fixedpoint import quantize_multiplier
from tflm_port.reference.fixedpoint import rdbypot as _rdbypot
from tflm_port.reference.fixedpoint import srdhm as _srdhm

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
SCALED_DIFF_INT_BITS = 5  # Q5.26 input differences
ACCUM_INT_BITS = 12  # Q12.19 sum of exps


def _q31(v: float) -> int:
    return int(math.floor(v * (1 << 31) + 0.5)) if v >= 0 else -int(math.floor(-v * (1 << 31) + 0.5))


def _q(v: float, int_bits: int) -> int:
    return _q31(v / (1 << int_bits))


# exp(-2^e) for e = -2..4 in Q0.31; exp(-1/8) and 1/3 in Q0.31; 48/17 and -32/17 in Q2.29
EXP_BARREL = [(e, _q31(math.exp(-(2.0 ** e)))) for e in range(-2, 5)]
EXP_M1_8 = _q31(math.exp(-1 / 8))
ONE_THIRD = _q31(1 / 3)
C48_17 = _q(48 / 17, 2)
CM32_17 = _q(-32 / 17, 2)


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul with its saturating case (both operands INT32_MIN)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, _srdhm(a, b))


def rdbypot(x, e):
    return _rdbypot(np.asarray(x, np.int64), e)


def sat_shl(x, e):
    return np.clip(np.asarray(x, np.int64) << e, INT32_MIN, INT32_MAX)


def _exp_quarter_interval(a):
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    x = a + (1 << 28)  # + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbypot(x4, 2)
    poly = rdbypot(srdhm(x4_over_4 + x3, ONE_THIRD) + x2, 1)
    return EXP_M1_8 + srdhm(EXP_M1_8, x + poly)


def exp_on_negative_values(a):
    """a: Q5.26 raw values <= 0 -> exp(a) as Q0.31 raw."""
    frac = 31 - SCALED_DIFF_INT_BITS
    quarter = 1 << (frac - 2)
    mask = quarter - 1
    a_mod = (a & mask) - quarter
    result = _exp_quarter_interval(sat_shl(a_mod, SCALED_DIFF_INT_BITS))
    remainder = a_mod - a
    for e, mult in EXP_BARREL:
        if SCALED_DIFF_INT_BITS > e:
            bit = 1 << (frac + e)
            result = np.where((remainder & bit) != 0, srdhm(result, mult), result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x(a):
    """a: Q0.31 in [0, 1) -> 1/(1+a) as Q0.31 (Newton-Raphson)."""
    s = a + INT32_MAX
    half_den = np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2))  # (sum + sign) / 2, truncating
    x = C48_17 + srdhm(half_den, CM32_17)
    one_q2 = 1 << 29
    for _ in range(3):
        hdx = srdhm(half_den, x)
        x = x + sat_shl(srdhm(x, one_q2 - hdx), 2)
    return sat_shl(x, 1)  # Q2.29 holds 2/(1+a): read as Q1.30 it is 1/(1+a); to Q0.31


def _clz32(x):
    x = np.asarray(x, np.int64)
    n = np.zeros_like(x)
    for s in (16, 8, 4, 2, 1):
        m = x < (1 << (32 - s))
        n = np.where(m, n + s, n)
        x = np.where(m, x << s, x)
    return np.where(np.asarray(x) == 0, 32, n)


class SoftmaxInt8:
    def __init__(self, beta: float, input_scale: float, output_zero_point: int = -128):
        real = min(float(beta) * float(input_scale) * (1 << (31 - SCALED_DIFF_INT_BITS)), float((1 << 31) - 1))
        self.mult, self.shift = quantize_multiplier(real)
        radius = ((1 << SCALED_DIFF_INT_BITS) - 1) * (1 << (31 - SCALED_DIFF_INT_BITS)) / (1 << self.shift)
        self.diff_min = -int(math.floor(radius))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        shape = x.shape
        x = x.reshape(-1, shape[-1]).astype(np.int64)
        diff = x - x.max(axis=1, keepdims=True)
        valid = diff >= self.diff_min
        scaled = srdhm(diff << self.shift, self.mult)
        e = exp_on_negative_values(np.where(valid, scaled, 0))
        sum_exps = np.where(valid, rdbypot(e, ACCUM_INT_BITS), 0).sum(axis=1, keepdims=True)
        headroom = _clz32(sum_exps)
        bits_over_unit = ACCUM_INT_BITS - headroom
        shifted_minus_one = ((sum_exps << headroom) & 0xFFFFFFFF) - (1 << 31)
        recip = one_over_one_plus_x(shifted_minus_one)
        prod = srdhm(recip, e)
        exps = bits_over_unit + 31 - 8
        out = np.empty_like(prod)
        for v in np.unique(exps):  # shift is per row
            rows = (exps == v)[:, 0]
            out[rows] = rdbypot(prod[rows], int(v))
        y = np.clip(out - 128, -128, 127)
        return np.where(valid, y, -128).astype(np.int8).reshape(shape)
