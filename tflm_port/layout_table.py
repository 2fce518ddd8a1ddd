"""The weight-layout facts that Python and C share, defined once here (numbers only, no imports from
the project): the layout ids, how many bytes a packed row and a packed matrix take, which layouts
each optimized kernel family runs and which one the converter writes for it.

``firmware/include/kws_layout_table.h`` is generated from this module (like the front-end tables):

    python -m tflm_port.layout_table --write     # regenerate the C header
    python -m tflm_port.layout_table --check     # exit 1 if the checked-in header is stale (tested)

Dense layout sizes (docs/formats.md sections 3 and 7): a row is ``unit_bytes * ceil(in / unit_inputs)``
bytes, except the bit stream of layout 0 (``ceil(in * k / 8)``); a matrix is ``ceil(out / group_rows)``
groups of ``group_rows`` rows. The sparse layouts 4 and 5 size themselves from their index data
(tflm_port/sparse.py, kws_sparse.h).
"""
from __future__ import annotations

import sys
from pathlib import Path

from basics.generated import write_or_check

HEADER = Path(__file__).resolve().parents[1] / "firmware" / "include" / "kws_layout_table.h"

# SUB8_FULLY_CONNECTED layout ids (custom_options "layout"); 1 (row_bitplane) is retired, its id reserved
LAYOUT_IDS = {"row_lsb": 0, "r4_words": 2, "r4_nib32": 3, "nm": 4, "bsr": 5, "rows_per_byte": 6, "lanes16": 8,
              "rows24": 9}
RETIRED_LAYOUT_IDS = {1: "row_bitplane"}
BITSTREAM = 0  # unit_inputs of layout 0: the row is a stream of k-bit fields


