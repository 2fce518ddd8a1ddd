"""AVERAGE_POOL_2D (int8): window sums divided by the count of real (unpadded) cells, rounded half
away from zero as TFLite does."""
from __future__ import annotations

import numpy as np

from tflm_port.reference.common import Op, activation_range, check_work, per_sample_shape, same_padding, windows
from tflm_port.tflite_io import quant_params


class AveragePool2D(Op):
    def __init__(self, op, tensors):
        self.inputs, self.outputs = list(op.inputs), list(op.outputs)
        opt = op.builtinOptions
        o_t = tensors[op.outputs[0]]
        self.fh, self.fw, self.sh, self.sw, self.padding = opt.filterHeight, opt.filterWidth, opt.strideH, opt.strideW, opt.padding
        s_out, zp_out, _ = quant_params(o_t)
        self.act_min, self.act_max = activation_range(opt.fusedActivationFunction, float(s_out[0]), int(zp_out[0]))
        self.out_shape = per_sample_shape(o_t)

    def __call__(self, env, n):
        x = env[self.inputs[0]].astype(np.int64)
        _, h, w_, c = x.shape
        oh, pt, pb = same_padding(h, self.fh, self.sh, 1, self.padding)
        ow, pl, pr = same_padding(w_, self.fw, self.sw, 1, self.padding)
        check_work("AVERAGE_POOL_2D", oh * ow * c * self.fh * self.fw, (h + pt + pb) * (w_ + pl + pr))
        win = windows(x, self.fh, self.fw, self.sh, self.sw, 1, 1, ((pt, pb), (pl, pr)), 0)[:, :oh, :ow]
        ones = np.ones((1, h, w_, 1), np.int64)
        cnt = windows(ones, self.fh, self.fw, self.sh, self.sw, 1, 1, ((pt, pb), (pl, pr)), 0)[:, :oh, :ow]
        acc = win.sum(axis=(4, 5))
        count = cnt.sum(axis=(4, 5))
        half = count // 2
        num = np.where(acc > 0, acc + half, acc - half)
        q = np.where(num >= 0, num // count, -((-num) // count))  # C division truncates
        env[self.outputs[0]] = np.clip(q, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)
