"""Activation quantizers below 8 bits, SAWB, the per-operand config and the SUB8_FC_A4 operator
(training/act_quantizers.py, training/quant_spec.py, training/quantizers.py, tflm_port/fc_a4.py)."""
from __future__ import annotations

import re as _re
import shutil as _shutil
import subprocess as _subprocess
from pathlib import Path as _Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from flatbuffers import flexbuffers

from training import act_quantizers as aq
from training import qat, quant_spec
from training import quantizers as qz
from training.config import Config, FeatureConfig, ModelConfig, QuantConfig, set_dotted
from basics.errors import UserError
from training.models import build_ffnn
from tflm_port import board_table, fc_a4, packing
from tflm_port import convert as _convert
from tflm_port import export as _export
from training import export_a4
from tflm_port.reference import Reference
from tflm_port.tflite_io import custom_options, get_metadata, load_model, op_name, quant_params, save_model, tensor_data


class _Holder(keras.layers.Layer):
    pass


def _run(q, x, training=False):
    layer = _Holder()
    qvars = q.build(None, "t", layer)
    return q, qvars, q(tf.constant(x, tf.float32), training, qvars)


# ------------------------------------------------------------------------------------ quantizers

@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pact_grid_and_clip(bits):
    x = np.linspace(-2, 9, 4001).astype(np.float32)
    q, qv, y = _run(aq.PACTQuantizer(bits, init_alpha=3.0), x)
    y = y.numpy()
    g = q.grid({k: v.numpy() for k, v in qv.items()})
    L = 2 ** bits - 1
    assert (g.zero_point, g.qmin, g.qmax) == (0, 0, L)
    n = y / g.scale
    assert np.allclose(n, np.round(n), atol=1e-3)
    assert len(np.unique(np.round(n))) == L + 1          # every level used, no more
    assert y.min() == 0.0 and abs(y.max() - 3.0) < 1e-5  # clipped to [0, alpha]
    assert np.allclose(y[x > 3.1], 3.0, atol=1e-5)


