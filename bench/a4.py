"""4-bit activations on Cortex-M: the SUB8_FC_A4 DSP kernel (layout 7) against our w4a8 DSP kernel
(layout 2) on the FFNN-250K layer shapes (FC 1536->128, 3x 128->128, 128->12; 4-bit weights; every layer
fed 4-bit activations for w4a4, int8 for w4a8), same image, same run (firmware/app/kws_a4bench.c,
built by firmware/a4.mk), instructions counted under QEMU -icount shift=0 (SysTick): instructions, not
cycles. Records: benchmark "inference", model "ffnn250k", kernel "a4_dsp" / "a4_reference",
activation_bits 4, with the w4a8 kernel's count of the same run (``w4a8_instructions``, ``vs_w4a8``).

    .venv/bin/python -m bench.a4 [--merge]     # --merge: add the records to bench/results.json
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = {"mps2-an386": "Cortex-M4F", "mps2-an500": "Cortex-M7"}
LINE = re.compile(r"A4BENCH kernel=(\S+) instructions=(\d+) macs=(\d+) weight_bytes=(\d+) ok=(\d)"
                  r"(?: spread=\d)?(?: first_layer=(\d+))?")
FIRST_LAYER_MACS = 1536 * 128


def build() -> None:
    r = subprocess.run(["make", "-C", str(FW), "-f", "Makefile", "-f", "a4.mk", "-j2", "a4bench"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make a4bench failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def run_board(board: str, args: list[str]) -> str:
    elf = FW / "build" / board / "kws_a4bench.elf"
    sh = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["a4bench"] + args)
    r = subprocess.run(["qemu-system-arm", "-M", board, "-nographic", "-icount", "shift=0,align=off,sleep=off",
                        "-semihosting-config", sh, "-kernel", str(elf)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{board}: kws_a4bench {' '.join(args)} failed (exit {r.returncode}):\n"
                           f"{(r.stdout + r.stderr)[-2000:]}")
    return r.stdout + r.stderr


def run(quick: bool = False) -> list[dict]:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        print("bench.a4: arm-none-eabi-gcc / qemu-system-arm missing, no records", file=sys.stderr)
        return []
    build()
    records = []
    for board in BOARDS:
        rows = {m.group(1): m for m in LINE.finditer(run_board(board, ["bench"]))}
        if not {"a4_dsp", "a8_dsp", "a4_reference"} <= set(rows) or rows["a4_dsp"].group(5) != "1":
            raise RuntimeError(f"{board}: kws_a4bench bench: missing lines or a w4a4 kernel that differs from "
                               f"the reference: {sorted(rows)}")
        a8 = int(rows["a8_dsp"].group(2))
        a8_first = int(rows["a8_dsp"].group(6))
        for kern, storage in (("a4_reference", "layout 0 (row_lsb)"), ("a4_dsp", "layout 7 (a4_pairs)")):
            m = rows[kern]
            ins, macs = int(m.group(2)), int(m.group(3))
            rec = {"benchmark": "inference", "board": board, "model": "ffnn250k", "weight_bits": 4,
                   "activation_bits": 4, "kernel": kern, "instructions": ins, "macs": macs,
                   "instructions_per_mac": round(ins / macs, 4), "flash_bytes": int(m.group(4)),
                   "instructions_note": "qemu -icount shift=0, instructions not cycles",
                   "workload": "kernel bench (kws_a4bench): FFNN-250K shapes, 12 outputs, 4-bit inputs to every layer",
                   "storage": storage, "w4a8_kernel": "dsp (layout 2, int8 activations)",
                   "w4a8_instructions": a8, "vs_w4a8": round(ins / a8, 4)}
            if kern == "a4_dsp":
                first = int(m.group(6))
                rec.update(layout=7, first_layer_instructions=first,
                           first_layer_instructions_per_mac=round(first / FIRST_LAYER_MACS, 4),
                           w4a8_first_layer_instructions=a8_first, first_layer_vs_w4a8=round(first / a8_first, 4))
            records.append(rec)
    return records


def merge_into_results(records: list[dict]) -> None:
    """Add/replace these records in bench/results.json with bench.run's merge (same key: benchmark, model,
    weight_bits, activation_bits, board, kernel, macs, ...). BENCHMARKS.md is not regenerated here."""
    import datetime as _dt

    from bench import run as brun
    from bench.host import machine
    from training.errors import atomic_write_text

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    mach = machine()
    for r in records:
        r.setdefault("command", "python -m bench.a4 --merge")
        r.setdefault("machine", mach)
        r.setdefault("date", now)
    merged = brun.merge(brun.load_results(brun.RESULTS), records)
    atomic_write_text(brun.RESULTS, json.dumps(merged, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.a4", description=__doc__.split("\n\n")[0])
    ap.add_argument("--merge", action="store_true", help="add the records to bench/results.json")
    a = ap.parse_args(argv)
    recs = run()
    for r in recs:
        print(json.dumps(r))
    if a.merge and recs:
        merge_into_results(recs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
