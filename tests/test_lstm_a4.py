"""SUB8_LSTM_A4 (issue 12, docs/formats.md section 13): the w4a4 LSTM operator.

* the activation thresholds ARE the fake-quantized sigmoid / tanh (dense sweep, no TensorFlow);
* a w4a4 QAT LSTM exports to it (packed 4-bit kernels, variable state tensors) and its integer reference
  follows the Keras fake-quant model hop by hop (tolerance: see the test), scored by ``tflite_scorer``;
* the C runtime runs it byte-exact with the reference on the host (ASan/UBSan) and the emulated boards (the
  Cortex-M DSP kernel on M4/M7 where it applies, the reference kernel elsewhere),
  the state kept between invocations; a state-size mismatch and a missing state are status codes; bad bit
  widths and a model without its state tensors are one line in Python.
The firmware models are written from random integers (no TensorFlow) and cached in firmware/build/testdata."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from basics.errors import UserError
from tflm_port import board_table, lstm_a4
from tflm_port.reference import Reference
from tflm_port.tflite_io import load_model, op_name, tensor_data

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "firmware" / "build" / "testdata" / "lstm_a4"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fw_build import write_stream_case  # noqa: E402
HOPS = 120


# --------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("bits, signed", [(4, False), (2, False), (4, True), (3, True)])
def test_thresholds_are_the_fake_quantized_activation(bits, signed):
    """#{T <= z} == round-half-up(f(z) / step) for every z of a dense sweep (f = sigmoid / tanh, the QAT grid)."""
    n = lstm_a4.levels(bits, signed)
    step = 1.0 / n
    thr = lstm_a4.thresholds(step, n, signed, lstm_a4.Z_SCALE)
    z = np.arange(-12 * 2 ** 16, 12 * 2 ** 16, 7, dtype=np.int64)
    got = np.searchsorted(thr, z, side="right") - (n if signed else 0)
    zf = z.astype(np.float64) * lstm_a4.Z_SCALE
    f = np.tanh(zf) if signed else 1.0 / (1.0 + np.exp(-zf))
    want = np.floor(f / step + 0.5)
    bad = got != want
    # only where f(z) / step lies within float rounding of a half-integer (the boundary itself)
    assert np.all(np.abs(f[bad] / step - np.round(f[bad] / step - 0.5) - 0.5) < 1e-9), int(bad.sum())
    assert bad.sum() <= 2 * len(thr)


# --------------------------------------------------------------------------- random models (no TensorFlow)
def random_model(bins: int, units: int, wbits: int = 4, gbits: int = 4, tbits: int = 4, hbits: int = 4,
                 cbits: int = 16, layers: int = 2, seed: int = 0, wext: int = 0, sat: int = 0) -> bytes:
    """wext: every weight at +-(2^(k-1) - 1). sat: the first layer's gate biases (i, f, o +20, cell input -20)
    hold its hidden state at -n_h from the second hop on, and the second layer's input weights are all
    +(2^(k-1) - 1) with a bias that cancels their constant sum, so the second layer's input products are the
    largest of one sign that a kernel accumulates while its gates still follow their recurrent inputs"""
    rng = np.random.default_rng(seed)
    nw, ls = 2 ** (wbits - 1) - 1, []
    n_in = bins

    def draw(shape):
        return rng.choice([-nw, nw], shape) if wext else rng.integers(-nw, nw + 1, shape)

    for k in range(layers):
        w, r = draw((4 * units, n_in)), draw((4 * units, units))
        bias = rng.normal(0, 1.0, 4 * units)
        if sat and k == 0:
            bias = np.repeat([20.0, 20.0, -20.0, 20.0], units)
        elif sat:
            w = np.full((4 * units, n_in), nw)
            bias += 0.9 * math.sqrt(n_in)   # - s_h s_w sum(nw * -n_h) with s_h = 1 / n_h, s_w = 0.9 / nw / sqrt(n_in)
        ls.append(lstm_a4.LayerA4(
            w=w, r=r, bias=bias, s_w=0.9 / nw / math.sqrt(n_in), s_r=1.2 / nw / math.sqrt(units),
            s_gates=(1 / lstm_a4.levels(gbits, False), 1 / lstm_a4.levels(gbits, False), 1 / lstm_a4.levels(tbits, True),
                     1 / lstm_a4.levels(gbits, False)),
            s_tanh=1 / lstm_a4.levels(tbits, True), s_cell=8 / lstm_a4.levels(cbits, True),
            s_h=1 / lstm_a4.levels(hbits, True), weight_bits=wbits, gate_bits=gbits, tanh_bits=tbits,
            hidden_bits=hbits, cell_bits=cbits))
        n_in = units
    nd = 2 ** (wbits - 1) - 1
    return lstm_a4.write_model(ls, (0.03, -3), rng.integers(-nd, nd + 1, (3, units)), 0.2 / nd, rng.normal(0, 1, 3),
                               (0.06, 5), {"labels": ["a", "b", "c"]}, "random")


