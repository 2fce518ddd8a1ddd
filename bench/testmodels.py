"""Random-weight models for the tests and benchmarks, built through the project's own pipeline:
``training.models`` / plain Keras -> ``training.qat.make_qat_model`` -> ``training.qat.to_tflite`` (the
project's one Keras -> .tflite converter) -> ``tflm_port.convert``; and the reference runtimes they
are compared with (tf.lite, LiteRT, tflite-micro).

Lives beside the benchmarks (the top layer), not in the library: it is test and benchmark material.
Heavy frameworks (TensorFlow, tflite-micro, LiteRT) are imported inside the functions that need them,
so importing this module stays cheap for the tools that only use ``test_inputs``.
"""
from __future__ import annotations

import math

import numpy as np
from training.config import FeatureConfig, ModelConfig, QuantConfig


def calibrate(qat_model, data: np.ndarray, steps: int = 4):
    """Run the model in training mode a few times so the activation ranges are set."""
    for _ in range(steps):
        qat_model(data, training=True)


def mlp_tflite(n_in, hidden, n_out, layer_bits, seed=0, n_cal=256) -> bytes:
    """A tiny k-bit MLP (Dense(relu) x len(hidden) + Dense(linear), one bit width per layer) through
    training's QAT (stage 2: k-bit weights, 8-bit activations), calibrated on N(0, 1) inputs and
    converted by ``training.qat.to_tflite``."""
    import tf_keras as keras  # lazy: TensorFlow only where a model is built

    from training import qat  # lazy: heavy dependency, loaded only when this runs

    assert len(layer_bits) == len(hidden) + 1
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(n_in,))
    x = inp
    for i, units in enumerate(list(hidden) + [n_out]):
        x = keras.layers.Dense(units, activation="relu" if i < len(hidden) else None, name=f"dense_{i}",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
                               bias_initializer=keras.initializers.RandomNormal(stddev=0.5))(x)
    bits = [int(b) for b in layer_bits]
    q = qat.make_qat_model(keras.Model(inp, x), QuantConfig(weight_bits=bits[0], layer_bits=bits), stage=2)
    data = np.random.default_rng(seed).normal(size=(n_cal, n_in)).astype(np.float32)
    calibrate(q, data)
    return qat.to_tflite(q, data, max_samples=64)


_CACHE: dict = {}


def cached_mlp(n_in, hidden, n_out, layer_bits, seed=0) -> bytes:
    """mlp_tflite memoized per process (test files share the built models)."""
    key = (n_in, tuple(hidden), n_out, tuple(layer_bits), seed)
    if key not in _CACHE:
        _CACHE[key] = mlp_tflite(n_in, list(hidden), n_out, list(layer_bits), seed)
    return _CACHE[key]


def random_lstm(units: int, bins: int, frames: int, layers: int = 2, classes: int = 3, seed: int = 0,
                jitter: float = 0.0, rng: np.random.Generator | None = None):
    """A ``build_lstm`` model (training.models, ``model lstm``) with Keras' initial weights at ``seed``;
    ``jitter`` > 0 adds N(0, jitter) noise drawn from ``rng`` to every weight (so the gates and the cell
    see their whole range, not the near-identity start). The caller keeps ``rng`` to draw more from it."""
    import tf_keras as keras  # lazy: TensorFlow only where a model is built

    from training.models import build_model  # lazy: imports TensorFlow

    keras.utils.set_random_seed(seed)
    m = build_model(ModelConfig(name="lstm", lstm_units=units, lstm_layers=layers, dropout=0.0),
                    FeatureConfig(num_mel_bins=bins, context_frames=frames, context_stride=1), classes)
    if jitter > 0:
        for layer in m.layers:
            if layer.weights:
                layer.set_weights([w + rng.normal(0, jitter, w.shape).astype(np.float32) for w in layer.get_weights()])
    return m


