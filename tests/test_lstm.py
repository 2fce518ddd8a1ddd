"""Streaming LSTM model (issue 12): the whole-sequence model and the hop-by-hop streaming model give the
same logits; `train.py --model lstm` trains and evaluates a tiny run; bad configs fail with one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.config import Config, FeatureConfig, ModelConfig
from basics.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    import tf_keras as keras

    from training.models import build_model

    keras.utils.set_random_seed(3)
    m = build_model(ModelConfig(name="lstm", lstm_units=12, lstm_layers=2, dropout=0.0),
                    FeatureConfig(num_mel_bins=10, context_frames=15, context_stride=1), 3)
    # non-trivial forget/output behaviour: perturb the biases away from keras' defaults
    rng = np.random.default_rng(0)
    for layer in m.layers:
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
    return m


def test_parameter_budget_of_the_default_lstm():
    from training.models import build_model

    m = build_model(ModelConfig(name="lstm"), FeatureConfig(context_stride=1, context_frames=80), 3)
    assert m.count_params() == 4 * 128 * (64 + 128 + 1) + 4 * 128 * (128 + 128 + 1) + 3 * 129
    assert m.count_params() <= 250_000


def test_whole_sequence_equals_hop_by_hop(model):
    from training.lstm import run_streaming, sequence_logits

    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 15, 10)).astype(np.float32)
    seq = sequence_logits(model, x)                  # one call over the whole sequence
    hop = run_streaming(model, x)                    # one frame per call, state carried
    np.testing.assert_allclose(hop, seq, atol=2e-5)
    # the training view (flattened window, last step) is the last hop
    win = np.asarray(model(x.reshape(5, -1), training=False))
    np.testing.assert_allclose(hop[:, -1], win, atol=2e-5)
    # and each prefix window gives the logits of its hop: the state is what carries the past
    for t in (0, 6, 11):
        short = sequence_logits(model, x[:, : t + 1])[:, -1]
        np.testing.assert_allclose(hop[:, t], short, atol=2e-5)
    assert np.abs(hop[:, 0] - hop[:, -1]).max() > 1e-2  # the state changes the output


def test_lstm_config_needs_stride_one():
    cfg = Config()
    cfg.model.name = "lstm"
    with pytest.raises(UserError, match="context_stride=1"):
        cfg.validate()
    cfg.features.context_stride = 1
    cfg.validate()
    cfg.quant.weight_bits = 4          # LSTM QAT: tests/test_lstm_qat.py
    cfg.validate()


def test_train_py_lstm_tiny(tmp_path):
    """`python training/train.py --model lstm` end to end on a tiny synthetic set (1 epoch)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    rd = tmp_path / "run"
    args = ["--model", "lstm", "--epochs", "1", "--run-dir", str(rd), "--data-root", str(tmp_path / "data"),
            "--set", "data.num_voices=4", "--set", "data.clips_per_voice=1", "--set", "data.stream_minutes=0.3",
            "--set", "features.context_stride=1", "--set", "features.context_frames=12",
            "--set", "features.num_mel_bins=16", "--set", "model.lstm_units=8", "--set", "model.lstm_layers=1",
            "--set", "train.batch_size=64", "--no-progress"]
    r = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *args], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((rd / "report.json").read_text())
    assert rep["model"] == "lstm" and rep["params"] == 4 * 8 * (16 + 8 + 1) + 3 * 9
    assert 0.0 <= rep["clip_accuracy"] <= 1.0 and (rd / "model.keras").is_file()
    # the saved model loads and streams
    from training.lstm import run_streaming
    from training.train import load_trained_model

    m = load_trained_model(rd)
    x = np.random.default_rng(2).normal(size=(2, 12, 16)).astype(np.float32)
    np.testing.assert_allclose(run_streaming(m, x)[:, -1], np.asarray(m(x.reshape(2, -1))), atol=2e-5)
    # 8-bit export of the run (calibrated on its training windows) runs in the integer reference
    out = tmp_path / "lstm.tflite"
    r = subprocess.run([sys.executable, "-m", "training.export_lstm", str(rd), "-o", str(out),
                        "--calibration-windows", "20"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0 and "int16 cell state" in r.stdout, r.stderr[-2000:]
    from tflm_port.lstm import check_stateful
    from tflm_port.reference import Reference

    assert check_stateful(out.read_bytes()) == 1
    # the run's metadata rides along (scoring and devbench read labels, features and normalization from it)
    from tflm_port.tflite_io import get_metadata, load_model

    meta = get_metadata(load_model(out.read_bytes(), "exported LSTM"))
    assert meta["labels"] == json.loads((rd / "labels.json").read_text())
    assert meta["features"]["num_mel_bins"] == 16 and meta["features"]["context_frames"] == 12
    assert meta["features"]["normalization"] == json.loads((rd / "normalizer.json").read_text())
    assert meta["mode"] == "int8 post-training" and meta["model"] == "lstm"
    ref = Reference.from_file(out)
    assert ref.input_shape == (1, 16) and ref.run(np.zeros((3, 1, 16), np.int8)).shape == (3, 3)
    # LSTM QAT from this float run (two one-epoch stages): 4-bit weights, 8-bit activations deploy as
    # SUB8_LSTM_A4 (packed 4-bit kernels, quant.lstm_op auto), written and scored by the integer reference;
    # `export_lstm --op int8` writes the same run as TFLite's int8 LSTM (tests/test_lstm_qat.py has the details)
    qd = tmp_path / "w4a8"
    r = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *args[:2], *args[6:],
                        "--run-dir", str(qd), "--weight-bits", "4", "--set", f"quant.float_run={rd}",
                        "--set", "quant.stage1_epochs=1", "--set", "quant.stage2_epochs=1"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((qd / "report.json").read_text())
    assert rep["scored_with"] == "tflm_port.reference" and rep["activation_bits"] == 8
    from tflm_port.lstm_a4 import check_stateful as check_a4

    assert check_a4((qd / "model.tflite").read_bytes()) == 1
    r = subprocess.run([sys.executable, "-m", "training.export_lstm", str(qd), "--op", "int8", "--calibration-windows",
                        "20"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0 and "int16 cell state" in r.stdout, r.stderr[-2000:]
    assert check_stateful((qd / "model-lstm-int8.tflite").read_bytes()) == 1
    # w4a4 from the same float run: SUB8_LSTM_A4 (tflm_port/lstm_a4.py), written and scored by the reference
    qd = tmp_path / "w4a4"
    r = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), *args[:2], *args[6:],
                        "--run-dir", str(qd), "--weight-bits", "4", "--activation-bits", "4", "--set",
                        f"quant.float_run={rd}", "--set", "quant.stage1_epochs=1", "--set", "quant.stage2_epochs=1"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((qd / "report.json").read_text())
    assert rep["scored_with"] == "tflm_port.reference" and rep["activation_bits"] == 4
    assert check_a4((qd / "model.tflite").read_bytes()) == 1
    r = subprocess.run([sys.executable, "-m", "training.export_lstm", str(qd), "--op", "int8"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error")]
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(err) == 1 and "quant.lstm_op int8" in err[0], \
        r.stderr[-2000:]


def test_lstm_export_of_a_non_lstm_run_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "training.export_lstm", str(tmp_path / "nothing")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "no trained model" in r.stderr and "Traceback" not in r.stderr


def test_train_py_lstm_with_stride_three_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), "--model", "lstm", "--run-dir",
                        str(tmp_path / "r"), "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "context_stride=1" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()


def test_stream_scorer_is_the_deployed_stream(model):
    """Consecutive windows are one stream scored hop by hop with the state carried from the stream's start
    (also across calls); a window that does not follow starts a new stream; keras_scorer uses it for LSTMs."""
    from training.evaluate import keras_scorer, softmax
    from training.features import stack_context
    from training.lstm import run_streaming, stream_scorer

    rng = np.random.default_rng(9)
    frames = rng.normal(size=(60, 10)).astype(np.float32)
    wins = stack_context(frames, 15, 1)                       # 46 consecutive windows of 15 frames
    want = softmax(run_streaming(model, frames[None])[0, 14:].astype(np.float64))
    f = stream_scorer(model)
    got = np.concatenate([f(wins[:20]), f(wins[20:])])        # blocks: the state carries over calls
    np.testing.assert_allclose(got, want, atol=1e-5)
    # a separate clip in the same call: its first window starts from a zero state
    oframes = rng.normal(size=(20, 10)).astype(np.float32)
    other = stack_context(oframes, 15, 1)
    g = stream_scorer(model)(np.concatenate([wins[:5], other]))
    np.testing.assert_allclose(g[:5], want[:5], atol=1e-5)
    np.testing.assert_allclose(g[5:], softmax(run_streaming(model, oframes[None])[0, 14:].astype(np.float64)),
                               atol=1e-5)
    np.testing.assert_allclose(keras_scorer(model)(wins), want, atol=1e-5)
