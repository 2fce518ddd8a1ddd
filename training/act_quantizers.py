"""Activation quantizers below 8 bits (and the fixed-range grids of bounded LSTM operands).

tfmot ``Quantizer`` subclasses like those of ``training/quantizers.py``: one small class each, a
serializable ``get_config``, reachable by name through ``ACT_QUANTIZERS``. Every one ends in a single
``tf.quantization.fake_quant_with_min_max_vars`` node (what the TFLite converter reads), and every one
says which integer grid it stands for with ``grid(qvars) -> Grid(scale, zero_point, qmin, qmax)``:
real value = scale * (q - zero_point), q an integer in [qmin, qmax]. ``tflm_port/act4.py`` writes
those grids into the .tflite (docs/formats.md section 9).

| class | kind:bits | range | grid (L = 2^k - 1, n = 2^(k-1) - 1) |
|---|---|---|---|
| ``PACTQuantizer`` | pact:k | [0, alpha], alpha trained | q = 0..L, scale alpha / L |
| ``MinMaxActQuantizer`` | minmax:k | [0, m] (or [-m, m] signed), m = EMA of the batch max | q = 0..L (signed: -n..n) |
| ``FixedRangeQuantizer`` | fixed:k | [0, 1] (``unit``) or [-r, r] (``sym``) | q = 0..L, scale 1/L; q = -n..n, scale r/n |

PACT (Choi et al. 2018): y = clip(x, 0, alpha) on the k-bit unsigned grid. The FakeQuant node's
gradient is PACT's: straight-through for 0 <= x <= alpha, and d y / d alpha = 1 where x > alpha; alpha
is a trainable variable (``<name>_alpha``, initial value ``init_alpha``).

API for other models (the LSTM)::

    from training import act_quantizers as aq
    q = aq.quantizer_for(spec, role)      # spec: quant_spec.OperandSpec, role: operand name
    q = aq.FixedRangeQuantizer(bits=8, kind="unit")   # sigmoid gates in [0, 1]
    q = aq.FixedRangeQuantizer(bits=8, kind="sym")    # tanh outputs in [-1, 1]
    q = aq.FixedRangeQuantizer(bits=16, kind="sym", bound=8.0)   # cell state in [-8, 8]
    y = aq.apply(q, x, layer, name, training)          # outside a QuantizeWrapper (builds vars once)
    g = q.grid(vars)                                  # Grid(scale, zero_point, qmin, qmax)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from training import quantizers as qz
from basics.errors import UserError

_tfq = tfmot.quantization.keras.quantizers
CELL_BOUND = 8.0  # default range of a fixed-grid cell state: [-8, 8]
_EXPORT = [False]


@contextlib.contextmanager
def container_export():
    """While active, inference-mode calls (``training=False``) emit an 8-bit FakeQuant whose step equals
    the k-bit grid's step (range [0, 255 * step] or +-127 * step): the TFLite converter has no 4-bit
    activations (it refuses a 4-bit FakeQuant on an FC input), so the .tflite is written with int8
    tensors of the right scale; ``tflm_port/act4.py`` then declares the k-bit grid and clamp."""
    _EXPORT[0] = True
    try:
        yield
    finally:
        _EXPORT[0] = False


def _container(x, grid_step, signed: bool):
    step = tf.stop_gradient(grid_step)
    if signed:
        return tf.quantization.fake_quant_with_min_max_vars(x, -127.0 * step, 127.0 * step, num_bits=8,
                                                            narrow_range=True)
    return tf.quantization.fake_quant_with_min_max_vars(x, tf.zeros_like(step), 255.0 * step, num_bits=8)


@dataclass(frozen=True)
class Grid:
    scale: float
    zero_point: int
    qmin: int
    qmax: int


def _check(bits, lo=2, hi=16, what="activation bits") -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= int(bits) <= hi:
        raise UserError(f"{what}: {bits!r} is not supported, must be {lo}..{hi}")
    return int(bits)


class _ActQuantizer(_tfq.Quantizer):
    name = "act"

    def get_config(self):
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class PACTQuantizer(_ActQuantizer):
    """ReLU output on an unsigned k-bit grid over [0, alpha], alpha learned (k = 2..8)."""

    name = "pact"

    def __init__(self, bits: int = 4, init_alpha: float = 6.0):
        self.bits = _check(bits, 2, 8, "pact bits")
        self.init_alpha = float(init_alpha)

    @property
    def levels(self) -> int:
        return 2 ** self.bits - 1

    def build(self, tensor_shape, name, layer):
        alpha = layer.add_weight(name + "_alpha", initializer=keras.initializers.Constant(self.init_alpha),
                                 trainable=True)
        return {"alpha": alpha}

    def __call__(self, inputs, training, weights, **kwargs):
        a = tf.maximum(weights["alpha"], 1e-3)  # a clip at or below 0 would kill the layer
        if _EXPORT[0] and not training:
            return _container(inputs, a / self.levels, False)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, tf.zeros_like(a), a, num_bits=self.bits,
                                                            narrow_range=False)

    def grid(self, weights) -> Grid:
        a = max(float(np.asarray(weights["alpha"])), 1e-3)
        return Grid(float(np.float32(a) / np.float32(self.levels)), 0, 0, self.levels)

    def get_config(self):
        return {"bits": self.bits, "init_alpha": self.init_alpha}


class MinMaxActQuantizer(_ActQuantizer):
    """Naive uniform quantizer: [0, m] (or [-m, m] when ``signed``) with m the moving average of the
    batch maximum of |x| (decay 0.99, the first batch sets it), k = 2..16."""

    name = "minmax"

    def __init__(self, bits: int = 4, signed: bool = False, decay: float = 0.99):
        self.bits = _check(bits, 2, 16, "minmax bits")
        self.signed = bool(signed)
        self.decay = float(decay)

    def build(self, tensor_shape, name, layer):
        m = layer.add_weight(name + "_max", initializer=keras.initializers.Constant(6.0), trainable=False)
        seen = layer.add_weight(name + "_seen", initializer=keras.initializers.Constant(0.0), trainable=False)
        return {"max_var": m, "seen": seen}

    def __call__(self, inputs, training, weights, **kwargs):
        m = weights["max_var"]
        if training:
            bm = tf.reduce_max(tf.abs(inputs)) if self.signed else tf.reduce_max(inputs)
            bm = tf.maximum(bm, 1e-3)
            new = tf.where(weights["seen"] > 0, self.decay * m + (1 - self.decay) * bm, bm)
            with tf.control_dependencies([m.assign(new), weights["seen"].assign(1.0)]):
                m = tf.identity(new)
        m = tf.stop_gradient(m)
        if _EXPORT[0] and not training:
            n = 2 ** (self.bits - 1) - 1 if self.signed else 2 ** self.bits - 1
            return _container(inputs, m / n, self.signed)
        lo = -m if self.signed else tf.zeros_like(m)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, lo, m, num_bits=self.bits,
                                                            narrow_range=self.signed)

    def grid(self, weights) -> Grid:
        m = np.float32(max(float(np.asarray(weights["max_var"])), 1e-3))
        if self.signed:
            n = 2 ** (self.bits - 1) - 1
            return Grid(float(m / np.float32(n)), 0, -n, n)
        levels = 2 ** self.bits - 1
        return Grid(float(m / np.float32(levels)), 0, 0, levels)

    def get_config(self):
        return {"bits": self.bits, "signed": self.signed, "decay": self.decay}


class FixedRangeQuantizer(_ActQuantizer):
    """A grid on a range known in advance: ``unit`` [0, 1] (sigmoid), unsigned, 2^k - 1 steps;
    ``sym`` [-bound, bound] (tanh: bound 1; a cell state: e.g. 8), symmetric narrow range, 2^(k-1) - 1
    steps each side. No variables; k = 2..16."""

    name = "fixed"

    def __init__(self, bits: int = 8, kind: str = "sym", bound: float = 1.0):
        self.bits = _check(bits, 2, 16, "fixed-range bits")
        if kind not in ("unit", "sym"):
            raise UserError(f"fixed-range kind '{kind}' unknown (unit or sym)")
        if not (np.isfinite(bound) and bound > 0):
            raise UserError(f"fixed-range bound {bound!r} must be finite and > 0")
        self.kind, self.bound = kind, float(bound)

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        if _EXPORT[0] and not training:
            return _container(inputs, tf.constant(self.grid().scale, tf.float32), self.kind == "sym")
        if self.kind == "unit":
            return tf.quantization.fake_quant_with_min_max_args(inputs, 0.0, 1.0, num_bits=self.bits)
        return tf.quantization.fake_quant_with_min_max_args(inputs, -self.bound, self.bound, num_bits=self.bits,
                                                            narrow_range=True)

    def grid(self, weights=None) -> Grid:
        if self.kind == "unit":
            levels = 2 ** self.bits - 1
            return Grid(float(np.float32(1.0) / np.float32(levels)), 0, 0, levels)
        n = 2 ** (self.bits - 1) - 1
        return Grid(float(np.float32(self.bound) / np.float32(n)), 0, -n, n)

    def get_config(self):
        return {"bits": self.bits, "kind": self.kind, "bound": self.bound}


ACT_QUANTIZERS = {"pact": PACTQuantizer, "minmax": MinMaxActQuantizer, "fixed": FixedRangeQuantizer}
# operand -> (unsigned?, bound of a fixed grid)
_ROLE = {"activation": ("unit", 1.0), "gate": ("unit", 1.0), "tanh": ("sym", 1.0), "hidden": ("sym", 1.0),
         "cell": ("sym", CELL_BOUND)}


def quantizer_for(spec, role: str):
    """The Keras quantizer for an operand spec (training/quant_spec.py) of ``role``; ``None`` for the
    8-bit operands the project's existing quantizers handle (input, output, minmax:8 activations)."""
    if role in ("weight", "recurrent_weight"):
        return qz.get_weight_quantizer(spec.kind, spec.bits)
    if role == "input":
        return qz.InputQuantizer8()
    if role == "output" or (role == "activation" and spec.kind == "minmax" and spec.bits == 8):
        return qz.ActivationQuantizer8()
    kind, bound = _ROLE.get(role, ("sym", 1.0))
    if spec.kind == "pact":
        return PACTQuantizer(spec.bits)
    if spec.kind == "minmax":
        return MinMaxActQuantizer(spec.bits, signed=kind == "sym")
    if spec.kind == "fixed":
        return FixedRangeQuantizer(spec.bits, kind, bound)
    raise UserError(f"operand {role}: quantizer '{spec.kind}' unknown")  # quant_spec.parse prevents this


