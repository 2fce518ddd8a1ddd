"""Generated music: background sound that no noise generator and no speech synthesizer makes.

Wake-word models that never heard music fire on it (measured: a model trained on speech and
coloured noise alone gave hundreds of detections per hour on generated music at its 1 FA/h
threshold, docs/recipe.md). ``data.music: N`` adds N generated pieces (chord progressions over a
bass line, a melody in eighth notes, kick/snare/hat drums; tempo, key, mode and timbre drawn at
random) to the background-noise bank: they are mixed under training clips at the augmentation SNR
and appear alone as background windows. No recording and no download is involved.
"""
from __future__ import annotations

import numpy as np

from basics.audio import SAMPLE_RATE

SR = SAMPLE_RATE
MUSIC_SEED = 4242  # training pieces; bench/negstream.py draws its own with another seed


def _tone(freq: float, n: int, harmonics: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) / SR
    y = np.zeros(n)
    for h in range(1, harmonics + 1):
        y += np.sin(2 * np.pi * freq * h * t + rng.uniform(0, 2 * np.pi)) / h ** 1.3
    env = np.exp(-t * decay) * np.minimum(1.0, t / 0.01)
    return y * env


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A few bars of generated music: a chord progression, bass, a melody and a drum pattern."""
    n = int(seconds * SR)
    y = np.zeros(n)
    bpm = rng.uniform(70, 150)
    beat = int(60 / bpm * SR)
    root = 220.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.6 else [0, 2, 3, 5, 7, 8, 10])
    prog = [int(d) for d in rng.choice([0, 3, 4, 5, 1], size=4)]
    harm = int(rng.integers(2, 8))
    for bar_i, b0 in enumerate(range(0, n, 4 * beat)):
        deg = prog[bar_i % 4]
        chord = [root * 2 ** (scale[(deg + k) % 7] / 12 + (deg + k) // 7) for k in (0, 2, 4)]
        m = min(4 * beat, n - b0)
        for f in chord:
            y[b0:b0 + m] += 0.25 * _tone(f, m, harm, 1.0, rng)
        y[b0:b0 + m] += 0.35 * _tone(chord[0] / 2, m, 3, 2.0, rng)
        for s in range(b0, min(n, b0 + 4 * beat), beat // 2):  # melody in eighth notes, some rests
            if rng.random() < 0.7:
                f = root * 2 * 2 ** (scale[int(rng.integers(7))] / 12)
                k = min(beat // 2, n - s)
                y[s:s + k] += 0.2 * _tone(f, k, 4, 6.0, rng)
    for s in range(0, n, beat):  # kick on every beat, snare on 2 and 4, hats in eighths
        k = min(int(0.15 * SR), n - s)
        t = np.arange(k) / SR
        y[s:s + k] += 0.5 * np.sin(2 * np.pi * 60 * t * (1 + 2 * np.exp(-t * 40))) * np.exp(-t * 25)
        if (s // beat) % 2 == 1:
            y[s:s + k] += 0.25 * rng.standard_normal(k) * np.exp(-t * 30)
        h = min(int(0.03 * SR), n - s - beat // 2)
        if h > 0:
            y[s + beat // 2:s + beat // 2 + h] += 0.06 * rng.standard_normal(h) * np.exp(-np.arange(h) / SR * 120)
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.6).astype(np.float32)


def music_bank(count: int, seconds: float = 15.0, seed: int = MUSIC_SEED) -> list[np.ndarray]:
    """``count`` generated pieces of ``seconds`` each, at the noise bank's level (RMS 0.05)."""
    rng = np.random.default_rng([seed, count])
    out = []
    for _ in range(count):
        x = music(seconds, rng).astype(np.float64)
        out.append((0.05 * x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32))
    return out
