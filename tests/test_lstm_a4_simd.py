"""SUB8_LSTM_A4 on Helium and NEON (issue 12; kernels/mve/kws_lstm_a4_mve.c, kernels/neon/kws_lstm_a4_neon.c,
docs/kernels.md): the M55 image, the armv8.0 NEON image on the A53 and the dot-product image on the A76 run the
w4a4 LSTM through their own kernels (``kernel=<family>``, both LSTM layers counted in ``opt_ops``) and give the
same bytes as the numpy reference (tflm_port/lstm_a4.py, itself the C reference kernel's arithmetic).

The cases reach every path of the kernels: weights over the whole 4-bit grid (-7..7; the packer refuses -8)
and inputs at -128 / 127; zero points 0, -3 and 100 on the layer input (the 0/1 column-mask correction); row lengths that
are not a multiple of 16 bytes, odd in_features (a padding nibble), units not a multiple of four (scalar
rows); 4-bit hidden states (the A53's narrow int8 MUL / MLA path) and 5-bit ones (its SMULL path); 4-bit
gates (16-entry tables: TBL / gather search) and 5- / 6-bit ones (32 / 64 entries). The models are written
from random integers (no TensorFlow) and cached in firmware/build/testdata/lstm_a4_simd."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflm_port import board_table, lstm_a4

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fw_build import write_stream_case  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
DATA = FW / "build" / "testdata" / "lstm_a4_simd"
HOPS = 60
M55 = board_table.first_of("mve")
A53, A76 = board_table.first_of("neon"), board_table.first_of("neon_dotprod")

# (bins, units, input zero point, gate bits, tanh bits, hidden bits)
CASES = {
    "32x16_zp-3": (16, 32, -3, 4, 4, 4),
    "21x13_zp100_tails": (13, 21, 100, 4, 4, 4),
    "36x40_zp0_g5t6h5": (40, 36, 0, 5, 6, 5),
    "7x70_zp-3_tails": (70, 7, -3, 4, 4, 4),
    "32x16_zp-3_w4a8": (16, 32, -3, 8, 8, 8),   # what a w4a8 QAT LSTM exports as (quant.lstm_op auto)
}


def write_case(name: str):
    """model, one stream of HOPS frames and the reference's output bytes (cached by content)."""
    bins, units, zp, gb, tb, hb = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    layers, n_in = [], bins
    for _ in range(2):
        layers.append(lstm_a4.LayerA4(
            w=rng.integers(-7, 8, (4 * units, n_in)), r=rng.integers(-7, 8, (4 * units, units)),
            bias=rng.normal(0, 1.0, 4 * units), s_w=0.9 / 7 / math.sqrt(n_in), s_r=1.2 / 7 / math.sqrt(units),
            s_gates=(1 / lstm_a4.levels(gb, False), 1 / lstm_a4.levels(gb, False), 1 / lstm_a4.levels(tb, True),
                     1 / lstm_a4.levels(gb, False)),
            s_tanh=1 / lstm_a4.levels(tb, True), s_cell=8 / 32767, s_h=1 / lstm_a4.levels(hb, True),
            weight_bits=4, gate_bits=gb, tanh_bits=tb, hidden_bits=hb, cell_bits=16))
        n_in = units
    data = lstm_a4.write_model(layers, (0.03, zp), rng.integers(-7, 8, (3, units)), 0.2 / 7, rng.normal(0, 1, 3),
                               (0.06, 5), {"labels": ["a", "b", "c"]}, "simd")
    model, xin, exp = DATA / f"{name}.tflite", DATA / f"{name}.in.bin", DATA / f"{name}.expected.bin"
    if not (model.is_file() and model.read_bytes() == data and xin.is_file() and exp.is_file()):
        x = rng.integers(-128, 128, size=(HOPS, 1, 1, bins)).astype(np.int8)
        x[::7, 0, 0, ::2], x[3::7, 0, 0, 1::2] = -128, 127          # the extremes of the int8 input
        write_stream_case(data, x, model, xin, exp)
    return model, xin, exp


def _missing(board: str):
    v = board_table.BOARDS[board]
    tool = v.user_mode[0][0] if v.user_mode else v.qemu[0]
    return next((t for t in (tool, v.compiler) if shutil.which(t) is None), None)


@pytest.fixture(scope="module")
def built():
    targets = sorted({board_table.BOARDS[b].make_target if board_table.BOARDS[b].cortex_m else "aarch64"
                      for b in (M55, A53, A76) if not _missing(b)})
    r = subprocess.run(["make", "-C", str(FW), "-j2", *targets], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def run_image(board: str, model: Path, xin: Path, out: Path) -> str:
    """The board's product image: the M55 under qemu-system-arm, the AArch64 Linux builds under qemu-aarch64
    (the A76 runs the armv8.2 dot-product build)."""
    v = board_table.BOARDS[board]
    if v.cortex_m:
        semi = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["kws_runner", model, xin, out])
        cmd = [*v.qemu, "-nographic", "-semihosting-config", semi, "-kernel", str(FW / "build" / v.runner_image)]
    else:
        cmd = [*v.user_mode[0], str(FW / "build" / v.user_runner_image), str(model), str(xin), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return r.stdout + r.stderr


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("board", [M55, A53, A76])
def test_simd_lstm_a4_byte_exact(built, board, case, tmp_path):
    if _missing(board):
        pytest.skip(f"{_missing(board)} not installed")
    model, xin, exp = write_case(case)
    text = run_image(board, model, xin, tmp_path / "out.bin")
    fam = board_table.BOARDS[board].family
    assert f"KWS status=0 inferences={HOPS} " in text, text[-2000:]
    assert f"kernel={fam} " in text and int(re.search(r"opt_ops=(\d+)", text).group(1)) >= 2, text[-500:]
    got, want = (tmp_path / "out.bin").read_bytes(), exp.read_bytes()
    assert len(got) == len(want) and got == want, f"{sum(a != b for a, b in zip(got, want))} bytes differ"

