"""Streaming test audio: labels point at keyword audio, spacing, durations add up, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from basics.audio import save_wav
from basics.errors import UserError

SR = 16000


def _burst(path: Path, freq: float, speech_s: float, pre: float = 0.2, post: float = 0.25) -> Path:
    t = np.arange(int(speech_s * SR)) / SR
    tone = 0.4 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) ** 0.25
    x = np.concatenate([np.zeros(int(pre * SR)), tone, np.zeros(int(post * SR))]).astype(np.float32)
    save_wav(path, x)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    kws = [_burst(d / f"kw{i}.wav", 1000.0, 0.5 + 0.05 * i) for i in range(4)]
    negs = [_burst(d / f"neg{i}.wav", 300.0 + 50 * i, 0.3 + 0.1 * i) for i in range(6)]
    return kws, negs, d


def _energy(x: np.ndarray, a: float, b: float) -> float:
    seg = x[int(a * SR): int(b * SR)].astype(np.float64)
    return float(np.mean(seg**2)) if len(seg) else 0.0


def test_labels_point_at_keywords(clips, tmp_path):
    from data_scripts.noise import synthetic_noise_bank
    from data_scripts.streaming import make_stream

    kws, negs, d = clips
    lab = make_stream(kws, negs, synthetic_noise_bank(seconds=5), 10.0, 3, tmp_path / "s.wav", tmp_path / "s.json",
                      snr_db=(20.0, 30.0), source_root=d)
    assert json.loads((tmp_path / "s.json").read_text()) == lab
    x, sr = sf.read(str(tmp_path / "s.wav"), dtype="float32")
    assert sr == SR and len(x) == round(lab["duration_s"] * SR) == 10 * 60 * SR
    ks = lab["keywords"]
    assert len(ks) >= 30 and lab["num_negatives"] > 100
    assert {k["source"] for k in ks} == {p.name for p in kws}  # every keyword clip used
    starts = [k["start_s"] for k in ks]
    assert starts == sorted(starts)
    assert all(b["start_s"] - a["end_s"] >= 3.0 for a, b in zip(ks, ks[1:]))
    assert 10 <= lab["duration_s"] / len(ks) <= 20
    # energy inside each labelled span is speech, and the 1 kHz keyword tone dominates there
    noise_floor = np.percentile([_energy(x, t, t + 0.05) for t in np.arange(0, 600, 0.05)], 5)
    for k in ks:
        assert _energy(x, k["start_s"], k["end_s"]) > 30 * noise_floor
        seg = x[int(k["start_s"] * SR): int(k["end_s"] * SR)]
        spec = np.abs(np.fft.rfft(seg))
        assert abs(np.fft.rfftfreq(len(seg), 1 / SR)[spec.argmax()] - 1000) < 30
        assert abs((k["end_s"] - k["start_s"]) - float(k["source"][2]) * 0.05 - 0.5) < 0.05  # speech span only
    # durations add up
    assert lab["keyword_s"] + lab["negative_s"] + lab["silence_s"] == pytest.approx(lab["duration_s"], abs=1e-3)
    assert lab["negative_s"] > lab["keyword_s"] and lab["negative_s"] > 0.4 * lab["duration_s"]


def test_deterministic_and_seed_dependent(clips, tmp_path):
    from data_scripts.streaming import make_stream

    kws, negs, _ = clips
    a = make_stream(kws, negs, [], 0.5, 1, tmp_path / "a.wav", tmp_path / "a.json")
    b = make_stream(kws, negs, [], 0.5, 1, tmp_path / "b.wav", tmp_path / "b.json")
    c = make_stream(kws, negs, [], 0.5, 2, tmp_path / "c.wav", tmp_path / "c.json")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert a["keywords"] == b["keywords"] and a["keywords"] != c["keywords"]
    # no noise: outside clips the stream is exact silence
    x, _ = sf.read(str(tmp_path / "a.wav"))
    assert np.mean(x == 0) > 0.2


def test_stream_bad_input(clips, tmp_path):
    from data_scripts.streaming import make_stream

    kws, negs, d = clips
    with pytest.raises(UserError, match="no keyword clips"):
        make_stream([], negs, [], 1.0, 0, tmp_path / "x.wav", tmp_path / "x.json")
    with pytest.raises(UserError, match="stream_minutes"):
        make_stream(kws, negs, [], 0, 0, tmp_path / "x.wav", tmp_path / "x.json")
    bad = d / "corrupt.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(UserError, match="corrupt.wav"):
        make_stream([bad], negs, [], 0.2, 0, tmp_path / "x.wav", tmp_path / "x.json")
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "x.json").exists()
