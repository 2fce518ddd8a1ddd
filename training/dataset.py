"""From a prepared dataset folder (data_scripts' layout) to labelled LFBE context windows.

Dataset contract (docs/data.md): ``manifest.csv`` with path,label,split,voice,text where label is
"keyword" or "negative"; 16 kHz clips of one utterance each; ``stream/{val,test}.{wav,json}``.

Window labels (classes: 0 = _silence_, 1 = _unknown_, 2 = keyword):
* keyword clips: windows whose newest frame lies at the end of the spoken keyword (from 30 ms
  before to 120 ms after the last speech frame) are keyword; windows that end before the middle
  of the word are _unknown_ (a partial keyword must not fire); the rest are not used;
* negative clips: windows that overlap speech are _unknown_;
* background: windows of noise only (and digital near-silence) are _silence_.
Clips are padded with 0.35 s on both sides before augmentation, so every window position exists.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
import os

import numpy as np

from basics.audio import load_audio
from training.config import Config, FeatureConfig
from basics.atomic import atomic_path
from basics.classes import KEYWORD, SILENCE, UNKNOWN  # noqa: F401  (re-exported: training's window labels)
from basics.errors import UserError
from training.features import LfbeParams, lfbe, lfbe_params, stack_context, window_span
from basics.procs import die_with_parent
from data_scripts.augment import Augmenter, change_speaker
from data_scripts.config import DataConfig
from data_scripts.sources import prepare_mix
from data_scripts.speech_commands import prepare_folder, prepare_speech_commands
from data_scripts.synthetic import prepare_synthetic
from data_scripts.noise import training_noise

PAD_S = 0.35
FEATURE_CACHE_VERSION = 6


@dataclass
class Clip:
    path: Path
    label: str
    split: str
    voice: str
    text: str
    source: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class WindowConfig:
    """What the window stage reads, and all it reads: the data section (seeds, augmentation, noise)
    and the front end's settings. Model, training, quantization and evaluation settings never reach
    it (``WindowConfig.of(cfg)`` takes the two sections out of a training Config)."""

    data: DataConfig
    features: FeatureConfig

    @classmethod
    def of(cls, cfg: Config) -> "WindowConfig":
        return cls(cfg.data, cfg.features)


def read_manifest(dataset: Path) -> list[Clip]:
    man = Path(dataset) / "manifest.csv"
    if not man.is_file():
        raise UserError(f"{man}: dataset manifest not found (prepare the data first)")
    clips = []
    with open(man, newline="") as fh:
        rd = csv.DictReader(fh)
        need = {"path", "label", "split"}
        if not rd.fieldnames or not need <= set(rd.fieldnames):
            raise UserError(f"{man}: expected columns {sorted(need)}, got {rd.fieldnames}")
        for i, row in enumerate(rd, start=2):
            if row["label"] not in ("keyword", "negative") or row["split"] not in ("train", "val", "test"):
                raise UserError(f"{man}:{i}: bad label/split {row['label']!r}/{row['split']!r}")
            try:
                w = float(row.get("weight") or 1.0)
            except ValueError:
                raise UserError(f"{man}:{i}: weight {row.get('weight')!r} is not a number") from None
            if not (0.0 <= w < float("inf")):
                raise UserError(f"{man}:{i}: weight must be finite and >= 0, got {w}")
            clips.append(Clip(Path(dataset) / row["path"], row["label"], row["split"],
                              row.get("voice", ""), row.get("text", ""), row.get("source") or "", w))
    if not clips:
        raise UserError(f"{man}: manifest lists no clips")
    return clips


def speech_frames(audio: np.ndarray, p: LfbeParams, rel_db: float = 35.0) -> tuple[int, int]:
    """(first, last) frame index whose energy is within rel_db of the loudest frame."""
    n = 1 + max(0, len(audio) - p.window_samples) // p.hop_samples
    fr = np.lib.stride_tricks.sliding_window_view(audio, p.window_samples)[:: p.hop_samples][:n]
    e = 10 * np.log10(np.mean(fr.astype(np.float64) ** 2, axis=1) + 1e-12)
    idx = np.flatnonzero(e > e.max() - rel_db)
    return int(idx[0]), int(idx[-1])


def _augmenter(data: DataConfig, cache_dir: Path):
    if not data.augment:
        return None

    # no time shift: window labels are placed from the clean clip's speech frames
    return Augmenter(data, cache_dir, p_shift=0.0)


def _noise(data: DataConfig, cache_dir: Path) -> list[np.ndarray]:
    return training_noise(data, cache_dir)


def _with_context(audio: np.ndarray, p: LfbeParams, rng: np.random.Generator, left: np.ndarray | None,
                  right: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The clip between pieces of other utterances, as in running speech; (audio, offset of the clip).

    Each side gets at least PAD_S of audio: a short gap, and with a neighbour clip its speech
    (the tail of the left one, the head of the right one) beyond the gap.
    """
    pad = int(PAD_S * p.sample_rate)
    parts_l = [np.zeros(int(rng.uniform(0.04, 0.3) * p.sample_rate), np.float32)]
    if left is not None and len(left) >= p.window_samples:
        _, l_last = speech_frames(left, p)
        tail = left[: l_last * p.hop_samples + p.window_samples]
        parts_l.insert(0, tail[-int(rng.uniform(0.2, 0.8) * p.sample_rate):])
    lpart = np.concatenate(parts_l)
    if len(lpart) < pad:
        lpart = np.concatenate([np.zeros(pad - len(lpart), np.float32), lpart])
    parts_r = [np.zeros(int(rng.uniform(0.04, 0.3) * p.sample_rate), np.float32)]
    if right is not None and len(right) >= p.window_samples:
        r_first, _ = speech_frames(right, p)
        parts_r.append(right[r_first * p.hop_samples:][: int(rng.uniform(0.2, 0.8) * p.sample_rate)])
    rpart = np.concatenate(parts_r)
    if len(rpart) < pad:
        rpart = np.concatenate([rpart, np.zeros(pad - len(rpart), np.float32)])
    return np.concatenate([lpart, audio, rpart]).astype(np.float32), len(lpart)


