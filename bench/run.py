"""Benchmark aggregator: ``python -m bench.run [--quick] [--run-dir DIR] [--only host firmware]``.

Runs the registered benchmark modules, merges their records into ``bench/results.json`` (a JSON
list; a record replaces an earlier one with the same benchmark, model, weight_bits, board, kernel)
and regenerates ``BENCHMARKS.md``. Both files are written atomically.

Modules: ``bench.host`` (``run(quick, run_dir) -> list[dict]``), ``bench.kernels``, ``bench.streaming``,
``bench.boards`` (the STM32F405 UART images: flash/RAM against the part's limits) and, when present,
``firmware/bench.py`` (owned by the firmware; called through its ``main(argv)`` with ``--out`` to a
temporary file whose JSON list is read back). ``--quick`` is a smoke test: tiny models, 20 s of audio,
firmware skipped unless ``--only firmware`` asks for it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import sys
import tempfile
import traceback
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError, cli_main
from bench import a4
from bench import distributed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
MARKDOWN = ROOT / "BENCHMARKS.md"
# "macs" tells apart the two FFNN-250K workloads: the converted 3-class model run by the runtime
# (246,144 MACs) and the 12-class anchor workload of shared/ANCHORS.md run by the kernel bench (247,296)
KEY = ("benchmark", "model", "weight_bits", "board", "kernel", "macs", "density", "sparsity_kind", "sparse_format",
       "activation_bits", "workers")


def record_key(rec: dict) -> tuple:
    # activation_bits: 8 when absent (every record written before 4-bit activations)
    return tuple(rec.get(k, 8 if k == "activation_bits" and rec.get("benchmark") == "inference" else None)
                 for k in KEY)


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """Old records not replaced by a new one (same KEY), then the new ones; order kept."""
    fresh = {record_key(r) for r in new}
    if any(r.get("case") == "sparse_sweep" for r in new):   # a new sparse sweep replaces the whole old one
        old = [r for r in old if r.get("case") != "sparse_sweep" and r.get("benchmark") != "sparse_crossover"]
    return [r for r in old if record_key(r) not in fresh] + list(new)


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e}); move it away to start afresh") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of records")
    return data


# --------------------------------------------------------------------------- modules

def run_host(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import host  # lazy: heavy dependency, loaded only when this runs

    return host.run(quick=quick, run_dir=run_dir)


def load_firmware_bench():
    """firmware/bench.py as a module, or None (not there / no main)."""
    path = ROOT / "firmware" / "bench.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("firmware_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod if callable(getattr(mod, "main", None)) else None


def run_firmware(quick: bool, run_dir: Path | None) -> list[dict]:
    mod = load_firmware_bench()
    if mod is None:
        print("bench: firmware/bench.py not found or has no main(); skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "fw.json"
        argv = ["--out", str(out)]
        if quick:
            argv += ["--boards", "mps2-an386", "--models", "ffnn_int4"]
        rc = mod.main(argv)
        if rc not in (0, None) or not out.exists():
            raise RuntimeError(f"firmware/bench.py exited with {rc}")
        recs = json.loads(out.read_text())
    cmd = "python firmware/bench.py" + (" --boards mps2-an386 --models ffnn_int4" if quick else "")
    for r in recs:
        r.setdefault("command", cmd)
    return recs


def run_kernels(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import kernels  # lazy: heavy dependency, loaded only when this runs

    return kernels.run(quick)


def run_streaming(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import streaming  # lazy: heavy dependency, loaded only when this runs

    return streaming.run(quick)


def run_boards(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import boards  # lazy: heavy dependency, loaded only when this runs

    return boards.run(quick)


def run_sparse(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import sparse  # lazy: heavy dependency, loaded only when this runs

    recs = sparse.run(quick)
    if recs:
        sparse.plot(recs, ROOT / "bench" / "sparse_density.png")
    return recs


def run_a4(quick: bool, run_dir: Path | None) -> list[dict]:

    return a4.run(quick)


def run_fuzz(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import fuzz  # lazy: heavy dependency, loaded only when this runs

    return fuzz.run(quick)


def run_distributed(quick: bool, run_dir: Path | None) -> list[dict]:

    return distributed.run(quick)


MODULES = {"host": run_host, "firmware": run_firmware, "kernels": run_kernels, "streaming": run_streaming,
           "boards": run_boards, "sparse": run_sparse, "fuzz": run_fuzz, "a4": run_a4, "distributed": run_distributed}
# need QEMU (fuzz: minutes of libFuzzer); skipped by --quick
EMULATED = ("firmware", "kernels", "streaming", "boards", "sparse", "fuzz", "a4")


# --------------------------------------------------------------------------- markdown

def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, list):  # per-layer storage: "custom/4 x4, int8"
        out, prev, n = [], None, 0
        for x in v + [None]:
            if x == prev:
                n += 1
                continue
            if prev is not None:
                out.append(f"{prev} x{n}" if n > 1 else str(prev))
            prev, n = x, 1
        return ", ".join(out)
    return str(v)


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> list[str]:
    out = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for _, k in cols) + " |")
    return out


def _machines(rows: list[dict]) -> list[str]:
    seen, out = set(), []
    for r in rows:
        m = r.get("machine")
        if not m:
            continue
        s = json.dumps(m, sort_keys=True)
        if s in seen:
            continue
        seen.add(s)
        out.append(f"- machine: {m.get('cpu')}, {m.get('cores')} cores, load average {m.get('load_avg_1_5_15')} "
                   f"when measured; Python {m.get('python')}, numpy {m.get('numpy')}, TensorFlow {m.get('tensorflow')}")
    return out


def _commands(rows: list[dict]) -> list[str]:
    cmds = sorted({r.get("command") for r in rows if r.get("command")})
    dates = sorted({r.get("date", "")[:10] for r in rows if r.get("date")})
    out = [f"- command: `{c}`" for c in cmds]
    if dates:
        out.append(f"- measured: {', '.join(dates)}")
    return out


SECTIONS = [
    ("host_stream_eval", "Host: streaming evaluation speed",
     "FFNN scored over synthetic streaming audio (one window per 10 ms hop; FFNN-250K: 24 frames x 64 bins, "
     "1536-128x4-3) by "
     "`tflm_port.reference.Reference.posteriors` (batched; quantize + integer model + dequantize + softmax) vs "
     "`tf.lite.Interpreter` (builtin kernels, no XNNPACK) invoked frame by frame in the same run. "
     "x real time = inferences per second x 10 ms; \"from frames\" = `posteriors_from_frames` (quantizes each "
     "feature frame once instead of in each of the 24 windows that contain it). The tf.lite outputs of the timed frames are compared "
     "with the reference in `rounding=\"tflite\"` mode (differing bytes column; 0 = bit-exact). "
     "Feature extraction is not included.",
     [("model", "model"), ("weight bits", "weight_bits"), ("x real time", "x_realtime"),
      ("inferences/s", "inferences_per_s"), ("x real time from frames", "x_realtime_from_frames"),
      ("int8 run only, inf/s", "inferences_per_s_run_only"),
      ("tf.lite per frame, inf/s", "tflite_per_frame_inferences_per_s"),
      ("speedup vs tf.lite per frame", "speedup_vs_tflite_per_frame"), ("frames", "frames"),
      ("differing bytes vs tf.lite", "tflite_bytes_differing_vs_reference_tflite_mode")]),
    ("model_size", "Model size per weight bit width",
     "Random-weight QAT FFNN (build_ffnn -> make_qat_model stage 2 -> to_tflite -> tflm_port.convert). "
     "`auto` mode: INT8 for 8 bits, INT4 for 2-4 bits (runs on tf.lite / TFLM), SUB8_FULLY_CONNECTED for "
     "1/5/6/7 bits; `dense` mode packs every layer at its own bit width. Float = the float32 TFLite model "
     "of the same network. Weights/biases/graph split the auto-mode file; graph = flatbuffer structure, "
     "quantization parameters and metadata. Arena = activation-arena estimate (largest input + output "
     "of one operator, 16-byte aligned; no scratch buffers).",
     [("model", "model"), ("weight bits", "weight_bits"), ("bytes (auto)", "model_bytes"),
      ("ratio to float", "ratio_to_float"), ("bytes (dense)", "dense_model_bytes"),
      ("dense ratio", "dense_ratio_to_float"), ("float bytes", "float_model_bytes"),
      ("weights", "weights_bytes"), ("biases", "biases_bytes"), ("graph", "graph_bytes"),
      ("arena est.", "arena_estimate_bytes")]),
    ("inference", "Firmware: per-inference figures (QEMU)",
     "From `firmware/bench.py`. **Instruction counts under QEMU `-icount`, not cycles**: QEMU counts "
     "instructions retired; real cores take a different number of cycles (pipeline, memory wait states). "
     "AArch64 counts come from bare-metal builds (qemu-system-aarch64 -M virt, PMU INST_RETIRED). "
     "Two FFNN-250K workloads appear: rows with 246,144 MACs are the converted 3-class wake-word model run "
     "through the runtime (`firmware/bench.py`, `kws_runner`); rows with 247,296 MACs are the 12-class "
     "workload of the CMSIS-NN anchors run by the kernel bench (`bench/kernels.py`, `kws_kbench`). "
     "Storage says which weight layout the kernel read (docs/formats.md). Kernel-bench rows compare with our "
     "float32 kernel measured in the same run; float rows give the float floor (what any float kernel must "
     "execute on that core: M4/M7 one scalar VFMA per MAC, M55 VLDRW + VFMA per 4 MACs, AArch64 FMLA per 4 MACs "
     "+ LD1 per 16 weights) and how far the kernel is from it.",
     [("board", "board"), ("model", "model"), ("weight bits", "weight_bits"), ("kernel", "kernel"),
      ("storage (layout)", "storage"),
      ("instructions", "instructions"), ("reference instr.", "reference_instructions"),
      ("speedup", "speedup_vs_reference"), ("instructions/MAC", "instructions_per_mac"), ("MACs", "macs"),
      ("float32 instr. (same run)", "float_instructions"), ("less CPU than float", "less_cpu_than_float"),
      ("float floor", "floor_instructions"), ("x floor", "vs_floor"),
      ("CMSIS-NN anchor", "cmsis_nn_instructions"), ("ggml anchor", "ggml_instructions"),
      ("flash bytes", "flash_bytes"), ("RAM bytes", "ram_bytes"), ("model bytes", "model_bytes"),
       ("flash limit", "flash_limit_bytes"), ("RAM limit", "ram_limit_bytes")]),
    ("streaming_loop", "Firmware: the whole streaming loop per 10 ms hop (QEMU)",
     "From `bench/streaming.py`: audio in, LFBE front end, model, detection, on each board. **Instruction "
     "counts, not cycles.** The real-time margin for a 100 MHz core is an estimate that assumes one "
     "instruction per cycle. RAM = static + arena + measured stack high-water mark.",
     [("board", "board"), ("model", "model"), ("weight bits", "weight_bits"), ("kernel", "kernel"),
      ("front end / hop", "frontend_instructions_per_hop"), ("total / hop", "total_instructions_per_hop"),
      ("margin @100 MHz (est.)", "realtime_margin_100mhz_estimate"), ("RAM bytes", "ram_bytes"),
      ("flash bytes", "flash_bytes"), ("flash limit", "flash_limit_bytes"), ("RAM limit", "ram_limit_bytes")]),
    ("distributed", "Distributed training: examples per second, 1 vs 2 local workers",
     "From `bench/distributed.py`: the default FFNN (batch 256, global) trained through `training.cluster` "
     "(MultiWorkerMirroredStrategy, input from the feature store sharded by file) with 1 and 2 workers on this "
     "machine; examples/s = global windows per second of the training part of an epoch, median of the epochs after "
     "the first. **Both workers share the same cores: the ratio shows the overhead of the second process and the "
     "all-reduce, not a speed-up.**",
     [("workers", "workers"), ("examples/s", "examples_per_s"), ("per worker", "examples_per_s_per_worker"),
      ("ratio to 1 worker", "ratio_to_1_worker"), ("cores", "cores"), ("model", "model"), ("batch", "batch")]),
    ("feature_store", "Feature store: build time per hour of audio",
     "From `bench/distributed.py`: `feature_store.ensure_store` on generated 1 s recordings (default features, "
     "one augmented copy per training clip), train + val splits, one process per core. Audio hours = clip audio "
     "before copies.",
     [("s / audio hour", "seconds_per_audio_hour"), ("build s", "build_seconds"), ("audio h", "audio_hours"),
      ("windows", "windows"), ("windows / audio h", "windows_per_audio_hour"), ("bytes / window", "bytes_per_window"),
      ("store bytes", "store_bytes"), ("processes", "processes")]),
    ("fuzz", "Fuzzing: hostile inputs",
     "`python -m bench.fuzz` (bench/fuzz.py). C: libFuzzer over `firmware/fuzz/fuzz_model.c` (model init, "
     "every op's prepare, invoke, the front end's config from the metadata and a few hops of audio; clang "
     "-fsanitize=fuzzer,address,undefined,float-cast-overflow), starting from the committed seeds in "
     "`firmware/fuzz/seeds`; a crash is any sanitizer report, leak, timeout or out-of-memory. edges = libFuzzer's "
     "final coverage counter. Python: hypothesis examples per reader (damaged seed models / WAV); a crash is "
     "anything but a result or one `UserError` line. Line coverage of the C corpus per file below.",
     [("harness", "harness"), ("tool", "tool"), ("executions", "executions"), ("crashes", "crashes"),
      ("seconds", "seconds"), ("edges", "edges"), ("first crash", "first_crash")]),
]


def _coverage(rows: list[dict]) -> list[str]:
    """Per-file line coverage tables of the records that have one (fuzz)."""
    out = []
    for r in rows:
        cov = r.get("line_coverage")
        if not isinstance(cov, dict) or not cov:
            continue
        out += [f"Line coverage of `{r.get('harness')}` ({_fmt(r.get('executions'))} executions):", "",
                "| file | lines | covered | % |", "|---|---|---|---|"]
        out += [f"| {f} | {_fmt(c.get('lines'))} | {_fmt(c.get('covered'))} | {_fmt(c.get('percent'))} |"
                for f, c in cov.items()]
        out.append("")
    return out


def render(records: list[dict]) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python -m bench.run` (`make bench`) from `bench/results.json`; do not edit by hand.",
             ""]
    known = {s[0] for s in SECTIONS}
    for kind, title, text, cols in SECTIONS:
        rows = [r for r in records if r.get("benchmark") == kind and r.get("case") != "sparse_sweep"]
        if not rows:
            continue
        rows.sort(key=lambda r: (str(r.get("board")), str(r.get("model")), -(r.get("weight_bits") or 0)))
        lines += [f"## {title}", "", text, ""] + _commands(rows) + _machines(rows) + [""] + _table(rows, cols) + [""]
        lines += _coverage(rows)
    sweep = [r for r in records if r.get("case") == "sparse_sweep"]
    if sweep:   # bench/sparse.py: its own table (benchmark "inference" records with density / sparsity_kind)
        sweep.sort(key=lambda r: (str(r.get("board")), -(r.get("weight_bits") or 0), str(r.get("sparsity_kind")),
                                  -(r.get("density") or 0)))
        lines += ["## Firmware: sparse vs dense k-bit FFNN-250K (QEMU)", "",
                  "From `bench/sparse.py`: one kws_invoke through the runtime, random weights magnitude-pruned to each "
                  "density. **Instruction counts, not cycles.** CMSIS-NN figures are the anchors of ANCHORS.md "
                  "(not built in this run: no CMSIS-NN sources here).", ""] + _commands(sweep) + [""]
        lines += _table(sweep, [("board", "board"), ("bits", "weight_bits"), ("kind", "sparsity_kind"),
                                ("format", "sparse_format"), ("density", "density"), ("kernel", "kernel"),
                                ("instructions", "instructions"), ("vs dense", "vs_dense"),
                                ("weight bytes", "weight_bytes"), ("model bytes", "model_bytes")]) + [""]
    charts = sorted((ROOT / "bench" / "charts").glob("*.png"))
    if charts:
        lines += ["## Charts: instructions per inference against weight bits", "",
                  "Written by `bench/charts.py` from these records (`python -m bench.kernels --merge`): our "
                  "optimized kernels per bit width (kernel bench and through the runtime) with the CMSIS-NN / "
                  "ggml anchors and our float32 kernel as horizontal lines. Instructions under QEMU, not cycles.",
                  ""] + [f"![{p.stem}](bench/charts/{p.name})" for p in charts] + [""]
    other = sorted({r.get("benchmark") for r in records} - known, key=str)
    for kind in other:
        rows = [r for r in records if r.get("benchmark") == kind]
        cols = [(k, k) for k in rows[0] if k not in ("machine", "command", "date", "note")]
        lines += [f"## {kind}", ""] + _commands(rows) + [""] + _table(rows, cols) + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny models, short audio, no firmware")
    ap.add_argument("--run-dir", type=Path, help="a trained run directory (uses its model.tflite for the stream benchmark)")
    ap.add_argument("--only", nargs="*", choices=list(MODULES), help="benchmark modules to run (default: all)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results JSON (default bench/results.json)")
    ap.add_argument("--markdown", type=Path, default=MARKDOWN, help="markdown report (default BENCHMARKS.md)")
    a = ap.parse_args(argv)
    if a.run_dir is not None and not (a.run_dir / "model.tflite").is_file():
        raise UserError(f"{a.run_dir}: no model.tflite (not a finished QAT run directory)")
    mods = a.only if a.only else [m for m in MODULES if not (a.quick and m in EMULATED)]
    old = load_results(a.results)  # fail early on a broken results file
    cmd = "python -m bench.run" + (" --quick" if a.quick else "") + (f" --run-dir {a.run_dir}" if a.run_dir else "")
    from bench.host import machine  # lazy: heavy dependency, loaded only when this runs

    mach = machine()
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    new, failed = [], []
    for name in mods:
        try:
            recs = MODULES[name](a.quick, a.run_dir)
        except Exception as e:  # one broken module must not lose the others' records
            traceback.print_exc()
            print(f"bench: module '{name}' failed: {e}", file=sys.stderr)
            failed.append(name)
            continue
        for r in recs:
            r.setdefault("command", cmd)
            r.setdefault("machine", mach)
            r.setdefault("date", now)
            print(json.dumps({k: v for k, v in r.items() if k != "machine"}))
        new += recs
    merged = merge(load_results(a.results), new)
    atomic_write_text(a.results, json.dumps(merged, indent=1) + "\n")
    atomic_write_text(a.markdown, render(merged))
    print(f"bench: {len(new)} records ({len(merged)} in {a.results}); {a.markdown} regenerated")
    return 1 if failed else 0


if __name__ == "__main__":
    main()
