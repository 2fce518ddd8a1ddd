"""Waveform augmentation for training: time shift, room reverberation, background noise, gain.

``Augmenter(cfg, cache_dir)(audio, rng)`` returns an augmented copy of a float32 16 kHz mono clip,
the same length, deterministic for the state of ``rng``:

1. time shift up to +-0.1 s (audiomentations ``Shift``, no roll-over, short fades);
2. reverberation by a synthetic room impulse response (audiomentations ``ApplyImpulseResponse``
   over a cached bank made by ``data_scripts.noise.rir_bank``; or ``rir_dir`` of real ones);
3. background noise at an SNR drawn uniformly from [cfg.snr_db_min, cfg.snr_db_max] dB, relative to
   the clip's RMS, from ``training_noise`` (cfg.noise_dir files, else synthetic coloured noise; plus
   generated music when cfg.music > 0).
   Mixed here rather than with AddBackgroundNoise so the noise comes from in-memory arrays shared
   with the training code and the SNR is exact. A silent clip gets noise at -60..-25 dBFS;
4. with probability ``cfg.channel_augment`` (0 = never, the default), a random microphone / channel
   response on the mix of speech and noise (``random_channel``): a seven-band parametric EQ of
   +-6 dB, and sometimes a high-pass (cheap or far-field microphones lose the lows) or a low-pass
   (band-limited channels). Real recordings differ from TTS output mostly in such responses;
5. gain in [-12, +6] dB (audiomentations ``Gain``), then clipping to [-1, 1].

audiomentations draws from Python's ``random`` and numpy's global RNG; each call seeds both from
``rng`` under a lock and restores their previous state afterwards, so results depend only on rng.
"""
from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from pathlib import Path
import warnings

import numpy as np

from basics.audio import SAMPLE_RATE
from basics.errors import UserError
from data_scripts.config import DataConfig
from data_scripts.noise import noise_source, rir_bank, training_noise

__all__ = ["Augmenter", "noise_source", "mix_at_snr", "change_speaker", "random_channel"]

_global_rng_lock = threading.Lock()


