"""Properties of the k-bit weight quantizers (training/quantizers.py), k = 1..8."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from training import quantizers as qz
from basics.errors import UserError

ALL_BITS = list(range(1, 9))
KINDS = ["tanh", "linear"]


def _run(quantizer, w: np.ndarray, training=True):
    holder = keras.layers.Layer()
    qvars = quantizer.build(w.shape, "kernel", holder)
    q = quantizer(tf.constant(w), training, qvars)
    return q.numpy(), qvars


def _wide(seed=0, n=40000, lim=2.5):
    # dense enough that every level of an 8-bit grid is hit, also after the tanh squeeze
    return np.random.default_rng(seed).uniform(-lim, lim, size=(n // 100, 100)).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits", ALL_BITS)
def test_levels_symmetry_grid(kind, bits):
    quant = qz.get_weight_quantizer(kind, bits)
    w = _wide(bits)
    q, qvars = _run(quant, w)
    step = float(quant.step(qvars).numpy())
    ints = q / step
    np.testing.assert_allclose(ints, np.round(ints), atol=1e-3)
    ints = np.round(ints).astype(int)
    n = qz.levels_per_side(bits)
    assert np.abs(ints).max() == n  # the top level is used (max maps to the top)
    expected_levels = 2 if bits == 1 else 2 ** bits - 1
    assert len(np.unique(ints)) == expected_levels
    if bits == 1:
        assert set(np.unique(ints)) == {-1, 1}
        np.testing.assert_allclose(step, np.abs(quant.transform(tf.constant(w)).numpy()).mean(), rtol=1e-5)
    else:
        np.testing.assert_allclose(step * n, np.abs(quant.transform(tf.constant(w)).numpy()).max(), rtol=1e-6)
    # symmetry: Q(-w) = -Q(w)
    q_neg, _ = _run(quant, -w)
    np.testing.assert_array_equal(q_neg, -q)
    # FakeQuant range = container grid in the same step
    assert float(qvars["max_var"].numpy()) == pytest.approx(step * quant.range_steps, rel=1e-6)
    assert float(qvars["min_var"].numpy()) == -float(qvars["max_var"].numpy())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits", ALL_BITS)
def test_idempotent_once_scaled_and_eval_matches_training(kind, bits):
    quant = qz.get_weight_quantizer(kind, bits)
    w = np.random.default_rng(10 + bits).normal(0, 0.3, size=(64, 32)).astype(np.float32)
    holder = keras.layers.Layer()
    qvars = quant.build(w.shape, "kernel", holder)
    q_train = quant(tf.constant(w), True, qvars).numpy()
    q_eval = quant(tf.constant(w), False, qvars).numpy()
    np.testing.assert_array_equal(q_train, q_eval)
    # the quantized tensor is a fixed point of the plain grid quantizer of the same width
    again, _ = _run(qz.LinearWeightQuantizer(bits), q_train)
    np.testing.assert_allclose(again, q_train, rtol=1e-6, atol=0)
    # and of itself, for the linear quantizer
    if kind == "linear":
        again2, _ = _run(quant, q_train)
        np.testing.assert_allclose(again2, q_train, rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits", ALL_BITS)
def test_straight_through_gradient(kind, bits):
    quant = qz.get_weight_quantizer(kind, bits)
    rng = np.random.default_rng(20 + bits)
    w = tf.Variable(rng.normal(0, 0.5, size=(32, 16)).astype(np.float32))
    c = tf.constant(rng.normal(size=(32, 16)).astype(np.float32))
    holder = keras.layers.Layer()
    qvars = quant.build(w.shape, "kernel", holder)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quant(w, True, qvars) * c)
    grad = tape.gradient(loss, w).numpy()
    if kind == "linear":
        expected = c.numpy()  # d q / d w = 1 everywhere inside [-max|w|, max|w|] (= everywhere)
    else:
        wn = w.numpy()
        s, m = np.abs(wn).max(), np.abs(np.tanh(wn)).max()
        expected = c.numpy() * (s / m) * (1 - np.tanh(wn) ** 2)  # rounding passes gradient 1
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_linear_gradient_is_one_inside_range():
    quant = qz.LinearWeightQuantizer(4)
    w = tf.Variable(np.linspace(-1, 1, 101, dtype=np.float32).reshape(1, -1))
    qvars = quant.build(w.shape, "kernel", keras.layers.Layer())
    with tf.GradientTape() as tape:
        q = quant(w, True, qvars)
    np.testing.assert_array_equal(tape.gradient(q, w).numpy(), np.ones((1, 101), np.float32))


@pytest.mark.parametrize("bad", [0, 9, -1, 16, 2.5, None, "4", True])
def test_unsupported_bits(bad):
    with pytest.raises(UserError, match=r"weight_bits: .*must be 1\.\.8"):
        qz.TanhWeightQuantizer(bad)
    with pytest.raises(UserError, match=r"must be 1\.\.8"):
        qz.get_weight_quantizer("linear", bad)


def test_unknown_quantizer_name():
    with pytest.raises(UserError, match="weight_quantizer.*bogus"):
        qz.get_weight_quantizer("bogus", 4)


@pytest.mark.parametrize("name", sorted(qz.QUANTIZERS))
def test_registry_and_config_roundtrip(name):
    cls = qz.QUANTIZERS[name]
    obj = cls(3) if name in qz.WEIGHT_QUANTIZERS else cls()
    cfg = obj.get_config()
    again = cls.from_config(cfg)
    assert type(again) is cls and again.get_config() == cfg
    ser = keras.utils.serialize_keras_object(obj)
    back = keras.utils.deserialize_keras_object(ser, module_objects=qz.custom_objects())
    assert type(back) is cls and back.get_config() == cfg


def test_container_bits():
    assert [qz.container_bits(k) for k in ALL_BITS] == [4, 4, 4, 4, 5, 6, 7, 8]
    assert [qz.levels_per_side(k) for k in ALL_BITS] == [1, 1, 3, 7, 15, 31, 63, 127]


@pytest.mark.parametrize("bits", ALL_BITS)
def test_auto_is_sawb_at_2_and_3_bits_and_tanh_elsewhere(bits):
    quant = qz.get_weight_quantizer("auto", bits)
    assert type(quant) is (qz.SAWBWeightQuantizer if bits in (2, 3) else qz.TanhWeightQuantizer)
    assert quant.bits == bits


@pytest.mark.parametrize("bits", [2, 3])
def test_auto_keeps_gaussian_weights_alive_where_the_tanh_grid_zeroes_them(bits):
    # trained Dense weights are near-Gaussian with a few large ones; the tanh grid's step is max|w|/n,
    # so at 2-3 bits most of them round to 0 (why `auto` switches to SAWB there)
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((256, 128)) * 0.05).astype(np.float32)
    w[0, :4] = 0.5
    zeros = {k: float(np.mean(_run(qz.get_weight_quantizer(k, bits), w)[0] == 0)) for k in ("tanh", "auto")}
    assert zeros["tanh"] > 0.8
    assert zeros["auto"] < 0.6
