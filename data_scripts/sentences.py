"""Negative sentences: long, never-the-keyword speech from every TTS backend, cut into clip-sized pieces.

The keyword models of this project fired hundreds of times per hour on continuous TTS speech (the
long-negatives figure of bench/negstream.py) while their training negatives were single words and
phrases of at most 1.5 s. This source renders sentences of 5-15 words (everyday words, about one
in five a sound-alike of the keyword, never the keyword itself) with speakers of each backend, and
cuts each sentence into 1.5 s pieces that have sound in them, so training (and hard-negative
mining, which streams the training negatives) sees running speech: word boundaries, partial words
and co-articulation that isolated words lack.

Splits are disjoint by speaker (80/10/10 per backend); the sentence texts depend on the seed only.
Rendered sentences share each backend's clip cache (data_scripts/tts.py), and the data set is built
in a temporary folder, cached under <root>/sentences/<keyword>-<hash>/.
"""
from __future__ import annotations

import io
import json
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf

from basics.atomic import atomic_path, clean_stale_temporaries
from basics.audio import SAMPLE_RATE
from basics.errors import UserError
from data_scripts.common import (MAX_CLIP_S, is_prepared, normalize_keyword, note, params_hash, slug, sound_pieces,
                                 summarize, wav_bytes, write_manifest)
from data_scripts.tts import TtsJob, _tts_init, _tts_work, backend, split_speakers
from data_scripts.vocabulary import COMMON, SOUNDALIKE_POOL

SENTENCES_VERSION = 1
SOUNDALIKE_SHARE = 0.2
WORDS = (5, 15)


def word_lists(keyword: str) -> tuple[list[str], list[str]]:
    """(common words, sound-alike words) with the keyword and every word containing it removed."""
    kw = normalize_keyword(keyword)
    return [w for w in COMMON if w != kw], [w for w in SOUNDALIKE_POOL if w != kw and kw not in w]


def sentence(rng: np.random.Generator, common: list[str], pool: list[str]) -> str:
    """5-15 words: mostly common words, about one in five a sound-alike word."""
    return " ".join(pool[int(rng.integers(len(pool)))] if rng.random() < SOUNDALIKE_SHARE
                    else common[int(rng.integers(len(common)))] for _ in range(int(rng.integers(WORDS[0], WORDS[1] + 1))))


def sentences(n: int, keyword: str, seed: int) -> list[str]:
    """n sentences for ``keyword``, deterministic for the seed (bench/negstream.py's texts)."""
    common, pool = word_lists(keyword)
    rng = np.random.default_rng([seed, 11])
    return [sentence(rng, common, pool) for _ in range(n)]


def plan(be, keyword: str, speakers: int, per_speaker: int, seed: int) -> list[TtsJob]:
    """``per_speaker`` sentence jobs for each of ``speakers`` speakers of backend ``be``."""
    common, pool = word_lists(keyword)
    rng = np.random.default_rng([seed, zlib.crc32(be.name.encode()), 17])
    spk = list(dict.fromkeys(be.speakers(speakers, rng)))
    splits = split_speakers(spk, seed)
    jobs = []
    for si, s in enumerate(spk):
        r = np.random.default_rng([seed, zlib.crc32(s.encode()), 17])
        for j in range(per_speaker):
            jobs.append(TtsJob(f"clips/{splits[s]}/negative/{be.name}-s{si:04d}-x{j:02d}.wav", sentence(r, common, pool),
                               "sentence", s, splits[s], int(r.uniform(0.1, 0.3) * SAMPLE_RATE),
                               int(r.uniform(0.1, 0.3) * SAMPLE_RATE)))
    return jobs


def sentence_params(keyword: str, backends: list[str], speakers: int, per_speaker: int, seed: int,
                    kokoro_voices: str | Path = "", root: str | Path = "data") -> dict:
    return {"sentences": SENTENCES_VERSION, "keyword": normalize_keyword(keyword),
            "backends": [backend(b, kokoro_voices, root).describe() for b in backends],
            "speakers": int(speakers), "per_speaker": int(per_speaker), "seed": int(seed),
            "words": list(WORDS), "soundalike_share": SOUNDALIKE_SHARE, "piece_s": MAX_CLIP_S}


def prepare_sentences(keyword: str, backends: list[str], *, speakers: int = 40, per_speaker: int = 4,
                      seed: int = 1234, root: str | Path = "data", kokoro_voices: str | Path = "",
                      workers: int | None = None, progress: bool = True) -> Path:
    """Build (or reuse) the sentence data set: for each backend, ``speakers`` speakers x
    ``per_speaker`` sentences, every sentence cut into 1.5 s negative clips. Returns its folder."""
    if not backends:
        raise UserError("sentences: no TTS backend to speak them")
    if speakers < 3 or per_speaker < 1:
        raise UserError(f"sentences: need >= 3 speakers (one per split) and >= 1 sentence each, got {speakers} "
                        f"and {per_speaker}")
    for b in backends:
        backend(b, kokoro_voices, root).check()
    params = sentence_params(keyword, backends, speakers, per_speaker, seed, kokoro_voices, root)
    dest = Path(root) / "sentences" / f"{slug(params['keyword'])}-{params_hash(params)}"
    if is_prepared(dest):
        return dest
    clean_stale_temporaries(dest.parent)  # a killed earlier run's half-written folder
    t0 = time.time()
    workers = max(1, min(workers or os.cpu_count() or 1, 8))
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    rows, failures, n_jobs = [], [], 0
    with atomic_path(dest) as tmp:
        for s in ("train", "val", "test"):
            (tmp / "clips" / s / "negative").mkdir(parents=True)
        for name in backends:
            jobs = plan(backend(name, kokoro_voices, root), params["keyword"], speakers, per_speaker, seed)
            n_jobs += len(jobs)
            bar = tqdm(total=len(jobs), desc=f"{name} sentences", unit="sentence", disable=None if progress else True,
                       leave=False)
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_tts_init,
                                     initargs=(name, str(kokoro_voices), str(root))) as ex:
                for job, data, _, err in ex.map(_tts_work, jobs, chunksize=2):
                    bar.update(1)
                    if data is None:
                        failures.append(err)
                        continue
                    x, _ = sf.read(io.BytesIO(data), dtype="float32")
                    for k, piece in sound_pieces(x):
                        path = job.path[:-4] + f"-p{k}.wav"
                        (tmp / path).write_bytes(wav_bytes(piece))
                        rows.append({"path": path, "label": "negative", "split": job.split, "voice": job.speaker,
                                     "text": job.text, "duration_s": len(piece) / SAMPLE_RATE, "kind": "sentence"})
            bar.close()
        if len(failures) > 0.05 * max(1, n_jobs):
            raise UserError(f"sentences: {len(failures)} of {n_jobs} sentences failed, e.g. {failures[0]}")
        if failures:
            note(f"note: sentences: skipped {len(failures)}, e.g. {failures[0]}")
        if not rows:
            raise UserError("sentences: no sentence could be rendered")
        write_manifest(tmp, rows)
        counts, durs = summarize(rows)
        info = {"source": "sentences", "keyword": params["keyword"], "params": params, "counts": counts,
                "durations_s": durs, "num_clips": len(rows), "skipped": len(failures)}
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if progress:
        note(f"sentences: {len(rows)} pieces of {n_jobs - len(failures)} sentences in {time.time() - t0:.0f} s -> {dest}")
    return dest
