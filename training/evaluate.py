"""Evaluation: per-clip accuracy and streaming detection (DET curve) for any deployable model.

Streaming detection, the same rule on host and (later) on the device:
1. every 10 ms hop, the model scores the latest context window -> keyword posterior p_t;
2. posterior smoothing: moving average of the last ``smoothing_frames`` posteriors;
3. a detection fires when the smoothed posterior reaches the threshold, and then no other
   detection may fire for ``refractory_s`` seconds.
A detection is a true accept if it falls within [start, end + tolerance_s] of a labelled keyword
not yet matched; any other detection is a false accept. DET curve: false reject rate against
false accepts per hour, over thresholds.

MODEL is a .tflite (scored by the bit-exact integer reference; a manifest <name>.json beside it
adds smoothing, refractory period and thresholds), a model manifest .json, or a run directory
(its model.tflite when it has one, else its Keras model; --keras forces the Keras model).

CLI::

    python -m training.evaluate models/alexa-w4.tflite --stream long.flac --scores-out s.npz
    python -m training.evaluate MODEL --stream long.wav --labels long.json [--compare microwakeword]
    python -m training.evaluate MODEL --positives DIR --negatives DIR [--threshold T] [--compare microwakeword]
    python -m training.evaluate RUN_DIR                       # the run's own test stream and clips
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
import os

import numpy as np

from training.config import Config, EvalConfig, FeatureConfig
from basics.atomic import atomic_path, atomic_write_text
from basics.classes import KEYWORD_CLASS
from basics.errors import UserError, cli_main, read_json
from training.scoring import detect, frr_at, smooth  # noqa: F401  (the detection rule lives in scoring; re-exported)
from training.runs import Scorer, keras_scorer, load_run, softmax, tflite_scorer  # noqa: F401  (re-exported)
from training.runs import run_dataset
from basics.audio import list_audio, load_audio
from training.dataset import PAD_S, read_manifest
from training.features import lfbe, lfbe_params, stack_context, window_span
from training.peers import load_peer
from training.scoring import (clip_max_scores, det_points, load_detector, score_audio, stream_file,
                              threshold_candidates)


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


def window_end_times(n: int, features: FeatureConfig) -> np.ndarray:
    p = lfbe_params(features)
    span = window_span(features.context_frames, features.context_stride)
    frame_end = (np.arange(n) + span - 1) * p.hop_samples + p.window_samples
    return frame_end / p.sample_rate


def audio_windows(audio: np.ndarray, features: FeatureConfig, normalizer) -> np.ndarray:
    feats = normalizer(lfbe(audio, lfbe_params(features)))
    return stack_context(feats, features.context_frames, features.context_stride)


def stream_scores(scorer: Scorer, audio: np.ndarray, features: FeatureConfig, normalizer, batch: int = 8192) -> StreamScores:
    feats = normalizer(lfbe(audio, lfbe_params(features)))
    ctx, stride = features.context_frames, features.context_stride
    span = window_span(ctx, stride)
    n = max(0, len(feats) - span + 1)
    parts = [scorer(stack_context(feats[i:i + batch + span - 1], ctx, stride))[:, KEYWORD_CLASS]
             for i in range(0, n, batch)]
    post = np.concatenate(parts) if parts else np.zeros(0)
    return StreamScores(window_end_times(n, features), post, len(audio) / features.sample_rate)


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


def clip_scores(scorer: Scorer, audios: list[np.ndarray], features: FeatureConfig, normalizer,
                ecfg: EvalConfig) -> np.ndarray:
    """Max smoothed keyword posterior per clip (clips padded with 0.35 s of silence each side)."""
    pad = np.zeros(int(PAD_S * features.sample_rate), np.float32)
    wins, owner = [], []
    for i, a in enumerate(audios):
        w = audio_windows(np.concatenate([pad, a, pad]), features, normalizer)
        wins.append(w)
        owner.append(np.full(len(w), i))
    post = scorer(np.concatenate(wins))[:, KEYWORD_CLASS]
    owner = np.concatenate(owner)
    out = np.zeros(len(audios))
    for i in range(len(audios)):
        out[i] = smooth(post[owner == i], ecfg.smoothing_frames).max(initial=0.0)
    return out


def plot_det(curves: dict[str, list[dict]], path: Path, title: str = "DET curve") -> None:
    import matplotlib  # lazy: heavy dependency, loaded only when this runs

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy dependency, loaded only when this runs

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    floor = 1e-2  # 0 false accepts is drawn here (log axis)
    for name, pts in curves.items():
        best: dict[float, float] = {}  # the operating points: lowest FRR at each false-accept rate
        for p in pts:
            best[p["fa_per_hour"]] = min(best.get(p["fa_per_hour"], 1.0), p["frr"])
        xs = sorted(best)
        ys, low = [], 1.0
        for x in xs:  # a higher FA/h never needs a higher FRR: the lower envelope
            low = min(low, best[x])
            ys.append(100 * low)
        ax.step([max(x, floor) for x in xs], ys, where="post", marker=".", label=name)
    ax.set_xscale("log")
    ax.set_xlabel(f"false accepts per hour ({floor:g} = none)")
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
            start, end = float(k["start_s"]), float(k["end_s"])
            if not (np.isfinite(start) and np.isfinite(end) and 0 <= start <= end):
                raise ValueError(f"keyword at {k['start_s']!r}..{k['end_s']!r} s is not a finite time span")
    except FileNotFoundError:
        raise UserError(f"{path}: no such label file") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a stream label file ({type(e).__name__}: {e})") from None
    return kws, d.get("duration_s")


def evaluate_stream(scorer: Scorer, wav: Path, labels: Path, features: FeatureConfig, normalizer,
                    ecfg: EvalConfig) -> dict:
    audio = load_audio(wav, features.sample_rate)
    kws, _ = load_stream_labels(labels)
    s = stream_scores(scorer, audio, features, normalizer)
    pts = det_curve(s, kws, ecfg)
    f1, t1 = frr_at(pts, 1.0)
    f05, t05 = frr_at(pts, 0.5)
    return {"audio": str(wav), "hours": s.duration_s / 3600, "keywords": len(kws), "det": pts,
            "frr_at_1fah": f1, "threshold_at_1fah": t1, "frr_at_0p5fah": f05, "threshold_at_0p5fah": t05}


def evaluate_folders(scorer: Scorer, positives: list[Path], negatives: list[Path], threshold: float,
                     features: FeatureConfig, normalizer, ecfg: EvalConfig) -> dict:
    """Recall on positive clips (each streamed alone) and false accepts/hour on the negatives
    streamed back to back, at one threshold."""
    sr = features.sample_rate
    pos = [f for d in positives for f in list_audio(d)]
    neg = [f for d in negatives for f in list_audio(d)]
    res: dict = {"threshold": threshold}
    if pos:
        sc = clip_scores(scorer, [load_audio(f, sr) for f in pos], features, normalizer, ecfg)
        res.update(positives=len(pos), recall=float(np.mean(sc >= threshold)))
    if neg:
        audio = np.concatenate([load_audio(f, sr) for f in neg])
        s = stream_scores(scorer, audio, features, normalizer)
        dets = detect(smooth(s.posterior, ecfg.smoothing_frames), s.times, threshold, ecfg.refractory_s)
        res.update(negatives=len(neg), negative_hours=s.duration_s / 3600,
                   false_accepts=int(len(dets)), fa_per_hour=float(len(dets) / (s.duration_s / 3600)))
    return res


def evaluate_run(run_dir: Path, cfg: Config, norm, scorer, dataset: Path | None = None, name: str = "") -> dict:
    """Per-clip accuracy on the test clips and the streaming DET curve on the test stream."""
    run_dir = Path(run_dir)
    if dataset is None:
        dataset = run_dataset(run_dir)
    clips = [c for c in read_manifest(dataset) if c.split == "test"]
    sc = clip_scores(scorer, [load_audio(c.path, cfg.features.sample_rate) for c in clips], cfg.features, norm, cfg.eval)
    truth = np.array([c.label == "keyword" for c in clips])
    acc = float(np.mean((sc >= 0.5) == truth))
    stream = evaluate_stream(scorer, dataset / "stream" / "test.wav", dataset / "stream" / "test.json", cfg.features, norm,
                             cfg.eval)
    det = stream.pop("det")
    report = {
        "run_dir": str(run_dir), "name": name or run_dir.name, "model": cfg.model.name,
        "weight_bits": cfg.quant.weight_bits, "clip_accuracy": acc, "test_clips": len(clips),
        "keyword_clip_recall_at_0p5": float(np.mean(sc[truth] >= 0.5)) if truth.any() else None,
        "stream": stream,
    }
    atomic_write_text(run_dir / "det.json", json.dumps(det, indent=1) + "\n")
    plot_det({report["name"]: det}, run_dir / "det.png", title=f"DET, {report['name']}, synthetic test stream")
    report["det_png"] = str(run_dir / "det.png")
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def labelled_det(s, keywords: list[dict], refractory_s: float, tolerance_s: float, max_points: int = 3000) -> list[dict]:
    """DET of a labelled stream from its detection scores (training.scoring.StreamScores)."""
    sm = s.smoothed
    best = []
    for k in keywords:  # every keyword's best score decides whether it can be detected
        m = (s.times >= k["start_s"]) & (s.times <= k["end_s"] + tolerance_s)
        if m.any():
            best.append(sm[m].max())
    cand = threshold_candidates(np.array(best), sm, max_points)
    hours = s.duration_s / 3600.0
    pts = []
    for th in cand:
        ta, fa = match(detect(sm, s.times, th, refractory_s), keywords, tolerance_s)
        pts.append({"threshold": float(th), "frr": 1.0 - ta / max(1, len(keywords)),
                    "fa_per_hour": fa / max(hours, 1e-9), "false_accepts": fa, "true_accepts": ta})
    return pts


def _summary(pts: list[dict]) -> dict:
    f1, t1 = frr_at(pts, 1.0)
    f05, t05 = frr_at(pts, 0.5)
    return {"frr_at_1fah": f1, "threshold_at_1fah": t1, "frr_at_0p5fah": f05, "threshold_at_0p5fah": t05}


def _json_safe(x):
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def score_stream_cli(models: list, stream: Path, labels: Path | None, scores_out: Path | None,
                     tolerance_s: float) -> dict:
    kws = load_stream_labels(labels)[0] if labels else None
    res: dict = {"audio": str(stream), "models": {}}
    curves = {}
    for i, m in enumerate(models):
        if hasattr(m, "score"):  # a peer: in-memory audio
            s = m.score(load_audio(stream, 16000))
        else:
            s = stream_file(m, stream)
        if labels and len(kws) and s.duration_s > 0 and max(k["end_s"] for k in kws) > s.duration_s + 1e-3:
            print(f"warning: {labels}: labels run past the end of {stream} ({s.duration_s:.1f} s)", file=sys.stderr)
        r = {"name": m.name, "kind": m.kind, "hours": s.duration_s / 3600, "decisions": int(len(s.times)),
             "smoothing_frames": int(m.smoothing_frames), "refractory_s": float(m.refractory_s)}
        if i == 0 and scores_out:
            with atomic_path(scores_out) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, scores=s.smoothed.astype(np.float32), times=s.times.astype(np.float64),
                             posteriors=s.posterior.astype(np.float32))
            r["scores_out"] = str(scores_out)
        if kws is not None:
            pts = labelled_det(s, kws, m.refractory_s, tolerance_s)
            r.update(keywords=len(kws), **_summary(pts))
            curves[m.name] = pts
        res["models"][m.name] = r
    res["curves"] = curves
    return res


def score_folders_cli(models: list, positives: list[Path], negatives: list[Path], threshold: float | None) -> dict:
    pos_files = [f for d in positives for f in list_audio(d)]
    neg_files = [f for d in negatives for f in list_audio(d)]
    if positives and not pos_files:
        raise UserError(f"{', '.join(map(str, positives))}: no audio files among the positives")
    if negatives and not neg_files:
        raise UserError(f"{', '.join(map(str, negatives))}: no audio files among the negatives")
    pos_audio = [load_audio(f, 16000) for f in pos_files]
    neg_audio = np.concatenate([load_audio(f, 16000) for f in neg_files]) if neg_files else None
    res: dict = {"positives": len(pos_files), "negatives": len(neg_files), "models": {}}
    curves = {}
    pad = np.zeros(16000, np.float32)
    for m in models:
        def sc(a):
            return m.score(a) if hasattr(m, "score") else score_audio(m, a)

        pos = (np.array([sc(np.concatenate([pad, a, pad])).smoothed.max(initial=0.0) for a in pos_audio])
               if hasattr(m, "score") else clip_max_scores(m, pos_audio))
        r: dict = {"name": m.name, "kind": m.kind}
        neg = sc(neg_audio) if neg_audio is not None else None
        if neg is not None:
            r["negative_hours"] = neg.duration_s / 3600
        if threshold is not None:
            if pos_files:
                r["recall"] = float(np.mean(pos >= threshold))
            if neg is not None:
                fa = len(detect(neg.smoothed, neg.times, threshold, m.refractory_s))
                r.update(false_accepts=fa, fa_per_hour=fa / max(neg.duration_s / 3600, 1e-9))
            r["threshold"] = threshold
        if pos_files and neg is not None:
            pts = det_points(pos, neg, m.refractory_s)
            r.update(_summary(pts))
            curves[m.name] = pts
        res["models"][m.name] = r
    res["curves"] = curves
    return res


def default_threshold(det, model: Path) -> float | None:
    """The threshold at 1 false accept/hour from the model's manifest, else from a run directory's
    report.json; None when neither has one. A value that is not a number in [0, 1] is one UserError."""
    th, where = None, f"{model}: manifest"
    found = det.manifest.get("thresholds")
    if found is not None:
        if not isinstance(found, dict):
            raise UserError(f"{where}: 'thresholds' must be an object (fa_per_hour_1, fa_per_hour_0p5)")
        th = found.get("fa_per_hour_1")
    if th is None and model.is_dir() and (model / "report.json").is_file():
        where = str(model / "report.json")
        rep = read_json(model / "report.json", "run report", mapping=True)
        if not isinstance(rep.get("stream"), dict):
            raise UserError(f"{where}: corrupt run report (no 'stream' object)")
        th = rep["stream"].get("threshold_at_1fah")
    if th is None:
        return None
    if isinstance(th, bool) or not isinstance(th, (int, float)) or not 0.0 <= th <= 1.0:
        raise UserError(f"{where}: threshold at 1 FA/h must be a number in [0, 1], got {str(th)[:40]!r}")
    return float(th)


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a .tflite (manifest <name>.json beside it used when present), a model "
                    "manifest .json, or a run directory written by training/train.py")
    ap.add_argument("--stream", type=Path, help="long audio file to score (read in blocks: hours fit in memory)")
    ap.add_argument("--labels", type=Path, help="label JSON of --stream (keywords with start_s/end_s): DET curve")
    ap.add_argument("--scores-out", type=Path, help="write the per-hop detection scores of --stream to this .npz: "
                    "arrays scores (smoothed keyword posterior, what the threshold applies to), times (end time in s "
                    "of the audio each decision has seen) and posteriors (before smoothing)")
    ap.add_argument("--positives", type=Path, action="append", default=[], help="folder of keyword clips (repeatable)")
    ap.add_argument("--negatives", type=Path, action="append", default=[], help="folder of non-keyword audio (repeatable)")
    ap.add_argument("--threshold", type=float, help="detection threshold for --positives/--negatives "
                    "(default: the manifest's or run's threshold at 1 false accept/hour)")
    ap.add_argument("--compare", action="append", default=[], choices=["microwakeword"],
                    help="score a pretrained peer on the same audio, same rule; both DET curves in one PNG")
    ap.add_argument("--keras", action="store_true", help="score a run's Keras model instead of its model.tflite")
    ap.add_argument("--out", type=Path, help="where to write the JSON result (default: stdout only)")
    ap.add_argument("--png", type=Path, help="DET plot (default: beside --out, or det_custom.png in a run directory)")
    a = ap.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if a.threshold is not None and not (0.0 <= a.threshold <= 1.0):
        raise UserError(f"--threshold must be a number in [0, 1], got {a.threshold}")
    if a.scores_out and not a.stream:
        raise UserError("--scores-out needs --stream")

    det = load_detector(a.model, prefer_keras=a.keras)
    models = [det]
    if a.compare:
        models += [load_peer(c, det.refractory_s) for c in a.compare]
    tol = EvalConfig().tolerance_s
    if a.stream:
        res = score_stream_cli(models, a.stream, a.labels, a.scores_out, tol)
    elif a.positives or a.negatives:
        th = a.threshold if a.threshold is not None else default_threshold(det, a.model)
        res = score_folders_cli(models, a.positives, a.negatives, th)
    elif a.model.is_dir():
        cfg, norm, scorer = load_run(a.model, keras=a.keras)
        res = evaluate_run(a.model, cfg, norm, scorer, name=f"{a.model.name} (Keras model)" if a.keras else "")
        res.pop("det", None)
    else:
        raise UserError(f"{a.model}: give --stream (with --labels or --scores-out) or --positives/--negatives")
    curves = res.pop("curves", {})
    if curves:
        png = a.png or (a.out.with_suffix(".png") if a.out else
                        (a.model / "det_custom.png" if a.model.is_dir() else None))
        if png:
            plot_det(curves, png)
            res["det_png"] = str(png)
    print(json.dumps(_json_safe(res), indent=2))
    if a.out:
        atomic_write_text(a.out, json.dumps(_json_safe({**res, "det": curves}), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    main()
