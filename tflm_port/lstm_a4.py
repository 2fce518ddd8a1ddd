"""SUB8_LSTM_A4: the streaming LSTM with k-bit weights and k-bit activations (docs/formats.md section 13).

One unit for the operator, like ``tflm_port.fc_a4`` for SUB8_FC_A4: its custom options and ``params``
tensor, the writer of a whole one-frame model from the integers and grids of a QAT LSTM
(``write_model``; the training side, ``training/export_lstm_a4.py``, extracts them), and the numpy integer
reference (registered in ``tflm_port.reference.CUSTOM_BUILDERS`` when this module is imported).

TFLite has no activation type below 8 bits and its integer LSTM computes gates in Q0.15, so the w4a4 LSTM
of the QAT model (training/quant_lstm.py: gates on the unsigned grid of [0, 1], cell input, tanh(c) and h on
the symmetric grid of [-1, 1], the cell state on its wide grid) gets its own operator. Per time step and
unit (all integers; ``rs(v, M, S) = floor((v M + 2^(S-1)) / 2^S)`` in 64 bits, round half up as TF's
FakeQuant rounds)::

    A_g = sum_k (x_k - zp_x) W_g,k              B_g = sum_k h_k R_g,k          g in i, f, c, o
    Z_g = clamp(rs(A_g, Min_g, Sin_g), +-2^29) + clamp(rs(B_g, Mrec_g, Srec_g), +-2^29) + bias_g   (2^-16)
    I, F, O = #{T_g <= Z_g}  (0 .. 2^gate_bits - 1)     G = -n_t + #{T_c <= Z_c}  (-n_t .. n_t)
    C' = clamp(rs(F C Mfc + I G Mig, Sc), +-n_c)         TC = -n_t + #{T_t <= C'}
    H' = clamp(rs(O TC, Mh, Sh), +-n_h)                  the new state and the op's output

The activation functions never run at inference: the converter stores, for every grid level, the smallest
integer pre-activation whose sigmoid / tanh rounds to at least that level (``T``, from the float grid the
QAT model uses), so a 4-bit gate is at most 15 compares (4 with a binary search).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from flatbuffers import flexbuffers

from basics.errors import UserError
from tflm_port.reference.common import per_sample_shape as _per_sample_shape
from tflm_port import packing
from tflm_port import lstm
from tflm_port.lstm import variable_state_problem
from tflm_port.tflite_io import (METADATA_NAME, add_buffer, custom_options, quant_params, save_model, schema,
                                 set_metadata, tensor_data)

LSTM_A4_CODE = "SUB8_LSTM_A4"
LSTM_A4_VERSION = 1
OPTION_KEYS = ("version", "weight_bits", "layout", "in_features", "units", "input_bits", "gate_bits", "tanh_bits",
               "hidden_bits", "cell_bits")
IN_X, IN_W, IN_R, IN_BIAS, IN_PARAMS, IN_H, IN_C = range(7)
N_INPUTS = 7
Z_SCALE = 2.0 ** -16            # gate pre-activations and biases: int32 with 16 fraction bits
Z_CLAMP = 1 << 29               # each of the two gate terms is clamped to +-2^29 (the sum fits int32)
NEVER, ALWAYS = 2 ** 31 - 1, -2 ** 31
N_MULT = 21                     # params words before the thresholds
TT = schema.TensorType


def levels(bits: int, signed: bool) -> int:
    """Largest level of a grid: 2^k - 1 unsigned, 2^(k-1) - 1 each side of zero for a symmetric one."""
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


def check_bits(o: dict, where: str) -> None:
    """One UserError line for an operand / bit-width combination SUB8_LSTM_A4 does not define."""
    rules = (("weight_bits", 2, 8), ("input_bits", 2, 8), ("gate_bits", 2, 8), ("tanh_bits", 2, 8),
             ("hidden_bits", 2, 8), ("cell_bits", 8, 16))
    for key, lo, hi in rules:
        v = o[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
            raise UserError(f"{where}: {key} {v!r} not supported by {LSTM_A4_CODE} ({lo}..{hi})")
    if int(o["layout"]) != 0:
        raise UserError(f"{where}: {LSTM_A4_CODE} weights must be in layout 0 (row_lsb), got {o['layout']}")


def n_params(gate_bits: int, tanh_bits: int) -> int:
    return N_MULT + 3 * levels(gate_bits, False) + 4 * levels(tanh_bits, True)


# --------------------------------------------------------------------------- integer arithmetic
def rescale_params(real: float, what: str) -> tuple[int, int]:
    """(M, S) with M / 2^S ~ real, 2^30 <= M < 2^31 where S <= 62 allows (0 <= S <= 62)."""
    real = float(real)
    if not (math.isfinite(real) and 0 < real < 2.0 ** 30):
        raise UserError(f"{LSTM_A4_CODE}: {what} scale ratio {real!r} out of range")
    _, e = math.frexp(real)
    s = min(62, 31 - e)
    m = int(round(real * 2.0 ** s))
    if m >= 2 ** 31:
        s -= 1
        m = int(round(real * 2.0 ** s))
    if m == 0:
        raise UserError(f"{LSTM_A4_CODE}: {what} scale ratio {real!r} too small")
    return m, s


def rs(v: np.ndarray, m: int, s: int) -> np.ndarray:
    """floor((v m + 2^(s-1)) / 2^s) in int64 (|v m| < 2^62 by construction)."""
    p = np.asarray(v, np.int64) * np.int64(m)
    if s > 0:
        p = (p + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)
    return p


def thresholds(scale: float, qmax: int, signed: bool, unit: float) -> np.ndarray:
    """For each level k above the lowest of a grid of step ``scale`` (levels 0..qmax, or -qmax..qmax), the
    smallest integer pre-activation (in units of ``unit``) whose sigmoid (unsigned) / tanh (signed) rounds
    half up to at least k: ceil(f^-1((k - 1/2) scale) / unit); NEVER / ALWAYS where the boundary lies outside
    the activation's range."""
    ks = np.arange(-qmax + 1, qmax + 1) if signed else np.arange(1, qmax + 1)
    out = []
    for k in ks:
        v = (float(k) - 0.5) * float(scale)
        lo, hi = (-1.0, 1.0) if signed else (0.0, 1.0)
        if v >= hi:
            out.append(NEVER)
        elif v <= lo:
            out.append(ALWAYS)
        else:
            t = math.atanh(v) if signed else math.log(v / (1.0 - v))
            out.append(int(min(max(math.ceil(t / unit), ALWAYS), NEVER)))
    return np.array(out, np.int64)