def apply(quantizer, x, layer, name: str, training):
    """Use a quantizer outside a QuantizeWrapper (e.g. inside a custom recurrent cell): its variables
    are built on ``layer`` the first time (cached as ``layer._aq_<name>``)."""
    attr = f"_aq_{name}"
    qvars = getattr(layer, attr, None)
    if qvars is None:
        qvars = quantizer.build(None, name, layer)
        setattr(layer, attr, qvars)
    return quantizer(x, training, qvars)


def bits_of(quantizer) -> int:
    """Activation bits of a quantizer (8 for the project's 8-bit ones)."""
    return int(getattr(quantizer, "bits", 8)) if isinstance(quantizer, _ActQuantizer) else 8


def custom_objects() -> dict:
    return {c.__name__: c for c in ACT_QUANTIZERS.values()}


def mse_clip(values: np.ndarray, bits: int, candidates: int = 64) -> float:
    """The clip c of an unsigned k-bit grid over [0, c] with the least mean squared error on ``values``
    (ReLU outputs, zeros included); candidates are quantiles of the positive values."""
    v = np.asarray(values, np.float64).reshape(-1)
    pos = v[v > 0]
    if pos.size == 0:
        return 1.0
    levels = 2 ** bits - 1
    best = (np.inf, float(pos.max()))
    for c in np.unique(np.quantile(pos, np.linspace(0.5, 1.0, candidates))):
        s = c / levels
        err = np.mean((s * np.clip(np.round(v / s), 0, levels) - v) ** 2)
        if err < best[0]:
            best = (err, float(c))
    return best[1]