def make_case(bins: int, units: int, **kw):
    """lstm_a4.tflite, in.bin (one stream of HOPS frames), expected.bin from the reference (cached)."""
    tag = f"{units}x{bins}" + "".join(f"_{k}{v}" for k, v in sorted(kw.items()))
    model, xin, exp = DATA / f"lstm_a4_{tag}.tflite", DATA / f"in_{tag}.bin", DATA / f"expected_{tag}.bin"
    data = random_model(bins, units, **kw)
    if not (model.is_file() and model.read_bytes() == data and xin.is_file() and exp.is_file()):
        x = np.random.default_rng(4).integers(-128, 128, size=(HOPS, 1, 1, bins)).astype(np.int8)
        write_stream_case(data, x, model, xin, exp)
    return model, xin, exp


def test_reference_state_is_carried_and_reset():
    data = random_model(6, 5, seed=1)
    ref = Reference.from_bytes(data)
    x = np.random.default_rng(0).integers(-128, 128, size=(30, 1, 1, 6)).astype(np.int8)
    a = np.concatenate([ref.run(x[t]) for t in range(30)])
    ref.reset_state()
    b = np.concatenate([ref.run(x[t]) for t in range(30)])
    assert np.array_equal(a, b)                                    # reset = a new stream
    ref.reset_state()
    c = ref.run(np.concatenate([x[0]] * 3))                        # three streams side by side
    assert np.array_equal(c, np.repeat(a[:1], 3, axis=0))
    assert len({tuple(r) for r in a}) > 3                          # the state moves the output
    ops = [op for op in ref.ops if isinstance(op, lstm_a4.LstmA4)]
    assert len(ops) == 2 and all(np.abs(op.h).max() <= 7 for op in ops)


def _edit(data: bytes, fn) -> bytes:
    from tflm_port.tflite_io import load_model, op_name, save_model

    m = load_model(data)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if op_name(m, o) == lstm_a4.LSTM_A4_CODE)
    fn(m, sg, op)
    return save_model(m)


def _set_option(key, value):
    def fn(m, sg, op):
        from flatbuffers import flexbuffers

        from tflm_port.tflite_io import custom_options

        o = custom_options(op)
        o[key] = value
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(o)), np.uint8).copy()
    return fn


def _drop_state(m, sg, op):
    op.inputs = op.inputs[:5]


def _state_not_variable(m, sg, op):
    sg.tensors[op.inputs[5]].isVariable = False
    from tflm_port.tflite_io import add_buffer

    sg.tensors[op.inputs[5]].buffer = add_buffer(m, bytes(5))


def _grow_state(m, sg, op):
    sg.tensors[op.inputs[6]].shape = [1, 6]


@pytest.mark.parametrize("edit, text", [
    (_set_option("gate_bits", 9), "gate_bits 9 not supported by SUB8_LSTM_A4 (2..8)"),
    (_set_option("cell_bits", 4), "cell_bits 4 not supported"),
    (_set_option("layout", 2), "weights must be in layout 0"),
    (_set_option("version", 2), "version 2 not supported"),
    (_drop_state, "stateful LSTM exported without its state tensors (inputs 5/6 missing)"),
    (_state_not_variable, "is not a variable tensor"),
    (_grow_state, "state tensors hold 5 / 6 values, the layer has 5 units"),
])
def test_bad_models_are_one_line(edit, text):
    bad = _edit(random_model(6, 5, seed=1), edit)
    with pytest.raises(UserError, match="SUB8_LSTM_A4") as e:
        Reference.from_bytes(bad, "bad.tflite")
    assert text in str(e.value) and "\n" not in str(e.value)
    if edit in (_drop_state, _state_not_variable):
        with pytest.raises(UserError, match="without its state tensors"):
            lstm_a4.check_stateful(bad, "bad.tflite")


def test_writer_refuses_bad_widths():
    with pytest.raises(UserError, match="hidden_bits 9 not supported"):
        random_model(6, 5, hbits=9)
    with pytest.raises(UserError, match="cell_bits 17 not supported"):
        random_model(6, 5, cbits=17)


