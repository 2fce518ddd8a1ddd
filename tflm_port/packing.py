"""Weight layouts for SUB8_FULLY_CONNECTED (docs/formats.md section 3) and TFLite INT4 packing.

A layout is one small unit: a ``Layout`` subclass with ``row_bytes``, ``pack_rows`` and
``unpack_rows`` and the set of bit widths it supports, registered in ``LAYOUTS``. Integer weights
are numpy arrays ``[out, in]`` of values on the k-bit grid (k >= 2: symmetric narrow range; k = 1:
{-1, +1}).
"""
from __future__ import annotations

import numpy as np

from training.errors import UserError
from tflm_port import layout_table


def grid_range(bits: int) -> tuple[int, int]:
    if bits == 1:
        return -1, 1
    m = (1 << (bits - 1)) - 1
    return -m, m


def check_grid(w: np.ndarray, bits: int, what: str = "weights") -> None:
    """Raise UserError if ``w`` holds a value that is not on the k-bit grid."""
    if not 1 <= bits <= 8:
        raise UserError(f"{what}: bit width {bits} is not in 1..8")
    w = np.asarray(w)
    if bits == 1:
        bad = (w != 1) & (w != -1)
    else:
        lo, hi = grid_range(bits)
        bad = (w < lo) | (w > hi)
    if bad.any():
        v = int(w[bad].flat[0])
        raise UserError(f"{what}: value {v} is not on the {bits}-bit grid "
                        f"({'{-1,+1}' if bits == 1 else str(grid_range(bits))}); "
                        f"{int(bad.sum())} of {w.size} values off-grid")


def _fields(w: np.ndarray, bits: int) -> np.ndarray:
    """Integer weights -> unsigned k-bit field values (uint8)."""
    w = np.asarray(w, dtype=np.int16)
    if bits == 1:
        return (w > 0).astype(np.uint8)
    return (w & ((1 << bits) - 1)).astype(np.uint8)


