"""Exact integer matrix products on float BLAS.

Each product splits its inputs into chunks whose worst-case partial sums (128 * sum|w| + |offset|)
stay below 2^24, so float32 sums are exact integers whatever order BLAS adds in; several chunks are
added in float64 (exact below 2^53).
"""
from __future__ import annotations

import numpy as np

CHUNK_K = 1024
F32_EXACT = 1 << 24
F64_EXACT = 1 << 53


def exact_int_matmul(x: np.ndarray, wt_chunks: list[tuple[slice, np.ndarray]]) -> np.ndarray:
    """x int8-valued [N, K]; wt_chunks: (K-slice, float32 [k, out]) -> exact int64 [N, out]."""
    acc = None
    for sl, wt in wt_chunks:
        part = np.matmul(x[:, sl].astype(np.float32), wt).astype(np.int64)
        acc = part if acc is None else acc + part
    return acc


def chunks(w_int: np.ndarray) -> list[tuple[slice, np.ndarray]]:
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