def test_devbench_detector_scores_the_stream_hop_by_hop(tmp_path):
    """A w4a4 LSTM .tflite through training.scoring (what bench.devbench loads): the frames scorer runs the
    stream one frame per run from a zero state, the window scorer (tflite_scorer) gives the same posteriors."""
    from basics.classes import KEYWORD_CLASS
    from training.scoring import detector_from_tflite
    from tflm_port.tflite_io import load_model, save_model, set_metadata, METADATA_NAME

    m = load_model(random_model(6, 5, seed=2))
    labels = ["x", "y", "z"]
    labels[KEYWORD_CLASS] = "alexa"
    set_metadata(m, METADATA_NAME, {"labels": labels, "mode": "lstm_a4", "features": {
        "num_mel_bins": 6, "context_frames": 7, "context_stride": 1,
        "normalization": {"mean": [0.0] * 6, "std": [1.0] * 6}}})
    path = tmp_path / "w4a4.tflite"
    path.write_bytes(save_model(m))
    det = detector_from_tflite(path)
    f = np.random.default_rng(5).normal(size=(40, 6)).astype(np.float32)
    a = det.frames_scorer(f)
    win = np.lib.stride_tricks.sliding_window_view(f, (7, 6))[:, 0].reshape(-1, 42)
    b = det.scorer(win)[:, det.keyword_index]
    assert a.shape == (34,) and np.array_equal(a, b) and len(np.unique(a)) > 3


# --------------------------------------------------------------------------- from a w4a4 / w4a8 QAT LSTM
_QAT: dict = {}


def _qat_lstm(wbits: int, abits: int):
    """The tiny QAT LSTM of the LSTM QAT tests at w{wbits}a{abits}, one epoch of stage 2 (cached)."""
    if (wbits, abits) not in _QAT:
        from test_lstm_qat import BINS, T, UNITS  # the same tiny model as the LSTM QAT tests

        from bench.testmodels import random_lstm
        from training import lstm_qat, qat
        from training.config import QuantConfig

        m = random_lstm(UNITS, BINS, T, seed=3, jitter=0.3, rng=np.random.default_rng(0))
        frames = np.random.default_rng(1).normal(size=(5, T, BINS)).astype(np.float32)
        q = lstm_qat.make_qat_lstm(m, QuantConfig(weight_bits=wbits, activation_bits=abits, weight_quantizer="sawb"), 2)
        qat.compile_for_stage(q, 1e-3)
        q.fit(frames.reshape(len(frames), -1), np.array([0, 1, 2, 0, 1]), epochs=1, verbose=0)
        lstm_qat.sync_ranges(q)
        _QAT[wbits, abits] = (q, m, BINS, UNITS)
    return _QAT[wbits, abits]


@pytest.fixture(scope="module")
def qat_a4():
    return _qat_lstm(4, 4)


def test_lstm_operator_follows_the_widths_and_the_config():
    """quant.lstm_op auto: w8a8 -> TFLite's int8 LSTM; packed 4-bit weights (w4a8) or 4-bit activations (w4a4)
    -> SUB8_LSTM_A4; int8 / sub8 force one where it takes the model, one line where it cannot."""
    from training.config import Config
    from training.export_lstm_a4 import convert_lstm_a4, lstm_operator

    w4a4, w4a8, w8a8 = (_qat_lstm(w, a)[0] for w, a in ((4, 4), (4, 8), (8, 8)))
    assert [lstm_operator(q)[0] for q in (w4a4, w4a8, w8a8)] == ["sub8", "sub8", "int8"]
    assert lstm_operator(w4a8, "int8") == ("int8", None) and lstm_operator(w8a8, "sub8") == ("sub8", None)
    with pytest.raises(UserError, match="quant.lstm_op int8: layer .* has 4-bit gate_i"):
        lstm_operator(w4a4, "int8")
    with pytest.raises(UserError, match="expected auto, int8 or sub8"):
        lstm_operator(w4a4, "int4")
    # the w4a8 operator: 8-bit grids, 4-bit weights packed two per byte
    m = load_model(convert_lstm_a4(w4a8, {"labels": ["a", "b", "c"]}, "w4a8"))
    opts = [o for o in m.subgraphs[0].operators if op_name(m, o) == lstm_a4.LSTM_A4_CODE]
    _, _, bins, units = _qat_lstm(4, 8)
    assert len(opts) == 2 and tensor_data(m, m.subgraphs[0].tensors[opts[0].inputs[1]]).size == 4 * units * math.ceil(bins / 2)
    base = {"model": {"name": "lstm"}, "features": {"context_stride": 1}}
    with pytest.raises(UserError, match="quant.lstm_op int8 .* 8-bit activations: quant.activation_bits 4"):
        Config.from_dict({**base, "quant": {"weight_bits": 4, "activation_bits": 4, "lstm_op": "int8"}}, "x.yaml")
    with pytest.raises(UserError, match="quant.lstm_op sub8 applies to model lstm only"):
        Config.from_dict({"quant": {"weight_bits": 4, "lstm_op": "sub8"}}, "x.yaml")
    with pytest.raises(UserError, match="quant.lstm_op"):
        Config.from_dict({**base, "quant": {"weight_bits": 4, "lstm_op": "int4"}}, "x.yaml")


