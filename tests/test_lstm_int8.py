"""Int8 streaming LSTM (issue 12): TFLite's own UNIDIRECTIONAL_SEQUENCE_LSTM, state in variable tensors.
The numpy reference (tflm_port/lstm.py) is bit-exact with TFLite Micro over many streams and sequence
lengths, keeps one state per stream between calls, and refuses a stateful model without state tensors."""
import numpy as np
import pytest

from bench.testmodels import random_lstm
from basics.errors import UserError

tflm = pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

BINS, UNITS = 8, 16


@pytest.fixture(scope="module")
def keras_model():
    return random_lstm(UNITS, BINS, 10, seed=0, jitter=0.3, rng=np.random.default_rng(5))


@pytest.fixture(scope="module")
def int8_model(keras_model):
    from training.export_lstm import convert_lstm

    rng = np.random.default_rng(0)
    return convert_lstm(keras_model, rng.normal(size=(24, 12, BINS)).astype(np.float32))


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    """x [N, T, 1, B] int8: N streams (reset before each), T invocations each -> [N, T, classes]."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model)
    out = []
    for s in range(len(x)):
        it.reset()
        row = []
        for t in range(x.shape[1]):
            it.set_input(x[s, t][None], 0)
            it.invoke()
            row.append(it.get_output(0)[0].copy())
        out.append(row)
    return np.array(out)


def run_ref(ref, x: np.ndarray) -> np.ndarray:
    ref.reset_state()
    return np.stack([ref.run(x[:, t]) for t in range(x.shape[1])], axis=1)


def test_table_is_tflite_micros():
    from tflm_port.lstm import LUT, probe_tflm_table

    assert LUT[0] == 32768 and LUT[-1] == 65535 and np.all(np.diff(LUT) >= 0)
    assert np.array_equal(probe_tflm_table(), LUT)


def test_graph_is_tflites_int8_lstm_with_variable_state(int8_model):
    from tflm_port.tflite_io import TENSOR_TYPE_NAMES, load_model, op_name

    m = load_model(int8_model)
    sg = m.subgraphs[0]
    lstms = [op for op in sg.operators if op_name(m, op) == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) == 2 and len(sg.inputs) == 1 and len(sg.outputs) == 1  # no state in the signature
    for op in lstms:
        h, c = sg.tensors[op.inputs[18]], sg.tensors[op.inputs[19]]
        assert h.isVariable and c.isVariable
        assert TENSOR_TYPE_NAMES[h.type] == "INT8" and TENSOR_TYPE_NAMES[c.type] == "INT16"
        assert TENSOR_TYPE_NAMES[sg.tensors[op.inputs[2]].type] == "INT8"
        assert np.log2(c.quantization.scale[0]) == round(np.log2(c.quantization.scale[0]))


@pytest.mark.parametrize("streams,steps,seed", [(40, 1, 1), (12, 25, 2), (3, 120, 3)])
def test_bit_exact_with_tflite_micro(int8_model, streams, steps, seed):
    """Random int8 frames (full range) and many streams x sequence lengths: every byte equal."""
    from tflm_port.reference import Reference

    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(streams, steps, 1, BINS)).astype(np.int8)
    y = run_ref(Reference.from_bytes(int8_model), x)
    assert y.shape == (streams, steps, 3)
    assert np.array_equal(run_tflm(int8_model, x), y)


def test_bit_exact_on_feature_like_frames_and_close_to_float(keras_model, int8_model):
    """Frames from the calibration distribution: bit-exact, and the dequantized logits follow the
    float streaming model hop by hop."""
    from training.lstm import run_streaming
    from tflm_port.reference import Reference

    ref = Reference.from_bytes(int8_model)
    rng = np.random.default_rng(7)
    xf = rng.normal(size=(6, 30, BINS)).astype(np.float32)
    xq = ref.quantize_input(xf.reshape(-1, 1, BINS)).reshape(6, 30, 1, BINS)
    y = run_ref(ref, xq)
    assert np.array_equal(run_tflm(int8_model, xq), y)
    yf = run_streaming(keras_model, xf)
    err = np.abs(ref.dequantize_output(y) - yf)
    assert err.max() < 0.15 * np.abs(yf).max() and err.mean() < 0.03 * np.abs(yf).max()


def test_state_is_per_stream_and_reset(int8_model):
    from tflm_port.reference import Reference

    ref = Reference.from_bytes(int8_model)
    x = np.random.default_rng(4).integers(-128, 128, size=(5, 9, 1, BINS)).astype(np.int8)
    a = run_ref(ref, x)
    b = run_ref(ref, x)                              # reset_state() inside: same again
    assert np.array_equal(a, b)
    ref.reset_state()
    one = np.stack([ref.run(x[2:3, t]) for t in range(9)], axis=1)  # a single stream alone
    assert np.array_equal(one[0], a[2])
    assert not np.array_equal(a[:, 0], a[:, -1])     # the state changes the answer
    with pytest.raises(UserError, match="state holds 1 streams"):
        ref.run(x[:2, 0])


def _without_state(model: bytes, how: str) -> bytes:
    from tflm_port.tflite_io import load_model, op_name, save_model

    m = load_model(model)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if op_name(m, o) == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    if how == "missing":
        op.inputs[19] = -1
    else:
        sg.tensors[op.inputs[18]].isVariable = False
    return save_model(m)


@pytest.mark.parametrize("how", ["missing", "not_variable"])
def test_stateful_model_without_state_tensors_is_one_line(int8_model, how):
    from tflm_port.lstm import check_stateful
    from tflm_port.reference import Reference

    bad = _without_state(int8_model, how)
    for f in (lambda: Reference.from_bytes(bad, "bad.tflite"), lambda: check_stateful(bad, "bad.tflite")):
        with pytest.raises(UserError) as e:
            f()
        msg = str(e.value)
        assert "\n" not in msg and "bad.tflite" in msg and "without its state tensors" in msg


def test_float_export_streams_in_tflite_micro(keras_model):
    from training.lstm import run_streaming
    from tflm_port.lstm import check_stateful
    from training.export_lstm import convert_lstm

    data = convert_lstm(keras_model, int8=False)
    assert check_stateful(data) == 2
    x = np.random.default_rng(8).normal(size=(2, 15, BINS)).astype(np.float32)
    y = run_tflm(data, x[:, :, None, :])
    np.testing.assert_allclose(y, run_streaming(keras_model, x), atol=1e-4)


def test_tflite_scorer_streams_the_stateful_model(int8_model):
    """training.evaluate.tflite_scorer of the int8 LSTM: consecutive windows = one stream, one frame per run
    with the state carried; equals running the reference hop by hop from the stream's start."""
    from training.evaluate import tflite_scorer
    from training.features import stack_context
    from tflm_port.reference import Reference

    frames = np.random.default_rng(11).normal(size=(40, BINS)).astype(np.float32)
    wins = stack_context(frames, 10, 1)                     # 31 windows of 10 frames
    f = tflite_scorer(int8_model)
    got = np.concatenate([f(wins[:12]), f(wins[12:])])
    ref = Reference.from_bytes(int8_model)
    q = ref.quantize_input(frames.reshape(-1, 1, BINS))
    y = np.concatenate([ref.run(q[t:t + 1]) for t in range(40)])[9:]
    np.testing.assert_allclose(got, ref._to_posteriors(y), atol=1e-12)
