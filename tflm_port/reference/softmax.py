"""SOFTMAX (int8 -> int8) as TFLite's reference kernel computes it; the fixed-point arithmetic is in
``softmax_fixed``."""
from __future__ import annotations

from basics.errors import UserError
from tflm_port.reference.common import TT, Op
from tflm_port.reference.softmax_fixed import SoftmaxInt8
from tflm_port.tflite_io import quant_params


class Softmax(Op):
    """int8 -> int8 softmax (fixed-point exp, 5 integer bits)."""

    def __init__(self, op, tensors):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, o_t = tensors[op.inputs[0]], tensors[op.outputs[0]]
        s_in, _, _ = quant_params(x_t)
        s_out, zp_out, _ = quant_params(o_t)
        if o_t.type != TT.INT8:
            raise UserError("SOFTMAX: only int8 output is supported by the reference")
        self.impl = SoftmaxInt8(float(op.builtinOptions.beta), float(s_in[0]), int(zp_out[0]))

    def __call__(self, env, n):
        env[self.outputs[0]] = self.impl(env[self.inputs[0]])