@pytest.mark.parametrize("abits", [4, 8])
def test_qat_lstm_exports_and_the_reference_follows_keras(abits):
    """Integer reference vs the Keras fake-quant model (its numpy stepper, lstm_qat.QuantStreamState), w4a4
    and w4a8 (8-bit gates, cell input, tanh(c) and hidden state on the same operator).

    One hop from the same state: the integer operator computes the pre-activations in fixed point (2^-16,
    one rounding per term) where Keras computes them in float32, so a gate whose pre-activation lies within
    ~1e-5 of a grid boundary may land one level apart: a few hidden values in a thousand. Over a stream such a
    difference is carried by the recurrence, so whole streams are compared by their decisions."""
    from training import export_lstm_a4, lstm_qat
    from training.runs import tflite_scorer

    q, float_model, bins, units = _qat_lstm(4, abits)
    nh = lstm_a4.levels(abits, True)   # largest hidden level: 7 at 4 bits, 127 at 8
    assert export_lstm_a4.deployable_a4(q) is None
    if abits < 8:
        assert "8-bit activations" in lstm_qat.deployable_int8(q)
    data = export_lstm_a4.convert_lstm_a4(q, {"labels": ["a", "b", "c"]}, f"w4a{abits}")
    m = load_model(data)
    sg = m.subgraphs[0]
    ops = [o for o in sg.operators if op_name(m, o) == lstm_a4.LSTM_A4_CODE]
    assert len(ops) == 2 and lstm_a4.check_stateful(data) == 2
    assert tensor_data(m, sg.tensors[ops[0].inputs[1]]).size == 4 * units * math.ceil(bins * 4 / 8)   # packed 4-bit
    assert all(sg.tensors[op.inputs[k]].isVariable for op in ops for k in (5, 6))

    ref = Reference.from_bytes(data)
    st = lstm_qat.QuantStreamState(q)
    layers = [op for op in ref.ops if isinstance(op, lstm_a4.LstmA4)]
    s_c = 8.0 / 32767
    xs = np.random.default_rng(2).normal(size=(4, 50, bins)).astype(np.float32)
    differ = total = 0
    for s in range(len(xs)):   # one hop from the Keras state
        st.reset()
        for t in range(xs.shape[1]):
            hk, ck = [h.copy() for h in st.h], [c.copy() for c in st.c]
            st.step(xs[s, t])
            x = ref.quantize_input(xs[s, t][None, None])
            for k, op in enumerate(layers):
                op.h = np.round(hk[k] * nh).astype(np.int64)[None]
                op.c = np.round(ck[k] / s_c).astype(np.int64)[None]
                env = {op.inputs[0]: x}
                op(env, 1)
                differ += int(np.sum(op.h[0] != np.round(st.h[k] * nh)))
                total += units
                x = np.round(st.h[k] * nh).astype(np.int8).reshape(1, 1, -1)
    assert differ <= 0.01 * total, (differ, total)

    score = tflite_scorer(data)                  # the stateful path: one hop per run, state carried
    win = np.lib.stride_tricks.sliding_window_view(xs[0], (7, bins))[:, 0].reshape(-1, 7 * bins)
    pr = score(win)
    st.reset()
    for t in range(6):
        st.step(xs[0, t])
    pk = []
    for t in range(6, xs.shape[1]):
        y = st.step(xs[0, t]).astype(np.float64)
        pk.append(np.exp(y - y.max()) / np.exp(y - y.max()).sum())
    pk = np.array(pk)
    assert pr.shape == pk.shape
    agree = np.mean(pr.argmax(1) == pk.argmax(1))
    assert agree >= 0.8 and np.abs(pr - pk).mean() < 0.05, (agree, np.abs(pr - pk).mean())


