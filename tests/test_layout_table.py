"""One source of truth for the weight layouts (tflm_port/layout_table.py): the checked-in C header is
the generated one, the Python packers' sizes and bit widths and the converter's --target plans come
from the same table, and the C runtime reads the same sizes (through the layouts' C packer)."""
from __future__ import annotations

import pytest

from tflm_port import layout_table as lt
from tflm_port import packing
from tflm_port.convert import TARGETS, target_plan


def test_checked_in_header_is_generated():
    assert lt.HEADER.read_text() == lt.render_header(), "run python -m tflm_port.layout_table --write"
    assert lt.main(["--check"]) == 0


def test_python_layouts_follow_the_table():
    for lay, units in lt.DENSE_UNITS.items():
        layout = packing.get_layout(lay)
        assert layout.supported_bits == frozenset(units)
        for k in units:
            for n in (1, 7, 16, 33, 100, 1536):
                assert layout.row_bytes(k, n) == lt.row_bytes(lay, k, n)
    # sizes written out by hand in docs/formats.md / docs/kernels.md
    assert lt.row_bytes(0, 3, 3) == 2 and lt.row_bytes(2, 3, 21) == 12 and lt.row_bytes(3, 2, 33) == 32
    assert lt.packed_bytes(6, 2, 5, 17) == 2 * 32 and lt.packed_bytes(6, 1, 128, 1536) == 16 * 1536
    assert lt.row_bytes(6, 3, 16) == -1 and lt.row_bytes(1, 4, 16) == -1  # layout 1: retired


@pytest.mark.parametrize("target", [t for t, (fam, _) in TARGETS.items() if fam != "reference"])
def test_target_plans_are_the_table(target):
    fam = TARGETS[target][0]
    for k in range(1, 9):
        (store, lay), = target_plan(target, [k])
        want = lt.ISA_PREFERRED[fam][k]
        if k == 8 or want < 0:
            assert (store, lay) == ("int8", 0)
        else:
            assert (store, lay) == ("custom", want) and lt.supports(fam, k, lay)


def test_board_table_drives_makefile_targets_and_bench():
    from bench import kernels as kb, streaming
    from tflm_port import board_table as bt

    assert bt.MK.read_text() == bt.render_mk() and bt.main(["--check"]) == 0
    assert "include boards_gen.mk" in (bt.MK.parent / "Makefile").read_text()
    fams = {t: fam for t, (fam, _) in TARGETS.items()}
    assert fams == {**{b: v.family for b, v in bt.BOARDS.items()},
                    **{b: f for b, (_, f, _) in bt.UART_ONLY.items()}, "generic": "reference"}
    assert all(v.family in lt.ISA_LAYOUTS for v in bt.BOARDS.values())
    assert kb.BOARD_ORDER == list(bt.BOARDS) and set(kb.BOARDS) == set(bt.BOARDS)
    assert list(streaming.BOARDS) == bt.cortex_m()
