"""Instructions per hop of a float32 LSTM on every emulated board: the float baseline of the int8 and
SUB8_LSTM_A4 per-hop figures (bench/lstm_fw.py, bench/lstm_a4_fw.py).

    python -m bench.lstm_float_fw [--out bench/lstm_float_fw.json] [--hops 4] [--boards B ...] [--merge]

Runs each board's kernel-bench image (firmware/app/kws_kbench.c, ``kbench lstm HOPS``) under QEMU with
-icount shift=0 (SysTick on Cortex-M, the PMU on AArch64 bare metal: instructions, NOT cycles): the
default LSTM shape (2 x 128 units on 64 bins + Dense 3) in float32 with random weights, one frame per hop,
the state carried, through kernels/float/kws_lstm_f32.c (the gate products on the project's float FC
kernel, sigmoid / tanh on one polynomial exp each; docs/kernels.md "Float LSTM baseline"). The image checks
the kernel's first hop against a plain scalar computation of the same layer (``ok``). Float32 has no
runtime graph here, so the figure is the kernel's, not the runtime's: the three layer calls per hop.
Atomic JSON; ``--merge`` adds ``benchmark: "inference"`` records (model "lstm", weight and activation bits
32, kernel ``lstm_float``) to bench/results.json and regenerates BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import re

from basics.atomic import atomic_write_text
from bench import kernels as kb
from bench.merge import merge_into_results
from bench.records import lstm_hop_record
from tflm_port import board_table

SHAPE = {"layers": 2, "units": 128, "input_bins": 64, "dense_outputs": 3}
LINE = re.compile(r"LBENCH isa=float hops=(\d+) instructions=(\d+) first=(\d+) macs=(\d+) weight_bytes=(\d+) ok=(\d)")


def parse(board: str, text: str) -> dict:
    """The board's LBENCH line as a row (SystemExit naming the board when there is none)."""
    m = LINE.search(text)
    if not m:
        raise SystemExit(f"bench.lstm_float_fw: {board}: no LBENCH line:\n{text[-1000:]}")
    hops, total, first, macs, wbytes, ok = (int(g) for g in m.groups())
    v = board_table.BOARDS[board]
    return {"model": "lstm", "mode": "float32", "weight_bits": 32, "activation_bits": 32,
            "shape": "2x128 LSTM on 64 bins + Dense 3", "lstm_shape": SHAPE, "board": board, "core": v.core,
            "image": v.kbench_image.split("/")[-1], "kernel": "float", "status": 0, "hops": hops,
            "byte_exact": bool(ok), "checked": "first hop within 1e-4 of a plain scalar LSTM (not byte-exact: float)",
            "instructions_per_hop": round(total / hops), "instructions_first_hop": first, "macs": macs,
            "arena_bytes": None, "model_bytes": wbytes}


def inference_records(rows: list[dict]) -> list[dict]:
    return [lstm_hop_record(r, 32, 32, "lstm_float",
                            f"float32 LSTM kernel (kws_kbench lstm), {r['hops']} hops of one frame, state carried "
                            f"(random weights): {r['shape']}", f"python -m bench.lstm_float_fw --hops {r['hops']} --merge")
            for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lstm_float_fw", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/lstm_float_fw.json")
    ap.add_argument("--hops", type=int, default=4)
    ap.add_argument("--boards", nargs="+", choices=list(kb.BOARDS), default=list(kb.BOARDS))
    ap.add_argument("--merge", action="store_true", help="add inference records to bench/results.json")
    a = ap.parse_args(argv)
    if a.hops < 1:
        raise SystemExit("bench.lstm_float_fw: --hops must be at least 1")
    for b in a.boards:
        if kb.missing(b):
            raise SystemExit(f"bench.lstm_float_fw: {b} needs {kb.missing(b)}")
    kb.build()
    rows = []
    for b in a.boards:
        rc, text = kb.run_image(b, ["lstm", str(a.hops)], timeout=600)
        rows.append(parse(b, text))
        print(json.dumps(rows[-1]))
    rec = {"benchmark": "lstm_float_firmware", "unit": "instructions (QEMU -icount shift=0), not cycles", "rows": rows}
    atomic_write_text(a.out, json.dumps(rec, indent=1) + "\n")
    if a.merge:
        merge_into_results(inference_records(rows))
    return 0 if all(r["byte_exact"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