def test_pact_alpha_is_trained():
    """d y / d alpha = 1 where x > alpha (PACT), 0 below; alpha is a trainable variable."""
    q = aq.PACTQuantizer(4, init_alpha=2.0)
    layer = _Holder()
    qv = q.build(None, "t", layer)
    assert qv["alpha"].trainable
    x = tf.constant([0.5, 1.0, 2.5, 3.0, 7.0], tf.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(q(x, True, qv))
    g = tape.gradient(y, qv["alpha"])
    assert float(g) == pytest.approx(3.0)


def test_fixed_range_grids():
    x = np.linspace(-3, 3, 20001).astype(np.float32)
    for bits in (4, 8, 16):
        q, _, y = _run(aq.FixedRangeQuantizer(bits, "sym", bound=1.0), x)
        g = q.grid()
        n = 2 ** (bits - 1) - 1
        assert (g.qmin, g.qmax) == (-n, n) and g.scale == pytest.approx(1 / n)
        v = y.numpy() / g.scale
        assert np.allclose(v, np.round(v), atol=1e-2) and v.min() == pytest.approx(-n) and v.max() == pytest.approx(n)
        r = np.random.default_rng(bits).uniform(-2, 2, 999).astype(np.float32)  # no exact ties
        _, _, yr = _run(aq.FixedRangeQuantizer(bits, "sym", bound=1.0), np.concatenate([r, -r]))
        assert np.allclose(yr.numpy()[:999], -yr.numpy()[999:], atol=1e-6)  # symmetric
    q, _, y = _run(aq.FixedRangeQuantizer(4, "unit"), np.linspace(-1, 2, 1001))
    assert y.numpy().min() == 0 and y.numpy().max() == pytest.approx(1.0)
    assert len(np.unique(np.round(y.numpy() * 15))) == 16
    q, _, y = _run(aq.FixedRangeQuantizer(16, "sym", bound=8.0), np.array([-9.0, 0.1, 9.0]))
    assert q.grid().scale == pytest.approx(8 / 32767) and y.numpy()[2] == pytest.approx(8.0)
    for bad in (lambda: aq.FixedRangeQuantizer(1), lambda: aq.FixedRangeQuantizer(17),
                lambda: aq.FixedRangeQuantizer(8, "half"), lambda: aq.PACTQuantizer(9),
                lambda: aq.MinMaxActQuantizer(True)):
        with pytest.raises(UserError):
            bad()


def test_mse_clip():
    """The MSE-optimal 4-bit clip of half-normal activations is well inside their maximum (~2.9 sigma for a
    Gaussian at 4 bits); at 8 bits it moves out; all-zero input gives 1."""
    v = np.abs(np.random.default_rng(0).normal(0, 1, 200000))
    c4, c8 = aq.mse_clip(v, 4), aq.mse_clip(v, 8)
    assert 2.0 < c4 < 3.6 < v.max() and c8 > c4
    assert aq.mse_clip(np.zeros(10), 4) == 1.0


def test_minmax_first_batch_then_ema():
    q = aq.MinMaxActQuantizer(4, decay=0.5)
    layer = _Holder()
    qv = q.build(None, "t", layer)
    q(tf.constant([0.0, 3.0]), True, qv)
    assert float(qv["max_var"].numpy()) == pytest.approx(3.0)
    q(tf.constant([0.0, 5.0]), True, qv)
    assert float(qv["max_var"].numpy()) == pytest.approx(4.0)
    y = q(tf.constant([0.0, 1.0, 9.0]), False, qv).numpy()
    assert y[2] == pytest.approx(4.0) and abs(y[1] / (4 / 15) - round(y[1] / (4 / 15))) < 1e-4
    s = aq.MinMaxActQuantizer(4, signed=True)
    qv = s.build(None, "s", _Holder())
    y = s(tf.constant([-2.0, 1.0]), True, qv).numpy()
    assert s.grid({k: v.numpy() for k, v in qv.items()}).qmin == -7 and y[0] == pytest.approx(-2.0)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_sawb_clip_from_moments(bits):
    w = np.random.default_rng(3).normal(0, 0.1, (256, 64)).astype(np.float32)
    q = qz.SAWBWeightQuantizer(bits)
    c1, c2 = qz.SAWB_COEFFS[bits]
    a = min(c1 * np.sqrt(np.mean(w.astype(np.float64) ** 2)) + c2 * np.mean(np.abs(w)), np.abs(w).max())
    assert float(q.clip(tf.constant(w))) == pytest.approx(a, rel=1e-4)
    qv = q.build(w.shape, "k", _Holder())
    y = q(tf.constant(w), True, qv).numpy()
    step = float(q.step(qv))
    n = qz.levels_per_side(bits)
    assert step == pytest.approx(a / n, rel=1e-4)
    ints = y / step
    assert np.allclose(ints, np.round(ints), atol=1e-3) and np.abs(np.round(ints)).max() == n
    if bits <= 4:  # MSE-optimal clip is well inside the range of a Gaussian
        assert a < 0.8 * np.abs(w).max()
        mse_sawb = np.mean((y - w) ** 2)
        lin = qz.LinearWeightQuantizer(bits)
        yl = lin(tf.constant(w), True, lin.build(w.shape, "l", _Holder())).numpy()
        assert mse_sawb < np.mean((yl - w) ** 2)
    wt = tf.Variable(w)
    with tf.GradientTape() as tape:
        z = tf.reduce_sum(q(wt, True, qv))
    grad = tape.gradient(z, wt).numpy()
    assert np.all(grad[np.abs(w) > a * 1.001] == 0) and np.all(grad[np.abs(w) < a * 0.999] == 1)


# ------------------------------------------------------------------------------------ config

def test_presets_and_overrides():
    s = quant_spec.resolve(QuantConfig(weight_bits=4, activation_bits=4))
    # the default weight quantizer is `auto`: resolved per layer's bits (tanh at 4, SAWB at 2-3)
    assert str(s["weight"]) == "auto:4" and str(s["activation"]) == "pact:4" and str(s["gate"]) == "fixed:4"
    assert type(qz.get_weight_quantizer(s["weight"].kind, 4)).__name__ == "TanhWeightQuantizer"
    assert str(s["cell"]) == "fixed:16" and str(s["input"]) == "minmax:8" and str(s["output"]) == "minmax:8"
    s = quant_spec.resolve(QuantConfig(weight_bits=4, activation_bits=4, preset="naive"))
    assert str(s["weight"]) == "linear:4" and str(s["activation"]) == "minmax:4" and str(s["gate"]) == "minmax:4"
    s = quant_spec.resolve(QuantConfig(weight_bits=8))  # the project's default: 8-bit activations as before
    assert str(s["activation"]) == "minmax:8"
    assert aq.quantizer_for(s["activation"], "activation").__class__ is qz.ActivationQuantizer8
    cfg = Config.from_dict({"quant": {"weight_bits": 4, "activation_bits": 4,
                                      "operands": {"weight": "sawb:4", "activation": "pact:3"}}})
    s = quant_spec.resolve(cfg.quant)
    assert str(s["weight"]) == "sawb:4" and str(s["activation"]) == "pact:3"
    set_dotted(cfg, "quant.operands", "activation=minmax:4,gate=fixed:8")
    assert cfg.quant.operands == {"activation": "minmax:4", "gate": "fixed:8"}


@pytest.mark.parametrize("quant, model, msg", [
    ({"weight_bits": 4, "operands": {"weight": "pact:4"}}, "ffnn", "cannot quantize the weight"),
    ({"weight_bits": 4, "operands": {"activation": "pact:1"}}, "ffnn", "1 bits not supported"),
    ({"weight_bits": 4, "operands": {"input": "minmax:4"}}, "ffnn", "not supported for minmax on the input"),
    ({"weight_bits": 4, "operands": {"cell": "fixed:4"}}, "ffnn", "on the cell"),
    ({"weight_bits": 4, "operands": {"weight": "sawb:4:channel"}}, "ffnn", "per-channel"),
    ({"weight_bits": 4, "operands": {"state": "fixed:8"}}, "ffnn", "unknown operand"),
    ({"weight_bits": 4, "operands": {"activation": "pact"}}, "ffnn", "expected kind:bits"),
    ({"weight_bits": 4, "activation_bits": 4}, "dscnn", "need model.name ffnn"),
    ({"activation_bits": 4}, "ffnn", "needs quant.weight_bits"),
    ({"weight_bits": 4, "activation_bits": 1}, "ffnn", "outside 2..8"),
    ({"weight_bits": 4, "preset": "clever"}, "ffnn", "quant.preset must be one of"),
])
def test_bad_combinations_one_line(quant, model, msg):
    with pytest.raises(UserError) as e:
        Config.from_dict({"quant": quant, "model": {"name": model}}, "cfg.yaml")
    assert msg in str(e.value) and "\n" not in str(e.value) and "cfg.yaml" in str(e.value)


# ------------------------------------------------------------------------------------ QAT -> SUB8_FC_A4

@pytest.fixture(scope="module")
def a4_model():
    tf.keras.utils.set_random_seed(5)
    m = build_ffnn(ModelConfig(hidden_layers=3, hidden_units=32, dropout=0.1),
                   FeatureConfig(context_frames=4, num_mel_bins=8), 3)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 32)).astype(np.float32)
    y = rng.integers(0, 3, 256)
    q = QuantConfig(weight_bits=4, activation_bits=4, weight_quantizer="sawb")
    s1 = qat.make_qat_model(m, q, 1)
    qat.compile_for_stage(s1, 1e-2)
    s1.fit(x, y, epochs=1, verbose=0, callbacks=[qat.SyncWeightRanges()])
    s2 = qat.make_qat_model(m, q, 2)
    qat.transfer_weights(s1, s2)
    clips = qat.calibrate_pact(s1, s2, x)
    assert len(clips) == 3 and all(0 < c < 6.0 for c in clips)
    qat.compile_for_stage(s2, 1e-2)
    s2.fit(x, y, epochs=2, verbose=0, callbacks=[qat.SyncWeightRanges()])
    return s2, x, export_a4.convert_a4(s2, x, metadata={"labels": ["a", "b", "c"]})


