import numpy as np
import pytest

from basics.errors import UserError
from tflm_port import packing


def random_grid(rng, out, n, bits):
    if bits == 1:
        return rng.choice([-1, 1], size=(out, n)).astype(np.int8)
    lo, hi = packing.grid_range(bits)
    return rng.integers(lo, hi + 1, size=(out, n)).astype(np.int8)


@pytest.mark.parametrize("layout", sorted(packing.LAYOUTS))
@pytest.mark.parametrize("bits", range(1, 9))
def test_round_trip_odd_sizes_and_tails(layout, bits):
    if bits not in packing.get_layout(layout).supported_bits:
        with pytest.raises(UserError, match="cannot hold"):
            packing.pack(np.ones((2, 3), np.int8), bits, layout)
        return
    rng = np.random.default_rng(bits * 10 + layout)
    for out, n in [(1, 1), (3, 7), (5, 13), (2, 8), (4, 9), (7, 31), (16, 64), (3, 1537)]:
        w = random_grid(rng, out, n, bits)
        b = packing.pack(w, bits, layout)
        assert len(b) == packing.packed_bytes(bits, out, n, layout)
        if layout not in (6, 7, 8, 9):  # 6, 9 pad the last group of rows, 7 interleaves row pairs, 8 packs 2 or 4 rows per lane
            assert len(b) == out * packing.row_bytes(bits, n, layout)
        np.testing.assert_array_equal(packing.unpack(b, bits, out, n, layout), w)


@pytest.mark.parametrize("layout", [0])  # the bit-stream layout; kernel layouts 2/3/6: test_kernels_opt.py
def test_padding_bits_are_zero(layout):
    w = -np.ones((2, 3), np.int8)  # all-ones fields for k >= 2
    for bits in range(2, 9):
        data = np.frombuffer(packing.pack(w, bits, layout), np.uint8).reshape(2, -1)
        lay = packing.get_layout(layout)
        for row in data:
            bitsarr = np.unpackbits(row, bitorder="little")
            used = 3 * bits
            if layout == 0:
                assert bitsarr[used:].sum() == 0
            else:
                planes = bitsarr.reshape(bits, -1)
                assert planes[:, 3:].sum() == 0
        assert data.shape[1] == lay.row_bytes(bits, 3)


def test_doc_examples_layout0():
    assert packing.pack(np.array([[1, -2, 7, -7, 3]]), 4) == bytes([0xE1, 0x97, 0x03])
    assert packing.pack(np.array([[1, -1, 15, 0]]), 5) == bytes([0xE1, 0x3F, 0x00])
    assert packing.pack(np.array([[1, -1, -1, 1, 1, 1, -1, 1, -1]]), 1) == bytes([0xB9, 0x00])


def test_layout1_is_retired():
    with pytest.raises(UserError, match="retired"):
        packing.pack(np.array([[1, -3, 2]]), 3, layout=1)


def test_layout0_k4_even_equals_tflite_int4():
    rng = np.random.default_rng(0)
    w = random_grid(rng, 6, 10, 4)
    assert packing.pack(w, 4, 0) == packing.pack_int4(w)
    np.testing.assert_array_equal(packing.unpack_int4(packing.pack_int4(w), w.size).reshape(w.shape), w)


def test_layout0_k8_is_plain_int8():
    w = random_grid(np.random.default_rng(1), 3, 5, 8)
    assert packing.pack(w, 8, 0) == w.tobytes()


def test_int4_odd_count_round_trip():
    v = np.array([-8, 7, 3, -1, 0], np.int8)
    np.testing.assert_array_equal(packing.unpack_int4(packing.pack_int4(v), 5), v)


def test_errors():
    with pytest.raises(UserError, match="not on the 3-bit grid"):
        packing.pack(np.array([[4, 0]]), 3)
    with pytest.raises(UserError, match="not on the 1-bit grid"):
        packing.pack(np.array([[0, 1]]), 1)
    with pytest.raises(UserError, match="-4"):  # narrow range: -2^(k-1) is off-grid
        packing.pack(np.array([[-4]]), 3)
    with pytest.raises(UserError, match="unknown weight layout"):
        packing.pack(np.array([[1]]), 4, layout=10)
    with pytest.raises(UserError, match="cannot hold 9-bit"):
        packing.pack(np.array([[1]]), 9)
    with pytest.raises(UserError, match="needs"):
        packing.unpack(b"\x00" * 3, 4, 2, 5)


def test_sparse_layout_ids_are_not_dense_layouts():
    """Ids 4 and 5 are the sparse layouts (tflm_port/sparse.py); rows_per_byte is 6. --layout 4/5 without
    --sparse is refused before the model is read, and the dense registry does not claim 4 or 5."""
    from tflm_port import convert, sparse

    assert set(sparse.SPARSE_LAYOUTS) == {4, 5} and not set(packing.LAYOUTS) & {4, 5}
    assert packing.get_layout(6).name == "rows_per_byte"
    for lay in (4, 5):
        with pytest.raises(UserError, match=f"layout {lay} is a sparse layout"):
            convert.convert(b"", [4], "dense", lay)
