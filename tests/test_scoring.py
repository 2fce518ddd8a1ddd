"""One loader for deployable models, block-wise streaming scores, --scores-out, DET from clips + stream."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bench.testmodels import cached_mlp
from tflm_port.tflite_io import METADATA_NAME, load_model, save_model, set_metadata
from training import scoring
from basics.errors import UserError
from training.features import stack_context

CTX, STRIDE, BINS = 4, 2, 64


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny int8 MLP (4 frames x 64 bins -> 3 classes) with the project's metadata."""
    d = tmp_path_factory.mktemp("model")
    m = load_model(cached_mlp(CTX * BINS, [16], 3, [8, 8], seed=3))
    rng = np.random.default_rng(0)
    set_metadata(m, METADATA_NAME, {"labels": ["_silence_", "_unknown_", "alexa"],
                                    "features": {"sample_rate": 16000, "window_ms": 25.0, "hop_ms": 10.0,
                                                 "num_mel_bins": BINS, "context_frames": CTX, "context_stride": STRIDE,
                                                 "normalization": {"mean": (rng.normal(size=BINS) - 8).tolist(),
                                                                   "std": (1 + rng.random(BINS)).tolist()}}})
    p = d / "tiny.tflite"
    p.write_bytes(save_model(m))
    return p


def _audio(seconds, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.05, int(seconds * 16000)).astype(np.float32)
    x[8000:24000] += 0.3 * np.sin(np.arange(16000) * 0.07).astype(np.float32)
    return x


def test_block_scores_equal_whole_audio(model_path, monkeypatch, tmp_path):
    det = scoring.load_detector(model_path)
    x = _audio(7.3)
    # whole audio at once: features, windows, reference
    f = det.normalizer(scoring.lfbe(x, det.lfbe))
    want = det.scorer(stack_context(f, CTX, STRIDE))[:, det.keyword_index]
    monkeypatch.setattr(scoring, "BLOCK_FRAMES", 97)  # blocks that split frames and windows
    got = scoring.score_audio(det, x)
    assert len(got.posterior) == len(want) and np.array_equal(got.posterior, want)
    sf.write(tmp_path / "x.wav", x, 16000, subtype="FLOAT")
    from_file = scoring.stream_file(det, tmp_path / "x.wav")
    assert np.array_equal(from_file.posterior, want)
    # times: end of the audio each decision has seen, 10 ms apart
    assert np.allclose(np.diff(got.times), 0.01) and got.times[0] == pytest.approx((3 * STRIDE * 160 + 400) / 16000)
    assert np.array_equal(got.smoothed, scoring.smooth(want, det.smoothing_frames))


def test_manifest_beside_model_sets_detection(model_path, tmp_path):
    mpath = tmp_path / "m.tflite"
    mpath.write_bytes(model_path.read_bytes())
    (tmp_path / "m.json").write_text(json.dumps({"model": "m.tflite", "smoothing_frames": 3, "refractory_s": 2.5}))
    for p in (mpath, tmp_path / "m.json"):
        d = scoring.load_detector(p)
        assert (d.smoothing_frames, d.refractory_s, d.kind) == (3, 2.5, "tflite")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupt model manifest"):
        scoring.load_detector(tmp_path / "bad.json")
    (tmp_path / "orphan.json").write_text(json.dumps({"model": "missing.tflite"}))
    with pytest.raises(UserError, match="not beside it"):
        scoring.load_detector(tmp_path / "orphan.json")


def test_det_points_counts_misses_and_false_accepts():
    times = np.arange(0, 3600, 0.01)
    sm = np.zeros_like(times)
    sm[[1000, 1001, 50000, 200000]] = [0.9, 0.95, 0.6, 0.8]  # 3 separated peaks (two hops 10 ms apart = one)
    neg = scoring.StreamScores(times, sm, sm, 3600.0)
    pts = scoring.det_points(np.array([0.99, 0.7, 0.5]), neg, refractory_s=1.0)
    by = {p["threshold"]: p for p in pts}
    assert by[0.95]["false_accepts"] == 1 and by[0.95]["missed"] == 2
    assert by[0.7]["false_accepts"] == 2 and by[0.7]["missed"] == 1
    assert by[0.5]["false_accepts"] == 3 and by[0.5]["missed"] == 0
    # just above the highest negative peak: no false accept, only the 0.99 clip detected
    above = by[float(np.nextafter(0.95, 1.0))]
    assert above["false_accepts"] == 0 and above["missed"] == 2
    assert scoring.frr_at(pts, 1.0)[0] == pytest.approx(2 / 3)
    # one false accept in the hour is allowed at 1 FA/h: the threshold stays above the 0.8 peak
    f, th = scoring.frr_at(pts, 1.0)
    assert th > 0.8 and scoring.frr_at(pts, 2.0)[0] == pytest.approx(1 / 3)


def test_evaluate_cli_scores_out(model_path, tmp_path):
    x = _audio(5.0, seed=1)
    sf.write(tmp_path / "long.flac", x, 16000)
    out = tmp_path / "s.npz"
    r = subprocess.run([sys.executable, "-m", "training.evaluate", str(model_path), "--stream",
                        str(tmp_path / "long.flac"), "--scores-out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    z = np.load(out)
    assert set(z.files) >= {"scores", "times"} and len(z["scores"]) == len(z["times"]) > 400
    assert np.all(np.diff(z["times"]) > 0) and z["times"][-1] <= 5.0 + 1e-9
    det = scoring.load_detector(model_path)
    back, _ = sf.read(tmp_path / "long.flac", dtype="float32")  # 16-bit FLAC: what the CLI read
    assert np.allclose(z["scores"], scoring.score_audio(det, back).smoothed, atol=1e-6)
    r = subprocess.run([sys.executable, "-m", "training.evaluate", str(model_path), "--scores-out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--scores-out needs --stream" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_cli_empty_positive_folder(model_path, tmp_path):
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "training.evaluate", str(model_path), "--positives",
                        str(tmp_path / "empty")], capture_output=True, text=True)
    assert r.returncode == 2 and "no audio files" in r.stderr and "Traceback" not in r.stderr


def test_microwakeword_peer_scores_audio():
    pytest.importorskip("pymicro_wakeword")
    from training.peers import MicroWakeWordPeer

    peer = MicroWakeWordPeer()
    s = peer.score(_audio(3.0))
    # one inference per 3 hops (30 ms), probabilities in [0, 1]
    assert len(s.times) == pytest.approx(300 / 3, abs=3) and np.all((s.posterior >= 0) & (s.posterior <= 1))
    assert np.allclose(np.diff(s.times), 0.03)


def test_evaluate_cli_compare_microwakeword(model_path, tmp_path):
    pytest.importorskip("pymicro_wakeword")
    for d in ("pos", "neg"):
        (tmp_path / d).mkdir()
    for i in range(2):
        sf.write(tmp_path / "pos" / f"p{i}.wav", _audio(1.5, seed=i), 16000)
    sf.write(tmp_path / "neg" / "n.wav", _audio(20.0, seed=9), 16000)
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "training.evaluate", str(model_path), "--positives", str(tmp_path / "pos"),
                        "--negatives", str(tmp_path / "neg"), "--compare", "microwakeword", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert set(res["models"]) == {"tiny", "microWakeWord alexa"} and set(res["det"]) == set(res["models"])
    for m in res["models"].values():
        assert 0.0 <= m["frr_at_1fah"] <= 1.0 and m["negative_hours"] == pytest.approx(20 / 3600, rel=1e-3)
    assert out.with_suffix(".png").is_file()