def test_a4_round_trip(a4_model):
    s2, x, tfl = a4_model
    assert export_a4.activation_bits(s2) == [4, 4, 4, 8]
    model = load_model(tfl)
    sg = model.subgraphs[0]
    ops = [op for op in sg.operators if op_name(model, op) in ("SUB8_FC_A4", "FULLY_CONNECTED")]
    assert [op_name(model, op) for op in ops] == ["SUB8_FC_A4"] * 4
    opts = [custom_options(op) for op in ops]
    assert [(o["input_bits"], o["output_bits"], o["activation"]) for o in opts] == \
        [(8, 4, "RELU"), (4, 4, "RELU"), (4, 4, "RELU"), (4, 8, "NONE")]
    for op, o, (ints, scale) in zip(ops, opts, qat.fake_quant_weights(s2)):
        w_t = sg.tensors[op.inputs[1]]
        w = packing.unpack(tensor_data(model, w_t).reshape(-1), 4, o["out_features"], o["in_features"], 0)
        assert np.array_equal(w, ints.reshape(ints.shape[0], -1).T if ints.shape[0] == o["in_features"] else ints)
        assert float(quant_params(w_t)[0][0]) == pytest.approx(scale, rel=1e-6)
    for op in ops[:3]:   # the 4-bit tensors: unsigned grid, zero point 0, scale alpha / 15
        s, zp, _ = quant_params(sg.tensors[op.outputs[0]])
        assert int(zp[0]) == 0
    md = get_metadata(model)
    assert md["activation_bits"] == [4, 4, 4, 8] and md["mode"] == "a4" and md["labels"] == ["a", "b", "c"]
    # tiny: 32x32 + 3 x 32x32 + 32x3 weights at 4 bits
    assert len(tfl) < 6000
    # re-stored for the Cortex-M DSP plan and back: same integers, same outputs
    r7 = fc_a4.retarget_a4(tfl, 7)
    m7 = load_model(r7)
    assert [custom_options(op)["layout"] for op in m7.subgraphs[0].operators
            if op_name(m7, op) == "SUB8_FC_A4"] == [8, 7, 7, 7]
    xi = np.random.default_rng(2).integers(-128, 128, (300, 32)).astype(np.int8)
    want = Reference.from_bytes(tfl).run(xi)
    assert np.array_equal(Reference.from_bytes(r7).run(xi), want)
    assert np.array_equal(Reference.from_bytes(fc_a4.retarget_a4(r7, 0)).run(xi), want)
    from tflm_port.convert import retarget   # deploy / flash: each family's A4 plan (layout_table.a4_layout)
    for target, lays in (("mps2-an386", [8, 7, 7, 7]), ("mps3-an547", [6, 6, 6, 6]), ("aarch64-cortex-a53", [3, 6, 6, 6]),
                         ("aarch64-cortex-a76", [6, 6, 6, 6]), ("generic", [0, 0, 0, 0])):
        rt = retarget(tfl, target)
        mt = load_model(rt)
        assert [custom_options(op)["layout"] for op in mt.subgraphs[0].operators] == lays
        assert np.array_equal(Reference.from_bytes(rt).run(xi), want)
    with pytest.raises(UserError, match="kernel family 'sse' unknown"):
        fc_a4.retarget_a4(tfl, family="sse")


