"""Optimized FC kernels (firmware/kernels/{dsp,mve,neon}) == reference kernels byte for byte, on every
board they target under QEMU: random shapes (odd in/out sizes, tails), every supported bit width,
random zero points / multipliers / shifts, ReLU and none, bias and none, 1..3 batches (the
kws_kbench self-test), plus the FFNN-250K bench outputs; the Python packers of layouts 2/3
(tflm_port.layouts_opt) against the C packer/reader. Boards whose toolchain or QEMU is missing skip."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import kernels as kb  # noqa: E402
from tflm_port import board_table  # noqa: E402

FW = ROOT / "firmware"


@pytest.fixture(scope="module")
def built():
    if all(kb.missing(b) for b in kb.BOARDS):
        pytest.skip("no ARM toolchain or QEMU: arm-none-eabi-gcc / qemu-system-arm not installed")
    kb.build()
    return True


@pytest.mark.parametrize("board", list(kb.BOARDS))
@pytest.mark.parametrize("seed", [1, 2])
def test_selftest_random_shapes(built, board, seed):
    if kb.missing(board):
        pytest.skip(f"{kb.missing(board)} not installed")
    rc, text = kb.run_image(board, ["test", "400", str(seed)])
    m = re.search(r"KTEST isa=(\S+) run=(\d+) fail=(\d+)", text)
    assert m, text[-2000:]
    assert int(m.group(3)) == 0 and rc == 0, text[-3000:]
    assert int(m.group(2)) >= 150


def test_dotprod_image_off_a53_v80_on_a76(built):
    """the armv8.0 image also runs (and is exact) on a dot-product core"""
    if kb.missing("aarch64-cortex-a76"):
        pytest.skip("qemu-system-aarch64 not installed")
    elf = kb.BUILD / board_table.BOARDS["aarch64-cortex-a53"].kbench_image
    cmd = [*board_table.BOARDS["aarch64-cortex-a76"].qemu, "-nographic", "-icount", "shift=0,align=off,sleep=off",
           "-semihosting-config", "enable=on,target=native,arg=kbench,arg=test,arg=200,arg=3", "-kernel", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "fail=0" in r.stdout + r.stderr


@pytest.mark.parametrize("board", list(kb.BOARDS))
def test_ffnn250k_bench_exact(built, board):
    if kb.missing(board):
        pytest.skip(f"{kb.missing(board)} not installed")
    rc, text = kb.run_image(board, ["bench"])
    opt = [l for l in text.splitlines() if l.startswith("KBENCH") and "isa=reference" not in l and "isa=float" not in l]
    assert rc == 0 and opt and all(" ok=1" in l for l in opt), text[-3000:]
    assert all(" spread=1" in l for l in text.splitlines() if "isa=reference" in l)  # outputs not saturated


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    so = tmp_path_factory.mktemp("clib") / "layouts.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-std=c99", f"-I{FW}/include", f"-I{FW}/kernels/opt",
                    str(FW / "kernels/opt/kws_fc_opt_layouts.c"), "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


@pytest.mark.parametrize("layout,bits", [(2, k) for k in range(1, 8)] + [(3, k) for k in range(1, 5)]
                         + [(6, k) for k in (1, 2, 4)] + [(8, k) for k in (1, 2, 4)] + [(9, 3)])
def test_python_packer_equals_c_packer(clib, layout, bits):
    import tflm_port.packing  # noqa: F401  (layouts 2, 3, 6 are registered with the others)
    from tflm_port import packing

    rng = np.random.default_rng(bits * 10 + layout)
    for out, n in [(1, 1), (3, 5), (4, 32), (5, 37), (9, 100), (13, 65), (8, 1536)]:
        m = (1 << (bits - 1)) - 1
        w = rng.choice([-1, 1], (out, n)) if bits == 1 else rng.integers(-m - 1, m + 1, (out, n))
        py = packing.pack(np.clip(w, -m, m) if bits > 1 else w, bits, layout)
        wc = (np.clip(w, -m, m) if bits > 1 else w).astype(np.int8)
        rb = clib.kws_fc_opt_row_bytes(layout, bits, n)
        assert rb == packing.row_bytes(bits, n, layout)
        clib.kws_fc_opt_packed_bytes.restype = ctypes.c_int64
        total = clib.kws_fc_opt_packed_bytes(layout, bits, out, n)
        grouped = {6: -(-out // (8 // bits)) * 16 * -(-n // 16), 8: -(-out // 4) * 4 * rb,
                   9: -(-out // 8) * 48 * -(-n // 16)}
        assert total == len(py) == grouped.get(layout, out * rb)
        buf = (ctypes.c_uint8 * total)()
        clib.kws_fc_opt_pack(layout, bits, out, n, wc.ctypes.data_as(ctypes.c_void_p), buf)
        assert bytes(buf) == py, (layout, bits, out, n)
        assert (packing.unpack(py, bits, out, n, layout) == wc).all()


def test_layout6_doc_examples_and_telescoping():
    """docs/formats.md layout 6 (rows_per_byte) byte examples, and the kernels' identity: with S_r = sum x * (b >> k*r)
    (int8 bytes, arithmetic shift), row r = S_r - 2^k S_{r+1} - 2^(k-1) sum x (top row S_top;
    k = 1: 2 (S_r - 2 S_{r+1}) - sum x, top -2 S_7 - sum x), for odd shapes and every k."""
    import tflm_port.packing  # noqa: F401
    from tflm_port import packing

    assert packing.pack(np.array([[1, -7, 7], [-1, 2, -7]]), 4, 6)[:4] == bytes.fromhex("f9219f00")
    assert packing.pack(np.array([[1], [-1], [0], [-1]]), 2, 6)[:1] == bytes.fromhex("e7")
    rng = np.random.default_rng(4)
    for k in (1, 2, 4):
        G, m = 8 // k, (1 << (k - 1)) - 1
        for out, n in [(1, 1), (3, 17), (9, 40), (13, 100)]:
            w = rng.choice([-1, 1], (out, n)) if k == 1 else rng.integers(-m, m + 1, (out, n))
            data = packing.pack(w, k, 6)
            pad = 16 * -(-n // 16)
            assert len(data) == -(-out // G) * pad
            b = np.frombuffer(data, np.int8).reshape(-1, pad).astype(np.int64)
            x = np.zeros(pad, np.int64)
            x[:n] = rng.integers(-128, 128, n)
            sx = int(x.sum())
            for o in range(out):
                g, r = divmod(o, G)
                S = [int((x * (b[g] >> (k * q))).sum()) for q in range(G)]
                if k == 1:
                    d = (2 * (S[r] - 2 * S[r + 1]) if r < G - 1 else -2 * S[r]) - sx
                else:
                    d = S[r] - (S[r + 1] << k) - (sx << (k - 1)) if r < G - 1 else S[r]
                assert d == int((x[:n] * w[o]).sum()), (k, out, n, o)


def test_layout9_doc_example_telescoping_and_reader(clib):
    """docs/formats.md section 12 (rows24) byte example; the kernels' identity: with S_Xs = sum x * (X >> s) over
    the group's int8 bytes A, B, C (the 24-bit words' bytes 0, 1, 2), the 8 rows' dots are
    S_A0 - 8 S_A3, S_A3 - 8 S_A6, S_A6 + 4 S_B0 - 8 S_B1, S_B1 - 8 S_B4, S_B4 - 8 S_B7, S_B7 + 2 S_C0 - 8 S_C2,
    S_C2 - 8 S_C5, S_C5, each minus ROWS24_BIAS[r] * sum x (padding rows give 0); the full two's complement
    range -4..3 round-trips through the Python packer, the C packer and the C reader; a wrong size is one
    clear error."""
    import tflm_port.packing  # noqa: F401
    from basics.errors import UserError
    from tflm_port import packing
    from tflm_port.layouts_opt import ROWS24_BIAS, Rows24

    assert packing.pack(np.array([[1], [-1], [0], [3], [-3], [2], [-2], [1]]), 3, 9)[::16] == bytes.fromhex("9d9f2b")
    assert ROWS24_BIAS == (4, 4, 2, 4, 4, 3, 4, 0)
    rng = np.random.default_rng(9)
    lay = Rows24()
    for out, n in [(1, 1), (7, 17), (8, 16), (9, 40), (19, 100)]:
        w = rng.integers(-4, 4, (out, n))
        data = lay.pack_rows(w, 3).tobytes()
        assert (packing.unpack(data, 3, out, n, 9) == w).all()
        nblk = -(-n // 16)
        b = np.frombuffer(data, np.int8).astype(np.int64).reshape(-1, nblk, 3, 16).transpose(0, 2, 1, 3)
        x = np.zeros(16 * nblk, np.int64)
        x[:n] = rng.integers(-128, 128, n)
        sx = int(x.sum())
        for g in range(b.shape[0]):
            A, B, C = (b[g, q].reshape(-1) for q in range(3))

            def S(v, s):
                return int((x * (v >> s)).sum())
            d = [S(A, 0) - 8 * S(A, 3), S(A, 3) - 8 * S(A, 6), S(A, 6) + 4 * S(B, 0) - 8 * S(B, 1),
                 S(B, 1) - 8 * S(B, 4), S(B, 4) - 8 * S(B, 7), S(B, 7) + 2 * S(C, 0) - 8 * S(C, 2),
                 S(C, 2) - 8 * S(C, 5), S(C, 5)]
            for r in range(8):
                want = int((x[:n] * w[8 * g + r]).sum()) if 8 * g + r < out else 0
                assert d[r] - ROWS24_BIAS[r] * sx == want, (out, n, g, r)
        buf = (ctypes.c_uint8 * len(data))()
        wc = w.astype(np.int8)
        clib.kws_fc_opt_pack(9, 3, out, n, wc.ctypes.data_as(ctypes.c_void_p), buf)
        assert bytes(buf) == data
        rd = clib.kws_fc_opt_rows24_flip
        assert [rd(r) for r in range(8)] == [0, 0, 2, 0, 0, 1, 0, 4]
    with pytest.raises(UserError, match=r"layout 9 needs 96 \(ceil\(9/8\) groups"):
        packing.unpack(b"\0" * 95, 3, 9, 16, 9)
    with pytest.raises(UserError, match="cannot hold 4-bit"):
        packing.pack(np.zeros((8, 16), np.int64), 4, 9)


def _lanes(v):
    """uint32 words -> (low, high) 16-bit halves as int16 (the SMLAD operands)"""
    v = np.asarray(v, np.uint64).astype(np.uint32)
    return ((v & 0xFFFF).astype(np.uint16).view(np.int16).astype(np.int64),
            (v >> 16).astype(np.uint16).view(np.int16).astype(np.int64))


def test_layout8_doc_examples_and_lane_sums():
    """docs/formats.md section 11 (lanes16) byte examples, and the DSP kernel's arithmetic on the packed
    words: k = 4 from the four sums (word, SXTB16 ror 8, two nibble masks), k = 2 / 1 from the AND-with-
    rotated-mask SMLAD operands, split into bottom and top rows as the kernel does (SBFX 14 / 15 bits)."""
    import tflm_port.packing  # noqa: F401
    from tflm_port import packing

    w = np.zeros((4, 2), int)
    w[:, 0] = [1, -2, 3, -1]
    assert packing.pack(w, 4, 8)[:4] == bytes.fromhex("69fb8808")
    w = np.zeros((4, 8), int)
    w[0, :2], w[1, :2] = [1, -1], [-1, 1]
    assert packing.pack(w, 2, 8)[:4] == bytes.fromhex("8d888788")
    w = -np.ones((4, 32), int)
    w[0, 0] = w[1, 0] = w[0, 1] = 1
    assert packing.pack(w, 1, 8)[:4] == bytes.fromhex("02000300")

    rng = np.random.default_rng(8)
    ror = lambda v, s: ((v >> s) | (v << (32 - s))) & 0xFFFFFFFF  # noqa: E731
    for k in (1, 2, 4):
        m = (1 << (k - 1)) - 1
        for out, n in [(1, 1), (3, 17), (6, 40), (9, 300)]:
            w = rng.choice([-1, 1], (out, n)) if k == 1 else rng.integers(-m, m + 1, (out, n))
            data = packing.pack(w, k, 8)
            rb = packing.row_bytes(k, n, 8)
            words = np.frombuffer(data, "<u4").astype(np.int64).reshape(-1, rb)
            pad = rb * 8 // k
            x = np.zeros(pad, np.int64)
            x[:n] = rng.integers(-128, 128, n)
            sx = int(x.sum())
            for g in range(words.shape[0]):
                W = words[g]
                if k == 4:
                    x0, x1 = x[0::2], x[1::2]
                    dot = lambda t: int((_lanes(t)[0] * x0).sum() + (_lanes(t)[1] * x1).sum())  # noqa: E731
                    hb = (((W >> 8) & 0xFF) ^ 0x80) - 0x80, (((W >> 24) & 0xFF) ^ 0x80) - 0x80
                    a0, a1 = dot(W), int((hb[0] * x0).sum() + (hb[1] * x1).sum())
                    a2, a3 = dot(W & 0x000F000F), dot((W >> 8) & 0x000F000F)
                    rows = [a2 - 8 * sx, ((a0 - 256 * a1 - a2) >> 4) - 8 * sx, a3 - 8 * sx, (a1 - a3) >> 4]
                else:
                    mask, per = (0xC003C003, 8) if k == 2 else (0x80018001, 16)
                    acc = [0, 0]
                    for j, wv in enumerate(W):
                        for e in range(per // 2):
                            s = 2 + 4 * e if k == 2 else 2 * e + 1
                            lo, hi = _lanes(ror(int(wv), s) & mask)
                            i0 = (j // 2) * per + 2 * e
                            acc[j % 2] += int(lo * x[i0] + hi * x[i0 + 1])
                    sh = 14 if k == 2 else 15
                    rows = []
                    for P, a in enumerate(acc):   # a = L + 2^14 H (k = 2), L - 2^15 H (k = 1), L = bottom row's sum
                        o = 4 * g + 2 * P
                        if o >= out:
                            rows += [None, None]
                            continue
                        if k == 2:
                            L = int((x[:n] * (w[o] + 2)).sum())
                            rows += [L - 2 * sx, (a - L) >> sh]
                        else:
                            L = int((x[:n] * (w[o] > 0)).sum())
                            rows += [2 * L - sx, 2 * ((L - a) >> sh) - sx]
                for q in range(4):
                    if 4 * g + q < out:
                        assert rows[q] == int((x[:n] * w[4 * g + q]).sum()), (k, out, n, g, q)


def test_layout2_one_bit_doc_example_and_table_lookups():
    """docs/formats.md section 7 (layout 2, k = 1) byte example, and the armv8.0 A53 kernel's arithmetic
    (docs/kernels.md, "Layout 2 at 1 bit"): per word subset-sum tables of xl = x & 15 and xh = x >> 4 indexed
    by nibble + 16q, looked up per byte lane 4r + q of a group's 16-byte load; dot = 2 (16 TH + TL) - sum x."""
    import tflm_port.layouts_opt  # noqa: F401  (registers layout 2)
    from tflm_port import packing
    w = -np.ones((4, 32), np.int8)
    w[1, 4] = 1
    assert packing.pack(w, 1, 2).hex() == "00000000400000000000000000000000"
    rng = np.random.default_rng(14)
    for in_n in (32, 77, 1536):
        out = 8
        w = rng.choice(np.array([-1, 1], np.int8), size=(out, in_n))
        x = rng.integers(-128, 128, size=in_n, dtype=np.int64)
        x[: min(8, in_n)] = -128                      # the ends of the int8 range
        nw = (in_n + 31) // 32
        packed = np.frombuffer(packing.pack(w, 1, 2), np.uint8).reshape(out // 4, nw, 16)
        xp = np.zeros(32 * nw, np.int64)
        xp[:in_n] = x
        xl, xh = xp & 15, xp >> 4
        dots = np.zeros(out, np.int64)
        for g in range(out // 4):
            tl = np.zeros(16, np.int64)
            th = np.zeros(16, np.int64)
            for c in range(nw):
                tabs = {}
                for name, v in (("l", xl), ("h", xh)):
                    for half, base in (("hi", 0), ("lo", 16)):
                        t = np.zeros(64, np.int64)
                        for q in range(4):
                            for n in range(16):
                                t[16 * q + n] = sum(v[32 * c + base + q + 4 * s] for s in range(4) if n >> (3 - s) & 1)
                        assert (name == "l" and t.min() >= 0 and t.max() <= 60) or (-32 <= t.min() and t.max() <= 28)
                        tabs[name, half] = t
                b = packed[g, c].astype(np.int64)
                q = np.arange(16) % 4
                ihi, ilo = (b >> 4) + 16 * q, (b & 15) + 16 * q
                tl += tabs["l", "hi"][ihi] + tabs["l", "lo"][ilo]
                th += tabs["h", "hi"][ihi] + tabs["h", "lo"][ilo]
            T = 16 * th.reshape(4, 4).sum(1) + tl.reshape(4, 4).sum(1)
            dots[4 * g: 4 * g + 4] = 2 * T - x.sum()
        np.testing.assert_array_equal(dots, w.astype(np.int64) @ x)


# --------------------------------------------------------------------------- float32 LSTM baseline
@pytest.mark.parametrize("board", list(kb.BOARDS))
def test_float_lstm_bench_runs_and_checks_itself(built, board):
    """kws_kbench lstm (the float baseline of the LSTM per-hop figures, bench/lstm_float_fw.py): on every board
    the kernel's first hop agrees with a plain scalar LSTM and the instructions are counted."""
    from bench import lstm_float_fw

    if kb.missing(board):
        pytest.skip(f"{kb.missing(board)} not installed")
    rc, text = kb.run_image(board, ["lstm", "2"], timeout=300)
    row = lstm_float_fw.parse(board, text)
    assert rc == 0 and row["byte_exact"] and row["hops"] == 2, text[-2000:]
    assert row["macs"] == 229_760 and row["instructions_per_hop"] > row["macs"] / 4


def test_float_lstm_kernel_is_the_lstm(tmp_path):
    """kws_lstm_f32 (host build) against a float64 numpy LSTM, and its exp against numpy's: the baseline computes
    what it claims to."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    so = tmp_path / "lstmf.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-std=c99", f"-I{FW}/include", f"-I{FW}/kernels/opt",
                    str(FW / "kernels/float/kws_lstm_f32.c"), str(FW / "kernels/float/kws_fully_connected_f32.c"),
                    "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.kws_lstm_f32_exp.restype = ctypes.c_float
    lib.kws_lstm_f32_exp.argtypes = [ctypes.c_float]
    xs = np.concatenate([np.linspace(-87, 88, 4001), np.linspace(-1, 1, 2001)]).astype(np.float32)
    got = np.array([lib.kws_lstm_f32_exp(float(x)) for x in xs], np.float64)
    assert np.max(np.abs(got / np.exp(xs.astype(np.float64)) - 1)) < 1e-6
    rng = np.random.default_rng(0)
    n_in, u = 24, 16
    w, r = (rng.normal(0, 0.3, (4 * u, k)).astype(np.float32) for k in (n_in, u))
    b = rng.normal(0, 0.5, 4 * u).astype(np.float32)
    h, c = np.zeros(u, np.float32), np.zeros(u, np.float32)
    hd, cd = np.zeros(u), np.zeros(u)
    scratch = np.zeros(8 * u, np.float32)
    f32p = ctypes.POINTER(ctypes.c_float)

    def ptr(a):
        return a.ctypes.data_as(f32p)

    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for _ in range(20):
        x = rng.normal(0, 1.5, n_in).astype(np.float32)
        lib.kws_lstm_f32(n_in, u, ptr(x), ptr(w), ptr(r), ptr(b), ptr(h), ptr(c), ptr(scratch))
        z = w.astype(np.float64) @ x + r.astype(np.float64) @ hd + b
        cd = sig(z[u:2 * u]) * cd + sig(z[:u]) * np.tanh(z[2 * u:3 * u])
        hd = sig(z[3 * u:]) * np.tanh(cd)
        assert np.max(np.abs(h - hd)) < 1e-5 and np.max(np.abs(c - cd)) < 1e-5
