"""Kernel figures: the whole FFNN-250K (FC 1536->128, 3x 128->128, 128->12, ReLU between, batch 1,
247,296 MACs, random weights with a fixed seed) with the reference, the optimized and our float32
kernel, instructions counted by firmware/app/kws_kbench.c under QEMU -icount shift=0
(Cortex-M: SysTick; AArch64 bare metal on -M virt: PMU INST_RETIRED). Instructions, not cycles.

    .venv/bin/python -m bench.kernels [--quick] [--out firmware/build/kernels.json] [--runtime] [--merge]
                                      [--boards mps2-an386 mps2-an500 ...]

``--runtime`` adds the converted model through the runtime on every board (firmware/bench.py's optimized
records); ``--merge`` adds the records to bench/results.json (bench.run's merge) and regenerates
BENCHMARKS.md and the per-core charts bench/charts/<board>.png (bench/charts.py).
Float records carry ``floor_instructions`` (FLOAT_FLOOR: what any float kernel must execute on that core)
and ``vs_floor``; optimized records ``float_instructions`` (our float kernel, same run) and
``less_cpu_than_float``; every record says its weight ``storage`` (layout).

``run(quick)`` returns the records; bench/run.py can add them with ``records += kernels.run(quick)``.
flash_bytes: packed weight bytes of the five layers; ram_bytes: the largest layer's input + output
activations plus the kernel's scratch (int8: 1 byte per activation; float: 4; scratch: the largest
kws_fc_opt_scratch_bytes of the five layers as that ISA's kernel reports it, 0 for reference and float).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
import datetime as _dt
import importlib.util
import tempfile
from basics.atomic import atomic_write_text
from basics.errors import UserError

from tflm_port import board_table
from bench import records as brec

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
MAKE = ["make", "-C", str(FW), "-f", "Makefile", "-f", "kernels/optimized.mk", "-j2"]
# board -> (qemu binary, machine args, kernel-bench image): tflm_port/board_table.py
BOARDS = {b: (v.qemu[0], list(v.qemu[1:]), BUILD / v.kbench_image) for b, v in board_table.BOARDS.items()}
TOOLS = {"qemu-system-arm": "arm-none-eabi-gcc", "qemu-system-aarch64": "aarch64-linux-gnu-gcc"}
LINE = re.compile(r"KBENCH isa=(\S+) bits=(\d+) instructions=(\d+) macs=(\d+) weight_bytes=(\d+)"
                  r"(?: layout=(\d+) ok=\d first_layer=(\d+) scratch=(\d+))?")
FIRST_LAYER_MACS = 1536 * 128
MACS = 247296
# CMSIS-NN / ggml anchors (/work/shared/ANCHORS.md), instructions per FFNN-250K inference
ANCHORS = {("mps2-an386", 8): 490630, ("mps2-an386", 4): 1232070, ("mps2-an500", 8): 490755,
           ("mps2-an500", 4): 1232018, ("mps3-an547", 8): 123565, ("mps3-an547", 4): 104588}
ANCHOR_NAMES = {8: "CMSIS-NN s8", 4: "CMSIS-NN s4"}
# ggml's own CPU kernels on AArch64 (q8_0 x q8_0, q4_0 x q8_0; one dot per row), same workload
GGML = {("aarch64-cortex-a53", 8): 231152, ("aarch64-cortex-a53", 4): 254336,
        ("aarch64-cortex-a76", 8): 170376, ("aarch64-cortex-a76", 4): 193560}
# CMSIS-NN's f32 FC on the Cortex-M boards (ANCHORS.md)
CMSIS_F32 = {"mps2-an386": 1247116, "mps2-an500": 1494946, "mps3-an547": 250059}
# Float floor per MAC: what every float kernel must at least execute on this core.
#   M4/M7: FPv4-SP/FPv5 have no SIMD: one scalar VFMA per MAC (loads are VLDM of up to 16 registers, ~0).
#   M55: Helium VFMA does 4 lanes and every weight needs a load: VLDRW + VFMA per 4 weights = 0.5.
#   AArch64: FMLA does 4 lanes (0.25/MAC) and LD1 of four registers loads 16 weights (1/16).
FLOAT_FLOOR = {"mps2-an386": 1.0, "mps2-an500": 1.0, "mps3-an547": 0.5,
               "aarch64-cortex-a53": 0.3125, "aarch64-cortex-a76": 0.3125}
LAYOUT_NAMES = {0: "int8 row-major", 2: "r4_words", 3: "r4_nib32", 4: "nm", 5: "bsr", 6: "rows_per_byte", 8: "lanes16",
                9: "rows24"}


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


def run(quick: bool = False, boards: list[str] | None = None) -> list[dict]:
    build()
    records = []
    for board in boards or BOARDS:
        if missing(board):
            print(f"{board}: skipped ({missing(board)} missing)", file=sys.stderr)
            continue
        rc, text = run_image(board, ["bench"] + (["8", "4"] if quick else []))
        if rc != 0:
            raise RuntimeError(f"{board}: kbench failed (rc {rc}):\n{text[-2000:]}")
        board_recs = []
        for isa, bits, instr, macs, wbytes, layout, first, scratch in LINE.findall(text):
            bits, instr, macs, wbytes = int(bits), int(instr), int(macs), int(wbytes)
            kernel = isa if isa in ("reference", "float") else isa
            act = 4 if isa == "float" else 1
            scratch = int(scratch) if scratch else 0  # this ISA's kws_fc_opt_scratch_bytes, printed by kbench
            rec = {"benchmark": "inference", "board": board, "model": "ffnn250k",
                   "weight_bits": 32 if isa == "float" else bits, "kernel": kernel, "instructions": instr,
                   "macs": macs, "instructions_per_mac": round(instr / macs, 4),
                   "flash_bytes": wbytes, "ram_bytes": act * (1536 + 128) + scratch,
                   "instructions_note": "qemu -icount shift=0, instructions not cycles",
                   "workload": "kernel bench (kws_kbench), 12 outputs"}
            if isa == "float":
                floor = round(FLOAT_FLOOR[board] * macs)
                rec.update({"storage": "float32 row-major", "floor_instructions": floor,
                            "vs_floor": round(instr / floor, 3)})
                if board in CMSIS_F32:
                    rec["cmsis_nn_instructions"] = CMSIS_F32[board]
            elif isa == "reference":
                rec["storage"] = "layout 0 (row_lsb)" if bits < 8 else "int8 row-major"
            else:
                lay = int(layout) if layout else 0
                rec["storage"] = f"layout {lay} ({LAYOUT_NAMES.get(lay, '?')})" if lay else "int8 row-major"
                rec["layout"] = lay
                if first:  # FC 1536->128 alone (196,608 MACs): the inner loop's cost without the small layers
                    rec["first_layer_instructions"] = int(first)
                    rec["first_layer_instructions_per_mac"] = round(int(first) / FIRST_LAYER_MACS, 4)
                if (board, bits) in ANCHORS:
                    rec["cmsis_nn_instructions"] = ANCHORS[(board, bits)]
                if (board, bits) in GGML:
                    rec["ggml_instructions"] = GGML[(board, bits)]
            board_recs.append(rec)
        flt = next((r["instructions"] for r in board_recs if r["kernel"] == "float"), None)
        for r in board_recs:
            if flt and r["kernel"] not in ("float", "reference"):
                r["float_instructions"] = flt
                r["less_cpu_than_float"] = round(flt / r["instructions"], 3)
        records += board_recs
    return records


def runtime_records(boards: list[str] | None = None, bits: list[int] | None = None) -> list[dict]:
    """FFNN-250K through the runtime with each board's optimized kernels (firmware/bench.py's optimized
    records, each with the reference-only image on the same weights; its test-data reference records,
    asked for the cheapest case only, are dropped)."""
    spec = importlib.util.spec_from_file_location("firmware_bench", FW / "bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "fw.json"
        rc = mod.main(["--out", str(out), "--models", "ffnn_int8"] + (["--boards", *boards] if boards else [])
                      + (["--bits", *map(str, bits)] if bits else []))
        if rc not in (0, None):
            raise RuntimeError(f"firmware/bench.py exited with {rc}")
        recs = [r for r in json.loads(out.read_text()) if r.get("kernel") != "reference"]
    for r in recs:
        r["command"] = "python -m bench.kernels --runtime --merge"
        r["workload"] = "converted 3-class model through the runtime (kws_runner)"
    return recs


def merge_into_results(records: list[dict]) -> None:
    """Add/replace these records in bench/results.json (bench.run's merge: same benchmark, model,
    weight_bits, board, kernel, macs) and regenerate BENCHMARKS.md and the charts."""
    from bench.host import machine  # lazy: heavy dependency, loaded only when this runs

    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    mach = machine()
    for r in records:
        r.setdefault("command", "python -m bench.kernels --merge")
        r.setdefault("machine", mach)
        r.setdefault("date", now)
    merged = brec.merge_results(records)
    from bench import charts  # lazy: heavy dependency, loaded only when this runs

    charts.write_all(merged)
    charts.write_panels(merged)


def refresh_ram() -> int:
    """Run the kernel bench and rewrite only ``ram_bytes`` of the kernel-bench records already in
    bench/results.json (each ISA's own scratch, as its kernel reports it); instruction counts stay the
    recorded ones. Returns how many records changed."""

    fresh = {(r["board"], r["kernel"], r["weight_bits"], r["macs"]): r for r in run()}
    recs = brec.load_results(brec.RESULTS)
    changed = 0
    for r in recs:
        new = fresh.get((r.get("board"), r.get("kernel"), r.get("weight_bits"), r.get("macs")))
        if r.get("benchmark") == "inference" and r.get("workload", "").startswith("kernel bench") and new:
            if r.get("ram_bytes") != new["ram_bytes"]:
                r["ram_bytes"] = new["ram_bytes"]
                r["ram_note"] = "largest layer's activations + this ISA's kws_fc_opt_scratch_bytes (kbench scratch=)"
                changed += 1
    atomic_write_text(brec.RESULTS, json.dumps(recs, indent=1) + "\n")
    atomic_write_text(brec.MARKDOWN, brec.render(recs))
    return changed


# Instruction floor per MAC of each kernel's method (static count of its inner-loop instruction sequence,
# docs/kernels.md), for the first layer (FC 1536->128) where the inner loop dominates:
METHOD_FLOOR = {
    ("dsp", 8): (1.25, "LDR + 2 SXTB16 + 2 SMLAD per 4 weights"),
    ("dsp", 5): (1.083, "AND + SMLAD per 2 weights + LDR per 6"),
    # layout 8 (lanes16): per 16 MACs LDRD x + LDRD w + 2 x (4 SMLAD + SXTB16 + 2 AND)
    ("dsp", 4): (1.0, "per word (2 inputs x 4 rows): 4 SMLAD + SXTB16 + 2 AND, + LDRD x, LDRD w per 2 words"),
    # per 64 MACs: 16 AND + 16 SMLAD + 4 LDRD x + 2 LDRD w + 6 (bottom field out every 16 inputs)
    ("dsp", 2): (0.6875, "AND + SMLAD per 4 weights, + LDRD x per 16 MACs, field split per 64"),
    # per 128 MACs: 32 AND + 32 SMLAD + 8 LDRD x + 2 LDRD w
    ("dsp", 1): (0.578, "AND + SMLAD per 4 weights, + LDRD x per 16 MACs, LDRD w per 128"),
    ("mve", 8): (0.141, "VLDRB + VMLADAVA per 16 weights + VLDRB of x per 4 rows"),
    ("mve", 4): (0.141, "per 64 MACs: 4 VMLADAVA + 2 VSHR + 3 VLDRB"),
    ("mve", 2): (0.141, "per 64 MACs: 4 VMLADAVA + 3 VSHR + 2 VLDRB"),
    ("mve", 1): (0.133, "per 128 MACs: 8 VMLADAVA + 7 VSHR + 2 VLDRB"),
    # layout 9 (rows24): ten telescoped sums per 8 rows, two passes (VMLADAVA writes 8 even registers only)
    ("mve", 3): (0.172, "per 128 MACs: 10 VMLADAVA + 7 VSHR + 5 VLDRB (two passes: A, B then C)"),
    ("neon", 8): (0.27, "SMULL + SMULL2 + 2 SADALP per 16 MACs + LD1x4"),
    ("neon", 4): (0.21, "AND + USHR + 4 SMLAL per 32 weights + SADALP per 4 blocks + LD1x4"),
    # layout 6, k = 2, two groups per pass: per 512 MACs 64 SMLAL(2) + 24 SSHR + 3 LD1x4 (x shared by 8 rows)
    ("neon", 2): (0.178, "per 64 MACs: 8 SMLAL(2) + 3 SSHR (telescoping int16 lanes), + LD1x4"),
    # layout 2, k = 1, TBL subset-sum tables: per 512 MACs (4 groups x 4 rows x 32 inputs) 4 x 12 + 4 LD1x4 of
    # tables = 52 (0.1016), plus 65 per word (32 inputs) to build the tables, shared by the layer's 128 rows (0.0159)
    ("neon", 1): (0.1174, "per 512 MACs (16 rows): 4 x (LD1 + USHR + ORR + SLI + 4 TBL + 2 ADD + 2 ADALP) + 4 LD1x4 "
                          "of tables, + 65 per 32 inputs to build the tables"),
    ("neon", 3): (0.221, "per 128 MACs: 20 SMLAL(2) + 7 SSHR (telescoping int16 lanes) + LD1x3, + LD1x4 of x per 4"),
    ("neon_dotprod", 8): (0.082, "SDOT per 16 MACs + 5 LD1x4 per 256"),
    # layout 6, eight rows per pass (loop branch not counted): one LD1x4 of x for 8 rows
    ("neon_dotprod", 4): (0.1035, "per 512 MACs (8 rows): 32 SDOT + 16 SSHR + 5 LD1x4"),
    ("neon_dotprod", 2): (0.1152, "per 512 MACs (8 rows): 32 SDOT + 24 SSHR + 3 LD1x4"),
    ("neon_dotprod", 1): (0.121, "per 512 MACs (8 rows): 32 SDOT + 28 SSHR + 2 LD1x4"),
    ("neon_dotprod", 3): (0.143, "per 128 MACs: 10 SDOT + 7 SSHR + LD1x3, + LD1x4 of x per 4"),
}

# issue 14's targets (instructions per inference through the runtime; None = no target)
TARGETS = {"mps2-an386": (370000, 290000, 270000, 200000), "mps3-an547": (42000, 45000, 45000, 45000),
           "aarch64-cortex-a53": (90000, 70000, 60000, None), "aarch64-cortex-a76": (40000, 45000, 45000, None)}

BOARD_ORDER = list(board_table.BOARDS)
CORE = {b: v.core for b, v in board_table.BOARDS.items()}


def _pick(matches: list[dict]) -> dict | None:
    """Of the records matching a table cell, this module's own (kernel bench or runtime workload) first:
    other benchmarks (e.g. the sparse sweep's dense baselines) share board, kernel, bits and MACs."""
    own = [r for r in matches if str(r.get("workload", "")).startswith(("kernel bench (kws_kbench)", "converted 3-class"))]
    return (own or matches or [None])[0]


def tables(records: list[dict]) -> str:
    """The markdown tables of docs/kernels.md, from bench/results.json records (kernel bench and
    runtime), so that every figure there comes from a record: ``python -m bench.kernels --tables``."""
    inf = [r for r in records if r.get("benchmark") == "inference" and r.get("model") == "ffnn250k"]

    def get(board, kernel_pred, bits, macs):
        return _pick([r for r in inf if r["board"] == board and kernel_pred(r["kernel"]) and r["weight_bits"] == bits
                      and r["macs"] == macs])

    opt = lambda k: k not in ("reference", "float")  # noqa: E731
    f = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
    out = ["Kernel bench (247,296 MACs, 12 outputs; our float32 kernel in the same run):", "",
           "| core | bits | kernel | storage | instructions | instr/MAC | float32 | less CPU than float | "
           "CMSIS-NN / ggml anchor | vs anchor |", "|---|---|---|---|---|---|---|---|---|---|"]
    for b in BOARD_ORDER:
        for bits in (8, 5, 4, 3, 2, 1):
            r = get(b, opt, bits, MACS)
            if not r:
                continue
            anc = r.get("cmsis_nn_instructions") or r.get("ggml_instructions")
            name = ("CMSIS-NN s%d " % bits) if r.get("cmsis_nn_instructions") else (("ggml q%d_0 " % bits) if anc else "")
            out.append(f"| {CORE[b]} | {bits} | {r['kernel']} | {r.get('storage', '-')} | {f(r['instructions'])} | "
                       f"{r['instructions_per_mac']:.2f} | {f(r.get('float_instructions'))} | "
                       f"{r['less_cpu_than_float']:.2f}x | {name}{f(anc)} | "
                       f"{'%.2fx' % (anc / r['instructions']) if anc else '-'} |")
    out += ["", "First layer alone (FC 1536->128, 196,608 MACs; the inner loop without the small layers) against "
            "the instruction floor of each kernel's method (static count of its loop):", "",
            "| core | bits | kernel | first layer | instr/MAC | method floor /MAC | x floor | floor sequence |",
            "|---|---|---|---|---|---|---|---|"]
    for b in BOARD_ORDER:
        if b not in board_table.per_family():
            continue  # same kernels as an earlier board (the M7 runs the M4's)
        for bits in (8, 5, 4, 3, 2, 1):
            r = get(b, opt, bits, MACS)
            if not r or "first_layer_instructions" not in r:
                continue
            fl = METHOD_FLOOR.get((r["kernel"], bits)) or METHOD_FLOOR.get((r["kernel"], 4))  # A53 2-bit: nibbles
            out.append(f"| {CORE[b]} | {bits} | {r['kernel']} | {f(r['first_layer_instructions'])} | "
                       f"{r['first_layer_instructions_per_mac']:.3f} | {fl[0]} | "
                       f"{r['first_layer_instructions_per_mac'] / fl[0]:.2f} | {fl[1]} |")
    out += ["", "Float32 kernels against their floor (same run):", "",
            "| core | our float32 | instr/MAC | floor | x floor | CMSIS-NN f32 |", "|---|---|---|---|---|---|"]
    for b in BOARD_ORDER:
        r = get(b, lambda k: k == "float", 32, MACS)
        if r:
            out.append(f"| {CORE[b]} | {f(r['instructions'])} | {r['instructions_per_mac']:.3f} | "
                       f"{f(r.get('floor_instructions'))} | {r.get('vs_floor')} | {f(r.get('cmsis_nn_instructions'))} |")
    out += ["", "Less CPU than float, per core (kernel bench, instructions of our float32 kernel in the same run / "
            "ours):", "", "| core | 8 bit | 4 bit | 2 bit | 1 bit |", "|---|---|---|---|---|"]
    for b in BOARD_ORDER:
        cells = []
        for bits in (8, 4, 2, 1):
            r = get(b, opt, bits, MACS)
            cells.append(f"{r['less_cpu_than_float']:.2f}x" if r and r.get("less_cpu_than_float") else "-")
        out.append(f"| {CORE[b]} | " + " | ".join(cells) + " |")
    out += ["", "Issue 14 targets, through the runtime:", "", "| core | 8 bit | 4 bit | 2 bit | 1 bit |",
            "|---|---|---|---|---|"]
    for b, tgt in TARGETS.items():
        cells = []
        for bits, t in zip((8, 4, 2, 1), tgt):
            r = get(b, opt, bits, 246144)
            if r is None:
                cells.append("-")
            elif t is None:
                cells.append(f"{f(r['instructions'])} (no target)")
            else:
                ok = r["instructions"] <= t
                cells.append(f"{f(r['instructions'])} {'<=' if ok else '>'} {f(t)} {'met' if ok else '**missed**'}")
        out.append(f"| {CORE[b]} | " + " | ".join(cells) + " |")
    out += ["", "Through the runtime (converted 3-class model, 246,144 MACs, kws_runner, mean of 8 inputs):", "",
            "| core (kernel) | 8 bit | 5 bit | 4 bit | 3 bit | 2 bit | 1 bit | storage 4 / 3 / 2 / 1 bit | arena + stack (8 / 4 bit) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for b in BOARD_ORDER:
        rs = {bits: get(b, opt, bits, 246144) for bits in (8, 5, 4, 3, 2, 1)}
        if not any(rs.values()):
            continue
        k = next(r["kernel"] for r in rs.values() if r)
        st = " / ".join(brun_fmt(rs[x].get("storage")) if rs[x] else "-" for x in (4, 3, 2, 1))
        ram = " / ".join(f(rs[x]["ram_bytes"]) if rs[x] else "-" for x in (8, 4))
        out.append(f"| {CORE[b]} ({k}) | " + " | ".join(f(rs[x]["instructions"]) if rs[x] else "-" for x in (8, 5, 4, 3, 2, 1))
                   + f" | {st} | {ram} |")
    # weight bytes per storage, from the kernel-bench records (identical on every core that stores it so)
    wb = {}
    for r in inf:
        if r["macs"] == MACS and r["kernel"] != "reference" and "flash_bytes" in r:
            wb.setdefault(r.get("storage", "-"), {})[r["weight_bits"]] = r["flash_bytes"]
    parts = []
    for st in sorted(wb, key=lambda k: (k.startswith("float"), k)):
        by = wb[st]
        parts.append(f"{st}: " + ", ".join(f"{k}-bit {f(v)}" for k, v in sorted(by.items(), reverse=True))
                     if len(by) > 1 or st.startswith("layout") else f"{st} {f(next(iter(by.values())))}")
    out += ["", "Weight bytes of the five layers (kernel bench): " + "; ".join(parts) + "."]
    return "\n".join(out) + "\n"


# one row per kernel family (the M7 runs the M4's kernels)
README_ROWS = [(b, board_table.BOARDS[b].title) for b in board_table.per_family()]


def stored_as(storage, bits: int) -> str:
    """How a runtime record's k-bit weights are stored, in words: "2-bit (layout 6)", or "**4-bit
    nibbles** (layout 3)" where a narrower model is stored in 4-bit fields."""
    if not storage:
        return "-"
    cells = []
    for s in dict.fromkeys(storage if isinstance(storage, list) else [storage]):
        if s.startswith("custom/"):
            lay = int(s.split("/")[1])
            stored = 4 if lay == 3 else bits  # layout 3 (r4_nib32) holds 1..4-bit weights in nibbles
            cells.append(f"**{stored}-bit nibbles** (layout {lay})" if stored != bits else f"{bits}-bit (layout {lay})")
        else:
            cells.append(s)
    return ", ".join(cells)


def deploy_table(records: list[dict]) -> str:
    """README's deployment table (FFNN-250K per inference through the runtime, with the anchors and our
    float32 kernel from the kernel bench), every figure from a bench/results.json record."""
    inf = [r for r in records if r.get("benchmark") == "inference" and r.get("model") == "ffnn250k"]

    def get(board, pred, bits, macs):
        return _pick([r for r in inf if r["board"] == board and pred(r["kernel"]) and r["weight_bits"] == bits
                      and r["macs"] == macs])

    opt = lambda k: k not in ("reference", "float")  # noqa: E731
    f = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
    out = ["| board | 8-bit | 4-bit | 2-bit | 1-bit | weights stored as (4 / 2 / 1-bit models) | anchor 8 / 4-bit "
           "| our float32 |", "|---|---|---|---|---|---|---|---|"]
    for b, label in README_ROWS:
        rs = {bits: get(b, opt, bits, 246144) for bits in (8, 4, 2, 1)}
        st = " / ".join(stored_as(rs[x].get("storage"), x) if rs[x] else "-" for x in (4, 2, 1))
        kb = {bits: get(b, opt, bits, MACS) or {} for bits in (8, 4)}
        anc = [kb[x].get("cmsis_nn_instructions") or kb[x].get("ggml_instructions") for x in (8, 4)]
        name = "CMSIS-NN s8/s4" if kb[8].get("cmsis_nn_instructions") else "ggml q8_0/q4_0"
        flt = get(b, lambda k: k == "float", 32, MACS)
        out.append(f"| {label} | " + " | ".join(f(rs[x]["instructions"]) if rs[x] else "-" for x in (8, 4, 2, 1))
                   + f" | {st} | {name} {f(anc[0])} / {f(anc[1])} | {f(flt['instructions'] if flt else None)} |")
    return "\n".join(out) + "\n"


# generated blocks: (file, start marker, end marker, generator)
def lstm_table(records: list[dict]) -> str:
    """docs/kernels.md "Int8 LSTM": instructions per hop, each board's LSTM kernel against the reference kernel
    (bench/lstm_fw.py --merge records: model "lstm")."""
    recs = [r for r in records if r.get("benchmark") == "inference" and r.get("model") == "lstm"
            and r.get("activation_bits", 8) == 8
            and not str(r.get("kernel", "")).startswith("lstm_a4_")]   # SUB8_LSTM_A4 (w4a4, w4a8): lstm_a4_table
    ref = {(r["board"], r["macs"]): r for r in recs if r.get("kernel") == "lstm_reference"}
    rows = sorted((r for r in recs if r.get("kernel") != "lstm_reference" and (r["board"], r["macs"]) in ref),
                  key=lambda r: (-r["macs"], BOARD_ORDER.index(r["board"]) if r["board"] in BOARD_ORDER else 99))
    out = ["| shape (MACs / hop) | board | LSTM kernel | instructions / hop | reference kernel | ratio | "
           "instructions / MAC | arena bytes (reference) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, s = ref[(r["board"], r["macs"])], r["lstm_shape"]
        out.append(f"| {s['layers']} x {s['units']} on {s['input_bins']} bins + Dense {s['dense_outputs']} "
                   f"({brec._fmt(r['macs'])}) | {board_table.BOARDS[r['board']].title} | {r['kernel'][5:]} | "
                   f"{brec._fmt(r['instructions'])} | {brec._fmt(f['instructions'])} | "
                   f"{r['instructions'] / f['instructions']:.2f} | {r['instructions_per_mac']:.2f} | "
                   f"{brec._fmt(r['arena_bytes'])} ({brec._fmt(f['arena_bytes'])}) |")
    return "\n".join(out) + "\n"


def lstm_a4_table(records: list[dict]) -> str:
    """docs/kernels.md "w4a4 LSTM on Helium and NEON": instructions per hop of each board's SUB8_LSTM_A4 kernel
    (w4a4, and w4a8 where measured) against the SUB8_LSTM_A4 reference kernel, the board's int8 LSTM kernel
    and the float32 LSTM kernel on the same shape (bench/lstm_a4_fw.py, bench/lstm_fw.py and
    bench/lstm_float_fw.py --merge records)."""
    recs = [r for r in records if r.get("benchmark") == "inference" and r.get("model") == "lstm"]
    a4 = [r for r in recs if r.get("weight_bits") == 4 and str(r.get("kernel", "")).startswith("lstm_a4_")]
    ref = {(r["board"], r["macs"], r["activation_bits"]): r for r in a4 if r.get("kernel") == "lstm_a4_reference"}
    i8 = {(r["board"], json.dumps(r["lstm_shape"], sort_keys=True)): r for r in recs
          if r.get("activation_bits", 8) == 8 and not str(r.get("kernel", "lstm_reference")).startswith(("lstm_a4_", "lstm_reference"))}
    f32 = {(r["board"], json.dumps(r["lstm_shape"], sort_keys=True)): r for r in recs if r.get("kernel") == "lstm_float"}
    rows = sorted((r for r in a4 if r.get("kernel") != "lstm_a4_reference" and (r["board"], r["macs"], r["activation_bits"]) in ref),
                  key=lambda r: (-r["macs"], r["activation_bits"],
                                 BOARD_ORDER.index(r["board"]) if r["board"] in BOARD_ORDER else 99))
    out = ["| shape | board | weights / activations | SUB8_LSTM_A4 kernel | instructions / hop | its reference kernel | "
           "int8 LSTM kernel | SUB8 / int8 | float32 LSTM kernel | SUB8 / float32 | model bytes SUB8 / int8 |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f, s = ref[(r["board"], r["macs"], r["activation_bits"])], r["lstm_shape"]
        key = (r["board"], json.dumps(s, sort_keys=True))
        q, fl = i8.get(key), f32.get(key)
        out.append(f"| {s['layers']} x {s['units']} on {s['input_bins']} bins + Dense {s['dense_outputs']} | "
                   f"{board_table.BOARDS[r['board']].title} | w4a{r['activation_bits']} | {r['kernel'][8:]} | "
                   f"{brec._fmt(r['instructions'])} | {brec._fmt(f['instructions'])} | "
                   + (f"{brec._fmt(q['instructions'])} ({q['kernel'][5:]}) | {r['instructions'] / q['instructions']:.2f} | "
                      if q else "- | - | ")
                   + (f"{brec._fmt(fl['instructions'])} | {r['instructions'] / fl['instructions']:.2f} | " if fl else "- | - | ")
                   + (f"{brec._fmt(r['model_bytes'])} / {brec._fmt(q['model_bytes'])} |" if q else
                      f"{brec._fmt(r['model_bytes'])} / - |"))
    return "\n".join(out) + "\n"


DOC_BLOCKS = [
    (ROOT / "README.md", "<!-- deploy-table: python -m bench.kernels --write-docs -->", "<!-- /deploy-table -->",
     deploy_table),
    (ROOT / "docs" / "kernels.md", "<!-- kernel-tables: python -m bench.kernels --write-docs -->",
     "<!-- /kernel-tables -->", lambda recs: tables(recs)),
    (ROOT / "docs" / "kernels.md", "<!-- lstm-table: python -m bench.kernels --write-docs -->", "<!-- /lstm-table -->",
     lstm_table),
    (ROOT / "docs" / "kernels.md", "<!-- lstm-a4-table: python -m bench.kernels --write-docs -->",
     "<!-- /lstm-a4-table -->", lstm_a4_table),
]


def doc_block(text: str, start: str, end: str) -> str | None:
    """The text between the markers, newline-terminated (None when the file has no such block)."""
    body = brec.read_block(text, start, end)
    return None if body is None else body + "\n"


def write_docs(records: list[dict]) -> None:
    for path, start, end, gen in DOC_BLOCKS:
        brec.write_block(path, start, end, gen(records))


def brun_fmt(v) -> str:
    return brec._fmt(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(BUILD / "kernels.json"))
    ap.add_argument("--runtime", action="store_true",
                    help="also the whole converted FFNN-250K through the runtime on every board (firmware/bench.py)")
    ap.add_argument("--merge", action="store_true",
                    help="add the records to bench/results.json, regenerate BENCHMARKS.md and bench/charts/*.png")
    ap.add_argument("--tables", action="store_true",
                    help="print the docs/kernels.md tables from bench/results.json and exit")
    ap.add_argument("--refresh-ram", action="store_true",
                    help="rerun the kernel bench and update only ram_bytes of its records in bench/results.json")
    ap.add_argument("--boards", nargs="*", choices=list(BOARDS), default=None,
                    help="measure only these boards (default: all); --merge replaces only their records")
    ap.add_argument("--bits", nargs="*", type=int, default=None,
                    help="keep (and --merge) only the records of these weight bit widths (e.g. --bits 3)")
    ap.add_argument("--write-docs", action="store_true",
                    help="rewrite the generated blocks of README.md and docs/kernels.md from bench/results.json and exit")
    ap.add_argument("--chart", action="store_true",
                    help="draw bench/kernels_bits.png (every core, instructions against bit width) from "
                         "bench/results.json and exit")
    a = ap.parse_args(argv)
    if a.chart:
        from bench import charts  # lazy: heavy dependency (matplotlib), loaded only when this runs

        try:
            path = charts.write_panels(brec.load_results(brec.RESULTS))
        except UserError as e:
            print(e, file=sys.stderr)
            return 1
        if path is None:
            print(f"{brec.RESULTS}: no optimized FFNN-250K inference records to chart", file=sys.stderr)
            return 1
        print(path)
        return 0
    if a.refresh_ram:
        print(f"{refresh_ram()} kernel-bench records: ram_bytes updated")
        return 0
    if a.tables or a.write_docs:
        recs = brec.load_results(brec.RESULTS)
        if a.write_docs:
            write_docs(recs)
        else:
            print(tables(recs), end="")
        return 0
    recs = run(a.quick, a.boards)
    if a.runtime:
        recs += runtime_records(a.boards, a.bits)
    if a.bits:
        recs = [r for r in recs if r["weight_bits"] in a.bits]
    for r in recs:
        print(json.dumps(r))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(a.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(recs, indent=1) + "\n")
    tmp.replace(a.out)
    if a.merge:
        merge_into_results(recs)

        write_docs(brec.load_results(brec.RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
