"""CONV_2D (int8): im2col windows times the weight matrix in exact chunks, per-channel requantization."""
from __future__ import annotations

import numpy as np

from tflm_port.reference.common import (Op, activation_range, check_work, optional_bias, per_sample_shape,
                                        same_padding, windows)
from tflm_port.reference.exact import chunks, exact_int_matmul
from tflm_port.reference.fixedpoint import Requant, channel_multipliers
from tflm_port.tflite_io import quant_params, tensor_data


class Conv2D(Op):
    def __init__(self, model, op, tensors, rounding="tflm"):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        x_t, w_t, o_t = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        opt = op.builtinOptions
        w = tensor_data(model, w_t).astype(np.int64)  # [Cout, KH, KW, Cin]
        self.cout, self.kh, self.kw, self.cin = w.shape
        self.sh, self.sw = opt.strideH, opt.strideW
        self.dh, self.dw = max(opt.dilationHFactor, 1), max(opt.dilationWFactor, 1)
        self.padding = opt.padding
        s_in, zp_in, _ = quant_params(x_t)
        s_w, _, _ = quant_params(w_t)
        s_out, zp_out, _ = quant_params(o_t)
        self.zp_in = int(zp_in[0])
        wmat = w.reshape(self.cout, -1)  # order (kh, kw, cin)
        self.chunks = chunks(wmat)
        offset = -self.zp_in * wmat.sum(axis=1)
        b = optional_bias(model, tensors, op.inputs)
        if b is not None:
            offset = offset + b
        self.offset = offset
        # multiplier as TFLM computes it for convolutions (in both rounding flavours)
        self.mult, self.shift = channel_multipliers(s_in[0], np.broadcast_to(s_w, (self.cout,)), s_out[0])
        self.rq = Requant(self.mult, self.shift, rounding)
        self.zp_out = int(zp_out[0])
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), self.zp_out)
        self.out_shape = per_sample_shape(o_t)

    def __call__(self, env, n):
        x = env[self.inputs[0]]
        _, h, w_, _ = x.shape
        oh, pt, pb = same_padding(h, self.kh, self.sh, self.dh, self.padding)
        ow, pl, pr = same_padding(w_, self.kw, self.sw, self.dw, self.padding)
        check_work("CONV_2D", oh * ow * self.kh * self.kw * self.cin, h * w_)
        win = windows(x, self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, ((pt, pb), (pl, pr)), self.zp_in)
        win = win[:, :oh, :ow]
        cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * oh * ow, -1)
        acc = exact_int_matmul(cols, self.chunks) + self.offset
        y = self.rq.signed(acc) + self.zp_out
        env[self.outputs[0]] = np.clip(y, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)
