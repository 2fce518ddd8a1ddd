"""LSTM QAT (issue 12, training/quant_lstm.py, training/lstm_qat.py): every operand on its quantizer's grid,
whole-sequence == hop-by-hop for the quantized model, the numpy stream stepper follows Keras, the two stages
and the naive preset build and train, the w8a8 model exports to TFLite's int8 LSTM with the QAT weights,
and bad combinations are one line."""
import numpy as np
import pytest

from basics.errors import UserError
from bench.testmodels import random_lstm
from training.config import Config, QuantConfig

BINS, T, UNITS = 6, 7, 8


@pytest.fixture(scope="module")
def float_model():
    return random_lstm(UNITS, BINS, T, seed=3, jitter=0.3, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(1).normal(size=(5, T, BINS)).astype(np.float32)


def _qat(float_model, stage, **kw):
    from training import lstm_qat

    return lstm_qat.make_qat_lstm(float_model, QuantConfig(**kw), stage)


@pytest.fixture(scope="module")
def w4a4(float_model, frames):
    from training import lstm_qat, qat

    m = _qat(float_model, 2, weight_bits=4, activation_bits=4, weight_quantizer="sawb")
    qat.compile_for_stage(m, 1e-3)
    m.fit(frames.reshape(len(frames), -1), np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)   # ranges move
    lstm_qat.sync_ranges(m)
    return m


def test_every_operand_has_its_quantizer_and_grid(w4a4, frames):
    from training import act_quantizers as aq
    from training import lstm_qat
    from training import quantizers as qz

    q0 = lstm_qat.qlstm_layers(w4a4)[0]
    qs = q0.quantizers
    assert isinstance(qs["kernel"], qz.SAWBWeightQuantizer) and qs["kernel"].bits == 4
    assert isinstance(qs["recurrent_kernel"], qz.SAWBWeightQuantizer) and qs["recurrent_kernel"].bits == 4
    for g in ("gate_i", "gate_f", "gate_o"):
        assert qs[g] == aq.FixedRangeQuantizer(4, "unit")
    assert qs["gate_c"] == qs["cell_tanh"] == qs["hidden"] == aq.FixedRangeQuantizer(4, "sym", 1.0)
    assert qs["cell"] == aq.FixedRangeQuantizer(16, "sym", 8.0)
    wq, rq = (np.asarray(w, np.float64) for w in q0.quantized_weights(False))
    for w in (wq, rq):   # one scale per tensor, 4-bit symmetric integers, and the grid is used
        step = np.abs(w).max() / 7
        ints = w / step
        assert np.abs(ints - np.round(ints)).max() < 1e-4 and len(np.unique(np.round(ints))) > 8
    out, h, c = q0.run(frames, None, training=False)
    h, c = np.asarray(h, np.float64), np.asarray(c, np.float64)
    assert np.abs(h * 7 - np.round(h * 7)).max() < 1e-4 and np.abs(h).max() <= 1.0   # hidden: 4-bit on [-1, 1]
    cs = 8.0 / 32767
    assert np.abs(c / cs - np.round(c / cs)).max() < 1e-2                           # cell: 16-bit on [-8, 8]


def test_whole_sequence_equals_hop_by_hop_and_numpy_stepper(w4a4, frames):
    from training import lstm_qat
    from training.evaluate import softmax
    from training.features import stack_context
    from training.lstm import stream_scorer

    seq = lstm_qat.sequence_logits(w4a4, frames)
    hop = lstm_qat.run_streaming(w4a4, frames)
    np.testing.assert_allclose(hop, seq, atol=1e-6)
    win = np.asarray(w4a4(frames.reshape(len(frames), -1), training=False))   # the training view: last hop
    np.testing.assert_allclose(hop[:, -1], win, atol=1e-6)
    assert np.abs(hop[:, 0] - hop[:, -1]).max() > 1e-2
    # the numpy stepper (stream_scorer of a QAT LSTM) gives Keras' hop-by-hop posteriors
    long = np.random.default_rng(2).normal(size=(1, 20, BINS)).astype(np.float32)
    want = softmax(lstm_qat.run_streaming(w4a4, long)[0, T - 1:].astype(np.float64))
    got = stream_scorer(w4a4, lstm_qat.QuantStreamState(w4a4))(stack_context(long[0], T, 1))
    np.testing.assert_allclose(got, want, atol=2e-2)
    assert np.mean(np.abs(got - want) < 1e-5) > 0.9   # a rounding tie may flip one step, rarely


def test_two_stages_transfer_and_naive_preset(float_model, frames):
    from training import act_quantizers as aq
    from training import lstm_qat, qat
    from training import quantizers as qz
    from training.quant_lstm import QuantLSTM

    s1 = _qat(float_model, 1, weight_bits=4, activation_bits=4, preset="naive")
    q1 = lstm_qat.qlstm_layers(s1)[0]
    assert set(q1.quantizers) == {"kernel", "recurrent_kernel"}            # stage 1: weights only
    assert isinstance(q1.quantizers["kernel"], qz.LinearWeightQuantizer)    # naive: min/max weights
    np.testing.assert_array_equal(np.asarray(q1.kernel), float_model.get_layer("lstm_0").get_weights()[0])
    s2 = _qat(float_model, 2, weight_bits=4, activation_bits=4, preset="naive")
    qat.transfer_weights(s1, s2)
    q2 = lstm_qat.qlstm_layers(s2)[0]
    assert isinstance(q2.quantizers["gate_i"], aq.MinMaxActQuantizer) and q2.quantizers["cell"].bits == 16
    qat.compile_for_stage(s2, 1e-3)
    s2.fit(frames.reshape(len(frames), -1), np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
    assert float(np.asarray(q2.qvars["gate_i"]["max_var"])) <= 1.0   # the moving max followed the sigmoid
    seq = lstm_qat.sequence_logits(s2, frames)
    np.testing.assert_allclose(lstm_qat.run_streaming(s2, frames), seq, atol=1e-6)
    # the layer serializes (quantize_apply clones it from its config; model.keras stores it)
    again = QuantLSTM.from_config(q2.get_config())
    assert again.specs == q2.specs and again.stage == 2 and again.units == UNITS


def test_w8a8_exports_to_tflites_int8_lstm_with_the_qat_weights(float_model, frames):
    from training import lstm_qat
    from tflm_port.lstm import check_stateful
    from training.export_lstm import convert_qat_lstm
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model, op_name, quant_params, tensor_data

    m = _qat(float_model, 2, weight_bits=8, activation_bits=8)
    for _ in range(3):   # training-mode calls set the input and logits ranges (stage 2 training does this)
        m(frames.reshape(len(frames), -1), training=True)
    calib = np.random.default_rng(3).normal(size=(16, 10, BINS)).astype(np.float32)
    data = convert_qat_lstm(m, calib, {"model": "lstm"})
    assert check_stateful(data) == 2
    tfl = load_model(data)
    assert get_metadata(tfl)["model"] == "lstm"
    ops = [op for op in tfl.subgraphs[0].operators if op_name(tfl, op) == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    for op, q in zip(ops, lstm_qat.qlstm_layers(m)):
        wq, _ = (np.asarray(w, np.float64) for w in q.quantized_weights(False))
        for g in range(4):   # input-to-gate weights: the QAT kernel's gate slice, to half a step of the tensor
            t = tfl.subgraphs[0].tensors[op.inputs[1 + g]]
            s = float(quant_params(t)[0][0])
            deq = tensor_data(tfl, t).astype(np.float64) * s
            assert np.abs(deq - wq[:, g * UNITS:(g + 1) * UNITS].T).max() <= 0.5 * s + 1e-7
    ref = Reference.from_bytes(data)
    ref.reset_state()
    xq = ref.quantize_input(frames.reshape(-1, 1, BINS)).reshape(len(frames), T, 1, BINS)
    ref_out = np.stack([ref.run(xq[:, t]) for t in range(T)], axis=1)
    y = ref.dequantize_output(ref_out)
    want = lstm_qat.run_streaming(m, frames)
    assert np.abs(y - want).max() < 0.1 * np.abs(want).max()
    pytest.importorskip("tflite_micro", reason="tflite-micro not installed (bit-exactness check)")
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(data)
    for s in range(2):
        it.reset()
        for t in range(T):
            it.set_input(xq[s, t][None], 0)
            it.invoke()
            assert np.array_equal(it.get_output(0)[0], ref_out[s, t])


def test_bad_lstm_quantization_is_one_line(float_model, w4a4):
    import tf_keras as keras

    from training.quant_lstm import QuantLSTM
    from training.export_lstm import convert_qat_lstm

    with pytest.raises(UserError, match="TFLite's int8 LSTM has 8-bit activations"):
        convert_qat_lstm(w4a4, np.zeros((1, T, BINS), np.float32))
    with pytest.raises(UserError, match="no quantize config for cell"):
        QuantLSTM(4, {"weight": "sawb:4", "recurrent_weight": "sawb:4", "gate": "fixed:4", "tanh": "fixed:4",
                      "hidden": "fixed:4"})
    with pytest.raises(UserError, match="quant.operands.cell.*bits not supported"):
        QuantLSTM(4, {"weight": "sawb:4", "recurrent_weight": "sawb:4", "gate": "fixed:4", "tanh": "fixed:4",
                      "hidden": "fixed:4", "cell": "fixed:4"})
    inp = keras.Input(shape=(T * BINS,))
    x = keras.layers.Reshape((T, BINS), name="to_sequence")(inp)
    x = keras.layers.LSTM(4, activation="relu", name="lstm_0")(x)
    odd = keras.Model(inp, keras.layers.Dense(3, name="logits")(x))
    with pytest.raises(UserError, match="only the standard LSTM"):
        _qat(odd, 1, weight_bits=4)
    cfg = Config()
    cfg.model.name, cfg.features.context_stride = "lstm", 1
    cfg.quant.weight_bits, cfg.quant.activation_bits = 4, 4
    cfg.validate()                                   # LSTM QAT is a valid config now
    cfg.quant.layer_bits = [4, 4]
    with pytest.raises(UserError, match="layer_bits is not supported with model lstm"):
        cfg.validate()
