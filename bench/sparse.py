"""The GraphBLAS measurement on our cores: FFNN-250K (FC 1536->128, 3x 128->128, 128->12, ReLU between,
batch 1, 247,296 dense MACs; random k-bit weights with a fixed seed, magnitude-pruned) through the whole
runtime (kws_runner, one kws_invoke), sparse k-bit (SUB8 layouts 4/5) against our dense k-bit on the
board's optimized dense kernel, density 100/50/30/20/10/5 %, k = 8, 4, 2.

    .venv/bin/python -m bench.sparse [--quick] [--out firmware/build/sparse.json] [--plot bench/sparse_density.png]

Instruction counts under QEMU -icount (Cortex-M: SysTick, 40-instruction resolution on mps2; AArch64
bare metal: PMU INST_RETIRED): instructions, not cycles. Sparsity kinds: ``unstructured`` (CSR, block 1),
``block`` (1 x B blocks with B*k = 32 bits: the DSP kernel's format), ``n:m`` (2:4, 1:4, 1:8, 1:16 at their
own densities N/M). CMSIS-NN is not built here (no sources on this machine): its s8 figure is the
anchor of /work/shared/ANCHORS.md (same workload, kernel-only), carried as ``cmsis_nn_s8_anchor``.
``run(quick)`` returns the records (``benchmark: "inference"`` with ``density``, ``sparsity_kind``,
``kernel``; plus one ``sparse_crossover`` record per board, k and kind); bench/run.py registers it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import flatbuffers
from basics.atomic import atomic_write_text
from bench.records import RESULTS, load_results, merge, read_block, write_block
from basics.errors import cli_main
from tflm_port import board_table, sparse
from tflm_port.convert import convert, weight_report
from tflm_port.firmware_runner import parse_status

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
DIMS = (1536, 128, 128, 128, 128, 12)
MACS = sum(a * b for a, b in zip(DIMS[:-1], DIMS[1:]))            # 247,296
DENSITIES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
BITS = (8, 4, 2)
NM = ("nm:2:4", "nm:1:4", "nm:1:8", "nm:1:16")
# hand-scheduled DSP formats; 4-bit also 4 x B blocks in layout 8's lanes (block_rows 4)
BLOCK_FOR_BITS = {8: ("block:8",), 4: ("block:8", "block:16", "block:4x8", "block:4x16"), 2: ("block:16",)}
HEADLINE = "block:4x8"   # the README's 4-bit format against the targets (4 x 8 blocks: the finer of the two lanes formats)
ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]
# board -> (qemu command, image, converter target, dense kernel): one board per kernel family
# (tflm_port/board_table.py; the M7 runs the M4's kernels)
BOARDS = {b: (list(board_table.BOARDS[b].qemu), board_table.BOARDS[b].runner_image, b, board_table.BOARDS[b].family)
          for b in board_table.per_family()}
SPARSE_KERNEL = {b: board_table.BOARDS[b].sparse_kernel for b in BOARDS}   # boards with an optimized sparse kernel
CMSIS_S8 = {"mps2-an386": 490630, "mps3-an547": 123565}   # /work/shared/ANCHORS.md, kernel-only
NOTE = "qemu -icount shift=0, one kws_invoke through the runtime: instructions, not cycles"


def fc_chain_model(weights: list[np.ndarray], relu: list[bool], batch: int = 1, seed: int = 0) -> bytes:
    """Plain int8 TFLite built with the schema (no TensorFlow run): FULLY_CONNECTED layers with the given
    integer weights [out, in] (INT8), random biases, scales chosen so the int8 activations stay spread."""
    from tensorflow.lite.python import schema_py_generated as s  # lazy: heavy dependency, loaded only when this runs

    rng = np.random.default_rng(seed)
    m = s.ModelT()
    m.version = 3
    m.buffers = [s.BufferT()]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    m.operatorCodes = [code]
    sg = s.SubGraphT()
    sg.tensors, sg.operators = [], []

    def tensor(shape, ttype, scale, zp, data=None):
        t = s.TensorT()
        t.shape = np.array(shape, np.int32)
        t.type = ttype
        q = s.QuantizationParametersT()
        q.scale, q.zeroPoint = [float(np.float32(scale))], [int(zp)]
        t.quantization = q
        b = s.BufferT()
        if data is not None:
            b.data = np.frombuffer(data, np.uint8).copy()
        m.buffers.append(b)
        t.buffer = len(m.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    s_x, zp_x = 0.05, int(rng.integers(-20, 20))
    x = tensor([batch, weights[0].shape[1]], s.TensorType.INT8, s_x, zp_x)
    sg.inputs = np.array([x], np.int32)
    for j, w in enumerate(weights):
        out_f, in_f = w.shape
        s_w = 0.02
        rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) or 1.0
        acc_std = 60.0 * rms * np.sqrt(in_f)
        s_y, zp_y = s_x * s_w * acc_std / 45.0, int(rng.integers(-30, 30))
        wt = tensor([out_f, in_f], s.TensorType.INT8, s_w, 0, w.astype(np.int8).tobytes())
        bias = rng.integers(-int(acc_std), int(acc_std) + 1, out_f).astype("<i4")
        bt = tensor([out_f], s.TensorType.INT32, np.float32(s_x) * np.float32(s_w), 0, bias.tobytes())
        y = tensor([batch, out_f], s.TensorType.INT8, s_y, zp_y)
        op = s.OperatorT()
        op.opcodeIndex = 0
        op.inputs = np.array([x, wt, bt], np.int32)
        op.outputs = np.array([y], np.int32)
        op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
        op.builtinOptions = s.FullyConnectedOptionsT()
        op.builtinOptions.fusedActivationFunction = (s.ActivationFunctionType.RELU if relu[j]
                                                     else s.ActivationFunctionType.NONE)
        sg.operators.append(op)
        x, s_x = y, s_y
    sg.outputs = np.array([x], np.int32)
    m.subgraphs = [sg]
    fb = flatbuffers.Builder(1 << 20)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def ffnn_weights(bits: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + bits)
    hi = 127 if bits == 8 else (1 << (bits - 1)) - 1
    ws = []
    for a, b in zip(DIMS[:-1], DIMS[1:]):
        w = rng.integers(-hi, hi + 1, (b, a))
        w[w == 0] = 1                                          # density 1.0 really is dense
        ws.append(w.astype(np.int8))
    return ws


def pruned(ws: list[np.ndarray], density: float, spec) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = []
    for w in ws:   # random tie-break so that unstructured pruning is not position-biased
        keep = sparse.prune_mask(np.abs(w) + rng.random(w.shape) * 0.5, density, spec)
        out.append(np.where(keep, w, 0).astype(np.int8))
    return out


def run_one(board: str, model: bytes, x: bytes, td: Path) -> tuple[int, int]:
    """(instructions of one kws_invoke, optimized ops) on board."""
    prefix, image, _, _ = BOARDS[board]
    mp, ip, op = td / "m.tflite", td / "x.bin", td / "y.bin"
    mp.write_bytes(model)
    ip.write_bytes(x)
    semi = "enable=on,target=native," + ",".join("arg=" + a for a in ["kws_runner", str(mp), str(ip), str(op), "1"])
    cmd = prefix + ICOUNT + ["-nographic", "-semihosting-config", semi, "-kernel", str(BUILD / image)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    m = parse_status(r.stdout + r.stderr)
    if r.returncode != 0 or m is None or m["status"] != 0:
        raise RuntimeError(f"{board}: kws_runner failed (rc {r.returncode}): {(r.stdout + r.stderr)[-1500:]}")
    return m["instr_first"], m["opt_ops"]


def build(boards) -> None:
    r = subprocess.run(["make", "-C", str(FW), "-j2", *board_table.make_targets(BOARDS)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"make failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def run(quick: bool = False, only=None) -> list[dict]:
    boards = [b for b in BOARDS if shutil.which(BOARDS[b][0][0]) and (only is None or b in only)]
    if quick:
        boards = [b for b in boards if b == "mps2-an386"]
    if not boards:
        print("bench.sparse: no QEMU; skipped", file=sys.stderr)
        return []
    build(boards)
    bits_list = (4,) if quick else BITS
    x = np.random.default_rng(5).integers(-128, 128, DIMS[0]).astype(np.int8).tobytes()
    recs = []
    with tempfile.TemporaryDirectory() as tdn:
        td = Path(tdn)
        for bits in bits_list:
            dense_w = ffnn_weights(bits)
            relu = [True] * 4 + [False]
            lb = [bits] * 5
            cases = []   # (kind, spec string, density, weights)
            for d in DENSITIES:
                for spec_s in ("csr",) + BLOCK_FOR_BITS[bits]:
                    spec = sparse.SparseSpec.parse(spec_s)
                    cases.append((spec.name if spec.block == 1 else "block", spec_s, d, pruned(dense_w, d, spec)))
            for spec_s in NM:
                spec = sparse.SparseSpec.parse(spec_s)
                cases.append(("n:m", spec_s, spec.n / spec.m, pruned(dense_w, 1.0, spec)))
            for board in boards:
                target, dense_kernel = BOARDS[board][2], BOARDS[board][3]
                dense_model = convert(fc_chain_model(dense_w, relu), lb, target=target)
                d_instr, _ = run_one(board, dense_model, x, td)
                base = {"benchmark": "inference", "board": board, "model": "ffnn250k", "weight_bits": bits,
                        "macs": MACS, "instructions_note": NOTE, "case": "sparse_sweep"}
                recs.append(dict(base, kernel=dense_kernel, density=1.0, sparsity_kind="dense",
                                 instructions=d_instr, instructions_per_mac=round(d_instr / MACS, 4),
                                 model_bytes=len(dense_model),
                                 weight_bytes=sum(r["weight_bytes"] for r in weight_report(dense_model))))
                if board in CMSIS_S8:
                    recs[-1]["cmsis_nn_s8_anchor"] = CMSIS_S8[board]
                for kind, spec_s, d, ws in cases:
                    if quick and d not in (1.0, 0.5, 0.2):
                        continue
                    model = convert(fc_chain_model(ws, relu), lb, mode="dense", sparse_spec=spec_s)
                    instr, opt_ops = run_one(board, model, x, td)
                    rep = weight_report(model)
                    nnz = int(sum(int((w != 0).sum()) for w in ws))
                    rec = dict(base, kernel=SPARSE_KERNEL.get(board, "sparse_reference") if opt_ops else "sparse_reference",
                               density=round(nnz / MACS, 4), target_density=d, sparsity_kind=kind, sparse_format=spec_s,
                               instructions=instr, instructions_per_mac=round(instr / MACS, 4),
                               instructions_per_nonzero=round(instr / max(1, nnz), 3), nonzero_weights=nnz,
                               vs_dense=round(instr / d_instr, 4), model_bytes=len(model),
                               weight_bytes=sum(r["weight_bytes"] for r in rep), dense_instructions=d_instr)
                    dense_rec = next(r for r in recs if r["board"] == board and r["weight_bits"] == bits
                                     and r["sparsity_kind"] == "dense")
                    rec["weight_bytes_vs_dense"] = round(rec["weight_bytes"] / dense_rec["weight_bytes"], 4)
                    if board in CMSIS_S8:
                        rec["vs_cmsis_nn_s8_anchor"] = round(instr / CMSIS_S8[board], 4)
                    recs.append(rec)
                    print(json.dumps({k: rec[k] for k in ("board", "weight_bits", "sparse_format", "density",
                                                           "kernel", "instructions", "vs_dense")}), file=sys.stderr)
    recs += crossovers(recs)
    return recs


def crossovers(recs: list[dict]) -> list[dict]:
    """Per board, k and sparsity kind: the highest measured density at which sparse takes fewer
    instructions than dense (None when it never does in the sweep)."""
    out = []
    def series(r):   # block formats are separate series (block:8 and block:16 differ)
        fmt = r.get("sparse_format") if r["sparsity_kind"] == "block" else None
        return (r["board"], r["weight_bits"], r["sparsity_kind"], fmt, r["kernel"])

    keys = {series(r) for r in recs if r.get("case") == "sparse_sweep" and r["sparsity_kind"] != "dense"}
    for board, bits, kind, fmt, kernel in sorted(keys, key=str):
        rows = [r for r in recs if r.get("case") == "sparse_sweep" and r["sparsity_kind"] != "dense"
                and series(r) == (board, bits, kind, fmt, kernel)]
        wins = [r["density"] for r in rows if r["vs_dense"] < 1.0]
        out.append({"benchmark": "sparse_crossover", "board": board, "model": "ffnn250k", "weight_bits": bits,
                    "macs": MACS, "kernel": kernel, "sparsity_kind": kind, "sparse_format": fmt,
                    "crossover_density": max(wins) if wins else None,
                    "densities_measured": sorted({r["density"] for r in rows}),
                    "note": "highest measured density where sparse < dense instructions (same run, same weights)"})
    return out


def plot(recs: list[dict], path: Path) -> None:
    import matplotlib  # lazy: heavy dependency, loaded only when this runs

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy dependency, loaded only when this runs

    boards = sorted({r["board"] for r in recs if r.get("case") == "sparse_sweep"})
    bits_list = sorted({r["weight_bits"] for r in recs if r.get("case") == "sparse_sweep"}, reverse=True)
    fig, axes = plt.subplots(len(boards), len(bits_list), figsize=(4.2 * len(bits_list), 3.2 * len(boards)),
                             squeeze=False)
    for i, board in enumerate(boards):
        for j, bits in enumerate(bits_list):
            ax = axes[i][j]
            rows = [r for r in recs if r.get("case") == "sparse_sweep" and r["board"] == board and r["weight_bits"] == bits]
            dense = next((r for r in rows if r["sparsity_kind"] == "dense"), None)
            fmts = sorted({r.get("sparse_format") for r in rows if r["sparsity_kind"] == "block"})
            for label, sel, mark in ([("unstructured (csr)", lambda r: r["sparsity_kind"] == "unstructured", "o-")]
                                     + [(f, (lambda f: lambda r: r.get("sparse_format") == f)(f), "s-") for f in fmts]
                                     + [("n:m", lambda r: r["sparsity_kind"] == "n:m", "^-")]):
                pts = sorted((r["density"], r["instructions"]) for r in rows if sel(r))
                if pts:
                    ax.plot([p[0] * 100 for p in pts], [p[1] / 1000 for p in pts], mark, label=f"sparse {label}")
            if dense:
                ax.axhline(dense["instructions"] / 1000, color="k", ls="--", label=f"dense {bits}-bit ({dense['kernel']})")
            if board in CMSIS_S8:
                ax.axhline(CMSIS_S8[board] / 1000, color="r", ls=":", label="CMSIS-NN s8 (anchor)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("density (%)")
            ax.set_ylabel("k-instructions / inference")
            ax.set_title(f"{board}, {bits}-bit", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=5)   # every panel: the series differ per board and k
    fig.suptitle("FFNN-250K, instructions under QEMU (not cycles): sparse vs dense k-bit", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)


# ----------------------------------------------------------------------------- generated README block
README = ROOT / "README.md"
DOC_START = "<!-- sparse-table: python -m bench.sparse --write-docs -->"
DOC_END = "<!-- /sparse-table -->"
BOARD_NAMES = {b: v.title for b, v in board_table.BOARDS.items()}   # "Cortex-M4 (mps2-an386, DSP)"...


def _x(v) -> str:
    return "-" if v is None else f"{v:.2f}x"


def readme_block(records: list[dict]) -> str:
    """The README's sparse figures from the sweep records of bench/results.json: the M4 4-bit ratios per
    density, the crossover density per board, k and sparsity kind, and the 20 % point against CMSIS-NN."""
    sweep = [r for r in records if r.get("case") == "sparse_sweep"]
    cross = [r for r in records if r.get("benchmark") == "sparse_crossover"]
    if not sweep:
        return "(no sparse sweep records: python -m bench.run --only sparse)\n"
    m4 = [r for r in sweep if r["board"] == "mps2-an386" and r["weight_bits"] == 4]
    dense = next((r for r in m4 if r["sparsity_kind"] == "dense"), None)
    out = []
    if dense:
        def at(fmt, d, key="vs_dense"):
            r = next((r for r in m4 if r.get("sparse_format") == fmt and r.get("target_density") == d), None)
            return None if r is None else r.get(key)

        dens = DENSITIES
        out += [f"| 4-bit, Cortex-M4 | " + " | ".join(f"{100 * d:g} %" for d in dens) + " |",
                "|---|" + "---|" * len(dens)]
        for fmt, label in ((HEADLINE, f"sparse {HEADLINE} (4-row lanes)"), ("block:4x16", "sparse block:4x16 (4-row lanes)"),
                           ("block:16", "sparse block:16"), ("block:8", "sparse block:8"),
                           ("csr", "sparse CSR (unstructured)")):
            if not any(r.get("sparse_format") == fmt for r in m4):
                continue
            name = f"{label} / our dense 4-bit ({dense['instructions']:,})" if fmt == HEADLINE else f"{label} / dense"
            out.append(f"| {name} | " + " | ".join(_x(at(fmt, d)) for d in dens) + " |")
        out.append(f"| {HEADLINE} weight bytes / dense ({dense['weight_bytes']:,}) | "
                   + " | ".join(_x(at(HEADLINE, d, "weight_bytes_vs_dense")) for d in dens) + " |")
        nm = sorted((r for r in m4 if r["sparsity_kind"] == "n:m"), key=lambda r: -r["density"])
        if nm:
            out += ["", "N:M on the Cortex-M4, 4-bit: " + ", ".join(
                f"{r['sparse_format'][3:]} ({100 * r['target_density']:g} %) {_x(r['vs_dense'])}" for r in nm)
                + " of dense."]
        b20 = next((r for r in m4 if r.get("sparse_format") == HEADLINE and r.get("target_density") == 0.2), None)
        if b20 and b20.get("vs_cmsis_nn_s8_anchor"):
            out += ["", f"At 20 % density the 4-bit {HEADLINE} model takes {_x(b20['vs_dense'])} of our dense 4-bit "
                    f"and {_x(b20['vs_cmsis_nn_s8_anchor'])} of CMSIS-NN s8 ({CMSIS_S8['mps2-an386']:,} instructions: "
                    "the ANCHORS.md figure, not built here); its weights take "
                    f"{_x(b20['weight_bytes_vs_dense'])} of the dense 4-bit bytes."]
    if cross:
        kinds = [("block:8", "block 1x8"), ("block:16", "block 1x16"), ("block:4x8", "block 4x8"),
                 ("block:4x16", "block 4x16"), ("unstructured", "unstructured (CSR)"), ("n:m", "N:M")]
        out += ["", "Crossover: the highest measured density at which sparse takes fewer instructions than dense "
                "(same run, same weights; `-`: sparse never wins in the sweep, `n/a`: not measured):", "",
                "| board | k | " + " | ".join(label for _, label in kinds) + " |", "|---|---|" + "---|" * len(kinds)]
        for board in BOARDS:
            for bits in BITS:
                rs = [r for r in cross if r["board"] == board and r["weight_bits"] == bits]
                if not rs:
                    continue
                cells = []
                for key, _ in kinds:
                    r = next((r for r in rs if (r.get("sparse_format") or r["sparsity_kind"]) == key), None)
                    cells.append("n/a" if r is None else "-" if r["crossover_density"] is None
                                 else f"{100 * r['crossover_density']:.3g} %"
                                 + ("" if r["kernel"] != "sparse_reference" else " (reference kernel)"))
                out.append(f"| {BOARD_NAMES.get(board, board)} | {bits} | " + " | ".join(cells) + " |")
    dates = sorted({r.get("date", "")[:10] for r in sweep if r.get("date")})
    out += ["", f"(records: bench/results.json, `case: sparse_sweep` and `sparse_crossover`, measured {', '.join(dates)}; "
            "instructions under QEMU -icount, not cycles)"]
    return "\n".join(out) + "\n"


KERNELS_MD = ROOT / "docs" / "kernels.md"
KDOC_START = "<!-- sparse-figures: python -m bench.sparse --write-docs -->"
KDOC_END = "<!-- /sparse-figures -->"


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def kernels_block(records: list[dict]) -> str:
    """docs/kernels.md's sparse figures from the sweep records: the M4 tables, the other cores against
    their own dense kernels, the CMSIS-NN anchor and where the issue's targets stand."""
    sweep = [r for r in records if r.get("case") == "sparse_sweep"]
    cross = [r for r in records if r.get("benchmark") == "sparse_crossover"]
    if not sweep:
        return "(no sparse sweep records: python -m bench.run --only sparse)\n"

    def get(board, bits, fmt, d):
        return next((r for r in sweep if r["board"] == board and r["weight_bits"] == bits
                     and r.get("sparse_format") == fmt and r.get("target_density") == d), None)

    def dense(board, bits):
        return next((r for r in sweep if r["board"] == board and r["weight_bits"] == bits
                     and r["sparsity_kind"] == "dense"), None)

    def cx(board, bits, key):
        r = next((r for r in cross if r["board"] == board and r["weight_bits"] == bits
                  and (r.get("sparse_format") or r["sparsity_kind"]) == key), None)
        return "n/a" if r is None else "never" if r["crossover_density"] is None else f"{100 * r['crossover_density']:.3g} %"

    out = []
    m4 = "mps2-an386"
    d4 = dense(m4, 4)
    if d4:
        fm = [f for f in ("block:4x8", "block:4x16", "block:16", "block:8", "csr")
              if any(r.get("sparse_format") == f and r["board"] == m4 and r["weight_bits"] == 4 for r in sweep)]
        out += [f"Cortex-M4 (mps2-an386), 4-bit, dense {d4['instructions']:,} instructions, weights "
                f"{d4['weight_bytes']:,} bytes:", "",
                "| density | " + " | ".join(f"{f} (DSP) | vs dense" for f in fm)
                + f" | weight bytes {' / '.join(fm)} |", "|---|" + "---|---|" * len(fm) + "---|"]
        for d in DENSITIES:
            rs = [get(m4, 4, f, d) for f in fm]
            cells = []
            for r in rs:
                cells += [_n(r and r["instructions"]), "-" if r is None else f"{r['vs_dense']:.2f}"]
            wb = " / ".join(_n(r and r["weight_bytes"]) for r in rs)
            out.append(f"| {100 * d:g} % | " + " | ".join(cells) + f" | {wb} |")
        nm = sorted((r for r in sweep if r["board"] == m4 and r["weight_bits"] == 4 and r["sparsity_kind"] == "n:m"),
                    key=lambda r: -r["density"])
        if nm:
            out += ["", "N:M on M4, 4-bit: " + ", ".join(
                f"{r['sparse_format'][3:]} {r['instructions']:,} ({r['vs_dense']:.2f}x dense, weights "
                f"{r['weight_bytes_vs_dense']:.2f}x)" for r in nm) + "."]
    for bits, fmt in ((8, "block:8"), (2, "block:16")):
        dd = dense(m4, bits)
        if dd:
            pts = [(d, get(m4, bits, fmt, d)) for d in (0.5, 0.2, 0.05)]
            c20 = get(m4, bits, "csr", 0.2)
            out += ["", f"{bits}-bit on M4 (dense {dd['instructions']:,}): {fmt} "
                    + ", ".join(f"{r['vs_dense']:.2f}x at {100 * d:g} %" for d, r in pts if r)
                    + (f"; CSR {c20['vs_dense']:.2f}x at 20 %." if c20 else ".")]
    out += ["", "Crossover on M4 (highest measured density where sparse < dense): " + "; ".join(
        f"k = {bits}: block {cx(m4, bits, {8: 'block:8', 4: 'block:4x8', 2: 'block:16'}[bits])}, CSR {cx(m4, bits, 'unstructured')}, "
        f"N:M {cx(m4, bits, 'n:m')}" for bits in BITS if dense(m4, bits)) + "."]
    anc = CMSIS_S8[m4]
    pts = [(f, d, get(m4, 4, f, d)) for d in (0.2, 0.1) for f in ("block:4x8", "block:4x16", "block:16", "block:8")]
    if any(r for _, _, r in pts):
        out += ["", f"Against CMSIS-NN: **not measured here** (no CMSIS-NN sources on this machine). The ANCHORS.md "
                f"figure (CMSIS-NN s8 FFNN-250K on M4: {anc:,} instructions, kernel only, the same workload) gives: "
                + ", ".join(f"4-bit {f} at {100 * d:g} % = {r['instructions'] / anc:.2f}x" for f, d, r in pts if r) + "."]
    others = [b for b in BOARDS if b != m4 and dense(b, 4)]
    if others:
        out += ["", "Other cores, against their own dense kernels:", "",
                "| core | k, format | dense | 50 % | 20 % | 10 % | 5 % | crossover |", "|---|---|---|---|---|---|---|---|"]
        for b in others:
            for bits, fmt in ((4, "block:16"), (8, "block:8")):
                dd = dense(b, bits)
                if not dd:
                    continue
                rs = [get(b, bits, fmt, d) for d in (0.5, 0.2, 0.1, 0.05)]
                kern = next((r["kernel"] for r in rs if r), "-")
                out.append(f"| {BOARD_NAMES.get(b, b)} ({kern}) | {bits}-bit {fmt} | {dd['instructions']:,} | "
                           + " | ".join("-" if r is None else f"{r['vs_dense']:.2f}x" for r in rs)
                           + f" | {cx(b, bits, fmt)} |")
    blocks = [f for f in ("block:4x8", "block:4x16", "block:16", "block:8") if get(m4, 4, f, 0.2) and get(m4, 4, f, 0.5)]
    c20, nm50 = get(m4, 4, "csr", 0.2), get(m4, 4, "nm:2:4", 0.5)
    if blocks and c20:
        def met(v, lim):
            return "**met**" if v <= lim else "**missed**"

        def each(d, key, scale=1.0):
            return ", ".join(f"{f} {get(m4, 4, f, d)[key] / scale:.2f}x" for f in blocks)

        r20 = [get(m4, 4, f, 0.2) for f in blocks]
        r50 = [get(m4, 4, f, 0.5) for f in blocks]
        out += ["", "Where the issue's targets stand (M4, 4-bit; generated from the records):", "",
                f"* 20 % density <= 0.4x dense 4-bit: {met(min(r['vs_dense'] for r in r20), 0.4)} "
                f"({each(0.2, 'vs_dense')}, CSR {c20['vs_dense']:.2f}x).",
                f"* <= 0.25x CMSIS-NN s8 (anchor): {met(min(r['instructions'] for r in r20) / anc, 0.25)} "
                f"({each(0.2, 'instructions', anc)}).",
                f"* sparse beats dense 4-bit at 50 % with structured sparsity: "
                f"{met(min(r['vs_dense'] for r in r50), 0.9999)} with blocks ({each(0.5, 'vs_dense')})"
                + (f"; N:M 2:4 {nm50['vs_dense']:.2f}x." if nm50 else "."),
                f"* model bytes at 20 % <= 0.3x dense 4-bit: {met(min(r['weight_bytes_vs_dense'] for r in r20), 0.3)} "
                f"(weights: {each(0.2, 'weight_bytes_vs_dense')}, CSR {c20['weight_bytes_vs_dense']:.2f}x)."]
    dates = sorted({r.get("date", "")[:10] for r in sweep if r.get("date")})
    out += ["", f"(bench/results.json, measured {', '.join(dates)}; instructions under QEMU -icount, not cycles)"]
    return "\n".join(out) + "\n"


