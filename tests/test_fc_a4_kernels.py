"""SUB8_FC_A4 C kernels (firmware/kernels/reference/kws_fully_connected_a4.c and the DSP kernel
firmware/kernels/dsp/kws_fully_connected_a4_dsp.c, built for the host) against the Python arithmetic of
tflm_port.reference byte for byte; layout 7 (a4_pairs): Python packer == C packer, C reader == weights.
Under QEMU (every emulated board: the DSP, Helium and NEON A4 kernels): the build's A4 kernel against the
reference on random shapes (tests skip without the cross compilers / QEMU)."""
from __future__ import annotations

import ctypes as C
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tflm_port import board_table, fc_a4, layout_table, packing
from tflm_port.reference import multiply_by_quantized_multiplier

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
SRC = [FW / "kernels/reference/kws_fully_connected_a4.c", FW / "kernels/dsp/kws_fully_connected_a4_dsp.c"]


class Act(C.Structure):
    _fields_ = [("input_offset", C.c_int32), ("output_offset", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32)]


class FC(C.Structure):
    _fields_ = [("act", Act), ("in_features", C.c_int32), ("out_features", C.c_int32),
                ("multiplier", C.POINTER(C.c_int32)), ("shift", C.POINTER(C.c_int32)), ("per_tensor", C.c_int32),
                ("bits", C.c_int32), ("layout", C.c_int32), ("row_bytes", C.c_int32)]   # = kws_fc_params


class A4(C.Structure):
    _fields_ = [("fc", FC), ("input_bits", C.c_int32), ("output_bits", C.c_int32)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")
    so = tmp_path_factory.mktemp("a4") / "a4.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-std=c99", "-Wall", "-Werror", f"-I{FW}/include",
                    *map(str, SRC), "-o", str(so)], check=True)
    lib = C.CDLL(str(so))
    lib.kws_fc_a4_packed_bytes.restype = C.c_int64
    lib.kws_fc_a4_weight.restype = C.c_int32
    lib.kws_fc_a4_scratch_bytes.restype = C.c_size_t
    return lib


def _ptr(a, t=C.c_int32):
    return a.ctypes.data_as(C.POINTER(t))


def _expected(x, w, bias, mult, shift, off, zp_out, amin, amax):
    acc = (x.astype(np.int64) + off) @ w.T.astype(np.int64)
    if bias is not None:
        acc = acc + bias
    y = multiply_by_quantized_multiplier(acc, mult, shift) + zp_out
    return np.clip(y, amin, amax).astype(np.int8)


def _case(rng, in_n, out_n, bits, ib, ob, extreme=False):
    m = (1 << (bits - 1)) - 1
    w = rng.integers(-m, m + 1, (out_n, in_n)).astype(np.int8)
    batches = int(rng.integers(1, 4))
    if ib < 8:
        x = rng.integers(0, 1 << ib, (batches, in_n)).astype(np.int8)
        zp_in = 0
    else:
        x = rng.integers(-128, 128, (batches, in_n)).astype(np.int8)
        zp_in = int(rng.integers(-30, 30))
    if extreme:
        w[:] = np.where(rng.random(w.shape) < 0.5, -m, m)
        x[:] = (1 << ib) - 1 if ib < 8 else 127
    relu = ob < 8 or rng.random() < 0.5
    zp_out = 0 if ob < 8 else int(rng.integers(-20, 20))
    amin = max(-128, zp_out) if relu else -128
    amax = min(127, amin + (1 << ob) - 1) if ob < 8 else 127
    mult = rng.integers(1 << 30, (1 << 31) - 1, out_n).astype(np.int32)
    shift = rng.integers(-14, -4, out_n).astype(np.int32)
    bias = rng.integers(-5000, 5000, out_n).astype(np.int32) if rng.random() < 0.8 else None
    return w, x, bias, mult, shift, -zp_in, zp_out, amin, amax