def test_a4_reference_agrees_with_fake_quant(a4_model):
    """Each layer, fed the Keras model's own quantized input, gives the Keras fake-quant output to 1 LSB
    (bias and multiplier rounding), on the same 4-bit grid; the hidden outputs stay in 0..15."""
    s2, x, tfl = a4_model
    ref = Reference.from_bytes(tfl)
    wr = qat._weight_wrappers(s2)  # noqa: SLF001
    outs = keras.Model(s2.inputs, [w.output for w in wr])(x, training=False)
    h = ref.quantize_input(x).astype(np.float32)
    assert len(ref.fc_chain) == 4
    for j, (fc, ko) in enumerate(zip(ref.fc_chain, outs)):
        y = fc.forward(h)
        s, zp, _ = quant_params(ref.tensors[fc.outputs[0]])
        k = ko.numpy() / s[0] + zp[0]
        assert np.allclose(k, np.round(k), atol=2e-3)     # Keras output is on the integer grid
        d = np.abs(y - np.round(k))
        assert d.max() <= 1, j
        # the int32 bias has TFLite's scale s_in * s_w: with a 4-bit input (large s_in) its rounding is up
        # to 0.5 * s_in * s_w / s_out output LSB (~0.25 on the 8-bit logits), hence more 1-LSB flips there
        assert (d > 0).mean() < (0.05 if j < 3 else 0.3), (j, (d > 0).mean())
        if j < 3:
            assert y.min() >= 0 and y.max() <= 15 and y.max() >= 5
        h = np.round(k).astype(np.float32)
    yi = ref.run(ref.quantize_input(x))
    agree = (ref.dequantize_output(yi).argmax(1) == s2(x, training=False).numpy().argmax(1)).mean()
    assert agree > 0.9


def _edit_option(tfl, k, **kw):
    model = load_model(tfl)
    op = model.subgraphs[0].operators[k]
    o = custom_options(op)
    o.update(kw)
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(o)), np.uint8).copy()
    return save_model(model)


def test_a4_bad_models_refused(a4_model):
    _, x, tfl = a4_model
    ops = load_model(tfl).subgraphs[0].operators
    first = [k for k, op in enumerate(ops) if op_name(load_model(tfl), op) == "SUB8_FC_A4"][0]
    last = len(ops) - 1
    for kw, msg in [({"input_bits": 4}, "the model input"), ({"version": 2}, "version 2 not supported"),
                    ({"output_bits": 9}, "output_bits 9 not supported"), ({"input_bits": 1}, "input_bits 1")]:
        with pytest.raises(UserError, match=msg):
            Reference.from_bytes(_edit_option(tfl, first, **kw), "m.tflite")
    with pytest.raises(UserError, match="need activation RELU"):
        Reference.from_bytes(_edit_option(tfl, last, output_bits=4), "m.tflite")


