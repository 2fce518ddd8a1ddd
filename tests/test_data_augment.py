"""Augmentation: length/dtype kept, exact SNR range, determinism, noise sources, synthetic RIRs."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from data_scripts.config import DataConfig
from basics.errors import UserError

SHARED_NOISE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "noise"
SR = 16000


def _speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    env = np.zeros(n)
    env[int(0.2 * n): int(0.8 * n)] = np.hanning(int(0.8 * n) - int(0.2 * n))
    x = env * (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t) + 0.02 * rng.standard_normal(n))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("augcache")


def test_length_dtype_and_determinism(cache):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(), cache, p_reverb=0.5)
    for n in (1, 400, 16000, 23456):
        x = _speechlike(n / SR) if n > 100 else np.full(n, 0.1, np.float32)
        for seed in range(4):
            y = aug(x, np.random.default_rng(seed))
            assert y.dtype == np.float32 and y.shape == x.shape
            assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    x = _speechlike()
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(x, _speechlike())  # input not modified


def test_global_random_state_untouched(cache):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(), cache)
    random.seed(3)
    np.random.seed(3)
    aug(_speechlike(), np.random.default_rng(1))
    assert random.random() == random.Random(3).random()
    assert np.random.random() == np.random.RandomState(3).random_sample()


@pytest.mark.parametrize("lo,hi", [(5.0, 30.0), (0.0, 3.0), (20.0, 20.0)])
def test_noise_snr_in_range(cache, lo, hi):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(snr_db_min=lo, snr_db_max=hi), cache, p_shift=0, p_reverb=0, p_noise=1, p_gain=0)
    x = _speechlike()
    snrs = []
    for seed in range(20):
        y = aug(x, np.random.default_rng(seed))
        noise = y.astype(np.float64) - x
        snrs.append(10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2)))
    assert lo - 0.05 <= min(snrs) and max(snrs) <= hi + 0.05
    if hi - lo > 10:
        assert max(snrs) - min(snrs) > 0.3 * (hi - lo)  # spread over the range


def test_silent_clip_gets_background(cache):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(), cache, p_noise=1.0, p_gain=0)
    y = aug(np.zeros(8000, np.float32), np.random.default_rng(0))
    rms_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2))
    assert -62 < rms_db < -20


def test_reverb_only(cache):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(), cache, p_shift=0, p_reverb=1, p_noise=0, p_gain=0)
    x = _speechlike()
    y = aug(x, np.random.default_rng(2))
    assert y.shape == x.shape and not np.allclose(x, y)
    tail = slice(int(0.82 * SR), int(0.95 * SR))  # after the speech: reverberation tail
    assert np.mean(y[tail] ** 2) > np.mean(x[tail] ** 2)
    assert np.isclose(np.sqrt(np.mean(y**2)), np.sqrt(np.mean(x**2)), rtol=0.01)  # level kept


def test_synthetic_rir_decays(tmp_path):
    from data_scripts.noise import rir_bank, synthetic_rir

    rng = np.random.default_rng(0)
    for rt60 in (0.2, 0.6):
        h = synthetic_rir(rng, rt60=rt60)
        assert h[0] == pytest.approx(1.0) or abs(h).argmax() < 200
        e = h.astype(np.float64) ** 2
        early, late = e[: int(0.05 * SR)].sum(), e[int(rt60 * SR * 0.9):].sum()
        assert late < early * 1e-3
    folder = rir_bank(tmp_path, count=5)
    assert len(list(folder.glob("*.wav"))) == 5
    assert rir_bank(tmp_path, count=5) == folder


def test_noise_sources(tmp_path):
    from data_scripts.augment import noise_source
    from data_scripts.noise import coloured_noise
    from basics.audio import save_wav

    bank = noise_source(DataConfig(), tmp_path)
    assert len(bank) >= 4 and all(b.dtype == np.float32 and len(b) >= SR for b in bank)
    assert all(np.array_equal(a, b) for a, b in zip(bank, noise_source(DataConfig(), tmp_path)))
    # spectral slopes: brown has much more low- than high-frequency energy, white is flat
    rng = np.random.default_rng(0)
    for colour, expect in (("white", (0.5, 2.0)), ("brown", (100.0, np.inf))):
        x = coloured_noise(2 * SR, colour, rng)
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / SR)
        ratio = p[(f > 100) & (f < 400)].mean() / p[(f > 3000) & (f < 6000)].mean()
        assert expect[0] < ratio < expect[1], (colour, ratio)
    d = tmp_path / "mynoise"
    save_wav(d / "a.wav", 0.1 * coloured_noise(SR, "pink", rng))
    save_wav(d / "sub" / "b.wav", 0.1 * coloured_noise(SR // 2, "white", rng))
    got = noise_source(DataConfig(noise_dir=str(d)), tmp_path)
    assert [len(g) for g in got] == [SR, SR // 2]
    with pytest.raises(UserError, match="no such data folder"):
        noise_source(DataConfig(noise_dir=str(tmp_path / "missing")), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no usable noise"):
        noise_source(DataConfig(noise_dir=str(tmp_path / "empty")), tmp_path)


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_NOISE.is_dir(), reason=f"{SHARED_NOISE} (shared development data) is not present")
def test_real_noise_dir(cache):
    from data_scripts.augment import Augmenter

    aug = Augmenter(DataConfig(noise_dir=str(SHARED_NOISE), snr_db_min=10, snr_db_max=10), cache,
                    p_shift=0, p_reverb=0, p_noise=1, p_gain=0)
    assert len(aug.noise) >= 5
    x = _speechlike()
    y = aug(x, np.random.default_rng(0))
    n = y.astype(np.float64) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(n**2)) == pytest.approx(10, abs=0.05)


def test_generated_music_joins_the_training_noise_only_when_asked(tmp_path):
    from data_scripts.music import music_bank
    from data_scripts.noise import noise_source, training_noise
    from training.config import Config
    from training.dataset import WindowConfig
    from training.feature_store import store_key

    cfg = Config()
    base = training_noise(cfg.data)
    assert len(base) == len(noise_source(cfg.data))
    cfg.data.music = 3
    bank = training_noise(cfg.data)
    assert len(bank) == len(base) + 3 and len(noise_source(cfg.data)) == len(base)  # data sets' streams: no music
    m = music_bank(3)
    assert all(np.array_equal(a, b) for a, b in zip(bank[-3:], m))
    assert all(abs(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) - 0.05) < 1e-3 for x in m)
    assert not np.array_equal(m[0], m[1])  # distinct pieces
    # spectrally unlike the noise bank: strong harmonic peaks (tonal), which coloured noise lacks
    spec = np.abs(np.fft.rfft(m[0][:16000]))
    assert spec.max() > 20 * np.median(spec)
    (tmp_path / "manifest.csv").write_text("path,label,split,voice,text\n")
    k12 = store_key(WindowConfig.of(cfg), tmp_path)
    cfg.data.music = 0
    assert store_key(WindowConfig.of(cfg), tmp_path) != k12  # the stored windows depend on the music


def test_channel_response_is_off_by_default_and_reshapes_the_spectrum_when_on(cache, tmp_path):
    from data_scripts.augment import Augmenter
    from training.config import Config
    from training.dataset import WindowConfig
    from training.feature_store import feature_params, store_key

    x = (np.random.default_rng(0).standard_normal(16000) * 0.05).astype(np.float32)   # white: every band present
    off = Augmenter(DataConfig(), cache, p_shift=0.0, p_reverb=0.0, p_noise=0.0, p_gain=0.0)
    on = Augmenter(DataConfig(channel_augment=1.0), cache, p_shift=0.0, p_reverb=0.0, p_noise=0.0, p_gain=0.0)
    assert "channel" not in off.p   # off: the random stream is the one from before this step
    assert np.array_equal(off(x, np.random.default_rng(3)), x)
    ys = [on(x, np.random.default_rng(s)) for s in range(6)]
    assert np.array_equal(ys[0], on(x, np.random.default_rng(0)))   # deterministic in rng
    for y in ys:   # the level is kept, the band balance is not
        assert abs(np.sqrt(np.mean(y.astype(np.float64) ** 2)) / np.sqrt(np.mean(x.astype(np.float64) ** 2)) - 1) < 1e-3
    bands = lambda a: np.log10([np.sum(np.abs(np.fft.rfft(a))[lo:hi] ** 2) for lo, hi in ((5, 400), (400, 3000), (3000, 7500))])
    ref = bands(x)
    assert max(np.abs(bands(y) - ref).max() for y in ys) > 0.3   # some band moved by > 3 dB
    # the feature store key: unchanged for configs without the step (old stores stay valid), distinct with it
    cfg = Config()
    (tmp_path / "manifest.csv").write_text("path,label,split,voice,text\n")
    assert "channel_augment" not in feature_params(WindowConfig.of(cfg))["data"]
    k0 = store_key(WindowConfig.of(cfg), tmp_path)
    cfg.data.channel_augment = 0.5
    assert store_key(WindowConfig.of(cfg), tmp_path) != k0