def _params(w, bits, layout, ib, ob, mult, shift, off, zp_out, amin, amax, row_bytes):
    out_n, in_n = w.shape
    fc = FC(Act(off, zp_out, amin, amax), in_n, out_n, _ptr(mult), _ptr(shift), 0, bits, layout, row_bytes)
    return A4(fc, ib, ob)


def _run(lib, fn, p, x, packed, bias, scratch=None):
    y = np.zeros((x.shape[0], p.fc.out_features), np.int8)
    pk = np.frombuffer(packed, np.uint8).copy()
    b = _ptr(bias) if bias is not None else None
    args = [C.byref(p)] + ([scratch.ctypes.data_as(C.c_void_p)] if scratch is not None else []) + \
        [x.shape[0], _ptr(x, C.c_int8), _ptr(pk, C.c_uint8), b, _ptr(y, C.c_int8)]
    fn(*args)
    return y


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reference_and_dsp_equal_python(lib, seed):
    rng = np.random.default_rng(seed)
    for trial in range(60):
        bits = int(rng.choice([2, 3, 4]))
        in_n, out_n = int(rng.integers(1, 300)), int(rng.integers(1, 21))
        ib = int(rng.choice([2, 3, 4, 8])) if trial % 3 else 4
        ob = int(rng.choice([4, 8]))
        w, x, bias, mult, shift, off, zp_out, amin, amax = _case(rng, in_n, out_n, bits, ib, ob, trial % 10 == 9)
        exp = _expected(x, w, bias, mult, shift, off, zp_out, amin, amax)
        p0 = _params(w, bits, 0, ib, ob, mult, shift, off, zp_out, amin, amax, packing.row_bytes(bits, in_n, 0))
        y0 = _run(lib, lib.kws_fully_connected_a4, p0, x, packing.pack(w, bits, 0), bias)
        assert np.array_equal(y0, exp), (trial, bits, in_n, out_n, ib, ob)
        packed7 = packing.pack(w, bits, 7)
        p7 = _params(w, bits, 7, ib, ob, mult, shift, off, zp_out, amin, amax, 2 * ((in_n + 3) // 4))
        assert lib.kws_fc_a4_dsp_supported(C.byref(p7)) == (ib <= 4)
        if ib <= 4:
            scratch = np.zeros(lib.kws_fc_a4_scratch_bytes(in_n), np.uint8)
            y7 = _run(lib, lib.kws_fully_connected_a4_dsp, p7, x, packed7, bias, scratch)
            assert np.array_equal(y7, exp), (trial, bits, in_n, out_n, ob)


def test_dsp_worst_case_sums(lib):
    """in_features at the limit, every activation 15 and every weight +-7: the 12-bit low fields and
    the 4096-scaled row sums are exact; one more input is refused."""
    rng = np.random.default_rng(7)
    for in_n in (4096, 4093, 17):
        w, x, bias, mult, shift, off, zp_out, amin, amax = _case(rng, in_n, 5, 4, 4, 8, extreme=True)
        mult[:] = 1 << 30
        shift[:] = -12   # keep the extreme sums inside int8 after requantization (not all clamped)
        exp = _expected(x, w, bias, mult, shift, off, zp_out, amin, amax)
        p7 = _params(w, 4, 7, 4, 8, mult, shift, off, zp_out, amin, amax, 2 * ((in_n + 3) // 4))
        scratch = np.zeros(lib.kws_fc_a4_scratch_bytes(in_n), np.uint8)
        y = _run(lib, lib.kws_fully_connected_a4_dsp, p7, x, packing.pack(w, 4, 7), bias, scratch)
        assert np.array_equal(y, exp)
    p7.fc.in_features = 4097
    assert lib.kws_fc_a4_dsp_supported(C.byref(p7)) == 0


def _requant_c(a, m, sh, zp_out, amin, amax):
    """the reference's int32 arithmetic for one output (kws_multiply_by_quantized_multiplier: the left shift
    wraps at 32 bits), offset and clamp"""
    wrap = lambda v: (v + (1 << 31)) % (1 << 32) - (1 << 31)
    a = wrap(a << sh) if sh > 0 else wrap(a)
    ab = a * m
    h = (ab + (1 << 30 if ab >= 0 else 1 - (1 << 30)))
    h = -((-h) >> 31) if h < 0 else h >> 31   # C division truncates toward zero
    r = max(-sh, 0)
    mask = (1 << r) - 1
    v = (h >> r) + (1 if (h & mask) > (mask >> 1) + (1 if h < 0 else 0) else 0)
    return min(max(v + zp_out, amin), amax)


@pytest.mark.parametrize("amin,amax,zp_out", [(-128, 127, 0), (0, 15, 0), (-5, 10, -5), (-128, 127, 17)])
def test_dsp_requantization_edges(lib, amin, amax, zp_out):
    """the DSP kernel's requantization (one SMLAL for shifts <= -2, the reference's steps otherwise) at every
    shift -31..2, multipliers 0 / 2^30 / 2^31 - 1, sums near +-2^31 and exact rounding ties of both signs"""
    rng = np.random.default_rng(11)
    shifts = np.arange(-31, 3, dtype=np.int32)
    out_n, in_n = len(shifts), 9
    w = rng.integers(-7, 8, (out_n, in_n)).astype(np.int8)
    x = rng.integers(0, 16, (1, in_n)).astype(np.int8)
    acc = (x.astype(np.int64) @ w.T.astype(np.int64))[0]
    packed = packing.pack(w, 4, 7)
    scratch = np.zeros(lib.kws_fc_a4_scratch_bytes(in_n), np.uint8)
    for trial in range(40):
        mult = np.array([[0, 1 << 30, (1 << 31) - 1][(o + trial) % 3] if trial % 4 else int(rng.integers(1 << 30, 1 << 31))
                         for o in range(out_n)], np.int32)
        want = []
        for o, sh in enumerate(shifts):
            r = max(-int(sh), 1)
            kind = (trial + o) % 5
            if kind == 0:     # near the int32 ends
                a = int(rng.choice([(1 << 31) - 1, -(1 << 31) + 200])) - int(rng.integers(0, 100))
            elif kind == 1:   # an exact tie of the rounding divide (for multiplier 2^30: h = floor((a + 1) / 2))
                h = int(rng.choice([-1, 1])) * (2 * int(rng.integers(0, 4)) + 1) << (r - 1)
                a = max(min(2 * h, (1 << 31) - 1), -(1 << 31) + 200)
            elif kind == 2:
                a = int(rng.integers(-(1 << 31) + 200, 1 << 31))
            else:
                a = int(rng.integers(-5000, 5000)) << int(rng.integers(0, 12))
            want.append(a)
        bias = (np.array(want, np.int64) - acc).astype(np.int32)
        exp = np.array([[_requant_c(int(acc[o]) + int(bias[o]), int(mult[o]), int(shifts[o]), zp_out, amin, amax)
                         for o in range(out_n)]], np.int8)
        p7 = _params(w, 4, 7, 4, 8, mult, shifts, 0, zp_out, amin, amax, 2 * ((in_n + 3) // 4))
        y = _run(lib, lib.kws_fully_connected_a4_dsp, p7, x, packed, bias, scratch)
        assert np.array_equal(y, exp), (trial, np.nonzero(y != exp))
        p0 = _params(w, 4, 0, 4, 8, mult, shifts, 0, zp_out, amin, amax, packing.row_bytes(4, in_n, 0))
        assert np.array_equal(_run(lib, lib.kws_fully_connected_a4, p0, x, packing.pack(w, 4, 0), bias), exp), trial


@pytest.mark.parametrize("out_n,in_n", [(1, 1), (2, 5), (3, 8), (5, 13), (8, 64), (9, 130)])
def test_layout7_python_equals_c(lib, out_n, in_n):
    rng = np.random.default_rng(out_n * 100 + in_n)
    w = rng.integers(-7, 8, (out_n, in_n)).astype(np.int8)
    py = packing.pack(w, 4, 7)
    assert len(py) == lib.kws_fc_a4_packed_bytes(out_n, in_n) == packing.packed_bytes(4, out_n, in_n, 7)
    cbuf = np.zeros(len(py), np.uint8)
    lib.kws_fc_a4_pack_pairs(out_n, in_n, _ptr(w, C.c_int8), _ptr(cbuf, C.c_uint8))
    assert cbuf.tobytes() == py
    assert np.array_equal(packing.unpack(py, 4, out_n, in_n, 7), w)
    got = [[lib.kws_fc_a4_weight(out_n, in_n, _ptr(cbuf, C.c_uint8), o, i) for i in range(in_n)] for o in range(out_n)]
    assert np.array_equal(np.array(got), w)


def test_layout7_byte_example():
    """docs/formats.md section 9: rows [1, -2, 7, -7] and [-1, 3, 0, 7] -> bytes 79 FF 06 31."""
    w = np.array([[1, -2, 7, -7], [-1, 3, 0, 7]], np.int8)
    assert packing.pack(w, 4, 7).hex() == "79ff0631"
    assert fc_a4.A4Pairs.id == 7


# ------------------------------------------------------------------------------------ QEMU

# board -> (QEMU command, kws_a4bench image): the build's A4 kernel is the DSP one on M4/M7 (layout 7), the
# Helium one on M55 and the NEON ones on the A53 (armv8.0, SMLAL) and the A76 (dotprod, SDOT), layout 6
A4BENCH = {b: (list(v.qemu), FW / "build" / v.a4bench_image)
           for b, v in board_table.BOARDS.items()}


def _qemu(board, args):
    sh = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["a4bench"] + args)
    cmd, elf = A4BENCH[board]
    r = subprocess.run([*cmd, "-nographic", "-icount", "shift=0,align=off,sleep=off", "-semihosting-config", sh,
                        "-kernel", str(elf)], capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def a4bench():
    tools = ("arm-none-eabi-gcc", "aarch64-linux-gnu-gcc", "qemu-system-arm", "qemu-system-aarch64")
    if any(shutil.which(t) is None for t in tools):
        pytest.skip("cross compilers / QEMU missing")
    r = subprocess.run(["make", "-C", str(FW), "-f", "Makefile", "-f", "a4.mk", "a4bench"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.parametrize("board", list(A4BENCH))
def test_a4_kernel_exact_under_qemu(a4bench, board):
    """random shapes and tails (1..1536 inputs, 1..24 outputs, 1..3 batches), 2/4-bit weights (and 3-bit on
    the DSP), 2..4-bit inputs, 4/8-bit outputs: the board's A4 kernel == the C reference byte for byte"""
    rc, text = _qemu(board, ["test", "150", "5"])
    m = re.search(r"A4TEST run=(\d+) fail=(\d+)", text)
    assert m and rc == 0 and int(m.group(2)) == 0 and int(m.group(1)) == 150, text[-2000:]


def test_a4_layouts_come_from_the_table():
    """the layout each family's A4 kernel reads is the generated header's (kws_isa_a4_layout), and the
    Python packer holds it: layout 6 for 2/4-bit weights on Helium/NEON, 7 on the DSP"""
    assert layout_table.a4_layout("dsp", 4, 4) == 7 and layout_table.a4_layout("mve", 4, 4) == 6
    assert layout_table.a4_layout("neon", 3, 4) == 0 and layout_table.a4_layout("neon", 4, 8) == 3
    assert layout_table.a4_layout("neon_dotprod", 4, 8) == 6   # 8-bit inputs: the w4a8 kernel's layout
    hdr = (FW / "include" / "kws_layout_table.h").read_text()
    for fam, lays in layout_table.A4_LAYOUTS.items():
        row = ", ".join(str(lays.get(k, 0)) for k in range(9))
        assert f"{{{row}}},  /* {fam} */" in hdr
        for k, lay in lays.items():
            packing.get_layout(lay).check_bits(k)