def clip_windows(audio: np.ndarray, label: str, features: FeatureConfig, p: LfbeParams, rng: np.random.Generator,
                 augment=None, left: np.ndarray | None = None,
                 right: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Feature windows and labels for one clip (before normalization), optionally between neighbours."""
    x, off = _with_context(audio, p, rng, left, right)
    first, last = speech_frames(audio, p)
    # frame t of x covers samples [t*hop, t*hop+win): shift the clip's speech frames by the offset
    first, last = first + off // p.hop_samples, last + off // p.hop_samples
    if augment is not None:
        x = augment(x, rng)
    feats = lfbe(x, p)
    ctx, stride = features.context_frames, features.context_stride
    wins = stack_context(feats, ctx, stride)
    span = window_span(ctx, stride)
    end = np.arange(len(wins)) + span - 1  # newest frame of each window
    if label == "keyword":
        pos = np.flatnonzero((end >= last - 3) & (end <= last + 12))
        pos = rng.choice(pos, size=min(6, len(pos)), replace=False) if len(pos) else pos
        mid = (first + last) // 2
        neg = np.flatnonzero(end < mid)
        neg = rng.choice(neg, size=min(2, len(neg)), replace=False) if len(neg) else neg
        idx = np.concatenate([pos, neg])
        lab = np.concatenate([np.full(len(pos), KEYWORD), np.full(len(neg), UNKNOWN)])
    else:
        start = end - span + 1
        ov = np.flatnonzero((end >= first + 5) & (start <= last - 5))
        if len(ov) == 0:
            ov = np.flatnonzero((end >= first) & (start <= last))
        idx = rng.choice(ov, size=min(6, len(ov)), replace=False) if len(ov) else ov
        lab = np.full(len(idx), UNKNOWN)
    return wins[idx], lab.astype(np.int32)


def background_windows(noise: list[np.ndarray], n: int, features: FeatureConfig, p: LfbeParams,
                       rng: np.random.Generator) -> np.ndarray:
    ctx, stride = features.context_frames, features.context_stride
    span = window_span(ctx, stride)
    seg = (span - 1) * p.hop_samples + p.window_samples
    out = []
    for _ in range(n):
        if noise and rng.random() < 0.85:
            src = noise[rng.integers(len(noise))]
            if len(src) < seg:
                src = np.tile(src, seg // max(1, len(src)) + 1)
            o = rng.integers(0, len(src) - seg + 1)
            x = src[o:o + seg] * np.float32(10 ** rng.uniform(-3, 0))
        else:
            x = rng.normal(0, 10 ** rng.uniform(-5, -2), seg).astype(np.float32)
        out.append(stack_context(lfbe(x.astype(np.float32), p), ctx, stride)[-1])
    return np.stack(out)


def source_multipliers(clips: list[Clip]) -> dict[tuple[str, str], float]:
    """(source, label) -> copies multiplier so that each source's share of its label's training
    windows is its weight's share of that label's weights. {} when the clips carry no sources."""
    if not any(c.source for c in clips):
        return {}
    count: dict[tuple[str, str], int] = {}
    weight: dict[tuple[str, str], float] = {}
    for c in clips:
        count[(c.source, c.label)] = count.get((c.source, c.label), 0) + 1
        weight[(c.source, c.label)] = c.weight
    out = {}
    for label in {k[1] for k in count}:
        keys = [k for k in count if k[1] == label]
        total_w = sum(weight[k] for k in keys)
        total_n = sum(count[k] for k in keys)
        if total_w <= 0:
            raise UserError(f"the sources of the {label} clips all have weight 0")
        for k in keys:
            out[k] = (weight[k] / total_w) * total_n / count[k]
    return out


def _source_kinds(dataset: Path) -> tuple[dict[str, str], str]:
    """({source name: kind}, kind of clips without a source) from the data set's info.json."""
    try:
        info = json.loads((Path(dataset) / "info.json").read_text())
    except (OSError, ValueError):
        return {}, "folder"
    kinds = {k: v.get("kind", "folder") for k, v in (info.get("per_source") or {}).items()}
    src = str(info.get("source", ""))
    return kinds, ("espeak" if src == "synthetic" or src.startswith("tts") else "folder")


_WORKER: dict = {}


def _worker_init(w: WindowConfig, dataset: str) -> None:
    die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _WORKER.update(w=w, p=lfbe_params(w.features), augment=_augmenter(w.data, Path(dataset).parent / "_augment_cache"))


def _clip_job(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one clip (all its copies); its rng depends only on (seed, clip index)."""
    path, label, seed, index, copies, split, neighbours, synthetic = job
    w, p, augment = _WORKER["w"], _WORKER["p"], _WORKER["augment"]
    rng = np.random.default_rng([seed, index])
    audio = load_audio(path, p.sample_rate, quiet=True)
    nb = [load_audio(n, p.sample_rate, quiet=True) if n else None for n in neighbours]
    xs, ys = [], []
    for k in range(copies):
        # training: copy 0 clean, the others augmented; val/test: one augmented copy.
        # Copy k uses neighbours 2k, 2k+1 (None = silence on that side).
        aug = augment if (k > 0 or split != "train") else None
        a = audio
        if aug is not None and synthetic and w.data.speaker_augment > 0 and rng.random() < w.data.speaker_augment:
            a = change_speaker(audio, rng)  # before labelling: the window labels follow its new timing
        wins, y = clip_windows(a, label, w.features, p, rng, aug, nb[2 * k], nb[2 * k + 1])
        xs.append(wins)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def split_jobs(data: DataConfig, dataset: Path, split: str) -> tuple[list[tuple], int]:
    """(per-clip jobs for ``_clip_job``, split seed): the windows of a split are the jobs' windows in
    job order, then the background windows (``split_background``)."""
    dataset = Path(dataset)
    clips = [c for c in read_manifest(dataset) if c.split == split]
    if not clips:
        raise UserError(f"{dataset}/manifest.csv: no clips in split '{split}'")
    seed = data.seed + {"train": 0, "val": 1, "test": 2}[split]
    copies = 1 + (max(0, data.augment_copies) if split == "train" and data.augment else 0)
    mult = source_multipliers(clips) if split == "train" else {}
    kinds, default_kind = _source_kinds(dataset)
    # running-speech context: each copy of a clip sits between pieces of other negative clips
    # of the same split (or silence), so windows that straddle two words are seen in training
    negs = [str(c.path) for c in clips if c.label == "negative"]
    jobs = []
    for i, c in enumerate(clips):
        r = np.random.default_rng([seed, i, 7])
        n = copies
        if mult:  # the source's share of its label's windows: stochastic rounding of copies x multiplier
            want = copies * mult[(c.source, c.label)]
            n = int(np.floor(want) + (r.random() < want - np.floor(want)))
            if n == 0:
                continue
        nb = tuple(negs[r.integers(len(negs))] if negs and r.random() < 0.6 else "" for _ in range(2 * n))
        jobs.append((str(c.path), c.label, seed, i, n, split, nb, kinds.get(c.source, default_kind) != "folder"))
    return jobs, seed


def split_background(w: WindowConfig, dataset: Path, seed: int, n_jobs: int, n_clip_windows: int) -> np.ndarray:
    """The _silence_ windows that follow a split's clip windows (1 per 6 of them, at least 64)."""
    rng = np.random.default_rng([seed, n_jobs])
    n_bg = max(64, n_clip_windows // 6)
    return background_windows(_noise(w.data, Path(dataset).parent / "_augment_cache"), n_bg, w.features, lfbe_params(w.features), rng)


def prepare_data(d: DataConfig, progress: bool = True) -> Path:
    """The data set folder of the data section ``d`` (prepared, or reused from the cache)."""
    src = d.source
    if src == "mix" or (src == "synthetic" and (d.sources or d.tts or d.negative_dirs or d.positive_dirs
                                                   or d.sentences)):
        return prepare_mix(d, progress=progress)
    if src == "synthetic":
        return prepare_synthetic(d, progress=progress)
    if src == "speech_commands":
        return prepare_speech_commands(d, progress=progress)
    if src == "folder":
        return prepare_folder(d, progress=progress)
    raise UserError(f"data.source: unknown source '{src}' (known: synthetic, mix, speech_commands, folder)")
