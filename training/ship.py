"""Ship a trained model: ``models/<name>.tflite`` + manifest ``models/<name>.json`` + model card ``models/<name>.md``.

    python -m training.ship RUN_DIR --name alexa-w4 [--out models] \\
        [--calibrate-positives DIR ...] [--calibrate-negatives DIR ...] [--command "how it was trained"]

A QAT run ships its deployable ``model.tflite``; a float run is converted to a float32 .tflite
(the same FULLY_CONNECTED graph, BatchNorm folded by the converter) carrying the same metadata.
The manifest says everything a user or script needs to run the model without its run directory:

* ``model`` (the .tflite beside it), ``sha256``, ``model_bytes``, ``weight_bits``, ``layer_bits``;
* ``labels``, ``keyword``, ``features`` (LFBE parameters, context, normalization);
* ``smoothing_frames``, ``refractory_s`` (the detection rule of training/scoring.py);
* ``thresholds``: ``fa_per_hour_1`` / ``fa_per_hour_0p5``, the thresholds at 1 and 0.5 false
  accepts per hour on the calibration audio (positives = keyword clips, negatives = audio without
  the keyword, streamed back to back), with the FRR there; without calibration audio, the run's
  own validation-stream threshold;
* ``arena_estimate_bytes`` (activation arena), ``data`` (clips and hours per source) and ``recipe``.

``python -m training.evaluate models/<name>.tflite ...`` and ``python -m tflm_port.deploy`` accept
the model with its manifest; tests load every shipped model and check the manifest against it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from basics.atomic import atomic_write_bytes, atomic_write_text
from basics.errors import UserError, cli_main
from basics.audio import list_audio, load_audio
from data_scripts.noise import noise_folders
from data_scripts.sources import source_summary
from tflm_port.sizes import size_split
from tflm_port.tflite_io import METADATA_NAME, get_metadata, load_model, save_model, set_metadata
from training.evaluate import plot_det
from training.scoring import clip_max_scores, det_points, detector_from_tflite, frr_at, score_audio
from training.train import load_trained_model
from training.runs import run_dataset, run_metadata

MANIFEST_VERSION = 1


def float_tflite(model, metadata: dict) -> bytes:
    """The float Keras model as a float32 .tflite with the project's metadata."""
    from training.qat import to_float_tflite  # lazy: imports TensorFlow

    m = load_model(to_float_tflite(model), "float model")
    set_metadata(m, METADATA_NAME, {**metadata, "format": "subkws-tflite", "layer_bits": [], "mode": "float"})
    return save_model(m)


def calibrate(tflite: Path, manifest: dict, positives: list[Path], negatives: list[Path]) -> dict:
    det = detector_from_tflite(tflite, manifest)
    pos = [load_audio(f, quiet=True) for d in positives for f in list_audio(d)]
    negf = [f for d in negatives for f in list_audio(d)]
    if not pos or not negf:
        raise UserError("calibration needs keyword clips (--calibrate-positives) and negative audio "
                        "(--calibrate-negatives)")

    neg = score_audio(det, np.concatenate([load_audio(f, quiet=True) for f in negf]))
    pts = det_points(clip_max_scores(det, pos), neg, det.refractory_s)
    f1, t1 = frr_at(pts, 1.0)
    f05, t05 = frr_at(pts, 0.5)

    plot_det({manifest["name"]: pts}, tflite.with_suffix(".det.png"),
             f"{manifest['name']}: {len(pos)} keyword clips, {neg.duration_s / 3600:.2f} h negatives")
    return {"fa_per_hour_1": t1, "fa_per_hour_0p5": t05, "frr_at_1fah": f1, "frr_at_0p5fah": f05,
            "calibration": {"positives": len(pos), "negative_hours": round(neg.duration_s / 3600, 4),
                            "positive_dirs": [d.name for d in positives], "negative_dirs": [d.name for d in negatives]}}


