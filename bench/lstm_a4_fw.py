"""Instructions per hop of the w4a4 / w4a8 streaming LSTM (SUB8_LSTM_A4, docs/formats.md section 13) in the
firmware.

    python -m bench.lstm_a4_fw [--activation-bits 4|8] [--out JSON] [--hops 20] [--boards B ...] [--merge]

Writes a random-integer LSTM of the default model's shape (2 x 128 units on 64 bins + Dense 3: 4-bit
kernels, gates / cell input / tanh(c) / hidden state at ``--activation-bits``, 16-bit cell) with
``tflm_port.lstm_a4`` (no TensorFlow; bench/lstm_a4_fw.json at 4 bits, bench/lstm_w4a8_fw.json at 8), builds the boards (make -C firmware), runs each board's product image and its
kws_runner_ref.elf (reference kernels) under QEMU with -icount shift=0 (SysTick on Cortex-M, the PMU on
AArch64 bare metal: instructions, NOT cycles), one frame per invocation with the state carried, checks the
output bytes against the numpy reference and writes the mean instructions per hop (whole graph). The LSTM
layers run kernels/dsp/kws_lstm_a4_dsp.c on the DSP boards (M4, M7), kernels/mve/kws_lstm_a4_mve.c on the
M55, kernels/neon/kws_lstm_a4_neon.c on the A53 (armv8.0) and the A76 (dot-product image); ``opt_ops``
counts them. The int8 LSTM figures to compare with are bench/lstm_fw.json's (``python -m bench.lstm_fw``,
same shape, same boards). Atomic JSON. ``--merge`` also adds the rows to bench/results.json as
``benchmark: "inference"`` records (model "lstm", weight bits 4, the activation bits, kernel
``lstm_a4_<family>`` / ``lstm_a4_reference``) through bench.records' merge, and regenerates BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from basics.atomic import atomic_write_text
from bench.merge import merge_into_results
from bench.records import lstm_hop_record
from bench.testmodels import random_lstm_a4
from tflm_port import board_table
from tflm_port.firmware_runner import run_runner
from tflm_port.reference import Reference

SHAPE = (64, 128, 2)
ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = {b: v.core for b, v in board_table.BOARDS.items()}  # every emulated board


def run(board: str, elf: str, mp: Path, xp: Path, out: Path) -> dict:
    """elf: the board's image under firmware/build/ (board_table runner_image / reference_image) under QEMU
    -icount shift=0 (tflm_port.firmware_runner.run_runner): its status line as a dict."""
    d, text = run_runner(board, elf, [mp, xp, out])
    if d is None:
        raise SystemExit(f"{board}: no status line:\n{text[-1000:]}")
    return d


def inference_records(rows: list[dict]) -> list[dict]:
    """The rows as bench/results.json ``inference`` records (one per board and image)."""
    return [{**lstm_hop_record(
        r, 4, r["activation_bits"], "lstm_a4_" + (board_table.BOARDS[r["board"]].family   # the LSTMs ran the family's kernel
                                                  if r["opt_ops"] >= r["lstm_shape"]["layers"] else "reference"),
        f"{r['mode']} stream, {r['hops']} hops of one frame, state carried (random 4-bit weights): {r['shape']}",
        f"python -m bench.lstm_a4_fw --activation-bits {r['activation_bits']} --hops {r['hops']} --merge"),
        "opt_ops": r["opt_ops"]} for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lstm_a4_fw", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--activation-bits", type=int, choices=(4, 8), default=4,
                    help="gates, cell input, tanh(c) and hidden state (4: w4a4, 8: w4a8)")
    ap.add_argument("--out", help="default bench/lstm_a4_fw.json (w4a4), bench/lstm_w4a8_fw.json (w4a8)")
    ap.add_argument("--hops", type=int, default=20)
    ap.add_argument("--boards", nargs="+", choices=list(BOARDS), default=list(BOARDS))
    ap.add_argument("--merge", action="store_true", help="add inference records to bench/results.json")
    a = ap.parse_args(argv)
    boards = {b: BOARDS[b] for b in a.boards}
    for b in boards:
        v = board_table.BOARDS[b]
        if shutil.which(v.qemu[0]) is None or shutil.which(v.compiler) is None:
            raise SystemExit(f"bench.lstm_a4_fw: {b} needs {v.qemu[0]} and {v.compiler}")
    targets = sorted({board_table.BOARDS[b].make_target for b in boards})
    r = subprocess.run(["make", "-C", str(FW), "-j2", *targets], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stdout[-2000:] + r.stderr[-2000:])
    bins, units, layers = SHAPE
    ab = a.activation_bits
    out_json = a.out or ("bench/lstm_a4_fw.json" if ab == 4 else f"bench/lstm_w4a{ab}_fw.json")
    data = random_lstm_a4(bins, units, layers, activation_bits=ab)
    ref = Reference.from_bytes(data)
    x = np.random.default_rng(4).integers(-128, 128, size=(a.hops, 1, 1, bins)).astype(np.int8)
    y = np.concatenate([ref.run(x[t]) for t in range(a.hops)])
    rows = []
    with tempfile.TemporaryDirectory() as td:
        mp, xp, out = Path(td) / "m.tflite", Path(td) / "x.bin", Path(td) / "o.bin"
        mp.write_bytes(data)
        xp.write_bytes(x.tobytes())
        for board, core in ((b, c) for b, c in boards.items() for _ in (0, 1)):
            v = board_table.BOARDS[board]
            elf = v.reference_image if any(r["board"] == board for r in rows) else v.runner_image
            d = run(board, elf, mp, xp, out)
            rows.append({"model": "lstm", "mode": f"w4a{ab} SUB8_LSTM_A4", "weight_bits": 4, "activation_bits": ab,
                         "shape": f"{layers}x{units} LSTM on {bins} bins + Dense 3",
                         "lstm_shape": {"layers": layers, "units": units, "input_bins": bins, "dense_outputs": 3},
                         "board": board, "core": core, "image": Path(elf).name, "kernel": d["kernel"],
                         "opt_ops": d["opt_ops"],
                         "status": d["status"], "hops": d["inferences"], "byte_exact": out.read_bytes() == y.tobytes(),
                         "instructions_per_hop": round(d["instr_total"] / max(d["inferences"], 1)),
                         "instructions_first_hop": d["instr_first"], "arena_bytes": d["arena"],
                         "model_bytes": len(data)})
            print(json.dumps(rows[-1]))
    rec = {"benchmark": "lstm_a4_firmware", "unit": "instructions (QEMU -icount shift=0), not cycles", "rows": rows}
    atomic_write_text(out_json, json.dumps(rec, indent=1) + "\n")
    if a.merge:
        merge_into_results(inference_records(rows))
    return 0 if all(r["byte_exact"] and r["status"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