def test_stage1_and_pact_models_are_one_line(qat_a4):
    from training import export_lstm_a4, lstm_qat
    from training.config import QuantConfig

    _, float_model, _, _ = qat_a4
    s1 = lstm_qat.make_qat_lstm(float_model, QuantConfig(weight_bits=4, activation_bits=4), 1)
    assert "no quantizer on gate_i" in export_lstm_a4.deployable_a4(s1)
    with pytest.raises(UserError, match="no quantizer on"):
        export_lstm_a4.convert_lstm_a4(s1)


# --------------------------------------------------------------------------- firmware
def _fw():
    from test_firmware import BOARDS, COMPILER, run_board  # noqa: F401
    from tflm_port import board_table

    return BOARDS, COMPILER, run_board, ["host", *board_table.cortex_m(), board_table.aarch64()[0]]


def _missing(board):
    import shutil

    BOARDS, COMPILER, _, _ = _fw()
    target, tool, _ = BOARDS[board]
    return next((t for t in (tool, COMPILER[target]) if shutil.which(t) is None), None)


@pytest.fixture(scope="module")
def built():
    import subprocess

    BOARDS, _, _, boards = _fw()
    targets = sorted({BOARDS[b][0] for b in boards if not _missing(b)})
    r = subprocess.run(["make", "-C", str(ROOT / "firmware"), "-j2", *targets], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return targets


SHAPES = [dict(bins=16, units=32), dict(bins=10, units=7, wbits=3, gbits=2, tbits=3, hbits=3, cbits=12),
          # the DSP kernel's paths: odd word counts (3 and 5 words of eight weights per row) with every weight
          # at +-7, and with the second layer's input products all at -49 (the row-pair path on h and on the
          # second layer's input, its 12-bit field at its largest: random_model's sat); a 5-bit hidden state (|h| up to
          # 15: the widening path); 8-bit gates (generic threshold search)
          dict(bins=24, units=40, wext=1), dict(bins=24, units=40, sat=1), dict(bins=16, units=24, hbits=5), dict(bins=8, units=16, gbits=8),
          # w4a8 (what quant.lstm_op auto exports a w4a8 QAT LSTM as): 8-bit gates, cell input, tanh(c), hidden state
          dict(bins=16, units=24, gbits=8, tbits=8, hbits=8)]


@pytest.mark.parametrize("shape", SHAPES, ids=["16x32_w4a4", "10x7_w3a3", "24x40_w4a4_ext", "24x40_w4a4_sat",
                                               "16x24_w4a5",
                                               "8x16_g8", "16x24_w4a8"])
@pytest.mark.parametrize("board", ["host", *board_table.cortex_m(), "aarch64"])
def test_lstm_a4_byte_exact_on_board(built, board, shape, tmp_path):
    _, _, run_board, boards = _fw()
    if board == "aarch64":
        board = boards[-1]
    if _missing(board):
        pytest.skip(f"{_missing(board)} not installed")
    model, xin, exp = make_case(**shape)
    rc, st, text = run_board(board, model, xin, tmp_path / "out.bin")
    assert rc == 0 and st is not None and st["status"] == 0, text[-2000:]
    assert st["inferences"] == HOPS, text[-2000:]
    got, want = (tmp_path / "out.bin").read_bytes(), exp.read_bytes()
    assert len(got) == len(want) and got == want, f"{sum(a != b for a, b in zip(got, want))} bytes differ"
    from tflm_port import board_table

    if board in board_table.BOARDS and board_table.BOARDS[board].family == "dsp":
        import re

        opt = int(re.search(r"opt_ops=(\d+)", text).group(1))
        # the DSP kernel takes 4-bit weights with in_features and units multiples of 8 (both layers of the w4 shapes)
        assert "kernel=dsp" in text and (opt >= 2 if shape.get("wbits", 4) == 4 else opt <= 1), text[-500:]


@pytest.mark.parametrize("edit, status, text", [(_grow_state, 7, "LSTM state size != units"),
                                                (_drop_state, 2, "SUB8_LSTM_A4 needs 7 inputs"),
                                                (_set_option("gate_bits", 9), 9, "unsupported bit width")])
def test_firmware_bad_models_are_status_codes(built, edit, status, text, tmp_path):
    _, _, run_board, _ = _fw()
    if _missing("host"):
        pytest.skip("gcc not installed")
    model, xin, _ = make_case(**SHAPES[0])
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(_edit(model.read_bytes(), edit))
    rc, st, out = run_board("host", bad, xin, tmp_path / "o.bin")
    assert st is not None and st["status"] == status and text in out, out[-2000:]
    assert "Sanitizer" not in out and "runtime error" not in out
