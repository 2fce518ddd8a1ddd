"""Audio input: every reader in the project goes through ``load_audio``.

Bad files never crash: a corrupt, empty or unreadable file raises UserError naming the file.
Other sample rates are resampled (and that is said once per rate), stereo is mixed down.
"""
from __future__ import annotations

import os
import sys
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from basics.atomic import atomic_path
from basics.errors import UserError

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
_warned_rates: set[int] = set()
MIN_RATE, MAX_RATE = 4000, 384000  # sample rates accepted (a corrupted header can claim any)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    from scipy.signal import resample_poly  # lazy: scipy.signal is heavy and only resampling needs it

    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    if max(up, down) > 1000:  # e.g. 16001 Hz: a polyphase filter of 16000 taps per phase; FFT instead
        from scipy.signal import resample as resample_fft  # lazy, as above

        n = max(int(round(len(x) * sr_out / sr_in)), 1)
        return resample_fft(x, n).astype(np.float32)
    return resample_poly(x, up, down).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, quiet: bool = False) -> np.ndarray:
    """Read ``path`` as mono float32 in [-1, 1] at ``sample_rate``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such audio file")
    try:
        x, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)  # bytes: any file name
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a readable audio file ({msg})") from None
    if x.shape[0] == 0:
        raise UserError(f"{path}: audio file is empty")
    if not MIN_RATE <= sr <= MAX_RATE:
        raise UserError(f"{path}: sample rate {sr} Hz outside {MIN_RATE}..{MAX_RATE} Hz")
    if x.shape[1] > 1:
        x = x.mean(axis=1, keepdims=True)
    x = x[:, 0]
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: audio contains NaN or infinite samples")
    if sr != sample_rate:
        if sr not in _warned_rates and not quiet:
            print(f"note: resampling {sr} Hz audio to {sample_rate} Hz (first seen in {path})", file=sys.stderr)
            _warned_rates.add(sr)
        x = resample(x, sr, sample_rate)
    return np.ascontiguousarray(x, dtype=np.float32)


def audio_blocks(path: str | Path, sample_rate: int = SAMPLE_RATE, block_s: float = 60.0):
    """``path`` as consecutive mono float32 blocks of about ``block_s`` seconds at ``sample_rate``, so
    hours of audio are read in bounded memory; the same checks (one UserError line) as load_audio.
    A resampled file is resampled block by block (at a block edge the samples differ slightly from
    resampling the whole file at once)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such audio file")
    try:
        fh = sf.SoundFile(os.fsencode(path))  # bytes: any file name
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a readable audio file ({msg})") from None
    with fh:
        sr = fh.samplerate
        if not MIN_RATE <= sr <= MAX_RATE:
            raise UserError(f"{path}: sample rate {sr} Hz outside {MIN_RATE}..{MAX_RATE} Hz")
        step = max(1, int(block_s * sr))
        while True:
            try:
                x = fh.read(step, dtype="float32", always_2d=True)
            except Exception as e:
                raise UserError(f"{path}: not a readable audio file ({str(e).splitlines()[0][:100]})") from None
            if len(x) == 0:
                break
            x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
            if not np.all(np.isfinite(x)):
                raise UserError(f"{path}: audio contains NaN or infinite samples")
            yield np.ascontiguousarray(resample(x, sr, sample_rate), dtype=np.float32)


def save_wav(path: str | Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM WAV atomically."""
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def list_audio(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such data folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