def ship(run_dir: Path, name: str, out: Path, positives: list[Path], negatives: list[Path], command: str) -> Path:
    run_dir = Path(run_dir)
    for f in ("config.json", "normalizer.json", "labels.json"):
        if not (run_dir / f).is_file():
            raise UserError(f"{run_dir}: not a finished run directory (no {f})")
    meta, cfg = run_metadata(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    tfl = out / f"{name}.tflite"
    if (run_dir / "model.tflite").is_file():
        data = (run_dir / "model.tflite").read_bytes()
        bits = cfg.quant.weight_bits
    else:
        data = float_tflite(load_trained_model(run_dir), meta)
        bits = 32

    md = get_metadata(load_model(data, str(tfl))) or {}
    manifest = {
        "manifest_version": MANIFEST_VERSION, "name": name, "model": tfl.name,
        "sha256": hashlib.sha256(data).hexdigest(), "model_bytes": len(data), "weight_bits": bits,
        "layer_bits": md.get("layer_bits", []), "keyword": cfg.data.keyword, "labels": meta["labels"],
        "features": meta["features"], "smoothing_frames": cfg.eval.smoothing_frames,
        "refractory_s": cfg.eval.refractory_s, **{k: v for k, v in size_split(data).items()},
    }
    atomic_write_bytes(tfl, data)
    if positives or negatives:
        cal = calibrate(tfl, manifest, positives, negatives)
    else:
        rep = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").is_file() else {}
        s = rep.get("stream", {})
        cal = {"fa_per_hour_1": s.get("threshold_at_1fah"), "fa_per_hour_0p5": s.get("threshold_at_0p5fah"),
               "frr_at_1fah": s.get("frr_at_1fah"), "frr_at_0p5fah": s.get("frr_at_0p5fah"),
               "calibration": {"stream": "the run's synthetic test stream"}}
    manifest["thresholds"] = {"fa_per_hour_1": cal["fa_per_hour_1"], "fa_per_hour_0p5": cal["fa_per_hour_0p5"]}
    manifest["calibration"] = {**cal["calibration"], "frr_at_1fah": cal["frr_at_1fah"],
                               "frr_at_0p5fah": cal["frr_at_0p5fah"]}
    ds = run_dataset(run_dir) if (run_dir / "dataset.json").is_file() else None
    manifest["data"] = source_summary(ds) if ds else {}
    manifest["recipe"] = {"train": cfg.to_dict()["train"], "quant": cfg.to_dict()["quant"],
                          "data": {k: v for k, v in cfg.to_dict()["data"].items() if k not in ("sources",)}}
    manifest["command"] = command
    manifest["date"] = time.strftime("%Y-%m-%d")
    atomic_write_text(out / f"{name}.json", json.dumps(manifest, indent=1) + "\n")
    atomic_write_text(out / f"{name}.md", model_card(manifest))
    if not (positives or negatives) and (run_dir / "det.png").is_file():
        shutil.copyfile(run_dir / "det.png", out / f"{name}.det.png")
    return tfl


def model_card(m: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = [f"# {m['name']}: \"{m['keyword']}\" wake-word model", "",
             f"- file: `{m['model']}` ({m['model_bytes']:,} bytes, sha256 `{m['sha256'][:16]}...`)",
             f"- weights: {'float32' if m['weight_bits'] == 32 else str(m['weight_bits']) + '-bit'}"
             + (f" (per layer {m['layer_bits']})" if m.get("layer_bits") else ""),
             f"- input: {m['features']['context_frames']} LFBE frames x {m['features']['num_mel_bins']} bins, "
             f"{m['features']['context_stride']} hops apart; activation arena (estimate) {m['arena_estimate_bytes']:,} bytes",
             f"- detection: moving average over {m['smoothing_frames']} hops, refractory {m['refractory_s']} s",
             f"- thresholds: {m['thresholds']['fa_per_hour_1']} at 1 FA/h (FRR {pct(m['calibration'].get('frr_at_1fah'))}), "
             f"{m['thresholds']['fa_per_hour_0p5']} at 0.5 FA/h (FRR {pct(m['calibration'].get('frr_at_0p5fah'))}), "
             f"calibrated on: {json.dumps({k: v for k, v in m['calibration'].items() if not k.startswith('frr')})}",
             "", "## Training data", "", "| source | role | weight | train keyword clips | train negative clips | hours |",
             "|---|---|---|---|---|---|"]
    for k, d in (m.get("data") or {}).items():
        lines.append(f"| {k} | {d['role']} | {d['weight']:g} | {d['clips']['keyword']} | {d['clips']['negative']} | "
                     f"{d['hours']:.2f} |")
    d = m["recipe"].get("data") or {}
    noise = noise_folders(d.get("noise_dir"), d.get("noise_dirs"), d.get("sources"))
    lines += ["", "Background sounds of the augmented copies: " + (
        "the noise folders " + ", ".join(f"`{x}`" for x in noise) if noise else "the synthetic noise bank (data_scripts/noise.py)")
        + (f", plus {d['music']} generated music pieces" if d.get("music") else "") + "."]
    t = m["recipe"]["train"]
    lines += ["", "## Recipe", "",
              f"epochs {t['epochs']}, negative weight {t['negative_weight']}, SpecAugment {t['spec_augment']}, "
              f"hard-negative rounds {t['hard_negative_rounds']}, checkpoint by {t['select_by']}, seed {t['seed']}; "
              f"quantization: {json.dumps(m['recipe']['quant'])}", "",
              "## Rebuild", "", "```sh", m.get("command") or "(not recorded)", "```", "",
              f"DET curve on the calibration audio: `{Path(m['model']).stem}.det.png`.", "",
              "Figures on real recordings, with the number of seeds behind each row: README.md (Results) and "
              "bench/accuracy.json.", ""]
    return "\n".join(lines)


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--name", required=True, help="model name: models/<name>.tflite/.json/.md")
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--calibrate-positives", type=Path, action="append", default=[])
    ap.add_argument("--calibrate-negatives", type=Path, action="append", default=[])
    ap.add_argument("--command", default="", help="the command that trained the run (for the model card)")
    a = ap.parse_args(argv)
    if not a.name.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"--name {a.name!r}: letters, digits, - and _ only")
    tfl = ship(a.run_dir, a.name, a.out, a.calibrate_positives, a.calibrate_negatives, a.command)
    print(f"shipped {tfl} (+ {tfl.with_suffix('.json').name}, {tfl.with_suffix('.md').name})")
    return 0


if __name__ == "__main__":
    main()
