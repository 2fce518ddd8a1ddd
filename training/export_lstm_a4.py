"""Export of a QAT LSTM with k-bit activations (w4a4) to SUB8_LSTM_A4 (docs/formats.md section 13): the
training side of ``tflm_port.lstm_a4`` (which writes and runs the .tflite from integers and grids only).

    deployable_a4(qat_model) -> None, or the reason this model has no SUB8_LSTM_A4 form (one line)
    lstm_operator(qat_model, want) -> ("int8" | "sub8", None) or (None, why): which operator a QAT LSTM deploys as
    layers_a4(qat_model) -> [tflm_port.lstm_a4.LayerA4]      the integers and grids of every QuantLSTM
    convert_lstm_a4(qat_model, metadata=None, name) -> bytes  the one-frame .tflite

Every number comes from the QAT model as it runs at inference: the kernels' integers are the quantized
kernels divided by their grid step (checked to lie on the grid), the operand grids are the quantizers'
(``grid()``: the fixed [0, 1] / [-1, 1] / cell grids of the tailored preset, or the min/max grids of the
naive one), the input and logits quantization the nudged ranges of their 8-bit FakeQuant.
"""
from __future__ import annotations

import numpy as np

from basics.errors import UserError
from tflm_port import lstm_a4
from training import act_quantizers as aq
from training import lstm_qat
from training import quantizers as qz

GATES = ("gate_i", "gate_f", "gate_c", "gate_o")


def _grid(q, qvars):
    return q.grid({k: np.asarray(v) for k, v in (qvars or {}).items()})


def _weights(quantizer, w_q, qvars, what: str) -> tuple[np.ndarray, float]:
    """(integers, step) of a quantized kernel (on its grid by construction; checked)."""
    step = float(np.asarray(quantizer.step(qvars)))
    ints = np.asarray(w_q, np.float64) / step
    r = np.round(ints)
    n = qz.levels_per_side(quantizer.bits)
    if quantizer.bits < 2 or np.abs(ints - r).max(initial=0) > 1e-3 or np.abs(r).max(initial=0) > n:
        raise UserError(f"{what}: the {quantizer.bits}-bit kernel is not on its grid (step {step})")
    return r.astype(np.int8), step


def _nudged8(lo: float, hi: float) -> tuple[float, int]:
    """(scale, int8 zero point) of an 8-bit FakeQuant on [lo, hi] (TF's nudging)."""
    lo, hi = np.float32(lo), np.float32(hi)
    scale = float((hi - lo) / np.float32(255))
    if not scale > 0:
        raise UserError(f"8-bit range [{lo}, {hi}] is empty")
    zp = int(np.clip(np.round(-float(lo) / scale), 0, 255))
    return scale, zp - 128


def deployable_a4(qat_model) -> str | None:
    """None if every QuantLSTM maps to SUB8_LSTM_A4, else the reason (one line)."""
    try:
        layers_a4(qat_model)
    except UserError as e:
        return str(e)
    return None


def lstm_operator(qat_model, want: str = "auto") -> tuple[str | None, str | None]:
    """The operator a QAT LSTM deploys as (``quant.lstm_op``): ("int8", None) for TFLite's int8
    UNIDIRECTIONAL_SEQUENCE_LSTM, ("sub8", None) for SUB8_LSTM_A4, (None, why) where neither takes it.

    ``auto``: w8a8 goes to TFLite's own operator (runs in tf.lite and tflite-micro unchanged); k-bit weights
    (k < 8) or k-bit activations go to SUB8_LSTM_A4, whose packed kernels keep the k-bit size and whose
    integer arithmetic follows the QAT grids (the int8 operator stores k-bit weights in int8 bytes and
    recalibrates the hidden state). ``int8`` / ``sub8`` ask for one; a model it cannot take is a UserError."""
    if want not in ("auto", "int8", "sub8"):
        raise UserError(f"lstm operator {want!r}: expected auto, int8 or sub8")
    if want == "int8":
        no_int8 = lstm_qat.deployable_int8(qat_model)
        if no_int8:
            raise UserError(f"quant.lstm_op int8: {no_int8}")
        return "int8", None
    no_sub8 = deployable_a4(qat_model)
    if want == "sub8":
        if no_sub8:
            raise UserError(f"quant.lstm_op sub8: {no_sub8}")
        return "sub8", None
    no_int8 = lstm_qat.deployable_int8(qat_model)
    packed = any(q.quantizers["kernel"].bits < 8 for q in lstm_qat.qlstm_layers(qat_model)
                 if "kernel" in q.quantizers)
    if no_sub8 is None and (no_int8 or packed):
        return "sub8", None
    if no_int8 is None:
        return "int8", None
    return None, f"{no_int8}; {no_sub8}"


