"""Quantization-aware LSTM layer (issue 12): the LSTM step written out with one quantizer per operand.

tfmot has no LSTM QAT (model-optimization#1114), so ``QuantLSTM`` is our own layer. It holds the
same variables as ``keras.layers.LSTM`` (``kernel [bins, 4u]``, ``recurrent_kernel [u, 4u]``,
``bias [4u]``, gate order i, f, c, o; sigmoid gates, tanh cell input and output, no peepholes) so a
float run's weights load into it unchanged, and every operand gets the quantizer its spec names
(``training/quant_spec.py``; kinds from ``training/quantizers.py`` and ``training/act_quantizers.py``):

    Wq = q_kernel(W), Rq = q_recurrent_kernel(R)              once per call (stage 1 and 2)
    per step t:  z = x_t Wq + h Rq + b                         (float; TFLite's int8 LSTM: Q3.12)
                 i, f, o = q_gate_{i,f,o}(sigmoid(z_{i,f,o}))  spec ``gate``: fixed [0, 1]
                 g = q_gate_c(tanh(z_c))                       spec ``tanh``: fixed [-1, 1]
                 c' = q_cell(f c + i g)                        spec ``cell``: fixed:16 on [-8, 8]
                 h' = q_hidden(o q_cell_tanh(tanh(c')))        specs ``hidden`` and ``tanh``
                                                               (stage 2 only; stage 1 is float there)

The operand names are ``training.lstm.LSTM_OPERANDS``; their variables are ``<operand>_<var>`` of the
layer (``kernel_max``, ``gate_i_max`` for a min/max gate ...). The state quantizers act inside the
recurrence, so training sees the quantized ``h`` and ``c`` the next step reads, and running the layer
one hop at a time from the previous hop's (h, c) gives the whole sequence's outputs (``run``).
The model's input (8 bits) and the logits are quantized outside the layer (``training/lstm_qat.py``).
"""
from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from basics.errors import UserError
from training import act_quantizers as aq
from training import quant_spec
from training import quantizers as qz

# operand of the layer -> the quant_spec operand whose spec it takes
OPERAND_SPEC = {"kernel": "weight", "recurrent_kernel": "recurrent_weight", "gate_i": "gate", "gate_f": "gate",
                "gate_c": "tanh", "gate_o": "gate", "cell": "cell", "cell_tanh": "tanh", "hidden": "hidden"}
WEIGHT_OPERANDS = ("kernel", "recurrent_kernel")
STATE_OPERANDS = ("gate_i", "gate_f", "gate_c", "gate_o", "cell", "cell_tanh", "hidden")
SPEC_KEYS = ("weight", "recurrent_weight", "gate", "tanh", "cell", "hidden")


def _smart(training, fn):
    """fn(True) / fn(False) chosen by a Python bool, or a tf.cond on a tensor flag."""
    if isinstance(training, (bool, int)):
        return fn(bool(training))
    return tf.__internal__.smart_cond.smart_cond(training, lambda: fn(True), lambda: fn(False))


class QuantLSTM(keras.layers.Layer):
    """LSTM with per-operand quantizers. ``specs``: {quant_spec operand: "kind:bits"} for the keys of
    ``SPEC_KEYS``; ``stage`` 1 quantizes the kernels only, 2 every operand."""

    def __init__(self, units: int, specs: dict, stage: int = 2, return_sequences: bool = False, **kw):
        super().__init__(**kw)
        if stage not in (1, 2):
            raise UserError(f"QuantLSTM '{self.name}': stage must be 1 or 2, got {stage!r}")
        missing = [k for k in SPEC_KEYS if k not in specs]
        if missing:
            raise UserError(f"recurrent layer '{self.name}' has no quantize config for {', '.join(missing)}")
        self.units, self.stage, self.return_sequences = int(units), int(stage), bool(return_sequences)
        self.specs = {k: str(specs[k]) for k in SPEC_KEYS}
        parsed = {k: quant_spec.parse(k, self.specs[k], f"layer {self.name}") for k in SPEC_KEYS}
        self.quantizers = {}
        for op, key in OPERAND_SPEC.items():
            if op in WEIGHT_OPERANDS:
                self.quantizers[op] = qz.get_weight_quantizer(parsed[key].kind, parsed[key].bits)
            elif stage == 2:
                self.quantizers[op] = aq.quantizer_for(parsed[key], key)
        self.qvars = {}

    def build(self, input_shape):
        bins, u = int(input_shape[-1]), self.units
        self.kernel = self.add_weight("kernel", shape=(bins, 4 * u), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight("recurrent_kernel", shape=(u, 4 * u), initializer="orthogonal")
        self.bias = self.add_weight("bias", shape=(4 * u,), initializer="zeros")
        for op, q in self.quantizers.items():
            self.qvars[op] = q.build(None, op, self)
        super().build(input_shape)

    # ------------------------------------------------------------------ the computation
    def quantized_weights(self, training):
        """(Wq, Rq): the kernels on their grids (training: the ranges follow the kernels)."""
        return tuple(_smart(training, lambda t, op=op: self.quantizers[op](getattr(self, op), t, self.qvars[op]))
                     for op in WEIGHT_OPERANDS)

    def _q(self, op, x, training):
        if op not in self.quantizers:
            return x
        return _smart(training, lambda t: self.quantizers[op](x, t, self.qvars[op]))

    def step(self, x, h, c, wq, rq, training):
        """One time step: (h', c') from input x [N, bins] and state (h, c) [N, u]."""
        u = self.units
        z = tf.matmul(x, wq) + tf.matmul(h, rq) + self.bias
        i = self._q("gate_i", tf.sigmoid(z[:, :u]), training)
        f = self._q("gate_f", tf.sigmoid(z[:, u:2 * u]), training)
        g = self._q("gate_c", tf.tanh(z[:, 2 * u:3 * u]), training)
        o = self._q("gate_o", tf.sigmoid(z[:, 3 * u:]), training)
        c2 = self._q("cell", f * c + i * g, training)
        h2 = self._q("hidden", o * self._q("cell_tanh", tf.tanh(c2), training), training)
        return h2, c2

    def run(self, inputs, state=None, training=False):
        """inputs [N, T, bins], state (h, c) or None (zeros) -> (outputs [N, T, u], h, c)."""
        x = tf.convert_to_tensor(inputs, tf.float32)
        if state is None:
            zero = tf.zeros((tf.shape(x)[0], self.units), x.dtype)
            state = (zero, zero)
        wq, rq = self.quantized_weights(training)

        def fn(xt, states):
            h2, c2 = self.step(xt, states[0], states[1], wq, rq, training)
            return h2, [h2, c2]

        _, outputs, (h, c) = keras.backend.rnn(fn, x, list(state), unroll=False)
        return outputs, h, c

    def call(self, inputs, training=None):
        if training is None:
            training = keras.backend.learning_phase()
        outputs, h, _ = self.run(inputs, None, training)
        return outputs if self.return_sequences else h

    def compute_output_shape(self, input_shape):
        s = tf.TensorShape(input_shape)
        return s[:-1].concatenate([self.units]) if self.return_sequences else tf.TensorShape([s[0], self.units])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "specs": dict(self.specs), "stage": self.stage,
                "return_sequences": self.return_sequences}


def custom_objects() -> dict:
    return {"QuantLSTM": QuantLSTM}
