"""One way to load a model for scoring, and streaming scores over audio of any length.

``load_detector(path)`` accepts what a user has:

* a ``.tflite`` written by this project (its "subkws" metadata carries the feature parameters and
  normalization); the manifest ``<stem>.json`` beside it, when present, adds the detection
  settings (smoothing, refractory period, thresholds);
* a model manifest ``models/<name>.json`` (its ``model`` entry names the .tflite beside it);
* a run directory: its deployable ``model.tflite`` when there is one (QAT runs), otherwise the
  float Keras model (labelled ``keras`` in every result).

A .tflite is scored by the bit-exact integer reference (tflm_port.reference): the numbers are
those of the deployed model. Long audio is read in blocks (``stream_file``), so hours of audio
fit in a few hundred MB.

Detection rule (the same on host and device): keyword posterior per 10 ms hop -> causal moving
average over ``smoothing_frames`` -> a detection when it reaches the threshold -> ``refractory_s``
with no other detection.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from basics.audio import audio_blocks, load_audio
from basics.classes import KEYWORD_CLASS
from basics.errors import UserError, read_json
from training.features import (LfbeParams, Normalizer, lfbe, lfbe_params, num_frames, params_from_metadata,
                               stack_context, window_span)
from training.runs import keras_scorer, load_trained_model, open_run, tflite_scorer
from tflm_port.reference import Reference
from tflm_port.tflite_io import get_metadata, load_model

KEYWORD_LABEL = "keyword"
BLOCK_FRAMES = 6000  # 60 s of 10 ms hops per block


def smooth(post: np.ndarray, n: int) -> np.ndarray:
    """Causal moving average over the last n values (fewer at the start)."""
    if n <= 1:
        return np.asarray(post, np.float64)
    c = np.cumsum(np.concatenate([[0.0], np.asarray(post, np.float64)]))
    idx = np.arange(1, len(post) + 1)
    lo = np.maximum(0, idx - n)
    return (c[idx] - c[lo]) / (idx - lo)


def detect(smoothed: np.ndarray, times: np.ndarray, threshold: float, refractory_s: float) -> np.ndarray:
    """Detection times: first crossing of threshold, then a refractory period."""
    above = np.flatnonzero(smoothed >= threshold)
    if len(above) == 0:
        return np.zeros(0)
    ta = times[above]
    out = []
    i = 0
    while i < len(above):
        t = ta[i]
        out.append(t)
        i = int(np.searchsorted(ta, t + refractory_s, side="left"))
    return np.asarray(out, dtype=np.float64)


@dataclass
class Detector:
    """A model ready to score audio: features, normalization, scorer and detection settings."""

    name: str
    kind: str  # tflite | keras | peer
    lfbe: LfbeParams
    context_frames: int
    context_stride: int
    normalizer: Normalizer
    scorer: Callable[[np.ndarray], np.ndarray]  # normalized windows [N, D] -> posteriors [N, C]
    keyword_index: int
    smoothing_frames: int = 10
    refractory_s: float = 1.0
    manifest: dict = field(default_factory=dict)
    frames_scorer: Callable[[np.ndarray], np.ndarray] | None = None  # normalized frames -> keyword posteriors

    @property
    def model_bytes(self) -> int | None:
        return self.manifest.get("model_bytes")

    @property
    def span(self) -> int:
        return window_span(self.context_frames, self.context_stride)

    def posteriors_from_frames(self, feats: np.ndarray) -> np.ndarray:
        """Raw LFBE frames [T, 64] -> keyword posterior of each full window [T - span + 1]."""
        f = self.normalizer(feats)
        if self.frames_scorer is not None:
            return self.frames_scorer(f)
        n = max(0, len(f) - self.span + 1)
        if n == 0:
            return np.zeros(0)
        return self.scorer(stack_context(f, self.context_frames, self.context_stride))[:, self.keyword_index]

    def end_times(self, first_window: int, n: int) -> np.ndarray:
        """End time (s) of the audio seen by windows first_window .. first_window + n - 1."""
        p = self.lfbe
        end_frame = np.arange(first_window, first_window + n) + self.span - 1
        return (end_frame * p.hop_samples + p.window_samples) / p.sample_rate


@dataclass
class StreamScores:
    times: np.ndarray  # end time (s) of the audio each decision has seen
    posterior: np.ndarray  # raw keyword posterior per hop
    smoothed: np.ndarray  # the detection score: moving average of the posterior
    duration_s: float


def score_audio(det: Detector, audio: np.ndarray) -> StreamScores:
    """Scores of in-memory audio (block-wise, so memory stays bounded for long arrays too)."""
    return _score_blocks(det, _array_blocks(audio, det), len(audio))


def stream_file(det: Detector, path: str | Path) -> StreamScores:
    """Scores of an audio file of any length, read in blocks of about a minute."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise UserError(f"{path}: not a readable audio file ({str(e).splitlines()[0] if str(e) else e})") from None
    if info.samplerate != det.lfbe.sample_rate:
        return score_audio(det, load_audio(path, det.lfbe.sample_rate))
    step = BLOCK_FRAMES * det.lfbe.hop_samples  # samples a block (the rates are equal: nothing resampled)
    return _score_blocks(det, audio_blocks(path, info.samplerate, (step + 0.5) / info.samplerate), int(info.frames))


