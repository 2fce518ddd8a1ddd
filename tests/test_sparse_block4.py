"""4-row sparse blocks (SUB8 layout 5 with block_rows 4, ``--sparse block:4xB``, 4-bit weights; docs/formats.md
section 8): the Python packer/validator round trip and byte example, 4 x B magnitude pruning, hostile metadata
rejected with one line (Python) and a status code (C runtime, host ASan build and the M4's DSP kernel), and the
C kernels (DSP on M4/M7, the reference elsewhere) byte-exact with the reference on every emulated board over
odd shapes, tails, densities and batches. Models come from the TFLite schema (no training)."""
from __future__ import annotations

import numpy as np
import pytest

from basics.errors import UserError
from bench.sparse import fc_chain_model
from tests.fw_build import build_available, need_image
from tests.test_sparse import BOARDS, _embed, _inputs, run_runner
from tflm_port import board_table, sparse
from tflm_port.convert import convert, weight_report


def _pruned(rng, out_f, in_f, spec, density):
    w = rng.integers(-7, 8, (out_f, in_f))
    w[w == 0] = 1
    return np.where(sparse.prune_mask(w + rng.random(w.shape) * 0.1, density, sparse.SparseSpec.parse(spec)), w, 0).astype(np.int8)


# ---------------------------------------------------------------- Python format

@pytest.mark.parametrize("block", [4, 8, 16])
def test_round_trip_odd_shapes(block):
    rng = np.random.default_rng(block)
    spec = sparse.SparseSpec.parse(f"block:4x{block}")
    assert str(spec) == f"block:4x{block}" and spec.name == f"block4x{block}" and spec.layout == 5
    for out_f, in_f, d in [(1, 1, 1.0), (5, 3, 1.0), (13, 37, 0.3), (64, 100, 0.2), (7, 20, 0.05), (4, 8, 0.0)]:
        w = _pruned(rng, out_f, in_f, f"block:4x{block}", d)
        data = sparse.pack(w, 4, spec)
        o = spec.options(w)
        assert o["block_rows"] == 4 and o["block"] == block
        _, _, total = sparse.bsr4_offsets(out_f, o["nnz_blocks"], block)
        assert len(data) == total
        np.testing.assert_array_equal(sparse.unpack(data, 4, out_f, in_f, 5, o), w)


def test_byte_example():
    """docs/formats.md: rows 0..3 = 1, -2, 3, -1 at input 0 of a 4 x 8 tensor, zeros elsewhere."""
    w = np.zeros((4, 8), np.int8)
    w[:, 0] = [1, -2, 3, -1]
    spec = sparse.SparseSpec.parse("block:4x8")
    data = sparse.pack(w, 4, spec)
    assert data.hex(" ") == ("00 00 00 00 01 00 00 00 00 00 00 00 "          # group pointers 0, 1 | column 0 | pad
                             "69 fb 88 08 88 08 88 08 88 08 88 08 88 08 88 08")
    assert spec.options(w) == {"block": 8, "block_rows": 4, "nnz_blocks": 1}


def test_prune_mask_keeps_whole_4_row_blocks():
    rng = np.random.default_rng(1)
    w = rng.integers(-7, 8, (10, 30))
    spec = sparse.SparseSpec.parse("block:4x8")
    keep = sparse.prune_mask(w, 0.3, spec)
    kept = 0
    for g in range(3):
        for c in range(4):
            blk = keep[4 * g:4 * g + 4, 8 * c:8 * c + 8]
            assert blk.all() or not blk.any(), (g, c)       # whole 4 x 8 blocks (clipped at the edges)
            kept += int(blk.all())
    assert kept == round(0.3 * 12)                         # 30 % of the 3 x 4 blocks


@pytest.mark.parametrize("text,msg", [("block:4x2", "4, 8 or 16"), ("block:3x8", "1 or 4"), ("block:4xq", "block:4xB")])
def test_bad_specs_one_line(text, msg):
    with pytest.raises(UserError) as e:
        sparse.SparseSpec.parse(text)
    assert "\n" not in str(e.value) and msg in str(e.value)


