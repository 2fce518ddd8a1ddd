"""Firmware int8 LSTM (issue 12): the C runtime runs TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM byte-exact with the
numpy reference (itself bit-exact with tflite-micro) on the host (ASan/UBSan) and the emulated boards, the
state kept between invocations (one input file = one stream); state-size mismatch and a missing state are
status codes. Every board runs its family's LSTM kernel (DSP, Helium, NEON; the A76 also the SDOT image).
The models (2 x 32 units on 16 bins; 2 x 7 on 10 bins for the kernels' tails) are converted
once and cached in firmware/build/testdata/lstm."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
DATA = FW / "build" / "testdata" / "lstm"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_firmware import BOARDS, COMPILER, SAN_ENV, run_board  # noqa: E402
from tflm_port import board_table  # noqa: E402

BINS, UNITS, HOPS = 16, 32, 300
LSTM_BOARDS = ["host", *board_table.cortex_m(), board_table.aarch64()[0]]


def _missing(board):
    target, tool, _ = BOARDS[board]
    return next((t for t in (tool, COMPILER[target]) if shutil.which(t) is None), None)


@pytest.fixture(scope="module")
def built():
    targets = sorted({BOARDS[b][0] for b in LSTM_BOARDS if not _missing(b)})
    r = subprocess.run(["make", "-C", str(FW), "-j2", *targets], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return targets


def make_case(bins: int, units: int):
    """lstm.tflite, in.bin (one stream of HOPS frames), expected.bin from the reference (cached)."""
    tag = f"{units}x{bins}"
    model, xin, exp = DATA / f"lstm{tag}.tflite", DATA / f"in{tag}.bin", DATA / f"expected{tag}.bin"
    if not (model.is_file() and xin.is_file() and exp.is_file()):
        from bench.testmodels import random_lstm
        from training.export_lstm import convert_lstm
        from tflm_port.reference import Reference

        rng = np.random.default_rng(3)
        m = random_lstm(units, bins, 10, seed=1, jitter=0.2, rng=rng)
        data = convert_lstm(m, rng.normal(size=(24, 20, bins)).astype(np.float32))
        ref = Reference.from_bytes(data)
        xf = np.random.default_rng(4).normal(size=(HOPS, 1, bins)).astype(np.float32)
        x = ref.quantize_input(xf)
        x[::37] = np.random.default_rng(5).integers(-128, 128, size=x[::37].shape)  # some full-range frames
        ref.reset_state()
        y = np.concatenate([ref.run(x[t:t + 1]) for t in range(HOPS)])
        DATA.mkdir(parents=True, exist_ok=True)
        model.write_bytes(data)
        xin.write_bytes(x.tobytes())
        exp.write_bytes(y.tobytes())
    return model, xin, exp


@pytest.fixture(scope="module")
def case():
    return make_case(BINS, UNITS)


@pytest.mark.parametrize("shape", [(BINS, UNITS), (10, 7)])
@pytest.mark.parametrize("board", LSTM_BOARDS)
def test_lstm_byte_exact_on_board(built, board, shape, tmp_path):
    """kws_runner.elf: the build's kernels (DSP LSTM on M4/M7); odd sizes exercise the tails."""
    if _missing(board):
        pytest.skip(f"{_missing(board)} not installed")
    model, xin, exp = make_case(*shape)
    rc, st, text = run_board(board, model, xin, tmp_path / "out.bin")
    assert rc == 0 and st is not None and st["status"] == 0, text[-2000:]
    assert st["inferences"] == HOPS, text[-2000:]
    got, want = (tmp_path / "out.bin").read_bytes(), exp.read_bytes()
    assert len(got) == len(want) and got == want, f"{sum(a != b for a, b in zip(got, want))} bytes differ"
    if board in board_table.BOARDS:   # the family's LSTM kernel ran: DSP, Helium or NEON (2 LSTMs + the Dense)
        fam = board_table.BOARDS[board].family
        assert f"kernel={fam} " in text and int(re.search(r"opt_ops=(\d+)", text).group(1)) >= 3, text[-500:]


