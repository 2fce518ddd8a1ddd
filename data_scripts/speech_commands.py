"""Google Speech Commands v2 and the user's own recordings, in the common dataset layout.

``prepare_speech_commands(cfg)``: the wake-word view of Speech Commands v0.02 (Warden 2018,
CC-BY-4.0): cfg.keyword's clips are "keyword", every other word's clips are "negative". Splits
follow the data set's own validation_list.txt / testing_list.txt (speaker-disjoint by design), the
voice column is the speaker id (file name before "_nohash_"), and _background_noise_ is kept in
<dataset>/noise/ and laid under the streams. cfg.folder = an extracted copy (no download);
empty = download the archive into cfg.root (resumes a partial download) and extract it there.

``prepare_folder(cfg)``: cfg.folder/<keyword>/... are keyword recordings, every other subfolder
holds negatives (subfolders named "_...noise..." hold background noise; other "_..." folders are
ignored). Any audio format/rate is converted to 16 kHz PCM16 and trimmed to <= 1.5 s. Splits
(80/10/10) come from a hash of the file's content, or of the speaker when files are grouped as
<label>/<speaker>/<file> or named <speaker>_nohash_<n>.wav, so one speaker stays in one split.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

from data_scripts.streaming import finish_dataset
from data_scripts.common import (MAX_CLIP_S, fit_clip, is_prepared, loudest_window, normalize_keyword, note,
                                 params_hash, safe_name, slug, sound_pieces, speech_bounds, summarize, wav_bytes,
                                 write_manifest)
from data_scripts.config import DataConfig
from data_scripts.noise import load_noise_dir, noise_source
from basics.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, audio_blocks, list_audio, load_audio
from basics.atomic import atomic_path, clean_stale_temporaries
from basics.errors import UserError

SC_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SC_ARCHIVE = "speech_commands_v0.02.tar.gz"
SC_DIR = "speech_commands_v0.02"
SC_SIZE = 2428923189  # bytes of the v0.02 archive
PREP_VERSION = 1
NOISE_FOLDER = "_background_noise_"


# ----------------------------------------------------------------------------- download
def download(url: str, dest: str | Path, progress: bool = True, expected_size: int | None = None) -> Path:
    """Fetch url to dest via dest.part, resuming a partial .part with an HTTP Range request."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "subkws-data"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and (expected_size is None or have == expected_size):
            os.replace(part, dest)  # the partial file was already complete
            return dest
        raise UserError(f"{url}: download failed (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"{url}: download failed ({reason}); without internet, download and extract it "
                        f"elsewhere and pass its folder (--folder / data.folder)") from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the range: start again
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else expected_size
        try:
            with open(part, "ab" if have else "wb") as fh, \
                    tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=f"download {dest.name}", disable=None if progress else True, leave=False) as bar:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    fh.write(chunk)
                    bar.update(len(chunk))
        except OSError as e:
            raise UserError(f"{url}: download interrupted ({e}); run again to resume") from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise UserError(f"{url}: download incomplete ({size} of {total} bytes); run again to resume")
    os.replace(part, dest)
    return dest


