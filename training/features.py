"""64-dim log-mel filterbank energies (LFBE): the one feature function of the project.

Training, evaluation, the integer reference and the C front end's tests all use
``lfbe``. Definition (docs/features.md repeats it for the C port):

* 16 kHz mono float audio in [-1, 1];
* frames of 400 samples (25 ms) every 160 samples (10 ms), no padding: a clip of N samples
  gives ``1 + (N - 400) // 160`` frames (0 if N < 400), so frame t covers samples
  [160 t, 160 t + 400) and a streaming device emits frame t once those samples have arrived;
* periodic Hann window, 512-point real FFT, power spectrum |X_k|^2, k = 0..256;
* 64 triangular filters, equally spaced on the HTK mel scale (2595 log10(1 + f/700)) from
  20 Hz to 8000 Hz, peak 1, applied to the power spectrum;
* natural log of (energy + 1e-6).

Feature normalization (per-bin mean and standard deviation of the training set) is stored with
the model; ``stack_context`` builds the model's input windows of ``context`` frames.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from basics.errors import UserError


@dataclass(frozen=True)
class LfbeParams:
    sample_rate: int = 16000
    window_samples: int = 400
    hop_samples: int = 160
    fft_size: int = 512
    num_mel_bins: int = 64
    lower_hz: float = 20.0
    upper_hz: float = 8000.0
    log_floor: float = 1e-6


def lfbe_params(features) -> LfbeParams:
    """The front end's parameters from the feature settings: ``features`` is a ``FeatureConfig`` (the
    ``features`` section of a run's config) or anything with sample_rate, window_ms, hop_ms and
    num_mel_bins (a model's metadata). The one place window, hop and FFT sizes are derived."""
    sr = int(features.sample_rate)
    win = int(round(float(features.window_ms) * sr / 1000))
    hop = int(round(float(features.hop_ms) * sr / 1000))
    fft = 1 << (win - 1).bit_length()
    return LfbeParams(sample_rate=sr, window_samples=win, hop_samples=hop, fft_size=fft,
                      num_mel_bins=int(features.num_mel_bins), upper_hz=sr / 2)


def params_from_metadata(feats: dict, where: str) -> tuple[LfbeParams, int, int]:
    """(front-end parameters, context frames, context stride) from the "features" block of a model's
    metadata (what training.qat_train writes), checked (one UserError line naming ``where``)."""
    try:
        f = SimpleNamespace(sample_rate=int(feats.get("sample_rate", 16000)),
                            window_ms=float(feats.get("window_ms", 25.0)), hop_ms=float(feats.get("hop_ms", 10.0)),
                            num_mel_bins=int(feats.get("num_mel_bins", 64)))
        ctx, stride = int(feats["context_frames"]), int(feats.get("context_stride", 1))
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where}: feature parameters missing or malformed ({type(e).__name__}: {e})") from None
    p = lfbe_params(f)
    sr, win, hop, bins = p.sample_rate, p.window_samples, p.hop_samples, p.num_mel_bins
    if not (8000 <= sr <= 48000 and 0 < hop <= win <= 4 * sr and 1 <= bins <= 256 and 1 <= ctx <= 512
            and 1 <= stride <= 64):
        raise UserError(f"{where}: feature parameters out of range ({feats})")
    return p, ctx, stride


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_matrix(p: LfbeParams = LfbeParams()) -> np.ndarray:
    """(fft_size//2 + 1, num_mel_bins) float32 triangular filterbank."""
    n_bins = p.fft_size // 2 + 1
    freqs = np.arange(n_bins) * p.sample_rate / p.fft_size
    edges = mel_to_hz(np.linspace(hz_to_mel(p.lower_hz), hz_to_mel(p.upper_hz), p.num_mel_bins + 2))
    m = np.zeros((n_bins, p.num_mel_bins), dtype=np.float64)
    for j in range(p.num_mel_bins):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        m[:, j] = np.maximum(0.0, np.minimum(up, down))
    m.setflags(write=False)
    return m.astype(np.float32)


