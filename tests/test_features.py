"""Golden tests of the LFBE front end."""
import numpy as np
import pytest

from training.features import (LfbeParams, Normalizer, hz_to_mel, lfbe, mel_matrix, mel_to_hz, num_frames,
                               stack_context, window_span)

P = LfbeParams()


def tone(f, seconds=1.0, amp=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def band_centres():
    edges = mel_to_hz(np.linspace(hz_to_mel(P.lower_hz), hz_to_mel(P.upper_hz), P.num_mel_bins + 2))
    return edges[1:-1]


@pytest.mark.parametrize("f", [250.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_lands_in_its_mel_band(f):
    feats = lfbe(tone(f))
    assert feats.shape == (98, 64) and feats.dtype == np.float32
    peak = int(np.bincount(feats.argmax(axis=1)).argmax())
    expected = int(np.argmin(np.abs(band_centres() - f)))
    assert abs(peak - expected) <= 1, (peak, expected)
    # the tone's band is far above the bands an octave away
    far = int(np.argmin(np.abs(band_centres() - f / 2)))
    assert feats[:, peak].mean() - feats[:, far].mean() > 5.0


def test_frame_count_and_no_padding():
    assert num_frames(399) == 0 and lfbe(np.zeros(399, np.float32)).shape == (0, 64)
    assert num_frames(400) == 1 and num_frames(559) == 1 and num_frames(560) == 2
    assert lfbe(np.zeros(16000, np.float32)).shape[0] == 1 + (16000 - 400) // 160


def test_silence_is_the_log_floor():
    feats = lfbe(np.zeros(4000, np.float32))
    np.testing.assert_allclose(feats, np.log(np.float32(P.log_floor)), rtol=1e-6)


def test_full_scale_is_finite_and_bounded():
    x = np.sign(tone(440.0, amp=1.0)).astype(np.float32)  # full-scale square wave
    feats = lfbe(x)
    assert np.all(np.isfinite(feats))
    # Parseval bound: sum of mel energies <= sum of power spectrum <= fft * sum(w^2 x^2)
    assert feats.max() < np.log(512 * 400)
    noise = np.random.default_rng(0).uniform(-1, 1, 16000).astype(np.float32)
    assert np.all(np.isfinite(lfbe(noise)))


def test_louder_is_higher_by_the_gain():
    x = tone(1000.0, amp=0.1)
    d = lfbe(10 * x) - lfbe(x)
    peak = lfbe(x).mean(axis=0).argmax()
    assert abs(d[:, peak].mean() - np.log(100.0)) < 0.01  # 20 dB more energy


def test_filterbank_shape_and_coverage():
    m = mel_matrix(P)
    assert m.shape == (257, 64)
    assert np.all(m.max(axis=0) > 0.45)  # every filter reaches at least one FFT bin (low bands are ~1 bin wide)
    assert np.all(m >= 0)


def test_stack_context_order_and_stride():
    feats = np.arange(30 * 2, dtype=np.float32).reshape(30, 2)
    w = stack_context(feats, 4, 3)
    assert window_span(4, 3) == 10 and w.shape == (21, 8)
    np.testing.assert_array_equal(w[0], feats[[0, 3, 6, 9]].reshape(-1))
    np.testing.assert_array_equal(w[-1], feats[[20, 23, 26, 29]].reshape(-1))
    assert stack_context(feats[:9], 4, 3).shape == (0, 8)


def test_normalizer_roundtrip():
    rng = np.random.default_rng(1)
    f = rng.normal(3, 2, (1000, 64)).astype(np.float32)
    n = Normalizer.fit(f)
    g = n(f)
    assert abs(g.mean()) < 1e-3 and abs(g.std() - 1) < 1e-2
    n2 = Normalizer(**n.to_dict())
    np.testing.assert_array_equal(n2(f), g)
