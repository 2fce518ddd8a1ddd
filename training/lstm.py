"""Streaming LSTM keyword model (issue 12): one LFBE frame per 10 ms hop, state carried hop to hop.

Training view (``build_lstm``, registered in ``training.models.BUILDERS`` as ``lstm``): the same
flattened context window as the FFNN (``context_frames`` x ``num_mel_bins``, frame-major) is
reshaped to a sequence of ``context_frames`` frames, run through ``lstm_layers`` LSTM layers of
``lstm_units`` units from a zero state, and the last step's hidden state goes through one Dense to
the logits. So the LSTM trains on the data set's windows unchanged (training/dataset.py); each
window is a sequence of ``context_frames`` consecutive frames, which needs
``features.context_stride = 1`` (one LSTM step per 10 ms hop).

Streaming view (``streaming_model``): the same weights in a model that takes ONE frame and the
per-layer states (h, c) and returns the logits and the new states. Running it hop by hop from
zero states gives, at every hop, the same logits as the training view on the frames seen so far
(tests/test_lstm.py checks this to float tolerance). ``stream_scorer`` evaluates that way: what
``training.evaluate.keras_scorer`` returns for an LSTM, so a run's DET curve, the FA/h epoch selection
and hard-negative mining see the deployed, state-carrying model. ``step_model`` is the deployment form: one
frame in, logits out, the states inside the LSTM layers (TFLite keeps them as variable tensors of
UNIDIRECTIONAL_SEQUENCE_LSTM; see docs/formats.md, "Streaming LSTM").

Layers are plain ``keras.layers.LSTM`` (standard gates: i, f, c, o; sigmoid recurrent activation,
tanh cell activation, no peepholes, no projection, unit forget bias) so the TFLite converter fuses
them into UNIDIRECTIONAL_SEQUENCE_LSTM. QAT with per-operand quantizers replaces each by a ``QuantLSTM``
of the same name and variables (training/quant_lstm.py, training/lstm_qat.py; docs/quantization.md, "LSTM
operands"), whose operands are named by ``LSTM_OPERANDS``.
"""
from __future__ import annotations

import numpy as np
import tf_keras as keras

from training.config import FeatureConfig, ModelConfig
from basics.errors import UserError
from basics.streams import WindowStream

# The operands a per-operand quantizer configuration names for each LSTM layer (docs/quantization.md).
LSTM_OPERANDS = ("input", "kernel", "recurrent_kernel", "bias", "gate_i", "gate_f", "gate_c", "gate_o",
                 "cell", "cell_tanh", "hidden")


def check_features(fcfg: FeatureConfig) -> None:
    if fcfg.context_stride != 1:
        raise UserError(f"model lstm steps once per hop: set features.context_stride=1 (got "
                        f"{fcfg.context_stride}); features.context_frames is then the training sequence length")


def lstm_layer(units: int, i: int, return_sequences: bool, **kw) -> keras.layers.LSTM:
    # unroll=False and the default activations: the converter fuses this into UNIDIRECTIONAL_SEQUENCE_LSTM
    return keras.layers.LSTM(units, return_sequences=return_sequences, name=f"lstm_{i}", **kw)


def build_lstm(mcfg: ModelConfig, fcfg: FeatureConfig, n_classes: int) -> keras.Model:
    check_features(fcfg)
    T, B = fcfg.context_frames, fcfg.num_mel_bins
    inp = keras.Input(shape=(T * B,), name="lfbe_window")
    x = keras.layers.Reshape((T, B), name="to_sequence")(inp)
    for i in range(mcfg.lstm_layers):
        x = lstm_layer(mcfg.lstm_units, i, return_sequences=i < mcfg.lstm_layers - 1)(x)
    if mcfg.dropout > 0:
        x = keras.layers.Dropout(mcfg.dropout, name="dropout")(x)
    out = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name="lstm")


def lstm_shape(model: keras.Model) -> dict:
    """{'layers', 'units', 'bins', 'classes'} of a model built by build_lstm (or its streaming forms)."""
    lstms = [l for l in model.layers if isinstance(l, keras.layers.LSTM)]
    if not lstms:
        raise UserError(f"model '{model.name}' has no LSTM layer")
    return {"layers": len(lstms), "units": int(lstms[0].units), "bins": int(lstms[0].input_shape[-1]),
            "classes": int(model.get_layer("logits").units)}


def _copy_weights(src: keras.Model, dst: keras.Model) -> None:
    for layer in dst.layers:
        if isinstance(layer, (keras.layers.LSTM, keras.layers.Dense)):
            layer.set_weights(src.get_layer(layer.name).get_weights())


def streaming_model(model: keras.Model) -> keras.Model:
    """Explicit-state streaming form: inputs [frame (B,), h_0, c_0, h_1, c_1, ...], outputs
    [logits, h_0', c_0', ...]. Same weights as ``model``."""
    s = lstm_shape(model)
    frame = keras.Input(shape=(s["bins"],), name="frame")
    states, outs = [], []
    x = keras.layers.Reshape((1, s["bins"]), name="to_step")(frame)
    for i in range(s["layers"]):
        h = keras.Input(shape=(s["units"],), name=f"h_{i}")
        c = keras.Input(shape=(s["units"],), name=f"c_{i}")
        states += [h, c]
        x, h2, c2 = lstm_layer(s["units"], i, return_sequences=True, return_state=True)(x, initial_state=[h, c])
        outs += [h2, c2]
    y = keras.layers.Reshape((s["units"],), name="last")(x)
    logits = keras.layers.Dense(s["classes"], name="logits")(y)
    m = keras.Model([frame, *states], [logits, *outs], name="lstm_streaming")
    _copy_weights(model, m)
    return m


