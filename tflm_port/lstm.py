"""UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 cell state) for the numpy reference.

TFLite's standard integer LSTM ("8x8_16"), as TFLite Micro evaluates it, written here from the published
arithmetic (docs/formats.md, "Streaming LSTM"). Per time step, with x the int8 input, h the int8 hidden
(output) state and c the int16 cell state (scale 2^-p, a power of two):

* each gate g in (f, i, c, o): ``G_in = sat16(MBQM((x - zp_x) . W_g + b_g, s_x s_Wg / 2^-12))``,
  ``G_rec = sat16(MBQM((h - zp_h) . R_g, s_h s_Rg / 2^-12))``, ``G = sat16(G_in + G_rec)`` (Q3.12);
  f, i, o: ``sigmoid16(G)``, c: ``tanh16(G)`` (Q0.15) by a 256-entry table of sigmoid(k/24) with
  linear interpolation (the int16 LOGISTIC / TANH of TFLite's integer kernels);
* ``c = sat16(MBQM(f c, 2^-15))``, ``c = sat16(c + sat16(MBQM(i g, 2^-30 / s_c)))``, clipped to
  +-cell_clip / s_c when the op's cell_clip is > 0;
* ``h = sat8(MBQM(o tanh16(c), 2^-30 / s_h) + zp_h)``; the op's output at this step is h.

MBQM is MultiplyByQuantizedMultiplier with the multiplier from ``double(a) * double(b) / double(c)``
(TFLM's convention, ``rounding="tflm"``). The state lives in the operator between calls: a batch of N
rows is N independent streams, each call advances every stream by the input's T steps;
``Reference.reset_state()`` starts them again (h = zp_h, c = 0: TFLM's reset of variable tensors).
"""
from __future__ import annotations

import math

import numpy as np

from basics.errors import UserError
from basics.streams import WindowStream
from tflm_port.reference.common import Op as _Op
from tflm_port.reference.common import per_sample_shape as _per_sample_shape
from tflm_port.reference.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from tflm_port.tflite_io import TENSOR_TYPE_NAMES, load_model, op_name, quant_params, schema, tensor_data, tensor_name
from tflm_port.tflite_io import save_model

TT = schema.TensorType
GATE_SCALE = 2.0 ** -12     # gate pre-activations: Q3.12
ACT_SCALE = 2.0 ** -15      # sigmoid / tanh outputs: Q0.15
# inputs of UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite schema order)
IN_X, IN_W, IN_R, IN_PEEP, IN_BIAS, IN_PROJ, IN_H, IN_C, IN_LN = 0, 1, 5, 9, 12, 16, 18, 19, 20
GATES = ("i", "f", "c", "o")  # order of the weight / bias inputs


# sigmoid(k / 24) in unsigned 0.16 fixed point, k = 0..255, the table TFLite's int16 LOGISTIC / TANH
# kernels interpolate in. It is NOT round(65536 sigmoid(k / 24)) (about half the entries are one
# higher, which lowers the interpolation error): these values were MEASURED from TFLite Micro's int16
# TANH kernel at the grid points (``probe_tflm_table`` below re-measures them; tests/test_lstm_int8.py
# checks they still agree).
LUT = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064,
    42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464,
    50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503,
    56823, 57133, 57433, 57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666,
    62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968,
    64030, 64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687,
    64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258, 65269, 65280, 65291,
    65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367, 65374, 65381, 65387, 65393, 65399, 65404,
    65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465,
    65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524, 65525, 65525,
    65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530,
    65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65535
], dtype=np.int64)


def probe_tflm_table() -> np.ndarray:
    """Re-measure ``LUT`` from the installed tflite-micro: a one-op int16 TANH model whose input scale
    makes the kernel's table index 2x / 256 exact; at x = 128 k the output is LUT[k] - 32768, and
    LUT[255] follows from the interpolation step at x = 32639."""
    from tflite_micro.python.tflite_micro import runtime  # lazy: heavy dependency, loaded only when this runs


    S = schema
    m = S.ModelT()
    m.version = 3
    oc = S.OperatorCodeT()
    oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.TANH
    oc.version = 1
    m.operatorCodes = [oc]
    m.buffers = [S.BufferT(), S.BufferT(), S.BufferT()]
    scale = float(np.nextafter(np.float32(2 / 12288), np.float32(1)))   # input multiplier -> exactly 2x

    def tensor(name, s, buf):
        t = S.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 257], S.TensorType.INT16, buf, name
        q = S.QuantizationParametersT()
        q.scale, q.zeroPoint = [s], [0]
        t.quantization = q
        return t

    sg = S.SubGraphT()
    sg.tensors = [tensor("x", scale, 1), tensor("y", 1 / 32768, 2)]
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    sg.operators, sg.inputs, sg.outputs = [op], [0], [1]
    m.subgraphs = [sg]
    it = runtime.Interpreter.from_bytes(save_model(m))
    x = np.concatenate([np.arange(255) * 128, [32639, 0]]).astype(np.int16)[None]
    it.set_input(x, 0)
    it.invoke()
    y = it.get_output(0)[0].astype(np.int64)
    lut = np.empty(256, np.int64)
    lut[:255] = y[:255] + 32768
    lut[255] = lut[254] + (y[255] - y[254])  # step 254 -> 255 is 0 or 1: (254 d + 128) >> 8 = d
    return lut


