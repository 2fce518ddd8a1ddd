"""A long synthetic negative stream: the dev benchmark's second false-accepts-per-hour figure.

The real negatives of the dev benchmark last under an hour, so 1 FA/h is resolved by one or two
detections. This tool writes hours of audio that holds no keyword: sentences spoken by the TTS
backends that are installed (5-15 words from the project's word lists, confusable words included,
the keyword never), procedurally generated music (chords, bass, melody and drums), speech over
music (a radio or TV in the room) and stretches of noise alone, all over a background noise bed at
0-20 dB SNR (the given noise folders plus the synthetic noise bank).

    python -m bench.negstream --hours 2 [--backends espeak,piper,flite,kokoro --kokoro-voices DIR]
        [--noise-dir ../shared/data/noise/...] [--out data/bench/negstream.flac]

Speakers are drawn with this tool's own seed, so they differ from the training sets' speakers
(Kokoro blends and piper/espeak prosody are drawn from continuous ranges); the sentences are long
and continuous where training negatives are clips of at most 1.5 s. Still, it is synthetic speech
from the same engines a recipe may train on: the figure resolves low false-accept rates, it does
not replace real recordings. Rendered sentences are cached (data/bench/negstream-cache), so a
killed run resumes; the stream and its JSON description are written atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from data_scripts.common import normalize_keyword, params_hash
from data_scripts.music import music
from data_scripts.noise import load_noise_dir, synthetic_noise_bank
from data_scripts.tts import available_backends, backend
from data_scripts.sentences import sentences
from basics.audio import SAMPLE_RATE
from basics.atomic import atomic_path, atomic_write_text
from basics.errors import UserError, cli_main
from basics.procs import die_with_parent
import soundfile as sf

SR = SAMPLE_RATE
VERSION = 1


# ----------------------------------------------------------------------------- sentences
_W: dict = {}


def _init(name: str, voices: str, root: str) -> None:

    die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _W["be"] = backend(name, voices, root)


def _synth(job: tuple[str, str, str]) -> tuple[str, np.ndarray | None, str]:
    """(cache file, text, speaker) -> the rendered sentence, cached atomically as float16 .npy."""
    path, text, speaker = job
    p = Path(path)
    if p.is_file():
        try:
            return path, np.load(p).astype(np.float32), ""
        except (OSError, ValueError):
            pass  # a damaged cache entry: render again
    try:
        y = np.asarray(_W["be"].synth(text, speaker), np.float32)
    except UserError as e:
        return path, None, str(e)
    if len(y) == 0 or not np.isfinite(y).all() or np.max(np.abs(y)) == 0:
        return path, None, f"'{text}' rendered no audio"
    y = y * np.float32(0.7 / np.max(np.abs(y)))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, y.astype(np.float16))
    os.replace(tmp, p)
    return path, y, ""


def render_speech(names: list[str], texts: list[str], seed: int, root: Path, voices: str,
                  workers: int, progress: bool) -> list[np.ndarray]:
    """Every text spoken once, by a speaker of a backend drawn in turn; returns the waveforms."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    cache = root / "bench" / "negstream-cache"
    out: list[np.ndarray] = []
    per = [texts[i::len(names)] for i in range(len(names))]
    for name, txts in zip(names, per):
        be = backend(name, voices, str(root))
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 5])
        speakers = list(dict.fromkeys(be.speakers(max(3, len(txts) // 4), rng)))
        jobs = []
        for i, t in enumerate(txts):
            spk = speakers[i % len(speakers)]
            key = params_hash({"v": VERSION, "backend": name, "speaker": spk, "text": t}, 16)
            jobs.append((str(cache / name / key[:2] / f"{key}.npy"), t, spk))
        bar = tqdm(total=len(jobs), desc=f"negstream {name}", unit="sentence", disable=None if progress else True,
                   leave=False)
        fails = []
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init,
                                 initargs=(name, voices, str(root))) as ex:
            for _, y, err in ex.map(_synth, jobs, chunksize=2):
                bar.update(1)
                if y is None:
                    fails.append(err)
                else:
                    out.append(y)
        bar.close()
        if len(fails) > 0.1 * max(1, len(jobs)):
            raise UserError(f"negstream: {name}: {len(fails)} of {len(jobs)} sentences failed, e.g. {fails[0]}")
    return out


# ----------------------------------------------------------------------------- the stream
def build_stream(speech: list[np.ndarray], noise: list[np.ndarray], hours: float, seed: int) -> tuple[np.ndarray, dict]:
    """Blocks of 20-60 s: speech, music, speech over music, noise alone; a noise bed under all.

    Returns the audio and a description whose ``blocks`` list each block as [kind, start_s, end_s]
    (bench.devbench counts false accepts per kind from it)."""
    if not speech:
        raise UserError("negstream: no sentences were rendered")
    rng = np.random.default_rng([seed, 3])
    total = int(hours * 3600 * SR)
    out = np.zeros(total, np.float32)
    order = rng.permutation(len(speech))
    si = 0
    secs = {"speech": 0.0, "music": 0.0, "speech_over_music": 0.0, "noise": 0.0}
    blocks = []
    t = 0
    while t < total:
        kind = rng.choice(list(secs), p=[0.55, 0.15, 0.2, 0.1])
        n = min(total - t, int(rng.uniform(20, 60) * SR))
        block = np.zeros(n, np.float32)
        if kind in ("speech", "speech_over_music"):
            p = 0
            while p < n:
                x = speech[order[si % len(order)]]
                si += 1
                k = min(len(x), n - p)
                block[p:p + k] += x[:k] * np.float32(rng.uniform(0.3, 1.0))
                p += k + int(rng.uniform(0.1, 1.5) * SR)
        if kind in ("music", "speech_over_music"):
            gain = 1.0 if kind == "music" else 10 ** (-rng.uniform(5, 15) / 20)  # music under speech
            block += music(n / SR, rng) * np.float32(gain)
        out[t:t + n] = block
        secs[kind] += n / SR
        blocks.append([str(kind), round(t / SR, 3), round((t + n) / SR, 3)])
        t += n
    # noise bed: 5-20 s segments at 0-20 dB below the signal level (or a quiet floor in noise blocks)
    ref = float(np.sqrt(np.mean(np.square(out[out != 0], dtype=np.float64)))) if np.any(out) else 0.05
    a = 0
    while a < total:
        b = min(total, a + int(rng.uniform(5, 20) * SR))
        src = noise[int(rng.integers(len(noise)))]
        if len(src) < b - a:
            src = np.tile(src, (b - a) // max(1, len(src)) + 1)
        o = int(rng.integers(0, len(src) - (b - a) + 1))
        seg = src[o:o + b - a].astype(np.float32)
        rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) + 1e-12
        out[a:b] += seg * np.float32(ref / rms / 10 ** (rng.uniform(0, 20) / 20))
        a = b
    peak = float(np.max(np.abs(out)))
    if peak > 0.99:
        out *= np.float32(0.99 / peak)
    return out, {"seconds": {k: round(v, 1) for k, v in secs.items()}, "sentences_used": si, "blocks": blocks}


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.negstream", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--keyword", default="alexa", help="the word the stream must not hold")
    ap.add_argument("--backends", default="all", help="comma list of TTS backends, or all installed")
    ap.add_argument("--kokoro-voices", default="", help="Kokoro voice-pack folder (Kokoro is used only with it)")
    ap.add_argument("--sentences", type=int, default=1500, help="distinct sentences rendered (reused in turn)")
    ap.add_argument("--noise-dir", action="append", default=[], type=Path, help="real noise folder (repeatable)")
    ap.add_argument("--root", type=Path, default=Path("data"), help="cache root (default ./data)")
    ap.add_argument("--out", type=Path, default=Path("data/bench/negstream.flac"))
    ap.add_argument("--seed", type=int, default=9001)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    if not 0 < a.hours <= 100:
        raise UserError(f"--hours: expected 0 < hours <= 100, got {a.hours}")
    if a.backends == "all":
        names, missing = available_backends(a.kokoro_voices, str(a.root))
        names = list(names)
    else:
        names = [n.strip() for n in a.backends.split(",") if n.strip()]
        for n in names:
            backend(n, a.kokoro_voices, str(a.root)).check()
    if not names:
        raise UserError("negstream: no TTS backend is installed")
    t0 = time.time()
    texts = sentences(a.sentences, a.keyword, a.seed)
    speech = render_speech(names, texts, a.seed, a.root, a.kokoro_voices, a.workers, not a.no_progress)
    noise = synthetic_noise_bank()
    for d in a.noise_dir:
        got = load_noise_dir(d)
        if not got:
            raise UserError(f"{d}: no readable noise audio there")
        noise += got
    audio, info = build_stream(speech, noise, a.hours, a.seed)

    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(a.out) as tmp:
        sf.write(str(tmp), np.clip(audio * 32767, -32768, 32767).astype(np.int16), SR, format="FLAC")
    desc = {"version": VERSION, "hours": a.hours, "keyword": normalize_keyword(a.keyword), "backends": names,
            "sentences": len(speech), "noise_dirs": [str(d) for d in a.noise_dir], "seed": a.seed, **info,
            "seconds_to_build": round(time.time() - t0, 1)}
    atomic_write_text(a.out.with_suffix(".json"), json.dumps(desc, indent=1) + "\n")
    print(f"negstream: {a.hours} h -> {a.out} ({', '.join(names)}; {len(speech)} sentences; "
          f"{desc['seconds_to_build']} s)")
    return 0


if __name__ == "__main__":
    main()