def test_a4_model_runs_in_the_firmware_runtime(a4_model, tmp_path):
    """The exported w4a4 model through the C runtime (kws_runner on the Cortex-M4 board under QEMU), weights
    in layout 0 (reference kernel) and in the DSP plan (layout 8, our w4a8 DSP kernel with the 4-bit clamp, for
    the 8-bit-input first layer; layout 7, the A4 DSP kernel, for the others): every output
    byte equals the Python reference's. Skips without arm-none-eabi-gcc / qemu-system-arm."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from tflm_port.export import make_test_vectors

    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm missing")
    fw = Path(__file__).resolve().parents[1] / "firmware"
    board = board_table.BOARDS["mps2-an386"]
    r = subprocess.run(["make", "-C", str(fw), "-j2", board.make_target], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    s2, x, tfl0 = a4_model
    for layout in (0, 7):
        tfl = tfl0 if layout == 0 else export_a4.convert_a4(s2, x, layout=layout)
        layouts = [custom_options(op)["layout"] for op in load_model(tfl).subgraphs[0].operators
                   if op_name(load_model(tfl), op) == "SUB8_FC_A4"]
        assert layouts == ([0, 0, 0, 0] if layout == 0 else [8, 7, 7, 7])
        ref = Reference.from_bytes(tfl)
        xi, want = make_test_vectors(ref, 40, seed=layout)
        xi = np.concatenate([xi, ref.quantize_input(x[:20])])
        want = np.concatenate([want, ref.run(xi[40:]).reshape(20, -1)])
        for name, data in (("m.tflite", tfl), ("in.bin", xi.tobytes())):
            (tmp_path / name).write_bytes(data)
        args = ["kws_runner", str(tmp_path / "m.tflite"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")]
        r = subprocess.run([*board.qemu, "-nographic", "-semihosting-config",
                            "enable=on,target=native," + ",".join("arg=" + a for a in args),
                            "-kernel", str(fw / "build" / board.runner_image)],
                           capture_output=True, text=True, timeout=300)
        m = re.search(r"KWS status=(\d+) inferences=(\d+)", r.stdout + r.stderr)
        assert r.returncode == 0 and m and m.group(1) == "0" and int(m.group(2)) == 60, (r.stdout + r.stderr)[-1500:]
        got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(want.shape)
        assert np.array_equal(got, want), (layout, np.argwhere(got != want)[:5])


def test_a4_model_runs_on_every_board(a4_model, tmp_path):
    """The exported w4a4 model re-stored for each emulated board (convert.retarget: the family's A4 kernel
    layout, layout_table.a4_layout) through that board's kws_runner under QEMU: the Helium and NEON A4 kernels
    (layout 6) and the DSP one (layout 7) run the 4-bit-input layers, the family's FC kernel the first; every
    output byte equals the Python reference's. Skips without the cross compilers / QEMU."""
    tools = ("arm-none-eabi-gcc", "aarch64-linux-gnu-gcc", "qemu-system-arm", "qemu-system-aarch64")
    if any(_shutil.which(t) is None for t in tools):
        pytest.skip("cross compilers / QEMU missing")
    fw = _Path(__file__).resolve().parents[1] / "firmware"
    targets = sorted({v.make_target for v in board_table.BOARDS.values()})
    r = _subprocess.run(["make", "-C", str(fw), "-j2", *targets], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    s2, x, tfl0 = a4_model
    ref = Reference.from_bytes(tfl0)
    xi, want = _export.make_test_vectors(ref, 30, seed=3)
    xi = np.concatenate([xi, ref.quantize_input(x[:10])])
    want = np.concatenate([want, ref.run(xi[30:]).reshape(10, -1)])
    (tmp_path / "in.bin").write_bytes(xi.tobytes())
    for board, v in board_table.BOARDS.items():
        (tmp_path / "m.tflite").write_bytes(_convert.retarget(tfl0, board))
        args = ["kws_runner", str(tmp_path / "m.tflite"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")]
        r = _subprocess.run([*v.qemu, "-nographic", "-semihosting-config",
                            "enable=on,target=native," + ",".join("arg=" + a for a in args),
                            "-kernel", str(fw / "build" / v.runner_image)], capture_output=True, text=True, timeout=300)
        m = _re.search(r"KWS status=(\d+) inferences=(\d+)", r.stdout + r.stderr)
        assert r.returncode == 0 and m and m.group(1) == "0" and int(m.group(2)) == 40, (board, (r.stdout + r.stderr)[-1500:])
        got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(want.shape)
        assert np.array_equal(got, want), (board, np.argwhere(got != want)[:5])
