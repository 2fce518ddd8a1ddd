"""Bit-exact Python mirror of the C streaming front end (firmware/frontend/kws_frontend.c).

``training.features.lfbe`` defines the features; the C front end computes the same definition
with its own float32 arithmetic (a 256-point complex radix-2 FFT turned into the 512-point real
FFT, a sparse mel filterbank summed bin by bin, a float32 polynomial natural log). This module
repeats every float32 operation of the C code in the same order with numpy (IEEE float32, no
fused multiply-add on either side: the C sources are built with -ffp-contract=off), so

    lfbe_mirror(audio) == the C front end's log-mel frames        (bit for bit)
    quantize_frames(lfbe_mirror(audio), ...) == the C model inputs (bit for bit)

and both stay within a documented tolerance of ``lfbe`` (tests/test_frontend.py measures it).

The constant tables the C code uses (Hann window, twiddles, bit reversal, sparse mel weights) come
from ``tables()`` here; the firmware-side tool firmware/tools/gen_frontend_tables.py writes them into
firmware/frontend/kws_frontend_tables.c (this training module writes nothing into firmware/):

    python -m firmware.tools.gen_frontend_tables --write-tables      # regenerate
    python -m firmware.tools.gen_frontend_tables --check-tables      # exit 1 if the file is stale
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from training.features import LfbeParams, hann, mel_matrix, num_frames

P = LfbeParams()
FFT_N = P.fft_size // 2  # 256-point complex FFT of the even/odd-packed real frame
N_BINS = P.fft_size // 2 + 1  # 257 power-spectrum bins
F32 = np.float32
HALF = F32(0.5)

# float32 natural log: ln(m * 2^e) = e ln2 + 2 atanh(s), s = (m - 1) / (m + 1), m in [sqrt(1/2), sqrt(2)]
LOG_C = tuple(F32(v) for v in (2.0, 2.0 / 3.0, 2.0 / 5.0, 2.0 / 7.0, 2.0 / 9.0))
LN2 = F32(np.log(2.0))
SQRT2 = F32(np.sqrt(2.0))


@lru_cache(maxsize=1)
def tables() -> dict:
    """The C front end's constant tables (float32 / ints), derived from training.features."""
    k = np.arange(P.fft_size // 2)
    cos = np.cos(2.0 * np.pi * k / P.fft_size).astype(F32)  # W512^k = cos - i sin
    sin = np.sin(2.0 * np.pi * k / P.fft_size).astype(F32)
    bits = int(np.log2(FFT_N))
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) for i in range(FFT_N)], np.int64)
    m = mel_matrix(P)  # (257, 64) float32
    start, length, weights = [], [], []
    for j in range(P.num_mel_bins):
        nz = np.flatnonzero(m[:, j])
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
        start.append(lo)
        length.append(hi - lo)
        weights.append(m[lo:hi, j])
    offset = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    return {"hann": hann(P.window_samples), "cos": cos, "sin": sin, "bitrev": rev,
            "mel_start": np.array(start, np.int64), "mel_len": np.array(length, np.int64),
            "mel_offset": offset, "mel_weights": np.concatenate(weights).astype(F32)}


