"""Quantizers for sub-8-bit QAT (Zeng et al. 2022), as tfmot ``Quantizer`` subclasses.

Each quantizer is one small class, serializable with ``get_config`` and reachable by name through
``QUANTIZERS`` (config files name them: ``quant.weight_quantizer: tanh | linear | sawb``; activation
quantizers below 8 bits live in ``training/act_quantizers.py``).

Weight quantizers (one scale per tensor, symmetric, narrow range, straight-through gradient)::

    y      = T(w)                         T = s_w * tanh(w) / max|tanh(w)|  (tanh, s_w = max|w|)
                                          T = w                              (linear)
    k >= 2: n = 2^(k-1) - 1 levels per side, step = max|y| / n
            q = step * clip(round(y / step), -n, n)
    k == 1: q = a * sign(y),  a = mean|y|,  step = a    (binary {-a, +a}; sign(0) = +1)
    forward q, backward dq/dw = dT/dw  (the rounding is straight-through)

The result then passes through ``tf.quantization.fake_quant_with_min_max_vars`` so the TFLite
converter sees a FakeQuant node and writes the integer weights ``q / step`` with scale ``step``:

    k in 1..4 -> 4-bit FakeQuant, range +-7*step   -> TFLite INT4, integers in [-n, n]
    k in 5..7 -> k-bit FakeQuant, range +-n*step   -> TFLite INT8 on the k-bit grid
                 (needs converter._experimental_low_bit_qat = True; see training/qat.py)
    k == 8    -> 8-bit FakeQuant, range +-127*step -> TFLite INT8

Using a 4-bit FakeQuant whose range is 7 steps for k < 4 is what makes 3-bit exact (a 3-bit
FakeQuant would be re-gridded by the converter to 1/7 steps) and keeps 1/2-bit weights with a zero
zero-point even when the low-bit flag is on for other layers of the same model.

The FakeQuant range lives in two non-trainable variables (``*_min``, ``*_max``) that are updated
from the weights on every training step and read (not recomputed) at inference, like tfmot's
``LastValueQuantizer``: after freezing they are constants, which the converter needs.

Activation and input quantizers are tfmot's own 8-bit asymmetric quantizers with fixed settings
(moving-average min/max for activations, all-values min/max for the model input).

Under a tf.distribute strategy with several replicas (docs/distributed.md) every range variable is
a mirrored variable (synchronization ON_WRITE) with aggregation ONLY_FIRST_REPLICA, and the value
each replica computes is already the same on all of them: weight ranges come from the mirrored
kernels; input and activation ranges from the min/max of the *global* batch (each replica's batch
min/max all-gathered across replicas). So the ranges equal a single worker's on the same global
batch, and are identical on every replica.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from basics.errors import UserError

_tfq = tfmot.quantization.keras.quantizers

MIN_BITS, MAX_BITS = 1, 8


def check_bits(bits, what: str = "weight_bits") -> int:
    """Return ``bits`` as int or raise UserError if it is not an integer in 1..8."""
    try:
        ok = int(bits) == bits and MIN_BITS <= int(bits) <= MAX_BITS
    except (TypeError, ValueError):
        ok = False
    if not ok or isinstance(bits, bool):
        raise UserError(f"{what}: {bits!r} is not supported, must be {MIN_BITS}..{MAX_BITS}")
    return int(bits)


def levels_per_side(bits: int) -> int:
    """Integer levels each side of zero: 2^(k-1)-1 (narrow range); 1 for binary (k=1)."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def container_bits(bits: int) -> int:
    """num_bits of the FakeQuant that carries a k-bit grid to the converter."""
    if bits <= 4:
        return 4
    return bits


@tf.custom_gradient
def _round_ste(x):
    return tf.round(x), lambda dy: dy


@tf.custom_gradient
def _sign_ste(x):
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x)), lambda dy: dy