def _values(f: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned k-bit field values -> int8 weights."""
    f = f.astype(np.int16)
    if bits == 1:
        return np.where(f != 0, 1, -1).astype(np.int8)
    sign = 1 << (bits - 1)
    return ((f ^ sign) - sign).astype(np.int8)


class Layout:
    id: int = -1
    name: str = ""
    supported_bits: frozenset = frozenset()

    def row_bytes(self, bits: int, in_features: int) -> int:
        raise NotImplementedError

    def packed_bytes(self, bits: int, out_features: int, in_features: int) -> int:
        """Bytes of a whole packed [out, in] matrix (out * row_bytes unless a layout says otherwise)."""
        return out_features * self.row_bytes(bits, in_features)

    def pack_rows(self, w: np.ndarray, bits: int) -> np.ndarray:
        raise NotImplementedError

    def unpack_rows(self, data: np.ndarray, bits: int, out_features: int, in_features: int) -> np.ndarray:
        raise NotImplementedError

    def check_bits(self, bits: int) -> None:
        if bits not in self.supported_bits:
            raise UserError(f"layout {self.id} ({self.name}) cannot hold {bits}-bit weights "
                            f"(supports {sorted(self.supported_bits)})")


class RowLsb(Layout):
    """Layout 0: per row, LSB-first stream of k-bit two's complement fields, row byte-aligned."""

    id = 0
    name = "row_lsb"
    supported_bits = frozenset(layout_table.DENSE_UNITS[0])

    def row_bytes(self, bits, in_features):
        return layout_table.row_bytes(self.id, bits, in_features)

    def pack_rows(self, w, bits):
        w = np.asarray(w)
        out, n = w.shape
        f = _fields(w, bits)                                      # [out, n]
        # bit matrix [out, n, bits], LSB first -> stream [out, n*bits]
        bitsarr = (f[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1
        stream = bitsarr.reshape(out, n * bits)
        rb = self.row_bytes(bits, n)
        pad = rb * 8 - n * bits
        if pad:
            stream = np.concatenate([stream, np.zeros((out, pad), np.uint8)], axis=1)
        return np.packbits(stream.reshape(out, rb, 8), axis=2, bitorder="little").reshape(out * rb)

    def unpack_rows(self, data, bits, out_features, in_features):
        rb = self.row_bytes(bits, in_features)
        data = np.asarray(data, dtype=np.uint8)
        if data.size != out_features * rb:
            raise UserError(f"packed weights: {data.size} bytes, layout {self.id} needs "
                            f"{out_features}*{rb} = {out_features * rb}")
        stream = np.unpackbits(data.reshape(out_features, rb), axis=1, bitorder="little")
        stream = stream[:, : in_features * bits].reshape(out_features, in_features, bits)
        f = (stream.astype(np.uint16) << np.arange(bits, dtype=np.uint16)).sum(axis=2)
        return _values(f, bits)


LAYOUTS: dict[int, Layout] = {lay.id: lay for lay in (RowLsb(),)}
# layout ids no longer written or read, with the reason (the id stays reserved in the format)
RETIRED_LAYOUTS = {1: "layout 1 (row_bitplane) is retired: no C runtime ran it (use 0, 2, 3 or 6)"}


def get_layout(layout: int) -> Layout:
    if layout in RETIRED_LAYOUTS:
        raise UserError(RETIRED_LAYOUTS[layout])
    if layout not in LAYOUTS:
        raise UserError(f"unknown weight layout {layout} (known: "
                        + ", ".join(f"{k}={v.name}" for k, v in LAYOUTS.items()) + ")")
    return LAYOUTS[layout]


def pack(w: np.ndarray, bits: int, layout: int = 0) -> bytes:
    """Integer weights [out, in] -> packed bytes in the given layout (checks the grid)."""
    lay = get_layout(layout)
    lay.check_bits(bits)
    w = np.asarray(w)
    if w.ndim != 2:
        raise UserError(f"weights must be 2-D [out, in], got shape {w.shape}")
    check_grid(w, bits)
    return lay.pack_rows(w, bits).tobytes()


def unpack(data: bytes | np.ndarray, bits: int, out_features: int, in_features: int, layout: int = 0) -> np.ndarray:
    """Packed bytes -> int8 weights [out, in]."""
    lay = get_layout(layout)
    lay.check_bits(bits)
    return lay.unpack_rows(np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data,
                           bits, out_features, in_features)


def row_bytes(bits: int, in_features: int, layout: int = 0) -> int:
    lay = get_layout(layout)
    lay.check_bits(bits)
    return lay.row_bytes(bits, in_features)


def packed_bytes(bits: int, out_features: int, in_features: int, layout: int = 0) -> int:
    """Bytes of a packed [out, in] matrix in ``layout`` (layout 6 pads the last group of rows)."""
    lay = get_layout(layout)
    lay.check_bits(bits)
    return lay.packed_bytes(bits, out_features, in_features)


# --- TFLite INT4 (TensorType.INT4): flattened tensor, two per byte, low nibble = even element ----

def pack_int4(values: np.ndarray) -> bytes:
    v = np.asarray(values).reshape(-1).astype(np.int16)
    if ((v < -8) | (v > 7)).any():
        raise UserError("INT4 pack: value outside [-8, 7]")
    nib = (v & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.concatenate([nib, np.zeros(1, np.uint8)])
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(data: bytes | np.ndarray, count: int) -> np.ndarray:
    b = np.frombuffer(bytes(data), np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)
    if b.size != (count + 1) // 2:
        raise UserError(f"INT4 tensor: {b.size} bytes for {count} elements (need {(count + 1) // 2})")
    nib = np.empty(b.size * 2, np.int16)
    nib[0::2] = b & 0xF
    nib[1::2] = b >> 4
    nib = nib[:count]
    return ((nib ^ 8) - 8).astype(np.int8)


# The optimized kernels' layouts (2 r4_words, 3 r4_nib32, 6 rows_per_byte) live in their own module;
# importing it registers them in LAYOUTS, so `--layout 2|3|6` works wherever packing is used. 4 and 5 are
# the sparse layouts (tflm_port/sparse.py), not registered here.
from tflm_port import layouts_opt  # noqa: E402,F401
