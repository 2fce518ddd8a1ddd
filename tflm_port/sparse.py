"""Sparse weight layouts of SUB8_FULLY_CONNECTED (docs/formats.md section 8): N:M and block-compressed rows.

Both hold k-bit integer weights (k = 2..8, the layout-0 field encoding) of which most are zero; the
custom options carry the layout's parameters (``SparseSpec.options``). The firmware's C reader is
firmware/runtime/kws_sparse.c, the kernels firmware/kernels/*/kws_fully_connected_sparse*.c.

* layout 4 ``nm``: every group of M consecutive inputs of a row holds at most N non-zero weights.
  Options ``nm_n``, ``nm_m`` (M in 2, 4, 8, 16; 1 <= N < M). Fixed ``row_bytes`` (like layouts 0-3).
* layout 5 ``bsr``: block-compressed sparse rows, a block = B consecutive inputs of one row
  (B in 1, 2, 4, 8, 16; B = 1 is CSR, for unstructured sparsity). Options ``block``, ``nnz_blocks``.
  With option ``block_rows`` = 4 (4-bit weights only, ``block:4xB``, B in 4, 8, 16) a block is 4 rows x B
  inputs stored in layout 8's lanes16 arrangement (one 16-bit half = one input of the 4 rows), so the
  Cortex-M DSP kernel does 8 MACs per 7 instructions on the stored blocks.

``SparseSpec.parse("nm:2:4" | "block:8" | "csr")`` is the converter's ``--sparse`` value.
``pack`` / ``unpack`` round-trip exactly; ``unpack`` validates everything a runtime must validate
and raises one-line ``UserError``s naming the inconsistency.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from basics.errors import UserError
from tflm_port import packing as _packing
from tflm_port.tflite_io import add_buffer, load_model, op_name, save_model, schema, schema as s, tensor_data

LAYOUT_NM = 4
LAYOUT_BSR = 5
SPARSE_LAYOUTS = (LAYOUT_NM, LAYOUT_BSR)
NM_M = (2, 4, 8, 16)
BLOCKS = (1, 2, 4, 8, 16)
BLOCK_ROWS = (1, 4)          # 4: 4 x B blocks in the lanes16 arrangement (4-bit only)
BLOCKS_4ROW = (4, 8, 16)
SUPPORTED_BITS = frozenset(range(2, 9))


def _stream_pack(fields: np.ndarray, width: int) -> np.ndarray:
    """Unsigned fields (1-D) -> LSB-first bit stream of ``width``-bit fields, padded with 0 to a byte."""
    f = np.asarray(fields, np.uint32).reshape(-1)
    if f.size == 0:
        return np.zeros(0, np.uint8)
    bits = ((f[:, None] >> np.arange(width, dtype=np.uint32)) & 1).astype(np.uint8).reshape(-1)
    pad = (-bits.size) % 8
    if pad:
        bits = np.concatenate([bits, np.zeros(pad, np.uint8)])
    return np.packbits(bits.reshape(-1, 8), axis=1, bitorder="little").reshape(-1)


def _stream_unpack(data: np.ndarray, width: int, count: int) -> np.ndarray:
    if count == 0:
        return np.zeros(0, np.int64)
    bits = np.unpackbits(np.asarray(data, np.uint8), bitorder="little")[: count * width]
    return (bits.reshape(count, width).astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=1)


def _to_fields(w: np.ndarray, bits: int) -> np.ndarray:
    return (np.asarray(w, np.int64) & ((1 << bits) - 1)).astype(np.uint32)


def _to_values(f: np.ndarray, bits: int) -> np.ndarray:
    sign = 1 << (bits - 1)
    return ((np.asarray(f, np.int64) ^ sign) - sign).astype(np.int64)


def _check_bits(bits: int, where: str) -> None:
    if bits not in SUPPORTED_BITS:
        raise UserError(f"{where}: sparse layouts hold 2..8-bit weights (1-bit weights have no zero), got {bits}")


@dataclass(frozen=True)
class SparseSpec:
    """A sparsity kind: ``nm`` (n, m) or ``block`` (rows x block; block 1 = csr; rows 4 = lanes16 blocks)."""

    kind: str
    n: int = 0
    m: int = 0
    block: int = 0
    rows: int = 1

    @staticmethod
    def parse(text: str) -> "SparseSpec | None":
        t = text.strip().lower()
        if t in ("", "none", "dense"):
            return None
        parts = t.split(":")
        try:
            if parts[0] == "nm" and len(parts) == 3:
                spec = SparseSpec("nm", n=int(parts[1]), m=int(parts[2]))
            elif parts[0] == "block" and len(parts) == 2 and "x" in parts[1]:
                r, b = parts[1].split("x")
                spec = SparseSpec("block", block=int(b), rows=int(r))
            elif parts[0] == "block" and len(parts) == 2:
                spec = SparseSpec("block", block=int(parts[1]))
            elif parts == ["csr"]:
                spec = SparseSpec("block", block=1)
            elif parts == ["tflite"]:
                spec = SparseSpec("tflite", block=TFLITE_BLOCK)
            else:
                raise ValueError
        except ValueError:
            raise UserError(f"--sparse: '{text}' is not nm:N:M, block:B, block:4xB, csr, tflite or none") from None
        spec.check()
        return spec

    def check(self) -> None:
        if self.kind == "nm":
            if self.m not in NM_M or not 1 <= self.n < self.m:
                raise UserError(f"sparsity nm:{self.n}:{self.m}: need M in {NM_M} and 1 <= N < M")
        elif self.kind == "tflite":
            pass
        elif self.kind == "block":
            if self.block not in BLOCKS:
                raise UserError(f"sparsity block:{self.block}: block must be one of {BLOCKS}")
            if self.rows not in BLOCK_ROWS:
                raise UserError(f"sparsity block:{self.rows}x{self.block}: rows per block must be 1 or 4")
            if self.rows == 4 and self.block not in BLOCKS_4ROW:
                raise UserError(f"sparsity block:4x{self.block}: 4-row blocks are 4, 8 or 16 inputs wide")
        else:
            raise UserError(f"sparsity kind '{self.kind}' unknown (nm, block)")

    @property
    def layout(self) -> int:
        return LAYOUT_NM if self.kind == "nm" else LAYOUT_BSR

    @property
    def name(self) -> str:
        """``sparsity_kind`` of the records: 'n:m' as '2:4', 'block8', 'unstructured' (csr)."""
        if self.kind == "nm":
            return f"{self.n}:{self.m}"
        if self.kind == "tflite":
            return "tflite-block16"
        if self.rows > 1:
            return f"block{self.rows}x{self.block}"
        return "unstructured" if self.block == 1 else f"block{self.block}"

    def __str__(self) -> str:
        if self.kind == "tflite":
            return "tflite"
        if self.kind == "block" and self.rows > 1:
            return f"block:{self.rows}x{self.block}"
        return f"nm:{self.n}:{self.m}" if self.kind == "nm" else ("csr" if self.block == 1 else f"block:{self.block}")

    def options(self, w: np.ndarray) -> dict:
        """Extra custom options for integer weights ``w`` [out, in]."""
        if self.kind == "nm":
            return {"nm_n": self.n, "nm_m": self.m}
        if self.rows > 1:
            return {"block": self.block, "block_rows": self.rows,
                    "nnz_blocks": int(_bsr4_blocks(np.asarray(w), self.block)[1].size)}
        return {"block": self.block, "nnz_blocks": int(_bsr_blocks(np.asarray(w), self.block)[1].size)}

    def fits(self, w: np.ndarray) -> str | None:
        """None when w can be stored in this kind, else why not (one line)."""
        if self.kind != "nm":
            return None
        w = np.asarray(w)
        out, n_in = w.shape
        G = -(-n_in // self.m)
        wp = np.zeros((out, G * self.m), np.int64)
        wp[:, :n_in] = w
        cnt = (wp.reshape(out, G, self.m) != 0).sum(axis=2)
        if (cnt > self.n).any():
            o, g = np.argwhere(cnt > self.n)[0]
            return (f"row {o}, inputs {g * self.m}..{g * self.m + self.m - 1} hold {cnt[o, g]} non-zero weights, "
                    f"{self.n}:{self.m} allows {self.n} ({int((cnt > self.n).sum())} groups too dense)")
        return None


def spec_from_options(layout: int, o: dict) -> SparseSpec:
    try:
        if layout == LAYOUT_NM:
            spec = SparseSpec("nm", n=int(o["nm_n"]), m=int(o["nm_m"]))
        else:
            spec = SparseSpec("block", block=int(o["block"]), rows=int(o.get("block_rows", 1)))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"sparse layout {layout}: custom options lack or mistype {e}") from None
    spec.check()
    return spec


# ---------------- layout 4: N:M ----------------

def nm_index_bits(m: int) -> int:
    return int(m).bit_length() - 1


def nm_row_bytes(bits: int, in_features: int, n: int, m: int) -> int:
    slots = -(-in_features // m) * n
    return -(-slots * nm_index_bits(m) // 8) + -(-slots * bits // 8)


def _nm_pack(w: np.ndarray, bits: int, n: int, m: int) -> np.ndarray:
    out, n_in = w.shape
    G = -(-n_in // m)
    wp = np.zeros((out, G * m), np.int64)
    wp[:, :n_in] = w
    grp = wp.reshape(out, G, m)
    # slot order: the group's non-zero positions, then its lowest zero positions, sorted ascending
    key = np.where(grp != 0, 0, 1) * m + np.arange(m)            # non-zeros first, then by position
    pick = np.sort(np.argsort(key, axis=2, kind="stable")[:, :, :n], axis=2)
    vals = np.take_along_axis(grp, pick, axis=2)
    rows = []
    for o in range(out):
        rows.append(np.concatenate([_stream_pack(pick[o].reshape(-1), nm_index_bits(m)),
                                    _stream_pack(_to_fields(vals[o].reshape(-1), bits), bits)]))
    return np.concatenate(rows) if rows else np.zeros(0, np.uint8)


def _nm_unpack(data: np.ndarray, bits: int, out: int, n_in: int, n: int, m: int, where: str) -> np.ndarray:
    rb = nm_row_bytes(bits, n_in, n, m)
    if data.size != out * rb:
        raise UserError(f"{where}: N:M weights are {data.size} bytes, {n}:{m} {bits}-bit needs "
                        f"{out}*{rb} = {out * rb}")
    ib = nm_index_bits(m)
    G = -(-n_in // m)
    S = G * n
    ibytes = -(-S * ib // 8)
    w = np.zeros((out, G * m), np.int8)
    rows = data.reshape(out, rb)
    for o in range(out):
        idx = _stream_unpack(rows[o, :ibytes], ib, S).reshape(G, n)
        val = _to_values(_stream_unpack(rows[o, ibytes:], bits, S), bits).reshape(G, n)
        if n > 1 and (np.diff(idx, axis=1) <= 0).any():
            g = int(np.argwhere(np.diff(idx, axis=1) <= 0)[0][0])
            raise UserError(f"{where}: N:M row {o} group {g}: indices {idx[g].tolist()} not strictly increasing")
        pos = idx + (np.arange(G) * m)[:, None]
        if ((pos >= n_in) & (val != 0)).any():
            raise UserError(f"{where}: N:M row {o}: a non-zero weight at input {int(pos[(pos >= n_in) & (val != 0)][0])}, "
                            f"past in_features {n_in}")
        if bits < 8 and (np.abs(val) > (1 << (bits - 1)) - 1).any():
            raise UserError(f"{where}: N:M row {o}: value {int(val[np.abs(val) > (1 << (bits - 1)) - 1][0])} "
                            f"off the {bits}-bit grid")
        w[o, pos.reshape(-1)] = val.reshape(-1)
    return w[:, :n_in]


# ---------------- layout 5: block-compressed sparse rows ----------------

def _bsr_blocks(w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_ptr [out+1], block columns [nb], block values [nb, block]) of w [out, in]."""
    out, n_in = w.shape
    nbc = -(-n_in // block)
    wp = np.zeros((out, nbc * block), np.int64)
    wp[:, :n_in] = w
    blk = wp.reshape(out, nbc, block)
    nz = (blk != 0).any(axis=2)
    row_ptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int64)
    o_idx, cols = np.nonzero(nz)
    return row_ptr, cols.astype(np.int64), blk[o_idx, cols]


