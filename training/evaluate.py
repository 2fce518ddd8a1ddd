"""Evaluation: per-clip accuracy and streaming detection (DET curve) for any run directory.

Streaming detection, the same rule on host and (later) on the device:
1. every 10 ms hop, the model scores the latest context window -> keyword posterior p_t;
2. posterior smoothing: moving average of the last ``smoothing_frames`` posteriors;
3. a detection fires when the smoothed posterior reaches the threshold, and then no other
   detection may fire for ``refractory_s`` seconds.
A detection is a true accept if it falls within [start, end + tolerance_s] of a labelled keyword
not yet matched; any other detection is a false accept. DET curve: false reject rate against
false accepts per hour, over thresholds.

CLI::

    python -m training.evaluate RUN_DIR                       # the run's own test stream and clips
    python -m training.evaluate RUN_DIR --stream long.wav --labels long.json
    python -m training.evaluate RUN_DIR --positives DIR --negatives DIR [--threshold T]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from training.config import Config, EvalConfig
from training.errors import UserError, atomic_path, atomic_write_text, cli_main

Scorer = Callable[[np.ndarray], np.ndarray]  # normalized windows [N, D] -> posteriors [N, C]
KEYWORD_CLASS = 2


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def smooth(post: np.ndarray, n: int) -> np.ndarray:
    """Causal moving average over the last n values (fewer at the start)."""
    if n <= 1:
        return post.astype(np.float64)
    c = np.cumsum(np.concatenate([[0.0], post.astype(np.float64)]))
    idx = np.arange(1, len(post) + 1)
    lo = np.maximum(0, idx - n)
    return (c[idx] - c[lo]) / (idx - lo)


def detect(smoothed: np.ndarray, times: np.ndarray, threshold: float, refractory_s: float) -> np.ndarray:
    """Detection times: first crossing of threshold, then refractory period."""
    above = np.flatnonzero(smoothed >= threshold)
    out = []
    i = 0
    while i < len(above):
        t = times[above[i]]
        out.append(t)
        i = int(np.searchsorted(times[above], t + refractory_s, side="left"))
    return np.asarray(out, dtype=np.float64)


def match(dets: np.ndarray, keywords: list[dict], tolerance_s: float) -> tuple[int, int]:
    """(true accepts, false accepts)."""
    used = np.zeros(len(keywords), bool)
    starts = np.array([k["start_s"] for k in keywords]) if keywords else np.zeros(0)
    ends = np.array([k["end_s"] for k in keywords]) + tolerance_s if keywords else np.zeros(0)
    ta = fa = 0
    for t in dets:
        hit = np.flatnonzero((starts <= t) & (t <= ends) & ~used)
        if len(hit):
            used[hit[0]] = True
            ta += 1
        else:
            fa += 1
    return ta, fa


@dataclass
class StreamScores:
    times: np.ndarray  # end time (s) of the audio each decision has seen
    posterior: np.ndarray  # keyword posterior per hop
    duration_s: float


def window_end_times(n: int, cfg: Config) -> np.ndarray:
    from training.dataset import lfbe_params
    from training.features import window_span

    p = lfbe_params(cfg)
    span = window_span(cfg.features.context_frames, cfg.features.context_stride)
    frame_end = (np.arange(n) + span - 1) * p.hop_samples + p.window_samples
    return frame_end / p.sample_rate


def audio_windows(audio: np.ndarray, cfg: Config, normalizer) -> np.ndarray:
    from training.dataset import lfbe_params
    from training.features import lfbe, stack_context

    feats = normalizer(lfbe(audio, lfbe_params(cfg)))
    return stack_context(feats, cfg.features.context_frames, cfg.features.context_stride)


def stream_scores(scorer: Scorer, audio: np.ndarray, cfg: Config, normalizer, batch: int = 8192) -> StreamScores:
    from training.dataset import lfbe_params
    from training.features import lfbe, stack_context, window_span

    feats = normalizer(lfbe(audio, lfbe_params(cfg)))
    ctx, stride = cfg.features.context_frames, cfg.features.context_stride
    span = window_span(ctx, stride)
    n = max(0, len(feats) - span + 1)
    parts = [scorer(stack_context(feats[i:i + batch + span - 1], ctx, stride))[:, KEYWORD_CLASS]
             for i in range(0, n, batch)]
    post = np.concatenate(parts) if parts else np.zeros(0)
    return StreamScores(window_end_times(n, cfg), post, len(audio) / cfg.features.sample_rate)


def det_curve(s: StreamScores, keywords: list[dict], ecfg: EvalConfig) -> list[dict]:
    sm = smooth(s.posterior, ecfg.smoothing_frames)
    hours = s.duration_s / 3600.0
    pts = []
    # a linear grid plus a fine one near 1, where well-trained posteriors saturate
    grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, ecfg.thresholds)[1:-1], 1.0 - np.logspace(-5, -1.3, 40)]))
    for th in grid:
        dets = detect(sm, s.times, th, ecfg.refractory_s)
        ta, fa = match(dets, keywords, ecfg.tolerance_s)
        frr = 1.0 - ta / max(1, len(keywords))
        pts.append({"threshold": float(th), "frr": float(frr), "fa_per_hour": float(fa / hours),
                    "false_accepts": int(fa), "true_accepts": int(ta)})
    return pts


def frr_at(points: list[dict], fah: float) -> tuple[float, float]:
    """(lowest FRR with false accepts/hour <= fah, its threshold); (1.0, 1.0) if none."""
    ok = [p for p in points if p["fa_per_hour"] <= fah]
    if not ok:
        return 1.0, 1.0
    best = min(ok, key=lambda p: (p["frr"], p["threshold"]))
    return best["frr"], best["threshold"]


def clip_scores(scorer: Scorer, audios: list[np.ndarray], cfg: Config, normalizer) -> np.ndarray:
    """Max smoothed keyword posterior per clip (clips padded with 0.35 s of silence each side)."""
    from training.dataset import PAD_S

    pad = np.zeros(int(PAD_S * cfg.features.sample_rate), np.float32)
    wins, owner = [], []
    for i, a in enumerate(audios):
        w = audio_windows(np.concatenate([pad, a, pad]), cfg, normalizer)
        wins.append(w)
        owner.append(np.full(len(w), i))
    post = scorer(np.concatenate(wins))[:, KEYWORD_CLASS]
    owner = np.concatenate(owner)
    out = np.zeros(len(audios))
    for i in range(len(audios)):
        out[i] = smooth(post[owner == i], cfg.eval.smoothing_frames).max(initial=0.0)
    return out


def plot_det(curves: dict[str, list[dict]], path: Path, title: str = "DET curve") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, pts in curves.items():
        pts = sorted(pts, key=lambda p: p["fa_per_hour"])
        ax.plot([max(p["fa_per_hour"], 1e-2) for p in pts], [100 * p["frr"] for p in pts], marker=".", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false reject rate (%)")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def load_stream_labels(path: Path) -> tuple[list[dict], float | None]:
    try:
        d = json.loads(Path(path).read_text())
        kws = d["keywords"]
        for k in kws:
            float(k["start_s"]), float(k["end_s"])
    except FileNotFoundError:
        raise UserError(f"{path}: no such label file") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a stream label file ({type(e).__name__}: {e})") from None
    return kws, d.get("duration_s")


def evaluate_stream(scorer: Scorer, wav: Path, labels: Path, cfg: Config, normalizer) -> dict:
    from training.audio import load_audio

    audio = load_audio(wav, cfg.features.sample_rate)
    kws, _ = load_stream_labels(labels)
    s = stream_scores(scorer, audio, cfg, normalizer)
    pts = det_curve(s, kws, cfg.eval)
    f1, t1 = frr_at(pts, 1.0)
    f05, t05 = frr_at(pts, 0.5)
    return {"audio": str(wav), "hours": s.duration_s / 3600, "keywords": len(kws), "det": pts,
            "frr_at_1fah": f1, "threshold_at_1fah": t1, "frr_at_0p5fah": f05, "threshold_at_0p5fah": t05}


def evaluate_folders(scorer: Scorer, positives: list[Path], negatives: list[Path], threshold: float,
                     cfg: Config, normalizer) -> dict:
    """Recall on positive clips (each streamed alone) and false accepts/hour on the negatives
    streamed back to back, at one threshold."""
    from training.audio import list_audio, load_audio

    sr = cfg.features.sample_rate
    pos = [f for d in positives for f in list_audio(d)]
    neg = [f for d in negatives for f in list_audio(d)]
    res: dict = {"threshold": threshold}
    if pos:
        sc = clip_scores(scorer, [load_audio(f, sr) for f in pos], cfg, normalizer)
        res.update(positives=len(pos), recall=float(np.mean(sc >= threshold)))
    if neg:
        audio = np.concatenate([load_audio(f, sr) for f in neg])
        s = stream_scores(scorer, audio, cfg, normalizer)
        dets = detect(smooth(s.posterior, cfg.eval.smoothing_frames), s.times, threshold, cfg.eval.refractory_s)
        res.update(negatives=len(neg), negative_hours=s.duration_s / 3600,
                   false_accepts=int(len(dets)), fa_per_hour=float(len(dets) / (s.duration_s / 3600)))
    return res


def keras_scorer(model) -> Scorer:
    def f(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, model.output_shape[-1]))
        return softmax(np.asarray(model.predict(x, batch_size=4096, verbose=0), dtype=np.float64))

    return f


def tflite_scorer(model: bytes | str | Path) -> Scorer:
    """Score windows with a converted .tflite through the bit-exact integer reference."""
    from tflm_port.reference import Reference

    ref = Reference.from_bytes(model) if isinstance(model, (bytes, bytearray)) else Reference.from_file(model)

    def f(x: np.ndarray) -> np.ndarray:
        return ref.posteriors(x)

    return f


def load_run(run_dir: Path):
    """(cfg, normalizer, scorer) of a finished run directory (float or QAT Keras model)."""
    from training.features import Normalizer

    run_dir = Path(run_dir)
    for f in ("config.json", "normalizer.json"):
        if not (run_dir / f).is_file():
            raise UserError(f"{run_dir}: not a run directory (no {f})")
    cfg = Config.from_dict(json.loads((run_dir / "config.json").read_text()), str(run_dir / "config.json"))
    norm = Normalizer(**json.loads((run_dir / "normalizer.json").read_text()))
    from training.train import load_trained_model

    model = load_trained_model(run_dir)
    return cfg, norm, keras_scorer(model)


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a run directory written by training/train.py")
    ap.add_argument("--stream", type=Path, help="long audio file to score (needs --labels)")
    ap.add_argument("--labels", type=Path, help="label JSON of --stream (keywords with start_s/end_s)")
    ap.add_argument("--positives", type=Path, action="append", default=[], help="folder of keyword clips (repeatable)")
    ap.add_argument("--negatives", type=Path, action="append", default=[], help="folder of non-keyword audio (repeatable)")
    ap.add_argument("--threshold", type=float, help="detection threshold for --positives/--negatives "
                    "(default: the run's threshold at 1 false accept/hour)")
    ap.add_argument("--out", type=Path, help="where to write the JSON result (default: stdout only)")
    a = ap.parse_args(argv)
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cfg, norm, scorer = load_run(a.run_dir)
    if a.stream:
        if not a.labels:
            raise UserError("--stream needs --labels")
        res = evaluate_stream(scorer, a.stream, a.labels, cfg, norm)
        png = (a.out.with_suffix(".png") if a.out else a.run_dir / "det_custom.png")
        plot_det({a.stream.name: res["det"]}, png)
        res["det_png"] = str(png)
    elif a.positives or a.negatives:
        th = a.threshold
        if th is None:
            rep = a.run_dir / "report.json"
            if not rep.is_file():
                raise UserError(f"{rep}: no report to take the threshold from; give --threshold")
            th = json.loads(rep.read_text())["stream"]["threshold_at_1fah"]
        res = evaluate_folders(scorer, a.positives, a.negatives, th, cfg, norm)
    else:
        from training.train import evaluate_run

        res = evaluate_run(a.run_dir, cfg, norm, scorer)
    text = json.dumps({k: v for k, v in res.items() if k != "det"}, indent=2)
    print(text)
    if a.out:
        atomic_write_text(a.out, json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main()
