"""Peak memory of the tools on long audio (issue 15, item 10): ``evaluate --stream`` on an N-minute
WAV and ``data_scripts folder`` on a recordings folder holding an N-minute negative recording.

    .venv/bin/python -m bench.long_audio [--minutes 60] [--work DIR] [--out FILE] [--merge]

The WAV (16 kHz PCM16: noise with a loud 0.4 s tone burst every 3 s, so the negative has "speech" to
cut) is written block by block. Each tool runs as its own process; its peak resident memory is
that process's ru_maxrss (os.wait4). One record per tool: ``benchmark: "long_audio_memory"``,
``model`` (the tool), ``audio_minutes``, ``peak_rss_mb``, ``seconds``. --merge merges them into
bench/results.json (bench/run.py's merge: only these records are replaced).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from basics.atomic import atomic_write_text
from basics.audio import save_wav
from bench.merge import merge_into_results

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "firmware" / "fuzz" / "seeds" / "mlp_int8_frontend.tflite"


def write_long_wav(path: Path, minutes: float, seed: int = 0) -> None:
    """``minutes`` of 16 kHz PCM16, one minute at a time (the generator itself stays small)."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000 * 60) / 16000.0
    burst = ((t % 3.0) < 0.4) * 0.5 * np.sin(2 * np.pi * 440.0 * t)
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16", format="WAV") as fh:
        left = int(minutes * 60 * 16000)
        while left > 0:
            n = min(left, len(t))
            fh.write((rng.standard_normal(n) * 0.02 + burst[:n]).astype(np.float32))
            left -= n


def measure(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit status, peak RSS in MB, seconds, stderr tail) of ``cmd``."""
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_maxrss / 1024.0, time.time() - t0, err[-500:]


def run(minutes: float, work: Path) -> list[dict]:
    work.mkdir(parents=True, exist_ok=True)
    wav = work / f"long-{minutes:g}min.wav"
    if not wav.is_file():
        write_long_wav(wav, minutes)
    py = sys.executable
    recs = []

    def rec(tool: str, cmd: list[str]) -> None:
        rc, rss, secs, err = measure(cmd)
        if rc != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({rc}): {err}")
        recs.append({"benchmark": "long_audio_memory", "model": tool, "audio_minutes": minutes,
                     "peak_rss_mb": round(rss, 1), "seconds": round(secs, 1),
                     "command": f"python -m bench.long_audio --minutes {minutes:g}",
                     "measured": " ".join(Path(c).name if c.startswith("/") else c for c in cmd)})
        print(json.dumps(recs[-1]), file=sys.stderr)

    rec("evaluate --stream", [py, "-m", "training.evaluate", str(MODEL), "--stream", str(wav),
                              "--scores-out", str(work / "scores.npz")])
    folder = work / "recordings"
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(1)
    for label in ("alexa", "other"):
        for i in range(20):
            x = rng.standard_normal(16000).astype(np.float32) * 0.02
            x[4000:10000] += 0.5 * np.sin(np.arange(6000) * (0.1 if label == "alexa" else 0.2))
            save_wav(folder / label / f"speaker{i}_{i}.wav", x)
    (folder / "other" / "long.wav").symlink_to(wav)
    shutil.rmtree(work / "data", ignore_errors=True)
    rec("data_scripts folder", [py, "-m", "data_scripts.cli", "folder", "--folder", str(folder), "--keyword",
                                "alexa", "--root", str(work / "data"), "--stream-minutes", "0.5", "--no-progress"])
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.long_audio", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the long WAV (default 60)")
    ap.add_argument("--work", type=Path, help="folder for the WAV and outputs (default: a temporary one)")
    ap.add_argument("--out", type=Path, help="write the records (JSON list) here")
    ap.add_argument("--merge", action="store_true", help="merge the records into bench/results.json")
    a = ap.parse_args(argv)
    if a.work:
        recs = run(a.minutes, a.work)
    else:
        with tempfile.TemporaryDirectory() as td:
            recs = run(a.minutes, Path(td))
    if a.out:
        atomic_write_text(a.out, json.dumps(recs, indent=1) + "\n")
    if a.merge:
        merge_into_results(recs)
    print(json.dumps(recs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
