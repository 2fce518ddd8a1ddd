"""Deploy a trained run on an emulated board: model + audio in, detections out.

    python -m tflm_port.deploy RUN_DIR --board mps2-an386 --audio file.wav [--threshold T] [--check]
    make deploy RUN=runs/x BOARD=mps2-an386 AUDIO=file.wav [THRESHOLD=0.6]

RUN_DIR must be a quantized (QAT) run: it holds ``model.tflite`` with the "subkws" metadata
(labels, feature normalization). The firmware image ``firmware/build/<board>/kws_stream.elf`` is
built (make), and runs under QEMU (``-icount shift=0``: instruction counts are exact) with the
model and the audio read from the host by semihosting; it prints one line per detection (time,
keyword, smoothed score) and per-hop instruction counts. The audio must be WAV, 16 kHz, mono,
16-bit PCM: anything else is refused with one line before the firmware runs.

The firmware gets the run's model re-stored for the board's optimized kernels
(``tflm_port.convert.retarget``: SUB8 layout 2 on the Cortex-M4/M7 DSP kernels, layout 6 (rows_per_byte, 1/2/4 bits),
layout 3 (3 bits) or INT8 on the M55 Helium kernels; same integer weights, scales and biases, so the same
outputs); ``model.tflite``
in the run stays as it is for the Python pipeline (tflm_port.reference runs every layout).
``--no-retarget`` runs model.tflite unchanged.

``--check`` also runs the Python pipeline on the same audio (training/pipeline.py: training/frontend_mirror.py features,
tflm_port.reference, training.scoring's smoothing and detection rule) and says whether the
detections are identical.

Defaults: threshold = the run's threshold at 1 false accept/hour (report.json), smoothing and
refractory period from the run's config (eval.smoothing_frames, eval.refractory_s).
"""
# The deploy command sits at the top of the layers (docs/architecture.md): it puts the firmware runner
# (tflm_port.firmware_runner) beside the Python pipeline (training.pipeline) it is checked against.
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from basics.audio import load_audio
from basics.classes import KEYWORD_CLASS
from basics.errors import UserError, cli_main
from tflm_port.convert import retarget
from tflm_port.firmware_runner import (BOARDS, check_wav, decimal_arg, deployable_model, model_metadata, run_stream,
                                       same_detections, threshold_arg)
from tflm_port.tflite_io import get_metadata, load_model
from training.config import Config
from training.features import params_from_metadata
from training.pipeline import python_detections


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tflm_port.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a quantized run directory (holds model.tflite), or a shipped model "
                    "(models/<name>.tflite with its manifest <name>.json beside it)")
    ap.add_argument("--board", required=True, choices=BOARDS)
    ap.add_argument("--audio", required=True, type=Path, help="WAV, 16 kHz, mono, 16-bit PCM")
    ap.add_argument("--threshold", type=float, help="detection threshold (default: the run's at 1 FA/h)")
    ap.add_argument("--check", action="store_true", help="also run the Python pipeline and compare detections")
    ap.add_argument("--no-retarget", action="store_true",
                    help="run model.tflite as it is (default: re-store it for the board's optimized kernels)")
    a = ap.parse_args(argv)
    model_path, cfg, report = deployable_model(a.run_dir)
    check_wav(a.audio)
    md = model_metadata(model_path.read_bytes(), str(model_path))
    th = a.threshold
    if th is None:
        stream = report.get("stream")
        th = stream.get("threshold_at_1fah") if isinstance(stream, dict) else None
        if th is None:
            raise UserError(f"{a.run_dir}: no threshold in its report.json or manifest; give --threshold")
        if isinstance(th, bool) or not isinstance(th, (int, float)):
            raise UserError(f"{a.run_dir}: its stream.threshold_at_1fah / thresholds.fa_per_hour_1 is not a number ({th!r})")
    th = float(threshold_arg(float(th)))
    ev = Config.from_dict(cfg, str(a.run_dir / "config.json")).eval if cfg else Config().eval
    smoothing, refractory = int(ev.smoothing_frames), float(decimal_arg(float(ev.refractory_s)))
    label = (md.get("labels") or ["", "", "keyword"])[KEYWORD_CLASS]
    print(f"deploy: {model_path} ({model_path.stat().st_size} bytes, keyword {label!r}) on {a.board}, "
          f"audio {a.audio}, threshold {th:g}, smoothing {smoothing} frames, refractory {refractory:g} s")
    with tempfile.TemporaryDirectory(prefix="kws_deploy_") as td:
        fw_model = model_path
        if not a.no_retarget:
            data = retarget(model_path.read_bytes(), a.board, str(model_path))
            fw_model = Path(td) / "model.tflite"
            fw_model.write_bytes(data)
            st = (get_metadata(load_model(data)) or {}).get("layer_storage", [])
            print(f"firmware model: re-stored for {a.board} ({', '.join(st)}; {len(data)} bytes)")
        res = run_stream(a.board, fw_model, a.audio, th, smoothing, refractory)
    if res.returncode != 0 or not res.summary:
        lines = [ln for ln in res.text.strip().splitlines() if ln.strip()]
        raise UserError(f"firmware on {a.board} failed (exit {res.returncode}): {lines[-1] if lines else 'no output'}")
    s = res.summary
    p, _, _ = params_from_metadata(md["features"], str(model_path))
    print(f"{'time_s':>9}  {'keyword':<12} score")
    for d in res.detections:
        print(f"{d['time_s']:9.3f}  {d['keyword']:<12} {d['score']:.6f}")
    hops = max(1, s["hops"])
    print(f"{len(res.detections)} detection(s) in {s['hops'] * p.hop_samples / p.sample_rate:.2f} s of audio; per 10 ms hop: "
          f"front end {s['fe_instr'] / hops:,.0f} instructions, whole loop {s['loop_instr'] / hops:,.0f} "
          f"(max {s['loop_max']:,}); arena {s['arena']} B, stack {s['stack']} B (QEMU -icount instruction counts)")
    if a.check:
        py = python_detections(model_path.read_bytes(), load_audio(a.audio), th, smoothing, refractory)
        same = same_detections(res.detections, py["detections"])
        print(f"python pipeline: {len(py['detections'])} detection(s), "
              f"{'identical to the firmware' if same else 'DIFFERENT from the firmware'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    cli_main(main)()
