"""Sparse k-bit weights (SUB8_FULLY_CONNECTED layouts 4 N:M and 5 block-compressed rows, docs/formats.md
section 8): Python packer/unpacker round trips, hostile metadata rejected with one line (Python) and a
status code (C runtime), the converter's --sparse, tflm_port.reference bit-exact between a sparse model and
its dense equivalent, and the C kernels (reference everywhere, DSP on M4/M7) byte-exact with the reference
on every emulated board over random shapes, densities, tails, bit widths and batches.
Models are built directly with the TFLite schema (no TensorFlow training), so the whole file runs in seconds.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fw_build import build_available, need_image
from bench.sparse import fc_chain_model   # int8 FC chains built with the TFLite schema (no training)
from tflm_port import board_table, sparse
from tflm_port.firmware_runner import parse_status
from tflm_port.convert import convert, to_plain, weight_report
from basics.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
BOARDS = {"host": (None, "host/kws_runner"),   # board -> (QEMU command, kws_runner image): tflm_port/board_table.py
          **{b: (list(v.qemu), v.runner_image) for b, v in board_table.BOARDS.items()}}


# ---------------------------------------------------------------- models from the schema

def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def random_sparse_weights(rng, out_f, in_f, bits, spec, density) -> np.ndarray:
    hi = 127 if bits == 8 else (1 << (bits - 1)) - 1
    w = rng.integers(-hi, hi + 1, (out_f, in_f))
    w[w == 0] = 1
    return np.where(sparse.prune_mask(w + rng.random(w.shape) * 0.1, density, spec), w, 0).astype(np.int8)


def _inputs(model: bytes, n: int, seed: int = 0) -> np.ndarray:
    from tflm_port.reference import Reference

    ref = Reference.from_bytes(model)
    return np.random.default_rng(seed).integers(-128, 128, (n, int(np.prod(ref.input_shape)))).astype(np.int8)


# ---------------------------------------------------------------- Python format

SPECS = ["nm:2:4", "nm:1:4", "nm:1:8", "nm:3:16", "nm:1:2", "csr", "block:2", "block:4", "block:8", "block:16"]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8])
def test_pack_unpack_round_trip(bits):
    rng = np.random.default_rng(bits)
    for spec_s in SPECS:
        spec = sparse.SparseSpec.parse(spec_s)
        for out_f, in_f, dens in [(1, 1, 1.0), (3, 7, 0.5), (5, 37, 0.2), (4, 64, 0.05), (2, 129, 0.0), (6, 33, 1.0)]:
            w = random_sparse_weights(rng, out_f, in_f, bits, spec, dens)
            if bits < 8:
                hi = (1 << (bits - 1)) - 1
                w = np.clip(w, -hi, hi)
            data = sparse.pack(w, bits, spec)
            got = sparse.unpack(data, bits, out_f, in_f, spec.layout, spec.options(w))
            np.testing.assert_array_equal(got, w, err_msg=f"{spec_s} {bits}-bit {out_f}x{in_f}")


def test_byte_diagram_examples():
    """The examples of docs/formats.md section 8, byte for byte."""
    w = np.array([[0, 3, 0, -2, 0, 0, 0, 5]])            # 2:4, 4-bit, one row of 8
    assert sparse.pack(w, 4, sparse.SparseSpec.parse("nm:2:4")) == bytes([0xCD, 0xE3, 0x50])
    w = np.array([[0, 0, 0, 0, 1, -1, 0, 0, 0, 0, 0, 0], [0] * 12, [7, 0, 0, 0] + [0] * 8])   # block:4, 4-bit
    b = sparse.pack(w, 4, sparse.SparseSpec.parse("block:4"))
    assert b == bytes([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0xF1, 0x00, 0x07, 0x00])


def _bsr_case():
    w = np.zeros((3, 20), np.int8)
    w[0, 4:8] = [1, -1, 2, 0]
    w[0, 16] = 3
    w[2, 0:4] = [7, 7, -7, 1]
    spec = sparse.SparseSpec.parse("block:4")
    return w, spec, bytearray(sparse.pack(w, 4, spec)), spec.options(w)


def _nm_case():
    w = np.zeros((2, 10), np.int8)
    w[0, [1, 3, 4, 9]] = [1, -2, 3, 4]
    w[1, [0, 8]] = [5, -5]
    spec = sparse.SparseSpec.parse("nm:2:4")
    return w, spec, bytearray(sparse.pack(w, 4, spec)), spec.options(w)


def hostile_sparse_cases():
    """name -> (bits, out, in, layout, options, bytes, what the one-line error mentions)."""
    cases = {}
    w, spec, b, o = _bsr_case()            # row_ptr 0,2,2,3 | cols 1,4,0 | pad | values
    def bsr(name, mut_b=None, mut_o=None, msg=""):
        bb, oo = bytearray(b), dict(o)
        if mut_b:
            mut_b(bb)
        if mut_o:
            mut_o(oo)
        cases[name] = (4, 3, 20, 5, oo, bytes(bb), msg)
    bsr("bsr_col_out_of_range", lambda x: x.__setitem__(slice(18, 20), (5).to_bytes(2, "little")), msg="out of range")
    bsr("bsr_cols_unsorted", lambda x: (x.__setitem__(slice(16, 18), (4).to_bytes(2, "little")),
                                        x.__setitem__(slice(18, 20), (1).to_bytes(2, "little"))), msg="not strictly increasing")
    bsr("bsr_cols_duplicate", lambda x: x.__setitem__(slice(18, 20), (1).to_bytes(2, "little")), msg="not strictly increasing")
    bsr("bsr_counts_do_not_add_up", lambda x: x.__setitem__(slice(12, 16), (2).to_bytes(4, "little")), msg="add up")
    bsr("bsr_row_ptr_decreasing", lambda x: x.__setitem__(slice(4, 8), (3).to_bytes(4, "little")), msg="decrease")
    bsr("bsr_nnz_blocks_too_many", mut_o=lambda o: o.__setitem__("nnz_blocks", 4), msg="bytes")
    bsr("bsr_nnz_blocks_huge", mut_o=lambda o: o.__setitem__("nnz_blocks", 10 ** 6), msg="outside")
    bsr("bsr_truncated", lambda x: x.__delitem__(slice(-1, None)), msg="bytes")
    bsr("bsr_block_bad", mut_o=lambda o: o.__setitem__("block", 3), msg="block")
    w2, spec2, b2, o2 = _nm_case()         # 2:4 of 10 inputs: 3 groups, 6 slots x 2 bits = 2 bytes idx
    def nm(name, mut_b=None, mut_o=None, msg=""):
        bb, oo = bytearray(b2), dict(o2)
        if mut_b:
            mut_b(bb)
        if mut_o:
            mut_o(oo)
        cases[name] = (4, 2, 10, 4, oo, bytes(bb), msg)
    nm("nm_indices_unsorted", lambda x: x.__setitem__(0, (x[0] & 0xF0) | 0b0111), msg="not strictly increasing")
    nm("nm_index_past_in_features", lambda x: x.__setitem__(1, (x[1] & 0xF0) | 0b1000), msg="past in_features")
    nm("nm_m_bad", mut_o=lambda o: o.__setitem__("nm_m", 6), msg="M in")
    nm("nm_size_wrong", lambda x: x.__delitem__(slice(-1, None)), msg="bytes")
    return cases


@pytest.mark.parametrize("name", sorted(hostile_sparse_cases()))
def test_hostile_metadata_rejected_in_python(name):
    bits, out_f, in_f, layout, o, data, msg = hostile_sparse_cases()[name]
    with pytest.raises(UserError) as e:
        sparse.unpack(data, bits, out_f, in_f, layout, o, "m.tflite")
    text = str(e.value)
    assert "\n" not in text and msg in text, text


def test_nm_that_does_not_fit_is_refused_with_one_line():
    w = np.array([[1, 2, 3, 0, 0, 0, 0, 0]])
    with pytest.raises(UserError, match=r"not 2:4 sparse: row 0, inputs 0..3 hold 3 non-zero"):
        sparse.pack(w, 4, sparse.SparseSpec.parse("nm:2:4"))
    for bad in ("nm:4:4", "nm:2:3", "block:3", "coo", "nm:2"):
        with pytest.raises(UserError):
            sparse.SparseSpec.parse(bad)


# ---------------------------------------------------------------- converter + reference

def _random_chain(seed: int, batch: int = 1):
    """A 3..4-layer FC chain, each layer its own bits, sparsity kind and density (odd sizes, tails)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 5))
    dims = [int(rng.integers(5, 200))] + [int(rng.integers(3, 90)) for _ in range(n)]
    bits = [int(rng.choice([2, 4, 8, 2, 4, 8, 3, 5])) for _ in range(n)]
    # the DSP kernel's formats (block*k multiple of 32) get most of the draws
    dsp_specs = {2: "block:16", 4: rng.choice(["block:8", "block:16"]), 8: rng.choice(["block:4", "block:8", "block:16"]),
                 3: "csr", 5: "block:4"}
    specs = [str(rng.choice([dsp_specs[b]] * 3 + ["csr", "nm:2:4", "nm:1:8", "block:2", "none"])) for b in bits]
    dens = [float(rng.choice([1.0, 0.5, 0.3, 0.2, 0.1, 0.05])) for _ in range(n)]
    ws = []
    for j in range(n):
        sp = sparse.SparseSpec.parse(specs[j])
        d = sp.n / sp.m if sp is not None and sp.kind == "nm" else dens[j]
        w = random_sparse_weights(rng, dims[j + 1], dims[j], bits[j], sp, d)
        hi = 127 if bits[j] == 8 else (1 << (bits[j] - 1)) - 1
        ws.append(np.clip(w, -hi, hi))
    relu = [j < n - 1 for j in range(n)]
    return fc_chain_model(ws, relu, batch=batch, seed=seed), bits, specs, ws


