"""Offline default data set: keyword and negative clips spoken by espeak-ng.

Voices are every non-MBROLA English accent espeak-ng lists (``espeak-ng --voices=en``) combined
with every voice variant (``espeak-ng --voices=variant``): "en-us+f3", "en-gb-scotland+klatt2"...
Each clip draws its own pitch, speed, amplitude, ending punctuation (intonation) and silence
padding. Negatives are (a) confusables built from the keyword's letters and sounds (truncations,
new endings and beginnings, one-vowel / one-consonant substitutions, real words that sound
similar by espeak-ng phonemes; anything containing the keyword's phonemes is dropped) and (b)
other common English words and 2-4 word phrases.

Splits are disjoint by voice, and stricter than that: the variants (timbres) are split 80/10/10
first, so a test voice's variant never occurs in training under any accent.

``prepare_synthetic(cfg)`` is deterministic for cfg.seed, runs espeak-ng on all cores, caches the
result under <root>/synthetic/<keyword>-<hash of all generation params>/ and builds it in a
temporary folder renamed at the end. Default: 400 voices x (6 keyword + 14 negative clips).
"""
from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from data_scripts.streaming import finish_dataset
from data_scripts.common import (MAX_CLIP_S, fit_clip, is_prepared, normalize_keyword, note, params_hash,
                                 slug, wav_bytes)
from data_scripts.config import DataConfig
from data_scripts.noise import noise_source
from data_scripts.lexicon import lexicon_soundalikes, phone_distance
from data_scripts.vocabulary import COMMON, SOUNDALIKE_POOL
from basics.audio import SAMPLE_RATE, resample
from basics.atomic import atomic_path, clean_stale_temporaries
from basics.errors import UserError

GENERATOR_VERSION = 2  # 2: near-homophone confusables removed (phoneme distance)
DEFAULT_NUM_VOICES = 400
DEFAULT_CLIPS_PER_VOICE = 6  # keyword clips per voice
NEGATIVES_PER_KEYWORD = 2.4  # negative clips per keyword clip
PITCH = (20, 80)
SPEED = (130, 200)  # words per minute
AMPLITUDE = (50, 150)
PAD_S = (0.10, 0.30)
ENDINGS = ("", ".", "!", "?", ",")
# order of negative kinds within a voice: 40 % confusable, 40 % word, 20 % phrase
NEGATIVE_KINDS = ("confusable", "word", "confusable", "phrase", "word", "confusable", "word", "confusable",
                  "word", "phrase")
VOWELS = "aeiou"
CONSONANT_SWAPS = {"b": "pd", "p": "bt", "d": "tb", "t": "dk", "g": "kd", "k": "gt", "c": "gt", "f": "vs",
                   "v": "fb", "s": "zf", "z": "sv", "m": "nb", "n": "md", "l": "rn", "r": "lw", "w": "rv",
                   "j": "y", "x": ["ct", "sh"], "h": ["f"], "y": "j"}
NEW_ENDINGS = ("s", "er", "ing", "y", "ia", "is", "on", "ander", "o", "us")


# ----------------------------------------------------------------------------- espeak-ng
def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise UserError("espeak-ng: not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    return exe


def _run(args: list[str], stdin: str | None = None) -> str:
    try:
        r = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"espeak-ng: cannot run ({e})") from None
    if r.returncode != 0:
        raise UserError(f"espeak-ng: {' '.join(args[1:])} failed: {r.stderr.strip().splitlines()[:1]}")
    return r.stdout


@lru_cache(maxsize=None)
def espeak_version() -> str:
    return _run([espeak_binary(), "--version"]).strip().splitlines()[0]


def _voice_table(arg: str) -> list[tuple[str, str]]:
    """(language, file) rows of ``espeak-ng --voices=<arg>``."""
    rows = []
    for line in _run([espeak_binary(), f"--voices={arg}"]).splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            rows.append((parts[1], parts[4]))
    return rows


@lru_cache(maxsize=None)
def list_accents() -> tuple[str, ...]:
    """English accents that espeak-ng speaks with its own data (MBROLA voices skipped)."""
    out = {lang for lang, f in _voice_table("en") if lang.startswith("en") and not f.startswith(("mb/", "!v/"))}
    if not out:
        raise UserError("espeak-ng: no English voices found (espeak-ng --voices=en)")
    return tuple(sorted(out))