@pytest.mark.parametrize("shape", [(BINS, UNITS), (10, 7)])
def test_lstm_dotprod_image_byte_exact(built, shape, tmp_path):
    """The armv8.2+dotprod Linux image (SDOT LSTM kernel) on the Cortex-A76 under qemu-aarch64."""
    a76 = board_table.aarch64()[-1]
    if _missing(a76):
        pytest.skip(f"{_missing(a76)} not installed")
    model, xin, exp = make_case(*shape)
    cmd = [*board_table.BOARDS[a76].user_mode[0], str(FW / "build" / board_table.BOARDS[a76].user_runner_image),
           str(model), str(xin), str(tmp_path / "out.bin")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    text = r.stdout + r.stderr
    assert r.returncode == 0 and "KWS status=0" in text and "kernel=neon_dotprod " in text, text[-2000:]
    assert int(re.search(r"opt_ops=(\d+)", text).group(1)) >= 3
    assert (tmp_path / "out.bin").read_bytes() == exp.read_bytes()


@pytest.mark.parametrize("board", ["mps2-an386"])
def test_reference_image_byte_exact(built, case, board, tmp_path):
    """kws_runner_ref.elf (reference kernels only) gives the same bytes."""
    if _missing(board):
        pytest.skip(f"{_missing(board)} not installed")
    model, xin, exp = case
    semi = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["kws_runner", model, xin, tmp_path / "o.bin"])
    r = subprocess.run(["qemu-system-arm", "-M", board, "-nographic", "-semihosting-config", semi, "-kernel",
                        str(FW / "build" / board / "kws_runner_ref.elf")], capture_output=True, text=True, timeout=300)
    assert "KWS status=0" in r.stdout + r.stderr and "kernel=reference" in r.stdout + r.stderr
    assert (tmp_path / "o.bin").read_bytes() == exp.read_bytes()


def _edit(model: Path, fn) -> bytes:
    from tflm_port.tflite_io import load_model, op_name, save_model

    m = load_model(model.read_bytes())
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if op_name(m, o) == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    fn(sg, op)
    return save_model(m)


def _grow_state(sg, op):
    sg.tensors[op.inputs[18]].shape = [1, UNITS + 1]


def _drop_state(sg, op):
    op.inputs[19] = -1


@pytest.mark.parametrize("edit, status, text", [(_grow_state, 7, "LSTM state size != units"),
                                                (_drop_state, 9, "without its state tensors")])
def test_state_problems_are_status_codes(built, case, edit, status, text, tmp_path):
    if _missing("host"):
        pytest.skip("gcc not installed")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_edit(case[0], edit))
    rc, st, out = run_board("host", bad, case[1], tmp_path / "o.bin")
    assert st is not None and st["status"] == status and text in out, out[-2000:]
    assert "Sanitizer" not in out and "runtime error" not in out


def test_c_table_equals_the_reference_table():
    import re

    from tflm_port.lstm import LUT

    src = (FW / "kernels" / "reference" / "kws_lstm_s8.c").read_text()
    body = re.search(r"kws_sigmoid_table_u16\[256\] = \{(.*?)\};", src, re.S).group(1)
    assert [int(v) for v in body.replace("\n", " ").split(",") if v.strip()] == LUT.tolist()


def test_instructions_per_hop_recorded(built, case, tmp_path):
    """-icount: instructions per hop of the reference kernel on Cortex-M4 (mps2-an386), deterministic."""
    if _missing("mps2-an386"):
        pytest.skip("qemu-system-arm not installed")
    runs = [run_board("mps2-an386", case[0], case[1], tmp_path / "o.bin", max_vectors=5, icount=True)[1]
            for _ in range(2)]
    assert runs[0]["instr_first"] > 2 * 4 * UNITS * (BINS + UNITS)  # at least the MACs
    assert (runs[0]["instr_first"], runs[0]["instr_total"]) == (runs[1]["instr_first"], runs[1]["instr_total"])