def _array_blocks(audio: np.ndarray, det: Detector):
    p = det.lfbe
    step = BLOCK_FRAMES * p.hop_samples
    for s in range(0, max(len(audio), 1), step):
        yield np.asarray(audio[s:s + step], np.float32)


def _score_blocks(det: Detector, blocks, total_samples: int) -> StreamScores:
    """Frames exactly as lfbe(whole audio) gives them, windows exactly as stack_context gives them."""
    p = det.lfbe
    tail = np.zeros(0, np.float32)
    ftail = np.zeros((0, p.num_mel_bins), np.float32)  # last span-1 frames
    posts = []
    for x in blocks:
        buf = np.concatenate([tail, x])
        nf = num_frames(len(buf), p)
        if nf == 0:
            tail = buf
            continue
        feats = lfbe(buf[: (nf - 1) * p.hop_samples + p.window_samples], p)
        tail = buf[nf * p.hop_samples:]  # shorter than a window: the next frame starts there
        f = np.concatenate([ftail, feats])
        posts.append(det.posteriors_from_frames(f))
        ftail = f[-(det.span - 1):] if det.span > 1 else f[:0]
    post = np.concatenate(posts) if posts else np.zeros(0)
    times = det.end_times(0, len(post))
    return StreamScores(times, post, smooth(post, det.smoothing_frames), total_samples / p.sample_rate)


def clip_max_scores(det: Detector, audios: list[np.ndarray], pad_s: float = 1.0) -> np.ndarray:
    """Highest detection score of each clip, streamed alone between ``pad_s`` of silence."""
    pad = np.zeros(int(pad_s * det.lfbe.sample_rate), np.float32)
    return np.array([score_audio(det, np.concatenate([pad, a, pad])).smoothed.max(initial=0.0) for a in audios])


# ----------------------------------------------------------------------------- loading
def _keyword_index(labels, where: str) -> int:
    if not isinstance(labels, list) or not labels:
        raise UserError(f"{where}: no class labels")
    for i, lab in enumerate(labels):
        if lab == KEYWORD_LABEL or (isinstance(lab, str) and not lab.startswith("_")):
            return i
    raise UserError(f"{where}: no keyword class among labels {labels}")


def detector_from_tflite(path: Path, manifest: dict | None = None) -> Detector:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    md = get_metadata(load_model(data, str(path))) or {}
    feats = md.get("features")
    if not isinstance(feats, dict):
        raise UserError(f"{path}: no 'features' in the model's subkws metadata (not exported by this project?)")
    p, ctx, stride = params_from_metadata(feats, str(path))
    norm = Normalizer.from_dict(feats.get("normalization") or {}, p.num_mel_bins, str(path))
    ref = Reference.from_bytes(data, str(path))
    stateful = any(hasattr(op, "reset") for op in ref.ops)   # streaming LSTM: one frame per run, state carried
    if int(np.prod(ref.input_shape)) != (1 if stateful else ctx) * p.num_mel_bins:
        raise UserError(f"{path}: model input {ref.input_shape} does not match {1 if stateful else ctx} frames x "
                        f"{p.num_mel_bins} bins")
    kw = _keyword_index(md.get("labels"), str(path))

    def frames_scorer(f: np.ndarray) -> np.ndarray:
        if len(f) < window_span(ctx, stride):
            return np.zeros(0)
        if stateful:   # the whole stream from a zero state; a score from the first full window on
            ref.reset_state()
            q = ref.quantize_input(np.asarray(f, np.float32).reshape((len(f),) + ref.input_shape))
            y = np.concatenate([ref.run(q[t:t + 1]) for t in range(len(f))])
            return ref._to_posteriors(y)[window_span(ctx, stride) - 1:, kw]  # noqa: SLF001
        return ref.posteriors_from_frames(f, ctx, stride)[:, kw]

    m = manifest or {}
    m.setdefault("model_bytes", len(data))
    name = m.get("name", path.stem)
    if not isinstance(name, str):
        raise UserError(f"{path}: the manifest's 'name' must be a string")
    where = f"{path}: manifest or metadata"
    return Detector(name=name, kind="tflite", lfbe=p, context_frames=ctx, context_stride=stride,
                    normalizer=norm, scorer=tflite_scorer(data) if stateful else ref.posteriors, keyword_index=kw,
                    smoothing_frames=int(_setting(m, md, "smoothing_frames", 10, 1, 1000, where, integer=True)),
                    refractory_s=_setting(m, md, "refractory_s", 1.0, 0.0, 3600.0, where), manifest=m,
                    frames_scorer=frames_scorer)