@lru_cache(maxsize=None)
def list_variants() -> tuple[str, ...]:
    out = {f.split("/", 1)[1] for _, f in _voice_table("variant") if f.startswith("!v/")}
    return tuple(sorted(out)) or ("",)


def all_voices() -> list[str]:
    return [f"{a}+{v}" if v else a for a in list_accents() for v in list_variants()]


def _parse_wav(b: bytes) -> tuple[np.ndarray, int]:
    if len(b) < 44 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not return WAV audio")
    sr = int.from_bytes(b[24:28], "little")
    i = b.find(b"data", 12)
    data = b[i + 8:]
    x = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
    return x, sr


def speak(text: str, voice: str = "en-us", pitch: int = 50, speed: int = 175, amplitude: int = 100) -> np.ndarray:
    """espeak-ng speech as float32 at 16 kHz (resampled from espeak's 22.05 kHz)."""
    args = [espeak_binary(), "-v", voice, "-p", str(int(pitch)), "-s", str(int(speed)), "-a", str(int(amplitude)),
            "--stdout", text]
    try:
        r = subprocess.run(args, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"espeak-ng: cannot run ({e})") from None
    if r.returncode != 0:
        raise UserError(f"espeak-ng: voice {voice}: {r.stderr.decode(errors='replace').strip()[:200]}")
    x, sr = _parse_wav(r.stdout)
    return resample(x, sr, SAMPLE_RATE).astype(np.float32)


def phonemes(texts: list[str], voice: str = "en-us") -> list[str]:
    """espeak-ng phoneme strings (stress marks removed), one per text."""
    if not texts:
        return []
    out = _run([espeak_binary(), "-q", "-x", "-v", voice], stdin="\n".join(texts) + "\n").splitlines()
    out = [o.strip() for o in out if o.strip()]
    if len(out) != len(texts):  # espeak joined or split some lines: ask one by one
        out = [_run([espeak_binary(), "-q", "-x", "-v", voice, t]).strip() for t in texts]
    return [_clean_ph(o) for o in out]


def _clean_ph(p: str) -> str:
    return "".join(ch for ch in p if ch not in "',_%=#;:") .replace("  ", " ").strip()


# ----------------------------------------------------------------------------- texts
def _has_vowel(s: str) -> bool:
    return any(c in VOWELS + "y" for c in s)


def _word_variants(w: str) -> set[str]:
    out = set()
    n = len(w)
    long_word = n >= 4  # short words ("hey", "ok") only get sound substitutions
    if long_word:
        # truncations ("alex", "lexa", "ale")
        for k in range(2, n):
            if _has_vowel(w[:k]):
                out.add(w[:k])
            if _has_vowel(w[n - k:]):
                out.add(w[n - k:])
        # new endings on a shortened stem that ends in a consonant ("alex" + "ander", "alex" + "is")
        for cut in (1, 2):
            stem = w[: n - cut]
            if len(stem) >= 3 and stem[-1] not in VOWELS + "y":
                for e in NEW_ENDINGS:
                    out.add(stem + e)
        # new beginnings ("relexa", "elexa")
        for p in ("re", "e", "de"):
            out.add(p + w[1:] if w[0] in VOWELS else p + w)
    # one vowel or one consonant substituted by a similar sound
    for i, c in enumerate(w):
        if c in VOWELS:
            for v in VOWELS:
                if v != c:
                    out.add(w[:i] + v + w[i + 1:])
        elif c in CONSONANT_SWAPS:
            for r in CONSONANT_SWAPS[c]:
                out.add(w[:i] + r + w[i + 1:])
    return {o for o in out if len(o.replace(" ", "")) >= 2 and o != w}


def phoneme_distance(a: str, b: str) -> int:
    """Levenshtein distance between two espeak-ng phoneme strings (symbol by symbol, spaces ignored)."""
    return int(phone_distance(a.replace(" ", ""), b.replace(" ", ""), sub_cost=lambda x, y: float(x != y)))


def _sounds_like(kw: str, kw_ph: str, pool: list[str], pool_ph: list[str], n: int) -> list[str]:
    scored = []
    for w, ph in zip(pool, pool_ph):
        r = difflib.SequenceMatcher(None, kw_ph, ph, autojunk=False).ratio()
        scored.append((r, w))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [w for r, w in scored[: 3 * n] if r >= 0.45][:n]


@lru_cache(maxsize=1)
def _pool() -> tuple[list[str], list[str]]:
    pool = sorted(set(COMMON) | set(SOUNDALIKE_POOL))
    return pool, phonemes(pool)


