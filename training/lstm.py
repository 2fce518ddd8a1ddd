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
(tests/test_lstm.py checks this to float tolerance). ``step_model`` is the deployment form: one
frame in, logits out, the states inside the LSTM layers (TFLite keeps them as variable tensors of
UNIDIRECTIONAL_SEQUENCE_LSTM; see docs/formats.md, "Streaming LSTM").

Layers are plain ``keras.layers.LSTM`` (standard gates: i, f, c, o; sigmoid recurrent activation,
tanh cell activation, no peepholes, no projection, unit forget bias) so the TFLite converter fuses
them into UNIDIRECTIONAL_SEQUENCE_LSTM. QAT with per-operand quantizers is not here yet; the design
(docs/quantization.md, "LSTM operands") names the operands of ``LSTM_OPERANDS`` per layer
``lstm_{i}``, the keys a quantizer configuration will use.
"""
from __future__ import annotations

import numpy as np
import tf_keras as keras

from training.config import FeatureConfig, ModelConfig
from training.errors import UserError

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