def test_sparse_model_bit_exact_with_dense_in_reference():
    from tflm_port.reference import Reference

    for seed in range(4):
        plain, bits, specs, ws = _random_chain(seed)
        dense = convert(plain, bits, mode="dense")
        sp = convert(plain, bits, mode="dense", sparse_spec=specs)
        x = _inputs(plain, 200, seed)
        y_dense = Reference.from_bytes(dense).run(x)
        np.testing.assert_array_equal(Reference.from_bytes(sp).run(x), y_dense)
        assert (y_dense != y_dense[0]).any()                 # the check is not vacuous
        rep = weight_report(sp)
        assert [r["format"] for r in rep] == [s if s != "none" else ("int8" if b == 8 else "layout0")
                                              for s, b in zip(specs, bits)]
        for r, w in zip(rep, ws):
            assert r["density"] == round(sparse.density(w), 4)
        # to_plain restores the dense integer weights exactly
        back, lb = to_plain(sp)
        np.testing.assert_array_equal(Reference.from_bytes(back).run(x), y_dense)


def test_converter_cli_sparse_and_size_report(tmp_path):
    from tflm_port import convert as conv

    plain, bits, specs, ws = _random_chain(7)
    src = tmp_path / "plain.tflite"
    src.write_bytes(plain)
    out = tmp_path / "sparse.tflite"
    r = subprocess.run([str(Path(__import__("sys").executable)), "-m", "tflm_port.convert", str(src), str(out),
                        "--bits", ",".join(map(str, bits)), "--sparse", ",".join(specs)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "layer 0:" in r.stdout and "bytes" in r.stdout
    assert weight_report(out.read_bytes())[0]["weight_bytes"] > 0
    bad = subprocess.run([str(Path(__import__("sys").executable)), "-m", "tflm_port.convert", str(src), str(out),
                          "--bits", ",".join(map(str, bits)), "--sparse", "nm:9:4"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    with pytest.raises(UserError, match="1-bit"):
        conv.convert(plain, [1] + bits[1:], sparse_spec="csr")


# ---------------------------------------------------------------- C runtime on every board

@pytest.fixture(scope="module")
def built():
    return build_available()


def run_runner(board: str, model: Path, inputs: Path, outputs: Path, n: int, timeout: int = 120):
    prefix, image = BOARDS[board]
    args = [str(model), str(inputs), str(outputs), str(n)]
    if prefix is None:
        cmd = [str(BUILD / image)] + args
    else:
        semi = "enable=on,target=native," + ",".join("arg=" + a for a in ["kws_runner"] + args)
        cmd = prefix + ["-nographic", "-semihosting-config", semi, "-kernel", str(BUILD / image)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env={"ASAN_OPTIONS": "exitcode=99:detect_leaks=0", "PATH": "/usr/bin:/bin"})
    text = r.stdout + r.stderr
    return r.returncode, parse_status(text), text


def mve_eligible(bits: int, spec: str) -> bool:
    sp = sparse.SparseSpec.parse(spec)
    return sp is not None and sp.kind == "block" and (
        (sp.block == 1 and bits in (4, 8)) or (bits == 8 and sp.block in (8, 16)) or (bits == 4 and sp.block == 16))


def neon_eligible(bits: int, spec: str) -> bool:
    sp = sparse.SparseSpec.parse(spec)
    return sp is not None and sp.kind == "block" and ((bits == 8 and sp.block in (8, 16)) or (bits == 4 and sp.block == 16))


def dsp_eligible(bits: int, spec: str) -> bool:
    sp = sparse.SparseSpec.parse(spec)
    if sp is not None and sp.kind == "nm":
        return bits in (2, 4, 8) and (sp.n, sp.m) in ((2, 4), (1, 4), (1, 8), (1, 16))
    return sp is not None and sp.kind == "block" and bits in (2, 4, 8) and ((sp.block * bits) % 32 == 0 or sp.block == 1)


@pytest.fixture(scope="module")
def chain_cases(tmp_path_factory):
    from tflm_port.reference import Reference

    d = tmp_path_factory.mktemp("sparse")
    cases = []
    for seed in range(8):
        batch = 1 + seed % 2        # batch 2: the firmware model takes two rows per inference; the
        plain, bits, specs, ws = _random_chain(100 + seed)      # reference runs its batch-1 twin
        x = _inputs(plain, 40, seed)
        y = Reference.from_bytes(convert(plain, bits, mode="dense", sparse_spec=specs)).run(x)
        if batch > 1:
            plain = _random_chain(100 + seed, batch=batch)[0]
        model = convert(plain, bits, mode="dense", sparse_spec=specs)
        mp, ip = d / f"c{seed}.tflite", d / f"c{seed}.in"
        mp.write_bytes(model)
        ip.write_bytes(x.tobytes())
        cases.append((mp, ip, 40 // batch, y.astype(np.int8).tobytes(),
                      {"dsp": sum(dsp_eligible(b, s) for b, s in zip(bits, specs)),
                       "mve": sum(mve_eligible(b, s) for b, s in zip(bits, specs)),
                       "neon": sum(neon_eligible(b, s) for b, s in zip(bits, specs))},
                      f"bits {bits} specs {specs} batch {batch}"))
    # every DSP block format once (each has its own loop), odd sizes, tail blocks
    rng = np.random.default_rng(9)
    fmts = [(8, "block:4"), (8, "block:8"), (8, "block:16"), (4, "block:8"), (4, "block:16"), (2, "block:16"),
            (4, "csr"), (8, "csr"), (2, "csr"), (4, "csr"), (4, "nm:2:4"), (8, "nm:1:8"), (2, "nm:1:16"), (4, "nm:1:4"),
            (8, "nm:2:4"), (2, "nm:1:4")]
    dims = [203, 77, 45, 61, 33, 29, 57, 71, 40, 37, 99, 45, 67, 38, 21, 30, 7]
    ws = [random_sparse_weights(rng, dims[j + 1], dims[j], b, sp, sp.n / sp.m if sp.kind == "nm" else 0.3)
          for j, (b, f) in enumerate(fmts) for sp in [sparse.SparseSpec.parse(f)]]
    ws = [np.clip(w, -((1 << (b - 1)) - 1), (1 << (b - 1)) - 1) if b < 8 else w for w, (b, _) in zip(ws, fmts)]
    plain = fc_chain_model(ws, [True] * (len(fmts) - 1) + [False], seed=9)
    bits, specs = [b for b, _ in fmts], [f for _, f in fmts]
    model = convert(plain, bits, mode="dense", sparse_spec=specs)
    x = _inputs(plain, 40, 9)
    y = Reference.from_bytes(model).run(x)
    mp, ip = d / "dsp_formats.tflite", d / "dsp_formats.in"
    mp.write_bytes(model)
    ip.write_bytes(x.tobytes())
    cases.append((mp, ip, 40, y.astype(np.int8).tobytes(),
                  {"dsp": len(fmts), "mve": sum(mve_eligible(b, s) for b, s in zip(bits, specs)),
                   "neon": sum(neon_eligible(b, s) for b, s in zip(bits, specs))},
                  f"all optimized formats {specs}"))
    return cases


@pytest.mark.parametrize("board", list(BOARDS))
def test_sparse_kernels_byte_exact_on_every_board(built, chain_cases, board, tmp_path):
    need_image(BOARDS[board][1])
    for mp, ip, n_vec, want, n_dsp, what in chain_cases:
        out = tmp_path / "out.bin"
        rc, st, text = run_runner(board, mp, ip, out, n_vec)
        assert rc == 0 and st is not None, f"{what}: {text[-1500:]}"
        got = out.read_bytes()
        assert got == want, f"{board} {what}: {int(np.sum(np.frombuffer(got, np.int8) != np.frombuffer(want, np.int8)))} bytes differ"
        isa = board_table.BOARDS[board].sparse_kernel.removeprefix("sparse_") if board in board_table.BOARDS else None
        if isa:       # the optimized sparse kernel took every layer it supports
            assert st["opt_ops"] >= n_dsp[isa], f"{what}: opt_ops {st['opt_ops']} < {n_dsp[isa]}"


def _embed(case_bytes: bytes, bits: int, out_f: int, in_f: int, layout: int, opts: dict) -> bytes:
    """A one-layer model whose SUB8 op carries the given (possibly hostile) sparse tensor and options."""
    from flatbuffers import flexbuffers

    s = _schema()
    w = np.zeros((out_f, in_f), np.int8)
    w[:, 0] = 1
    plain = fc_chain_model([w], [False])
    model = convert(plain, [bits], mode="dense", sparse_spec="csr")
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    op = sg.operators[0]
    full = {"version": 1, "bits": bits, "layout": layout, "in_features": in_f, "out_features": out_f, "activation": "NONE"}
    full.update(opts)
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(full)), np.uint8).copy()
    wt = sg.tensors[op.inputs[1]]
    m.buffers[wt.buffer].data = np.frombuffer(case_bytes, np.uint8).copy() if case_bytes else None
    wt.shape = np.array([len(case_bytes)], np.int32)
    import flatbuffers

    fb = flatbuffers.Builder(1 << 12)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_hostile_sparse_models_rejected_by_runtime(built, tmp_path, board):
    """Every inconsistent sparse tensor: init fails with a status (2 format, 7 shape, 10 options) and a
    message (host and the M4 with its DSP sparse kernel); the ASan/UBSan host build sees no out-of-bounds
    access, also under random bit flips."""
    need_image(BOARDS[board][1])
    inputs = tmp_path / "in.bin"
    inputs.write_bytes(bytes(64))
    expect_codes = {2, 7, 9, 10}
    for name, (bits, out_f, in_f, layout, o, data, _) in hostile_sparse_cases().items():
        mp = tmp_path / "m.tflite"
        mp.write_bytes(_embed(data, bits, out_f, in_f, layout, o))
        rc, st, text = run_runner(board, mp, inputs, tmp_path / "o.bin", 1)
        assert st is not None and rc in expect_codes and st["status"] == rc, f"{name}: rc {rc}: {text[-800:]}"
        assert "KWS error: " in text and len(text.split("KWS error: ")[1].strip()) > 10, name
    # the untouched cases run
    for w, spec, b, o in (_bsr_case(), _nm_case()):
        mp = tmp_path / "ok.tflite"
        mp.write_bytes(_embed(bytes(b), 4, w.shape[0], w.shape[1], spec.layout, o))
        rc, st, text = run_runner(board, mp, inputs, tmp_path / "o.bin", 1)
        assert rc == 0, text[-800:]
    if board != "host":
        return
    # random bit flips in the packed tensor: rejected or run, never a crash / sanitizer report
    rng = np.random.default_rng(3)
    for w, spec, b, o in (_bsr_case(), _nm_case()):
        for _ in range(25):
            bb = bytearray(b)
            bb[int(rng.integers(len(bb)))] ^= 1 << int(rng.integers(8))
            mp = tmp_path / "f.tflite"
            mp.write_bytes(_embed(bytes(bb), 4, w.shape[0], w.shape[1], spec.layout, o))
            rc, st, text = run_runner("host", mp, inputs, tmp_path / "o.bin", 1)
            assert st is not None and 0 <= rc <= 13 and rc != 99, text[-800:]


# ---------------------------------------------------------------- TFLite's standard encoding

def test_tflite_standard_sparsity_runs_in_tflite_and_reference(built, tmp_path):
    """--sparse tflite: INT8 FULLY_CONNECTED with SparsityParameters (1 x 16 blocks), the form tf.lite's
    builtin kernel runs. tflm_port.reference densifies it (== the dense model, byte for byte; ==
    tf.lite's dense kernels with rounding="tflite"); tf.lite's own sparse kernel stays within 1 LSB of
    its dense kernel; the C runtime (no kernel for it) refuses it with a status; bad indices are one line."""
    from bench.testmodels import run_tflite
    from tflm_port.reference import Reference

    rng = np.random.default_rng(4)
    ws = []
    for (o, i), b in zip(((48, 64), (32, 48), (5, 32)), (8, 4, 8)):
        hi = 100 if b == 8 else 7
        w = rng.integers(-hi, hi + 1, (o, i)).astype(np.int8)
        ws.append(np.where(sparse.prune_mask(w, 0.3, sparse.SparseSpec.parse("block:16")), w, 0).astype(np.int8))
    plain = fc_chain_model(ws, [True, True, False], seed=4)
    model = convert(plain, [8, 4, 8], mode="container", sparse_spec="tflite")
    dense = convert(plain, [8, 4, 8], mode="container")
    assert [r["format"] for r in weight_report(model)] == ["tflite"] * 3
    x = rng.integers(-128, 128, (300, 64)).astype(np.int8)
    np.testing.assert_array_equal(Reference.from_bytes(model).run(x), Reference.from_bytes(dense).run(x))
    y_dense = run_tflite(dense, x)
    np.testing.assert_array_equal(Reference.from_bytes(model, rounding="tflite").run(x), y_dense)
    y_sparse = run_tflite(model, x)
    assert np.abs(y_sparse.astype(int) - y_dense).max() <= 1
    need_image(BOARDS["host"][1])
    mp = tmp_path / "m.tflite"
    mp.write_bytes(model)
    (tmp_path / "in.bin").write_bytes(x[:1].tobytes())
    rc, st, text = run_runner("host", mp, tmp_path / "in.bin", tmp_path / "o.bin", 1)
    assert rc == 9 and "sparse tensors not supported" in text, text[-500:]
    # inconsistent metadata: one line
    s = _schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(model, 0))
    d1 = m.subgraphs[0].tensors[m.subgraphs[0].operators[0].inputs[1]].sparsity.dimMetadata[1]
    d1.arrayIndices.values = list(d1.arrayIndices.values)
    d1.arrayIndices.values[0] = 99
    import flatbuffers

    fb = flatbuffers.Builder(1 << 12)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    with pytest.raises(UserError, match="index out of range") as e:
        Reference.from_bytes(bytes(fb.Output()))
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="divisible by 16"):
        convert(fc_chain_model([ws[0][:, :40]], [False]), [8], sparse_spec="tflite")
