"""Kernel-specific weight layouts of the optimized FC kernels (docs/formats.md layouts 2, 3, 6, 7, 8 and 9,
firmware/kernels/opt/kws_fc_opt_layouts.c is the C reader/packer). ``packing`` registers
them (``LAYOUTS`` here) beside its own; use them through ``packing.pack``/``unpack``.

Layouts 2 and 3 group output rows by four (the last group holds out % 4 rows when out is not a multiple of 4)
and interleave the group's rows unit by unit, so a kernel reads four rows through one pointer.
Padding fields are 0; ``packed_bytes = out * row_bytes`` holds for layouts 2 and 3 (layout 6: see RowsPerByte).
"""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
from tflm_port import layout_table
from tflm_port.layout_base import Layout


def _interleave(units: np.ndarray) -> np.ndarray:
    """units [out, n_units, unit_bytes] -> bytes, rows of each group of 4 interleaved unit-wise."""
    out = units.shape[0]
    parts = []
    for g0 in range(0, out, 4):
        grp = units[g0:g0 + 4]                               # [G, n, ub]
        parts.append(np.ascontiguousarray(grp.transpose(1, 0, 2)).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def _deinterleave(data: np.ndarray, out: int, n_units: int, unit_bytes: int) -> np.ndarray:
    units = np.empty((out, n_units, unit_bytes), np.uint8)
    pos = 0
    for g0 in range(0, out, 4):
        G = min(4, out - g0)
        blk = data[pos:pos + G * n_units * unit_bytes].reshape(n_units, G, unit_bytes)
        units[g0:g0 + G] = blk.transpose(1, 0, 2)
        pos += G * n_units * unit_bytes
    return units


def bit1_pos(j: np.ndarray) -> np.ndarray:
    """layout 2, k = 1: bit of weight j (0..31) inside its 32-bit word."""
    return 8 * (j & 3) + 7 - (j >> 2)


class R4Words(Layout):
    """Layout 2: 32-bit words, 4-row interleave. k = 1: 32 sign bits per word (bit1_pos order);
    k = 2..7: F = 16 // k biased fields u = w + 2^(k-1) per 16-bit half, field j of the low half =
    weight 2F*c + 2j, of the high half = weight 2F*c + 2j + 1 (Cortex-M SMLAD lanes)."""

    id = 2
    name = "r4_words"

    @staticmethod
    def per_word(bits: int) -> int:
        return layout_table.DENSE_UNITS[2][bits][0]

    def _positions(self, bits):
        n = self.per_word(bits)
        j = np.arange(n)
        if bits == 1:
            return bit1_pos(j)
        return (j & 1) * 16 + (j >> 1) * bits

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        n = self.per_word(bits)
        W = (n_in + n - 1) // n
        f = (w > 0).astype(np.uint64) if bits == 1 else (w + (1 << (bits - 1))).astype(np.uint64)
        fp = np.zeros((out, W * n), np.uint64)
        fp[:, :n_in] = f
        words = (fp.reshape(out, W, n) << self._positions(bits).astype(np.uint64)).sum(axis=2).astype("<u4")
        return _interleave(words.view(np.uint8).reshape(out, W, 4))

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        rb = self.row_bytes(bits, in_features)
        n = self.per_word(bits)
        W = rb // 4
        words = _deinterleave(data, out_features, W, 4).reshape(out_features, W * 4).view("<u4").astype(np.int64)
        f = (words[:, :, None] >> self._positions(bits)[None, None, :]) & ((1 << bits) - 1)
        f = f.reshape(out_features, W * n)[:, :in_features]
        return (np.where(f != 0, 1, -1) if bits == 1 else f - (1 << (bits - 1))).astype(np.int8)


class R4Nib32(Layout):
    """Layout 3: blocks of 32 weights in 16 bytes, 4-row interleave; byte j: low nibble = weight
    32c + j, high nibble = weight 32c + 16 + j, biased u = w + 8 (MVE VMLADAV, NEON SDOT/SMLAL)."""

    id = 3
    name = "r4_nib32"

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        W = (n_in + 31) // 32
        u = np.zeros((out, W * 32), np.int64)
        u[:, :n_in] = w + 8
        u = u.reshape(out, W, 2, 16)
        blocks = (u[:, :, 0, :] | (u[:, :, 1, :] << 4)).astype(np.uint8)
        return _interleave(blocks)

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        rb = self.row_bytes(bits, in_features)
        W = rb // 16
        b = _deinterleave(data, out_features, W, 16).astype(np.int16)
        u = np.concatenate([b & 15, b >> 4], axis=2).reshape(out_features, W * 32)[:, :in_features]
        return (u - 8).astype(np.int8)




class RowsPerByte(Layout):
    """Layout 6 (numbered after the sparse layouts 4 and 5 of tflm_port/sparse.py): each byte holds the same input of G = 8 // k consecutive rows (k = 1, 2, 4), row r of
    the group in bits [k*r, k*r + k). Groups of G rows (the last one padded with zero bytes' rows),
    each group ``in_pad = 16 * ceil(in / 16)`` bytes, byte j = input j; padding bytes 0.
    k = 2, 4: rows r < G - 1 hold biased fields u = w + 2^(k-1), the top row the two's complement
    field, so the byte read as int8 and shifted right arithmetically by k*r gives sum_{q >= r}
    2^(k(q-r)) * field_q (the telescoping sums of the Helium / SDOT kernels). k = 1: bit r = 1 <=> +1.
    ``packed_bytes = ceil(out / G) * in_pad`` (not out * row_bytes when out % G != 0)."""

    id = 6
    name = "rows_per_byte"

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        G, pad = 8 // bits, 16 * ((n_in + 15) // 16)
        groups = (out + G - 1) // G
        f = np.zeros((groups * G, pad), np.int64)
        if bits == 1:
            f[:out, :n_in] = w > 0
        else:
            f[:out, :n_in] = w + (1 << (bits - 1))
            top = np.arange(out) % G == G - 1
            f[:out][top, :n_in] = w[top] & ((1 << bits) - 1)
            f[out:, :] = 0
            f[:, n_in:] = 0
        shifts = (np.arange(G) * bits)[None, :, None]
        b = (f.reshape(groups, G, pad) << shifts).sum(axis=1)
        return b.astype(np.uint8).reshape(-1)

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        G, pad = 8 // bits, 16 * ((in_features + 15) // 16)
        b = data.reshape(-1, 1, pad).astype(np.int64)
        f = (b >> (np.arange(G) * bits)[None, :, None]) & ((1 << bits) - 1)
        f = f.reshape(-1, pad)[:out_features, :in_features]
        if bits == 1:
            return np.where(f != 0, 1, -1).astype(np.int8)
        top = (np.arange(out_features) % G == G - 1)[:, None]
        half = 1 << (bits - 1)
        w = np.where(top, np.where(f >= half, f - (1 << bits), f), f - half)
        return w.astype(np.int8)


# ---------------------------------------------------------------------------- layout 7 (SUB8_FC_A4's DSP kernel)

POS_R0 = (0, 4, 2, 6)   # nibble of input 4c + j in word c: row 2p (biased u = w + 8)
POS_R1 = (3, 7, 5, 1)   # row 2p + 1 (two's complement)


class A4Pairs(Layout):
    """Layout 7 ``a4_pairs`` (k = 2..4), read by the Cortex-M DSP kernel of SUB8_FC_A4: rows in pairs,
    four inputs of a pair per 32-bit little-endian word (nibbles ``POS_R0`` / ``POS_R1``), the words of
    pairs 2g and 2g+1 interleaved (an odd last pair alone); padding fields 0.
    ``packed_bytes = 4 * ceil(in / 4) * ceil(out / 2)`` (docs/formats.md section 9)."""

    id = 7
    name = "a4_pairs"
    units = {k: (4, 2, 2) for k in (2, 3, 4)}   # not in layout_table's SUB8_FULLY_CONNECTED table

    @staticmethod
    def _order(out_features, in_features):
        """word index (in the packed array) of (pair p, word c), shape [pairs, W]."""
        W, pairs = (in_features + 3) // 4, (out_features + 1) // 2
        idx = np.empty((pairs, W), np.int64)
        for p in range(pairs):
            g = p // 2
            if 2 * g + 1 < pairs:
                idx[p] = g * 2 * W + np.arange(W) * 2 + (p & 1)
            else:
                idx[p] = g * 2 * W + np.arange(W)
        return idx

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        W, pairs = (n_in + 3) // 4, (out + 1) // 2
        r0 = np.zeros((pairs, 4 * W), np.uint64)
        r1 = np.zeros((pairs, 4 * W), np.uint64)
        r0[:, :n_in] = w[0::2] + 8
        r1[:out // 2, :n_in] = w[1::2] & 15
        words = np.zeros((pairs, W), np.uint64)
        for j in range(4):
            words |= r0[:, j::4] << np.uint64(4 * POS_R0[j])
            words |= r1[:, j::4] << np.uint64(4 * POS_R1[j])
        flat = np.zeros(pairs * W, np.uint32)
        flat[self._order(out, n_in).reshape(-1)] = words.reshape(-1).astype(np.uint32)
        return flat.astype("<u4").view(np.uint8)

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        words = data.view("<u4").astype(np.int64)[self._order(out_features, in_features)]  # [pairs, W]
        pairs, W = words.shape
        w = np.zeros((2 * pairs, 4 * W), np.int64)
        for j in range(4):
            w[0::2, j::4] = ((words >> (4 * POS_R0[j])) & 15) - 8
            t = (words >> (4 * POS_R1[j])) & 15
            w[1::2, j::4] = np.where(t >= 8, t - 16, t)
        w = w[:out_features, :in_features]
        if np.abs(w).max(initial=0) > (1 << (bits - 1)) - 1:
            raise UserError(f"packed weights: a value outside the {bits}-bit grid in layout 7")
        return w.astype(np.int8)


# ---------------------------------------------------------------------------- layout 8 (Cortex-M DSP lanes)

def lanes16_place(bits: int, q: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layout 8: (word index inside the group, bit position) of row q (0..3) of a group, input i.
    k = 4: word 2*(i//4) + (i%4)//2, bits 16*(i%2) + 4q (one 16-bit lane per input: the four rows' nibbles).
    k = 2, 1: row pair P = q//2 (rows 2P bottom, 2P+1 top of the lane); words of pairs 0 and 1 alternate per
    8 (k=2) or 16 (k=1) inputs; extraction e (the kernel's AND with the mask rotated right by s) of a word
    holds inputs 2e, 2e+1 of that word: bit (s + 16*(i%2) + (16-k)*top) mod 32, s = 2 + 4e (k=2), 2e + 1 (k=1)."""
    q, i = np.asarray(q), np.asarray(i)
    if bits == 4:
        return 2 * (i // 4) + (i % 4) // 2, 16 * (i % 2) + 4 * q
    per = 8 if bits == 2 else 16
    word = 2 * (i // per) + q // 2
    e = (i % per) // 2
    s = 2 + 4 * e if bits == 2 else 2 * e + 1
    return word, (s + 16 * (i % 2) + (16 - bits) * (q % 2)) % 32


class Lanes16(Layout):
    """Layout 8 ``lanes16`` (k = 1, 2, 4), read by the Cortex-M DSP kernel: rows in groups of four (the
    last group padded with zero rows), each group a run of little-endian 32-bit words whose 16-bit lanes
    are SMLAD operands (``lanes16_place``). k = 4: a lane holds one input of the four rows, rows 0..2 as
    biased nibbles u = w + 8 and row 3 as the two's complement nibble, so the lane read as int16 is
    u0 + 16 u1 + 256 u2 + 4096 w3. k = 2: a lane holds one input of a row pair, bottom row biased
    (u = w + 2) at bits 0-1, top row two's complement at bits 14-15 (lane = u + 16384 w_top). k = 1:
    bottom row's bit at bit 0, top row's at bit 15 (bit 1 = +1; lane = b - 32768 b_top). Padding fields 0.
    ``packed_bytes = 4 * ceil(out / 4) * row_bytes`` (docs/formats.md section 11)."""

    id = 8
    name = "lanes16"

    @staticmethod
    def _fields(w, bits, q):
        if bits == 1:
            return (w > 0).astype(np.int64)
        top = (q == 3) if bits == 4 else (q % 2 == 1)
        return np.where(top, w & ((1 << bits) - 1), w + (1 << (bits - 1)))

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        rb = self.row_bytes(bits, n_in)
        groups = (out + 3) // 4
        words = np.zeros((groups, rb), np.uint64)          # rb words per group (4 rows x rb bytes / 4)
        o, i = np.meshgrid(np.arange(out), np.arange(n_in), indexing="ij")
        wi, pos = lanes16_place(bits, o % 4, i)
        f = self._fields(w, bits, o % 4).astype(np.uint64)
        np.add.at(words, (o // 4, wi), f << pos.astype(np.uint64))
        return words.astype("<u4").view(np.uint8).reshape(-1)

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        words = data.view("<u4").astype(np.int64).reshape((out_features + 3) // 4, -1)
        o, i = np.meshgrid(np.arange(out_features), np.arange(in_features), indexing="ij")
        wi, pos = lanes16_place(bits, o % 4, i)
        f = (words[o // 4, wi] >> pos) & ((1 << bits) - 1)
        if bits == 1:
            return np.where(f != 0, 1, -1).astype(np.int8)
        top = (o % 4 == 3) if bits == 4 else (o % 2 == 1)
        half = 1 << (bits - 1)
        return np.where(top, np.where(f >= half, f - (1 << bits), f), f - half).astype(np.int8)


# ---------------------------------------------------------------------------- layout 9 (3 bits, Helium / NEON)

# stream bit 3r + j of row r's field j; the field bits that are bit 7 of a byte (read as int8 by the kernels,
# so they count negative) are stored inverted: row 2 bit 1 (stream bit 7), row 5 bit 0 (15), row 7 bit 2 (23)
ROWS24_FLIP = tuple(sum(1 << j for j in range(3) if (3 * r + j) % 8 == 7) for r in range(8))
# row r's weight = (its telescoped sum) - ROWS24_BIAS[r]: 4 minus the value of its inverted bit
ROWS24_BIAS = tuple(4 - f for f in ROWS24_FLIP)


class Rows24(Layout):
    """Layout 9 ``rows24`` (k = 3): rows in groups of 8 (the last one padded with zero-weight rows), inputs in
    blocks of 16 (the last one padded with zero bytes). Input j of a group is one little-endian 24-bit word
    holding the 8 rows' 3-bit fields, row r at bits 3r..3r+2, field = (w + 4) XOR ROWS24_FLIP[r] (the field
    bits that land on a byte's bit 7 are inverted). Block c of a group is 48 bytes: the words' byte 0 of
    inputs 16c..16c+15, then their byte 1, then their byte 2. Read as int8 and shifted right arithmetically,
    the three bytes telescope (docs/formats.md section 12): 10 sums give the 8 rows' dots.
    ``packed_bytes = ceil(out / 8) * 48 * ceil(in / 16)``."""

    id = 9
    name = "rows24"

    def pack_rows(self, w, bits):
        w = np.asarray(w, np.int64)
        out, n_in = w.shape
        groups, nblk = (out + 7) // 8, (n_in + 15) // 16
        f = np.zeros((groups * 8, nblk * 16), np.int64)
        f[:out, :n_in] = w + 4
        f[out:, :] = 4                                     # padding rows: weight 0
        f[:, n_in:] = 4                                    # padding inputs: weight 0 (their x is 0 too)
        f ^= np.array(ROWS24_FLIP, np.int64)[np.arange(groups * 8) % 8][:, None]
        words = (f.reshape(groups, 8, nblk * 16) << (3 * np.arange(8))[None, :, None]).sum(axis=1)
        b = (words[:, None, :] >> (8 * np.arange(3))[None, :, None]) & 0xFF   # [groups, 3, nblk*16]
        b = b.reshape(groups, 3, nblk, 16).transpose(0, 2, 1, 3)
        return b.astype(np.uint8).reshape(-1)

    def unpack_rows(self, data, bits, out_features, in_features):
        data = self.sized(data, bits, out_features, in_features)
        nblk = (in_features + 15) // 16
        b = data.reshape(-1, nblk, 3, 16).transpose(0, 2, 1, 3).reshape(-1, 3, nblk * 16).astype(np.int64)
        words = b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16
        f = (words[:, None, :] >> (3 * np.arange(8))[None, :, None]) & 7       # [groups, 8, nblk*16]
        f ^= np.array(ROWS24_FLIP, np.int64)[None, :, None]
        w = f.reshape(-1, nblk * 16)[:out_features, :in_features] - 4
        return w.astype(np.int8)


LAYOUTS = (R4Words(), R4Nib32(), RowsPerByte(), A4Pairs(), Lanes16(), Rows24())