class _GridWeightQuantizer(_tfq.Quantizer):
    """Shared k-bit symmetric per-tensor weight quantizer; subclasses define ``transform``."""

    name = "grid"

    def __init__(self, bits: int = 4):
        self.bits = check_bits(bits)

    # --- the part that differs between the tanh and the linear quantizer ---
    def transform(self, w):
        raise NotImplementedError

    # --- grid arithmetic ---
    @property
    def n(self) -> int:
        return levels_per_side(self.bits)

    @property
    def range_steps(self) -> int:
        """FakeQuant max expressed in grid steps (2^(c-1)-1 for container bits c)."""
        return 2 ** (container_bits(self.bits) - 1) - 1

    def scale_from_y(self, y):
        """Grid step chosen from the transformed weights (training mode)."""
        if self.bits == 1:
            s = tf.reduce_mean(tf.abs(y))
        else:
            s = tf.reduce_max(tf.abs(y)) / self.n
        return tf.maximum(tf.stop_gradient(s), 1e-12)

    def step(self, weights) -> tf.Tensor:
        """Grid step (= TFLite weight scale) as stored in the quantizer variables."""
        return weights["max_var"] / self.range_steps

    def _snap(self, y, step):
        # straight-through: forward = grid value, d q / d y = 1 (step is a constant here)
        if self.bits == 1:
            return step * _sign_ste(y / step)
        return step * tf.clip_by_value(_round_ste(y / step), -self.n, self.n)

    # --- tfmot Quantizer interface ---
    def build(self, tensor_shape, name, layer):
        init = 1.0 * self.range_steps / max(self.n, 1)
        min_var = layer.add_weight(name + "_min", initializer=keras.initializers.Constant(-init),
                                   trainable=False, aggregation=ONLY_FIRST)
        max_var = layer.add_weight(name + "_max", initializer=keras.initializers.Constant(init),
                                   trainable=False, aggregation=ONLY_FIRST)
        return {"min_var": min_var, "max_var": max_var}

    def __call__(self, inputs, training, weights, **kwargs):
        y = self.transform(inputs)
        if training:
            step = self.scale_from_y(y)
            r = step * self.range_steps
            with tf.control_dependencies([weights["min_var"].assign(-r), weights["max_var"].assign(r)]):
                r = tf.identity(r)
            rmin, rmax = -r, r
        else:
            rmin, rmax = weights["min_var"], weights["max_var"]
            step = rmax / self.range_steps
        q = self._snap(y, tf.stop_gradient(step))
        return tf.quantization.fake_quant_with_min_max_vars(
            q, tf.stop_gradient(rmin), tf.stop_gradient(rmax),
            num_bits=container_bits(self.bits), narrow_range=True)

    def get_config(self):
        return {"bits": self.bits}

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return f"{type(self).__name__}(bits={self.bits})"


class TanhWeightQuantizer(_GridWeightQuantizer):
    """Zeng et al.: tanh(w)/max|tanh(w)|, re-scaled by max|w| so the layer keeps its magnitude."""

    name = "tanh"

    def transform(self, w):
        t = tf.tanh(w)
        m = tf.maximum(tf.stop_gradient(tf.reduce_max(tf.abs(t))), 1e-12)
        s = tf.stop_gradient(tf.reduce_max(tf.abs(w)))
        return t * (s / m)


class LinearWeightQuantizer(_GridWeightQuantizer):
    """Plain symmetric min-max uniform quantizer (ablation): y = w."""

    name = "linear"

    def transform(self, w):
        return tf.identity(w)


# SAWB (Choi et al. 2018/2019, as IBM used for 4-bit LSTMs): clip = c1 * sqrt(E[w^2]) + c2 * E|w|.
# Our own least-squares fit of the MSE-optimal clip of the symmetric narrow k-bit grid over normal,
# Laplace, uniform, logistic and Student-t(5) weights (400k samples each, 600 clip candidates).
SAWB_COEFFS = {2: (2.361, -1.415), 3: (6.956, -6.285), 4: (12.474, -12.490), 5: (18.703, -19.626),
               6: (26.109, -28.197), 7: (34.021, -37.341), 8: (45.171, -50.314)}


class SAWBWeightQuantizer(_GridWeightQuantizer):
    """Statistics-aware weight binning: y = clip(w, -a, a), a from the first and second moments of w
    (``SAWB_COEFFS``; at most max|w|), then the same k-bit grid (step = a / n). k = 1: y = w (binary)."""

    name = "sawb"

    def clip(self, w):
        if self.bits == 1:
            return tf.reduce_max(tf.abs(w))
        c1, c2 = SAWB_COEFFS[self.bits]
        a = c1 * tf.sqrt(tf.reduce_mean(tf.square(w))) + c2 * tf.reduce_mean(tf.abs(w))
        return tf.stop_gradient(tf.clip_by_value(a, 1e-8, tf.reduce_max(tf.abs(w))))

    def transform(self, w):
        if self.bits == 1:
            return tf.identity(w)
        a = self.clip(w)
        return tf.clip_by_value(w, -a, a)  # straight-through inside the clip, 0 outside


ONLY_FIRST = tf.VariableAggregation.ONLY_FIRST_REPLICA
EMA_DECAY = 0.999  # tfmot's MovingAverageQuantizer


def _replicas() -> int:
    return tf.distribute.get_replica_context().num_replicas_in_sync if tf.distribute.get_replica_context() else 1


