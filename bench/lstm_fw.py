"""Instructions per hop of the int8 streaming LSTM in the firmware, optimized kernel vs reference kernel, on
every emulated board (tflm_port/board_table.py).

    python -m bench.lstm_fw [--out bench/lstm_fw.json] [--hops 20] [--boards B ...]

Builds (make -C firmware) and converts two random-weight LSTMs through TFLite's int8 LSTM: the default
model's shape (2 x 128 units on 64 bins + Dense 3, 230,787 parameters) and the test shape (2 x 32 on
16 bins); runs the board's product image (its optimized kernels: DSP on M4/M7, Helium on the M55, NEON on
the A53, NEON dot product on the A76) and kws_runner_ref.elf (reference kernels) under QEMU with -icount
shift=0 (SysTick on Cortex-M, the PMU on AArch64 bare metal: instructions, NOT cycles), one frame per
invocation with the state carried, checks both outputs are the same bytes as the numpy reference, and
writes the mean instructions per hop (whole graph: both LSTM layers and the Dense). Atomic JSON.
``--merge`` also adds them to bench/results.json as ``benchmark: "inference"`` records (model "lstm", the
shape in ``lstm_shape``, kernel ``lstm_<family>`` / ``lstm_reference``, weight and activation bits 8,
``instructions`` = per hop) through bench.records' merge, and regenerates BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from tflm_port import board_table
from training.export_lstm import convert_lstm
from tflm_port.firmware_runner import run_runner
from tflm_port.reference import Reference
from basics.atomic import atomic_write_text
from bench.merge import merge_into_results
from bench.records import lstm_hop_record
from bench.testmodels import random_lstm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = {b: v.core for b, v in board_table.BOARDS.items()}  # every emulated board
SHAPES = [(64, 128, 2), (16, 32, 2)]


def model_and_data(bins: int, units: int, layers: int, hops: int, cache: Path):
    name = f"lstm_{layers}x{units}_{bins}"
    mp, xp, yp = cache / f"{name}.tflite", cache / f"{name}.in.bin", cache / f"{name}.expected.bin"
    if not (mp.is_file() and xp.is_file() and yp.is_file()) or len(xp.read_bytes()) != hops * bins:
        m = random_lstm(units, bins, 10, layers=layers, seed=1)
        rng = np.random.default_rng(3)
        data = convert_lstm(m, rng.normal(size=(16, 20, bins)).astype(np.float32))
        ref = Reference.from_bytes(data)
        x = ref.quantize_input(np.random.default_rng(4).normal(size=(hops, 1, bins)).astype(np.float32))
        ref.reset_state()
        y = np.concatenate([ref.run(x[t:t + 1]) for t in range(hops)])
        cache.mkdir(parents=True, exist_ok=True)
        mp.write_bytes(data)
        xp.write_bytes(x.tobytes())
        yp.write_bytes(y.tobytes())
    return name, mp, xp, yp


def run(board: str, elf: str, mp: Path, xp: Path, out: Path) -> dict:
    """elf: the board's image under firmware/build/ (board_table runner_image / reference_image) under QEMU
    -icount shift=0 (tflm_port.firmware_runner.run_runner): its status line as a dict."""
    d, text = run_runner(board, elf, [mp, xp, out])
    if d is None:
        raise SystemExit(f"{board} {elf}: no status line:\n{text[-1000:]}")
    return d


def inference_records(rows: list[dict]) -> list[dict]:
    """The rows as bench/results.json ``inference`` records (one per board, shape and image)."""
    return [lstm_hop_record(r, 8, 8, "lstm_" + r["lstm_kernel"],
                            f"int8 UNIDIRECTIONAL_SEQUENCE_LSTM stream, {r['hops']} hops of one frame, "
                            f"state carried (random weights): {r['shape']}",
                            f"python -m bench.lstm_fw --hops {r['hops']} --merge") for r in rows]


def _lstm_kernel(family: str, isa: str) -> str:
    """The LSTM kernel the runtime picks (runtime/kws_lstm.c): the family's own where the image's kernel ISA
    is that family, the reference kernel otherwise."""
    return family if isa == family else "reference"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lstm_fw", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/lstm_fw.json")
    ap.add_argument("--hops", type=int, default=20)
    ap.add_argument("--boards", nargs="+", choices=list(BOARDS), default=list(BOARDS))
    ap.add_argument("--merge", action="store_true", help="add inference records to bench/results.json")
    ap.add_argument("--from-json", metavar="FILE",
                    help="no runs: the rows of an earlier --out file (with --merge: merge them)")
    a = ap.parse_args(argv)
    if a.from_json:
        try:
            rows = json.loads(Path(a.from_json).read_text())["rows"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"{a.from_json}: not a bench.lstm_fw record file ({e})")
        for r in rows:   # files written before lstm_shape: from the shape text
            m = re.match(r"(\d+)x(\d+) LSTM on (\d+) bins", r.get("shape", ""))
            if "lstm_shape" not in r and m:
                r["lstm_shape"] = {"layers": int(m[1]), "units": int(m[2]), "input_bins": int(m[3]), "dense_outputs": 3}
        if a.merge:
            merge_into_results(inference_records(rows))
        return 0
    boards = {b: BOARDS[b] for b in a.boards}
    for b in boards:
        v = board_table.BOARDS[b]
        if shutil.which(v.qemu[0]) is None or shutil.which(v.compiler) is None:
            raise SystemExit(f"bench.lstm_fw: {b} needs {v.qemu[0]} and {v.compiler}")
    targets = sorted({board_table.BOARDS[b].make_target for b in boards})
    r = subprocess.run(["make", "-C", str(FW), "-j2", *targets], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stdout[-2000:] + r.stderr[-2000:])

    rows = []
    with tempfile.TemporaryDirectory() as td:
        for bins, units, layers in SHAPES:
            name, mp, xp, yp = model_and_data(bins, units, layers, a.hops, FW / "build" / "testdata" / "lstm_bench")
            for board, core in boards.items():
                v = board_table.BOARDS[board]
                for elf in (v.runner_image, v.reference_image):
                    out = Path(td) / "o.bin"
                    d = run(board, elf, mp, xp, out)
                    exact = out.read_bytes() == yp.read_bytes()
                    rows.append({"model": "lstm", "shape": f"{layers}x{units} LSTM on {bins} bins + Dense 3",
                                 "lstm_shape": {"layers": layers, "units": units, "input_bins": bins, "dense_outputs": 3},
                                 "board": board, "core": core, "image": Path(elf).name, "kernel": d["kernel"],
                                 "lstm_kernel": _lstm_kernel(v.family, d["kernel"]),
                                 "status": d["status"], "hops": d["inferences"], "byte_exact": exact,
                                 "instructions_per_hop": round(d["instr_total"] / max(d["inferences"], 1)),
                                 "instructions_first_hop": d["instr_first"], "arena_bytes": d["arena"],
                                 "model_bytes": mp.stat().st_size})
                    print(json.dumps(rows[-1]))
    rec = {"benchmark": "lstm_firmware", "unit": "instructions (QEMU -icount shift=0), not cycles", "rows": rows}
    atomic_write_text(a.out, json.dumps(rec, indent=1) + "\n")
    if a.merge:
        merge_into_results(inference_records(rows))
    return 0 if all(r["byte_exact"] and r["status"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
