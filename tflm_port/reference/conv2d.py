"""CONV_2D (int8): im2col windows times the weight matrix in exact chunks, per-channel requantization."""
from __future__ import annotations

import numpy as np

from tflm_port.reference.common import WindowedOp, check_work, optional_bias, same_padding, windows
from tflm_port.reference.exact import chunks, exact_int_matmul
from tflm_port.tflite_io import tensor_data


class Conv2D(WindowedOp):
    def __init__(self, model, op, tensors, rounding="tflm"):
        w = tensor_data(model, tensors[op.inputs[1]]).astype(np.int64)  # [Cout, KH, KW, Cin]
        self.cout, self.kh, self.kw, self.cin = w.shape
        self._prepare_windowed(op, tensors, self.cout, rounding)
        wmat = w.reshape(self.cout, -1)  # order (kh, kw, cin)
        self.chunks = chunks(wmat)
        offset = -self.zp_in * wmat.sum(axis=1)
        b = optional_bias(model, tensors, op.inputs)
        self.offset = offset if b is None else offset + b

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