SOUNDALIKES = 16  # words of the sound-alike pool, most similar first, among the confusables (data.soundalikes)


@lru_cache(maxsize=64)
def _text_sets(keyword: str, soundalikes: int = 0, lexicon: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(confusables, other words) for a keyword; neither contains or sounds like the keyword.
    ``soundalikes``: how many words of the sound-alike pool join the confusables (0 = SOUNDALIKES);
    ``lexicon``: how many words of the pronouncing dictionary join them too (data_scripts/lexicon.py)."""
    kw = normalize_keyword(keyword)
    words = kw.split()
    cands: set[str] = set()
    for i, w in enumerate(words):
        for v in _word_variants(w):
            cands.add(" ".join(words[:i] + [v] + words[i + 1:]))
    if len(words) > 1:
        cands.update(words)
        cands.add(" ".join(words[:-1]))
        cands.add(" ".join(words[1:]))
        for first in ("hi", "hay", "say", "okay", "play"):
            cands.add(" ".join([first] + words[1:]))
    pool, pool_ph = _pool()
    cand_list = sorted(cands)
    ph = phonemes([kw] + cand_list)
    kw_ph, cand_ph = ph[0], ph[1:]
    if not kw_ph.strip():
        raise UserError(f"data.keyword: espeak-ng cannot pronounce '{keyword}'")

    def ok(text: str, p: str) -> bool:
        return f" {kw} " not in f" {text} " and kw_ph.replace(" ", "") not in p.replace(" ", "")

    truncations = {w[:k] for w in words for k in range(1, len(w))} | {w[k:] for w in words for k in range(1, len(w))}

    def distinct(text: str, p: str) -> bool:
        # A one-sound substitution ("aluxa", "elexa") is pronounced by espeak-ng (and by people)
        # as the keyword itself: as a negative it is label noise, not a hard example. Keep it
        # only if it differs by at least two phoneme symbols; truncations ("lexa", "alex") stay.
        if text in truncations or " " in text:
            return True
        return phoneme_distance(kw_ph, p) >= 2

    conf = {c for c, p in zip(cand_list, cand_ph) if ok(c, p) and distinct(c, p)}
    good_pool = [(w, p) for w, p in zip(pool, pool_ph) if ok(w, p)]
    conf.update(_sounds_like(kw, kw_ph, [w for w, _ in good_pool], [p for _, p in good_pool], soundalikes or SOUNDALIKES))
    if lexicon:
        lex = list(lexicon_soundalikes(kw, lexicon))
        conf.update(w for w, p in zip(lex, phonemes(lex)) if ok(w, p) and distinct(w, p))
    conf.discard(kw)
    others = tuple(w for w, _ in good_pool if w in set(COMMON) and w not in conf)
    if not conf:
        raise UserError(f"data.keyword: no confusable words could be made for '{keyword}'")
    return tuple(sorted(conf)), others


def confusables(keyword: str) -> list[str]:
    """Words and pseudo-words that share sounds with the keyword but are not it (sorted)."""
    return list(_text_sets(keyword)[0])


def negative_words(keyword: str) -> list[str]:
    """Common English words used as plain negatives for this keyword."""
    return list(_text_sets(keyword)[1])


# ----------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Job:
    path: str
    text: str
    kind: str  # keyword | confusable | word | phrase
    voice: str
    split: str
    pitch: int
    speed: int
    amplitude: int
    ending: str
    pre: int
    post: int

    @property
    def label(self) -> str:
        return "keyword" if self.kind == "keyword" else "negative"


class _Cycler:
    def __init__(self, items, rng):
        self.items, self.rng, self.order = list(items), rng, []

    def next(self):
        if not self.order:
            self.order = [int(i) for i in self.rng.permutation(len(self.items))]
        return self.items[self.order.pop()]


def assign_voices(num_voices: int, seed: int) -> dict[str, str]:
    """voice -> split. Variants are split 80/10/10 first, then voices drawn from each group."""
    accents, variants = list_accents(), list(list_variants())
    total = len(accents) * len(variants)
    if num_voices < 3:
        raise UserError(f"data.num_voices: need at least 3 voices (one per split), got {num_voices}")
    if num_voices > total:
        raise UserError(f"data.num_voices: espeak-ng has {total} English voices, asked for {num_voices}")
    rng = np.random.default_rng([seed, 11])
    var = [variants[i] for i in rng.permutation(len(variants))]
    nv = len(var)
    k = max(1, round(0.1 * nv)) if nv >= 3 else 0
    groups = {"test": var[:k], "val": var[k:2 * k], "train": var[2 * k:]} if k else None
    want = {"test": max(1, round(0.1 * num_voices)), "val": max(1, round(0.1 * num_voices))}
    want["train"] = num_voices - want["test"] - want["val"]
    out: dict[str, str] = {}
    if groups is None:  # fewer than 3 variants: split accent+variant voices directly
        allv = [all_voices()[i] for i in rng.permutation(total)]
        i = 0
        for s in ("test", "val", "train"):
            for v in allv[i: i + want[s]]:
                out[v] = s
            i += want[s]
        return out
    spill = 0
    for s in ("test", "val", "train"):
        pool = [f"{a}+{v}" if v else a for v in groups[s] for a in accents]
        pool = [pool[i] for i in rng.permutation(len(pool))]
        n = want[s] + (spill if s == "train" else 0)
        if n > len(pool):
            if s == "train":
                raise UserError(f"data.num_voices: at most {len(pool) + 2 * len(accents) * k} voices can be "
                                f"split by variant, asked for {num_voices}")
            spill += n - len(pool)
            n = len(pool)
        for v in pool[:n]:
            out[v] = s
    return out


def plan(keyword: str, num_voices: int, clips_per_voice: int, seed: int, soundalikes: int = 0,
         lexicon: int = 0) -> list[Job]:
    kw = normalize_keyword(keyword)
    conf, others = _text_sets(kw, soundalikes, lexicon)
    voices = assign_voices(num_voices, seed)
    n_neg = max(1, int(round(NEGATIVES_PER_KEYWORD * clips_per_voice)))
    rng = np.random.default_rng([seed, 23])
    conf_c, word_c = _Cycler(conf, rng), _Cycler(others, rng)
    jobs = []
    for voice in sorted(voices):
        split = voices[voice]
        vr = np.random.default_rng([seed, zlib.crc32(voice.encode())])
        vs = slug(voice.replace("+", "_")).replace("_", "-")

        def job(text, kind, idx):
            lab = "keyword" if kind == "keyword" else "negative"
            return Job(path=f"clips/{split}/{lab}/{vs}-{kind[0]}{idx:02d}.wav", text=text, kind=kind, voice=voice,
                       split=split, pitch=int(vr.integers(PITCH[0], PITCH[1] + 1)),
                       speed=int(vr.integers(SPEED[0], SPEED[1] + 1)),
                       amplitude=int(vr.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)),
                       ending=ENDINGS[int(vr.integers(len(ENDINGS)))],
                       pre=int(vr.uniform(*PAD_S) * SAMPLE_RATE), post=int(vr.uniform(*PAD_S) * SAMPLE_RATE))

        for i in range(clips_per_voice):
            jobs.append(job(kw, "keyword", i))
        for j in range(n_neg):
            kind = NEGATIVE_KINDS[j % len(NEGATIVE_KINDS)]
            if kind == "confusable":
                text = conf_c.next()
            elif kind == "word" or len(others) < 2:
                kind, text = "word", word_c.next() if others else conf_c.next()
            else:
                n = int(vr.integers(2, 5))
                while True:
                    text = " ".join(others[int(i)] for i in vr.integers(0, len(others), n))
                    if f" {kw} " not in f" {text} ":
                        break
            jobs.append(job(text, kind, j))
    return jobs


def render(job: Job) -> np.ndarray | None:
    """The clip's audio (silence-trimmed, padded, <= 1.5 s), or None if it cannot fit."""
    speed, text = job.speed, job.text
    for _ in range(6):
        x = speak(text + job.ending, job.voice, job.pitch, speed, job.amplitude)
        y = fit_clip(x, job.pre, job.post)
        if y is not None:
            return y
        if job.kind == "phrase" and len(text.split()) > 1:
            text = " ".join(text.split()[:-1])  # drop the last word
        else:
            speed = int(speed * 1.2)
    return None


def _work(job: Job, out_dir: Path) -> tuple[Job, float | None, str]:
    try:
        y = render(job)
    except (UserError, ValueError) as e:
        return job, None, str(e)
    if y is None:
        return job, None, f"'{job.text}' is longer than {MAX_CLIP_S} s even when spoken fast"
    (out_dir / job.path).write_bytes(wav_bytes(y))
    return job, len(y) / SAMPLE_RATE, ""


# ----------------------------------------------------------------------------- entry point
def generation_params(cfg: DataConfig) -> dict:
    kw = normalize_keyword(cfg.keyword)
    return {"generator": GENERATOR_VERSION, "keyword": kw,
            "num_voices": int(cfg.num_voices) or DEFAULT_NUM_VOICES,
            "clips_per_voice": int(cfg.clips_per_voice) or DEFAULT_CLIPS_PER_VOICE,
            "negatives_per_keyword": NEGATIVES_PER_KEYWORD, "seed": int(cfg.seed),
            "stream_minutes": float(cfg.stream_minutes),
            "noise_dir": str(Path(cfg.noise_dir).resolve()) if cfg.noise_dir else "",
            "pitch": PITCH, "speed": SPEED, "amplitude": AMPLITUDE, "pad_s": PAD_S,
            "espeak_ng": espeak_version(), "accents": list(list_accents()), "variants": list(list_variants())} | (
                {"soundalikes": int(cfg.soundalikes)} if cfg.soundalikes else {}) | (
                {"lexicon": int(cfg.lexicon)} if cfg.lexicon else {})   # added later: absent at 0


def dataset_dir(cfg: DataConfig) -> Path:
    p = generation_params(cfg)
    return Path(cfg.root) / "synthetic" / f"{slug(p['keyword'])}-{params_hash(p)}"


def prepare_synthetic(cfg: DataConfig, progress: bool = True) -> Path:
    """Generate (or reuse) the synthetic dataset for cfg (a DataConfig); returns its folder."""
    params = generation_params(cfg)
    dest = Path(cfg.root) / "synthetic" / f"{slug(params['keyword'])}-{params_hash(params)}"
    if is_prepared(dest):
        return dest
    if cfg.num_voices < 0 or cfg.clips_per_voice < 0:
        raise UserError("data.num_voices / data.clips_per_voice: must be >= 0")
    clean_stale_temporaries(dest.parent)  # a killed earlier run's half-written folder
    t0 = time.time()
    jobs = plan(params["keyword"], params["num_voices"], params["clips_per_voice"], params["seed"],
                params.get("soundalikes", 0), params.get("lexicon", 0))
    noise = noise_source(cfg, Path(cfg.root) / "cache")
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    rows, failures = [], []
    with atomic_path(dest) as tmp:
        for s in ("train", "val", "test"):
            for lab in ("keyword", "negative"):
                (tmp / "clips" / s / lab).mkdir(parents=True)
        workers = max(1, os.cpu_count() or 1)
        # threads suffice: each job's time is spent in the espeak-ng subprocess
        with ThreadPoolExecutor(max_workers=workers) as ex, \
                tqdm(total=len(jobs), desc=f"espeak-ng '{params['keyword']}'", unit="clip",
                     disable=None if progress else True, leave=False) as bar:
            futs = [ex.submit(_work, j, tmp) for j in jobs]
            try:
                for f in as_completed(futs):
                    job, dur, err = f.result()
                    bar.update(1)
                    if err:
                        failures.append((job, err))
                        continue
                    rows.append({"path": job.path, "label": job.label, "split": job.split, "voice": job.voice,
                                 "text": job.text, "duration_s": dur, "kind": job.kind})
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
        kw_fail = [j for j, _ in failures if j.kind == "keyword"]
        if len(failures) > 0.05 * len(jobs) or len(kw_fail) > 0.05 * max(1, len(jobs)):
            raise UserError(f"espeak-ng: {len(failures)} of {len(jobs)} clips failed, e.g. "
                            f"voice {failures[0][0].voice}: {failures[0][1]}")
        if failures:
            note(f"note: skipped {len(failures)} clips espeak-ng could not render, e.g. {failures[0][1]}")
        rows.sort(key=lambda r: r["path"])
        kinds = {}
        for r in rows:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        info = {"source": "synthetic", "keyword": params["keyword"], "params": params,
                "negative_kinds": kinds, "confusables": confusables(params["keyword"]),
                "voices": {s: sorted({r["voice"] for r in rows if r["split"] == s}) for s in ("train", "val", "test")}}
        finish_dataset(tmp, rows, info, noise, params["stream_minutes"], params["seed"], progress)
    if progress:
        note(f"synthetic dataset: {len(rows)} clips in {time.time() - t0:.1f} s -> {dest}")
    return dest