def extract(archive: str | Path, dest: str | Path, progress: bool = True) -> Path:
    """Extract a .tar.gz into dest atomically (a temporary folder renamed at the end)."""
    archive, dest = Path(archive), Path(dest)
    if dest.is_dir():
        return dest
    if progress:
        note(f"extracting {archive} -> {dest}")
    try:
        with atomic_path(dest) as tmp, tarfile.open(archive, "r:*") as tf:
            tmp.mkdir()
            tf.extractall(tmp, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise UserError(f"{archive}: cannot extract ({e}); delete it and run again") from None
    return dest


def download_speech_commands(root: str | Path, progress: bool = True) -> Path:
    root = Path(root)
    folder = root / SC_DIR
    if folder.is_dir():
        return folder
    archive = download(SC_URL, root / "downloads" / SC_ARCHIVE, progress, expected_size=SC_SIZE)
    return extract(archive, folder, progress)


# ----------------------------------------------------------------------------- clip import
def _import_clip(src: Path, dst: Path, keyword: bool) -> list[tuple[Path, float]]:
    """Put src at dst as 16 kHz mono PCM16 <= 1.5 s; returns [(written path, duration_s)].

    A conforming wav is hard-linked (or copied); anything else is converted. A too-long keyword
    keeps its loudest 1.5 s; a too-long negative is cut into 1.5 s pieces with speech in them.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    max_n = int(MAX_CLIP_S * SAMPLE_RATE)
    try:
        long = sf.info(os.fsencode(src)).duration > LONG_FILE_S
    except Exception:  # unreadable: load_audio below says so in one line
        long = False
    if long:
        return _import_long(src, dst, keyword)
    if src.suffix.lower() == ".wav":
        try:
            inf = sf.info(os.fsencode(src))  # bytes: names need not be UTF-8
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if msg.startswith("Error opening") and "': " in msg:
                msg = msg.split("': ", 1)[1]  # the path is already at the start of the line
            raise UserError(f"{src}: not a readable audio file ({msg})") from None
        if inf.frames == 0:
            raise UserError(f"{src}: audio file is empty")
        if (inf.samplerate == SAMPLE_RATE and inf.channels == 1 and inf.subtype == "PCM_16"
                and inf.format == "WAV" and inf.frames <= max_n):
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            return [(dst, inf.frames / SAMPLE_RATE)]
    x = load_audio(src, SAMPLE_RATE, quiet=True)
    pad = int(0.2 * SAMPLE_RATE)
    y = fit_clip(x, pad, pad) if len(x) > max_n else x
    if y is not None:
        dst.write_bytes(wav_bytes(y))
        return [(dst, len(y) / SAMPLE_RATE)]
    if keyword:
        s, e = speech_bounds(x)
        y = loudest_window(x[s:e], max_n)
        dst.write_bytes(wav_bytes(y))
        return [(dst, len(y) / SAMPLE_RATE)]
    out = []
    for i, piece in sound_pieces(x, max_n):
        p = dst.with_name(f"{dst.stem}-part{i:03d}.wav")
        p.write_bytes(wav_bytes(piece))
        out.append((p, len(piece) / SAMPLE_RATE))
    return out


LONG_FILE_S = 120.0  # recordings longer than this are imported block by block: hours fit in memory
BLOCK_S = 10.0  # seconds of audio per block read


def _import_long(src: Path, dst: Path, keyword: bool) -> list[tuple[Path, float]]:
    """_import_clip of a recording longer than LONG_FILE_S, read in blocks (audio_blocks): a keyword
    take keeps its loudest MAX_CLIP_S; a negative is cut into MAX_CLIP_S pieces, each kept when
    its peak reaches a tenth of the file's (the same pieces as the in-memory path cuts)."""
    max_n = int(MAX_CLIP_S * SAMPLE_RATE)
    if keyword:
        frame, energy, carry = 160, [], np.zeros(0, np.float32)
        for x in audio_blocks(src, SAMPLE_RATE, BLOCK_S):
            buf = np.concatenate([carry, x])
            nf = len(buf) // frame
            energy.append((buf[:nf * frame].astype(np.float64).reshape(nf, frame) ** 2).sum(axis=1))
            carry = buf[nf * frame:]
        c = np.concatenate([[0.0], np.cumsum(np.concatenate(energy))])
        w = max_n // frame
        start = int(np.argmax(c[w:] - c[:-w])) * frame if len(c) > w + 1 else 0
        y, at = [], 0
        for x in audio_blocks(src, SAMPLE_RATE, BLOCK_S):  # the chosen window, from a second pass
            lo, hi = max(start - at, 0), min(start + max_n - at, len(x))
            if lo < hi:
                y.append(x[lo:hi])
            at += len(x)
        y = np.concatenate(y)
        dst.write_bytes(wav_bytes(y))
        return [(dst, len(y) / SAMPLE_RATE)]
    peak = max(float(np.max(np.abs(x))) for x in audio_blocks(src, SAMPLE_RATE, BLOCK_S)) or 1.0
    out, buf, i = [], np.zeros(0, np.float32), 0

    def keep(piece: np.ndarray, i: int) -> None:
        if np.max(np.abs(piece)) >= 0.1 * peak:
            p = dst.with_name(f"{dst.stem}-part{i:03d}.wav")
            p.write_bytes(wav_bytes(piece))
            out.append((p, len(piece) / SAMPLE_RATE))

    for x in audio_blocks(src, SAMPLE_RATE, BLOCK_S):
        buf = np.concatenate([buf, x])
        while len(buf) >= max_n:
            keep(buf[:max_n], i)
            buf, i = buf[max_n:], i + 1
    if len(buf) > SAMPLE_RATE // 4:
        keep(buf, i)
    return out


def _split_of(key: str) -> str:
    h = int(hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("val" if h < 90 else "test")


def _file_digest(p: Path) -> str:
    with open(p, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()


def _speaker_of(name: str) -> str:
    return name.split("_nohash_", 1)[0] if "_nohash_" in name else ""


def _copy_noise(files: list[Path], tmp: Path) -> list[np.ndarray]:
    arrays = []
    (tmp / "noise").mkdir(parents=True, exist_ok=True)
    for f in files:
        x = load_audio(f, SAMPLE_RATE, quiet=True)
        (tmp / "noise" / f"{f.stem}.wav").write_bytes(wav_bytes(x))
        if np.any(x):
            arrays.append(x)
    return arrays


def _stream_noise(cfg: DataConfig, kept: list[np.ndarray]) -> list[np.ndarray]:
    if cfg.noise_dir:
        return load_noise_dir(cfg.noise_dir)
    return kept or noise_source(cfg, Path(cfg.root) / "cache")


# ----------------------------------------------------------------------------- Speech Commands
def scan_speech_commands(folder: Path) -> tuple[dict[str, list[str]], set[str], set[str], list[Path]]:
    """(word -> sorted 'word/file.wav', validation set, testing set, noise files)."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such Speech Commands folder")
    lists = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        p = folder / name
        if not p.is_file():
            raise UserError(f"{p}: missing (is {folder} an extracted Speech Commands folder?)")
        lists[name] = {ln.strip() for ln in p.read_text().splitlines() if ln.strip()}
    words = {}
    for d in sorted(folder.iterdir()):
        if d.is_dir() and not d.name.startswith(("_", ".")):
            files = sorted(f"{d.name}/{f.name}" for f in d.iterdir() if f.suffix.lower() == ".wav")
            if files:
                words[d.name] = files
    if not words:
        raise UserError(f"{folder}: no word folders with .wav files")
    noise = list_audio(folder / NOISE_FOLDER) if (folder / NOISE_FOLDER).is_dir() else []
    return words, lists["validation_list.txt"], lists["testing_list.txt"], noise


def prepare_speech_commands(cfg: DataConfig, progress: bool = True) -> Path:
    """Speech Commands in the dataset layout, keyword = cfg.keyword; returns the dataset folder."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    kw = normalize_keyword(cfg.keyword)
    folder = Path(cfg.folder) if cfg.folder else download_speech_commands(cfg.root, progress)
    words, val, test, noise_files = scan_speech_commands(folder)
    if kw not in words:
        raise UserError(f"data.keyword: '{kw}' is not a word of {folder} (words: {', '.join(sorted(words))})")
    lists_hash = hashlib.sha1(("\n".join(sorted(val)) + "\n--\n" + "\n".join(sorted(test))).encode()).hexdigest()
    params = {"source": "speech_commands", "version": PREP_VERSION, "folder": str(folder.resolve()), "keyword": kw,
              "seed": int(cfg.seed), "stream_minutes": float(cfg.stream_minutes),
              "noise_dir": str(Path(cfg.noise_dir).resolve()) if cfg.noise_dir else "",
              "files": {w: len(f) for w, f in words.items()}, "lists": lists_hash}
    dest = Path(cfg.root) / "speech_commands" / f"{slug(kw)}-{params_hash(params)}"
    clean_stale_temporaries(dest.parent)  # a killed earlier preparation's half-written folder
    if is_prepared(dest):
        return dest
    all_files = [f for w in sorted(words) for f in words[w]]
    rows = []
    with atomic_path(dest) as tmp:
        bar = tqdm(all_files, desc="speech commands", unit="clip", disable=None if progress else True, leave=False)
        for rel in bar:
            word = rel.split("/", 1)[0]
            split = "test" if rel in test else ("val" if rel in val else "train")
            label = "keyword" if word == kw else "negative"
            for p, dur in _import_clip(folder / rel, tmp / "clips" / rel, label == "keyword"):
                rows.append({"path": p.relative_to(tmp).as_posix(), "label": label, "split": split,
                             "voice": _speaker_of(Path(rel).name), "text": word, "duration_s": dur})
        kept = _copy_noise(noise_files, tmp)
        info = {"source": "speech_commands", "keyword": kw, "params": params, "words": sorted(words),
                "license": "CC-BY-4.0 (Speech Commands v0.02, Warden 2018)"}
        finish_dataset(tmp, rows, info, _stream_noise(cfg, kept), float(cfg.stream_minutes), int(cfg.seed), progress)
    return dest


# ----------------------------------------------------------------------------- own recordings
def _find_keyword_dir(folder: Path, kw: str, subdirs: list[Path]) -> Path:
    names = {kw, kw.replace(" ", "_"), kw.replace(" ", "-"), kw.replace(" ", ""), slug(kw)}
    for d in subdirs:
        if d.name.lower() in names:
            return d
    raise UserError(f"data.keyword: no subfolder '{kw.replace(' ', '_')}' in {folder} "
                    f"(subfolders: {', '.join(d.name for d in subdirs) or 'none'})")


def prepare_folder(cfg: DataConfig, progress: bool = True) -> Path:
    """The user's recordings (cfg.folder/<keyword>/..., other subfolders negative) in the dataset layout."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    kw = normalize_keyword(cfg.keyword)
    if not cfg.folder:
        raise UserError("data.folder: empty; set it to a folder holding <keyword>/ and other subfolders of audio")
    folder = Path(cfg.folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such data folder")
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    label_dirs = [d for d in subdirs if not d.name.startswith("_")]
    noise_dirs = [d for d in subdirs if d.name.startswith("_") and "noise" in d.name.lower()]
    kw_dir = _find_keyword_dir(folder, kw, label_dirs)
    files = {d: list_audio(d) for d in label_dirs}
    if not files[kw_dir]:
        raise UserError(f"{kw_dir}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    if not any(files[d] for d in label_dirs if d != kw_dir):
        note(f"warning: {folder}: no negative recordings (only {kw_dir.name}/)")
    listing = []
    for d in label_dirs:
        for f in files[d]:
            st = f.stat()
            listing.append(f"{f.relative_to(folder).as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    noise_files = [f for d in noise_dirs for f in list_audio(d)]
    params = {"source": "folder", "version": PREP_VERSION, "folder": str(folder.resolve()), "keyword": kw,
              "seed": int(cfg.seed), "stream_minutes": float(cfg.stream_minutes),
              "noise_dir": str(Path(cfg.noise_dir).resolve()) if cfg.noise_dir else "",
              "listing": hashlib.sha1("\n".join(listing + [str(f) for f in noise_files]).encode(
                  "utf-8", "surrogateescape")).hexdigest()}
    dest = Path(cfg.root) / "folder" / f"{slug(kw)}-{params_hash(params)}"
    clean_stale_temporaries(dest.parent)  # a killed earlier preparation's half-written folder
    if is_prepared(dest):
        return dest
    rows = []
    todo = [(d, f) for d in label_dirs for f in files[d]]
    with atomic_path(dest) as tmp:
        for d, f in tqdm(todo, desc="recordings", unit="file", disable=None if progress else True, leave=False):
            rel = f.relative_to(d)
            speaker = rel.parts[0] if len(rel.parts) > 1 else _speaker_of(f.name)
            split = _split_of(f"speaker:{speaker}") if speaker else _split_of(_file_digest(f))
            label = "keyword" if d == kw_dir else "negative"
            out = tmp / "clips" / safe_name(d.name) / safe_name(rel.with_suffix(".wav").as_posix())
            if out.exists():  # a.wav and a.flac side by side
                out = out.with_name(f"{out.stem}-{f.suffix.lstrip('.').lower()}.wav")
            for p, dur in _import_clip(f, out, label == "keyword"):
                rows.append({"path": p.relative_to(tmp).as_posix(), "label": label, "split": split,
                             "voice": safe_name(speaker), "text": kw if label == "keyword" else safe_name(d.name), "duration_s": dur})
        kept = _copy_noise(noise_files, tmp)
        info = {"source": "folder", "keyword": kw, "params": params,
                "labels": {safe_name(d.name): ("keyword" if d == kw_dir else "negative") for d in label_dirs}}
        finish_dataset(tmp, rows, info, _stream_noise(cfg, kept), float(cfg.stream_minutes), int(cfg.seed), progress)
    return dest


COUNTERPART_CUT = 0.45   # head = the first 45 % of a keyword take's speech, tail = the last 45 %


def keyword_counterparts(y: np.ndarray) -> dict[str, np.ndarray]:
    """Negatives cut from one keyword recording: its head (the first 45 % of the speech, with the
    silence before it), its tail (the last 45 %, with the silence after) and the whole take reversed.
    They carry the recording's microphone, room and voice but not the word, so a model cannot tell
    the user's keyword takes from everything else by the recording alone. Pieces under 0.1 s are left out."""
    s, e = speech_bounds(y)
    n = e - s
    cut = int(COUNTERPART_CUT * n)
    pieces = {"head": y[: s + cut], "tail": y[e - cut:], "reversed": y[::-1]}
    return {k: np.ascontiguousarray(v) for k, v in pieces.items() if len(v) >= 0.1 * SAMPLE_RATE and cut > 0}


def prepare_audio_folder(folder: Path, role: str, keyword: str, root: str | Path, seed: int,
                         progress: bool = True, counterparts: bool = False) -> Path:
    """Every audio file under ``folder`` as one role: ``positive`` (keyword recordings; a take longer
    than 1.5 s keeps its loudest 1.5 s) or ``negative`` (longer files cut into 1.5 s pieces with
    sound in them); ``labelled`` = the <keyword>/ + other subfolders layout of prepare_folder.
    Splits by speaker subfolder or file content, as prepare_folder. Cached under <root>/folder/.

    ``counterparts`` (positive only): each keyword take also gives negative clips cut from it
    (``keyword_counterparts``), in the take's own split, under ``counterparts/``."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    kw = normalize_keyword(keyword)
    folder = Path(folder)
    if role == "labelled":
        return prepare_folder(DataConfig(keyword=kw, folder=str(folder), root=str(root), seed=int(seed),
                                         stream_minutes=2.0), progress)
    if role not in ("positive", "negative"):
        raise UserError(f"{folder}: folder role must be positive, negative or labelled, got '{role}'")
    files = list_audio(folder)
    if not files:
        raise UserError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    listing = [f"{f.relative_to(folder).as_posix()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    params = {"source": "audio_folder", "version": PREP_VERSION, "folder": str(folder.resolve()), "role": role,
              "keyword": kw, "seed": int(seed), "listing": hashlib.sha1("\n".join(listing).encode()).hexdigest(),
              **({"counterparts": True} if counterparts and role == "positive" else {})}   # absent when off
    dest = Path(root) / "folder" / f"{slug(folder.name)}-{role}-{params_hash(params)}"
    if is_prepared(dest):
        return dest
    label = "keyword" if role == "positive" else "negative"
    rows, bad = [], []
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for f in tqdm(files, desc=f"{folder.name} ({role})", unit="file", disable=None if progress else True,
                      leave=False):
            rel = f.relative_to(folder)
            speaker = rel.parts[0] if len(rel.parts) > 1 else _speaker_of(f.name)
            split = _split_of(f"speaker:{speaker}") if speaker else _split_of(_file_digest(f))
            try:
                written = _import_clip(f, tmp / "clips" / rel.with_suffix(".wav"), label == "keyword")
            except UserError as e:
                bad.append(str(e))
                continue
            for p, dur in written:
                rows.append({"path": p.relative_to(tmp).as_posix(), "label": label, "split": split,
                             "voice": speaker, "text": kw if label == "keyword" else folder.name, "duration_s": dur})
                if counterparts and label == "keyword":
                    y = load_audio(p, SAMPLE_RATE, quiet=True)
                    for kind, piece in keyword_counterparts(y).items():
                        q = tmp / "counterparts" / p.relative_to(tmp / "clips").with_name(f"{p.stem}-{kind}.wav")
                        q.parent.mkdir(parents=True, exist_ok=True)
                        q.write_bytes(wav_bytes(piece))
                        rows.append({"path": q.relative_to(tmp).as_posix(), "label": "negative", "split": split,
                                     "voice": speaker, "text": f"{kw} ({kind})", "duration_s": len(piece) / SAMPLE_RATE})
        if bad:
            note(f"note: {folder}: skipped {len(bad)} unreadable file(s), e.g. {'; '.join(bad[:3])}")
        if not rows:
            raise UserError(f"{folder}: no usable audio ({len(bad)} unreadable file(s))")

        write_manifest(tmp, rows)
        counts, durs = summarize(rows)
        info = {"source": "audio_folder", "keyword": kw, "params": params, "counts": counts, "durations_s": durs,
                "num_clips": len(rows), "skipped": len(bad)}
        (tmp / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return dest
