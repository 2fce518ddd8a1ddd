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
* kernel "reference": the reference-only images (kws_runner_ref.elf) on the test-data models;
  kernel "dsp" / "mve" / "neon" / "neon_dotprod": the product images (kws_runner.elf; a76:
  kws_runner_dotprod.elf) on FFNN-250K built through the real QAT path (bench.testmodels.qat_ffnn)
  and converted with ``tflm_port.convert --target <board>``: the whole model through the runtime,
  with ``reference_instructions`` = the reference-only image on the same weights (target "generic").
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
sys.path.insert(0, str(FW / "tools"))  # fwtestdata, this folder's own tool (the tests/ folder is not needed)

from basics.atomic import atomic_write_text  # noqa: E402
from tflm_port import board_table  # noqa: E402

MODELS = {  # test-data case -> (model, weight_bits)
    "ffnn_int8": ("ffnn250k", 8), "ffnn_int4": ("ffnn250k", 4), "ffnn_sub8_5": ("ffnn250k", 5),
    "ffnn_sub8_2": ("ffnn250k", 2), "ffnn_sub8_1": ("ffnn250k", 1), "dscnn": ("dscnn", 8),
}
BOARDS = list(board_table.BOARDS)


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


def runtime_flash(board: str, image: str = "kws_runner") -> int | None:
    """.text/.rodata bytes of libkws*.a members in the linked image (linker map)."""
    mp = BUILD / board / f"{image}.map"
    if not mp.exists():
        return None
    text = mp.read_text(errors="replace")
    text = text[text.find("Linker script and memory map"):]
    total = 0
    for sec, addr, size, src in re.findall(r"^ (\.(?:text|rodata)\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$", text, re.M):
        if re.search(r"libkws\w*\.a\(", src):
            total += int(size, 16)
    return total


def image_bytes(board: str) -> int | None:
    elf = BUILD / board / "kws_runner.elf"
    if not elf.exists():
        return None
    size = "aarch64-linux-gnu-size" if board.startswith("aarch64") else "arm-none-eabi-size"
    out = subprocess.run([size, str(elf)], capture_output=True, text=True).stdout.splitlines()[1].split()
    return int(out[0]) + int(out[1])


ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]
# board -> (qemu command, image dir, optimized image): tflm_port/board_table.py
OPT_BOARDS = {b: (list(v.qemu), v.make_target, Path(v.runner_image).name) for b, v in board_table.BOARDS.items()}
OPT_BITS = (8, 5, 4, 3, 2, 1)
STATUS_RE = re.compile(r"KWS status=(\d+) inferences=(\d+) instr_first=(\d+) instr_total=(\d+) arena=(\d+) "
                       r"stack=(\d+) model=(\d+) op=-?\d+ tensor=-?\d+ kernel=(\w+) opt_ops=(\d+)")


def run_image(board: str, image: str, model: Path, inp: Path, out: Path, n: int) -> dict | None:
    qemu, d, _ = OPT_BOARDS[board]
    semi = "enable=on,target=native," + ",".join("arg=" + str(a) for a in ["kws_runner", model, inp, out, n])
    r = subprocess.run([qemu[0]] + ICOUNT + qemu[1:] + ["-nographic", "-semihosting-config", semi, "-kernel",
                        str(BUILD / d / image)], capture_output=True, text=True, timeout=600)
    m = STATUS_RE.search(r.stdout + r.stderr)
    if r.returncode != 0 or not m:
        print(f"{board} {image} {model.name}: failed: {(r.stdout + r.stderr)[-500:]}", file=sys.stderr)
        return None
    k = ["status", "inferences", "instr_first", "instr_total", "arena", "stack", "model", "kernel", "opt_ops"]
    st = dict(zip(k, m.groups()))
    return {kk: (v if kk == "kernel" else int(v)) for kk, v in st.items()}