def _fft256(re: np.ndarray, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-order radix-2 decimation-in-time FFT over the last axis, as kws_frontend.c computes it."""
    t = tables()
    a_re, a_im = re[:, t["bitrev"]].copy(), im[:, t["bitrev"]].copy()
    f = re.shape[0]
    half = 1
    while half < FFT_N:
        step = FFT_N // (2 * half)
        wr = t["cos"][np.arange(half) * 2 * step]  # W256^j = W512^(2j)
        wi = -t["sin"][np.arange(half) * 2 * step]
        ar = a_re.reshape(f, -1, 2, half)
        ai = a_im.reshape(f, -1, 2, half)
        ur, ui = ar[:, :, 0, :].copy(), ai[:, :, 0, :].copy()
        vr, vi = ar[:, :, 1, :], ai[:, :, 1, :]
        tr = vr * wr - vi * wi
        ti = vr * wi + vi * wr
        ar[:, :, 0, :] = ur + tr
        ai[:, :, 0, :] = ui + ti
        ar[:, :, 1, :] = ur - tr
        ai[:, :, 1, :] = ui - ti
        half *= 2
    return a_re, a_im


def power_spectrum(frames: np.ndarray) -> np.ndarray:
    """(F, 400) float32 raw frames -> (F, 257) float32 |X_k|^2 of the Hann-windowed 512-point FFT."""
    t = tables()
    x = np.zeros((frames.shape[0], P.fft_size), F32)
    x[:, : P.window_samples] = frames.astype(F32) * t["hann"]
    zr, zi = _fft256(x[:, 0::2], x[:, 1::2])
    pw = np.empty((frames.shape[0], N_BINS), F32)
    x0 = zr[:, 0] + zi[:, 0]
    xn = zr[:, 0] - zi[:, 0]
    pw[:, 0] = x0 * x0
    pw[:, FFT_N] = xn * xn
    k = np.arange(1, FFT_N)
    rk, ik, rc, ic = zr[:, k], zi[:, k], zr[:, FFT_N - k], zi[:, FFT_N - k]
    er = HALF * (rk + rc)
    ei = HALF * (ik - ic)
    orr = HALF * (ik + ic)
    oi = -(HALF * (rk - rc))
    c, s = t["cos"][k], t["sin"][k]
    xr = er + (c * orr + s * oi)
    xi = ei + (c * oi - s * orr)
    pw[:, 1:FFT_N] = xr * xr + xi * xi
    return pw


def mel_energies(power: np.ndarray) -> np.ndarray:
    """(F, 257) -> (F, 64): each filter summed over its bins in increasing order, in float32."""
    t = tables()
    acc = np.zeros((power.shape[0], P.num_mel_bins), F32)
    width = int(t["mel_len"].max())
    for o in range(width):
        live = t["mel_len"] > o
        idx = t["mel_start"][live] + o
        w = t["mel_weights"][t["mel_offset"][live] + o]
        acc[:, live] = acc[:, live] + w * power[:, idx]
    return acc


def log_f32(x: np.ndarray) -> np.ndarray:
    """The C front end's float32 natural log (x > 0 and normal)."""
    x = np.asarray(x, F32)
    bits = x.view(np.uint32)
    e = (bits >> np.uint32(23)).astype(np.int32) - 127
    m = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(F32)
    big = m > SQRT2
    m = np.where(big, m * HALF, m)
    e = e + big.astype(np.int32)
    f = m - F32(1.0)
    s = f / (F32(2.0) + f)
    z = s * s
    c0, c1, c2, c3, c4 = LOG_C
    p = s * (c0 + z * (c1 + z * (c2 + z * (c3 + z * c4))))
    return p + e.astype(F32) * LN2


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 in [-1, 1) exactly as load_audio (soundfile) and the C code scale them."""
    return np.asarray(pcm, np.int16).astype(F32) * F32(1.0 / 32768.0)


def lfbe_mirror(audio: np.ndarray) -> np.ndarray:
    """(num_frames, 64) float32 log-mel frames, bit-identical to the C front end."""
    x = np.asarray(audio, F32)
    n = num_frames(len(x), P)
    if n == 0:
        return np.zeros((0, P.num_mel_bins), F32)
    frames = np.lib.stride_tricks.sliding_window_view(x, P.window_samples)[:: P.hop_samples][:n]
    out = np.empty((n, P.num_mel_bins), F32)
    for i in range(0, n, 2048):
        mel = mel_energies(power_spectrum(frames[i:i + 2048]))
        out[i:i + 2048] = log_f32(mel + F32(P.log_floor))
    return out


def quantize_frames(feats: np.ndarray, mean, std, scale: float, zero_point: int) -> np.ndarray:
    """Normalize per bin and quantize to the model's int8 input, as Normalizer +
    tflm_port.reference.Reference.quantize_input do (float32, round half away from zero, clamp)."""
    y = (np.asarray(feats, F32) - np.asarray(mean, F32)) / np.asarray(std, F32)
    q = y / F32(scale)
    r = np.trunc(q)  # exact round half away from zero, as C roundf (and Reference.quantize_input)
    d = q - r
    r = r + np.trunc(d + d)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)
