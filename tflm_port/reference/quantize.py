"""QUANTIZE (float32 -> int8, or int8 -> int8 requantization) and DEQUANTIZE (int8 -> float32)."""
from __future__ import annotations

import numpy as np

from tflm_port.reference.common import TT, Op
from tflm_port.reference.fixedpoint import Requant, quantize_multiplier, round_half_away
from tflm_port.tflite_io import quant_params


class Quantize(Op):
    def __init__(self, in_t, out_t, inputs, outputs, rounding="tflm"):
        self.inputs, self.outputs = inputs, outputs
        s_out, zp_out, _ = quant_params(out_t)
        self.s_out, self.zp_out = np.float32(s_out[0]), int(zp_out[0])
        self.float_in = in_t.type == TT.FLOAT32
        if not self.float_in:
            s_in, zp_in, _ = quant_params(in_t)
            self.zp_in = int(zp_in[0])
            self.mult, self.shift = quantize_multiplier(float(np.float64(s_in[0]) / np.float64(s_out[0])))
            self.rq = Requant(self.mult, self.shift, rounding)

    def __call__(self, env, n):
        x = env[self.inputs[0]]
        if self.float_in:
            q = round_half_away(x.astype(np.float32) / self.s_out).astype(np.int64) + self.zp_out
        else:
            q = self.rq.signed(x.astype(np.int64) - self.zp_in) + self.zp_out
        env[self.outputs[0]] = np.clip(q, -128, 127).astype(np.int8)


class Dequantize(Op):
    def __init__(self, in_t, inputs, outputs):
        s, zp, _ = quant_params(in_t)
        self.s, self.zp = np.float32(s[0]), int(zp[0])
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, env, n):
        env[self.outputs[0]] = ((env[self.inputs[0]].astype(np.int32) - self.zp).astype(np.float32) * self.s)
