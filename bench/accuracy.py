"""Accuracy of sub-8-bit QAT against float: the table of issue 3 (bench/accuracy.json, README).

    python -m bench.accuracy [--real DIR] [--bits 8,5,4,3,2,1] [--ablations 4,2] [--quick]

Trains (or reuses) the float FFNN and, from it, two-stage tanh QAT at each bit width plus the
ablations (linear weight quantizer; everything quantized at once), each into runs/. Quantized
models are scored as deployed: the converted .tflite through the bit-exact integer reference, on
the same synthetic test clips and 1-hour test stream as the float model. With --real DIR (a folder
laid out like Picovoice's wake-word benchmark: DIR/alexa_dev and negative folders), each model's
recall on the real keyword clips at its own 1 false-accept/hour threshold, and its false accepts
per hour on the real negatives, are added. Writes bench/accuracy.json (one record per row) and
bench/det_bits.png (DET curves of float / 8 / 5 / 4 / 2 / 1 bit).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError, cli_main
from training.evaluate import evaluate_folders, plot_det
from training.runs import load_run

ROOT = Path(__file__).resolve().parent.parent

REAL_POS = ("alexa_dev",)
REAL_NEG = ("computer", "jarvis", "smart_mirror")


def train(args: list[str]) -> None:
    cmd = [sys.executable, str(ROOT / "training" / "train.py"), "--no-progress", *args]
    print("+", " ".join(cmd[1:]), flush=True)
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode:
        raise UserError(f"training failed ({' '.join(args)}), exit {r.returncode}")


def real_figures(run_dir: Path, real: Path, threshold: float, extra_neg: list[Path]) -> dict:
    cfg, norm, scorer = load_run(run_dir)  # model.tflite when there is one, else the float Keras model
    pos = [real / d for d in REAL_POS if (real / d).is_dir()]
    neg = [real / d for d in REAL_NEG if (real / d).is_dir()] + extra_neg
    return evaluate_folders(scorer, pos, neg, threshold, cfg.features, norm, cfg.eval)


def row(run_dir: Path, real: Path | None, extra_neg: list[Path]) -> dict:
    rep = json.loads((run_dir / "report.json").read_text())
    s = rep["stream"]
    out = {"model": rep["model"], "weight_bits": rep.get("weight_bits") or 32,
           "quantizer": rep.get("quantizer", "float"), "stages": rep.get("stages", "-"),
           "clip_accuracy": round(rep["clip_accuracy"], 4), "frr_at_1fah": round(s["frr_at_1fah"], 4),
           "frr_at_0p5fah": round(s["frr_at_0p5fah"], 4), "threshold_at_1fah": s["threshold_at_1fah"],
           "model_bytes": rep.get("model_bytes"), "run_dir": str(run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir),
           "real_dev_recall_at_1fah": None}
    if "keras_fake_quant" in rep:
        out["keras_fake_quant"] = rep["keras_fake_quant"]
    if real is not None:
        rf = real_figures(run_dir, real, s["threshold_at_1fah"], extra_neg)
        out["real_dev_recall_at_1fah"] = round(rf.get("recall", float("nan")), 4)
        out["real_negative_fa_per_hour"] = round(rf.get("fa_per_hour", float("nan")), 2)
        out["real_negative_hours"] = round(rf.get("negative_hours", 0.0), 3)
    return out


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bits", default="8,5,4,3,2,1")
    ap.add_argument("--ablations", default="4,2", help="bit widths for the linear / one-stage ablations")
    ap.add_argument("--real", type=Path, help="folder with alexa_dev/ and real negative folders")
    ap.add_argument("--real-negatives", type=Path, action="append", default=[], help="more real negative folders")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "accuracy.json")
    ap.add_argument("--quick", action="store_true", help="tiny smoke version")
    ap.add_argument("--set", action="append", default=[], help="passed to every train.py call")
    a = ap.parse_args(argv)
    common = [f"--set={s}" for s in a.set] + (["--quick"] if a.quick else [])
    float_dir = a.runs / "ffnn-alexa-float"
    train(["--run-dir", str(float_dir), *common])
    bits = [int(b) for b in a.bits.split(",") if b]
    abl = [int(b) for b in a.ablations.split(",") if b]
    runs = [(b, "tanh", "two") for b in bits] + [(b, "linear", "two") for b in abl] + [(b, "tanh", "one") for b in abl]
    dirs = [float_dir]
    for b, qz, st in runs:
        d = a.runs / f"ffnn-alexa-w{b}-{qz}-{st}"
        train(["--run-dir", str(d), "--weight-bits", str(b), "--weight-quantizer", qz, "--stages", st,
               "--float-run", str(float_dir), *common])
        dirs.append(d)
    rows = [row(d, a.real, a.real_negatives) for d in dirs]
    atomic_write_text(a.out, json.dumps(rows, indent=1) + "\n")

    curves = {}
    for d, r in zip(dirs, rows):
        if r["quantizer"] in ("float", "tanh") and r["stages"] in ("-", "two") and r["weight_bits"] in (32, 8, 5, 4, 2, 1):
            name = "float" if r["weight_bits"] == 32 else f"{r['weight_bits']}-bit"
            curves[name] = json.loads((d / "det.json").read_text())
    plot_det(curves, a.out.with_name("det_bits.png"), title="FFNN-250K, synthetic test stream, by weight bits")
    print(markdown(rows))
    return 0


def markdown(rows: list[dict]) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = ["| weights | quantizer | QAT stages | model bytes | clip accuracy | FRR @ 1 FA/h | FRR @ 0.5 FA/h | real recall @ 1 FA/h | real FA/h |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        w = "float32" if r["weight_bits"] == 32 else f"{r['weight_bits']}-bit"
        lines.append(f"| {w} | {r['quantizer']} | {r['stages']} | {r['model_bytes'] or '-'} | {pct(r['clip_accuracy'])} | "
                     f"{pct(r['frr_at_1fah'])} | {pct(r['frr_at_0p5fah'])} | {pct(r['real_dev_recall_at_1fah'])} | "
                     f"{r.get('real_negative_fa_per_hour', '-')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
