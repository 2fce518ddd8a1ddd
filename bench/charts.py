"""Per-core charts from bench/results.json: instructions per FFNN-250K inference against weight bit
width, our optimized kernels (kernel bench, and through the runtime), with the anchors and our float32
kernel as horizontal lines. One PNG per board in bench/charts/<board>.png and every core in one
figure, one panel each, in bench/kernels_bits.png (also `python -m bench.kernels --chart`).

    .venv/bin/python -m bench.charts [--results bench/results.json] [--out bench/charts]

Instruction counts under QEMU -icount (instructions, not cycles). The kernel-bench series and the
horizontal lines are on the same workload (247,296 MACs, 12 outputs: the CMSIS-NN / ggml anchors'
workload); the runtime series is the converted 3-class model (246,144 MACs).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from tflm_port import board_table

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "charts"
PANELS = ROOT / "bench" / "kernels_bits.png"   # every core in one figure
KBENCH_MACS = 247296
TITLES = {b: v.title for b, v in board_table.BOARDS.items()}  # "Cortex-M4 (mps2-an386, DSP)"


def series(records: list[dict], board: str) -> dict:
    """{'kbench': [(bits, instr)], 'runtime': [...], 'float': instr, 'lines': [(label, instr)]}"""
    inf = [r for r in records if r.get("benchmark") == "inference" and r.get("board") == board
           and r.get("model") == "ffnn250k"]
    # only bench.kernels' own records: the dense kernel bench and the converted model through the runtime
    # (the sparse, A4 and density records of other benchmarks share board, model and MACs)
    opt = [r for r in inf if r.get("kernel") not in ("reference", "float")
           and str(r.get("workload", "")).startswith(("kernel bench (kws_kbench)", "converted 3-class model"))]
    kb = sorted((r["weight_bits"], r["instructions"]) for r in opt if r.get("macs") == KBENCH_MACS)
    rt = sorted((r["weight_bits"], r["instructions"]) for r in opt if r.get("macs") != KBENCH_MACS)
    flt = next((r for r in inf if r.get("kernel") == "float" and r.get("macs") == KBENCH_MACS), None)
    lines = []
    if flt:
        lines.append(("our float32", flt["instructions"]))
    for bits in (8, 4):
        r = next((r for r in opt if r.get("macs") == KBENCH_MACS and r["weight_bits"] == bits), None)
        if r and r.get("cmsis_nn_instructions"):
            lines.append((f"CMSIS-NN s{bits}", r["cmsis_nn_instructions"]))
        if r and r.get("ggml_instructions"):
            lines.append((f"ggml q{bits}_0", r["ggml_instructions"]))
    return {"kbench": kb, "runtime": rt, "lines": lines}


def _draw(ax, s: dict, title: str, fontsize: int = 7) -> None:
    """One core's panel: our series against bit width, the anchors and our float32 as horizontal lines."""
    if s["kbench"]:
        ax.plot(*zip(*s["kbench"]), "o-", label="ours, kernel bench (12 outputs)")
    if s["runtime"]:
        ax.plot(*zip(*s["runtime"]), "s--", label="ours, through the runtime (3 outputs)")
    styles = ["-", "--", ":", "-."]
    for i, (label, v) in enumerate(s["lines"]):
        ax.axhline(v, color=f"C{i + 2}", linestyle=styles[i % 4], label=f"{label} ({v:,})")
    ax.set_xlabel("weight bits")
    ax.set_xticks([1, 2, 3, 4, 5, 8])
    ax.set_ylabel("instructions per inference (QEMU, not cycles)", fontsize=fontsize + 1)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=fontsize + 3)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=fontsize, loc="best")


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt  # lazy: heavy dependency, loaded only when this runs

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib  # lazy: heavy dependency, loaded only when this runs

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy dependency, loaded only when this runs

    return plt


def chart_png(records: list[dict], board: str) -> bytes | None:
    s = series(records, board)
    if not s["kbench"] and not s["runtime"]:
        return None
    fig, ax = _pyplot().subplots(figsize=(6.4, 4.2), dpi=100)
    _draw(ax, s, f"FFNN-250K, {TITLES.get(board, board)}")
    return _png(fig)


def panel_boards(records: list[dict]) -> list[str]:
    """The boards with optimized FFNN-250K records, in board-table order: one panel each."""
    out = []
    for board in TITLES:
        s = series(records, board)
        if s["kbench"] or s["runtime"]:
            out.append(board)
    return out


def panels_png(records: list[dict]) -> bytes | None:
    """All cores in one figure (bench/kernels_bits.png), one panel per core, same content as the
    per-board charts."""
    boards = panel_boards(records)
    if not boards:
        return None
    cols = min(3, len(boards))
    rows = (len(boards) + cols - 1) // cols
    fig, axes = _pyplot().subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), dpi=100, squeeze=False)
    for i, board in enumerate(boards):
        _draw(axes[i // cols][i % cols], series(records, board), TITLES.get(board, board), fontsize=6)
    for j in range(len(boards), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    fig.suptitle("FFNN-250K: instructions per inference against weight bit width (QEMU -icount: instructions, "
                 "not cycles)", fontsize=10)
    return _png(fig)


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def write_panels(records: list[dict], path: Path = PANELS) -> Path | None:
    """bench/kernels_bits.png, written atomically; None when no board has records."""
    png = panels_png(records)
    return _write(path, png) if png is not None else None


def write_all(records: list[dict], out: Path = OUT) -> list[Path]:
    """One PNG per board that has optimized FFNN-250K records; written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for board in TITLES:
        png = chart_png(records, board)
        if png is None:
            continue
        written.append(_write(out / f"{board}.png", png))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--panels", type=Path, default=PANELS, help="the one-figure chart of every core")
    a = ap.parse_args(argv)
    try:
        records = json.loads(a.results.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"{a.results}: cannot read results ({e})", file=sys.stderr)
        return 1
    if not isinstance(records, list):
        print(f"{a.results}: expected a JSON list of records", file=sys.stderr)
        return 1
    for p in write_all(records, a.out):
        print(p)
    if a.panels:
        print(write_panels(records, a.panels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