def sigmoid16(x: np.ndarray) -> np.ndarray:
    """int16 Q3.12 -> int16 Q0.15: table index = 3x / 512 (the 3/4 range scaling), 9 fraction bits."""
    v = np.asarray(x, np.int64) * 3
    a = np.abs(v)
    k = a >> 9
    kk = np.minimum(k, 254)
    ua, ub = LUT[kk], LUT[kk + 1]
    r = np.where(k < 255, (ua << 9) + (a & 0x1FF) * (ub - ua), 0x7FFF << 10)
    r = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return r >> 10


def tanh16(x: np.ndarray, int_bits: int) -> np.ndarray:
    """int16 with ``int_bits`` integer bits (Q(int_bits).(15 - int_bits)) -> int16 Q0.15 through the
    same table: tanh(x) = 2 sigmoid(2x) - 1. The input is brought to 3 x Q3.12 first."""
    left = int_bits - 3
    mult, shift = (3 << left, 0) if left >= 0 else (3, -left)
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    v = (np.asarray(x, np.int64) * mult + rnd) >> shift
    a = np.abs(v)
    k = a >> 8
    kk = np.minimum(k, 254)
    ua, ub = LUT[kk], LUT[kk + 1]
    r = np.where(k < 255, (ua << 8) + (a & 0xFF) * (ub - ua), 0xFFFF << 8)
    r = np.where(v >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return r >> 8


def _sat(x: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(x, lo, hi)


def _mult(a: float, b: float, c: float) -> tuple[int, int]:
    """QuantizeMultiplier(double(a) * double(b) / double(c)) with float32 scales (TFLM's Prepare)."""
    return quantize_multiplier(float(np.float32(a)) * float(np.float32(b)) / float(np.float32(c)))


class StatefulLstm(_Op):
    """What the reference's LSTM operators share: per-stream state (h, c) held between calls, a batch of N
    rows being N streams; ``reset`` (Reference.reset_state) starts them again."""

    units: int
    h = c = None

    def reset(self) -> None:
        self.h = self.c = None

    def state(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.h is None else (self.h.copy(), self.c.copy())

    def streams(self, n: int, h_start: int) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) of the ``n`` streams: started (h = h_start, c = 0) on the first call after a reset; a call
        with another number of rows is refused with one line."""
        if self.h is None:
            self.h = np.full((n, self.units), h_start, np.int64)
            self.c = np.zeros((n, self.units), np.int64)
        elif len(self.h) != n:
            raise UserError(f"LSTM state holds {len(self.h)} streams, the input has {n} rows "
                            "(call reset_state() to start new streams)")
        return self.h, self.c


class UnidirectionalSequenceLstm(StatefulLstm):
    """One int8 LSTM layer; per-stream state (h, c) held between calls."""

    def __init__(self, w, r, b, s_x, zp_x, s_w, s_r, s_h, zp_h, s_c, cell_clip, inputs, outputs, out_shape,
                 state_shape):
        self.inputs, self.outputs = inputs, outputs
        self.out_shape = out_shape
        self.units = w.shape[1]
        self.zp_x, self.zp_h = int(zp_x), int(zp_h)
        # gate weights stacked [gate, units, K] as float64 (exact integer products: |sum| << 2^53)
        self.w = w.astype(np.float64)
        self.r = r.astype(np.float64)
        self.b = b.astype(np.int64)
        self.m_in = [_mult(s_x, s_w[g], GATE_SCALE) for g in range(4)]
        self.m_rec = [_mult(s_h, s_r[g], GATE_SCALE) for g in range(4)]
        self.m_fc = _mult(ACT_SCALE, s_c, s_c)
        self.m_ig = _mult(ACT_SCALE, ACT_SCALE, s_c)
        self.m_h = _mult(ACT_SCALE, ACT_SCALE, s_h)
        p = math.log2(float(s_c))
        if p != round(p):
            raise UserError(f"cell state scale {float(s_c)} is not a power of two")
        self.cell_int_bits = 15 + int(round(p))  # Q(int).(15-int)
        self.cell_clip = 0
        if cell_clip > 0:
            self.cell_clip = int(min(max(float(np.float32(cell_clip)) / float(np.float32(s_c)), -32768.0), 32767.0))
        self.state_shape = state_shape
        # the four gates stacked [4u, K] with their multipliers per row: one product and one rescale per hop
        u = self.units
        self.w_all, self.r_all = self.w.reshape(4 * u, -1), self.r.reshape(4 * u, -1)
        self.b_all = self.b.reshape(4 * u)
        self.mi_all, self.si_all = (np.repeat(np.array([m[k] for m in self.m_in], np.int64), u) for k in (0, 1))
        self.mr_all, self.sr_all = (np.repeat(np.array([m[k] for m in self.m_rec], np.int64), u) for k in (0, 1))

    def _gates(self, xin, hin):
        """The four gate pre-activations [n, 4, u] (int16 Q3.12), each its input and recurrent rescale
        saturated to 16 bits and their sum saturated again, as TFLM computes them."""
        a = np.rint(xin @ self.w_all.T).astype(np.int64) + self.b_all
        gi = _sat(multiply_by_quantized_multiplier(a, self.mi_all, self.si_all), 16)
        ar = np.rint(hin @ self.r_all.T).astype(np.int64)
        gr = _sat(multiply_by_quantized_multiplier(ar, self.mr_all, self.sr_all), 16)
        return _sat(gi + gr, 16).reshape(len(xin), 4, self.units)

    def __call__(self, env: dict, n: int) -> None:
        x = np.asarray(env[self.inputs[0]]).reshape(n, -1, self.w.shape[2]).astype(np.int64)
        h, c = self.streams(n, self.zp_h)
        out = np.empty((n, x.shape[1], self.units), np.int8)
        for t in range(x.shape[1]):
            xin = (x[:, t] - self.zp_x).astype(np.float64)
            hin = (h - self.zp_h).astype(np.float64)
            z = self._gates(xin, hin)   # every gate reads the old h
            sig = sigmoid16(z[:, [0, 1, 3]])
            i, f, o = sig[:, 0], sig[:, 1], sig[:, 2]
            g = tanh16(z[:, 2], 3)
            c = _sat(multiply_by_quantized_multiplier(f * c, *self.m_fc), 16)
            c = _sat(c + _sat(multiply_by_quantized_multiplier(i * g, *self.m_ig), 16), 16)
            if self.cell_clip > 0:
                c = np.clip(c, -self.cell_clip, self.cell_clip)
            th = tanh16(c, self.cell_int_bits)
            h = _sat(multiply_by_quantized_multiplier(o * th, *self.m_h) + self.zp_h, 8)
            out[:, t] = h
        self.h, self.c = h, c
        env[self.outputs[0]] = out.reshape((n,) + self.out_shape)


def variable_state_problem(model, op, n_inputs: int, slots, where: str) -> str | None:
    """Why a stateful operator does not carry its state as variable tensors, or None: it needs at least
    ``n_inputs`` inputs, and each ``(input index, what)`` of ``slots`` a variable tensor with no buffer data;
    ``where`` names the state inputs in the message (e.g. "inputs 18/19")."""
    ins = [int(i) for i in op.inputs]
    T = model.subgraphs[0].tensors
    if len(ins) < n_inputs or any(ins[k] < 0 for k, _ in slots):
        return f"stateful LSTM exported without its state tensors ({where} missing)"
    for k, what in slots:
        t = T[ins[k]]
        if not t.isVariable or tensor_data(model, t) is not None:
            return f"stateful LSTM exported without its state tensors ({what} {tensor_name(t)} is not a variable tensor)"
    return None


def state_tensor_problem(model, op) -> str | None:
    """Why this LSTM operator does not carry its state as variable tensors (inputs 18, 19), or None."""
    return variable_state_problem(model, op, 20, ((IN_H, "output state"), (IN_C, "cell state")), "inputs 18/19")


def check_stateful(data: bytes, name: str = "<model>", code: str = "UNIDIRECTIONAL_SEQUENCE_LSTM",
                   problem=state_tensor_problem) -> int:
    """Number of ``code`` operators in a .tflite (TFLite's LSTM by default); UserError (one line) if one has
    no state tensors. ``problem(model, op)`` is that operator's state check (``tflm_port.lstm_a4`` passes
    SUB8_LSTM_A4's)."""
    m = load_model(data, name)
    n = 0
    for k, op in enumerate(m.subgraphs[0].operators or []):
        if op_name(m, op) == code:
            n += 1
            why = problem(m, op)
            if why:
                raise UserError(f"{name}: operator {k} ({code}): {why}")
    return n


def build(ref, op, ins, outs, where):
    """Reference hook (tflm_port.reference.OP_MODULES): the operator object for one LSTM."""
    model, T = ref.model, ref.tensors
    if len(ins) != 24 or len(outs) != 1:
        raise UserError(f"needs 24 inputs and one output, has {len(ins)} and {len(outs)}")
    problem = state_tensor_problem(model, op)
    if problem:
        raise UserError(problem)
    opt = op.builtinOptions
    if opt is None or type(opt).__name__ != "UnidirectionalSequenceLSTMOptionsT":
        raise UserError(f"UnidirectionalSequenceLSTMOptions missing")
    if opt.fusedActivationFunction != schema.ActivationFunctionType.TANH:
        raise UserError(f"cell activation {opt.fusedActivationFunction} not supported (TANH only)")
    if opt.timeMajor:
        raise UserError(f"time-major LSTM not supported (batch-major only)")
    for k in list(range(IN_PEEP, IN_PEEP + 3)) + [IN_PROJ, IN_PROJ + 1] + list(range(IN_LN, IN_LN + 4)):
        if ins[k] >= 0:
            raise UserError(f"input {k} set: peepholes, projection and layer norm are not supported")
    x_t, h_t, c_t, o_t = T[ins[IN_X]], T[ins[IN_H]], T[ins[IN_C]], T[outs[0]]
    types = (x_t.type, h_t.type, c_t.type, o_t.type)
    if types != (TT.INT8, TT.INT8, TT.INT16, TT.INT8):
        raise UserError(f"needs int8 input/state/output and int16 cell state, got "
                        f"{'/'.join(str(TENSOR_TYPE_NAMES.get(t)) for t in types)}")
    w, r, s_w, s_r, b = [], [], [], [], []
    for g in range(4):
        for k, lst, sl in ((IN_W + g, w, s_w), (IN_R + g, r, s_r)):
            t = T[ins[k]]
            d = tensor_data(model, t) if ins[k] >= 0 else None
            if d is None or t.type != TT.INT8:
                raise UserError(f"input {k} must be constant INT8 weights (CIFG is not supported)")
            s, zp, _ = quant_params(t)
            if len(s) != 1 or np.any(zp != 0):
                raise UserError(f"input {k} needs per-tensor symmetric quantization")
            lst.append(d.reshape(d.shape[0], -1))
            sl.append(float(s[0]))
        bt = T[ins[IN_BIAS + g]]
        d = tensor_data(model, bt) if ins[IN_BIAS + g] >= 0 else None
        if d is None or bt.type != TT.INT32:
            raise UserError(f"input {IN_BIAS + g} must be a constant INT32 bias")
        b.append(d.reshape(-1))
    w, r, b = np.stack(w), np.stack(r), np.stack(b)
    units, n_in = w.shape[1], w.shape[2]
    if r.shape != (4, units, units) or b.shape != (4, units):
        raise UserError(f"weights {w.shape}, recurrent {r.shape}, bias {b.shape} do not fit together")
    in_shape = _per_sample_shape(x_t)
    if len(in_shape) != 2 or in_shape[1] != n_in:
        raise UserError(f"input shape {in_shape} is not [T, {n_in}]")
    st = [int(s) for s in h_t.shape] if h_t.shape is not None else []
    if int(np.prod(st)) != units or int(np.prod([int(s) for s in c_t.shape])) != units:
        raise UserError(f"state tensors hold {int(np.prod(st))} values, the layer has {units} units")
    (s_x,), (zp_x,) = quant_params(x_t)[:2]
    (s_h,), (zp_h,) = quant_params(h_t)[:2]
    (s_c,), _ = quant_params(c_t)[:2]
    (s_o,), (zp_o,) = quant_params(o_t)[:2]
    if (float(s_o), int(zp_o)) != (float(s_h), int(zp_h)):
        raise UserError(f"output quantization differs from the output state's")
    return UnidirectionalSequenceLstm(w, r, b, s_x, zp_x, s_w, s_r, s_h, zp_h, s_c, float(opt.cellClip),
                                      ins[:1], outs, _per_sample_shape(o_t), tuple(st))


def reference_stream_scorer(ref):
    """Scorer (normalized windows [N, T*bins] -> posteriors [N, C]) for a stateful one-frame model (the
    exported LSTM, input [1, 1, bins]) in the integer reference: windows that follow each other by one
    hop are one stream, fed one frame per run() with the state carried (also across calls); a window
    that does not follow starts a new stream (reset_state) warmed up on its own frames
    (``basics.streams.WindowStream``, the rule the float scorer follows too). What the device
    computes; used by training.evaluate.tflite_scorer for stateful models."""
    bins = int(np.prod(ref.input_shape))
    shape = (1,) + ref.input_shape
    stream = WindowStream(lambda frame: ref.run(frame.reshape(shape)).reshape(-1), ref.reset_state)

    def f(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        n = len(x)
        if n == 0:
            return np.zeros((0, int(np.prod(ref.output_shape))))
        w = x.reshape(n, -1, bins)
        q = ref.quantize_input(w.reshape(-1, bins)).reshape(w.shape)
        out = stream(w, q)
        return ref._to_posteriors(out)

    return f
