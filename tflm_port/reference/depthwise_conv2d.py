"""DEPTHWISE_CONV_2D (int8, depth multiplier >= 1): one shifted multiply-add per kernel tap."""
from __future__ import annotations

import numpy as np

from tflm_port.reference.common import WindowedOp, check_work, optional_bias, same_padding
from tflm_port.tflite_io import tensor_data


class DepthwiseConv2D(WindowedOp):
    def __init__(self, model, op, tensors, rounding="tflm"):
        w = tensor_data(model, tensors[op.inputs[1]]).astype(np.int64)  # [1, KH, KW, Cout]
        _, self.kh, self.kw, self.cout = w.shape
        self.w = w[0]
        self.dm = max(op.builtinOptions.depthMultiplier, 1)
        self._prepare_windowed(op, tensors, self.cout, rounding)
        b = optional_bias(model, tensors, op.inputs)
        self.bias = b if b is not None else np.zeros(self.cout, np.int64)

    def __call__(self, env, n):
        x = env[self.inputs[0]].astype(np.int32) - self.zp_in  # padding with 0 == padding with zp_in
        if self.dm > 1:
            x = np.repeat(x, self.dm, axis=3)
        _, h, w_, _ = x.shape
        oh, pt, pb = same_padding(h, self.kh, self.sh, self.dh, self.padding)
        ow, pl, pr = same_padding(w_, self.kw, self.sw, self.dw, self.padding)
        check_work("DEPTHWISE_CONV_2D", oh * ow * self.cout, (h + pt + pb) * (w_ + pl + pr) * x.shape[3])
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        acc = np.zeros((n, oh, ow, self.cout), np.int64)
        for i in range(self.kh):
            for j in range(self.kw):
                r0, c0 = i * self.dh, j * self.dw
                patch = xp[:, r0:r0 + (oh - 1) * self.sh + 1:self.sh, c0:c0 + (ow - 1) * self.sw + 1:self.sw, :]
                acc += patch * self.w[i, j]
        acc += self.bias
        y = self.rq.signed(acc) + self.zp_out
        env[self.outputs[0]] = np.clip(y, self.act_min, self.act_max).astype(np.int8).reshape((n,) + self.out_shape)
