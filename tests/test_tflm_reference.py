"""The numpy reference is bit-exact with TFLite Micro (rounding="tflm") and with tf.lite / LiteRT builtin
kernels (rounding="tflite"); fused requantization and exact float matmul vs plain integer arithmetic."""
import numpy as np
import pytest

from bench import testmodels as qt
from tflm_port.convert import convert
from tflm_port.reference import Reference, multiply_by_quantized_multiplier, quantize_multiplier

N = 10_000


@pytest.fixture(scope="module")
def models():
    src4 = qt.cached_mlp(64, [32, 32], 4, [4, 4, 8])
    return {"int4": convert(src4, [4, 4, 8], "auto"), "int8": convert(src4, [4, 4, 8], "container")}


def _inputs(ref):
    return qt.test_inputs(N, int(np.prod(ref.input_shape)), ref.input_quant[1], seed=1)


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_bit_exact_with_tflite_micro(models, kind):
    ref = Reference.from_bytes(models[kind])
    x = _inputs(ref)
    assert len(x) >= 10_000
    y = ref.run(x)
    assert int((qt.run_tflm(models[kind], x) != y).sum()) == 0


@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_bit_exact_with_tflite_builtin_kernels(models, kind):
    """tf.lite and LiteRT (BUILTIN_WITHOUT_DEFAULT_DELEGATES) equal rounding="tflite" on every byte: FC
    multiplier from the float32 product s_in*s_w and final-shift ties toward +infinity."""
    ref = Reference.from_bytes(models[kind], rounding="tflite")
    x = _inputs(ref)
    y = ref.run(x)
    assert int((qt.run_tflite(models[kind], x) != y).sum()) == 0
    assert int((qt.run_litert(models[kind], x) != y).sum()) == 0


def test_the_two_flavours_differ_on_this_model(models):
    """Guard that the exactness tests above can fail: TFLM and tf.lite disagree on some bytes."""
    x = _inputs(Reference.from_bytes(models["int8"]))
    a = Reference.from_bytes(models["int8"]).run(x)
    b = Reference.from_bytes(models["int8"], rounding="tflite").run(x)
    assert int((a != b).sum()) > 0


def test_int4_and_int8_container_agree(models):
    a, b = Reference.from_bytes(models["int4"]), Reference.from_bytes(models["int8"])
    x = _inputs(a)
    np.testing.assert_array_equal(a.run(x), b.run(x))


def test_quantize_multiplier_and_rounding():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.0) == (0, 0)
    m, s = quantize_multiplier(0.75)
    assert (m, s) == (3 << 29, 0)
    # M = 0.25 as (2^30, shift -1): the high multiply rounds first (1 * 0.5 -> 1), then the shift
    # (0.5 -> 1): double rounding, as TFLite's reference kernels do. Ties go away from zero.
    x = np.array([1, 2, -2, 3, -3], np.int64)
    np.testing.assert_array_equal(multiply_by_quantized_multiplier(x, 1 << 30, -1), [1, 1, -1, 1, -1])
    from tflm_port.reference import multiply_by_quantized_multiplier_tieup
    np.testing.assert_array_equal(multiply_by_quantized_multiplier_tieup(x, 1 << 30, -1), [1, 1, 0, 1, 0])


def test_io_helpers(models):
    ref = Reference.from_bytes(models["int4"])
    s, zp = ref.input_quant
    q = ref.quantize_input(np.array([[0.0] * 64, [1e6] * 64], np.float32))
    assert q.dtype == np.int8 and q[0, 0] == zp and q[1, 0] == 127
    y = ref.run(q)
    assert y.shape == (2, 4) and y.dtype == np.int8
    f = ref.dequantize_output(y)
    so, zo = ref.output_quant
    np.testing.assert_allclose(f, (y.astype(np.float32) - zo) * so)


def test_dscnn_like_ops_bit_exact_with_tflite_micro():
    """CONV_2D, DEPTHWISE_CONV_2D (per-channel), AVERAGE_POOL_2D, RESHAPE, FC, SOFTMAX vs TFLM."""
    data = qt.cached_tiny_dscnn()
    ref = Reference.from_bytes(data)
    x = qt.test_inputs(2000, int(np.prod(ref.input_shape)), ref.input_quant[1], seed=3)
    assert int((qt.run_tflm(data, x) != ref.run(x)).sum()) == 0