def test_inputs(n: int, size: int, zp: int = 0, seed: int = 0) -> np.ndarray:
    """Structured int8 inputs (extremes, zero point, ramps, sparse spikes, +-1 around zp) then random."""
    rng = np.random.default_rng(seed)
    idx = np.arange(size)
    rows = [np.full(size, -128), np.full(size, 127), np.full(size, zp), idx % 256 - 128, 127 - idx % 256,
            np.where(idx % 2, 127, -128), np.clip(zp + (idx % 3) - 1, -128, 127)]
    for v in (-128, 127, 1):
        for j in range(0, size, max(size // 16, 1)):
            r = np.full(size, zp)
            r[j] = v
            rows.append(r)
    x = np.array(rows, dtype=np.int64)[:n]
    small = np.clip(zp + rng.integers(-3, 4, size=(min(n // 10, 1000), size)), -128, 127)
    x = np.concatenate([x, small])
    rest = rng.integers(-128, 128, size=(max(n - len(x), 0), size))
    return np.clip(np.concatenate([x, rest]), -128, 127).astype(np.int8)[:n]


def run_interpreter(interp, x: np.ndarray) -> np.ndarray:
    """tf.lite / LiteRT interpreter, one frame at a time (batch 1 as the model says)."""
    interp.allocate_tensors()
    i = interp.get_input_details()[0]["index"]
    o = interp.get_output_details()[0]["index"]
    out = []
    for row in x:
        interp.set_tensor(i, row[None])
        interp.invoke()
        out.append(interp.get_tensor(o)[0].copy())
    return np.array(out)


def run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    it = tf.lite.Interpreter(model_content=model,
                             experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return run_interpreter(it, x)


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert import interpreter as lrt  # lazy: heavy dependency, loaded only when this runs

    it = lrt.Interpreter(model_content=model,
                         experimental_op_resolver_type=lrt.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    return run_interpreter(it, x)


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime  # lazy: heavy dependency, loaded only when this runs

    m = runtime.Interpreter.from_bytes(model)
    out = []
    for row in x:
        m.set_input(row[None], 0)
        m.invoke()
        out.append(m.get_output(0)[0].copy())
    return np.array(out)


def tiny_dscnn_tflite(frames=8, bins=6, n_out=3, seed=0, softmax=True) -> bytes:
    """A tiny DS-CNN-shaped float model with plain int8 post-training quantization (per-channel conv)."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    from training import qat  # lazy: heavy dependency, loaded only when this runs

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape=(frames * bins,))
    x = keras.layers.Reshape((frames, bins, 1))(inp)
    x = keras.layers.Conv2D(4, (3, 3), strides=(2, 2), padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(6, (1, 1), activation="relu")(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(n_out)(x)
    if softmax:
        x = keras.layers.Softmax()(x)
    model = keras.Model(inp, x)
    rng = np.random.default_rng(seed)
    return qat.to_tflite(model, rng.normal(size=(64, frames * bins)).astype(np.float32), max_samples=64)


def cached_tiny_dscnn() -> bytes:
    if "dscnn" not in _CACHE:
        _CACHE["dscnn"] = tiny_dscnn_tflite()
    return _CACHE["dscnn"]


FFNN_LAYERS = 5  # build_ffnn with the default ModelConfig: 4 hidden Dense + logits


def qat_ffnn(layer_bits, seed: int = 0, hidden_layers: int = 4, hidden_units: int = 128, context_frames: int = 24,
             num_mel_bins: int = 64, n_classes: int = 3, n_cal: int = 256, weight_quantizer: str = "tanh"):
    """Random-weight FFNN through the training pipeline: ``training.models.build_ffnn`` ->
    ``training.qat.make_qat_model(stage=2)`` -> a few training-mode calls on N(0, 1) windows (sets the
    activation ranges) -> ``training.qat.to_tflite``. Defaults give FFNN-250K (1536-128x4-3).

    Returns (qat_model, plain tflite bytes, calibration data). BatchNorm statistics are randomized
    so the folded biases are not all zero."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    from training import qat  # lazy: heavy dependency, loaded only when this runs
    from training.models import build_ffnn  # lazy: heavy dependency, loaded only when this runs

    keras.utils.set_random_seed(seed)
    mcfg = ModelConfig(name="ffnn", hidden_layers=hidden_layers, hidden_units=hidden_units, dropout=0.0)
    fcfg = FeatureConfig(context_frames=context_frames, num_mel_bins=num_mel_bins)
    fm = build_ffnn(mcfg, fcfg, n_classes)
    rng = np.random.default_rng(seed)
    for layer in fm.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c).astype(np.float32), rng.normal(0, 0.3, c).astype(np.float32),
                               rng.normal(0, 0.3, c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)])
    bits = [int(b) for b in (layer_bits if isinstance(layer_bits, (list, tuple)) else [layer_bits] * (hidden_layers + 1))]
    q = qat.make_qat_model(fm, QuantConfig(weight_bits=bits[0], layer_bits=bits, weight_quantizer=weight_quantizer),
                           stage=2)
    data = rng.normal(size=(n_cal, context_frames * num_mel_bins)).astype(np.float32)
    calibrate(q, data, steps=8)
    return q, qat.to_tflite(q, data, max_samples=64), data


def cached_qat_ffnn(layer_bits, seed: int = 0, **kw):
    """qat_ffnn memoized per process: (qat_model, tflite bytes, calibration data)."""
    key = ("qat_ffnn", tuple(layer_bits) if isinstance(layer_bits, (list, tuple)) else layer_bits, seed,
           tuple(sorted(kw.items())))
    if key not in _CACHE:
        _CACHE[key] = qat_ffnn(layer_bits, seed, **kw)
    return _CACHE[key]


def realistic_inputs(n: int, ref, seed: int = 0) -> np.ndarray:
    """N(0, 1) float windows quantized with the model's input scale / zero point (feature-like)."""
    rng = np.random.default_rng(seed)
    return ref.quantize_input(rng.normal(size=(n, int(np.prod(ref.input_shape)))).astype(np.float32))


def random_lstm_a4(bins: int, units: int, layers: int, seed: int = 0, activation_bits: int = 4) -> bytes:
    """A SUB8_LSTM_A4 model (``bins`` in, ``layers`` x ``units``, 3 classes) of random 4-bit integers on the
    tailored preset's grids, gates, cell input, tanh(c) and hidden state at ``activation_bits`` (16-bit
    cell): what a w4a4 (or, at 8, a w4a8) QAT run exports, for the kernel and size benchmarks."""
    from tflm_port import lstm_a4  # lazy: only where this model is built

    rng = np.random.default_rng(seed)
    g, t = 1 / lstm_a4.levels(activation_bits, False), 1 / lstm_a4.levels(activation_bits, True)
    ls, n_in = [], bins
    for _ in range(layers):
        ls.append(lstm_a4.LayerA4(
            w=rng.integers(-7, 8, (4 * units, n_in)), r=rng.integers(-7, 8, (4 * units, units)),
            bias=rng.normal(0, 1.0, 4 * units), s_w=0.9 / 7 / math.sqrt(n_in), s_r=1.2 / 7 / math.sqrt(units),
            s_gates=(g, g, t, g), s_tanh=t, s_cell=8 / 32767, s_h=t, weight_bits=4, gate_bits=activation_bits,
            tanh_bits=activation_bits, hidden_bits=activation_bits, cell_bits=16))
        n_in = units
    return lstm_a4.write_model(ls, (0.03, -3), rng.integers(-7, 8, (3, units)), 0.2 / 7, rng.normal(0, 1, 3),
                               (0.06, 5), {"labels": ["a", "b", "c"]}, "bench")
