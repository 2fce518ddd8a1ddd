"""Streaming detection and DET logic on hand-made posteriors (no model needed)."""
import json

import numpy as np
import pytest

from training.config import Config, EvalConfig
from basics.errors import UserError
from training.evaluate import StreamScores, det_curve, detect, frr_at, load_stream_labels, match, smooth


def test_smooth_is_causal_moving_average():
    p = np.array([0, 0, 1, 1, 1, 0], float)
    np.testing.assert_allclose(smooth(p, 2), [0, 0, 0.5, 1, 1, 0.5])
    np.testing.assert_allclose(smooth(p, 1), p)


def test_refractory_period_suppresses_repeats():
    t = np.arange(0, 10, 0.01)
    p = np.zeros_like(t)
    p[(t > 2) & (t < 2.5)] = 0.9  # one long burst
    p[(t > 2.8) & (t < 2.9)] = 0.9  # within refractory of the first
    p[(t > 5) & (t < 5.1)] = 0.9
    d = detect(p, t, 0.5, refractory_s=1.0)
    assert len(d) == 2 and abs(d[0] - 2.01) < 0.02 and abs(d[1] - 5.01) < 0.02
    assert len(detect(p, t, 0.95, 1.0)) == 0


def test_match_counts_true_and_false_accepts():
    kws = [{"start_s": 1.0, "end_s": 1.6}, {"start_s": 5.0, "end_s": 5.5}]
    ta, fa = match(np.array([1.7, 3.0, 5.4, 5.45]), kws, tolerance_s=0.5)
    assert (ta, fa) == (2, 2)  # second detection in the 2nd keyword's window is a false accept


def test_det_curve_is_monotone_and_reaches_operating_points():
    rng = np.random.default_rng(0)
    t = np.arange(0, 3600, 0.01)
    p = rng.uniform(0, 0.3, len(t))
    kws = []
    for s in np.arange(10, 3600, 60.0):
        kws.append({"start_s": s, "end_s": s + 0.6})
        p[(t >= s + 0.5) & (t <= s + 0.8)] = rng.uniform(0.6, 1.0)
    ecfg = EvalConfig(smoothing_frames=1, thresholds=21)
    pts = det_curve(StreamScores(t, p, 3600.0), kws, ecfg)
    fah = [q["fa_per_hour"] for q in pts]
    frr = [q["frr"] for q in pts]
    assert all(a >= b for a, b in zip(fah, fah[1:]))  # fewer false accepts at higher thresholds
    assert all(a <= b for a, b in zip(frr, frr[1:]))
    # noise stays below 0.3 and every keyword window peaks at >= 0.6: the first grid threshold at or
    # above 0.3 (0.30, 21-point grid) has no false accept and misses no keyword
    f1, th = frr_at(pts, 1.0)
    assert f1 == 0.0 and th == pytest.approx(0.3)
    assert max(q["fa_per_hour"] for q in pts if q["threshold"] < 0.29) > 1000  # below it, noise fires
    assert frr_at([{"fa_per_hour": 5.0, "frr": 0.0, "threshold": 0.5}], 1.0) == (1.0, 1.0)


def test_bad_label_file(tmp_path):
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"keywords": [{"start": 1}]}))
    with pytest.raises(UserError, match="not a stream label file"):
        load_stream_labels(p)
    with pytest.raises(UserError, match="no such label file"):
        load_stream_labels(tmp_path / "none.json")


def test_window_end_times_follow_the_context():
    from training.evaluate import window_end_times

    cfg = Config()
    t = window_end_times(3, cfg.features)
    span = (cfg.features.context_frames - 1) * cfg.features.context_stride + 1
    assert t[0] == pytest.approx(((span - 1) * 160 + 400) / 16000)
    assert t[1] - t[0] == pytest.approx(0.01)