def _r4_words_per_word(bits: int) -> int:
    """Layout 2: weights per 32-bit word (32 sign bits at k = 1, 2 * floor(16 / k) biased fields else)."""
    return 32 if bits == 1 else 2 * (16 // bits)


# layout -> bits -> (unit_inputs, unit_bytes, group_rows); a missing bit width: the layout cannot hold it
DENSE_UNITS: dict[int, dict[int, tuple[int, int, int]]] = {
    0: {k: (BITSTREAM, k, 1) for k in range(1, 9)},
    2: {k: (_r4_words_per_word(k), 4, 1) for k in range(1, 8)},
    3: {k: (32, 16, 1) for k in range(1, 5)},
    6: {k: (16, 2 * k, 8 // k) for k in (1, 2, 4)},
    # layout 8 (lanes16, Cortex-M DSP): groups of 4 rows; k = 4: 4 rows' nibbles in one 16-bit lane,
    # k = 1, 2: two rows per lane (bottom and top field), words of two row pairs alternate
    8: {4: (16, 8, 4), 2: (16, 4, 4), 1: (32, 4, 4)},
    # layout 9 (rows24, Helium / NEON, 3 bits): groups of 8 rows, each input one 24-bit word of the 8 rows'
    # fields, per block of 16 inputs 48 bytes (6 per row); docs/formats.md section 12
    9: {3: (16, 6, 8)},
}

# optimized kernel family -> {layout: bit widths its kernel runs} (firmware/kernels/<family>/)
ISA_LAYOUTS: dict[str, dict[int, frozenset]] = {
    "dsp": {0: frozenset({8}), 2: frozenset(range(1, 8)), 8: frozenset({1, 2, 4})},
    "mve": {0: frozenset({8}), 3: frozenset(range(1, 5)), 6: frozenset({1, 2, 4}), 9: frozenset({3})},
    # armv8.0: layout 6 at 1 bit (bit masks) and 2 bits (telescoping sums in wrapping int16 lanes)
    # and layout 2 at 1 bit (subset-sum tables looked up with TBL, docs/kernels.md)
    "neon": {0: frozenset({8}), 2: frozenset({1}), 3: frozenset(range(1, 5)), 6: frozenset({1, 2}), 9: frozenset({3})},
    "neon_dotprod": {0: frozenset({8}), 3: frozenset(range(1, 5)), 6: frozenset({1, 2, 4}), 9: frozenset({3})},
}

# family -> bits -> the layout the converter writes (--target) and the kernel bench runs; -1: no
# SUB8 layout, the weights go into an INT8 container for the int8 kernel. The A76 reads 4-bit in layout 6
# (eight rows per pass, SDOT + SSHR + SDOT per 32 weights: fewer instructions than layout 3's AND/USHR,
# docs/kernels.md). 3-bit weights get their own layout 9 (rows24) on Helium and NEON: 3/8 byte per
# weight, no widening to nibbles.
ISA_PREFERRED: dict[str, dict[int, int]] = {
    "dsp": {8: 0, **{k: 2 for k in range(1, 8)}, 1: 8, 2: 8, 4: 8},
    "mve": {8: 0, 1: 6, 2: 6, 4: 6, 3: 9, 5: -1, 6: -1, 7: -1},
    "neon": {8: 0, 1: 2, 2: 6, 3: 9, 4: 3, 5: -1, 6: -1, 7: -1},
    "neon_dotprod": {8: 0, 1: 6, 2: 6, 3: 9, 4: 6, 5: -1, 6: -1, 7: -1},
}


# SUB8_FC_A4 (4-bit activations, tflm_port/fc_a4.py): family -> weight bits -> the layout its A4 kernel
# reads for a layer whose inputs have <= 4 bits (the converter's choice per target, prepare's check);
# a missing width: layout 0 and the reference kernel. Layout 7 (a4_pairs) is the Cortex-M DSP kernel's
# (SMLAD over 16-bit lanes); Helium and NEON read layout 6 (rows_per_byte) with telescoping sums: with
# inputs of <= 4 bits |x * b| <= 1920 also fits the armv8.0 SMLAL's int16 lanes (docs/kernels.md).
A4_LAYOUTS: dict[str, dict[int, int]] = {
    "dsp": {2: 7, 3: 7, 4: 7},
    "mve": {2: 6, 4: 6},
    "neon": {2: 6, 4: 6},
    "neon_dotprod": {2: 6, 4: 6},
}
A4_MAX_INPUT_BITS = 4


def a4_layout(family: str, bits: int, input_bits: int) -> int:
    """The layout a SUB8_FC_A4 layer gets on ``family``: its A4 kernel's for <= 4-bit inputs, the FC kernel's
    preferred one for 8-bit inputs with fewer than 8-bit weights (that layer runs the w4a8 kernel), else 0."""
    if input_bits <= A4_MAX_INPUT_BITS:
        return A4_LAYOUTS[family].get(bits, 0)
    pref = ISA_PREFERRED[family].get(bits, -1) if input_bits == 8 and bits < 8 else -1
    return pref if pref > 0 else 0


def row_bytes(layout: int, bits: int, in_features: int) -> int:
    """Bytes of one packed row of a dense layout (layout 6: of one row's share of a full group); -1 when
    the layout cannot hold ``bits``."""
    return unit_row_bytes(DENSE_UNITS.get(layout, {}).get(bits), bits, in_features)


def packed_bytes(layout: int, bits: int, out_features: int, in_features: int) -> int:
    return unit_packed_bytes(DENSE_UNITS.get(layout, {}).get(bits), bits, out_features, in_features)


def unit_row_bytes(unit: tuple[int, int, int] | None, bits: int, in_features: int) -> int:
    """``row_bytes`` of a layout whose ``(unit_inputs, unit_bytes, group_rows)`` for ``bits`` is ``unit``
    (None: it cannot hold them, -1); also for a layout outside this table (layout 7, SUB8_FC_A4's)."""
    if unit is None or in_features < 1:
        return -1
    unit_inputs, unit_bytes, _ = unit
    if unit_inputs == BITSTREAM:
        return (in_features * bits + 7) // 8
    return unit_bytes * ((in_features + unit_inputs - 1) // unit_inputs)


def unit_packed_bytes(unit: tuple[int, int, int] | None, bits: int, out_features: int, in_features: int) -> int:
    """Bytes of a packed [out, in] matrix: ceil(out / group_rows) * group_rows rows (see unit_row_bytes)."""
    rb = unit_row_bytes(unit, bits, in_features)
    if rb < 0 or out_features < 1:
        return -1
    g = unit[2]
    return ((out_features + g - 1) // g) * g * rb


def supports(isa: str, bits: int, layout: int) -> bool:
    return bits in ISA_LAYOUTS[isa].get(layout, ())


def _check() -> None:
    for isa, pref in ISA_PREFERRED.items():
        assert sorted(pref) == list(range(1, 9)), isa
        for k, lay in pref.items():
            assert lay < 0 or supports(isa, k, lay), (isa, k, lay)
    assert sorted(A4_LAYOUTS) == sorted(ISA_LAYOUTS)
    for isa, lays in A4_LAYOUTS.items():
        for k, lay in lays.items():
            assert lay == 7 and 2 <= k <= 4 or k in DENSE_UNITS.get(lay, {}), (isa, k, lay)


_check()


def _bits_text(bits) -> str:
    b = sorted(bits)
    return f"{b[0]}..{b[-1]}" if b == list(range(b[0], b[-1] + 1)) and len(b) > 2 else ", ".join(map(str, b))


def render_header() -> str:
    layouts = max(LAYOUT_IDS.values()) + 1
    isas = list(ISA_LAYOUTS)
    out = ["/* GENERATED by `python -m tflm_port.layout_table --write` from tflm_port/layout_table.py:",
           " * do not edit. The weight-layout facts the converter and the C runtime share: layout ids, packed",
           " * sizes, and which layouts each optimized kernel family runs and prefers (docs/formats.md). */",
           "#ifndef KWS_LAYOUT_TABLE_H", "#define KWS_LAYOUT_TABLE_H", "", "#include <stdint.h>", "",
           "/* SUB8_FULLY_CONNECTED layout ids; " + ", ".join(f"{i} ({n})" for i, n in RETIRED_LAYOUT_IDS.items())
           + " is retired */",
           "enum { " + ", ".join(f"KWS_LAYOUT_{n.upper()} = {i}" for n, i in LAYOUT_IDS.items())
           + f", KWS_LAYOUT_ID_COUNT = {layouts} }};",
           "/* for error messages: the ids and names, and the bit widths each dense layout holds */",
           '#define KWS_LAYOUT_NAMES_TEXT "' + ", ".join(f"{i} = {n}" for n, i in LAYOUT_IDS.items()) + '"',
           '#define KWS_LAYOUT_BITS_TEXT "' + ", ".join(f"{lay}: bits {_bits_text(units)}"
                                                      for lay, units in DENSE_UNITS.items()) + '"', "",
           "/* dense layouts: row = unit_bytes * ceil(in / unit_inputs) bytes (unit_inputs 0: a stream of k-bit",
           " * fields, ceil(in * k / 8)); matrix = ceil(out / group_rows) * group_rows rows; unit_bytes 0: the",
           " * layout cannot hold k bits. Indexed [layout][bits]. */",
           "typedef struct { uint8_t unit_inputs, unit_bytes, group_rows; } kws_layout_unit;",
           f"static const kws_layout_unit kws_layout_units[{layouts}][9] = {{"]
    for lay in range(layouts):
        cells = []
        for k in range(9):
            u = DENSE_UNITS.get(lay, {}).get(k)
            cells.append("{%d, %d, %d}" % u if u else "{0, 0, 0}")
        out.append(f"    {{{', '.join(cells)}}},")
    out += ["};", "",
            "/* bytes of one packed row (layout 6: one row's share of a full group), -1 if impossible */",
            "static inline int64_t kws_layout_row_bytes(int32_t layout, int32_t bits, int32_t in_features)",
            "{",
            f"    if (layout < 0 || layout >= {layouts} || bits < 1 || bits > 8 || in_features < 1) return -1;",
            "    const kws_layout_unit u = kws_layout_units[layout][bits];",
            "    if (u.unit_bytes == 0) return -1;",
            "    if (u.unit_inputs == 0) return ((int64_t)in_features * bits + 7) / 8;",
            "    return (int64_t)u.unit_bytes * (((int64_t)in_features + u.unit_inputs - 1) / u.unit_inputs);",
            "}", "",
            "static inline int64_t kws_layout_packed_bytes(int32_t layout, int32_t bits, int32_t out_features,"
            " int32_t in_features)",
            "{",
            "    const int64_t rb = kws_layout_row_bytes(layout, bits, in_features);",
            "    if (rb < 0 || out_features < 1) return -1;",
            "    const int64_t g = kws_layout_units[layout][bits].group_rows;",
            "    return (((int64_t)out_features + g - 1) / g) * g * rb;",
            "}", "",
            "/* optimized kernel families (kernels/<family>/) */",
            "enum { " + ", ".join(f"KWS_ISA_{i.upper()} = {n}" for n, i in enumerate(isas))
            + f", KWS_ISA_COUNT = {len(isas)} }};", "",
            "/* bit widths (bit k set: k bits) each family's kernel runs, per layout */",
            f"static const uint16_t kws_isa_layout_bits[KWS_ISA_COUNT][{layouts}] = {{"]
    for isa in isas:
        masks = [sum(1 << k for k in ISA_LAYOUTS[isa].get(lay, ())) for lay in range(layouts)]
        out.append(f"    {{{', '.join(f'0x{m:03x}' for m in masks)}}},  /* {isa} */")
    out += ["};", "",
            "/* the layout the converter writes for k bits (--target) and the kernel bench runs; -1: none",
            " * (an INT8 container for the int8 kernel). Indexed [isa][bits]. */",
            "static const int8_t kws_isa_preferred_layout[KWS_ISA_COUNT][9] = {"]
    for isa in isas:
        out.append(f"    {{-1, {', '.join(str(ISA_PREFERRED[isa][k]) for k in range(1, 9))}}},  /* {isa} */")
    out += ["};", "",
            "/* SUB8_FC_A4 layers with inputs of <= %d bits: the layout the family's A4 kernel reads for k-bit" % A4_MAX_INPUT_BITS,
            " * weights (7: a4_pairs), 0: none (the reference). Indexed [isa][bits]. */",
            f"#define KWS_A4_MAX_INPUT_BITS {A4_MAX_INPUT_BITS}",
            "static const int8_t kws_isa_a4_layout[KWS_ISA_COUNT][9] = {"]
    for isa in isas:
        out.append(f"    {{{', '.join(str(A4_LAYOUTS[isa].get(k, 0)) for k in range(9))}}},  /* {isa} */")
    out += ["};", "",
            "static inline int kws_isa_supports(int isa, int32_t bits, int32_t layout)",
            "{",
            f"    return bits >= 1 && bits <= 8 && layout >= 0 && layout < {layouts} &&",
            "           ((kws_isa_layout_bits[isa][layout] >> bits) & 1u);",
            "}", "",
            "static inline int32_t kws_isa_preferred(int isa, int32_t bits)",
            "{",
            "    return bits >= 1 && bits <= 8 ? kws_isa_preferred_layout[isa][bits] : -1;",
            "}", "",
            "static inline int32_t kws_isa_a4_layout_for(int isa, int32_t bits)",
            "{",
            "    return bits >= 1 && bits <= 8 ? kws_isa_a4_layout[isa][bits] : 0;",
            "}", "", "#endif", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    return write_or_check(argv, "tflm_port.layout_table", __doc__.splitlines()[0], HEADER, render_header)


if __name__ == "__main__":
    sys.exit(main())