DOC_BLOCKS = [(README, DOC_START, DOC_END, readme_block), (KERNELS_MD, KDOC_START, KDOC_END, kernels_block)]


def write_docs(records: list[dict], blocks=None) -> None:
    """Rewrite the generated blocks ((file, start, end, generator), default DOC_BLOCKS) from the records."""
    for path, start, end, gen in blocks or DOC_BLOCKS:
        write_block(path, start, end, gen(records))


def doc_block(text: str, start: str = DOC_START, end: str = DOC_END) -> str | None:
    body = read_block(text, start, end)
    return None if body is None else body + "\n"


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="M4 only, 4-bit, densities 100/50/20 %%")
    ap.add_argument("--out", default=str(BUILD / "sparse.json"))
    ap.add_argument("--plot", default=str(ROOT / "bench" / "sparse_density.png"))
    ap.add_argument("--boards", nargs="+", choices=list(BOARDS), help="measure only these boards (default: all)")
    ap.add_argument("--merge", action="store_true",
                    help="merge the records into bench/results.json (replacing the sweep of the measured boards)")
    ap.add_argument("--write-docs", action="store_true",
                    help="rewrite the sparse blocks of README.md and docs/kernels.md and bench/sparse_density.png from bench/results.json; exit")
    a = ap.parse_args(argv)
    if a.write_docs:

        recs = load_results(RESULTS)
        write_docs(recs)
        if any(r.get("case") == "sparse_sweep" for r in recs):
            plot(recs, Path(a.plot))
        return 0
    recs = run(a.quick, a.boards)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(recs, indent=1) + "\n")
    tmp.replace(out)
    if recs and a.merge:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        cmd = "python -m bench.sparse" + (f" --boards {' '.join(a.boards)}" if a.boards else "")
        from bench.host import machine  # lazy: heavy dependency, loaded only when this runs

        mach = machine()
        for r in recs:
            r.setdefault("command", cmd)
            r.setdefault("machine", mach)
            r.setdefault("date", now)
        merged = merge(load_results(RESULTS), recs)
        atomic_write_text(RESULTS, json.dumps(merged, indent=1) + "\n")
        recs = merged
    if recs:
        plot(recs, Path(a.plot))
    return 0


if __name__ == "__main__":
    main()
