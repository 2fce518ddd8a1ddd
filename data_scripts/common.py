"""Pieces shared by every data source: the dataset layout contract, speech trimming, hashing.

Layout of a prepared dataset (docs/data.md, relied on by training/dataset.py)::

    <dataset>/manifest.csv      path,label,split,voice,text  (path relative to <dataset>)
    <dataset>/clips/...         16 kHz mono PCM16 wav, one utterance each, <= 1.5 s
    <dataset>/stream/{val,test}.wav + .json   long streaming audio with keyword times
    <dataset>/info.json         keyword, generation params, counts and durations
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from basics.audio import SAMPLE_RATE
from basics.errors import UserError

SPLITS = ("train", "val", "test")
LABELS = ("keyword", "negative")
MANIFEST_COLUMNS = ("path", "label", "split", "voice", "text")
MAX_CLIP_S = 1.5
FORMAT_VERSION = 1


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def normalize_keyword(keyword: str) -> str:
    """Lower-case, single-spaced keyword text; UserError if it is empty or not speakable words."""
    kw = " ".join(str(keyword or "").lower().replace("_", " ").split())
    if not kw:
        raise UserError("data.keyword: empty keyword")
    if not re.fullmatch(r"[a-z]+(?:['-][a-z]+)*(?: [a-z]+(?:['-][a-z]+)*)*", kw):
        raise UserError(f"data.keyword: '{keyword}' is not a word or phrase of letters a-z")
    if len(kw.split()) > 4 or len(kw) > 40:
        raise UserError(f"data.keyword: '{keyword}' is too long (at most 4 words, 40 characters)")
    return kw


def safe_name(name: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 (os.fsdecode gives them as lone
    surrogates, which cannot be written to a manifest or hashed as UTF-8) become '_'."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\ufffd", "_")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def params_hash(params: dict, n: int = 10) -> str:
    blob = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def is_prepared(dataset: Path) -> bool:
    return (dataset / "info.json").is_file() and (dataset / "manifest.csv").is_file()


def frame_energy_db(x: np.ndarray, frame: int = 160) -> np.ndarray:
    n = len(x) // frame
    if n == 0:
        return np.full(1, 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-10))
    fr = x[: n * frame].astype(np.float64).reshape(n, frame)
    return 10 * np.log10(np.mean(fr * fr, axis=1) + 1e-10)


def speech_bounds(x: np.ndarray, frame: int = 160) -> tuple[int, int]:
    """(start, end) sample of the speech part of a clip, by frame energy.

    A frame is speech when it is within 35 dB of the loudest frame and clearly (40 % of the
    floor-to-peak range) above the noise floor, so clean synthetic clips and noisy recordings
    both trim sensibly. Returns (0, len) for a clip with no usable energy.
    """
    if len(x) == 0:
        return 0, 0
    e = frame_energy_db(x, frame)
    peak = float(e.max())
    floor = float(np.percentile(e, 10))
    if peak < -90:
        return 0, len(x)
    thr = max(peak - 35.0, floor + 0.4 * (peak - floor))
    idx = np.flatnonzero(e >= thr)
    if len(idx) == 0:
        return 0, len(x)
    return int(idx[0] * frame), int(min(len(x), (idx[-1] + 1) * frame))


def fit_clip(x: np.ndarray, pre: int, post: int, max_len: int = int(MAX_CLIP_S * SAMPLE_RATE)) -> np.ndarray | None:
    """Trim silence, pad with ``pre``/``post`` samples of silence; None if speech alone is too long.

    The padding shrinks (down to 50 ms each side) before a clip is refused.
    """
    s, e = speech_bounds(x)
    speech = x[s:e]
    if len(speech) == 0:
        return None
    min_pad = int(0.05 * SAMPLE_RATE)
    if len(speech) + 2 * min_pad > max_len:
        return None
    room = max_len - len(speech)
    if pre + post > room:
        k = room / (pre + post)
        pre, post = max(min_pad, int(pre * k)), max(min_pad, int(post * k))
        while pre + post > room:
            pre, post = pre - 1, post - 1
    out = np.zeros(pre + len(speech) + post, np.float32)
    out[pre: pre + len(speech)] = speech
    return out


def loudest_window(x: np.ndarray, n: int) -> np.ndarray:
    """The ``n``-sample window of ``x`` with the most energy (x itself if shorter)."""
    if len(x) <= n:
        return x
    c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    i = int(np.argmax(c[n:] - c[:-n]))
    return x[i: i + n]


def sound_pieces(x: np.ndarray, max_n: int = int(MAX_CLIP_S * SAMPLE_RATE),
                 min_rel: float = 0.1) -> list[tuple[int, np.ndarray]]:
    """``x`` cut into consecutive pieces of ``max_n`` samples (the last may be shorter, but not under
    0.25 s): [(piece number, piece)] for the pieces whose peak reaches ``min_rel`` of the whole
    signal's peak (numbers count the skipped pieces too)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak == 0:
        return []
    out = []
    for i, a in enumerate(range(0, len(x) - SAMPLE_RATE // 4, max_n)):
        piece = x[a: a + max_n]
        if np.max(np.abs(piece)) >= min_rel * peak:
            out.append((i, piece))
    return out


def wav_bytes(x: np.ndarray) -> bytes:
    """16 kHz mono PCM16 WAV bytes (deterministic for the same samples)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_manifest(dataset: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: r["path"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in MANIFEST_COLUMNS})
    (dataset / "manifest.csv").write_text(buf.getvalue())


def read_manifest_rows(dataset: Path) -> list[dict]:
    man = Path(dataset) / "manifest.csv"
    if not man.is_file():
        raise UserError(f"{man}: dataset manifest not found")
    with open(man, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not set(MANIFEST_COLUMNS) <= set(rows[0]):
        raise UserError(f"{man}: expected columns {', '.join(MANIFEST_COLUMNS)}")
    return rows


def summarize(rows: list[dict]) -> tuple[dict, dict]:
    """counts[split][label] and durations_s[split][label] (rows need a 'duration_s' entry)."""
    counts = {s: {lab: 0 for lab in LABELS} for s in SPLITS}
    durs = {s: {lab: 0.0 for lab in LABELS} for s in SPLITS}
    for r in rows:
        counts[r["split"]][r["label"]] += 1
        durs[r["split"]][r["label"]] += float(r.get("duration_s", 0.0))
    durs = {s: {lab: round(v, 3) for lab, v in d.items()} for s, d in durs.items()}
    return counts, durs
