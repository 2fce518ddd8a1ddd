"""Two-stage QAT of the streaming LSTM (issue 12): build, stream and export the quantized model.

``make_qat_lstm(float_model, qcfg, stage)`` turns a float ``build_lstm`` model into a tfmot QAT model
of the same shape: [stage 2: 8-bit input quantizer] -> Reshape -> ``QuantLSTM`` layers (per-operand
quantizers inside, training/quant_lstm.py) -> Dense logits (k-bit weights; stage 2: 8-bit output).
The float weights are copied in; ``qat.transfer_weights`` moves stage 1's into stage 2 as for the FFNN.
Stage 1 quantizes the LSTM kernels and the Dense kernel only; stage 2 adds the input, every gate, the
cell and hidden state and the logits, each with the quantizer of its spec (quant_spec.resolve: preset,
weight/activation bits, ``quant.operands`` overrides).

Streaming: ``run_streaming(qat_model, frames)`` runs the QAT model one hop at a time with the
quantized (h, c) carried (the whole-sequence model gives the same outputs: tests/test_lstm_qat.py);
``QuantStreamState`` is the same computation in numpy for ``training.lstm.stream_scorer`` (what
``keras_scorer`` returns for a QAT LSTM).

Export: ``float_twin(qat_model)`` is a plain ``build_lstm``-shaped model holding the fake-quantized
weights (biases float), which ``training.export_lstm.convert_lstm`` converts to TFLite's int8
UNIDIRECTIONAL_SEQUENCE_LSTM (the w8a8 deployment; ``deployable_int8`` says whether a config can).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer
from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import QuantizeWrapper

from basics.errors import UserError
from training import act_quantizers as aq
from training import qat, quant_spec
from training import quantizers as qz
from training.lstm import StreamState
from training.quant_lstm import SPEC_KEYS, QuantLSTM

_tmq = tfmot.quantization.keras


def is_lstm(model) -> bool:
    return any(isinstance(l, keras.layers.LSTM) or _inner(l) is not None for l in getattr(model, "layers", ()))


def _inner(layer):
    """The QuantLSTM of a (wrapped) layer, or None."""
    inner = getattr(layer, "layer", layer)
    return inner if isinstance(inner, QuantLSTM) else None


def qlstm_layers(qat_model) -> list[QuantLSTM]:
    return [q for q in (_inner(l) for l in qat_model.layers) if q is not None]


def _check_float(model) -> list:
    lstms = [l for l in model.layers if isinstance(l, keras.layers.LSTM)]
    if not lstms:
        raise UserError(f"model '{model.name}' has no LSTM layer")
    for l in model.layers:
        if isinstance(l, keras.layers.LSTM):
            c = l.get_config()
            if (c["activation"] != "tanh" or c["recurrent_activation"] != "sigmoid" or not c["use_bias"]
                    or c["dropout"] or c["recurrent_dropout"] or c.get("go_backwards") or c.get("stateful")):
                raise UserError(f"layer '{l.name}': only the standard LSTM (tanh/sigmoid, bias, no dropout, forward) "
                                "has a quantize config")
        elif not isinstance(l, (keras.layers.InputLayer, keras.layers.Reshape, keras.layers.Dropout,
                                keras.layers.Dense)):
            raise UserError(f"layer '{l.name}' ({type(l).__name__}) has no quantize config in an LSTM model")
    return lstms


def make_qat_lstm(float_model: keras.Model, qcfg, stage: int) -> keras.Model:
    """QAT model of stage 1 (kernels) or 2 (every operand) with the float model's weights."""
    if stage not in (1, 2):
        raise UserError(f"QAT stage must be 1 or 2, got {stage!r}")
    lstms = _check_float(float_model)
    if qcfg.layer_bits:
        raise UserError("quant.layer_bits: per-layer bits are not supported for model lstm (use quant.weight_bits "
                        "and quant.operands)")
    specs = quant_spec.resolve(qcfg, "quant")
    texts = {k: str(specs[k]) for k in SPEC_KEYS}
    dense = float_model.get_layer("logits")
    inp = keras.Input(shape=float_model.input_shape[1:], name=float_model.layers[0].name)
    x = inp
    if stage == 2:
        x = QuantizeLayer(qz.InputQuantizer8(), name="quantize_input")(x)
    reshape = float_model.get_layer("to_sequence")
    x = _tmq.quantize_annotate_layer(keras.layers.Reshape(reshape.target_shape, name="to_sequence"),
                                     qat.PassThroughQuantizeConfig())(x)
    for k, l in enumerate(lstms):
        q = QuantLSTM(l.units, texts, stage, return_sequences=k < len(lstms) - 1, name=l.name)
        x = _tmq.quantize_annotate_layer(q, qat.PassThroughQuantizeConfig())(x)
    act_q = aq.quantizer_for(specs["output"], "output") if stage == 2 else None
    cfg = qat.WeightLayerQuantizeConfig(qz.get_weight_quantizer(specs["weight"].kind, specs["weight"].bits),
                                        quantize_activation=stage == 2,
                                        activation_quantizer=None if isinstance(act_q, qz.ActivationQuantizer8)
                                        else act_q)
    x = _tmq.quantize_annotate_layer(keras.layers.Dense(dense.units, name="logits"), cfg)(x)
    annotated = keras.Model(inp, x, name=f"{float_model.name}_qat{stage}")
    with _tmq.quantize_scope(qat.custom_objects()):
        m = _tmq.quantize_apply(annotated, scheme=qat._Scheme())  # noqa: SLF001  (the FFNN's explicit-only scheme)
    for q, l in zip(qlstm_layers(m), lstms):
        for v, w in zip((q.kernel, q.recurrent_kernel, q.bias), l.get_weights()):
            v.assign(w)
    wrapper = m.get_layer("quant_logits")
    wrapper._weight_vars[0][0].assign(dense.kernel)  # noqa: SLF001  (layer.kernel is the quantized tensor)
    wrapper.layer.bias.assign(dense.bias)
    sync_ranges(m)
    return m