def test_only_4_bit():
    w = np.ones((4, 8), np.int8)
    with pytest.raises(UserError) as e:
        sparse.pack(w, 8, sparse.SparseSpec.parse("block:4x8"), "m.tflite")
    assert "4-bit" in str(e.value) and "\n" not in str(e.value)


def _case():
    """6 x 20, blocks of 4 x 8: group 0 at columns 0 and 2, group 1 (rows 4, 5 + two padding rows) at column 1.
    Bytes: group pointers 0..12 (0, 2, 3), columns 12..18, pad, values 20..68 (16 per block)."""
    w = np.zeros((6, 20), np.int8)
    w[0, 0], w[3, 7], w[1, 17] = 5, -7, 2
    w[5, 9] = -3
    spec = sparse.SparseSpec.parse("block:4x8")
    return w, spec, bytearray(sparse.pack(w, 4, spec)), spec.options(w)


def hostile_cases():
    """name -> (bits, out, in, options, bytes, what the one-line Python error mentions)."""
    w, spec, b, o = _case()
    assert len(b) == 68 and o["nnz_blocks"] == 3
    cases = {}

    def case(name, mut_b=None, mut_o=None, msg="", bits=4):
        bb, oo = bytearray(b), dict(o)
        if mut_b:
            mut_b(bb)
        if mut_o:
            mut_o(oo)
        cases[name] = (bits, 6, 20, oo, bytes(bb), msg)

    def put(off, v, n=2):
        return lambda x: x.__setitem__(slice(off, off + n), v.to_bytes(n, "little"))

    def nib(off, hi, v):
        return lambda x: x.__setitem__(off, (x[off] & 0x0F) | (v << 4) if hi else (x[off] & 0xF0) | v)

    case("col_out_of_range", put(12, 3), msg="out of range")
    case("cols_unsorted", lambda x: (put(12, 2)(x), put(14, 0)(x)), msg="not strictly increasing")
    case("cols_duplicate", put(14, 0), msg="not strictly increasing")
    case("counts_do_not_add_up", put(8, 2, 4), msg="add up")
    case("group_ptr_decreasing", put(4, 5, 4), msg="decrease")
    case("nnz_blocks_too_many", mut_o=lambda o: o.__setitem__("nnz_blocks", 4), msg="bytes")
    case("nnz_blocks_huge", mut_o=lambda o: o.__setitem__("nnz_blocks", 10 ** 6), msg="outside")
    case("truncated", lambda x: x.__delitem__(slice(-1, None)), msg="bytes")
    case("block_bad", mut_o=lambda o: o.__setitem__("block", 2), msg="4, 8 or 16")
    case("block_rows_bad", mut_o=lambda o: o.__setitem__("block_rows", 3), msg="1 or 4")
    case("not_4_bit", msg="4-bit", bits=8)
    case("row0_off_grid", nib(20, False, 0), msg="grid")              # biased nibble 0 = -8
    case("row3_off_grid", nib(21, True, 8), msg="grid")               # two's complement -8
    case("padding_row_nonzero", nib(53, False, 9), msg="padding row")  # group 1, row 6, input 8
    case("past_in_features", nib(44, False, 9), msg="past in_features")  # group 0, column 2, input 20
    return cases


@pytest.mark.parametrize("name", sorted(hostile_cases()))
def test_hostile_rejected_in_python(name):
    bits, out_f, in_f, o, data, msg = hostile_cases()[name]
    with pytest.raises(UserError) as e:
        sparse.unpack(data, bits, out_f, in_f, 5, o, "m.tflite")
    assert "\n" not in str(e.value) and msg in str(e.value), str(e.value)


# ---------------------------------------------------------------- C runtime

@pytest.fixture(scope="module")
def built():
    return build_available()


