"""Background noise and room impulse responses.

* ``coloured_noise``: white / pink / brown / blue noise made in numpy (1/f^alpha spectrum).
* ``noise_source``: the background-noise arrays used for augmentation, "background" training
  examples and the streams: every audio file under ``cfg.noise_dir`` if set, else a fixed bank of
  synthetic coloured noises (plus mains hum and a fan-like rumble).
* ``synthetic_rir`` / ``rir_bank``: simple synthetic room impulse responses (direct path, a few
  early reflections, an exponentially decaying noise tail with an RT60 drawn from a range and
  high frequencies decaying faster), cached as small wav files because audiomentations'
  ApplyImpulseResponse reads impulse responses from files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from basics.audio import SAMPLE_RATE, list_audio, load_audio
from basics.atomic import atomic_path, clean_stale_temporaries
from basics.errors import UserError
from data_scripts.config import DataConfig
from data_scripts.music import music_bank

COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0}
RIR_VERSION = 1


def coloured_noise(n: int, colour: str | float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of noise with power spectrum ~ 1/f^alpha, RMS 1, float32."""
    alpha = COLOURS[colour] if isinstance(colour, str) else float(colour)
    if n <= 0:
        return np.zeros(0, np.float32)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    f[0] = f[1] if n > 1 else 1.0
    spec *= np.maximum(f, 20.0) ** (-alpha / 2.0)  # below 20 Hz flat: no huge DC drift
    x = np.fft.irfft(spec, n)
    x -= x.mean()
    x /= np.sqrt(np.mean(x * x)) + 1e-12
    return x.astype(np.float32)


def synthetic_noise_bank(seconds: float = 20.0, seed: int = 20240) -> list[np.ndarray]:
    """Fixed, deterministic bank of synthetic background noises (RMS 0.05)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    bank = [coloured_noise(n, c, rng) for c in ("white", "pink", "brown", "blue")]
    t = np.arange(n) / SAMPLE_RATE
    for mains in (50.0, 60.0):  # hum with harmonics over pink noise
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5))
        x = hum / np.sqrt(np.mean(hum**2)) + 0.5 * coloured_noise(n, "pink", rng)
        bank.append(x.astype(np.float32))
    # fan / air conditioning: brown noise with a slow amplitude wobble
    wob = 1.0 + 0.3 * np.sin(2 * np.pi * 0.3 * t)
    bank.append((coloured_noise(n, "brown", rng) * wob + 0.2 * coloured_noise(n, "white", rng)).astype(np.float32))
    return [(0.05 * x / (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)).astype(np.float32) for x in bank]


def load_noise_dir(folder: str | Path, min_seconds: float = 0.1) -> list[np.ndarray]:
    files = list_audio(folder)  # UserError if the folder is missing
    out = []
    for p in files:
        x = load_audio(p, SAMPLE_RATE, quiet=True)
        if len(x) >= min_seconds * SAMPLE_RATE and np.any(x):
            out.append(x)
    if not out:
        raise UserError(f"{folder}: no usable noise audio (wav/flac/ogg files of at least {min_seconds} s)")
    return out


def noise_folders(noise_dir: str | None, dirs: list | None, sources: list | None) -> list[Path]:
    """Every background-noise folder of a data section's noise_dir, noise_dirs and noise sources, once each
    (also read from a manifest's recorded data section, which is a plain dict)."""
    out = [Path(noise_dir)] if noise_dir else []
    out += [Path(d) for d in dirs or []]
    for s in sources or []:
        if isinstance(s, dict) and s.get("role") == "noise" and s.get("path"):
            out.append(Path(s["path"]))
    return list(dict.fromkeys(out))


def noise_dirs(cfg: DataConfig) -> list[Path]:
    """Every background-noise folder a DataConfig names: noise_dir, noise_dirs and noise sources."""
    return noise_folders(cfg.noise_dir, cfg.noise_dirs, cfg.sources)


def noise_source(cfg: DataConfig, cache_dir: str | Path | None = None) -> list[np.ndarray]:
    """Background noise arrays (float32, 16 kHz): the files of every noise folder of cfg, else
    synthetic coloured noise."""
    dirs = noise_dirs(cfg)
    if dirs:
        return [x for d in dirs for x in load_noise_dir(d)]
    return synthetic_noise_bank()


def training_noise(cfg: DataConfig, cache_dir: str | Path | None = None) -> list[np.ndarray]:
    """The background sounds of training (augmentation and background windows): ``noise_source``
    plus ``cfg.music`` generated music pieces. Data sets' own streams use ``noise_source`` alone, so a
    cached data set does not depend on ``music``."""
    bank = noise_source(cfg, cache_dir)
    if cfg.music:

        bank = bank + music_bank(int(cfg.music))
    return bank


def synthetic_rir(rng: np.random.Generator, rt60: float | None = None, drr_db: float | None = None,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One synthetic room impulse response, peak-normalized float32.

    rt60 (s, default drawn from 0.15-0.9) sets the exponential decay of the noise tail (60 dB in
    rt60 seconds); drr_db (default 0-12 dB) is the direct-to-reverberant energy ratio. High
    frequencies decay faster (a one-pole low-pass whose cut-off falls along the tail).
    """
    rt60 = float(rng.uniform(0.15, 0.9) if rt60 is None else rt60)
    drr_db = float(rng.uniform(0.0, 12.0) if drr_db is None else drr_db)
    n = int(min(1.2 * rt60, 1.0) * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    # frequency-dependent decay: smooth progressively more towards the end
    y = np.empty(n)
    acc = 0.0
    a = np.clip(0.1 + 0.85 * t / max(rt60, 1e-3), 0.1, 0.95)
    for i in range(n):
        acc = a[i] * acc + (1.0 - a[i]) * tail[i]
        y[i] = acc
    tail = y / (np.sqrt(np.sum(y * y)) + 1e-12)
    gap = int(rng.uniform(0.002, 0.008) * sample_rate)  # tail starts after the first reflections
    tail[:gap] = 0.0
    for _ in range(int(rng.integers(3, 8))):  # sparse early reflections
        d = int(rng.uniform(0.002, 0.04) * sample_rate)
        if d < n:
            tail[d] += rng.uniform(-1, 1) * np.sqrt(1.0 / 8)
    tail /= np.sqrt(np.sum(tail * tail)) + 1e-12
    h = tail * 10 ** (-drr_db / 20.0)
    h[0] += 1.0  # direct path (unit energy)
    return (h / np.max(np.abs(h))).astype(np.float32)


def rir_bank(cache_dir: str | Path, count: int = 40, seed: int = 7) -> Path:
    """Folder of ``count`` synthetic impulse-response wavs under cache_dir (made once, atomically)."""
    dest = Path(cache_dir) / f"rir-synthetic-v{RIR_VERSION}-{count}-{seed}"
    clean_stale_temporaries(dest.parent)  # a killed earlier run's half-written bank
    if dest.is_dir() and len(list(dest.glob("*.wav"))) == count:
        return dest
    rng = np.random.default_rng(seed)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        for i in range(count):
            sf.write(str(tmp / f"rir{i:03d}.wav"), synthetic_rir(rng), SAMPLE_RATE, subtype="FLOAT")
    return dest
