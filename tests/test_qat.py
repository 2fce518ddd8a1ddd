"""BN folding, the QAT stages and the exactness of the TFLite conversion (training/qat.py)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow.lite.python import schema_py_generated as schema

from training import qat
from training.config import FeatureConfig, ModelConfig, QuantConfig
from basics.errors import UserError
from training.models import build_dscnn, build_ffnn

FC = schema.BuiltinOperator.FULLY_CONNECTED
TT = schema.TensorType


def _randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.3, 2, c)])
        elif isinstance(layer, keras.layers.Dense) and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


@pytest.fixture(scope="module")
def ffnn():
    """build_ffnn at toy size: Input(32) -> 2 x [Dense(16) BN ReLU Dropout] -> Dense(3)."""
    m = build_ffnn(ModelConfig(hidden_layers=2, hidden_units=16, dropout=0.1),
                   FeatureConfig(context_frames=4, num_mel_bins=8), 3)
    return _randomize_bn(m)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 32)).astype(np.float32), rng.integers(0, 3, 64)


def _parse(tfl: bytes):
    model = schema.ModelT.InitFromPackedBuf(tfl, 0)
    return model, model.subgraphs[0]


def _tensor_values(model, t) -> np.ndarray:
    raw = np.array(model.buffers[t.buffer].data, dtype=np.uint8)
    n = int(np.prod(t.shape))
    if t.type == TT.INT4:  # packed two per byte, low nibble = even element
        v = np.stack([raw & 15, raw >> 4], axis=1).reshape(-1)[:n].astype(np.int16)
        v = np.where(v > 7, v - 16, v)
    elif t.type == TT.INT8:
        v = raw.view(np.int8)
    elif t.type == TT.INT32:
        v = raw.view(np.int32)
    else:
        raise AssertionError(f"unexpected weight type {t.type}")
    return v.reshape(t.shape)


def _fc_ops(model, graph):
    return [op for op in graph.operators if model.operatorCodes[op.opcodeIndex].builtinCode == FC]


# ------------------------------------------------------------------------------------ folding

def test_fold_ffnn_equivalent(ffnn, data):
    folded = qat.fold_batchnorm(ffnn)
    kinds = [type(l).__name__ for l in folded.layers]
    assert kinds == ["InputLayer", "Dense", "Dense", "Dense"]
    assert [l.activation.__name__ for l in folded.layers[1:]] == ["relu", "relu", "linear"]
    assert all(l.use_bias for l in folded.layers[1:])
    x = np.random.default_rng(2).normal(0, 3, size=(256, 32)).astype(np.float32)
    diff = np.abs(folded(x, training=False).numpy() - ffnn(x, training=False).numpy()).max()
    assert diff < 1e-4


def test_fold_dscnn_equivalent():
    m = _randomize_bn(build_dscnn(ModelConfig(name="dscnn", dscnn_filters=4, dscnn_blocks=1),
                                  FeatureConfig(context_frames=8, num_mel_bins=8), 3), seed=3)
    folded = qat.fold_batchnorm(m)
    kinds = [type(l).__name__ for l in folded.layers]
    assert kinds == ["InputLayer", "Reshape", "Conv2D", "DepthwiseConv2D", "Conv2D",
                     "AveragePooling2D", "Flatten", "Dense"]
    x = np.random.default_rng(4).normal(size=(16, 64)).astype(np.float32)
    assert np.abs(folded(x, training=False).numpy() - m(x, training=False).numpy()).max() < 1e-4


# ------------------------------------------------------------------------------------ errors

def test_unknown_layer_is_user_error():
    x = inp = keras.Input((8,))
    x = keras.layers.Dense(4, name="d")(x)
    x = keras.layers.LayerNormalization(name="my_norm")(x)
    m = keras.Model(inp, keras.layers.Dense(2)(x))
    with pytest.raises(UserError, match="my_norm"):
        qat.make_qat_model(m, QuantConfig(weight_bits=4), 1)


def test_bad_bits_and_layer_bits(ffnn):
    with pytest.raises(UserError, match=r"weight_bits: .*must be 1\.\.8"):
        qat.make_qat_model(ffnn, QuantConfig(weight_bits=9), 1)
    with pytest.raises(UserError, match=r"weight_bits: .*must be 1\.\.8"):
        qat.make_qat_model(ffnn, QuantConfig(weight_bits=0), 1)
    with pytest.raises(UserError, match="layer_bits.*2 entries.*3"):
        qat.make_qat_model(ffnn, QuantConfig(weight_bits=4, layer_bits=[8, 4]), 1)
    with pytest.raises(UserError, match=r"layer_bits\[1\].*must be 1\.\.8"):
        qat.make_qat_model(ffnn, QuantConfig(weight_bits=4, layer_bits=[8, 12, 4]), 1)


# ------------------------------------------------------------------------------------ stages

def test_stages_structure_and_transfer(ffnn, data):
    x, y = data
    qcfg = QuantConfig(weight_bits=4, layer_bits=[8, 4, 3])
    s1 = qat.make_qat_model(ffnn, qcfg, 1)
    assert qat.layer_bits(s1) == [8, 4, 3]
    names1 = [v.name for v in s1.weights]
    assert not any("post_activation" in n or "quantize_input" in n for n in names1)
    # the QAT model starts from the folded float weights: 8-bit linear is within 3% of float
    folded = qat.fold_batchnorm(ffnn)
    s1_8 = qat.make_qat_model(ffnn, QuantConfig(weight_bits=8, weight_quantizer="linear"), 1)
    ref = folded(x).numpy()
    assert np.abs(s1_8(x, training=False).numpy() - ref).max() < 0.03 * np.abs(ref).max()
    qat.compile_for_stage(s1, 1e-2)
    s1.fit(x, y, epochs=2, batch_size=16, verbose=0)

    s2 = qat.make_qat_model(ffnn, qcfg, 2)
    names2 = [v.name for v in s2.weights]
    assert sum("post_activation_max" in n for n in names2) == 3
    assert any("quantize_input" in n for n in names2)
    n = qat.transfer_weights(s1, s2)
    assert n >= 3 * 4  # kernel, bias, kernel_min, kernel_max per layer
    for (i1, s_1), (i2, s_2) in zip(qat.fake_quant_weights(s1), qat.fake_quant_weights(s2)):
        np.testing.assert_array_equal(i1, i2)
        assert s_1 == s_2
    for l1, l2 in zip(qat._weight_wrappers(s1), qat._weight_wrappers(s2)):
        for a, b in zip(l1.layer.get_weights(), l2.layer.get_weights()):
            np.testing.assert_array_equal(a, b)
    qat.compile_for_stage(s2, 1e-3)
    hist = s2.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[qat.SyncWeightRanges()])
    assert np.isfinite(hist.history["loss"][0])
    # weight ranges follow the kernels (the callback syncs the last optimizer step)
    for w in qat._weight_wrappers(s2):
        kernel, quantizer, qvars = w._weight_vars[0]
        y_max = float(np.abs(quantizer.transform(kernel).numpy()).max())
        assert float(qvars["max_var"].numpy()) == pytest.approx(
            y_max / quantizer.n * quantizer.range_steps, rel=1e-5)


# ------------------------------------------------------------------------------------ TFLite

def _check_tflite_weights(qat_model, tfl, bits):
    model, graph = _parse(tfl)
    fcs = _fc_ops(model, graph)
    fq = qat.fake_quant_weights(qat_model)
    assert len(fcs) == len(fq) == len(bits)
    wrappers = qat._weight_wrappers(qat_model)
    for k, op, (ints, scale), wrapper in zip(bits, fcs, fq, wrappers):
        inp_t, w_t = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        assert w_t.type == (TT.INT4 if k <= 4 else TT.INT8), (k, w_t.type)
        assert len(w_t.quantization.scale) == 1 and list(w_t.quantization.zeroPoint) == [0]
        w_scale = float(w_t.quantization.scale[0])
        assert w_scale == pytest.approx(scale, rel=1e-6)
        vals = _tensor_values(model, w_t)
        np.testing.assert_array_equal(vals, ints.T)  # TFLite FC weights are (out, in)
        # dequantized TFLite weights == the Keras fake-quant kernel
        kernel, quantizer, qvars = wrapper._weight_vars[0]
        keras_q = quantizer(kernel, False, qvars).numpy()
        np.testing.assert_allclose(vals.T * w_scale, keras_q, rtol=1e-6, atol=0)
        assert np.abs(vals).max() <= (1 if k == 1 else 2 ** (k - 1) - 1)
        # bias: int32, scale = input scale x weight scale, values = round(b / scale)
        b_t = graph.tensors[op.inputs[2]]
        assert b_t.type == TT.INT32
        b_scale = float(b_t.quantization.scale[0])
        assert b_scale == pytest.approx(float(inp_t.quantization.scale[0]) * w_scale, rel=1e-5)
        bias = wrapper.layer.bias.numpy()
        np.testing.assert_allclose(_tensor_values(model, b_t), np.round(bias / b_scale), atol=1)
    return model, graph


@pytest.mark.parametrize("bits", [8, 5, 4, 3, 2, 1])
def test_stage2_converts_exactly(ffnn, data, bits):
    x, y = data
    q = qat.make_qat_model(ffnn, QuantConfig(weight_bits=bits), 2)
    qat.compile_for_stage(q, 1e-3)
    q.fit(x, y, epochs=1, batch_size=16, verbose=0)  # moves the activation ranges off their init
    tfl = qat.to_tflite(q, x)
    model, graph = _check_tflite_weights(q, tfl, [bits] * 3)
    # fully integer: no float tensor anywhere, int8 in and out
    types = {t.type for t in graph.tensors}
    assert types <= {TT.INT8, TT.INT4, TT.INT32}, types
    assert graph.tensors[graph.inputs[0]].type == TT.INT8
    assert graph.tensors[graph.outputs[0]].type == TT.INT8
    assert [model.operatorCodes[op.opcodeIndex].builtinCode for op in graph.operators] == [FC] * 3
    if bits in (8, 4):
        _check_runs_like_keras(q, tfl, x)


def _check_runs_like_keras(q, tfl, x):
    interp = tf.lite.Interpreter(
        model_content=tfl,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    i_d, o_d = interp.get_input_details()[0], interp.get_output_details()[0]
    (si, zi), (so, zo) = i_d["quantization"], o_d["quantization"]
    keras_out = q(x[:16], training=False).numpy()
    for row, ref in zip(x[:16], keras_out):
        xi = np.clip(np.round(row / si) + zi, -128, 127).astype(np.int8)[None]
        interp.set_tensor(i_d["index"], xi)
        interp.invoke()
        out = (interp.get_tensor(o_d["index"]).astype(np.float32) - zo) * so
        assert np.abs(out[0] - ref).max() <= 4 * so + 1e-6


def test_stage1_and_mixed_bits_convert_exactly(ffnn, data):
    x, _ = data
    bits = [6, 2, 7]  # 5..7-bit INT8 grid and 2-bit INT4 in one model, low-bit flag on for all
    q = qat.make_qat_model(ffnn, QuantConfig(weight_bits=4, layer_bits=bits, weight_quantizer="linear"), 1)
    assert qat.layer_bits(q) == bits
    tfl = qat.to_tflite(q, x)
    _check_tflite_weights(q, tfl, bits)


def test_representative_data_required(ffnn):
    q = qat.make_qat_model(ffnn, QuantConfig(weight_bits=4), 1)
    with pytest.raises(UserError, match="representative_data"):
        qat.to_tflite(q, np.zeros((0, 32), np.float32))


def test_qat_model_save_load_roundtrip(ffnn, data, tmp_path):
    import tensorflow_model_optimization as tfmot

    x, _ = data
    q = qat.make_qat_model(ffnn, QuantConfig(weight_bits=3, layer_bits=[8, 5, 3]), 2)
    path = tmp_path / "qat.h5"
    q.save(path)
    with tfmot.quantization.keras.quantize_scope(qat.custom_objects()):
        r = keras.models.load_model(path, compile=False)
    assert qat.layer_bits(r) == [8, 5, 3]
    np.testing.assert_array_equal(r(x, training=False).numpy(), q(x, training=False).numpy())
