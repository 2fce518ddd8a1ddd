"""Training data from many sources, mixed by weight, in one data set.

``data.sources`` (a list in the config file) names every source::

    data:
      keyword: alexa
      sources:
        - {kind: espeak, weight: 1}                                  # today's espeak-ng set
        - {kind: kokoro, speakers: 450, weight: 3}                   # needs data.kokoro_voices
        - {kind: piper, speakers: 200, weight: 1}
        - {kind: flite, speakers: 100, weight: 0.5}
        - {kind: folder, role: negative, path: /data/real_speech, weight: 2}
        - {kind: folder, role: positive, path: /data/my_recordings, weight: 2}
        - {kind: folder, role: noise, path: /data/noise}

Kinds: ``espeak`` (data_scripts.synthetic), ``kokoro`` / ``piper`` / ``flite`` / ``festival``
(data_scripts.tts), ``folder`` (audio files), ``sentences`` (running speech of 5-15 words that never
holds the keyword, spoken by the TTS backends named in ``backends`` — default every installed one —
and cut into clips: data_scripts.sentences; ``speakers`` per backend, ``negative_clips`` sentences
per speaker). Roles: ``speech`` (a TTS source's keyword *and* negative clips; the
default for TTS kinds), ``positive`` (keyword clips), ``negative`` (anything that is not the
keyword: speech, music, recorded false activations), ``labelled`` (a folder laid out as
<keyword>/ + other subfolders), ``noise`` (background for augmentation and the streams).

A ``positive`` folder also gives negatives cut from its own takes (``counterparts``, on unless
``counterparts: false``): the head and the tail of each take's speech (45 % each, so never the whole
word) and the take reversed, in the take's split and with its weight. They sound like the user's
microphone, room and voice without being the keyword, so the model cannot learn "recorded like the
user's takes" instead of the word (docs/recipe.md, "Your own keyword recordings").

The weight sets each source's share of the training windows *within its label*: keyword windows
are split between the positive sources in proportion to their weights, negative windows between
the negative sources (a source with 0.24 h of real speech and weight 2 is seen twice as often as
one with 1.5 h and weight 1). Val/test clips are not weighted.

``prepare_mix(data_cfg)`` prepares each source (each cached on its own), then writes the mix data
set: ``manifest.csv`` (paths relative to it, plus ``source`` and ``weight`` columns), the val/test
streams from the mix's own val/test clips, and ``info.json`` with clips and hours per source.

Shortcuts that need no list: ``data.tts`` (``all`` = espeak and every other installed backend;
or a comma list such as ``espeak,piper``) and ``data.negative_dirs`` / ``data.positive_dirs`` /
``data.noise_dirs`` (positive folders at ``data.positive_weight``, 0.25); ``data.sentences: N`` adds a ``sentences`` source (N sentences per backend of
``data.tts``, weight ``data.sentences_weight``).
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from data_scripts.streaming import finish_dataset
from data_scripts.common import (LABELS, MANIFEST_COLUMNS, SPLITS, is_prepared, normalize_keyword,
                                 note, params_hash, read_manifest_rows, slug)
from data_scripts.sentences import prepare_sentences
from data_scripts.tts import BACKENDS, available_backends, prepare_tts
from basics.atomic import atomic_path, clean_stale_temporaries
from basics.errors import UserError
from data_scripts.config import DataConfig
from data_scripts.noise import noise_source
from data_scripts.speech_commands import prepare_audio_folder
from data_scripts.synthetic import prepare_synthetic

MIX_VERSION = 1
KINDS = (*BACKENDS, "folder", "sentences")
SENTENCES_PER_SPEAKER = 4
# keys added after mixes were first cached: left out of the mix hash while they hold their default
_NEW_KEYS = {"backends": "", "counterparts": False}
ROLES = ("speech", "positive", "negative", "labelled", "noise")
DEFAULT_SPEAKERS = {"kokoro": 300, "piper": 150, "flite": 60, "festival": 45}
DEFAULT_SENTENCE_SPEAKERS = 40
MIX_COLUMNS = (*MANIFEST_COLUMNS, "source", "weight")


@dataclass
class Source:
    kind: str
    role: str = ""
    weight: float = 1.0
    path: str = ""
    speakers: int = 0
    keyword_clips: int = 4
    negative_clips: int = 4
    name: str = ""
    backends: str = ""  # sentences: comma list of TTS backends ("" = every installed one)
    counterparts: bool = True  # positive folders: negatives cut from each keyword take (head, tail, reversed)

    def label_for(self, label: str) -> bool:
        """Does this source contribute clips of ``label`` (keyword / negative)?"""
        if self.role in ("speech", "labelled"):
            return True
        return (self.role == "positive") == (label == "keyword")


def _source(d, i: int) -> Source:
    where = f"data.sources[{i}]"
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected a mapping with 'kind', got {d!r}")
    unknown = set(d) - {f for f in Source.__dataclass_fields__}
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(Source.__dataclass_fields__)})")
    try:
        s = Source(**d)
        s.weight, s.speakers = float(s.weight), int(s.speakers)
        s.keyword_clips, s.negative_clips = int(s.keyword_clips), int(s.negative_clips)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: {e}") from None
    if s.kind not in KINDS:
        raise UserError(f"{where}: unknown source kind '{s.kind}' (known: {', '.join(KINDS)})")
    s.role = s.role or ("speech" if s.kind in BACKENDS else "negative" if s.kind == "sentences" else "")
    if s.role not in ROLES:
        raise UserError(f"{where}: role '{s.role}' (known: {', '.join(ROLES)})")
    if s.kind == "folder":
        if s.role == "speech":
            raise UserError(f"{where}: a folder's role is positive, negative, labelled or noise")
        if not s.path:
            raise UserError(f"{where}: a folder source needs 'path'")
        if not Path(s.path).is_dir():
            raise UserError(f"{where}: {s.path}: no such folder")
    elif s.kind == "sentences":
        if s.role != "negative":
            raise UserError(f"{where}: a sentences source's role is negative")
        for b in [b.strip() for b in s.backends.split(",") if b.strip()]:
            if b not in BACKENDS:
                raise UserError(f"{where}: unknown TTS backend '{b}' in backends (known: {', '.join(BACKENDS)})")
    elif s.role not in ("speech", "positive", "negative"):
        raise UserError(f"{where}: a {s.kind} source's role is speech, positive or negative")
    if not isinstance(s.counterparts, bool):
        raise UserError(f"{where}: counterparts must be true or false, got {s.counterparts!r}")
    s.counterparts = s.counterparts and s.kind == "folder" and s.role == "positive"
    if s.backends and s.kind != "sentences":
        raise UserError(f"{where}: 'backends' is a key of sentences sources only")
    if not (s.weight >= 0) or s.weight != s.weight or s.weight == float("inf"):
        raise UserError(f"{where}: weight must be a finite number >= 0, got {d.get('weight')}")
    if s.speakers < 0 or s.keyword_clips < 0 or s.negative_clips < 0:
        raise UserError(f"{where}: speakers / keyword_clips / negative_clips must be >= 0")
    s.name = s.name or (f"{s.kind}:{Path(s.path).name}" if s.kind == "folder" else s.kind)
    return s


def parse_sources(data: DataConfig) -> list[Source]:
    """The source list of a DataConfig (its ``sources``, or built from the shortcuts)."""
    raw = list(data.sources or [])
    names: list[str] = []
    if not raw and data.tts:
        names = [n.strip() for n in str(data.tts).split(",") if n.strip()]
        left_out = [n[1:] for n in names if n.startswith("-")]
        for n in left_out:
            if n not in BACKENDS:
                raise UserError(f"data.tts: unknown TTS backend '{n}' in '-{n}' (known: {', '.join(BACKENDS)})")
        names = [n for n in names if not n.startswith("-")]
        if left_out and names != ["all"]:
            raise UserError(f"data.tts: '-{left_out[0]}' leaves a backend out of 'all' only (e.g. all,-festival)")
        if names == ["all"]:
            ok, missing = available_backends(data.kokoro_voices, data.root)
            for n, why in missing.items():
                if n not in left_out:
                    note(f"note: TTS backend {n} skipped: {why}")
            names = [n for n in ok if n not in left_out]
        for n in names:
            raw.append({"kind": n})
        if not names:
            raise UserError("data.tts: no TTS backend is installed (espeak-ng at least: apt-get install espeak-ng)")
    if raw or data.negative_dirs or data.positive_dirs or data.sentences:
        if not raw:
            raw.append({"kind": "espeak"})
        if data.sentences:
            per = SENTENCES_PER_SPEAKER
            raw.append({"kind": "sentences", "speakers": max(3, -(-int(data.sentences) // per)),
                        "negative_clips": per, "weight": data.sentences_weight,
                        "backends": ",".join(names or [d["kind"] for d in raw if d.get("kind") in BACKENDS])})
        for role, dirs in (("negative", data.negative_dirs), ("positive", data.positive_dirs),
                           ("noise", data.noise_dirs)):
            raw += [{"kind": "folder", "role": role, "path": str(p),
                     **({"weight": data.positive_weight} if role == "positive" else {})} for p in dirs or []]
    srcs = [_source(d, i) for i, d in enumerate(raw)]
    names = [s.name for s in srcs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UserError(f"data.sources: two sources named {sorted(dup)[0]!r}: give them distinct 'name's")
    for label in LABELS:
        ws = [s.weight for s in srcs if s.role != "noise" and s.label_for(label)]
        if srcs and not ws:
            raise UserError(f"data.sources: no source gives {label} clips")
        if ws and sum(ws) <= 0:
            raise UserError(f"data.sources: the weights of the {label} sources sum to zero")
    warning = channel_warning(srcs)
    if warning:
        note(warning)
    return srcs


def channel_warning(srcs: list[Source]) -> str:
    """A warning when the keyword and the negatives come from different kinds of audio.

    If every real recording in the mix is a keyword (the user's own clips) and every negative is
    synthetic, "recorded by a microphone" alone tells the classes apart: measured here, 32 real
    keyword clips added to the synthetic demo set took the FRR on 40 other real clips from 0% to
    52.5% (bench/user_recordings.json). Real negatives with synthetic keywords (the usual recipe) are
    not flagged: there the real channel points away from the keyword, the safe direction.
    """
    real = [s for s in srcs if s.kind == "folder" and s.role != "noise"]
    real_pos = [s for s in real if s.label_for("keyword")]
    real_neg = [s for s in real if s.label_for("negative")]
    if real_pos and not real_neg:
        return (f"warning: data.sources: the keyword has real recordings ({', '.join(s.name for s in real_pos)}) but "
                "every negative is synthetic; the model can learn the microphone instead of the word. Add real "
                "negative speech recorded the same way (data.negative_dirs), e.g. the same people saying other words")
    return ""


def _prepare_one(s: Source, data: DataConfig, progress: bool) -> Path:
    if s.kind == "espeak":
        return prepare_synthetic(replace(data, stream_minutes=min(5.0, data.stream_minutes), noise_dir=""),
                                 progress=progress)
    if s.kind == "sentences":
        names = [b.strip() for b in s.backends.split(",") if b.strip()]
        if not names:
            names, missing = available_backends(data.kokoro_voices, data.root)
            for n, why in missing.items():
                note(f"note: sentences: TTS backend {n} skipped: {why}")
        return prepare_sentences(data.keyword, names, speakers=s.speakers or DEFAULT_SENTENCE_SPEAKERS,
                                 per_speaker=s.negative_clips, seed=data.seed, root=data.root,
                                 kokoro_voices=data.kokoro_voices, progress=progress)
    if s.kind in BACKENDS:
        return prepare_tts(s.kind, data.keyword, num_speakers=s.speakers or DEFAULT_SPEAKERS[s.kind],
                           keyword_clips=s.keyword_clips, negative_clips=s.negative_clips, seed=data.seed,
                           root=data.root, kokoro_voices=data.kokoro_voices, stream_minutes=2.0, progress=progress,
                           soundalikes=data.soundalikes, lexicon=data.lexicon)

    return prepare_audio_folder(Path(s.path), s.role, data.keyword, data.root, data.seed, progress=progress,
                                counterparts=s.counterparts)


def mix_params(srcs: list[Source], data: DataConfig) -> dict:
    return {"mix": MIX_VERSION, "keyword": normalize_keyword(data.keyword), "seed": int(data.seed),
            "stream_minutes": float(data.stream_minutes),
            **({"soundalikes": int(data.soundalikes)} if data.soundalikes else {}),   # added later: absent at 0
            **({"lexicon": int(data.lexicon)} if data.lexicon else {}),
            "sources": [{k: v for k, v in asdict(s).items() if not (k in _NEW_KEYS and v == _NEW_KEYS[k])}
                        | ({"path": str(Path(s.path).resolve())} if s.path else {}) for s in srcs]}


def prepare_mix(data: DataConfig, progress: bool = True) -> Path:
    """Prepare every source of ``data`` (a DataConfig) and the mix data set; returns its folder."""
    srcs = parse_sources(data)
    params = mix_params(srcs, data)
    dest = Path(data.root) / "mix" / f"{slug(params['keyword'])}-{params_hash(params)}"
    if is_prepared(dest):
        return dest
    clean_stale_temporaries(dest.parent)  # a killed earlier run's half-written folder
    t0 = time.time()
    parts = []
    for s in srcs:
        if s.role == "noise":
            continue
        ds = _prepare_one(s, data, progress)
        rows = read_manifest_rows(ds)
        parts.append((s, ds, rows))
        note(f"source {s.name}: {len(rows)} clips ({ds})")
    per_source = {}
    rows_out = []
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for s, ds, rows in parts:
            kept = [r for r in rows if s.label_for(r["label"]) or (s.counterparts and r["label"] == "negative")]
            if s.role == "positive":   # its takes; with counterparts also the negatives cut from them
                kept = [r if r["label"] == "negative" else dict(r, label="keyword") for r in kept]
            elif s.role == "negative":
                kept = [dict(r, label="negative") for r in kept]
            rel = os.path.relpath(ds.resolve(), dest.resolve())
            for r in kept:
                rows_out.append({**{k: r.get(k, "") for k in MANIFEST_COLUMNS}, "path": f"{rel}/{r['path']}",
                                 "source": s.name, "weight": s.weight, "duration_s": float(r.get("duration_s") or 0)})
            per_source[s.name] = {
                "kind": s.kind, "role": s.role, "weight": s.weight, "dataset": str(ds),
                "clips": {lab: sum(1 for r in kept if r["label"] == lab and r["split"] == "train") for lab in LABELS},
                "hours": round(_hours(ds, s) / 3600, 4)}
        for lab in LABELS:
            if not any(r["label"] == lab and r["split"] == "train" for r in rows_out):
                raise UserError(f"data.sources: no {lab} clips in the training split of any source")
        # resolve the relative paths from the final folder, not the temporary one
        for r in rows_out:
            r["_abs"] = (dest / r["path"]).resolve()
        _write_mix_manifest(tmp, rows_out)
        noise = noise_source(data, Path(data.root) / "cache")
        info = {"source": "mix", "keyword": params["keyword"], "params": params, "per_source": per_source}
        # streams are built from absolute paths: the temporary folder is renamed at the end
        abs_rows = [dict(r, path=str(r["_abs"])) for r in rows_out]
        finish_dataset(tmp, abs_rows, info, noise, float(data.stream_minutes), int(data.seed) + 7, progress)
        _write_mix_manifest(tmp, rows_out)  # finish_dataset wrote the plain columns: keep source/weight
    for name, d in per_source.items():
        note(f"  {name:<28} {d['role']:<9} weight {d['weight']:<5g} train clips {d['clips']['keyword']:>5} keyword "
             f"{d['clips']['negative']:>6} negative  ({d['hours']:.2f} h)")
    note(f"mix data set ready in {time.time() - t0:.0f} s -> {dest}")
    return dest


def _hours(ds: Path, s: Source) -> float:
    """Seconds of audio a source contributes (from its data set's info.json)."""
    try:
        durs = json.loads((ds / "info.json").read_text()).get("durations_s", {})
    except (OSError, ValueError):
        return 0.0
    return sum(float(v) for d in durs.values() if isinstance(d, dict) for lab, v in d.items() if s.label_for(lab))


def _write_mix_manifest(folder: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MIX_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r["path"]):
        w.writerow({k: r.get(k, "") for k in MIX_COLUMNS})
    (folder / "manifest.csv").write_text(buf.getvalue())


def source_summary(dataset: Path) -> dict:
    """Per-source clips and hours of a prepared mix data set (empty for other data sets)."""
    try:
        return json.loads((Path(dataset) / "info.json").read_text()).get("per_source", {})
    except (OSError, ValueError):
        return {}


__all__ = ["Source", "parse_sources", "prepare_mix", "source_summary", "KINDS", "ROLES", "SPLITS"]
