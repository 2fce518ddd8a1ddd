"""Development benchmark on real recordings: our models beside microWakeWord, same audio, same rule.

Audio (../shared/data by default; never used for training by this project):
* positives: the 80 real "alexa" clips of Picovoice's wake-word benchmark (real/picovoice_wwb/alexa_dev),
  each streamed alone between 1 s of silence; a clip is detected when its highest score reaches
  the threshold;
* negatives: Picovoice's "computer", "jarvis" and "smart mirror" recordings (~58 min of real wake
  phrases by many speakers) streamed back to back; every detection there is a false accept.
The DET curve sweeps the threshold over every score the data shows (training/scoring.py).

A third figure, ``--hard-negatives``: the other real folders of the data (Mycroft Precise community
recordings of other wake words and of false activations, made on users' devices; OpenVoiceOS false
activations; a Speech Commands sample; ~56 min), every clip between 0.25 s of silence. The `demo`
recipe never trains on them (the `full` recipe does: its rows are not scored there). They are harder
than the Picovoice negatives: other wake words that sound partly like "alexa" ("athena", "amelia"),
recorded through real microphones. Rows gain ``frr_at_1fah_hard`` (FRR at 1 FA/h with these as the
negatives), ``frr_at_5fah_hard`` (the same at 5 FA/h: set by the five top-scoring negative events, not one, so
steadier from run to run), ``fah_hard_at_threshold_1fah`` (their false accepts per hour at the threshold of the
main figure), ``fah_hard_by_folder`` and ``top_hard_negatives``: the files of the highest-scoring negative
events (path relative to the data folder, the file's highest smoothed score, and how many positives score
below it), so a user sees *what* sets the figure: on a half hour of negatives, 1 FA/h is set by one event.

What a user's own real negatives buy (``--hard-half``): every hard-negative file falls in one of two halves
by a hash of its path. ``--link-hard-train DIR`` links the "train" half into DIR, for a run's
``data.negative_dirs`` (a user's recorded false activations and household speech); ``--hard-half eval``
scores the hard figure on the other half only, and the rows say so (``hard_half``; the summary table
shows them as their own rows). The halves share speakers and rooms, as a user's own recordings would.

What a user's own keyword recordings buy (``--keyword-half``): the 80 real "alexa" clips in name order,
every other one in the "train" half (40 each). ``--link-keyword-train DIR`` links the "train" half into DIR,
for a run's ``data.positive_dirs``; ``--keyword-half eval`` scores on the other 40 only (rows gain
``keyword_half``; the summary shows them as their own rows). The main negatives stay held out, so a model
that learned the recording channel of those clips instead of the word shows it there: the Picovoice
negatives were recorded the same way as the keyword clips.

    python -m bench.devbench models/alexa-w4.tflite runs/x --compare microwakeword \\
        [--data ../shared/data] [--png bench/dev_det.png] [--record bench/accuracy.json --tag recipe=... ]

Each model gives one row (FRR at 0.5 and 1 FA/h, clips missed, thresholds, model bytes, and
``positive_score_quantiles``: the 10th and 50th percentile of the positives' highest smoothed scores, how
sure the model is of real keywords, which no FRR figure shows until a negative outscores them); with
``--record`` the rows are merged into bench/accuracy.json (``benchmark: "dev_real"``; a row
replaces an earlier one with the same name, recipe, weight_bits, seed, density and sparsity kind).
Rows of .tflite models carry ``density`` (1.0 when dense) and ``sparsity_kind`` from the model's metadata.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from basics.audio import list_audio, load_audio
from basics.atomic import atomic_path, atomic_write_text
from basics.errors import UserError, cli_main
from bench.records import replace_block
from training.evaluate import plot_det
from tflm_port.tflite_io import get_metadata, load_model
from training.peers import load_peer
from training.scoring import (StreamScores, clip_max_scores, det_points, detect, frr_at, load_detector, score_audio,
                              stream_file)

POSITIVES = "real/picovoice_wwb/alexa_dev"
NEGATIVES = ("real/picovoice_wwb/computer", "real/picovoice_wwb/jarvis", "real/picovoice_wwb/smart_mirror")
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAD_S = 1.0
HARD_NEGATIVES = ("real/mycroft_precise/*", "real/ovos_false_activations", "real/sc_v1_sample")
HARD_GAP_S = 0.25
TOP_HARD = 5  # top_hard_negatives: how many files
HALVES = ("train", "eval")


def keyword_halves(files: list[Path]) -> dict[str, list[Path]]:
    """The two halves of the positive clips: in name order, even positions "train", odd ones "eval"."""
    files = sorted(files, key=lambda f: f.name)
    return {"train": files[0::2], "eval": files[1::2]}


def hard_half(rel: str) -> str:
    """The half ("train" or "eval") of a hard-negative file, by its path under the data folder."""
    return HALVES[int(hashlib.sha256(rel.encode()).hexdigest(), 16) % 2]


class DevAudio:
    """The benchmark audio, loaded once."""

    def __init__(self, data: Path, positives: str = POSITIVES, negatives: tuple[str, ...] = NEGATIVES,
                 hard_half: str | None = None, keyword_half: str | None = None):
        data = Path(data)
        self.hard_half = hard_half   # None: every hard-negative file; "train" / "eval": that half only
        self.keyword_half = keyword_half  # None: all positive clips; "train" / "eval": that half (keyword_halves)
        if not (data / positives).is_dir():
            raise UserError(f"{data}: the development data is not there (no {positives}); give --data")
        self.pos_files = list_audio(data / positives)
        if keyword_half:
            self.pos_files = keyword_halves(self.pos_files)[keyword_half]
        self.neg_files = [f for d in negatives for f in list_audio(data / d)]
        if not self.pos_files or not self.neg_files:
            raise UserError(f"{data}: no audio in the benchmark folders")
        self.positives = [load_audio(f, quiet=True) for f in self.pos_files]
        self.negatives = np.concatenate([load_audio(f, quiet=True) for f in self.neg_files])
        self.negative_hours = len(self.negatives) / 16000 / 3600
        self.data = data
        self._hard = None
        self._hard_files = None  # [(file relative to data, first sample, end sample)] of the hard stream

    def hard_files(self, patterns: tuple[str, ...] = HARD_NEGATIVES) -> dict[Path, list[Path]]:
        """folder -> its hard-negative files (of self.hard_half only, when set)."""
        dirs = sorted({d for p in patterns for d in self.data.glob(p) if d.is_dir()})
        return {d: [f for f in list_audio(d) if self.hard_half is None
                    or hard_half(f.relative_to(self.data).as_posix()) == self.hard_half] for d in dirs}

    def hard_negatives(self, patterns: tuple[str, ...] = HARD_NEGATIVES) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
        """(audio, [(folder, first sample, end sample)]): the hard real negatives, loaded once."""
        if self._hard is None:
            gap = np.zeros(int(HARD_GAP_S * 16000), np.float32)
            parts, spans, file_spans, n = [], [], [], 0
            for d, files in self.hard_files(patterns).items():
                start = n
                for f in files:
                    a = load_audio(f, quiet=True).astype(np.float32)
                    parts += [gap, a, gap]
                    file_spans.append((f.relative_to(self.data).as_posix(), n, n + len(a) + 2 * len(gap)))
                    n += len(a) + 2 * len(gap)
                spans.append((str(d.relative_to(self.data)), start, n))
            self._hard_files = file_spans
            if not parts:
                raise UserError(f"{self.data}: no hard-negative folders ({', '.join(patterns)})")
            self._hard = (np.concatenate(parts), spans)
        return self._hard

    def hard_file_spans(self, patterns: tuple[str, ...] = HARD_NEGATIVES) -> list[tuple[str, int, int]]:
        """[(file relative to the data folder, first sample, end sample)] of the hard-negative stream."""
        self.hard_negatives(patterns)
        return self._hard_files


def top_files(scores: StreamScores, file_spans: list[tuple[str, int, int]], pos: np.ndarray,
              n: int = TOP_HARD) -> list[dict]:
    """The n files of a concatenated stream with the highest smoothed score (each decision belongs to the file
    whose span holds the end of the audio it has seen), with how many positive clip scores fall below each."""
    if not file_spans or len(scores.smoothed) == 0:
        return []
    ends = np.array([b for _, _, b in file_spans], np.float64) / 16000
    owner = np.minimum(np.searchsorted(ends, np.asarray(scores.times, np.float64), side="left"), len(ends) - 1)
    best = np.full(len(file_spans), -np.inf)
    np.maximum.at(best, owner, np.asarray(scores.smoothed, np.float64))
    order = [int(i) for i in np.argsort(-best, kind="stable")[:n] if np.isfinite(best[i])]
    return [{"file": file_spans[i][0], "score": round(float(best[i]), 4),
             "positives_below": int(np.sum(pos < best[i]))} for i in order]


def _scores(model, audio: np.ndarray) -> StreamScores:
    return model.score(audio) if hasattr(model, "score") else score_audio(model, audio)


def evaluate_model(model, dev: DevAudio, long_negatives: Path | None = None, hard: bool = False) -> dict:
    t0 = time.time()
    pad = np.zeros(int(PAD_S * 16000), np.float32)
    if hasattr(model, "score"):
        pos = np.array([_scores(model, np.concatenate([pad, a, pad])).smoothed.max(initial=0.0) for a in dev.positives])
    else:
        pos = clip_max_scores(model, dev.positives, PAD_S)
    neg = _scores(model, dev.negatives)
    pts = det_points(pos, neg, model.refractory_s)
    f1, t1 = frr_at(pts, 1.0)
    f05, t05 = frr_at(pts, 0.5)
    extra = {}
    if long_negatives is not None:  # the second FA/h figure: hours of synthetic negatives (bench/negstream.py)
        if hasattr(model, "score"):
            longs = model.score(load_audio(long_negatives, quiet=True))
        else:
            longs = stream_file(model, long_negatives)
        lpts = det_points(pos, longs, model.refractory_s)
        fl, tl = frr_at(lpts, 1.0)
        hours = longs.duration_s / 3600
        hits = detect(longs.smoothed, longs.times, t1, model.refractory_s)
        extra = {"long_negative_hours": round(hours, 3), "frr_at_1fah_long": fl, "threshold_at_1fah_long": tl,
                 "missed_at_1fah_long": int(round(fl * len(pos))),
                 "fah_long_at_threshold_1fah": round(len(hits) / max(hours, 1e-9), 3)}
        by_kind = false_accepts_by_kind(long_negatives, np.asarray(hits))
        if by_kind:
            extra["fah_long_by_kind"] = by_kind
    if hard:  # the third figure: real negatives of other wake words and false activations
        audio, spans = dev.hard_negatives()
        hs = _scores(model, audio)
        hpts = det_points(pos, hs, model.refractory_s)
        fh, th = frr_at(hpts, 1.0)
        f5, _ = frr_at(hpts, 5.0)   # five false accepts an hour: less at the mercy of the single top-scoring negative
        hours = len(audio) / 16000 / 3600
        hits = detect(hs.smoothed, hs.times, t1, model.refractory_s)
        extra.update({**({"hard_half": dev.hard_half} if dev.hard_half else {}),
                      "hard_negative_hours": round(hours, 3), "frr_at_1fah_hard": fh, "threshold_at_1fah_hard": th,
                      "missed_at_1fah_hard": int(round(fh * len(pos))),
                      "frr_at_5fah_hard": f5, "missed_at_5fah_hard": int(round(f5 * len(pos))),
                      "fah_hard_at_threshold_1fah": round(len(hits) / max(hours, 1e-9), 3),
                      "fah_hard_by_folder": {name: round(int(np.sum((hits > a / 16000) & (hits <= b / 16000)))
                                                         / max((b - a) / 16000 / 3600, 1e-9), 2)
                                             for name, a, b in spans},
                      "top_hard_negatives": top_files(hs, dev.hard_file_spans(), pos)})
    if dev.keyword_half:
        extra["keyword_half"] = dev.keyword_half
    return {"name": model.name, "kind": model.kind, "positives": len(pos), "negative_hours": round(dev.negative_hours, 4),
            "frr_at_1fah": f1, "threshold_at_1fah": t1, "missed_at_1fah": int(round(f1 * len(pos))),
            "frr_at_0p5fah": f05, "threshold_at_0p5fah": t05, "missed_at_0p5fah": int(round(f05 * len(pos))),
            "positive_score_quantiles": {q: round(float(np.quantile(pos, int(q) / 100)), 4) for q in ("10", "50")},
            "smoothing_frames": model.smoothing_frames, "refractory_s": model.refractory_s,
            **extra, "seconds": round(time.time() - t0, 1), "det": pts}


def false_accepts_by_kind(long_negatives: Path, times: np.ndarray) -> dict:
    """False accepts per hour of each block kind of a bench.negstream stream (its JSON's ``blocks``)."""
    desc = Path(long_negatives).with_suffix(".json")
    try:
        blocks = json.loads(desc.read_text())["blocks"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    hours: dict[str, float] = {}
    hits: dict[str, int] = {}
    for kind, a, b in blocks:
        hours[kind] = hours.get(kind, 0.0) + (b - a) / 3600
        hits[kind] = hits.get(kind, 0) + int(np.sum((times > a) & (times <= b)))
    return {k: round(hits[k] / hours[k], 2) for k in hours if hours[k] > 0}


def plot(rows: list[dict], path: Path, title: str) -> None:
    plot_det({r["name"]: r["det"] for r in rows}, path, title)


def sparsity(path: Path) -> dict:
    """``density`` (fraction of weights kept by pruning, weighted over all weight layers; 1.0 when dense)
    and ``sparsity_kind`` of a .tflite model or a run directory's model.tflite, from the ``prune`` entry
    training writes into the subkws metadata (training/prune.py); {} for other models."""
    p = Path(path) / "model.tflite" if Path(path).is_dir() else Path(path)
    if p.suffix != ".tflite" or not p.is_file():
        return {}
    md = get_metadata(load_model(p.read_bytes(), str(p))) or {}
    pr = md.get("prune")
    if not isinstance(pr, dict):
        return {"density": 1.0, "sparsity_kind": "dense"}
    out = {"density": pr.get("density"), "sparsity_kind": pr.get("sparsity_kind"), "prune_layers": pr.get("layers")}
    if md.get("layer_sparsity"):
        out["layer_sparsity"] = md["layer_sparsity"]
    return out


def link_half(dev: DevAudio, dest: Path, keywords: bool = False) -> None:
    """Link every file of dev's hard half (``keywords``: its keyword half) into one flat folder ``dest``
    (made atomically; replaced if there)."""
    files = dev.pos_files if keywords else [f for fs in dev.hard_files().values() for f in fs]
    if not files:
        raise UserError(f"{dev.data}: no {'keyword' if keywords else 'hard-negative'} audio to link")
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for f in files:
            os.symlink(f.resolve(), tmp / f.relative_to(dev.data).as_posix().replace("/", "__"))
    half = dev.keyword_half if keywords else dev.hard_half
    print(f"{len(files)} {'keyword ' if keywords else ''}files of the '{half}' half linked into {dest}")


def merge_records(path: Path, new: list[dict]) -> None:
    old = json.loads(path.read_text()) if path.is_file() else []
    if not isinstance(old, list):
        raise UserError(f"{path}: expected a JSON list of records")

    def key(r):
        return (r.get("benchmark"), r.get("name"), r.get("recipe"), r.get("weight_bits"), r.get("seed"),
                r.get("activation_bits", 8), r.get("quantizer_preset", "tailored"), r.get("density", 1.0),
                r.get("sparsity_kind", "dense"), r.get("keyword_half"))

    fresh = {key(r) for r in new}
    atomic_write_text(path, json.dumps([r for r in old if key(r) not in fresh] + new, indent=1) + "\n")


def summary_table(records: list[dict]) -> str:
    """Markdown table of the dev_real records: one row per (recipe, weight bits), mean and spread over seeds."""
    rows: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("benchmark") == "dev_real":
            recipe = str(r.get("recipe", r.get("name"))) + (" (naive)" if r.get("quantizer_preset") == "naive" else "") + (
                f" [hard negatives: {r['hard_half']} half]" if r.get("hard_half") else "") + (
                f" [keywords: {r['keyword_half']} half]" if r.get("keyword_half") else "")
            shapes = [x for x in r.get("layer_sparsity") or [] if x != "none"]   # e.g. block:8 (1 x 8), block:4x8
            kind = r.get("sparsity_kind", "dense") + (f" {shapes[0].split(':', 1)[1]}" if len(set(shapes)) == 1
                                                      and ":" in shapes[0] else "")
            rows.setdefault((recipe, r.get("weight_bits", 32), r.get("activation_bits", 8), r.get("density", 1.0),
                             kind), []).append(r)

    def stat(rs, k):
        v = [100 * float(r[k]) for r in rs if k in r]
        if not v:
            return "-"
        m = sum(v) / len(v)
        return f"{m:.1f}%" + (f" ({min(v):.1f}-{max(v):.1f})" if len(v) > 1 else "") + (
            f" [{len(v)} seeds]" if len(v) != len(rs) else "")

    def bits_key(b):
        return -b if isinstance(b, (int, float)) else -min(int(x) for x in str(b).split(","))

    out = ["| model | weight bits | bytes | seeds | FRR @ 1 FA/h, mean (min-max) | FRR @ 0.5 FA/h | clips missed @ 1 FA/h "
           "| FRR @ 1 FA/h, long synthetic negatives | FRR @ 1 FA/h, real hard negatives | FRR @ 5 FA/h, real hard negatives |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for (recipe, bits, abits, dens, kind), rs in sorted(rows.items(), key=lambda kv: (
            kv[0][0] != "microwakeword", kv[0][0], bits_key(kv[0][1] or 0), -(kv[0][2] or 0), -(kv[0][3] or 0))):
        nbytes = sorted({r.get("model_bytes") for r in rs if r.get("model_bytes")})
        shown = "float" if bits == 32 else (f"{bits} (per layer)" if isinstance(bits, str) else str(bits))
        shown += f" (a{abits})" if abits < 8 else ""
        shown += f", {100 * dens:.4g} % of weights kept ({kind})" if dens is not None and dens < 1.0 else ""
        out.append(f"| {recipe} | {shown} | {', '.join(f'{b:,}' for b in nbytes) or '-'} | "
                   f"{len(rs)} | {stat(rs, 'frr_at_1fah')} | {stat(rs, 'frr_at_0p5fah')} | "
                   f"{', '.join(str(r['missed_at_1fah']) for r in rs)} of {rs[0]['positives']} | "
                   f"{stat(rs, 'frr_at_1fah_long')} | {stat(rs, 'frr_at_1fah_hard')} | {stat(rs, 'frr_at_5fah_hard')} |")
    return "\n".join(out)


# The ablation ladder of issue 10, in order: each rung is a recipe of the records and what it adds to the
# rung above it (the Kokoro rung is a side arm: not in the recipes below it). Rows scored on the eval half of
# the hard negatives; a rung whose recipe ends in "user40" on the eval half of the keywords too (its other half
# is the user's own recordings), every other rung on all the keywords.
LADDER = (
    ("espeak-only", "espeak-ng voices alone, plain recipe (16 sound-alike words)"),
    ("ladder-1-three-tts", "+ piper and flite voices"),
    ("ladder-2-speaker-aug", "+ speaker augmentation"),
    ("ladder-3-fa-recipe", "+ false-accept recipe: penalty 2, SpecAugment, epochs chosen by FA/h"),
    ("demo", "+ one round of hard-negative mining"),
    ("demo-soundalikes64", "+ 64 sound-alike words (`make demo`)"),
    ("realneg", "+ 0.37 h of real negatives of one's own"),
    ("realneg-realnoise", "+ 8.9 min of real background noise"),
    ("realneg-realnoise-kokoro", "side arm: + 300 Kokoro-82M speakers (not kept)"),
    ("realneg-realnoise-negweight1", "false-accept penalty 1 instead of 2"),
    ("realneg-realnoise-negweight1-nomining", "no hard-negative mining (the shipped models' recipe)"),
    ("realnoise-user40", "side arm: penalty 1 with mining + 40 real keyword takes of one's own (scored on the other 40)"),
)


def ladder_table(records: list[dict], ladder=LADDER) -> str:
    """Markdown table of the ablation ladder: per rung, float and 4-bit (8-bit activations, dense, tailored)
    over seeds, on the eval half of the real hard negatives (and of the keywords for the user rung)."""
    def pick(recipe, bits):
        return [r for r in records if r.get("benchmark") == "dev_real" and r.get("recipe") == recipe
                and r.get("weight_bits") == bits and r.get("hard_half") == "eval"
                and r.get("keyword_half") in (None, "eval") and r.get("activation_bits", 8) == 8
                and r.get("density", 1.0) == 1.0 and r.get("quantizer_preset", "tailored") != "naive"
                and (r.get("keyword_half") == "eval") == recipe.endswith("user40")]

    def missed(rs):
        if not rs:
            return "-"
        m = sum(r["missed_at_1fah"] for r in rs) / len(rs)
        return f"{m:.1f} ({', '.join(str(r['missed_at_1fah']) for r in rs)}) of {rs[0]['positives']}"

    def frr(rs, k):
        v = [100 * float(r[k]) for r in rs if k in r]
        return f"{sum(v) / len(v):.1f}%" if v else "-"

    out = ["| rung | what it adds | seeds float / 4-bit | missed @ 1 FA/h, main figure: float | 4-bit "
           "| hard @ 1 FA/h: float | 4-bit | hard @ 5 FA/h: float | 4-bit |",
           "|---|---|---|---|---|---|---|---|---|"]
    for recipe, what in ladder:
        f, q = pick(recipe, 32), pick(recipe, 4)
        if not f and not q:
            continue
        out.append(f"| {recipe} | {what} | {len(f)} / {len(q)} | {missed(f)} | {missed(q)} | "
                   f"{frr(f, 'frr_at_1fah_hard')} | {frr(q, 'frr_at_1fah_hard')} | "
                   f"{frr(f, 'frr_at_5fah_hard')} | {frr(q, 'frr_at_5fah_hard')} |")
    return "\n".join(out)


def fill_block(text: str, name: str, body: str, path: Path) -> str:
    """``text`` with the generated ``<!-- NAME --> ... <!-- /NAME -->`` block replaced by ``body``."""
    return replace_block(text, f"<!-- {name} -->", f"<!-- /{name} -->", body, path)


# Issue 12's accuracy rows: each model of the shipped recipe at each operand precision. (model, recipe, label,
# weight bits, activation bits, quantizer preset); every row on the eval half of the real hard negatives.
QUANT_ROWS = tuple(
    (model, recipe, label, wb, ab, preset)
    for model, recipe in (("ffnn250k", "realneg-realnoise-negweight1-nomining"), ("lstm", "lstm1x64-realnoise"))
    for label, wb, ab, preset in (("float", 32, 32, None), ("w8a8", 8, 8, "tailored"), ("w4a8", 4, 8, "tailored"),
                                  ("w4a4", 4, 4, "tailored"), ("w4a4, naive preset", 4, 4, "naive"),
                                  ("w2a4", 2, 4, "tailored")))


def quant_table(records: list[dict], rows=QUANT_ROWS) -> str:
    """Markdown table of issue 12's rows: per model and operand precision, the seeds' main and hard figures."""
    def model_of(r):   # rows written before issue 12 name the FFNN "ffnn" or nothing
        return "ffnn250k" if r.get("model") in (None, "ffnn") else r["model"]

    def pick(model, recipe, wb, ab, preset):
        return [r for r in records if r.get("benchmark") == "dev_real" and r.get("recipe") == recipe
                and model_of(r) == model and r.get("weight_bits") == wb
                and r.get("activation_bits", 32 if wb == 32 else 8) == ab and r.get("hard_half") == "eval"
                and r.get("keyword_half") is None and r.get("density", 1.0) == 1.0
                and (wb == 32 or r.get("quantizer_preset", "tailored") == preset)]

    out = ["| model | weights / activations | seeds | missed @ 1 FA/h, main figure: mean (each) | hard @ 1 FA/h "
           "| hard @ 5 FA/h | model bytes |", "|---|---|---|---|---|---|---|"]
    for model, recipe, label, wb, ab, preset in rows:
        rs = pick(model, recipe, wb, ab, preset)
        if not rs:
            continue
        m = sum(r["missed_at_1fah"] for r in rs) / len(rs)
        hard = [f"{sum(100 * float(r[k]) for r in rs) / len(rs):.1f}%" if all(k in r for r in rs) else "-"
                for k in ("frr_at_1fah_hard", "frr_at_5fah_hard")]
        nbytes = sorted({r["model_bytes"] for r in rs if r.get("model_bytes")})
        out.append(f"| {model} ({recipe}) | {label} | {len(rs)} | {m:.1f} ({', '.join(str(r['missed_at_1fah']) for r in rs)})"
                   f" of {rs[0]['positives']} | {hard[0]} | {hard[1]} | {', '.join(f'{b:,}' for b in nbytes) or '-'} |")
    return "\n".join(out)


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.devbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path, help="run directories, .tflite files or model manifests")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="development data folder (default ../shared/data)")
    ap.add_argument("--compare", action="append", default=[], choices=["microwakeword"], help="peer to score too")
    ap.add_argument("--long-negatives", type=Path, metavar="AUDIO",
                    help="a long negative stream (python -m bench.negstream) for the second FA/h figure")
    ap.add_argument("--hard-negatives", action="store_true",
                    help="third figure: the data's other real folders (other wake words, false activations) as negatives")
    ap.add_argument("--hard-half", choices=HALVES, help="score the hard negatives of this half only (the other is "
                    "for training: --link-hard-train)")
    ap.add_argument("--link-hard-train", type=Path, metavar="DIR", help="link the 'train' half of the hard "
                    "negatives into DIR (for data.negative_dirs) and exit")
    ap.add_argument("--keyword-half", choices=HALVES, help="score on this half of the keyword clips only (the "
                    "other is a user's own recordings: --link-keyword-train)")
    ap.add_argument("--link-keyword-train", type=Path, metavar="DIR", help="link the 'train' half of the keyword "
                    "clips into DIR (for data.positive_dirs) and exit")
    ap.add_argument("--png", type=Path, help="DET plot of all models")
    ap.add_argument("--out", type=Path, help="JSON with every row and its DET points")
    ap.add_argument("--record", type=Path, help="merge rows (without DET points) into this records file")
    ap.add_argument("--tag", action="append", default=[], help="KEY=VALUE added to every recorded row "
                    "(recipe=..., seed=..., weight_bits=...)")
    ap.add_argument("--summary", type=Path, metavar="RECORDS", help="print the table of a records file and exit")
    ap.add_argument("--readme", type=Path, help="with --summary: write the tables into this file's "
                    "<!-- devbench-summary -->, <!-- devbench-ladder --> and <!-- devbench-quant --> blocks")
    a = ap.parse_args(argv)
    if a.summary:
        records = json.loads(a.summary.read_text())
        table, ladder, quant = summary_table(records), ladder_table(records), quant_table(records)
        print(table + "\n\n" + ladder + "\n\n" + quant)
        if a.readme:
            text = fill_block(a.readme.read_text(), "devbench-summary", table, a.readme)
            text = fill_block(text, "devbench-ladder", ladder, a.readme)
            atomic_write_text(a.readme, fill_block(text, "devbench-quant", quant, a.readme))
        return 0
    if a.link_hard_train:
        link_half(DevAudio(a.data, hard_half="train"), a.link_hard_train)
        return 0
    if a.link_keyword_train:
        link_half(DevAudio(a.data, keyword_half="train"), a.link_keyword_train, keywords=True)
        return 0
    if not a.models and not a.compare:
        raise UserError("give at least one model or --compare microwakeword")
    dev = DevAudio(a.data, hard_half=a.hard_half, keyword_half=a.keyword_half)
    if a.long_negatives is not None and not a.long_negatives.is_file():
        raise UserError(f"{a.long_negatives}: no such audio file (build it with python -m bench.negstream)")
    models = [load_detector(m) for m in a.models]
    if a.compare:
        models += [load_peer(c) for c in a.compare]
    rows = []
    for i, m in enumerate(models):
        r = evaluate_model(m, dev, a.long_negatives, a.hard_negatives)
        if getattr(m, "model_bytes", None):
            r["model_bytes"] = m.model_bytes
        if i < len(a.models) and m.kind == "tflite":
            r.update(sparsity(a.models[i]))
        rows.append(r)
        print(f"{r['name']:<40} FRR {100 * r['frr_at_1fah']:5.1f}% @1 FA/h ({r['missed_at_1fah']}/{r['positives']} missed)"
              f"  {100 * r['frr_at_0p5fah']:5.1f}% @0.5 FA/h"
              + (f"  | long synthetic negatives: FRR {100 * r['frr_at_1fah_long']:5.1f}% @1 FA/h, "
                 f"{r['fah_long_at_threshold_1fah']:.2f} FA/h at the real 1 FA/h threshold" if "frr_at_1fah_long" in r else "")
              + (f"  | real hard negatives: FRR {100 * r['frr_at_1fah_hard']:5.1f}% @1 FA/h, "
                 f"{r['fah_hard_at_threshold_1fah']:.2f} FA/h at the 1 FA/h threshold" if "frr_at_1fah_hard" in r else "")
              + f"   [{r['seconds']} s]", flush=True)
        for t in r.get("top_hard_negatives", [])[:3]:
            print(f"    top hard negative {t['score']:.3f} ({t['positives_below']} positives below): {t['file']}")
    if a.png:
        plot(rows, a.png, f"dev benchmark: {len(dev.pos_files)} real 'alexa', {dev.negative_hours:.2f} h real negatives")
    if a.out:
        atomic_write_text(a.out, json.dumps(rows, indent=1) + "\n")
    if a.record:
        tags = {}
        for t in a.tag:
            k, _, v = t.partition("=")
            if not k or not _:
                raise UserError(f"--tag {t!r}: expected KEY=VALUE")
            try:
                tags[k] = json.loads(v)
            except json.JSONDecodeError:
                tags[k] = v
        recs = [{"benchmark": "dev_real", **{k: v for k, v in r.items() if k != "det"}, **tags,
                 "command": "python -m bench.devbench", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")} for r in rows]
        merge_records(a.record, recs)
    return 0


if __name__ == "__main__":
    main()