def layers_a4(qat_model) -> list:
    out = []
    for q in lstm_qat.qlstm_layers(qat_model):
        where = f"layer '{q.name}'"
        missing = [op for op in (*GATES, "cell", "cell_tanh", "hidden") if op not in q.quantizers]
        if missing:
            raise UserError(f"{where}: no quantizer on {', '.join(missing)} (stage 1 model?): {lstm_a4.LSTM_A4_CODE} "
                            "needs every operand on a grid")
        for op in (*GATES, "cell", "cell_tanh", "hidden"):
            if not isinstance(q.quantizers[op], (aq.FixedRangeQuantizer, aq.MinMaxActQuantizer)):
                raise UserError(f"{where}: operand {op} uses {type(q.quantizers[op]).__name__}: {lstm_a4.LSTM_A4_CODE} "
                                "takes fixed-range or min/max grids")
        grids = {op: _grid(q.quantizers[op], q.qvars.get(op)) for op in (*GATES, "cell", "cell_tanh", "hidden")}
        for op in ("gate_i", "gate_f", "gate_o"):
            if grids[op].qmin != 0:
                raise UserError(f"{where}: gate {op} must be on an unsigned grid")
        for op in ("gate_c", "cell_tanh", "hidden", "cell"):
            if grids[op].qmin != -grids[op].qmax:
                raise UserError(f"{where}: operand {op} must be on a symmetric grid")
        bits = {op: aq.bits_of(q.quantizers[op]) for op in grids}
        if len({bits["gate_i"], bits["gate_f"], bits["gate_o"]}) != 1 or bits["gate_c"] != bits["cell_tanh"]:
            raise UserError(f"{where}: {lstm_a4.LSTM_A4_CODE} needs one width for the i/f/o gates and one for the "
                            f"cell input and tanh(c) (got {bits})")
        wq, rq = (np.asarray(w) for w in q.quantized_weights(False))
        w, s_w = _weights(q.quantizers["kernel"], wq, q.qvars["kernel"], f"{where} kernel")
        r, s_r = _weights(q.quantizers["recurrent_kernel"], rq, q.qvars["recurrent_kernel"], f"{where} recurrent kernel")
        if q.quantizers["kernel"].bits != q.quantizers["recurrent_kernel"].bits:
            raise UserError(f"{where}: kernel and recurrent kernel must have the same width")
        out.append(lstm_a4.LayerA4(
            w=w.T.copy(), r=r.T.copy(), bias=np.asarray(q.bias, np.float64), s_w=s_w, s_r=s_r,
            s_gates=tuple(grids[g].scale for g in GATES), s_tanh=grids["cell_tanh"].scale,
            s_cell=grids["cell"].scale, s_h=grids["hidden"].scale, weight_bits=q.quantizers["kernel"].bits,
            gate_bits=bits["gate_i"], tanh_bits=bits["gate_c"], hidden_bits=bits["hidden"], cell_bits=bits["cell"]))
        probe = {"weight_bits": out[-1].weight_bits, "layout": 0, "input_bits": 8, "gate_bits": bits["gate_i"],
                 "tanh_bits": bits["gate_c"], "hidden_bits": bits["hidden"], "cell_bits": bits["cell"]}
        lstm_a4.check_bits(probe, where)
    if not out:
        raise UserError("no QuantLSTM layer: not a QAT LSTM")
    return out


def convert_lstm_a4(qat_model, metadata: dict | None = None, name: str = "<model>") -> bytes:
    """QAT LSTM (stage 2, k-bit activations) -> the one-frame .tflite of SUB8_LSTM_A4 layers + the logits FC."""
    layers = layers_a4(qat_model)
    inl = lstm_qat._input_layer(qat_model)  # noqa: SLF001
    if inl is None:
        raise UserError(f"{name}: the QAT model has no input quantizer (stage 1?)")
    lo, hi, _, _ = lstm_qat._fq_params(inl.quantizer, inl.quantizer_vars)  # noqa: SLF001
    in_quant = _nudged8(lo, hi)
    lw = lstm_qat._logits(qat_model)  # noqa: SLF001
    kernel, wquant, wvars = lw._weight_vars[0]  # noqa: SLF001
    dw, ds = _weights(wquant, np.asarray(wquant(kernel, False, wvars)), wvars, f"{name}: logits kernel")
    acts = getattr(lw, "_quantize_activations", [])
    if not acts:
        raise UserError(f"{name}: the logits have no output quantizer (stage 1?)")
    lo, hi, _, _ = lstm_qat._fq_params(acts[0].quantizer, acts[0]._post_activation_vars)  # noqa: SLF001
    meta = dict(metadata or {})
    meta.update(activation_bits=[L.hidden_bits for L in layers] + [8])
    return lstm_a4.write_model(layers, in_quant, dw.T.copy(), ds, np.asarray(lw.layer.bias, np.float64),
                               _nudged8(lo, hi), meta, name)
