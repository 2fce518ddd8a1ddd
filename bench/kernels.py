"""Kernel figures: the whole FFNN-250K (FC 1536->128, 3x 128->128, 128->12, ReLU between, batch 1,
247,296 MACs, random weights with a fixed seed) with the reference, the optimized and our float32
kernel, instructions counted by firmware/app/kws_kbench.c under QEMU -icount shift=0
(Cortex-M: SysTick; AArch64 bare metal on -M virt: PMU INST_RETIRED). Instructions, not cycles.

    .venv/bin/python -m bench.kernels [--quick] [--out firmware/build/kernels.json]

``run(quick)`` returns the records; bench/run.py can add them with ``records += kernels.run(quick)``.
flash_bytes: packed weight bytes of the five layers; ram_bytes: the largest layer's input + output
activations plus the kernel's scratch (int8: 1 byte per activation; float: 4).
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
BUILD = FW / "build"
MAKE = ["make", "-C", str(FW), "-f", "Makefile", "-f", "kernels/optimized.mk", "-j2"]
# board -> (qemu binary, machine args, image)
BOARDS = {
    "mps2-an386": ("qemu-system-arm", ["-M", "mps2-an386"], BUILD / "mps2-an386" / "kws_kbench.elf"),
    "mps2-an500": ("qemu-system-arm", ["-M", "mps2-an500"], BUILD / "mps2-an500" / "kws_kbench.elf"),
    "mps3-an547": ("qemu-system-arm", ["-M", "mps3-an547"], BUILD / "mps3-an547" / "kws_kbench.elf"),
    "aarch64-cortex-a53": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a53"], BUILD / "a64" / "kws_kbench_v80.elf"),
    "aarch64-cortex-a76": ("qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a76"], BUILD / "a64" / "kws_kbench_dotprod.elf"),
}
TOOLS = {"qemu-system-arm": "arm-none-eabi-gcc", "qemu-system-aarch64": "aarch64-linux-gnu-gcc"}
LINE = re.compile(r"KBENCH isa=(\S+) bits=(\d+) instructions=(\d+) macs=(\d+) weight_bytes=(\d+)")
MACS = 247296
# CMSIS-NN / ggml anchors (/work/shared/ANCHORS.md), instructions per FFNN-250K inference
ANCHORS = {("mps2-an386", 8): 490630, ("mps2-an386", 4): 1232070, ("mps2-an500", 8): 490755,
           ("mps2-an500", 4): 1232018, ("mps3-an547", 8): 123565, ("mps3-an547", 4): 104588}


def missing(board: str) -> str | None:
    q = BOARDS[board][0]
    for t in (q, TOOLS[q]):
        if shutil.which(t) is None:
            return t
    return None


def build() -> None:
    r = subprocess.run(MAKE + ["kbench"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make kbench failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def run_image(board: str, args: list[str], timeout: int = 120) -> tuple[int, str]:
    qemu, mach, elf = BOARDS[board]
    sh = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["kbench"] + args)
    cmd = [qemu, *mach, "-nographic", "-icount", "shift=0,align=off,sleep=off", "-semihosting-config", sh,
           "-kernel", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def run(quick: bool = False) -> list[dict]:
    build()
    records = []
    for board in BOARDS:
        if missing(board):
            print(f"{board}: skipped ({missing(board)} missing)", file=sys.stderr)
            continue
        rc, text = run_image(board, ["bench"] + (["8", "4"] if quick else []))
        if rc != 0:
            raise RuntimeError(f"{board}: kbench failed (rc {rc}):\n{text[-2000:]}")
        for isa, bits, instr, macs, wbytes in LINE.findall(text):
            bits, instr, macs, wbytes = int(bits), int(instr), int(macs), int(wbytes)
            kernel = isa if isa in ("reference", "float") else isa
            act = 4 if isa == "float" else 1
            scratch = 0 if isa in ("reference", "float") else 2 * 1536 + 16
            rec = {"benchmark": "inference", "board": board, "model": "ffnn250k",
                   "weight_bits": 32 if isa == "float" else bits, "kernel": kernel, "instructions": instr,
                   "macs": macs, "instructions_per_mac": round(instr / macs, 4),
                   "flash_bytes": wbytes, "ram_bytes": act * (1536 + 128) + scratch,
                   "instructions_note": "qemu -icount shift=0, instructions not cycles"}
            if (board, bits) in ANCHORS and isa not in ("reference", "float"):
                rec["cmsis_nn_instructions"] = ANCHORS[(board, bits)]
            records.append(rec)
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(BUILD / "kernels.json"))
    a = ap.parse_args(argv)
    recs = run(a.quick)
    for r in recs:
        print(json.dumps(r))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(recs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