def _setting(manifest: dict, metadata: dict, key: str, default, lo, hi, where: str, integer: bool = False) -> float:
    """A detection setting from the manifest, else the model metadata, else ``default``; a value that
    is not a finite number in [lo, hi] (an integer when ``integer``) is one UserError line."""
    v = manifest.get(key, metadata.get(key, default))
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and lo <= v <= hi and (not integer or v == int(v))
    if not ok:
        raise UserError(f"{where}: {key} must be {'an integer' if integer else 'a number'} in [{lo}, {hi}], "
                        f"got {str(v)[:40]!r}")
    return float(v)


def detector_from_manifest(path: Path) -> Detector:
    path = Path(path)
    m = read_json(path, "model manifest", mapping=True)
    if not isinstance(m.get("model"), str):
        raise UserError(f"{path}: a model manifest needs 'model' (the .tflite file name beside it)")
    model = (path.parent / m["model"]).resolve()
    if not model.is_file():
        raise UserError(f"{path}: its model {m['model']} is not beside it")
    m.setdefault("name", path.stem)
    return detector_from_tflite(model, m)


def detector_from_run(run_dir: Path, prefer_keras: bool = False) -> Detector:
    run_dir = Path(run_dir)
    cfg, norm = open_run(run_dir)
    manifest = {"name": run_dir.name, "smoothing_frames": cfg.eval.smoothing_frames,
                "refractory_s": cfg.eval.refractory_s}
    if (run_dir / "model.tflite").is_file() and not prefer_keras:
        return detector_from_tflite(run_dir / "model.tflite", manifest)
    labels = read_json(run_dir / "labels.json", "class labels") if (run_dir / "labels.json").is_file() else None
    kw = _keyword_index(labels, str(run_dir)) if labels else KEYWORD_CLASS
    return Detector(name=run_dir.name, kind="keras", lfbe=lfbe_params(cfg.features),
                    context_frames=cfg.features.context_frames, context_stride=cfg.features.context_stride,
                    normalizer=norm, scorer=keras_scorer(load_trained_model(run_dir)), keyword_index=kw,
                    smoothing_frames=cfg.eval.smoothing_frames, refractory_s=cfg.eval.refractory_s, manifest=manifest)


def load_detector(path: str | Path, prefer_keras: bool = False) -> Detector:
    """A run directory, a .tflite (manifest beside it used when present) or a model manifest .json."""
    path = Path(path)
    if path.is_dir():
        return detector_from_run(path, prefer_keras)
    if not path.is_file():
        raise UserError(f"{path}: no such model, manifest or run directory")
    if path.suffix == ".json":
        return detector_from_manifest(path)
    side = path.with_suffix(".json")
    if side.is_file():
        m = read_json(side, "model manifest", mapping=True)
        if m.get("model") == path.name:
            m.setdefault("name", path.stem)
            return detector_from_tflite(path, m)
    return detector_from_tflite(path)


# ----------------------------------------------------------------------------- DET from clips + stream
def threshold_candidates(keyword_best: np.ndarray, smoothed: np.ndarray, max_points: int = 3000) -> np.ndarray:
    """Every threshold at which a DET curve can change: detections appear or vanish only at the
    stream's peak values (the ``max_points`` highest are kept) and keywords are found or missed only
    at their best scores; each peak is also taken just above itself (one detection fewer)."""
    sm = np.asarray(smoothed, np.float64)
    if len(sm) > 2:
        inner = (sm[1:-1] >= sm[:-2]) & (sm[1:-1] >= sm[2:])
        peaks = np.concatenate([sm[:1], sm[1:-1][inner], sm[-1:]])
    else:
        peaks = sm
    peaks = np.unique(peaks)[-max_points:]
    cand = np.unique(np.concatenate([np.asarray(keyword_best, np.float64), peaks, np.nextafter(peaks, np.inf)]))
    return cand[np.isfinite(cand)]


def det_points(pos_max: np.ndarray, neg: StreamScores, refractory_s: float, max_points: int = 3000) -> list[dict]:
    """DET curve from per-clip maxima of positive clips and detections on a negative stream.

    A positive clip is detected when its highest score reaches the threshold; false accepts are
    the detections (with the refractory period) on the negative stream. Candidate thresholds are
    the positive maxima, the negative stream's (highest ``max_points``) peak values and the numbers
    just above them: every operating point the data can show, with no grid in between.
    """
    hours = max(neg.duration_s / 3600.0, 1e-9)
    cand = threshold_candidates(np.asarray(pos_max, np.float64), neg.smoothed, max_points)
    pts = []
    for th in cand:
        fa = len(detect(neg.smoothed, neg.times, th, refractory_s))
        missed = int(np.sum(pos_max < th))
        pts.append({"threshold": float(th), "frr": missed / max(1, len(pos_max)), "missed": missed,
                    "fa_per_hour": fa / hours, "false_accepts": fa})
    return pts


def frr_at(points: list[dict], fah: float) -> tuple[float, float]:
    """(lowest FRR with false accepts/hour <= fah, its threshold); (1.0, 1.0) if none."""
    ok = [p for p in points if p["fa_per_hour"] <= fah]
    if not ok:
        return 1.0, 1.0
    best = min(ok, key=lambda p: (p["frr"], p["threshold"]))
    return best["frr"], best["threshold"]
