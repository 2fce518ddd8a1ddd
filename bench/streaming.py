"""Streaming-loop benchmark: the whole on-device loop (firmware/app/kws_stream.c) per board.

For each board and model, kws_stream runs under ``qemu-system-arm -icount shift=0`` over synthetic
speech-like audio (bench.host.synth_stream) and reports, per 10 ms hop:

* ``frontend_instructions_per_hop``: the LFBE front end (window, FFT, mel, log, normalize, quantize);
* ``total_instructions_per_hop``: front end + context window copy + model + posterior + detection,
  averaged over the hops that run the model (steady state);
* ``ram_bytes``: static RAM (.data + .bss of the image: front-end state, detector, audio chunk
  buffer, model struct, board) + the model arena actually used + the stack high-water mark. The
  model itself is counted as flash (on QEMU it is read into a RAM buffer by semihosting; a real
  board keeps it in flash).

These are instruction counts (QEMU counts instructions, not cycles). ``realtime_margin_100mhz`` is
an ESTIMATE for a 100 MHz Cortex-M4-class core assuming one instruction per cycle:
1 - total_instructions_per_hop / 1,000,000 (10 ms at 100 MHz); a negative value means the loop
would not keep up.

Hook into bench/run.py: ``from bench import streaming; records += streaming.run(quick)``.
CLI: ``python -m bench.streaming [--quick]`` prints the records as JSON and a markdown table;
``python -m bench.streaming --write-docs`` rewrites the README's streaming-hop paragraph (the block
between DOC_START and DOC_END) from the records in bench/results.json (tests/test_stream_docs.py
fails when it is stale).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from basics.audio import save_wav
from basics.errors import UserError, cli_main
from bench.host import synth_stream
from bench.records import RESULTS, load_results, read_block, write_block
from tflm_port.convert import convert, retarget
from tflm_port.firmware_runner import FW, run_stream
from training.features import Normalizer, lfbe

from tflm_port import board_table

BOARDS = tuple(board_table.cortex_m())  # the streaming loop runs on the Cortex-M boards
CORE = {b: board_table.BOARDS[b].core for b in BOARDS}
BUDGET_100MHZ = 1_000_000  # instructions in 10 ms at 100 MHz, one instruction per cycle (estimate)
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_START = "<!-- stream-hop: python -m bench.streaming --write-docs -->"
DOC_END = "<!-- /stream-hop -->"


def demo_model(norm_audio: np.ndarray, bits: int = 8, hidden_layers: int = 2, hidden_units: int = 64,
               seed: int = 0) -> bytes:
    """A random-weight QAT FFNN through the real path (build_ffnn -> make_qat_model(stage=2) ->
    to_tflite -> tflm_port.convert) with the deployable metadata; the feature normalization is
    fitted on norm_audio so the int8 inputs use their range."""
    from training import qat  # lazy: heavy dependency, loaded only when this runs
    from bench.testmodels import cached_qat_ffnn  # lazy: heavy dependency, loaded only when this runs

    q, tfl, _ = cached_qat_ffnn(bits, seed=seed, hidden_layers=hidden_layers, hidden_units=hidden_units)
    norm = Normalizer.fit(lfbe(np.asarray(norm_audio, np.float32)))
    meta = {"labels": ["_silence_", "_unknown_", "keyword"],
            "features": {"sample_rate": 16000, "window_ms": 25.0, "hop_ms": 10.0, "num_mel_bins": 64,
                         "context_frames": 24, "context_stride": 3, "lfbe": "training/features.py",
                         "normalization": norm.to_dict()}}
    return convert(tfl, qat.layer_bits(q), mode="auto", metadata=meta)


def static_ram(elf: Path) -> int:
    """.data + .bss bytes of a Cortex-M image (the .bigbss model/arena reservations excluded)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {p[0]: int(p[1]) for p in (ln.split() for ln in out.splitlines()) if len(p) >= 2 and p[1].isdigit()}
    return sizes.get(".data", 0) + sizes.get(".bss", 0)


KERNEL = {b: board_table.BOARDS[b].family for b in BOARDS}


def measure(board: str, model_path: Path, wav: Path, name: str, bits: int) -> dict:
    """kws_stream (optimized kernels linked) on the model re-stored for the board, as deploy does."""
    fw_model = model_path.with_name(f"{model_path.stem}.{board}.tflite")
    fw_model.write_bytes(retarget(model_path.read_bytes(), board))
    r = run_stream(board, fw_model, wav, threshold=1.0, quiet=True)
    s = r.summary
    if r.returncode != 0 or not s:
        raise RuntimeError(f"kws_stream on {board} failed: {r.text[-500:]}")
    hops, dec = s["hops"], s["decisions"]
    fe = s["fe_instr"] / hops
    total = (s["loop_instr"] - fe * (hops - dec)) / max(1, dec)
    static = static_ram(FW / "build" / board / "kws_stream.elf")
    return {"benchmark": "streaming_loop", "board": board, "core": CORE[board], "model": name, "weight_bits": bits,
            "kernel": KERNEL[board],
            "frontend_instructions_per_hop": int(round(fe)), "total_instructions_per_hop": int(round(total)),
            "loop_max_instructions": s["loop_max"], "frontend_max_instructions": s["fe_max"],
            "ram_bytes": static + s["arena"] + s["stack"], "static_ram_bytes": static, "arena_bytes": s["arena"],
            "stack_bytes": s["stack"], "model_bytes": s["model"], "hops": hops,
            "realtime_margin_100mhz_estimate": round(1.0 - total / BUDGET_100MHZ, 3),
            "note": "QEMU -icount instruction counts; margin = estimate at 100 MHz, 1 instruction/cycle"}


