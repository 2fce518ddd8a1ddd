"""A saved QAT model.keras loads back (training/qat_reload.py): tfmot's layers do not survive
keras.models.load_model, so a QAT run's model is rebuilt from its config and its weights read by
position. Tiny models: the reloaded model must hold the saved values and give the same outputs exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest

from basics.errors import UserError
from training.config import Config

CASES = {  # name -> (model section, quant section)
    "ffnn-w4a8": ({"name": "ffnn", "hidden_layers": 2, "hidden_units": 8, "dropout": 0.0},
                  {"weight_bits": 4}),
    "ffnn-w3a4-pact": ({"name": "ffnn", "hidden_layers": 2, "hidden_units": 8, "dropout": 0.0},
                       {"weight_bits": 3, "activation_bits": 4, "layer_bits": [8, 4, 3]}),
    "lstm-w4a8": ({"name": "lstm", "lstm_units": 8, "lstm_layers": 2, "dropout": 0.0}, {"weight_bits": 4}),
}


def _run(tmp_path, case: str):
    """A QAT run directory as qat_train leaves it (config.json, labels.json, qat.json, model.keras) and
    its trained-looking model: weights moved off their initial values, ranges set by a training call."""
    import tf_keras as keras

    from training import lstm_qat, qat
    from training.models import build_model
    from training.runs import qat_scope, save_model

    model_sec, quant_sec = CASES[case]
    cfg = Config.from_dict({"features": {"num_mel_bins": 6, "context_frames": 5, "context_stride": 1},
                            "model": model_sec, "quant": quant_sec})
    keras.utils.set_random_seed(7)
    f = build_model(cfg.model, cfg.features, 3)
    make = lstm_qat.make_qat_lstm if model_sec["name"] == "lstm" else qat.make_qat_model
    m = make(f, cfg.quant, stage=2)
    rng = np.random.default_rng(1)
    for v in m.trainable_weights:   # away from anything a fresh build would hold
        v.assign(np.asarray(v.numpy() + rng.normal(0, 0.3, v.shape), v.dtype.as_numpy_dtype))
    x = rng.normal(size=(16, 30)).astype(np.float32)
    m(x, training=True)   # moves the input / activation ranges
    (lstm_qat.sync_ranges if model_sec["name"] == "lstm" else qat.sync_weight_ranges)(m)
    rd = tmp_path / case
    rd.mkdir()
    (rd / "config.json").write_text(json.dumps(cfg.to_dict()))
    (rd / "labels.json").write_text(json.dumps(["_silence_", "_unknown_", "kw"]))
    (rd / "qat.json").write_text(json.dumps({"layer_bits": qat.layer_bits(m)}))
    with qat_scope():
        save_model(m, rd / "model.keras")
    return rd, m, x


@pytest.mark.parametrize("case", sorted(CASES))
def test_qat_model_keras_loads_back(tmp_path, case):
    import tf_keras as keras

    from training.runs import load_trained_model, qat_scope

    rd, m, x = _run(tmp_path, case)
    with qat_scope(), pytest.raises(ValueError, match="expected .* variables"):   # the tfmot bug this works around
        keras.models.load_model(str(rd / "model.keras"), compile=False)
    back = load_trained_model(rd)
    def names(model):   # scopes carry global counters ("quantize_annotate_3/kernel"): layer + last part
        return [(l.name, v.name.split(":")[0].rsplit("/", 1)[-1]) for l in model.layers for v in l.weights]

    assert names(back) == names(m)
    for a, b in zip(m.weights, back.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.name
    assert np.array_equal(np.asarray(back(x, training=False)), np.asarray(m(x, training=False)))


def test_qat_reload_config_mismatch_is_one_line(tmp_path):
    rd, _, _ = _run(tmp_path, "ffnn-w4a8")
    d = json.loads((rd / "config.json").read_text())
    d["model"]["hidden_units"] = 9   # not the model the file was saved from
    (rd / "config.json").write_text(json.dumps(d))
    from training.runs import load_trained_model

    with pytest.raises(UserError, match="cannot load the QAT weights") as e:
        load_trained_model(rd)
    assert "\n" not in str(e.value)
    (rd / "labels.json").unlink()
    with pytest.raises(UserError, match="labels.json: missing"):
        load_trained_model(rd)


def test_reloaded_qat_lstm_exports_the_same_int8_model(tmp_path):
    """export_lstm of a QAT run reads the reloaded model: its int8 LSTM equals the one of the model
    that was saved (same integer outputs in the reference)."""
    from training.export_lstm import convert_qat_lstm
    from tflm_port.reference import Reference
    from training.runs import load_trained_model

    rd, m, x = _run(tmp_path, "lstm-w4a8")
    frames = x.reshape(len(x), 5, 6)
    a, b = (Reference.from_bytes(convert_qat_lstm(k, frames)) for k in (m, load_trained_model(rd)))
    q = np.random.default_rng(3).integers(-128, 128, size=(8, 1, 6), dtype=np.int8)
    assert np.array_equal(a.run(q), b.run(q))
