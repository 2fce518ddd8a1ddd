"""Real-MCU figures: the self-contained UART images on the STM32F405 (QEMU ``netduinoplus2``).

For the images a user flashes (firmware/boards.mk; tflm_port.flash), measured under
``qemu-system-arm -M netduinoplus2 -icount shift=0`` (SysTick ticks x 1e9 / 168 MHz: instructions
retired, not cycles; QEMU has no DWT cycle counter), with flash and RAM against the part's limits
(1 MB flash, 192 KB RAM of which the images use the 128 KB SRAM; the 64 KB CCM is left free because
QEMU 7.2 does not model it):

* ``inference``: kws_selftest over 8 inputs of the calibrated distribution (as firmware/bench.py),
  FFNN-250K from the QAT path converted with ``--target netduinoplus2`` (M4 DSP kernels, 4-bit =
  SUB8 layout 2); outputs checked against tflm_port.reference (the image prints PASS 8/8).
* ``streaming_loop``: kws_stream over 10 s of synthetic speech-like audio linked into flash
  (bench.host.synth_stream, as bench/streaming.py), per 10 ms hop.

flash_bytes = the image's flash (code, runtime, kernels, model, startup, libc parts) without the
linked test vectors / audio (a product reads a microphone; ``data_bytes`` says how much they took);
ram_bytes = .data + .bss + arena used + stack high-water mark. ``image_flash_bytes`` /
``image_ram_bytes``: the whole linked image and all its static RAM reservations (arena buffer and
stack region included), the figures the linker checks against the regions.

CLI: ``python -m bench.boards [--quick]``; registered in bench/run.py as module "boards".
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from basics.audio import save_wav
from bench.records import load_firmware_bench
from tflm_port import flash
from tflm_port.convert import convert, retarget
from tflm_port.export import pack_test_vectors
from tflm_port.reference import Reference
from tflm_port.tflite_io import get_metadata, load_model

ROOT = Path(__file__).resolve().parents[1]
BOARD = "netduinoplus2"
NOTE = ("qemu-system-arm -M netduinoplus2 -icount shift=0: SysTick ticks x 1e9 / 168 MHz = instructions, not cycles; "
        "self-contained UART image (no semihosting)")


def _blob_bytes(elf: Path) -> int:
    """Bytes of the linked data file (test vectors or audio): kws_blob_data .. kws_blob_data_end."""
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    sym = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (kws_blob_data(?:_end)?)$", out, re.M)}
    return sym["kws_blob_data_end"] - sym["kws_blob_data"]


def _static_ram(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {p[0]: int(p[1]) for p in (ln.split() for ln in out.splitlines()) if len(p) >= 2 and p[1].isdigit()}
    return sizes.get(".data", 0) + sizes.get(".bss", 0)


def _memory(elf: Path, summary: dict) -> dict:
    mem = flash.image_memory(elf, BOARD)
    data = _blob_bytes(elf)
    static = _static_ram(elf)
    return {"flash_bytes": mem["flash_bytes"] - data, "ram_bytes": static + summary["arena"] + summary["stack"],
            "flash_limit_bytes": mem["flash_limit_bytes"], "ram_limit_bytes": mem["ram_limit_bytes"],
            "sram_limit_bytes": mem["ram_region_bytes"], "image_flash_bytes": mem["flash_bytes"],
            "image_ram_bytes": mem["ram_bytes"], "data_bytes": data, "static_ram_bytes": static,
            "arena_bytes": summary["arena"], "stack_bytes": summary["stack"], "model_bytes": summary["model"]}


def inference_records(td: Path, bits_list) -> list[dict]:
    sys.path.insert(0, str(ROOT / "firmware" / "tools"))
    import fwtestdata  # lazy: heavy dependency, loaded only when this runs

    from bench.testmodels import cached_qat_ffnn  # lazy: heavy dependency, loaded only when this runs
    from training import qat  # lazy: heavy dependency, loaded only when this runs

    macs = load_firmware_bench().model_macs
    recs = []
    for bits in bits_list:
        q, tfl, _ = cached_qat_ffnn(bits)
        lb = qat.layer_bits(q)
        generic = convert(tfl, lb, target="generic")
        model = convert(tfl, lb, target=BOARD)
        x = np.ascontiguousarray(fwtestdata.make_inputs(generic, 208)[200:208], np.int8)
        ref = Reference.from_bytes(model)
        y = ref.run(x.reshape((len(x),) + tuple(ref.input_shape))).reshape(len(x), -1)
        mp, vp = td / f"ffnn_{bits}.tflite", td / f"ffnn_{bits}.sktv"
        mp.write_bytes(model)
        vp.write_bytes(pack_test_vectors(x.reshape(len(x), -1), y, ref.input_quant, ref.output_quant))
        elf = flash.build_image(BOARD, mp, vp, td / f"inf{bits}", "selftest", quiet=True)
        res = flash.parse_console(flash.run_qemu(BOARD, elf))
        s = res["summary"]
        if res["verdict"] != ("PASS", len(x), len(x)):
            raise RuntimeError(f"{BOARD} self-test {bits}-bit: {res['verdict']} {s}")

        rec = {"benchmark": "inference", "board": BOARD, "core": "Cortex-M4F (STM32F405)", "model": "ffnn250k",
               "weight_bits": bits, "kernel": s["kernel"], "instructions": s["mean"], "macs": macs(model),
               "instructions_per_mac": round(s["mean"] / macs(model), 2), "optimized_ops": s["opt_ops"],
               "storage": (get_metadata(load_model(model)) or {}).get("layer_storage"),
               "outputs_checked": f"PASS {len(x)}/{len(x)} vs tflm_port.reference",
               "case": f"qat_ffnn({bits}) -> convert --target {BOARD}", "instructions_note": NOTE}
        rec.update(_memory(elf, s))
        recs.append(rec)
        print(json.dumps(rec))
    return recs


def streaming_records(td: Path, models, seconds: float) -> list[dict]:
    from bench.host import synth_stream  # lazy: heavy dependency, loaded only when this runs
    from bench.streaming import BUDGET_100MHZ, demo_model  # lazy: heavy dependency, loaded only when this runs

    audio = synth_stream(seconds, seed=3)
    wav = td / "audio.wav"
    save_wav(wav, audio)
    recs = []
    for name, bits, layers, units in models:
        mp = td / f"{name}-{bits}.tflite"
        mp.write_bytes(retarget(demo_model(audio, bits, layers, units), BOARD))
        elf = flash.build_image(BOARD, mp, wav, td / f"stream{bits}", "stream", threshold=1.0, quiet=True)
        res = flash.parse_console(flash.run_qemu(BOARD, elf))
        s = res["summary"]
        if res["exit"] != 0 or s.get("status") != 0:
            raise RuntimeError(f"{BOARD} stream {name} {bits}-bit failed: {s}")
        hops, dec = s["hops"], s["decisions"]
        fe = s["fe_instr"] / hops
        total = (s["loop_instr"] - fe * (hops - dec)) / max(1, dec)
        rec = {"benchmark": "streaming_loop", "board": BOARD, "core": "Cortex-M4F (STM32F405)", "model": name,
               "weight_bits": bits, "kernel": "dsp", "frontend_instructions_per_hop": int(round(fe)),
               "total_instructions_per_hop": int(round(total)), "loop_max_instructions": s["loop_max"],
               "frontend_max_instructions": s["fe_max"], "hops": hops, "audio_s": seconds,
               "realtime_margin_100mhz_estimate": round(1.0 - total / BUDGET_100MHZ, 3),
               "realtime_margin_168mhz_estimate": round(1.0 - total / 1_680_000, 3),
               "note": NOTE + "; margins = estimates at 1 instruction/cycle"}
        rec.update(_memory(elf, s))
        recs.append(rec)
        print(json.dumps(rec))
    return recs


def run(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench_boards_") as td:
        td = Path(td)
        if quick:
            return inference_records(td, (4,)) + streaming_records(td, [("ffnn-2x64", 8, 2, 64)], 3.0)
        return (inference_records(td, (8, 4)) +
                streaming_records(td, [("ffnn-250k", 4, 4, 128), ("ffnn-250k", 8, 4, 128)], 10.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.boards", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    run(a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
