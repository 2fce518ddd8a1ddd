"""Long streaming test audio with keywords at known times.

The stream is mostly negative speech (so false accepts per hour are measured on speech, not on
silence), with short silence gaps, keywords inserted every 8-16 s after the previous keyword's
end (never closer than ~8 s: well over the 3 s minimum; 10 minutes hold ~40 keywords), and
background noise under everything at an SNR drawn per 5-20 s segment from ``snr_db``
(relative to the level of the speech in the stream).

Label JSON::

    {"sample_rate": 16000, "duration_s": 600.0,
     "keywords": [{"start_s": 3.21, "end_s": 3.87, "source": "clips/test/keyword/x.wav"}, ...],
     "num_negatives": 512, "keyword_s": .., "negative_s": .., "silence_s": .., "seed": .., ...}

start_s / end_s are the speech part of the keyword clip (silence trimmed by energy), so a
detector can be matched against the keyword's end. keyword_s + negative_s + silence_s ==
duration_s (the time taken by keyword clips, negative clips and gaps between clips).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_scripts.common import FORMAT_VERSION, note, speech_bounds, summarize, write_manifest
from basics.audio import SAMPLE_RATE, load_audio, save_wav
from basics.atomic import atomic_write_text
from basics.errors import UserError

STREAM_VERSION = 1


class _Cycler:
    """Draw items in shuffled rounds: every item is used once before any is repeated."""

    def __init__(self, items: Sequence, rng: np.random.Generator):
        self.items, self.rng, self.order = list(items), rng, []

    def next(self):
        if not self.order:
            self.order = list(self.rng.permutation(len(self.items)))
        return self.items[self.order.pop()]


def _fade(x: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(x) // 2)
    if n > 0:
        w = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))
        x[:n] *= w
        x[-n:] *= w[::-1]
    return x


def make_stream(keyword_clips: Sequence[str | Path], negative_clips: Sequence[str | Path],
                noise: list[np.ndarray], minutes: float, seed: int, out_wav: str | Path,
                out_json: str | Path, *, snr_db: tuple[float, float] = (5.0, 25.0),
                keyword_gap_s: tuple[float, float] = (8.0, 16.0), silence_prob: float = 0.12,
                source_root: str | Path | None = None) -> dict:
    """Write a ``minutes``-long stream to out_wav (16 kHz PCM16) and its labels to out_json.

    keyword_clips / negative_clips: audio files (each used once before any repeats);
    noise: background noise arrays (may be empty: no noise). ``source`` in the labels is the
    clip path relative to source_root when given. Returns the label dict. Deterministic for seed.
    """
    if not keyword_clips:
        raise UserError(f"{out_wav}: no keyword clips to build the stream from")
    if minutes <= 0:
        raise UserError(f"data.stream_minutes: must be > 0, got {minutes}")
    rng = np.random.default_rng(seed)
    total = int(round(minutes * 60 * SAMPLE_RATE))
    sr = SAMPLE_RATE
    cache: dict[Path, np.ndarray] = {}

    def load(p):
        p = Path(p)
        if p not in cache:
            cache[p] = load_audio(p, sr, quiet=True)
        return cache[p]

    def name(p):
        p = Path(p)
        if source_root is not None:
            try:
                return p.resolve().relative_to(Path(source_root).resolve()).as_posix()
            except ValueError:
                pass
        return str(p)

    kws, negs = _Cycler(keyword_clips, rng), _Cycler(negative_clips, rng) if negative_clips else None
    speech = np.zeros(total, np.float32)
    active = np.zeros(total, bool)
    labels, n_neg = [], 0
    kw_s = neg_s = 0
    t = 0
    next_kw = int(rng.uniform(2.0, 6.0) * sr)
    while t < total:
        if t >= next_kw:
            p = kws.next()
            x = load(p)
            if t + len(x) > total:
                break
            s, e = speech_bounds(x)
            speech[t: t + len(x)] = x
            active[t + s: t + e] = True
            labels.append({"start_s": round((t + s) / sr, 4), "end_s": round((t + e) / sr, 4), "source": name(p)})
            t += len(x)
            kw_s += len(x)
            next_kw = t + int(rng.uniform(*keyword_gap_s) * sr)
        elif negs is None or rng.random() < silence_prob:
            t += int(rng.uniform(0.3, 2.5) * sr)
        else:
            p = negs.next()
            x = load(p)
            if t + len(x) > min(total, next_kw + int(1.0 * sr)):
                t = min(total, next_kw)  # no room before the next keyword: leave a gap
                continue
            s, e = speech_bounds(x)
            speech[t: t + len(x)] = x
            active[t + s: t + e] = True
            t += len(x)
            neg_s += len(x)
            n_neg += 1
            t += int(rng.uniform(0.0, 0.3) * sr)

    # background noise in 5-20 s segments, each at its own SNR relative to the speech level
    ref = float(np.sqrt(np.mean(np.square(speech[active], dtype=np.float64)))) if active.any() else 0.05
    bed = np.zeros(total, np.float32)
    snrs = []
    if noise:
        fade = int(0.05 * sr)
        a = 0
        while a < total:
            b = min(total, a + int(rng.uniform(5.0, 20.0) * sr))
            src = noise[int(rng.integers(len(noise)))]
            n = b - a + fade
            if len(src) < n:
                src = np.tile(src, n // max(1, len(src)) + 1)
            o = int(rng.integers(0, len(src) - n + 1))
            seg = src[o: o + n].astype(np.float32).copy()
            rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) + 1e-12
            snr = float(rng.uniform(*snr_db))
            snrs.append(round(snr, 2))
            seg *= np.float32(ref / rms / 10 ** (snr / 20))
            _fade(seg, fade)
            end = min(total, a + n)
            bed[a:end] += seg[: end - a]
            a = b
    mix = speech + bed
    peak = float(np.max(np.abs(mix))) if total else 0.0
    if peak > 0.99:
        mix *= np.float32(0.99 / peak)
    save_wav(out_wav, mix, sr)
    duration = total / sr
    lab = {"sample_rate": sr, "duration_s": round(duration, 4), "keywords": labels, "num_negatives": n_neg,
           "keyword_s": round(kw_s / sr, 4), "negative_s": round(neg_s / sr, 4),
           "silence_s": round((total - kw_s - neg_s) / sr, 4), "seed": seed, "snr_db_range": list(snr_db),
           "noise_segments_snr_db": snrs, "version": STREAM_VERSION}
    atomic_write_text(out_json, json.dumps(lab, indent=1) + "\n")
    return lab


def finish_dataset(tmp: Path, rows: list[dict], info: dict, noise: list[np.ndarray], minutes: float,
                   seed: int, progress: bool = True) -> None:
    """Write manifest, the val/test streams (from that split's clips only) and info.json into tmp."""
    write_manifest(tmp, rows)
    streams = {}
    for i, split in enumerate(("val", "test")):
        kw = [tmp / r["path"] for r in rows if r["split"] == split and r["label"] == "keyword"]
        neg = [tmp / r["path"] for r in rows if r["split"] == split and r["label"] == "negative"]
        if not kw:
            note(f"warning: no keyword clips in the {split} split: no {split} stream written")
            continue
        if progress:
            note(f"writing {minutes:g}-minute {split} stream")
        lab = make_stream(kw, neg, noise, minutes, seed + 101 + i, tmp / "stream" / f"{split}.wav",
                          tmp / "stream" / f"{split}.json", source_root=tmp)
        streams[split] = {"duration_s": lab["duration_s"], "num_keywords": len(lab["keywords"]),
                          "num_negatives": lab["num_negatives"]}
    counts, durs = summarize(rows)
    info = dict(info)
    info.update({"format_version": FORMAT_VERSION, "sample_rate": SAMPLE_RATE, "counts": counts,
                 "durations_s": durs, "num_clips": len(rows), "streams": streams})
    (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