# --------------------------------------------------------------------------- writer
@dataclass
class LayerA4:
    """One LSTM layer's integers and grids. ``w`` [4u, n_in], ``r`` [4u, u]: k-bit integers, gate-major rows
    (i, f, c, o); ``bias`` [4u] float (rounded to int32 at scale s_x s_w); ``s_gates``: the grid steps of the
    i, f, c (cell input) and o operands; ``s_tanh``: tanh(c)'s; ``s_cell``, ``s_h``: the state's."""
    w: np.ndarray
    r: np.ndarray
    bias: np.ndarray
    s_w: float
    s_r: float
    s_gates: tuple
    s_tanh: float
    s_cell: float
    s_h: float
    weight_bits: int
    gate_bits: int
    tanh_bits: int
    hidden_bits: int
    cell_bits: int

    @property
    def units(self) -> int:
        return int(self.r.shape[1])


def make_params(layer: LayerA4, s_x: float) -> np.ndarray:
    """The ``params`` tensor (docs/formats.md section 13) of one layer whose input has scale ``s_x``."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731  (scales as the .tflite stores them)
    words = []
    for g in range(4):
        words += rescale_params(f32(s_x) * f32(layer.s_w) / Z_SCALE, f"gate {g} input")
        words += rescale_params(f32(layer.s_h) * f32(layer.s_r) / Z_SCALE, f"gate {g} recurrent")
    si, sf, sg, so = (f32(s) for s in layer.s_gates)
    r_fc, r_ig = sf, si * sg / f32(layer.s_cell)
    sc = min(rescale_params(r_fc, "cell forget")[1], rescale_params(r_ig, "cell input")[1])
    words += [int(round(r_fc * 2.0 ** sc)), int(round(r_ig * 2.0 ** sc)), sc]
    words += rescale_params(so * f32(layer.s_tanh) / f32(layer.s_h), "hidden")
    ng, nt = levels(layer.gate_bits, False), levels(layer.tanh_bits, True)
    thr = [thresholds(si, ng, False, Z_SCALE), thresholds(sf, ng, False, Z_SCALE), thresholds(sg, nt, True, Z_SCALE),
           thresholds(so, ng, False, Z_SCALE), thresholds(f32(layer.s_tanh), nt, True, f32(layer.s_cell))]
    out = np.concatenate([np.array(words, np.int64), *thr])
    assert len(out) == n_params(layer.gate_bits, layer.tanh_bits)
    return out.astype(np.int32)


def _tensor(model, name, shape, ttype, scale=None, zp=None, data: bytes | None = None, variable=False) -> int:
    t = schema.TensorT()
    t.name, t.shape, t.type = name, list(shape), ttype
    t.buffer = add_buffer(model, data) if data is not None else 0
    if scale is not None:
        q = schema.QuantizationParametersT()
        q.scale = [float(np.float32(s)) for s in np.atleast_1d(scale)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zp if zp is not None else 0)]
        t.quantization = q
    t.isVariable = bool(variable)
    model.subgraphs[0].tensors.append(t)
    return len(model.subgraphs[0].tensors) - 1


def _op_code(model, builtin, custom=None) -> int:
    c = schema.OperatorCodeT()
    c.builtinCode = c.deprecatedBuiltinCode = builtin
    c.customCode = custom
    c.version = 1
    model.operatorCodes.append(c)
    return len(model.operatorCodes) - 1


def write_model(layers: list[LayerA4], in_quant: tuple[float, int], dense_w: np.ndarray, dense_s: float,
                dense_b: np.ndarray, out_quant: tuple[float, int], metadata: dict | None = None,
                name: str = "<model>") -> bytes:
    """The one-frame model: input [1, 1, bins] INT8 -> SUB8_LSTM_A4 per layer -> FULLY_CONNECTED (INT8 weights
    holding the Dense layer's k-bit integers, scale ``dense_s``) -> logits [1, classes] INT8 ``out_quant``."""
    S = schema
    m = S.ModelT()
    m.version = 3
    m.buffers = [S.BufferT()]
    m.operatorCodes = []
    sg = S.SubGraphT()
    sg.tensors, sg.operators = [], []
    m.subgraphs = [sg]
    lstm_code = _op_code(m, S.BuiltinOperator.CUSTOM, LSTM_A4_CODE)
    fc_code = _op_code(m, S.BuiltinOperator.FULLY_CONNECTED)
    bins = int(layers[0].w.shape[1])
    s_x, zp_x = float(in_quant[0]), int(in_quant[1])
    x = _tensor(m, "frame", [1, 1, bins], TT.INT8, s_x, zp_x)
    sg.inputs = [x]
    in_bits = 8
    for k, L in enumerate(layers):
        u, n_in = L.units, int(L.w.shape[1])
        if L.w.shape != (4 * u, n_in) or L.r.shape != (4 * u, u) or np.shape(L.bias) != (4 * u,):
            raise UserError(f"{name}: layer {k}: weights {L.w.shape}, recurrent {L.r.shape}, bias "
                            f"{np.shape(L.bias)} do not fit together")
        opts = {"version": LSTM_A4_VERSION, "weight_bits": L.weight_bits, "layout": 0, "in_features": n_in,
                "units": u, "input_bits": in_bits, "gate_bits": L.gate_bits, "tanh_bits": L.tanh_bits,
                "hidden_bits": L.hidden_bits, "cell_bits": L.cell_bits}
        check_bits(opts, f"{name}: layer {k}")
        b_scale = Z_SCALE
        bias = np.round(np.asarray(L.bias, np.float64) / b_scale)
        if np.abs(bias).max(initial=0) > Z_CLAMP:
            raise UserError(f"{name}: layer {k}: bias does not fit +-2^29 at scale 2^-16")
        params = make_params(L, s_x)
        ins = [x,
               _tensor(m, f"lstm_{k}/kernel", [len(p := packing.pack(L.w.astype(np.int8), L.weight_bits, 0))], TT.UINT8,
                       L.s_w, 0, p),
               _tensor(m, f"lstm_{k}/recurrent_kernel", [len(q := packing.pack(L.r.astype(np.int8), L.weight_bits, 0))],
                       TT.UINT8, L.s_r, 0, q),
               _tensor(m, f"lstm_{k}/bias", [4 * u], TT.INT32, b_scale, 0, bias.astype("<i4").tobytes()),
               _tensor(m, f"lstm_{k}/params", [len(params)], TT.INT32, None, None, params.astype("<i4").tobytes()),
               _tensor(m, f"lstm_{k}/h", [1, u], TT.INT8, L.s_h, 0, variable=True),
               _tensor(m, f"lstm_{k}/c", [1, u], TT.INT16, L.s_cell, 0, variable=True)]
        out = _tensor(m, f"lstm_{k}/out", [1, 1, u], TT.INT8, L.s_h, 0)
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = lstm_code, ins, [out]
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
        op.customOptionsFormat = S.CustomOptionsFormat.FLEXBUFFERS
        sg.operators.append(op)
        x, s_x, in_bits = out, L.s_h, L.hidden_bits
    dw = np.asarray(dense_w)
    classes = int(dw.shape[0])
    if dw.shape[1] != layers[-1].units or np.abs(dw).max(initial=0) > 127:
        raise UserError(f"{name}: dense weights {dw.shape} do not fit the last layer's {layers[-1].units} units")
    db = np.round(np.asarray(dense_b, np.float64) / (float(np.float32(s_x)) * float(np.float32(dense_s))))
    fw = _tensor(m, "logits/kernel", [classes, dw.shape[1]], TT.INT8, dense_s, 0, dw.astype(np.int8).tobytes())
    fb = _tensor(m, "logits/bias", [classes], TT.INT32, float(np.float32(s_x)) * float(np.float32(dense_s)), 0,
                 db.astype("<i4").tobytes())
    y = _tensor(m, "logits", [1, classes], TT.INT8, out_quant[0], out_quant[1])
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = fc_code, [x, fw, fb], [y]
    op.builtinOptionsType = S.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = S.FullyConnectedOptionsT()
    sg.operators.append(op)
    sg.outputs = [y]
    set_metadata(m, METADATA_NAME, {**(metadata or {}), "mode": "lstm_a4"})
    data = save_model(m)
    from tflm_port.reference import Reference  # lazy: the reference imports this plugin by name (registry)

    Reference.from_bytes(data, name)   # the written model must load
    return data


# --------------------------------------------------------------------------- reference
def state_tensor_problem(model, op) -> str | None:
    """Why this SUB8_LSTM_A4 does not carry its state as variable tensors (inputs 5, 6), or None."""
    if len(op.inputs) != N_INPUTS:
        return "stateful LSTM exported without its state tensors (inputs 5/6 missing)"
    return variable_state_problem(model, op, N_INPUTS, ((IN_H, "hidden state"), (IN_C, "cell state")), "inputs 5/6")


class LstmA4(lstm.StatefulLstm):
    """One SUB8_LSTM_A4 layer; per-stream state (h, c) held between calls (a batch of N rows = N streams)."""

    def __init__(self, w, r, bias, params, zp_x, o, inputs, outputs, out_shape):
        self.inputs, self.outputs, self.out_shape = inputs, outputs, out_shape
        self.units, self.n_in = int(o["units"]), int(o["in_features"])
        self.w = w.astype(np.float64)          # exact: |sums| << 2^53
        self.r = r.astype(np.float64)
        self.bias = bias.astype(np.int64)
        self.zp_x = int(zp_x)
        p = [int(v) for v in params]
        self.m_in = [(p[4 * g], p[4 * g + 1]) for g in range(4)]
        self.m_rec = [(p[4 * g + 2], p[4 * g + 3]) for g in range(4)]
        self.m_fc, self.m_ig, self.s_c = p[16], p[17], p[18]
        self.m_h = (p[19], p[20])
        ng, self.nt = levels(int(o["gate_bits"]), False), levels(int(o["tanh_bits"]), True)
        self.nh, self.nc = levels(int(o["hidden_bits"]), True), levels(int(o["cell_bits"]), True)
        t = np.asarray(params[N_MULT:], np.int64)
        cuts = np.cumsum([0, ng, ng, 2 * self.nt, ng, 2 * self.nt])
        self.thr = [t[cuts[k]:cuts[k + 1]] for k in range(5)]

    def _z(self, g, a, b):
        u = self.units
        zi = np.clip(rs(a[:, g * u:(g + 1) * u], *self.m_in[g]), -Z_CLAMP, Z_CLAMP)
        zr = np.clip(rs(b[:, g * u:(g + 1) * u], *self.m_rec[g]), -Z_CLAMP, Z_CLAMP)
        return zi + zr + self.bias[g * u:(g + 1) * u]

    def __call__(self, env: dict, n: int) -> None:
        x = np.asarray(env[self.inputs[0]]).reshape(n, -1, self.n_in).astype(np.int64)
        h, c = self.streams(n, 0)
        out = np.empty((n, x.shape[1], self.units), np.int8)
        cnt = lambda thr, z: np.searchsorted(thr, z, side="right")  # noqa: E731  #{T <= z}, T sorted
        for t in range(x.shape[1]):
            a = np.rint((x[:, t] - self.zp_x).astype(np.float64) @ self.w.T).astype(np.int64)
            b = np.rint(h.astype(np.float64) @ self.r.T).astype(np.int64)
            gi = cnt(self.thr[0], self._z(0, a, b))
            gf = cnt(self.thr[1], self._z(1, a, b))
            gg = cnt(self.thr[2], self._z(2, a, b)) - self.nt
            go = cnt(self.thr[3], self._z(3, a, b))
            p = gf * c * self.m_fc + gi * gg * self.m_ig
            c = np.clip((p + (np.int64(1) << np.int64(self.s_c - 1))) >> np.int64(self.s_c) if self.s_c > 0 else p,
                        -self.nc, self.nc)
            tc = cnt(self.thr[4], c) - self.nt
            h = np.clip(rs(go * tc, *self.m_h), -self.nh, self.nh)
            out[:, t] = h
        self.h, self.c = h, c
        env[self.outputs[0]] = out.reshape((n,) + self.out_shape)


def build_reference(ref, op, ins, outs, where):
    """The integer reference of one SUB8_LSTM_A4 (registered for the custom code)."""
    model, T = ref.model, ref.tensors
    problem = state_tensor_problem(model, op)
    if problem:
        raise UserError(problem)
    if len(ins) != N_INPUTS or len(outs) != 1:
        raise UserError(f"needs {N_INPUTS} inputs and one output, has {len(ins)} and {len(outs)}")
    o = custom_options(op)
    for key in OPTION_KEYS:
        if key not in o:
            raise UserError(f"custom options lack '{key}'")
    if o["version"] != LSTM_A4_VERSION:
        raise UserError(f"{LSTM_A4_CODE} version {o['version']} not supported ({LSTM_A4_VERSION})")
    check_bits(o, LSTM_A4_CODE)
    u, n_in, wb = int(o["units"]), int(o["in_features"]), int(o["weight_bits"])
    if not (1 <= u <= 4096 and 1 <= n_in <= 4096):
        raise UserError(f"units {u} / in_features {n_in} not in 1..4096")
    x_t, h_t, c_t, o_t = T[ins[IN_X]], T[ins[IN_H]], T[ins[IN_C]], T[outs[0]]
    types = (x_t.type, h_t.type, c_t.type, o_t.type)
    if types != (TT.INT8, TT.INT8, TT.INT16, TT.INT8):
        raise UserError("needs int8 input/hidden state/output and an int16 cell state")
    mats = []
    for k, rows_cols in ((IN_W, (4 * u, n_in)), (IN_R, (4 * u, u))):
        t = T[ins[k]]
        d = tensor_data(model, t)
        if d is None or t.type != TT.UINT8:
            raise UserError(f"input {k} must be constant UINT8 packed weights")
        want = rows_cols[0] * packing.get_layout(0).row_bytes(wb, rows_cols[1])
        if d.size != want:
            raise UserError(f"input {k}: packed weight size {d.size} != {want} ({rows_cols[0]} x {rows_cols[1]}, "
                            f"{wb}-bit, layout 0)")
        mats.append(packing.unpack(d.reshape(-1), wb, rows_cols[0], rows_cols[1], 0))
    b_t, p_t = T[ins[IN_BIAS]], T[ins[IN_PARAMS]]
    bias, params = tensor_data(model, b_t), tensor_data(model, p_t)
    if bias is None or b_t.type != TT.INT32 or bias.size != 4 * u:
        raise UserError(f"input {IN_BIAS} must be a constant INT32 bias [4 x units]")
    want = n_params(int(o["gate_bits"]), int(o["tanh_bits"]))
    if params is None or p_t.type != TT.INT32 or params.size != want:
        raise UserError(f"input {IN_PARAMS} must be constant INT32 params of {want} words")
    params = params.reshape(-1).astype(np.int64)
    for g in range(4):
        for j in (0, 2):
            mm, ss = params[4 * g + j], params[4 * g + j + 1]
            if not (0 < mm < 2 ** 31 and 0 <= ss <= 62):
                raise UserError(f"params: gate {g} rescale ({mm}, {ss}) out of range")
    if not (0 <= params[16] < 2 ** 31 and 0 <= params[17] < 2 ** 31 and 0 <= params[18] <= 62
            and 0 < params[19] < 2 ** 31 and 0 <= params[20] <= 62):
        raise UserError("params: cell / hidden rescale out of range")
    if not _segments_sorted(params, o):
        raise UserError("params: thresholds must be non-decreasing within each operand")
    if int(np.prod(h_t.shape)) != u or int(np.prod(c_t.shape)) != u:
        raise UserError(f"state tensors hold {int(np.prod(h_t.shape))} / {int(np.prod(c_t.shape))} values, "
                        f"the layer has {u} units")
    in_shape = _per_sample_shape(x_t)
    if len(in_shape) != 2 or in_shape[1] != n_in:
        raise UserError(f"input shape {in_shape} is not [T, {n_in}]")
    (s_x,), (zp_x,) = quant_params(x_t)[:2]
    if int(o["input_bits"]) < 8 and int(zp_x) != 0:
        raise UserError(f"input_bits {o['input_bits']} needs an input with zero point 0")
    # depth x 2^8 x 2^(k-1) must fit int32 (the accumulators); |bias| <= 2^29 (the gate sum fits int32)
    if max(n_in, u) * 256 * 2 ** (wb - 1) >= 2 ** 31 or int(np.abs(bias).max(initial=0)) > Z_CLAMP:
        raise UserError("bias out of +-2^29, or the accumulation could overflow int32")
    for t, what in ((h_t, "hidden state"), (o_t, "output")):
        if int(quant_params(t)[1][0]) != 0:
            raise UserError(f"{what} needs zero point 0 (the symmetric grid)")
    return LstmA4(mats[0], mats[1], bias.reshape(-1), params, zp_x, o, ins[:1], outs, _per_sample_shape(o_t))


def _segments_sorted(params, o) -> bool:
    ng, nt = levels(int(o["gate_bits"]), False), levels(int(o["tanh_bits"]), True)
    cuts = np.cumsum([N_MULT, ng, ng, 2 * nt, ng, 2 * nt])
    return all(np.all(np.diff(params[a:b]) >= 0) for a, b in zip(cuts[:-1], cuts[1:]))


def check_stateful(data: bytes, name: str = "<model>") -> int:
    """Number of SUB8_LSTM_A4 operators; UserError (one line) if one has no state tensors."""
    return lstm.check_stateful(data, name, LSTM_A4_CODE, state_tensor_problem)


def _register():
    from tflm_port import reference  # lazy: the reference imports this plugin by name (registry)

    reference.CUSTOM_BUILDERS[LSTM_A4_CODE] = build_reference


_register()