@contextmanager
def _seeded_globals(seed: int):
    with _global_rng_lock:
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _segment(src: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(src) < n:
        src = np.tile(src, n // max(1, len(src)) + 1)
    o = int(rng.integers(0, len(src) - n + 1))
    return src[o: o + n]


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """signal + noise scaled so that 10*log10(P_signal / P_noise) == snr_db (P = mean square)."""
    ps = float(np.mean(np.square(signal, dtype=np.float64)))
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    if ps <= 0 or pn <= 0:
        return signal.astype(np.float32, copy=True)
    k = np.sqrt(ps / (pn * 10 ** (snr_db / 10.0)))
    return (signal + k * noise).astype(np.float32)


class Augmenter:
    def __init__(self, cfg: DataConfig, cache_dir: str | Path, *, p_shift: float = 0.5, p_reverb: float = 0.3,
                 p_noise: float = 0.8, p_gain: float = 0.8, max_shift_s: float = 0.1,
                 gain_db: tuple[float, float] = (-12.0, 6.0), rir_dir: str | Path | None = None):
        from audiomentations import ApplyImpulseResponse, Gain, Shift  # lazy: heavy dependency, loaded only when this runs

        if cfg.snr_db_min > cfg.snr_db_max:
            raise UserError(f"data.snr_db_min: {cfg.snr_db_min} is above data.snr_db_max {cfg.snr_db_max}")
        self.snr_db = (float(cfg.snr_db_min), float(cfg.snr_db_max))
        self.cache_dir = Path(cache_dir)
        self.noise = training_noise(cfg, self.cache_dir)
        self.p = {"shift": p_shift, "reverb": p_reverb, "noise": p_noise, "gain": p_gain}
        # drawn only when on, after the others: with channel_augment 0 the random stream (and every
        # augmented clip) is exactly what it was before this step existed
        self._channel = random_channel() if cfg.channel_augment > 0 else None
        if self._channel is not None:
            self.p["channel"] = float(cfg.channel_augment)
        self._shift = Shift(min_shift=-max_shift_s, max_shift=max_shift_s, shift_unit="seconds",
                            rollover=False, fade_duration=0.005, p=1.0)
        self._gain = Gain(min_gain_db=gain_db[0], max_gain_db=gain_db[1], p=1.0)
        self._reverb = None
        if p_reverb > 0:
            folder = Path(rir_dir) if rir_dir else rir_bank(self.cache_dir)
            try:
                self._reverb = ApplyImpulseResponse(ir_path=str(folder), p=1.0, leave_length_unchanged=True)
            except AssertionError:
                raise UserError(f"{folder}: no impulse-response audio files") from None

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"Augmenter expects mono 1-D audio, got shape {x.shape}")
        n = len(x)
        if n == 0:
            return x.copy()
        # draw every random decision from rng up front, in a fixed order
        use = {k: rng.random() < p for k, p in self.p.items()}
        seed = int(rng.integers(0, 2**63 - 1))
        snr = float(rng.uniform(*self.snr_db))
        floor_db = float(rng.uniform(-60.0, -25.0))
        which = int(rng.integers(len(self.noise))) if self.noise else -1
        noise_rng = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
        y = x.copy()
        with _seeded_globals(seed):
            if use["shift"]:
                y = self._shift(samples=y, sample_rate=SAMPLE_RATE)
            if use["reverb"] and self._reverb is not None and np.any(y):
                level = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
                y = self._reverb(samples=y, sample_rate=SAMPLE_RATE)
                new = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
                if new > 0:  # ApplyImpulseResponse peak-normalizes to 0.5: keep the clip's level
                    y = y * np.float32(level / new)
            if use["noise"] and which >= 0:
                nz = _segment(self.noise[which], n, noise_rng)
                if np.mean(np.square(y, dtype=np.float64)) > 1e-10:
                    y = mix_at_snr(y, nz, snr)
                else:
                    rms = float(np.sqrt(np.mean(np.square(nz, dtype=np.float64)))) + 1e-12
                    y = (y + nz * np.float32(10 ** (floor_db / 20) / rms)).astype(np.float32)
            if use.get("channel") and np.any(y):
                level = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
                y = self._channel(samples=y.astype(np.float32), sample_rate=SAMPLE_RATE)
                new = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
                if new > 0:  # a response shapes the spectrum; the level is the gain step's job
                    y = y * np.float32(level / new)
            if use["gain"]:
                y = self._gain(samples=y.astype(np.float32), sample_rate=SAMPLE_RATE)
        y = np.clip(np.asarray(y, np.float32), -1.0, 1.0)
        assert len(y) == n
        return y


def random_channel():
    """A random microphone / channel response (audiomentations): a seven-band parametric EQ of +-6 dB
    always, a high-pass at 60-300 Hz half the time, a low-pass at 3.4-7.5 kHz a third of the time."""
    from audiomentations import (Compose, HighPassFilter, LowPassFilter,  # lazy: heavy dependency, as above
                                 SevenBandParametricEQ)

    return Compose([SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=1.0),
                    HighPassFilter(min_cutoff_freq=60.0, max_cutoff_freq=300.0, p=0.5),
                    LowPassFilter(min_cutoff_freq=3400.0, max_cutoff_freq=7500.0, p=0.33)])


FORMANT_RATIO = (0.85, 1.18)
PITCH_MEDIAN_HZ = (85.0, 260.0)
DURATION = (0.85, 1.15)


def change_speaker(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new speaker from a synthetic one: Praat's "Change gender" (praat-parselmouth, an optional
    dependency, GPL-3) with a random formant shift (vocal-tract length), pitch median (70 % of the
    time; otherwise the pitch is kept) and duration. The audio keeps its level; its length changes
    with the duration factor. Without parselmouth the clip is returned unchanged.
    """
    try:
        import parselmouth  # lazy, optional: imported only when speaker augmentation is on
        from parselmouth.praat import call  # lazy: heavy dependency, loaded only when this runs
    except ImportError:
        return audio
    x = np.asarray(audio, np.float64)
    if len(x) < 1600 or not np.any(x):
        return np.asarray(audio, np.float32)
    formant = float(rng.uniform(*FORMANT_RATIO))
    pitch = float(rng.uniform(*PITCH_MEDIAN_HZ)) if rng.random() < 0.7 else 0.0
    dur = float(rng.uniform(*DURATION))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no voiced segments" on unvoiced clips: the clip is kept as is
            y = call(parselmouth.Sound(x, SAMPLE_RATE), "Change gender", 75, 600, formant, pitch, 1.0, dur)
    except parselmouth.PraatError:  # e.g. no voiced frames: keep the clip
        return np.asarray(audio, np.float32)
    y = np.asarray(y.values[0], np.float32)
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if peak_out > 0:
        y *= np.float32(peak_in / peak_out)
    return y