def run(quick: bool = False) -> list[dict]:
    seconds = 3.0 if quick else 10.0
    audio = synth_stream(seconds, seed=3)
    if quick:
        models = [("ffnn-2x64", 8, 2, 64)]
        boards = ("mps2-an386",)
    else:
        models = [("ffnn-250k", 8, 4, 128), ("ffnn-250k", 4, 4, 128), ("ffnn-2x64", 8, 2, 64)]
        boards = BOARDS
    recs = []
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as td:
        wav = Path(td) / "audio.wav"
        save_wav(wav, audio)
        for name, bits, layers, units in models:
            mp = Path(td) / f"{name}-{bits}.tflite"
            mp.write_bytes(demo_model(audio, bits, layers, units))
            for b in boards:
                recs.append(measure(b, mp, wav, name, bits))
    return recs


def markdown(recs: list[dict]) -> str:
    lines = ["| board | model | weight bits | kernel | front end instr/hop | loop instr/hop (max) | est. margin @100 MHz | RAM bytes (static + arena + stack) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in recs:
        lines.append(f"| {r['board']} ({r['core']}) | {r['model']} | {r['weight_bits']} | {r.get('kernel', 'reference')} | "
                     f"{r['frontend_instructions_per_hop']:,} | {r['total_instructions_per_hop']:,} "
                     f"({r['loop_max_instructions']:,}) | {100 * r['realtime_margin_100mhz_estimate']:.0f} % | "
                     f"{r['ram_bytes']:,} ({r['static_ram_bytes']:,} + {r['arena_bytes']:,} + {r['stack_bytes']:,}) |")
    return "\n".join(lines)


def _pick(recs: list[dict], board: str) -> dict:
    for r in recs:
        if (r.get("benchmark"), r.get("board"), r.get("model"), r.get("weight_bits")) == ("streaming_loop", board, "ffnn-250k", 4):
            return r
    raise UserError(f"bench/results.json: no streaming_loop record for ffnn-250k 4-bit on {board}; "
                    "run python -m bench.run --only streaming")


def hop_paragraph(recs: list[dict]) -> str:
    """The README's streaming-hop paragraph, from the M4 and M55 FFNN-250K 4-bit streaming_loop records."""
    m4, m55 = _pick(recs, "mps2-an386"), _pick(recs, "mps3-an547")
    return (f"The whole streaming loop (C LFBE front end + FFNN-250K 4-bit + detection) takes "
            f"{m4['total_instructions_per_hop']:,} instructions per 10 ms hop on the M4, of which the front end "
            f"{m4['frontend_instructions_per_hop']:,} (QEMU instruction counts, not cycles; estimated "
            f"{100 * m4['realtime_margin_100mhz_estimate']:.0f} % headroom on a 100 MHz core, assuming one "
            f"instruction per cycle), in {m4['ram_bytes'] / 1000:.1f} KB of RAM ({m4['static_ram_bytes']:,} static + "
            f"{m4['arena_bytes']:,} arena + {m4['stack_bytes']:,} stack bytes); "
            f"{m55['total_instructions_per_hop']:,} instructions per hop on the M55 (front end "
            f"{m55['frontend_instructions_per_hop']:,}). Measured {m4.get('date', '?')[:10]} by "
            f"`{m4.get('command', 'python -m bench.run --only streaming')}` (bench/results.json, benchmark "
            f"\"streaming_loop\"; BENCHMARKS.md has every board and model).")


def doc_block(text: str) -> str | None:
    return read_block(text, DOC_START, DOC_END)


def write_docs(recs: list[dict]) -> None:
    write_block(README, DOC_START, DOC_END, hop_paragraph(recs))


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, help="write the records as a JSON list here")
    ap.add_argument("--write-docs", action="store_true",
                    help="only rewrite the README streaming-hop paragraph from bench/results.json")
    a = ap.parse_args(argv)
    if a.write_docs:
        write_docs(load_results(RESULTS))
        print(f"{README}: streaming-hop paragraph rewritten from {RESULTS}")
        return 0
    recs = run(a.quick)
    print(json.dumps(recs, indent=1))
    print(markdown(recs))
    if a.out:
        a.out.write_text(json.dumps(recs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
