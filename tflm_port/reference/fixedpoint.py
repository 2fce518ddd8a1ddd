"""TFLite's fixed-point arithmetic, written from the published definitions: the multiplier formula,
SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, and the one requantization helper every
operator uses (``Requant``). Depends on numpy only.

Two arithmetic flavours (``rounding=``), see the package docstring: "tflm" (TFLite Micro and the
firmware contract) and "tflite" (LiteRT builtin CPU kernels; ties of the final shift toward +inf).
"""
from __future__ import annotations

import math

import numpy as np

from basics.errors import UserError


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


def channel_multipliers(s_in, s_w, s_out, rounding: str = "tflm") -> tuple[np.ndarray, np.ndarray]:
    """The requantization multiplier of a weighted op (FC, conv), per output channel: the real
    multiplier s_in * s_w / s_out as each runtime computes it, then ``quantize_multiplier``.

    * "tflm": double(float32(s_in)) * double(s_w) / double(float32(s_out))
    * "tflite": double(float32(s_in * s_w)) / double(float32(s_out)) (the product rounded to float32 first)

    Returns int64 arrays (mult, shift), one entry per entry of ``s_w``."""
    s_w = np.atleast_1d(np.asarray(s_w, dtype=np.float32))
    s_in32, s_out64 = np.float32(s_in), np.float64(np.float32(s_out))
    if rounding == "tflite":
        reals = [float(np.float64(s_in32 * sw) / s_out64) for sw in s_w]
    else:
        reals = [float(np.float64(s_in32) * np.float64(sw) / s_out64) for sw in s_w]
    ms = [quantize_multiplier(r) for r in reals]
    return np.array([m for m, _ in ms], np.int64), np.array([s for _, s in ms], np.int64)


def srdhm(a: np.ndarray, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul on int64 arrays holding int32 values (without the one
    saturating case INT32_MIN * INT32_MIN, which a multiplier >= 0 never meets)."""
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
    """MultiplyByQuantizedMultiplier: RoundingDivideByPOT(SRDHM(x << left, mult), right).
    The two-step definition ("tflm"); ``Requant`` computes the same in one step."""
    if np.ndim(mult) == 0 and np.ndim(shift) == 0:
        return _mbqm_scalar(x, int(mult), int(shift))
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbypot(srdhm(x << left, mult), right)


def _mbqm_scalar(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """Same arithmetic for a per-tensor multiplier, branch-free and in place.
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


# the two-step definitions, by flavour (the tests check ``Requant`` against them)
ROUNDING = {"tflm": multiply_by_quantized_multiplier, "tflite": multiply_by_quantized_multiplier_tieup}


def check_rounding(rounding: str) -> None:
    if rounding not in ROUNDING:
        raise UserError(f"rounding '{rounding}' unknown (use one of {', '.join(ROUNDING)})")


class Requant:
    """Fused requantization ``acc -> MultiplyByQuantizedMultiplier(acc, mult, shift)`` for one flavour:
    the one requantization helper of the reference (every operator calls it).

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
        check_rounding(rounding)
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


def round_half_away(x):
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
    Rounding as in round_half_away, in place (``out`` may be given: same shape, float32)."""
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
