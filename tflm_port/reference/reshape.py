"""RESHAPE / SQUEEZE / EXPAND_DIMS (to the output tensor's static shape) and the int32 shape
arithmetic (SHAPE, STRIDED_SLICE, PACK) that feeds RESHAPE's shape input and computes nothing."""
from __future__ import annotations

from tflm_port.reference.common import Op


class Reshape(Op):
    def __init__(self, inputs, outputs, out_shape):
        self.inputs, self.outputs, self.out_shape = inputs, outputs, out_shape

    def __call__(self, env, n):
        env[self.outputs[0]] = env[self.inputs[0]].reshape((n,) + self.out_shape)


class ShapeArith(Op):
    """SHAPE/STRIDED_SLICE/PACK on int32 shape tensors: RESHAPE uses its output tensor's static
    shape instead, so these compute nothing."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = inputs, outputs

    def __call__(self, env, n):
        for o in self.outputs:
            env[o] = None
