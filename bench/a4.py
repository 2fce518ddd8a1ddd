"""4-bit activations on every emulated board: the build's SUB8_FC_A4 kernel (Cortex-M DSP on layout 7, Helium
and NEON on layout 6, ``layout_table.a4_layout``) against our w4a8 FC kernel (the family's preferred 4-bit
layout) and our w8a8 FC kernel (int8 weights) on the FFNN-250K layer shapes (FC 1536->128, 3x 128->128,
128->12; 4-bit weights; every layer fed 4-bit activations for w4a4, int8 for w4a8 / w8a8), same image, same
run (firmware/app/kws_a4bench.c, built by firmware/a4.mk), instructions counted under QEMU -icount shift=0
(SysTick on Cortex-M, PMU on AArch64): instructions, not cycles. Records: benchmark "inference", model
"ffnn250k", kernel "a4_<family>" (a4_dsp, a4_mve, a4_neon, a4_neon_dotprod) / "a4_reference",
activation_bits 4, with the w4a8 and w8a8 kernels' counts of the same run (``w4a8_instructions``,
``vs_w4a8``, ``w8a8_instructions``, ``vs_w8a8``).

    .venv/bin/python -m bench.a4 [--merge] [--boards B ...]   # --merge: add the records to bench/results.json
    .venv/bin/python -m bench.a4 --runtime W4A4.tflite W4A8.tflite [--merge]

``--runtime``: two converted models of the same network (a SUB8_FC_A4 model from ``tflm_port.fc_a4`` and a
w4a8 model) re-stored for the Cortex-M DSP kernels (``fc_a4.retarget_a4(.., 7)``, ``convert.retarget(..,
"mps2-an386")``) and run one inference each through the firmware runtime (kws_runner) under QEMU -icount on
the M4/M7 boards: kernel "runtime_a4" records (first layer on our w4a8 DSP kernel: its input is the 8-bit
model input).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
import tempfile
import numpy as np
from tflm_port import board_table, fc_a4
from tflm_port.convert import retarget
from tflm_port.reference import Reference
from tflm_port.tflite_io import read_bytes
import datetime as _dt
from bench import records as brec
from bench.host import machine

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = {b: v.core for b, v in board_table.BOARDS.items() if v.family == "dsp"}  # the w4a4 kernels are DSP
LINE = re.compile(r"A4BENCH kernel=(\S+) instructions=(\d+) macs=(\d+) weight_bytes=(\d+) ok=(\d)"
                  r"(?: spread=\d)?(?: first_layer=(\d+))?(?: layout=(\d+))?")
FIRST_LAYER_MACS = 1536 * 128


def build() -> None:
    r = subprocess.run(["make", "-C", str(FW), "-f", "Makefile", "-f", "a4.mk", "-j2", "a4bench"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make a4bench failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def image(board: str) -> Path:
    """kws_a4bench image of a board (firmware/a4.mk): per Cortex-M board, per ISA level on AArch64."""
    return FW / "build" / board_table.BOARDS[board].a4bench_image


def run_board(board: str, args: list[str]) -> str:
    sh = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["a4bench"] + args)
    r = subprocess.run([*board_table.BOARDS[board].qemu, "-nographic", "-icount", "shift=0,align=off,sleep=off",
                        "-semihosting-config", sh, "-kernel", str(image(board))], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{board}: kws_a4bench {' '.join(args)} failed (exit {r.returncode}):\n"
                           f"{(r.stdout + r.stderr)[-2000:]}")
    return r.stdout + r.stderr


LAYOUT_NAMES = {0: "layout 0 (row_lsb)", 2: "layout 2 (r4_words)", 3: "layout 3 (r4_nib32)",
                6: "layout 6 (rows_per_byte)", 7: "layout 7 (a4_pairs)", 8: "layout 8 (lanes16)"}


def run(quick: bool = False, boards: list[str] | None = None) -> list[dict]:
    """The kernel bench on ``boards`` (default: every board of board_table); ``quick`` changes nothing (bench.run)."""
    if any(shutil.which(t) is None for t in ("arm-none-eabi-gcc", "aarch64-linux-gnu-gcc", "qemu-system-arm",
                                              "qemu-system-aarch64")):
        print("bench.a4: cross compilers / QEMU missing, no records", file=sys.stderr)
        return []
    build()
    records = []
    for board in boards or list(board_table.BOARDS):
        fam = board_table.BOARDS[board].family
        rows = {m.group(1): m for m in LINE.finditer(run_board(board, ["bench"]))}
        if not {"a4_opt", "a8_opt", "s8_opt", "a4_reference"} <= set(rows) or rows["a4_opt"].group(5) != "1":
            raise RuntimeError(f"{board}: kws_a4bench bench: missing lines or a w4a4 kernel that differs from "
                               f"the reference: {sorted(rows)}")
        a8, a8_first = int(rows["a8_opt"].group(2)), int(rows["a8_opt"].group(6))
        s8, s8_first = int(rows["s8_opt"].group(2)), int(rows["s8_opt"].group(6))
        for src, kern in (("a4_reference", "a4_reference"), ("a4_opt", f"a4_{fam}")):
            m = rows[src]
            ins, macs = int(m.group(2)), int(m.group(3))
            lay = int(m.group(7)) if src == "a4_opt" else 0
            rec = {"benchmark": "inference", "board": board, "model": "ffnn250k", "weight_bits": 4,
                   "activation_bits": 4, "kernel": kern, "instructions": ins, "macs": macs,
                   "instructions_per_mac": round(ins / macs, 4), "flash_bytes": int(m.group(4)),
                   "instructions_note": "qemu -icount shift=0, instructions not cycles",
                   "workload": "kernel bench (kws_a4bench): FFNN-250K shapes, 12 outputs, 4-bit inputs to every layer",
                   "storage": LAYOUT_NAMES.get(lay, f"layout {lay}"),
                   "w4a8_kernel": f"{fam} ({LAYOUT_NAMES.get(int(rows['a8_opt'].group(7)), '?')}, int8 activations)",
                   "w4a8_instructions": a8, "vs_w4a8": round(ins / a8, 4),
                   "w8a8_kernel": f"{fam} (int8 weights, int8 activations)", "w8a8_instructions": s8,
                   "w8a8_weight_bytes": int(rows["s8_opt"].group(4)), "vs_w8a8": round(ins / s8, 4)}
            if src == "a4_opt":
                first = int(m.group(6))
                rec.update(layout=lay, first_layer_instructions=first,
                           first_layer_instructions_per_mac=round(first / FIRST_LAYER_MACS, 4),
                           w4a8_first_layer_instructions=a8_first, first_layer_vs_w4a8=round(first / a8_first, 4),
                           w8a8_first_layer_instructions=s8_first, first_layer_vs_w8a8=round(first / s8_first, 4))
            records.append(rec)
    return records


def run_runtime(a4_model: Path, a8_model: Path) -> list[dict]:



    r = subprocess.run(["make", "-C", str(FW), "-j2", *BOARDS], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make {' '.join(BOARDS)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    a4 = fc_a4.retarget_a4(read_bytes(a4_model), 7, str(a4_model))
    a8 = retarget(read_bytes(a8_model), "mps2-an386", str(a8_model))
    ref = Reference.from_bytes(a4)
    macs = sum(fc.in_features * fc.out_features for fc in (ref.fc_chain or []))
    x = np.random.default_rng(0).integers(-128, 128, (1,) + ref.input_shape).astype(np.int8)
    status = re.compile(r"KWS status=0 inferences=1 instr_first=(\d+) .*?arena=(\d+) .*?model=(\d+)")
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "a4.tflite").write_bytes(a4)
        (t / "a8.tflite").write_bytes(a8)
        x.tofile(t / "in.bin")
        for board in BOARDS:
            got = {}
            for tag in ("a4", "a8"):
                args = ["kws_runner", str(t / f"{tag}.tflite"), str(t / "in.bin"), str(t / f"{tag}.out")]
                p = subprocess.run([*board_table.BOARDS[board].qemu, "-nographic", "-icount", "shift=0,align=off,sleep=off",
                                    "-semihosting-config", "enable=on,target=native," + ",".join("arg=" + a for a in args),
                                    "-kernel", str(FW / "build" / board_table.BOARDS[board].runner_image)],
                                   capture_output=True, text=True, timeout=300)
                m = status.search(p.stdout + p.stderr)
                if p.returncode != 0 or not m:
                    raise RuntimeError(f"{board}: kws_runner {tag} failed:\n{(p.stdout + p.stderr)[-1500:]}")
                got[tag] = [int(v) for v in m.groups()]
            if not np.array_equal(np.fromfile(t / "a4.out", np.int8), ref.run(x).reshape(-1)):
                raise RuntimeError(f"{board}: the runtime's w4a4 output differs from the reference")
            (ia4, arena4, bytes4), (ia8, arena8, bytes8) = got["a4"], got["a8"]
            records.append({"benchmark": "inference", "board": board, "model": "ffnn250k", "weight_bits": 4,
                            "activation_bits": 4, "kernel": "runtime_a4", "instructions": ia4, "macs": macs,
                            "instructions_per_mac": round(ia4 / macs, 4), "model_bytes": bytes4, "arena_bytes": arena4,
                            "w4a8_instructions": ia8, "w4a8_model_bytes": bytes8, "w4a8_arena_bytes": arena8,
                            "vs_w4a8": round(ia4 / ia8, 4),
                            "instructions_note": "qemu -icount shift=0, one kws_invoke through the runtime: "
                                                 "instructions, not cycles",
                            "workload": "one inference of the converted models, first layer (8-bit model input) on "
                                        "the w4a8 DSP kernel, the 4-bit-input layers on the A4 DSP kernel",
                            "source_models": [str(a4_model), str(a8_model)], "ok": 1})
    return records


def merge_into_results(records: list[dict]) -> None:
    """Add/replace these records in bench/results.json with bench.run's merge (same key: benchmark, model,
    weight_bits, activation_bits, board, kernel, macs, ...). BENCHMARKS.md is not regenerated here."""


    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    mach = machine()
    for r in records:
        r.setdefault("command", "python -m bench.a4 --merge" if r["kernel"] != "runtime_a4" else
                     f"python -m bench.a4 --runtime {' '.join(r['source_models'])} --merge")
        r.setdefault("machine", mach)
        r.setdefault("date", now)
    brec.merge_results(records, markdown=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.a4", description=__doc__.split("\n\n")[0])
    ap.add_argument("--merge", action="store_true", help="add the records to bench/results.json")
    ap.add_argument("--boards", nargs="+", choices=list(board_table.BOARDS), help="kernel bench on these boards only")
    ap.add_argument("--runtime", nargs=2, type=Path, metavar=("W4A4_TFLITE", "W4A8_TFLITE"),
                    help="the two converted models through the firmware runtime instead of the kernel bench")
    a = ap.parse_args(argv)
    recs = run_runtime(*a.runtime) if a.runtime else run(boards=a.boards)
    for r in recs:
        print(json.dumps(r))
    if a.merge and recs:
        merge_into_results(recs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