def optimized_records(boards: list[str], td: Path, bits_list=OPT_BITS) -> list[dict]:
    """Whole FFNN-250K inferences through the runtime with each board's optimized kernels."""
    import fwtestdata
    import numpy as np
    from tflm_port.convert import convert
    from bench.testmodels import cached_qat_ffnn
    from training import qat

    records = []
    for bits in bits_list:
        q, tfl, _ = cached_qat_ffnn(bits)
        lb = qat.layer_bits(q)
        generic = convert(tfl, lb, target="generic")
        x = fwtestdata.make_inputs(generic, 208)[200:208]   # 8 inputs of the calibrated distribution
        inp = td / f"opt_{bits}.in.bin"
        inp.write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
        gpath = td / f"generic_{bits}.tflite"
        gpath.write_bytes(generic)
        for board in boards:
            if board not in OPT_BOARDS:
                continue
            model = convert(tfl, lb, target=board)
            mpath = td / f"{board}_{bits}.tflite"
            mpath.write_bytes(model)
            st = run_image(board, OPT_BOARDS[board][2], mpath, inp, td / "o.bin", 8)
            ref = run_image(board, "kws_runner_ref.elf", gpath, inp, td / "o.bin", 8)
            if st is None:
                continue
            instr = round(st["instr_total"] / max(st["inferences"], 1))
            rinstr = round(ref["instr_total"] / max(ref["inferences"], 1)) if ref else None
            cm = not board.startswith("aarch64")
            d = OPT_BOARDS[board][1]
            rt = runtime_flash(d, OPT_BOARDS[board][2][:-4])
            from tflm_port.tflite_io import get_metadata, load_model

            md = get_metadata(load_model(model)) or {}
            rec = {"benchmark": "inference", "board": board, "model": "ffnn250k", "weight_bits": bits,
                   "kernel": st["kernel"], "instructions": instr, "macs": model_macs(model),
                   "reference_instructions": rinstr,
                   "speedup_vs_reference": round(rinstr / instr, 2) if rinstr else None,
                   "optimized_ops": st["opt_ops"], "storage": md.get("layer_storage"),
                   "flash_bytes": (rt + st["model"]) if rt is not None else None,
                   "ram_bytes": st["arena"] + st["stack"], "runtime_flash_bytes": rt, "model_bytes": st["model"],
                   "arena_bytes": st["arena"], "stack_bytes": st["stack"],
                   "case": f"qat_ffnn({bits}) -> convert --target {board}",
                   "instructions_note": "qemu-system-arm -icount shift=0, SysTick ticks x 1e9/Hz: instructions, not cycles"
                   if cm else "qemu-system-aarch64 -M virt -icount shift=0, PMU INST_RETIRED: instructions, not cycles"}
            records.append(rec)
            print(json.dumps(rec))
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(BUILD / "bench.json"))
    ap.add_argument("--boards", nargs="*", default=BOARDS)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--no-optimized", action="store_true", help="reference-kernel records only")
    ap.add_argument("--bits", nargs="*", type=int, default=list(OPT_BITS),
                    help="weight bit widths of the optimized-kernel FFNN-250K records (default: all)")
    a = ap.parse_args(argv)

    import fwtestdata

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
                # reference kernels: the reference-only image (the product image runs INT8 on the optimized kernel)
                st = run_image(board, "kws_runner_ref.elf", tfl, inp, Path(td) / "o.bin", 8)
                if st is None:
                    continue
                cm = not board.startswith("aarch64")
                instr = round(st["instr_total"] / max(st["inferences"], 1))
                rt = runtime_flash(OPT_BOARDS[board][1], "kws_runner_ref")
                rec = {"benchmark": "inference", "board": board, "model": model, "weight_bits": bits,
                       "kernel": "reference", "instructions": instr, "macs": model_macs(tfl.read_bytes()),
                       "flash_bytes": (rt + st["model"]) if rt is not None else None,
                       "ram_bytes": st["arena"] + st["stack"],
                       "runtime_flash_bytes": rt, "model_bytes": st["model"], "image_bytes": image_bytes(OPT_BOARDS[board][1]),
                       "arena_bytes": st["arena"], "stack_bytes": st["stack"], "case": case,
                       "instructions_note": "qemu-system-arm -icount shift=0, SysTick ticks x 1e9/Hz: instructions, not cycles"
                       if cm else "qemu-system-aarch64 -M virt -icount shift=0, PMU INST_RETIRED: instructions, not cycles"}
                records.append(rec)
                print(json.dumps(rec))
        if not a.no_optimized:
            records += optimized_records(a.boards, Path(td), a.bits)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(a.out), json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
