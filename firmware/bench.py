"""Firmware figures per board and model: flash, RAM and instructions per inference.

    .venv/bin/python firmware/bench.py [--out firmware/build/bench.json] [--boards ...] [--models ...]

* instructions: mean over 8 inputs; qemu-system-arm -icount shift=0,align=off,sleep=off makes one instruction one ns
  of virtual time; the runner reads SysTick around kws_invoke() and converts ticks to instructions
  (ticks * 1e9 / cpu_hz). These are instructions retired, not cycles. Deterministic: the first
  and second inference must agree.
* flash_bytes: runtime + kernels code and constants (.text/.rodata of libkws.a members kept in the
  linked image, from the linker map) + model bytes; image_bytes: the whole runner image
  (startup, board layer, libc/libm parts), without the model.
* ram_bytes: arena bytes used by the model + stack high-water mark (stack painting).
* AArch64: measured on the bare-metal build (boards/aarch64-virt) under qemu-system-aarch64 -M virt
  -cpu cortex-a53/-a76 -icount shift=0 with the PMU event INST_RETIRED (qemu-aarch64 user mode has
  no -icount). The instruction count is the same for both CPUs (same binary, same ISA).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FW = Path(__file__).resolve().parent
ROOT = FW.parent
BUILD = FW / "build"
sys.path.insert(0, str(FW / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

MODELS = {  # test-data case -> (model, weight_bits)
    "ffnn_int8": ("ffnn250k", 8), "ffnn_int4": ("ffnn250k", 4), "ffnn_sub8_5": ("ffnn250k", 5),
    "ffnn_sub8_2": ("ffnn250k", 2), "ffnn_sub8_1": ("ffnn250k", 1), "dscnn": ("dscnn", 8),
}
BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547", "aarch64-cortex-a53", "aarch64-cortex-a76"]


def model_macs(tflite: bytes) -> int:
    from tensorflow.lite.python import schema_py_generated as schema
    from flatbuffers import flexbuffers

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    sg = m.subgraphs[0]
    B = schema.BuiltinOperator
    total = 0
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        c = max(code.builtinCode, code.deprecatedBuiltinCode)
        t = lambda i: [int(d) for d in sg.tensors[i].shape]
        if c == B.FULLY_CONNECTED:
            o, i = t(op.inputs[1])
            n = 1
            for d in t(op.inputs[0]):
                n *= d
            total += (n // i) * o * i
        elif c == B.CUSTOM:
            opts = flexbuffers.Loads(bytes(op.customOptions))
            n = 1
            for d in t(op.inputs[0]):
                n *= d
            total += (n // int(opts["in_features"])) * int(opts["out_features"]) * int(opts["in_features"])
        elif c == B.CONV_2D:
            _, oh, ow, oc = t(op.outputs[0])
            _, kh, kw, ic = t(op.inputs[1])
            total += oh * ow * oc * kh * kw * ic
        elif c == B.DEPTHWISE_CONV_2D:
            _, oh, ow, oc = t(op.outputs[0])
            _, kh, kw, _ = t(op.inputs[1])
            total += oh * ow * oc * kh * kw
    return int(total)


def runtime_flash(board: str) -> int | None:
    """.text/.rodata bytes of libkws.a members in the linked image (linker map)."""
    mp = BUILD / board / "kws_runner.map"
    if not mp.exists():
        return None
    text = mp.read_text(errors="replace")
    text = text[text.find("Linker script and memory map"):]
    total = 0
    for sec, addr, size, src in re.findall(r"^ (\.(?:text|rodata)\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", text, re.M):
        if "libkws.a(" in src:
            total += int(size, 16)
    return total


def image_bytes(board: str) -> int | None:
    elf = BUILD / board / "kws_runner.elf"
    if not elf.exists():
        return None
    size = "aarch64-linux-gnu-size" if board.startswith("aarch64") else "arm-none-eabi-size"
    out = subprocess.run([size, str(elf)], capture_output=True, text=True).stdout.splitlines()[1].split()
    return int(out[0]) + int(out[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(BUILD / "bench.json"))
    ap.add_argument("--boards", nargs="*", default=BOARDS)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    a = ap.parse_args(argv)

    import fwtestdata
    from test_firmware import run_board

    subprocess.run(["make", "-C", str(FW), "-j2", "all"], check=True, capture_output=True)
    cases = fwtestdata.build(BUILD / "testdata", names=[c for c in a.models if c in fwtestdata.CASES])
    records = []
    with tempfile.TemporaryDirectory() as td:
        for board in a.boards:
            for case in a.models:
                model, bits = MODELS[case]
                tfl = BUILD / "testdata" / f"{case}.tflite"
                # mean over 8 vectors from the calibrated-distribution part of the test inputs
                # (counts depend a little on the data: clamps, skipped padding taps)
                vec = cases[case]["in_bytes"]
                inp = Path(td) / "in.bin"
                inp.write_bytes((BUILD / "testdata" / f"{case}.in.bin").read_bytes()[200 * vec:208 * vec])
                # AArch64 figures come from the bare-metal virt build (PMU INST_RETIRED under -icount)
                run_on = board.replace("aarch64-", "aarch64-virt-") if board.startswith("aarch64-cortex") else board
                rc, st, text = run_board(run_on, tfl, inp, Path(td) / "o.bin", max_vectors=8, icount=True)
                if rc != 0 or st is None:
                    print(f"{board} {case}: failed: {text[-500:]}", file=sys.stderr)
                    continue
                cm = not board.startswith("aarch64")
                instr = round(st["instr_total"] / max(st["inferences"], 1))
                rt = runtime_flash(board if cm else "aarch64-virt")
                rec = {"benchmark": "inference", "board": board, "model": model, "weight_bits": bits,
                       "kernel": "reference", "instructions": instr, "macs": model_macs(tfl.read_bytes()),
                       "flash_bytes": (rt + st["model"]) if rt is not None else None,
                       "ram_bytes": st["arena"] + st["stack"],
                       "runtime_flash_bytes": rt, "model_bytes": st["model"], "image_bytes": image_bytes(board if cm else "aarch64-virt"),
                       "arena_bytes": st["arena"], "stack_bytes": st["stack"], "case": case,
                       "instructions_note": "qemu-system-arm -icount shift=0, SysTick ticks x 1e9/Hz: instructions, not cycles"
                       if cm else "qemu-system-aarch64 -M virt -icount shift=0, PMU INST_RETIRED: instructions, not cycles"}
                records.append(rec)
                print(json.dumps(rec))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