@lru_cache(maxsize=8)
def hann(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


def num_frames(num_samples: int, p: LfbeParams = LfbeParams()) -> int:
    if num_samples < p.window_samples:
        return 0
    return 1 + (num_samples - p.window_samples) // p.hop_samples


LFBE_ROWS = 1024  # frames per FFT block when lfbe runs on threads


def lfbe(audio: np.ndarray, p: LfbeParams = LfbeParams(), threads: int = 1) -> np.ndarray:
    """(num_frames, num_mel_bins) float32 log-mel energies of mono float audio.

    ``threads`` > 1 computes the FFT power spectra (the dominant cost) in blocks of ``LFBE_ROWS``
    frames on a thread pool (numpy's FFT releases the GIL; each frame's FFT is independent of the
    block); the mel product stays one matrix product over all frames, as with ``threads=1`` (BLAS
    may sum in another order for another row count), so the bytes equal ``threads=1``."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"lfbe expects mono 1-D audio, got shape {x.shape}")
    n = num_frames(len(x), p)
    if n == 0:
        return np.zeros((0, p.num_mel_bins), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, p.window_samples)[:: p.hop_samples][:n]
    if threads <= 1 or n <= LFBE_ROWS:
        power = _power(frames, p)
    else:
        power = np.empty((n, p.fft_size // 2 + 1), np.float32)

        def block(a):
            power[a:a + LFBE_ROWS] = _power(frames[a:a + LFBE_ROWS], p)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(block, range(0, n, LFBE_ROWS)))
    mel = power @ mel_matrix(p)
    return np.log(mel + np.float32(p.log_floor)).astype(np.float32)


def _power(frames: np.ndarray, p: LfbeParams) -> np.ndarray:
    spec = np.fft.rfft(frames * hann(p.window_samples), n=p.fft_size, axis=1)
    return spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2


@dataclass
class Normalizer:
    """Per-bin feature normalization, stored with the model (JSON-serializable)."""

    mean: list = field(default_factory=list)
    std: list = field(default_factory=list)

    @classmethod
    def fit(cls, feats: np.ndarray) -> "Normalizer":
        f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
        return cls(mean=f.mean(axis=0).tolist(), std=np.maximum(f.std(axis=0), 1e-3).tolist())

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return ((feats - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": list(map(float, self.mean)), "std": list(map(float, self.std))}

    @classmethod
    def from_dict(cls, d, bins: int, where: str) -> "Normalizer":
        """The normalization stored with a run or a model (``to_dict``), checked: ``bins`` finite means
        and positive stds, else one UserError line naming ``where``."""
        try:
            mean = [float(v) for v in d["mean"]]
            std = [float(v) for v in d["std"]]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where}: no usable feature normalization (mean/std lists)") from None
        if len(mean) != bins or len(std) != bins or not all(np.isfinite(mean + std)) or min(std) <= 0:
            raise UserError(f"{where}: normalization must hold {bins} finite means and positive stds")
        return cls(mean=mean, std=std)


def window_span(context: int, stride: int = 1) -> int:
    """Frames covered by one context window: the newest frame and (context - 1) older ones, stride apart."""
    return (context - 1) * stride + 1


def stack_context(feats: np.ndarray, context: int, stride: int = 1) -> np.ndarray:
    """(T, B) frames -> (T - span + 1, context * B) windows, span = (context - 1) * stride + 1.

    Window i holds frames i, i + stride, ..., i + (context - 1) * stride (oldest first) and so
    ends at frame i + span - 1. Flattening is frame-major: element [j * B + b] is bin b of the
    j-th frame of the window.
    """
    t, b = feats.shape
    span = window_span(context, stride)
    if t < span:
        return np.zeros((0, context * b), dtype=feats.dtype)
    win = np.lib.stride_tricks.sliding_window_view(feats, (span, b))[:, 0, ::stride]
    return np.ascontiguousarray(win).reshape(t - span + 1, context * b)