@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_hostile_rejected_by_runtime(built, tmp_path, board):
    """Every inconsistent tensor: a status (7 shape, 10 options, 2 format ...) and a one-line detail; the
    untouched case runs; on the host (ASan/UBSan) random bit flips are rejected or run, never a crash."""
    need_image(BOARDS[board][1])
    inputs = tmp_path / "in.bin"
    inputs.write_bytes(bytes(64))
    for name, (bits, out_f, in_f, o, data, _) in hostile_cases().items():
        mp = tmp_path / "m.tflite"
        mp.write_bytes(_embed(data, bits, out_f, in_f, 5, o))
        rc, st, text = run_runner(board, mp, inputs, tmp_path / "o.bin", 1)
        assert st is not None and rc in {2, 7, 9, 10} and st["status"] == rc, f"{name}: rc {rc}: {text[-800:]}"
        assert "KWS error: " in text and len(text.split("KWS error: ")[1].strip()) > 10, name
    w, spec, b, o = _case()
    mp = tmp_path / "ok.tflite"
    mp.write_bytes(_embed(bytes(b), 4, 6, 20, 5, o))
    rc, st, text = run_runner(board, mp, inputs, tmp_path / "o.bin", 1)
    assert rc == 0, text[-800:]
    if board != "host":
        return
    rng = np.random.default_rng(5)
    for _ in range(15):
        bb = bytearray(b)
        bb[int(rng.integers(len(bb)))] ^= 1 << int(rng.integers(8))
        mp.write_bytes(_embed(bytes(bb), 4, 6, 20, 5, o))
        rc, st, text = run_runner("host", mp, inputs, tmp_path / "o.bin", 1)
        assert st is not None and 0 <= rc <= 13 and rc != 99, text[-800:]


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    """(model, inputs, vectors, expected bytes, layers, what): 4-row block chains, batch 1 and 2."""
    from tflm_port.reference import Reference

    d = tmp_path_factory.mktemp("block4")
    out = []
    for seed, (dims, specs, dens) in enumerate([
            ([45, 22, 13, 30, 7], ["block:4x8", "block:4x4", "block:4x16", "block:4x8"], [0.5, 0.3, 1.0, 0.2]),
            ([300, 64, 33, 5], ["block:4x8", "block:4x16", "block:4x4"], [0.2, 0.1, 0.6]),
            ([17, 9, 3], ["block:4x16", "block:4x8"], [0.05, 1.0])]):
        rng = np.random.default_rng(40 + seed)
        ws = [_pruned(rng, dims[j + 1], dims[j], s, dd) for j, (s, dd) in enumerate(zip(specs, dens))]
        relu = [True] * (len(ws) - 1) + [False]
        bits = [4] * len(ws)
        plain = fc_chain_model(ws, relu, seed=seed)
        model = convert(plain, bits, mode="dense", sparse_spec=specs)
        x = _inputs(plain, 24, seed)
        y = Reference.from_bytes(model).run(x)
        np.testing.assert_array_equal(y, Reference.from_bytes(convert(plain, bits, mode="dense")).run(x))
        assert [r["format"] for r in weight_report(model)] == specs
        for batch in (1, 2):
            m = model if batch == 1 else convert(fc_chain_model(ws, relu, batch=2, seed=seed), bits, mode="dense",
                                                 sparse_spec=specs)
            mp, ip = d / f"c{seed}b{batch}.tflite", d / f"c{seed}.in"
            mp.write_bytes(m)
            ip.write_bytes(x.tobytes())
            out.append((mp, ip, 24 // batch, y.astype(np.int8).tobytes(), len(ws), f"{specs} {dens} batch {batch}"))
    return out


@pytest.mark.parametrize("board", list(BOARDS))
def test_block4_byte_exact_on_every_board(built, chains, board, tmp_path):
    need_image(BOARDS[board][1])
    dsp = board in board_table.BOARDS and board_table.BOARDS[board].sparse_kernel == "sparse_dsp"
    for mp, ip, n_vec, want, layers, what in chains:
        rc, st, text = run_runner(board, mp, ip, tmp_path / "out.bin", n_vec)
        assert rc == 0 and st is not None, f"{what}: {text[-1500:]}"
        got = (tmp_path / "out.bin").read_bytes()
        assert got == want, f"{board} {what}: {int(np.sum(np.frombuffer(got, np.int8) != np.frombuffer(want, np.int8)))} bytes differ"
        if dsp:   # the DSP kernel took every 4-row block layer
            assert st["opt_ops"] == layers, f"{what}: opt_ops {st['opt_ops']} != {layers}"
