"""The benchmark records: ``bench/results.json`` (a JSON list), how a new record replaces an old one
(``merge``: same benchmark, model, weight_bits, board, kernel, ...), and ``BENCHMARKS.md`` rendered from
them. The bottom of bench/: every benchmark module that writes or reads records imports this module,
and ``bench.run`` (the aggregator on top) imports the benchmark modules, so no two import each other.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
MARKDOWN = ROOT / "BENCHMARKS.md"
# "macs" tells apart the two FFNN-250K workloads: the converted 3-class model run by the runtime
# (246,144 MACs) and the 12-class anchor workload of shared/ANCHORS.md run by the kernel bench (247,296)
KEY = ("benchmark", "model", "weight_bits", "board", "kernel", "macs", "density", "sparsity_kind", "sparse_format",
       "activation_bits", "workers", "shape")


def record_key(rec: dict) -> tuple:
    # activation_bits: 8 when absent (every record written before 4-bit activations)
    return tuple(rec.get(k, 8 if k == "activation_bits" and rec.get("benchmark") == "inference" else None)
                 for k in KEY)


def normalize(rec: dict) -> dict:
    """Fields every record of its kind carries (issue 12): an ``inference`` record says its activation bits
    (8 where the writer predates 4-bit activations, as ``record_key`` reads it)."""
    if rec.get("benchmark") == "inference":
        rec.setdefault("activation_bits", 8)
    return rec


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """Old records not replaced by a new one (same KEY), then the new ones; order kept; every record
    ``normalize``d (the writers all merge through here)."""
    old, new = [normalize(r) for r in old], [normalize(r) for r in new]
    fresh = {record_key(r) for r in new}
    swept = {r["board"] for r in new if r.get("case") == "sparse_sweep"}
    if swept:   # a new sparse sweep replaces the old one on the boards it measured (bench.sparse --boards)
        old = [r for r in old if not ((r.get("case") == "sparse_sweep" or r.get("benchmark") == "sparse_crossover")
                                      and r.get("board") in swept)]
    return [r for r in old if record_key(r) not in fresh] + list(new)



def merge_results(new: list[dict], markdown: bool = True) -> list[dict]:
    """Merge ``new`` into bench/results.json (``merge``), write it atomically and, unless ``markdown`` is
    False, regenerate BENCHMARKS.md from it; the merged records."""
    merged = merge(load_results(RESULTS), new)
    atomic_write_text(RESULTS, json.dumps(merged, indent=1) + "\n")
    if markdown:
        atomic_write_text(MARKDOWN, render(merged))
    return merged

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


def load_firmware_bench():
    """firmware/bench.py as a module, or None (not there / no main)."""
    path = ROOT / "firmware" / "bench.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("firmware_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod if callable(getattr(mod, "main", None)) else None


# --------------------------------------------------------------------------- markdown

def lstm_hop_record(row: dict, weight_bits: int, activation_bits: int, kernel: str, workload: str,
                    command: str) -> dict:
    """An ``inference`` record of one streaming-LSTM firmware run (a row of bench/lstm_fw.py or
    bench/lstm_a4_fw.py: per-hop instructions of one board and image): MACs per hop from ``lstm_shape``
    (the LSTM layers' input and recurrent products of four gates, and the Dense)."""
    s = row["lstm_shape"]
    macs = sum(4 * s["units"] * ((s["input_bins"] if i == 0 else s["units"]) + s["units"])
               for i in range(s["layers"])) + s["units"] * s["dense_outputs"]
    return {"benchmark": "inference", "board": row["board"], "core": row["core"], "model": "lstm", "lstm_shape": s,
            "weight_bits": weight_bits, "activation_bits": activation_bits, "kernel": kernel, "image": row["image"],
            "fc_kernel": row["kernel"], "instructions": row["instructions_per_hop"],
            "instructions_first_hop": row["instructions_first_hop"], "macs": macs,
            "instructions_per_mac": round(row["instructions_per_hop"] / macs, 4), "arena_bytes": row["arena_bytes"],
            "model_bytes": row["model_bytes"], "ok": int(row["byte_exact"]),
            "instructions_note": "qemu -icount shift=0, mean per hop over the run: instructions, not cycles",
            "workload": workload, "command": command}


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
    ("host_audio_eval", "Host: audio to posteriors, features included",
     "The whole false-accept evaluation path over synthetic streaming audio: `training.features.lfbe` "
     "(FFT blocks on 2 threads) -> normalization -> `Reference.posteriors_from_frames` (2 threads), all timed. "
     "x real time per CPU second = audio seconds per second of process CPU time, all threads summed (one "
     "core's rate, robust to the shared machine's load); 2 cores = twice that; wall = best of 5 wall times "
     "under the load average shown below. Output checked equal, byte for byte, to the single-thread path.",
     [("model", "model"), ("weight bits", "weight_bits"), ("audio s", "audio_seconds"),
      ("x real time per CPU second", "x_realtime_per_cpu_second"),
      ("x real time, 2 cores (from CPU time)", "x_realtime_2_cores_from_cpu"),
      ("x real time, wall", "x_realtime_wall"), ("features share of CPU", "features_share_of_cpu"),
      ("threads = 1 thread bytes", "threads_output_equals_single_thread")]),
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
    ("compression", "Compression of trained models against float32",
     "From `bench/compression.py`: deployable .tflite files of trained runs (the variant: weight and "
     "activation bits) against the float32 .tflite of the same network; file bytes and constant-tensor bytes "
     "(weights, biases, thresholds). IBM's 4-bit LSTM figure (7.6x) counts weights.",
     [("model", "model"), ("shape", "shape"), ("weight bits", "weight_bits"), ("activation bits", "activation_bits"),
      ("bytes", "model_bytes"), ("float bytes", "float_model_bytes"), ("x smaller", "compression"),
      ("constant bytes", "constant_bytes"), ("float constant bytes", "float_constant_bytes"),
      ("constants x smaller", "constant_compression")]),
    ("inference", "Firmware: per-inference figures (QEMU)",
     "From `firmware/bench.py`. **Instruction counts under QEMU `-icount`, not cycles**: QEMU counts "
     "instructions retired; real cores take a different number of cycles (pipeline, memory wait states). "
     "AArch64 counts come from bare-metal builds (qemu-system-aarch64 -M virt, PMU INST_RETIRED). "
     "Two FFNN-250K workloads appear: rows with 246,144 MACs are the converted 3-class wake-word model run "
     "through the runtime (`firmware/bench.py`, `kws_runner`); rows with 247,296 MACs are the 12-class "
     "workload of the CMSIS-NN anchors run by the kernel bench (`bench/kernels.py`, `kws_kbench`). "
     "Rows with model `lstm` (`bench/lstm_fw.py`) are instructions per hop (one frame, the state carried) of "
     "the int8 streaming LSTM graph, its shape in `lstm_shape`, kernel `lstm_<family>` or `lstm_reference`. "
     "Storage says which weight layout the kernel read (docs/formats.md). Kernel-bench rows compare with our "
     "float32 kernel measured in the same run; float rows give the float floor (what any float kernel must "
     "execute on that core: M4/M7 one scalar VFMA per MAC, M55 VLDRW + VFMA per 4 MACs, AArch64 FMLA per 4 MACs "
     "+ LD1 per 16 weights) and how far the kernel is from it.",
     [("board", "board"), ("model", "model"), ("weight bits", "weight_bits"),
      ("activation bits", "activation_bits"), ("kernel", "kernel"), ("storage (layout)", "storage"),
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


# ----------------------------------------------------------------------------- generated doc blocks
# Every figure in README.md and docs/ sits in a block ``<!-- name ... -->`` ... ``<!-- /name -->`` that a bench
# module writes from the records; the tests read the block back and compare it with what the records give.
def read_block(text: str, start: str, end: str) -> str | None:
    """The body between the ``start`` and ``end`` markers, without its surrounding newlines (None: no block)."""
    i, j = text.find(start), text.find(end)
    return None if i < 0 or j < i else text[i + len(start):j].strip("\n")


def replace_block(text: str, start: str, end: str, body: str, path: Path) -> str:
    """``text`` with the block's body replaced by ``body`` (one UserError line naming ``path`` when there is no block)."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise UserError(f"{path}: no {start} ... {end} block to fill")
    return text[:i + len(start)] + "\n" + body.strip("\n") + "\n" + text[j:]


def write_block(path: Path, start: str, end: str, body: str) -> None:
    """Rewrite one generated block of the file at ``path`` in place (atomically)."""
    path = Path(path)
    atomic_write_text(path, replace_block(path.read_text(), start, end, body, path))
