"""Weight layouts for SUB8_FULLY_CONNECTED (docs/formats.md section 3) and TFLite INT4 packing.

A layout is one small unit: a ``Layout`` subclass with ``row_bytes``, ``pack_rows`` and
``unpack_rows`` and the set of bit widths it supports, registered in ``LAYOUTS``. Integer weights
are numpy arrays ``[out, in]`` of values on the k-bit grid (k >= 2: symmetric narrow range; k = 1:
{-1, +1}).
"""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
from tflm_port import layouts_opt
from tflm_port.layout_base import Layout, check_grid, grid_range  # noqa: F401  (part of packing's API)
from tflm_port.layout_base import fields as _fields
from tflm_port.layout_base import values as _values


class RowLsb(Layout):
    """Layout 0: per row, LSB-first stream of k-bit two's complement fields, row byte-aligned."""

    id = 0
    name = "row_lsb"

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
        data = self.sized(data, bits, out_features, in_features)
        rb = self.row_bytes(bits, in_features)
        stream = np.unpackbits(data.reshape(out_features, rb), axis=1, bitorder="little")
        stream = stream[:, : in_features * bits].reshape(out_features, in_features, bits)
        f = (stream.astype(np.uint16) << np.arange(bits, dtype=np.uint16)).sum(axis=2)
        return _values(f, bits)


# every layout of the dense packed format: 0 here; 2, 3, 6 (the optimized kernels') in layouts_opt.
LAYOUTS: dict[int, Layout] = {lay.id: lay for lay in (RowLsb(), *layouts_opt.LAYOUTS)}
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