def sync_ranges(qat_model) -> None:
    """Weight ranges = current kernels, the Dense's (qat.sync_weight_ranges) and the LSTMs'."""
    qat.sync_weight_ranges(qat_model)
    for q in qlstm_layers(qat_model):
        q.quantized_weights(True)


class SyncRanges(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        sync_ranges(self.model)


def _input_layer(qat_model):
    return next((l for l in qat_model.layers if isinstance(l, QuantizeLayer)), None)


def _logits(qat_model) -> QuantizeWrapper:
    return qat_model.get_layer("quant_logits")


def run_streaming(qat_model, frames: np.ndarray) -> np.ndarray:
    """frames [N, T, bins] -> logits after every hop [N, T, classes], one hop per call with the quantized
    state carried (zero at the start): the deployed semantics, in Keras."""
    f = tf.convert_to_tensor(np.asarray(frames, np.float32))
    n, t_len, bins = f.shape
    inl = _input_layer(qat_model)
    layers = qlstm_layers(qat_model)
    state = [None] * len(layers)
    out = []
    for t in range(t_len):
        x = f[:, t]
        if inl is not None:   # the input quantizer sees the flattened window in training; per frame the same grid
            x = inl(x, training=False)
        x = x[:, None]
        for k, q in enumerate(layers):
            x, h, c = q.run(x, state[k], training=False)
            state[k] = (h, c)
        out.append(np.asarray(_logits(qat_model)(x[:, 0], training=False)))
    return np.stack(out, axis=1)


def sequence_logits(qat_model, frames: np.ndarray) -> np.ndarray:
    """Whole-sequence view: [N, T, bins] -> logits after every step [N, T, classes] in one call per layer."""
    x = tf.convert_to_tensor(np.asarray(frames, np.float32))
    n, t_len, bins = x.shape
    inl = _input_layer(qat_model)
    if inl is not None:
        x = tf.reshape(inl(tf.reshape(x, (n, -1)), training=False), (n, t_len, bins))
    for q in qlstm_layers(qat_model):
        x, _, _ = q.run(x, None, training=False)
    y = _logits(qat_model)(tf.reshape(x, (n * t_len, -1)), training=False)
    return np.asarray(y).reshape(n, t_len, -1)


# ----------------------------------------------------------------------------- numpy streaming
def _fake_quant(x, lo, hi, bits, narrow):
    """tf.quantization.fake_quant_with_min_max_* in float32 numpy (nudged range, round half up)."""
    lo, hi = np.float32(lo), np.float32(hi)
    qmin, qmax = np.float32(1 if narrow else 0), np.float32(2 ** bits - 1)
    scale = (hi - lo) / (qmax - qmin)
    zp = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    nlo, nhi = (qmin - zp) * scale, (qmax - zp) * scale
    v = np.clip(np.asarray(x, np.float32), nlo, nhi)
    return (np.floor((v - nlo) / scale + np.float32(0.5)) * scale + nlo).astype(np.float32)


def _fq_params(q, qvars):
    """(lo, hi, bits, narrow) of an activation quantizer's FakeQuant at inference."""
    if isinstance(q, aq.FixedRangeQuantizer):
        return (0.0, 1.0, q.bits, False) if q.kind == "unit" else (-q.bound, q.bound, q.bits, True)
    if isinstance(q, aq.MinMaxActQuantizer):
        m = float(np.asarray(qvars["max_var"]))
        return (-m, m, q.bits, True) if q.signed else (0.0, m, q.bits, False)
    if isinstance(q, (qz.ActivationQuantizer8, qz.InputQuantizer8)):
        return float(np.asarray(qvars["min_var"])), float(np.asarray(qvars["max_var"])), 8, False
    raise UserError(f"no numpy form of quantizer {q!r}")


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


class QuantStreamState(StreamState):
    """The QAT LSTM one hop at a time in float32 numpy, every operand fake-quantized as in Keras (a rounding
    tie may differ by one step): what ``training.lstm.stream_scorer`` runs for a QAT model."""

    def __init__(self, qat_model):
        sync_ranges(qat_model)
        self.qlayers = []
        for q in qlstm_layers(qat_model):
            wq, rq = (np.asarray(w, np.float32) for w in q.quantized_weights(False))
            fq = {op: _fq_params(qq, q.qvars[op]) for op, qq in q.quantizers.items() if op not in ("kernel",
                                                                                                   "recurrent_kernel")}
            self.qlayers.append((wq, rq, np.asarray(q.bias, np.float32), fq))
        self.layers = [(w, r, b) for w, r, b, _ in self.qlayers]
        lw = _logits(qat_model)
        _, wquant, wvars = lw._weight_vars[0]  # noqa: SLF001
        self.dense = (np.asarray(wquant(lw._weight_vars[0][0], False, wvars), np.float32),  # noqa: SLF001
                      np.asarray(lw.layer.bias, np.float32))
        acts = getattr(lw, "_quantize_activations", [])
        self.out_fq = _fq_params(acts[0].quantizer, acts[0]._post_activation_vars) if acts else None  # noqa: SLF001
        inl = _input_layer(qat_model)
        self.in_fq = _fq_params(inl.quantizer, inl.quantizer_vars) if inl is not None else None  # noqa: SLF001
        self.bins = self.layers[0][0].shape[0]
        self.reset()

    def reset(self) -> None:
        self.h = [np.zeros(w.shape[1] // 4, np.float32) for w, _, _ in self.layers]
        self.c = [np.zeros(w.shape[1] // 4, np.float32) for w, _, _ in self.layers]

    def step(self, frame: np.ndarray) -> np.ndarray:
        x = np.asarray(frame, np.float32)
        if self.in_fq:
            x = _fake_quant(x, *self.in_fq)
        for k, (w, r, b, fq) in enumerate(self.qlayers):
            def q(op, v):
                return _fake_quant(v, *fq[op]) if op in fq else v
            z = x @ w + self.h[k] @ r + b
            u = len(b) // 4
            i, f = q("gate_i", _sigmoid(z[:u])), q("gate_f", _sigmoid(z[u:2 * u]))
            g, o = q("gate_c", np.tanh(z[2 * u:3 * u])), q("gate_o", _sigmoid(z[3 * u:]))
            self.c[k] = q("cell", f * self.c[k] + i * g)
            self.h[k] = q("hidden", o * q("cell_tanh", np.tanh(self.c[k])))
            x = self.h[k]
        y = x @ self.dense[0] + self.dense[1]
        return _fake_quant(y, *self.out_fq) if self.out_fq else y


# ----------------------------------------------------------------------------- export
def deployable_int8(qat_model) -> str | None:
    """None if the model deploys as TFLite's int8 LSTM (weights <= 8 bits in int8, 8-bit activations),
    else the reason (k-bit activations go to SUB8_LSTM_A4 instead)."""
    for q in qlstm_layers(qat_model):
        for op, qq in q.quantizers.items():
            if op in ("kernel", "recurrent_kernel"):
                continue
            if op in ("gate_i", "gate_f", "gate_c", "gate_o", "cell_tanh", "hidden") and aq.bits_of(qq) < 8:
                return (f"layer '{q.name}' has {aq.bits_of(qq)}-bit {op}: TFLite's int8 LSTM has 8-bit activations "
                        "(k-bit activations: SUB8_LSTM_A4, training/export_lstm_a4.py)")
    return None


def float_twin(qat_model) -> keras.Model:
    """A plain ``build_lstm``-shaped float model whose weights are the QAT model's fake-quantized ones
    (kernels on their grids; biases float, int32 at conversion): what ``convert_lstm`` converts."""
    sync_ranges(qat_model)
    qls = qlstm_layers(qat_model)
    bins = int(qls[0].kernel.shape[0])
    t_len = int(qat_model.input_shape[-1]) // bins
    inp = keras.Input(shape=(t_len * bins,), name="lfbe_window")
    x = keras.layers.Reshape((t_len, bins), name="to_sequence")(inp)
    for k, q in enumerate(qls):
        x = keras.layers.LSTM(q.units, return_sequences=k < len(qls) - 1, name=q.name)(x)
    lw = _logits(qat_model)
    out = keras.layers.Dense(lw.layer.units, name="logits")(x)
    m = keras.Model(inp, out, name="lstm")
    for q in qls:
        wq, rq = q.quantized_weights(False)
        m.get_layer(q.name).set_weights([np.asarray(wq), np.asarray(rq), np.asarray(q.bias)])
    kernel, wquant, wvars = lw._weight_vars[0]  # noqa: SLF001
    m.get_layer("logits").set_weights([np.asarray(wquant(kernel, False, wvars)), np.asarray(lw.layer.bias)])
    return m
