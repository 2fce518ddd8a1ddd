"""What every weight layout is built on: the k-bit grid, the field <-> value conversion and the
``Layout`` base class. The layouts themselves live in ``packing`` (0, the registry and the public
pack/unpack API) and ``layouts_opt`` (2, 3, 6, 7, 8, 9); both import this module, neither the other's
registry, so the two import one way (layouts_opt -> layout_base <- packing -> layouts_opt)."""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
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


def fields(w: np.ndarray, bits: int) -> np.ndarray:
    """Integer weights -> unsigned k-bit field values (uint8)."""
    w = np.asarray(w, dtype=np.int16)
    if bits == 1:
        return (w > 0).astype(np.uint8)
    return (w & ((1 << bits) - 1)).astype(np.uint8)


def values(f: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned k-bit field values -> int8 weights."""
    f = f.astype(np.int16)
    if bits == 1:
        return np.where(f != 0, 1, -1).astype(np.int8)
    sign = 1 << (bits - 1)
    return ((f ^ sign) - sign).astype(np.int8)


class Layout:
    """One weight layout: ``id``, ``name``, ``pack_rows`` and ``unpack_rows``. Its sizes and bit widths
    come from the table Python and C share (``layout_table.DENSE_UNITS[id]``: bits -> (unit_inputs,
    unit_bytes, group_rows)); a layout outside that table (layout 7) sets ``units`` itself."""

    id: int = -1
    name: str = ""
    units: dict[int, tuple[int, int, int]] | None = None

    def __init__(self):
        if self.units is None:
            self.units = layout_table.DENSE_UNITS[self.id]
        self.supported_bits = frozenset(self.units)

    def row_bytes(self, bits: int, in_features: int) -> int:
        """Bytes of one packed row (of a grouped layout: one row's share of a full group)."""
        return layout_table.unit_row_bytes(self.units.get(bits), bits, in_features)

    def packed_bytes(self, bits: int, out_features: int, in_features: int) -> int:
        """Bytes of a whole packed [out, in] matrix: whole groups of ``group_rows`` rows (out * row_bytes
        for the layouts of one-row groups)."""
        return layout_table.unit_packed_bytes(self.units.get(bits), bits, out_features, in_features)

    def sized(self, data, bits: int, out_features: int, in_features: int) -> np.ndarray:
        """``data`` as uint8, or UserError (one line) when it is not the packed size of [out, in]."""
        self.check_bits(bits)
        data = np.asarray(data, np.uint8)
        need = self.packed_bytes(bits, out_features, in_features)
        if data.size != need:
            g, rb = self.units[bits][2], self.row_bytes(bits, in_features)
            shape = f"{out_features} rows" if g == 1 else f"ceil({out_features}/{g}) groups x {g} rows"
            raise UserError(f"packed weights: {data.size} bytes, layout {self.id} needs {need} "
                            f"({shape} x {rb} bytes)")
        return data

    def pack_rows(self, w: np.ndarray, bits: int) -> np.ndarray:
        raise NotImplementedError

    def unpack_rows(self, data: np.ndarray, bits: int, out_features: int, in_features: int) -> np.ndarray:
        raise NotImplementedError

    def check_bits(self, bits: int) -> None:
        if bits not in self.supported_bits:
            raise UserError(f"layout {self.id} ({self.name}) cannot hold {bits}-bit weights "
                            f"(supports {sorted(self.supported_bits)})")
