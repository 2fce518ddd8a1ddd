"""DS-CNN convolutions on the Cortex-M DSP (issue 14): per-layer instructions of the optimized kernels
(firmware/kernels/dsp/kws_conv_dsp.c) against the reference kernels, and the whole DS-CNN through the
runtime, counted under QEMU -icount shift=0 (SysTick). Instructions, not cycles.

    .venv/bin/python -m bench.conv [--boards mps2-an386 mps2-an500] [--out FILE] [--merge] [--write-docs]

* per layer (benchmark "conv_layer"): firmware/app/kws_cbench.c's "bench" on the DS-CNN's layer shapes
  (conv_0 10x4 stride 2 on the 24 x 64 input, a 3x3 depthwise and a 1x1 pointwise on 12 x 32 x 64),
  random weights and inputs, both kernels in the same run, outputs compared byte for byte;
* whole model (benchmark "inference", model "dscnn", kernel "dsp"): the test-data DS-CNN
  (firmware/tools/fwtestdata.py, case "dscnn") through kws_runner.elf (the product image: optimized
  convolutions) and kws_runner_ref.elf (reference kernels), first 4 vectors, outputs equal to the
  expected (tflite-micro) bytes.
``--merge`` adds the records to bench/results.json (bench.records' merge) and regenerates BENCHMARKS.md;
``--write-docs`` writes the table of docs/kernels.md ("conv-tables" block) from the records.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from basics.atomic import atomic_write_text
from bench import records as brec
from tflm_port import board_table
from tflm_port.firmware_runner import parse_status

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
BOARDS = [b for b in board_table.cortex_m() if board_table.BOARDS[b].family == "dsp"]   # kws_cbench.elf boards (kernels/optimized.mk)
MAKE = ["make", "-C", str(FW), "-f", "Makefile", "-f", "kernels/optimized.mk", "-j2"]
LINE = re.compile(r"CBENCH layer=(\w+) macs=(\d+) reference=(\d+) optimized=(\d+) scratch=(\d+) spread=(\d) ok=(\d)")
NOTE = "qemu -icount shift=0, instructions not cycles"
LAYERS = {"conv_0": "CONV_2D 10x4 stride 2 SAME, 24x64x1 -> 12x32x64 (im2col + int8 FC kernel)",
          "dw": "DEPTHWISE_CONV_2D 3x3 SAME, 12x32x64 (SMLAD on tap pairs)",
          "pw": "CONV_2D 1x1, 12x32x64 -> 64 (int8 FC kernel on 384 pixels)"}
N_VECTORS = 4
START, END = "<!-- conv-tables: python -m bench.conv --write-docs -->", "<!-- /conv-tables -->"
DOC = ROOT / "docs" / "kernels.md"


def _qemu(board: str, semi: list[str], elf: Path, timeout: int = 600) -> str:
    b = board_table.BOARDS[board]
    cmd = [*b.qemu, "-nographic", "-icount", "shift=0,align=off,sleep=off", "-semihosting-config",
           "enable=on,target=native," + ",".join("arg=" + str(a) for a in semi), "-kernel", str(elf)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{board} {elf.name}: exit {r.returncode}: {(r.stdout + r.stderr)[-1500:]}")
    return r.stdout + r.stderr


def layer_records(boards: list[str]) -> list[dict]:
    r = subprocess.run(MAKE + ["cbench"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make cbench failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    recs = []
    for board in boards:
        text = _qemu(board, ["cbench", "bench"], BUILD / board / "kws_cbench.elf")
        for name, macs, ref, opt, scratch, spread, ok in LINE.findall(text):
            macs, ref, opt = int(macs), int(ref), int(opt)
            if ok != "1" or spread != "1":
                raise RuntimeError(f"{board} {name}: optimized output differs from the reference (or no spread)")
            recs.append({"benchmark": "conv_layer", "board": board, "model": "dscnn", "weight_bits": 8, "kernel": "dsp",
                         "layer": name, "shape": LAYERS[name], "macs": macs, "instructions": opt,
                         "instructions_per_mac": round(opt / macs, 3), "reference_instructions": ref,
                         "reference_instructions_per_mac": round(ref / macs, 3), "scratch_bytes": int(scratch),
                         "instructions_note": NOTE, "workload": "kernel bench (kws_cbench), random weights, fixed seed"})
    return recs


def model_records(boards: list[str]) -> list[dict]:
    sys.path.insert(0, str(FW / "tools"))
    import fwtestdata  # lazy: firmware/tools is put on the path here (TensorFlow behind it)

    data = BUILD / "testdata"
    cases = fwtestdata.build(data, names=["dscnn"])
    info = cases["dscnn"]
    model, inp = data / "dscnn.tflite", data / "dscnn.in.bin"
    want = (data / "dscnn.expected.bin").read_bytes()[: N_VECTORS * info["out_bytes"]]
    macs = _model_macs(model.read_bytes())
    recs = []
    for board in boards:
        target = board_table.BOARDS[board].make_target
        r = subprocess.run(["make", "-C", str(FW), "-j2", target], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"make {target} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        got = {}
        for image in ("kws_runner.elf", "kws_runner_ref.elf"):
            with tempfile.TemporaryDirectory() as td:
                out = Path(td) / "out.bin"
                text = _qemu(board, ["kws_runner", model, inp, out, N_VECTORS], BUILD / target / image)
                m = parse_status(text)
                if not m or m["status"] != 0 or out.read_bytes() != want:
                    raise RuntimeError(f"{board} {image}: not the expected DS-CNN outputs: {text[-800:]}")
                got[image] = m
        m, ref = got["kws_runner.elf"], got["kws_runner_ref.elf"]
        instr = m["instr_first"]
        recs.append({"benchmark": "inference", "board": board, "model": "dscnn", "weight_bits": 8, "kernel": "dsp",
                     "instructions": instr, "macs": macs, "instructions_per_mac": round(instr / macs, 3),
                     "reference_instructions": ref["instr_first"],
                     "speedup_vs_reference": round(ref["instr_first"] / instr, 2), "optimized_ops": m["opt_ops"],
                     "ram_bytes": m["arena"] + m["stack"], "arena_bytes": m["arena"],
                     "stack_bytes": m["stack"], "model_bytes": m["model"],
                     "instructions_note": NOTE,
                     "workload": f"test-data DS-CNN (fwtestdata 'dscnn') through the runtime, first inference, "
                                 f"outputs of {N_VECTORS} vectors equal the expected bytes"})
    return recs


def _model_macs(tflite: bytes) -> int:
    import importlib.util  # lazy: firmware/bench.py is a script, loaded only for its MAC count

    spec = importlib.util.spec_from_file_location("firmware_bench", FW / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model_macs(tflite)


def table(records: list[dict]) -> str:
    """The docs/kernels.md table from the records (every figure from a record)."""
    f = lambda v: f"{v:,}"  # noqa: E731
    out = ["Per layer (kernel bench, random weights; both kernels in the same run, outputs byte-equal):", "",
           "| core | layer | MACs | reference | instr/MAC | optimized | instr/MAC | scratch bytes |",
           "|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r.get("benchmark") == "conv_layer" and r.get("model") == "dscnn":
            out.append(f"| {board_table.BOARDS[r['board']].core} | {r['shape']} | {f(r['macs'])} | "
                       f"{f(r['reference_instructions'])} | {r['reference_instructions_per_mac']:.2f} | "
                       f"{f(r['instructions'])} | {r['instructions_per_mac']:.2f} | {f(r['scratch_bytes'])} |")
    out += ["", "Whole DS-CNN through the runtime (test-data model, 8,159,424 MACs, first inference):", "",
            "| core | reference kernels | optimized | instr/MAC | speed-up | arena + stack bytes | optimized ops |",
            "|---|---|---|---|---|---|---|"]
    for r in records:
        if r.get("benchmark") == "inference" and r.get("model") == "dscnn" and r.get("kernel") == "dsp":
            out.append(f"| {board_table.BOARDS[r['board']].core} | {f(r['reference_instructions'])} | "
                       f"{f(r['instructions'])} | {r['instructions_per_mac']:.2f} | {r['speedup_vs_reference']:.2f}x | "
                       f"{f(r['arena_bytes'])} + {f(r['stack_bytes'])} | {r['optimized_ops']} |")
    return "\n".join(out) + "\n"


def doc_block(text: str) -> str | None:
    body = brec.read_block(text, START, END)
    return None if body is None else body + "\n"


def write_docs(records: list[dict]) -> None:
    brec.write_block(DOC, START, END, table(records))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", nargs="*", choices=BOARDS, default=BOARDS)
    ap.add_argument("--out", default=str(BUILD / "conv.json"))
    ap.add_argument("--merge", action="store_true", help="add the records to bench/results.json")
    ap.add_argument("--write-docs", action="store_true", help="only write the docs/kernels.md table from the records")
    a = ap.parse_args(argv)
    if a.write_docs:
        write_docs(brec.load_results(brec.RESULTS))
        return 0
    recs = layer_records(a.boards) + model_records(a.boards)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for r in recs:
        r.update({"command": "python -m bench.conv --merge", "date": now})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(a.out), json.dumps(recs, indent=1) + "\n")
    for r in recs:
        print(json.dumps(r))
    if a.merge:
        write_docs(brec.merge_results(recs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