def step_model(model: keras.Model, steps: int = 1) -> keras.Model:
    """Deployment form for conversion: input [1, steps, B] (batch 1), output the logits after the
    last step [1, classes]. The LSTM state is not an input or output: the converted
    UNIDIRECTIONAL_SEQUENCE_LSTM keeps it in variable tensors that persist between invocations."""
    s = lstm_shape(model)
    inp = keras.Input(shape=(steps, s["bins"]), batch_size=1, name="frames")
    x = inp
    for i in range(s["layers"]):
        # every layer returns its sequence: the last step is taken by a reshape (steps == 1) or by the
        # converter's slice; no state tensors leave the graph
        x = lstm_layer(s["units"], i, return_sequences=True)(x)
    if steps == 1:
        x = keras.layers.Reshape((s["units"],), name="last")(x)
    else:
        x = keras.layers.Lambda(lambda t: t[:, -1], name="last")(x)
    out = keras.layers.Dense(s["classes"], name="logits")(x)
    m = keras.Model(inp, out, name="lstm_step")
    _copy_weights(model, m)
    return m


def run_streaming(model: keras.Model, frames: np.ndarray) -> np.ndarray:
    """frames [N, T, B] (N independent streams) -> logits after every hop [N, T, classes], one hop at
    a time through ``streaming_model`` with the state carried between calls (zero at the start)."""
    sm = streaming_model(model)
    s = lstm_shape(model)
    f = np.asarray(frames, np.float32)
    n = len(f)
    st = [np.zeros((n, s["units"]), np.float32) for _ in range(2 * s["layers"])]
    out = []
    for t in range(f.shape[1]):
        r = sm([f[:, t], *st], training=False)
        out.append(np.asarray(r[0]))
        st = [np.asarray(v) for v in r[1:]]
    return np.stack(out, axis=1)


def sequence_logits(model: keras.Model, frames: np.ndarray) -> np.ndarray:
    """Whole-sequence view: logits after every step [N, T, classes] in one call (the training
    model's layers with return_sequences everywhere)."""
    s = lstm_shape(model)
    inp = keras.Input(shape=(None, s["bins"]))
    x = inp
    for i in range(s["layers"]):
        x = lstm_layer(s["units"], i, return_sequences=True)(x)
    out = keras.layers.Dense(s["classes"], name="logits")(x)
    m = keras.Model(inp, out)
    _copy_weights(model, m)
    return np.asarray(m(np.asarray(frames, np.float32), training=False))


# ----------------------------------------------------------------------------- streaming evaluation
def _numpy_weights(model: keras.Model):
    lstms = [l for l in model.layers if isinstance(l, keras.layers.LSTM)]
    layers = [tuple(np.asarray(w, np.float64) for w in l.get_weights()) for l in lstms]  # kernel, recurrent, bias
    dense = tuple(np.asarray(w, np.float64) for w in model.get_layer("logits").get_weights())
    return layers, dense


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class StreamState:
    """The float LSTM run one hop at a time in numpy (Keras gate order i, f, c, o), state carried:
    what the deployed model does, without Keras' per-call overhead."""

    def __init__(self, model: keras.Model):
        self.layers, self.dense = _numpy_weights(model)
        self.bins = self.layers[0][0].shape[0]
        self.reset()

    def reset(self) -> None:
        self.h = [np.zeros(k.shape[1] // 4) for k, _, _ in self.layers]
        self.c = [np.zeros(k.shape[1] // 4) for k, _, _ in self.layers]

    def step(self, frame: np.ndarray) -> np.ndarray:
        x = np.asarray(frame, np.float64)
        for i, (k, r, b) in enumerate(self.layers):
            z = x @ k + self.h[i] @ r + b
            u = len(b) // 4
            ig, fg, cg, og = _sigmoid(z[:u]), _sigmoid(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), _sigmoid(z[3 * u:])
            self.c[i] = fg * self.c[i] + ig * cg
            self.h[i] = og * np.tanh(self.c[i])
            x = self.h[i]
        return x @ self.dense[0] + self.dense[1]


def stream_scorer(model: keras.Model, state: StreamState | None = None):
    """Scorer (normalized windows [N, T*bins] -> posteriors [N, C]) with the deployed semantics: windows
    that follow each other by one hop (window k = window k-1 shifted by one frame) are one stream, scored
    hop by hop with the state carried; a window that does not follow the previous one (a new clip or
    stream) starts a new stream from a zero state, warmed up on its own frames. State also carries over
    calls, so a long stream may come in blocks (``basics.streams.WindowStream``, the rule the integer
    reference's scorer follows too). One LSTM step per hop instead of T (train.py's
    evaluation of an LSTM run uses it: training.evaluate.keras_scorer). ``state``: another stepper with
    StreamState's interface (the QAT LSTM's: training.lstm_qat.QuantStreamState)."""
    st = state if state is not None else StreamState(model)
    stream = WindowStream(st.step, st.reset)

    def f(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        n = len(x)
        if n == 0:
            return np.zeros((0, len(st.dense[1])))
        out = np.asarray(stream(x.reshape(n, -1, st.bins)), np.float64)
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return f