def global_min_max(x):
    """(min, max) of x over the global batch: each replica's, all-gathered across replicas."""
    m = tf.stack([tf.reduce_min(x), -tf.reduce_max(x)])[None]
    g = tf.reduce_min(tf.distribute.get_replica_context().all_gather(m, axis=0), axis=0)
    return g[0], -g[1]


def _range_weights(layer, name, init_min, init_max):
    return {"min_var": layer.add_weight(name + "_min", initializer=keras.initializers.Constant(init_min),
                                        trainable=False, aggregation=ONLY_FIRST),
            "max_var": layer.add_weight(name + "_max", initializer=keras.initializers.Constant(init_max),
                                        trainable=False, aggregation=ONLY_FIRST)}


class ActivationQuantizer8(_tfq.MovingAverageQuantizer):
    """8-bit asymmetric per-tensor activation quantizer, moving-average min/max (tfmot's; with
    several replicas the batch min/max are the global batch's)."""

    name = "activation_8bit"

    def __init__(self):
        super().__init__(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)

    def build(self, tensor_shape, name, layer):
        return _range_weights(layer, name, -6.0, 6.0)

    def __call__(self, inputs, training, weights, **kwargs):
        if not training or _replicas() == 1:
            return super().__call__(inputs, training, weights, **kwargs)
        bmin, bmax = global_min_max(inputs)
        amin = tf.__internal__.train.assign_moving_average(weights["min_var"], tf.minimum(bmin, 0.0), EMA_DECAY,
                                                           zero_debias=False)
        amax = tf.__internal__.train.assign_moving_average(weights["max_var"], tf.maximum(bmax, 0.0), EMA_DECAY,
                                                           zero_debias=False)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, amin, amax, num_bits=8, narrow_range=False)

    def get_config(self):
        return {}


class InputQuantizer8(_tfq.AllValuesQuantizer):
    """8-bit asymmetric per-tensor model-input quantizer, min/max over all seen (global) batches."""

    name = "input_8bit"

    def __init__(self):
        super().__init__(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)

    def build(self, tensor_shape, name, layer):
        return _range_weights(layer, name, 0.0, 0.0)

    def __call__(self, inputs, training, weights, **kwargs):
        if not training or _replicas() == 1:
            return super().__call__(inputs, training, weights, **kwargs)
        bmin, bmax = global_min_max(inputs)
        rmin = tf.minimum(tf.minimum(weights["min_var"], bmin), 0.0)
        rmax = tf.maximum(tf.maximum(weights["max_var"], bmax), 0.0)
        amin = weights["min_var"].assign(rmin)
        amax = weights["max_var"].assign(rmax)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, amin, amax, num_bits=8, narrow_range=False)

    def get_config(self):
        return {}


WEIGHT_QUANTIZERS = {"tanh": TanhWeightQuantizer, "linear": LinearWeightQuantizer, "sawb": SAWBWeightQuantizer}
QUANTIZERS = {
    **WEIGHT_QUANTIZERS,
    "activation_8bit": ActivationQuantizer8,
    "input_8bit": InputQuantizer8,
}


# ``auto`` (the default): SAWB where the tanh grid collapses, tanh (the paper's) elsewhere. With n = 2^(k-1)-1
# levels per side and step = max|y| / n, a 2-bit tanh grid is ternary with its threshold at max|w| / 2 and a
# 3-bit one puts the step at max|w| / 3, so most weights of a layer become 0: on the dev benchmark the
# 2,2,2,2,8-bit FFNN missed 23 of 80 real keywords with tanh and 0 with SAWB (same float run, README Results).
AUTO_SAWB_BITS = (2, 3)


def resolve_weight_kind(name: str, bits: int) -> str:
    """The concrete weight quantizer ``name`` means at ``bits`` (``auto``: sawb at 2-3 bits, else tanh)."""
    if name == "auto":
        return "sawb" if bits in AUTO_SAWB_BITS else "tanh"
    return name


def get_weight_quantizer(name: str, bits: int) -> _GridWeightQuantizer:
    if name != "auto" and name not in WEIGHT_QUANTIZERS:
        raise UserError(f"quant.weight_quantizer: unknown quantizer '{name}' "
                        f"(known: auto, {', '.join(WEIGHT_QUANTIZERS)})")
    bits = check_bits(bits)
    return WEIGHT_QUANTIZERS[resolve_weight_kind(name, bits)](bits)


def custom_objects() -> dict:
    """Class name -> class, for quantize_scope / model loading."""
    return {c.__name__: c for c in QUANTIZERS.values()}
