"""Distributed training benchmark: ``python -m bench.run --only distributed`` (or ``python -m bench.distributed``).

1. Feature store build time per hour of audio: generated labelled recordings (1 s clips: a tone
   sweep "keyword", noise-burst negatives; LFBE cost does not depend on what is said) prepared as a
   ``folder`` data set with the default features (64 bins, 24 x 3 context) and the default
   augmentation (one augmented copy per training clip), then ``feature_store.ensure_store`` timed.
2. Training throughput: the default FFNN (~248K parameters, batch 256) trained for a few epochs
   through ``training.cluster`` with 1 and then 2 local workers (MultiWorkerMirroredStrategy,
   shard by file); examples/s = global examples per second of the training part of an epoch (from
   the chief's epoch log), median over the epochs after the first. The two workers share this
   machine's cores, so the ratio measures the cost of the collective all-reduce and the second
   process, not a speed-up.

Records: ``{"benchmark": "distributed", "workers": N, "examples_per_s": ...}`` and
``{"benchmark": "feature_store", "seconds_per_audio_hour": ...}``.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from data_scripts.speech_commands import _split_of
import soundfile as sf
from training.config import Config, set_dotted
from training import feature_store as fs
from training.dataset import WindowConfig, prepare_data
import argparse

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def speakers(per_split: dict[str, int]) -> dict[str, list[str]]:
    """Speaker folder names that the folder data set splits into train/val/test as asked."""

    out: dict[str, list[str]] = {k: [] for k in per_split}
    i = 0
    while any(len(out[k]) < n for k, n in per_split.items()):
        name = f"spk{i:03d}"
        s = _split_of(f"speaker:{name}")
        if len(out[s]) < per_split[s]:
            out[s].append(name)
        i += 1
    return out


def make_recordings(root: Path, train_speakers: int = 6, clips: int = 4, eval_speakers: int = 2) -> Path:
    """<root>/beep/<speaker>/*.wav (keyword: a tone sweep) and <root>/other/<speaker>/*.wav (noise
    bursts), 1 s each, 16 kHz PCM16: a labelled recordings folder (``data.source: folder``)."""

    root = Path(root)
    spk = speakers({"train": train_speakers, "val": eval_speakers, "test": eval_speakers})
    rng = np.random.default_rng(5)
    t = np.arange(int(0.6 * SR)) / SR
    for names in spk.values():
        for n in names:
            f0 = rng.uniform(500, 1500)
            for c in range(clips):
                kw = np.zeros(SR, np.float32)
                kw[SR // 5:SR // 5 + len(t)] = 0.5 * np.sin(2 * np.pi * (f0 + 400 * t) * t) * np.hanning(len(t))
                kw += rng.normal(0, 0.003, SR).astype(np.float32)
                neg = np.zeros(SR, np.float32)
                neg[SR // 5:SR // 5 + len(t)] = rng.normal(0, 0.2, len(t)) * np.hanning(len(t))
                neg += rng.normal(0, 0.003, SR).astype(np.float32)
                for lab, x in (("beep", kw), ("other", neg)):
                    p = root / lab / n / f"{c}.wav"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(p, x, SR, subtype="PCM_16")
    return root


def _config(folder: Path, data_root: Path, sets: list[str]):

    cfg = Config()
    for kv in [f"data.source=folder", f"data.folder={folder}", "data.keyword=beep", f"data.root={data_root}",
               "data.stream_minutes=0.3", *sets]:
        k, v = kv.split("=", 1)
        set_dotted(cfg, k, v)
    return cfg.validate()


def store_build(work: Path, n_spk: int, clips: int) -> tuple[dict, list[str]]:
    """Build the store of generated recordings; its record and the train.py data arguments."""

    folder = make_recordings(work / "rec", n_spk, clips, eval_speakers=max(2, n_spk // 8))
    cfg = _config(folder, work / "data", [])
    dataset = prepare_data(cfg.data, progress=False)
    workers = min(os.cpu_count() or 1, 8)
    t0 = time.perf_counter()
    st = fs.ensure_store(WindowConfig.of(cfg), dataset, workers=workers)
    sec = time.perf_counter() - t0
    audio = sum(st.manifest["audio_seconds"].get(s, 0.0) for s in st.manifest["splits"])
    nbytes = sum(sh["bytes"] for sp in st.manifest["splits"].values() for sh in sp["shards"])
    windows = sum(sp["records"] for sp in st.manifest["splits"].values())
    rec = {"benchmark": "feature_store", "seconds_per_audio_hour": round(sec / (audio / 3600.0), 1),
           "build_seconds": round(sec, 2), "audio_hours": round(audio / 3600.0, 4), "windows": windows,
           "store_bytes": nbytes, "bytes_per_window": round(nbytes / windows, 1),
           "windows_per_audio_hour": round(windows / (audio / 3600.0)), "processes": workers,
           "note": "default features (64 bins, 24x3 context) and augmentation (1 augmented copy per train clip); "
                   "train + val splits; audio hours = clip audio before copies"}
    args = ["--data-source", "folder", "--data-folder", str(folder), "--keyword", "beep", "--data-root",
            str(work / "data"), "--set", "data.stream_minutes=0.3", "--no-progress"]
    return rec, args


def throughput(work: Path, data_args: list[str], workers: int, epochs: int) -> float:
    """Median global examples/s over the epochs after the first, from the chief's epoch log."""
    cmd = [sys.executable, "-m", "training.cluster", "--workers", str(workers), "--timeout", "1500",
           "--worker-dir", str(work / f"w{workers}"), "--", *data_args, "--epochs", str(epochs),
           "--run-dir", str(work / "runs" / f"w{workers}")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    if r.returncode != 0:
        tail = [l for l in r.stderr.splitlines() if not l.startswith(("I0000", "W0000", "WARNING"))][-12:]
        raise RuntimeError(f"{workers} workers failed:\n" + "\n".join(tail))
    rates = [float(m) for m in re.findall(r"float epoch \d+/\d+: .* \((\d+) examples/s\)", r.stdout)]
    if len(rates) < 2:
        raise RuntimeError(f"{workers} workers: no epoch rates in the log")
    return statistics.median(rates[1:])


PAPER_HOURS = 26_000


def plan(store_rec: dict, rate_1_worker: float, hours: float = PAPER_HOURS) -> dict:
    """The paper's scale on paper: store size and build time from the measured per-hour figures,
    epochs per hour for 1, 8 and 64 workers at the measured single-worker rate, assuming linear
    scaling (an upper bound: it ignores the all-reduce, which the 2-worker ratio here cannot measure)."""
    windows = store_rec["windows_per_audio_hour"] * hours
    return {"audio_hours": hours, "windows": int(windows),
            "store_terabytes": round(windows * store_rec["bytes_per_window"] / 1e12, 2),
            "build_hours_one_machine": round(store_rec["seconds_per_audio_hour"] * hours / 3600, 1),
            "examples_per_s_per_worker": round(rate_1_worker, 1),
            "epochs_per_hour": {str(n): round(3600 * n * rate_1_worker / windows, 4) for n in (1, 8, 64)},
            "assumption": "linear scaling with workers; windows per audio hour as in this data set"}


def run(quick: bool = False) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="subkws-bench-dist-") as td:
        work = Path(td)
        store_rec, _ = store_build(work / "store", *((8, 4) if quick else (48, 10)))
        # throughput on a smaller set: two CPU workers of this FFNN grow to ~1,600 threads each
        # (TensorFlow's collectives), which a long run on this shared machine could not afford
        _, data_args = store_build(work / "train", 12, 8)
        epochs = 3 if quick else 5
        rates = {n: throughput(work / "train", data_args, n, epochs) for n in (1, 2)}
    cores = os.cpu_count()
    store_rec["plan_26000h"] = plan(store_rec, rates[1])
    recs = [store_rec]
    for n, r in rates.items():
        recs.append({"benchmark": "distributed", "workers": n, "examples_per_s": round(r, 1),
                     "examples_per_s_per_worker": round(r / n, 1), "ratio_to_1_worker": round(r / rates[1], 3),
                     "model": "ffnn", "batch": 256, "cores": cores, "epochs": epochs,
                     "note": f"local workers on 127.0.0.1 sharing {cores} cores: the ratio is the overhead of the "
                             "second process and the all-reduce, not a speed-up"})
    return recs


def main(argv=None) -> int:

    ap = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    for r in run(a.quick):
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