def bsr_offsets(out: int, nnz_blocks: int, block: int, bits: int) -> tuple[int, int, int]:
    """(column array offset, values offset, total bytes) of a layout-5 tensor."""
    col_off = 4 * (out + 1)
    val_off = col_off + 2 * nnz_blocks
    val_off += (-val_off) % 4
    return col_off, val_off, val_off + -(-nnz_blocks * block * bits // 8)


def _bsr_pack(w: np.ndarray, bits: int, block: int) -> np.ndarray:
    out, _ = w.shape
    row_ptr, cols, vals = _bsr_blocks(w, block)
    col_off, val_off, total = bsr_offsets(out, cols.size, block, bits)
    buf = np.zeros(total, np.uint8)
    buf[:col_off] = np.frombuffer(row_ptr.astype("<u4").tobytes(), np.uint8)
    buf[col_off:col_off + 2 * cols.size] = np.frombuffer(cols.astype("<u2").tobytes(), np.uint8)
    buf[val_off:] = _stream_pack(_to_fields(vals.reshape(-1), bits), bits)
    return buf


def _block_index(where: str, data: np.ndarray, col_off: int, n_ptr: int, nnz_blocks: int, nbc: int, n_in: int,
                 block: int, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked CSR index of a block-sparse tensor: pointers (n_ptr + 1 uint32, one per ``unit``) then
    nnz_blocks uint16 block columns. Returns (the ``unit`` of each block, its block column)."""
    what = "row pointers" if unit == "row" else "group pointers"
    ptr = np.frombuffer(data[:col_off].tobytes(), "<u4").astype(np.int64)
    if ptr[0] != 0 or ptr[-1] != nnz_blocks:
        raise UserError(f"{where}: {what} run {ptr[0]}..{ptr[-1]}, expected 0..{nnz_blocks} "
                        "(block counts do not add up)")
    if (np.diff(ptr) < 0).any():
        raise UserError(f"{where}: {what[:-1]} decreases at {unit} {int(np.argmax(np.diff(ptr) < 0))}")
    cols = np.frombuffer(data[col_off:col_off + 2 * nnz_blocks].tobytes(), "<u2").astype(np.int64)
    if (cols >= nbc).any():
        raise UserError(f"{where}: block column {int(cols[cols >= nbc][0])} out of range (in_features {n_in}, "
                        f"block {block}: {nbc} columns)")
    owner = np.repeat(np.arange(n_ptr), np.diff(ptr))
    if nnz_blocks > 1:
        bad = (owner[1:] == owner[:-1]) & (cols[1:] <= cols[:-1])
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(f"{where}: {unit} {int(owner[i])}: block columns {int(cols[i])}, {int(cols[i + 1])} "
                            "not strictly increasing (unsorted or duplicate)")
    return owner, cols


def _bsr_unpack(data: np.ndarray, bits: int, out: int, n_in: int, block: int, nnz_blocks: int,
                where: str) -> np.ndarray:
    nbc = -(-n_in // block)
    if nnz_blocks < 0 or nnz_blocks > out * nbc:
        raise UserError(f"{where}: nnz_blocks {nnz_blocks} outside 0..{out * nbc} (out x block columns)")
    col_off, val_off, total = bsr_offsets(out, nnz_blocks, block, bits)
    if data.size != total:
        raise UserError(f"{where}: block-sparse weights are {data.size} bytes, {nnz_blocks} blocks of "
                        f"{block} {bits}-bit weights in {out} rows need {total}")
    rows, cols = _block_index(where, data, col_off, out, nnz_blocks, nbc, n_in, block, "row")
    vals = _to_values(_stream_unpack(data[val_off:], bits, nnz_blocks * block), bits).reshape(nnz_blocks, block)
    if bits < 8 and (np.abs(vals) > (1 << (bits - 1)) - 1).any():
        raise UserError(f"{where}: block value off the {bits}-bit grid")
    wp = np.zeros((out, nbc * block), np.int8)
    pos = cols[:, None] * block + np.arange(block)
    if ((pos >= n_in) & (vals != 0)).any():
        raise UserError(f"{where}: a non-zero weight past in_features {n_in} in the last block column")
    wp[rows[:, None], pos] = vals
    return wp[:, :n_in]


# ---------------- layout 5 with block_rows = 4: 4 x B blocks in the lanes16 arrangement (k = 4) ----------------
# Row group g = rows 4g..4g+3 (the last one padded with zero rows). (G+1) u32 group pointers, nnz u16 block
# columns, values at the next multiple of 4: per block B/2 little-endian words, word t holding inputs
# c*B + 2t (low half) and c*B + 2t + 1 (high half); nibble q of a half is row 4g+q: q = 0..2 biased
# (u = w + 8), q = 3 two's complement; a half read as int16 is u0 + 16 u1 + 256 u2 + 4096 w3 (layout 8's lane).

def _bsr4_blocks(w: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group_ptr [G+1], block columns [nb], block values [nb, 4, block]) of w [out, in]."""
    out, n_in = w.shape
    G, nbc = -(-out // 4), -(-n_in // block)
    wp = np.zeros((G * 4, nbc * block), np.int64)
    wp[:out, :n_in] = w
    blk = wp.reshape(G, 4, nbc, block).transpose(0, 2, 1, 3)        # [G, nbc, 4, block]
    nz = (blk != 0).any(axis=(2, 3))
    gptr = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int64)
    g_idx, cols = np.nonzero(nz)
    return gptr, cols.astype(np.int64), blk[g_idx, cols]


def bsr4_offsets(out: int, nnz_blocks: int, block: int) -> tuple[int, int, int]:
    """(column array offset, values offset, total bytes) of a layout-5 tensor with 4-row blocks (k = 4)."""
    col_off = 4 * (-(-out // 4) + 1)
    val_off = col_off + 2 * nnz_blocks
    val_off += (-val_off) % 4
    return col_off, val_off, val_off + nnz_blocks * 2 * block


def _lanes4_halves(vals: np.ndarray) -> np.ndarray:
    """[nb, 4, B] 4-bit values -> [nb, B] uint16 halves (u0 + 16 u1 + 256 u2 + 4096 w3 as 16 bits)."""
    v = np.asarray(vals, np.int64)
    u = np.concatenate([v[:, :3] + 8, v[:, 3:] & 15], axis=1)
    return (u[:, 0] | u[:, 1] << 4 | u[:, 2] << 8 | u[:, 3] << 12).astype("<u2")


def _bsr4_pack(w: np.ndarray, bits: int, block: int, where: str) -> np.ndarray:
    if bits != 4:
        raise UserError(f"{where}: 4-row blocks (block:4x{block}) hold 4-bit weights only, got {bits}-bit")
    out, _ = w.shape
    gptr, cols, vals = _bsr4_blocks(w, block)
    col_off, val_off, total = bsr4_offsets(out, cols.size, block)
    buf = np.zeros(total, np.uint8)
    buf[:col_off] = np.frombuffer(gptr.astype("<u4").tobytes(), np.uint8)
    buf[col_off:col_off + 2 * cols.size] = np.frombuffer(cols.astype("<u2").tobytes(), np.uint8)
    buf[val_off:] = np.frombuffer(_lanes4_halves(vals).tobytes(), np.uint8)
    return buf


def _bsr4_unpack(data: np.ndarray, bits: int, out: int, n_in: int, block: int, nnz_blocks: int,
                 where: str) -> np.ndarray:
    if bits != 4:
        raise UserError(f"{where}: 4-row blocks (block_rows 4) hold 4-bit weights only, got {bits}-bit")
    G, nbc = -(-out // 4), -(-n_in // block)
    if nnz_blocks < 0 or nnz_blocks > G * nbc:
        raise UserError(f"{where}: nnz_blocks {nnz_blocks} outside 0..{G * nbc} (row groups x block columns)")
    col_off, val_off, total = bsr4_offsets(out, nnz_blocks, block)
    if data.size != total:
        raise UserError(f"{where}: 4-row block-sparse weights are {data.size} bytes, {nnz_blocks} blocks of 4 x "
                        f"{block} 4-bit weights in {G} row groups need {total}")
    grp, cols = _block_index(where, data, col_off, G, nnz_blocks, nbc, n_in, block, "row group")
    h = np.frombuffer(data[val_off:].tobytes(), "<u2").astype(np.int64).reshape(nnz_blocks, block)
    nib = np.stack([(h >> (4 * q)) & 15 for q in range(4)], axis=1)                 # [nb, 4, B]
    if (nib[:, :3] == 0).any() or (nib[:, 3] == 8).any():
        raise UserError(f"{where}: 4-row block value -8 off the 4-bit grid (biased nibble 0 / row-3 nibble 8)")
    vals = np.concatenate([nib[:, :3] - 8, ((nib[:, 3:] ^ 8) - 8)], axis=1)
    wp = np.zeros((G, 4, nbc * block), np.int8)
    pos = cols[:, None] * block + np.arange(block)                                   # [nb, B]
    rows_ok = (grp[:, None] * 4 + np.arange(4)) < out                                # [nb, 4]
    if ((~rows_ok[:, :, None]) & (vals != 0)).any():
        raise UserError(f"{where}: a non-zero weight in a padding row past out_features {out}")
    if ((pos >= n_in)[:, None, :] & (vals != 0)).any():
        raise UserError(f"{where}: a non-zero weight past in_features {n_in} in the last block column")
    wp[grp[:, None, None], np.arange(4)[None, :, None], pos[:, None, :]] = vals
    return wp.reshape(G * 4, nbc * block)[:out, :n_in]


# ---------------- one entry point ----------------

def pack(w: np.ndarray, bits: int, spec: SparseSpec, where: str = "weights") -> bytes:
    """Integer weights [out, in] (on the k-bit grid) -> packed bytes of spec's layout."""
    _check_bits(bits, where)
    w = np.asarray(w, np.int64)
    if w.ndim != 2:
        raise UserError(f"{where}: weights must be 2-D [out, in], got shape {w.shape}")
    why = spec.fits(w)
    if why:
        raise UserError(f"{where}: weights are not {spec.n}:{spec.m} sparse: {why}; prune with "
                        f"training.prune (kind n:m) or use --sparse block:B / csr")
    if spec.kind == "nm":
        return _nm_pack(w, bits, spec.n, spec.m).tobytes()
    if spec.rows == 4:
        return _bsr4_pack(w, bits, spec.block, where).tobytes()
    return _bsr_pack(w, bits, spec.block).tobytes()


def unpack(data, bits: int, out: int, n_in: int, layout: int, options: dict, where: str = "weights") -> np.ndarray:
    """Packed bytes of layout 4/5 + the op's custom options -> int8 weights [out, in] (validated)."""
    _check_bits(bits, where)
    spec = spec_from_options(layout, options)
    data = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8).reshape(-1)
    if spec.kind == "nm":
        return _nm_unpack(data, bits, out, n_in, spec.n, spec.m, where)
    try:
        nb = int(options["nnz_blocks"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: block-sparse layout needs custom option nnz_blocks") from None
    if spec.rows == 4:
        return _bsr4_unpack(data, bits, out, n_in, spec.block, nb, where)
    return _bsr_unpack(data, bits, out, n_in, spec.block, nb, where)


def density(w: np.ndarray) -> float:
    w = np.asarray(w)
    return float((w != 0).sum()) / max(1, w.size)


# ---------------- magnitude pruning of integer weights (benchmarks, tests, one-shot) ----------------

def prune_mask(w: np.ndarray, density: float, spec: SparseSpec | None, min_keep: int = 0) -> np.ndarray:
    """Keep-mask [out, in] of magnitude pruning ``w`` to ``density`` in spec's structure: n:m keeps the
    N largest |w| of every group of M (density = N/M, the argument is ignored); block:B keeps the
    blocks with the largest L1 norm; csr / None keeps the largest |w| (ties by position); at least
    ``min_keep`` blocks are kept. Also the mask of training's gradual pruning (training/prune.py)."""
    w = np.abs(np.asarray(w, np.float64))
    out, n_in = w.shape
    if spec is not None and spec.kind == "nm":
        G = -(-n_in // spec.m)
        wp = np.full((out, G * spec.m), -1.0)
        wp[:, :n_in] = w
        order = np.argsort(-wp.reshape(out, G, spec.m), axis=2, kind="stable")[:, :, :spec.n]
        keep = np.zeros((out, G, spec.m), bool)
        np.put_along_axis(keep, order, True, axis=2)
        return keep.reshape(out, G * spec.m)[:, :n_in]
    B = 1 if spec is None else spec.block
    R = 1 if spec is None else spec.rows
    nbc, G = -(-n_in // B), -(-out // R)
    wp = np.zeros((G * R, nbc * B))
    wp[:out, :n_in] = w
    score = wp.reshape(G, R, nbc, B).sum(axis=(1, 3)).reshape(-1)
    k = max(min_keep, int(round(density * score.size)))
    keep = np.zeros(score.size, bool)
    keep[np.argsort(-score, kind="stable")[:k]] = True
    return np.repeat(np.repeat(keep.reshape(G, nbc), B, axis=1), R, axis=0)[:out, :n_in]


def prune_tflite(data: bytes, density: float, spec: SparseSpec | None, layers=None, name: str = "<model>") -> bytes:
    """A plain (INT8 / INT4 FULLY_CONNECTED) .tflite with the weights of ``layers`` (indices of FC ops,
    default all) magnitude-pruned to ``density`` (``prune_mask``). Scales and biases unchanged."""
    TT = schema.TensorType

    model = load_model(bytes(data), name)
    sg = model.subgraphs[0]
    fcs = [op for op in sg.operators or [] if op_name(model, op) == "FULLY_CONNECTED"]
    for j, op in enumerate(fcs):
        if layers is not None and j not in layers:
            continue
        w_t = sg.tensors[op.inputs[1]]
        w = tensor_data(model, w_t).astype(np.int8).reshape(w_t.shape[0], -1)   # INT4 comes unpacked
        w = np.where(prune_mask(w, density, spec), w, 0).astype(np.int8)
        w_t.buffer = add_buffer(model, _packing.pack_int4(w) if w_t.type == TT.INT4 else w.tobytes())
    return save_model(model)


# ---------------- TFLite's standard encoding (SparsityParameters), INT8 FULLY_CONNECTED ----------------
# The one int8 form TFLite's builtin FULLY_CONNECTED runs: [out, in] in 1 x 16 blocks, dimension 0
# DENSE, block columns SPARSE_CSR, the block DENSE (tf.lite refuses other int8 block shapes). TFLite
# Micro and this project's C runtime have no kernel for it (the runtime rejects it with a status).

TFLITE_BLOCK = 16


def encode_tflite_sparsity(model, w_t, w: np.ndarray, where: str = "weights") -> None:
    """Store integer weights w [out, in] in tensor w_t (INT8) with TFLite SparsityParameters, 1 x 16 blocks."""
    s = schema
    out, n_in = w.shape
    if n_in % TFLITE_BLOCK:
        raise UserError(f"{where}: --sparse tflite needs in_features divisible by {TFLITE_BLOCK} (got {n_in}); "
                        "use block:16 (the custom-op layout handles tails)")
    nbc = n_in // TFLITE_BLOCK
    blk = np.asarray(w, np.int8).reshape(out, nbc, TFLITE_BLOCK)
    nz = (blk != 0).any(axis=2)
    seg = np.concatenate([[0], np.cumsum(nz.sum(axis=1))]).astype(np.int32)
    rows, cols = np.nonzero(nz)
    sp = s.SparsityParametersT()
    sp.traversalOrder = [0, 1, 2]
    sp.blockMap = [1]
    d0, d1, d2 = s.DimensionMetadataT(), s.DimensionMetadataT(), s.DimensionMetadataT()
    d0.format, d0.denseSize = s.DimensionType.DENSE, out
    d1.format = s.DimensionType.SPARSE_CSR
    seg_v, idx_v = s.Int32VectorT(), s.Int32VectorT()
    seg_v.values, idx_v.values = seg.tolist(), cols.astype(np.int32).tolist()
    d1.arraySegments, d1.arraySegmentsType = seg_v, s.SparseIndexVector.Int32Vector
    d1.arrayIndices, d1.arrayIndicesType = idx_v, s.SparseIndexVector.Int32Vector
    d2.format, d2.denseSize = s.DimensionType.DENSE, TFLITE_BLOCK
    sp.dimMetadata = [d0, d1, d2]
    w_t.type = s.TensorType.INT8
    w_t.shape = [out, n_in]
    w_t.sparsity = sp
    w_t.buffer = add_buffer(model, blk[rows, cols].tobytes())


def _vec(v, where):
    vals = getattr(v, "values", None)
    if vals is None:
        raise UserError(f"{where}: sparsity index vector missing")
    return np.asarray(vals, np.int64)


def decode_tflite_sparsity(w_t, raw: np.ndarray, where: str = "weights") -> np.ndarray:
    """Densify an INT8 weight tensor carrying SparsityParameters (the 1 x B block / CSR forms of
    2-D tensors), validating every index; returns int8 [out, in]."""
    sp = w_t.sparsity
    shape = [int(d) for d in (w_t.shape if w_t.shape is not None else [])]
    if len(shape) != 2:
        raise UserError(f"{where}: sparse weights must be 2-D, got shape {shape}")
    out, n_in = shape
    order = [int(v) for v in (sp.traversalOrder if sp.traversalOrder is not None else [])]
    bmap = [int(v) for v in (sp.blockMap if sp.blockMap is not None else [])]
    dims = sp.dimMetadata or []
    if order == [0, 1] and not bmap and len(dims) == 2:
        B = 1
    elif order == [0, 1, 2] and bmap == [1] and len(dims) == 3 and dims[2].format == s.DimensionType.DENSE:
        B = int(dims[2].denseSize)
    else:
        raise UserError(f"{where}: sparsity traversal {order} / block map {bmap} not supported (2-D, row-major, 1 x B blocks)")
    if B < 1 or n_in % B or dims[0].format != s.DimensionType.DENSE or int(dims[0].denseSize) != out \
            or dims[1].format != s.DimensionType.SPARSE_CSR:
        raise UserError(f"{where}: sparsity metadata inconsistent with shape {shape} (dense rows, CSR block columns)")
    nbc = n_in // B
    seg, idx = _vec(dims[1].arraySegments, where), _vec(dims[1].arrayIndices, where)
    if seg.size != out + 1 or seg[0] != 0 or (np.diff(seg) < 0).any() or seg[-1] != idx.size:
        raise UserError(f"{where}: sparsity segments do not add up (need {out + 1} non-decreasing from 0 to {idx.size})")
    if idx.size and (idx.min() < 0 or idx.max() >= nbc):
        raise UserError(f"{where}: sparsity index out of range (0..{nbc - 1})")
    rows = np.repeat(np.arange(out), np.diff(seg))
    if idx.size > 1 and ((rows[1:] == rows[:-1]) & (idx[1:] <= idx[:-1])).any():
        raise UserError(f"{where}: sparsity indices of a row unsorted or duplicate")
    raw = np.asarray(raw).reshape(-1)
    if raw.size != idx.size * B:
        raise UserError(f"{where}: sparse weights hold {raw.size} values, the metadata needs {idx.size * B}")
    w = np.zeros((out, nbc, B), np.int8)
    w[rows, idx] = raw.astype(np.int8).reshape(-1, B)
    return w.reshape(out, n_in)