def test_fused_requant_equals_two_step_definition():
    """Requant (one multiply-add-shift on |acc|) == SRDHM + RoundingDivideByPOT (tflm) and SRDHM +
    ties-up shift (tflite) for random accumulators, exact ties, both signs, shifts -31..+3."""
    from tflm_port.reference import Requant, multiply_by_quantized_multiplier_tieup

    rng = np.random.default_rng(0)
    for shift in list(range(-31, 4)):
        for mult in (1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31)), 3 << 29):
            lim = (1 << 31) >> max(shift, 0) >> 1
            acc = np.concatenate([rng.integers(-lim, lim, 4000), np.arange(-300, 300),
                                  (np.arange(-40, 40) << max(-shift, 0)) // 2]).astype(np.int64)
            acc = acc[np.abs(acc) < lim]  # int32 accumulators (left-shifted ones too)
            for rounding, f in (("tflm", multiply_by_quantized_multiplier), ("tflite", multiply_by_quantized_multiplier_tieup)):
                want = f(acc.copy(), np.int64(mult), np.int64(shift))
                rq = Requant(mult, shift, rounding)
                np.testing.assert_array_equal(rq.signed(acc.copy()), want, err_msg=f"{rounding} {mult} {shift}")
                pos = acc[acc >= 0]
                np.testing.assert_array_equal(rq.nonneg(pos.copy()), f(pos.copy(), np.int64(mult), np.int64(shift)))


@pytest.mark.parametrize("rounding", ["tflm", "tflite"])
@pytest.mark.parametrize("wmax,zp_in,relu", [(127, -3, True), (127, 5, False), (7, 0, True), (1, -128, False)])
def test_fc_forward_exact_vs_int64(rounding, wmax, zp_in, relu):
    """The float BLAS product (float32 chunks, float64 sums) equals int64 arithmetic, also when full-range
    int8 weights force several float32 chunks."""
    from tflm_port.reference import ROUNDING, FullyConnected

    rng = np.random.default_rng(wmax)
    w = rng.integers(-wmax, wmax + 1, size=(37, 1536))
    if wmax == 127:  # large magnitudes: 128 * sum|w| > 2^24 needs several float32 chunks
        w = np.where(w < 0, -1, 1) * rng.integers(90, 128, size=w.shape)
    w = w.astype(np.int8)
    bias = rng.integers(-200000, 200000, 37).astype(np.int32)
    zp_out = -5
    amin = zp_out if relu else -128
    fc = FullyConnected(w, bias, 0.05, zp_in, 0.01, 2.0, zp_out, amin, 127, [0], [1], (37,), rounding)
    if wmax == 127:
        assert len(fc.parts) > 1 or fc.dtype == np.float64
    x = np.concatenate([np.full((1, 1536), -128), np.full((1, 1536), 127),
                        rng.integers(-128, 128, size=(3000, 1536))]).astype(np.int8)
    acc = (x.astype(np.int64) - zp_in) @ w.astype(np.int64).T + bias
    want = np.clip(ROUNDING[rounding](acc, fc.mult, fc.shift) + zp_out, amin, 127)
    np.testing.assert_array_equal(fc.forward(x.astype(np.float32)), want)


def test_threads_and_block_boundaries_do_not_change_results(models):
    ref = Reference.from_bytes(models["int4"])
    x = _inputs(ref)[:2500]
    y = ref.run(x)
    np.testing.assert_array_equal(ref.run(x, threads=2), y)
    np.testing.assert_array_equal(np.concatenate([ref.run(x[:1]), ref.run(x[1:777]), ref.run(x[777:])]), y)


def test_posteriors(models):
    ref = Reference.from_bytes(models["int4"])
    xf = np.random.default_rng(5).normal(size=(300, 64)).astype(np.float32)
    p = ref.posteriors(xf)
    assert p.shape == (300, 4) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    z = ref.dequantize_output(ref.run(ref.quantize_input(xf))).astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-6)
    assert ref.posteriors(xf[:0]).shape == (0, 4)


def test_input_quantization_rounds_half_away_exactly():
    from tflm_port.reference import quantize_f32, round_half_away

    v = np.array([0.49999997, 0.5, -0.5, 1.5, 2.5, -2.5, -0.49999997, 2.4999998, -3.5000002, 126.5, -127.5], np.float32)
    np.testing.assert_array_equal(round_half_away(v), [0, 1, -1, 2, 3, -3, 0, 2, -4, 127, -128])
    x = np.random.default_rng(1).normal(size=200_000).astype(np.float32) * 50
    q = (x / np.float32(0.37)).astype(np.float64)  # the float32 quotient, then exact rounding in float64
    want = np.clip(np.sign(q) * np.floor(np.abs(q) + 0.5) + 3, -128, 127)
    np.testing.assert_array_equal(quantize_f32(x, 0.37, 3), want)


def test_dscnn_like_ops_bit_exact_with_tflite_builtin_kernels():
    """CONV_2D, DEPTHWISE_CONV_2D (per-channel: double-product multipliers in both runtimes),
    AVERAGE_POOL_2D, RESHAPE, FC (float32 product), SOFTMAX vs tf.lite and LiteRT builtin kernels."""
    data = qt.cached_tiny_dscnn()
    ref = Reference.from_bytes(data, rounding="tflite")
    x = qt.test_inputs(3000, int(np.prod(ref.input_shape)), ref.input_quant[1], seed=3)
    y = ref.run(x)
    assert int((qt.run_tflite(data, x) != y).sum()) == 0
    assert int((qt.run_litert(data, x) != y).sum()) == 0


def test_posteriors_from_frames_equals_windows(models):
    from training.features import stack_context

    ref = Reference.from_bytes(models["int4"])
    frames = np.random.default_rng(6).normal(size=(1500, 8)).astype(np.float32)
    for context, stride in ((8, 1), (8, 3)):
        np.testing.assert_array_equal(ref.posteriors_from_frames(frames, context, stride),
                                      ref.posteriors(stack_context(frames, context, stride)))
    assert ref.posteriors_from_frames(frames[:5], 8, 3).shape == (0, 4)
