"""Two-stage sub-8-bit QAT (Zeng et al. 2022) on tf_keras models with tfmot.

Stage 1: only the Dense/Conv kernels are quantized (k-bit tanh or linear weight quantizer).
Stage 2: kernels + 8-bit activations (inside each Dense/Conv layer, after its activation) + an
8-bit quantize layer on the model input. Biases are left float in Keras; the TFLite converter
quantizes them to int32 with scale = input scale x weight scale.

Public API (used by training/train.py):

* ``fold_batchnorm(model)``: Dense/Conv(+BN)(+ReLU) -> one layer with bias and activation="relu";
  Dropout removed.
* ``make_qat_model(float_model, qcfg, stage)``: fold, annotate, ``quantize_apply``.
* ``transfer_weights(src_qat_model, dst_qat_model)``: stage-1 weights -> stage-2 model.
* ``layer_bits(qat_model)``: weight bits per Dense/Conv layer, graph order.
* ``fake_quant_weights(qat_model)``: [(int8 integer weights, scale)] per Dense/Conv layer.
* ``to_tflite(qat_model, representative_data)``: int8-in/int8-out TFLite flatbuffer.
* ``compile_for_stage(model, lr)``: Adam + sparse CE from logits + accuracy.
* ``sync_weight_ranges(qat_model)`` / ``SyncWeightRanges`` callback: weight FakeQuant ranges
  = current kernels (training leaves them one optimizer step behind).

See docs/quantization.md.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer
from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import QuantizeWrapper

from training import act_quantizers as aq
from training import quant_spec
from training import quantizers as qz
from training.quant_lstm import QuantLSTM
from basics.errors import UserError

_tmq = tfmot.quantization.keras

WEIGHT_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
PASS_THROUGH_LAYERS = (keras.layers.Reshape, keras.layers.Flatten, keras.layers.AveragePooling2D,
                       keras.layers.MaxPooling2D, keras.layers.GlobalAveragePooling2D)
SUPPORTED_ACTIVATIONS = ("linear", "relu")


def _is_weight_layer(layer) -> bool:
    return type(layer) in WEIGHT_LAYERS


def _kernel_attr(layer) -> str:
    return "depthwise_kernel" if isinstance(layer, keras.layers.DepthwiseConv2D) else "kernel"


def _act_name(layer) -> str:
    return keras.activations.serialize(layer.activation)


# --------------------------------------------------------------------------------------------
# BatchNorm folding
# --------------------------------------------------------------------------------------------

def _chain(model: keras.Model) -> list:
    """The model's non-input layers in order; UserError unless it is one single-input chain."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"model '{model.name}': only single-input, single-output models can be quantized")
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    prev = model.layers[0]
    for layer in layers:
        nodes = [n for n in layer._inbound_nodes if n.inbound_layers is not None]  # noqa: SLF001
        inbound = tf.nest.flatten(nodes[0].inbound_layers) if len(nodes) == 1 else []
        if len(inbound) != 1 or inbound[0] is not prev:
            raise UserError(f"layer '{layer.name}': only plain layer chains can be quantized "
                            f"(expected input from '{prev.name}')")
        prev = layer
    return layers


def _relu_equivalent(layer) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return (layer.max_value is None and float(layer.negative_slope) == 0.0
                and float(layer.threshold) == 0.0)
    if isinstance(layer, keras.layers.Activation):
        return _act_name(layer) == "relu"
    return False


def _bn_factors(bn: keras.layers.BatchNormalization, channels: int):
    axis = bn.axis[0] if isinstance(bn.axis, (list, tuple)) else bn.axis
    if len(bn.axis if isinstance(bn.axis, (list, tuple)) else [axis]) != 1 or axis not in (-1, len(bn.input_shape) - 1):
        raise UserError(f"layer '{bn.name}': only BatchNormalization over the last axis can be folded")
    gamma = bn.gamma.numpy() if bn.scale else np.ones(channels, np.float32)
    beta = bn.beta.numpy() if bn.center else np.zeros(channels, np.float32)
    g = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    return g.astype(np.float64), beta.astype(np.float64), bn.moving_mean.numpy().astype(np.float64)


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """Inference-equivalent model: BN folded into the preceding Dense/Conv, ReLU inside it.

    Dense/Conv2D/DepthwiseConv2D (linear activation) [-> BatchNormalization] [-> ReLU] becomes one
    layer with a bias and activation "relu" (or linear), keeping the Dense/Conv layer's name.
    Dropout layers are dropped. Other layers are copied with their weights.
    """
    layers = _chain(model)
    inp_layer = model.layers[0]
    x = inp = keras.Input(shape=model.input_shape[1:], dtype=model.inputs[0].dtype, name=inp_layer.name)
    i = 0
    while i < len(layers):
        layer = layers[i]
        i += 1
        if isinstance(layer, keras.layers.Dropout):
            continue
        if not (_is_weight_layer(layer) and _act_name(layer) == "linear"):
            new = type(layer).from_config(layer.get_config())
            x = new(x)
            new.set_weights(layer.get_weights())
            continue
        kernel = getattr(layer, _kernel_attr(layer)).numpy().astype(np.float64)
        channels = kernel.shape[-1] * (kernel.shape[-2] if isinstance(layer, keras.layers.DepthwiseConv2D) else 1)
        bias = layer.bias.numpy().astype(np.float64) if layer.use_bias else np.zeros(channels)
        activation = "linear"
        while i < len(layers) and isinstance(layers[i], keras.layers.Dropout):
            i += 1
        if i < len(layers) and isinstance(layers[i], keras.layers.BatchNormalization):
            g, beta, mean = _bn_factors(layers[i], channels)
            if isinstance(layer, keras.layers.DepthwiseConv2D):  # kernel (h, w, in, mult)
                kernel = kernel * g.reshape(kernel.shape[-2], kernel.shape[-1])
            else:
                kernel = kernel * g
            bias = (bias - mean) * g + beta
            i += 1
        while i < len(layers) and isinstance(layers[i], keras.layers.Dropout):
            i += 1
        if i < len(layers) and _relu_equivalent(layers[i]):
            activation = "relu"
            i += 1
        cfg = layer.get_config()
        cfg.update(use_bias=True, activation=activation)
        new = type(layer).from_config(cfg)
        x = new(x)
        new.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return keras.Model(inp, x, name=f"{model.name}_folded")


# --------------------------------------------------------------------------------------------
# QuantizeConfigs
# --------------------------------------------------------------------------------------------

class WeightLayerQuantizeConfig(_tmq.QuantizeConfig):
    """Dense/Conv2D/DepthwiseConv2D: k-bit kernel; optionally the quantized output of the activation
    (``activation_quantizer``; default the 8-bit moving-average one)."""

    def __init__(self, weight_quantizer, quantize_activation: bool = False, activation_quantizer=None):
        if isinstance(weight_quantizer, dict):  # from get_config
            weight_quantizer = keras.utils.deserialize_keras_object(
                weight_quantizer, module_objects=qz.custom_objects())
        if isinstance(activation_quantizer, dict):
            activation_quantizer = keras.utils.deserialize_keras_object(
                activation_quantizer, module_objects={**qz.custom_objects(), **aq.custom_objects()})
        self.weight_quantizer = weight_quantizer
        self.quantize_activation = bool(quantize_activation)
        self.activation_quantizer = activation_quantizer

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, _kernel_attr(layer)), self.weight_quantizer)]

    def get_activations_and_quantizers(self, layer):
        if not self.quantize_activation:
            return []
        return [(layer.activation, self.activation_quantizer or qz.ActivationQuantizer8())]

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, _kernel_attr(layer), quantize_weights[0])

    def set_quantize_activations(self, layer, quantize_activations):
        if self.quantize_activation:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        cfg = {"weight_quantizer": keras.utils.serialize_keras_object(self.weight_quantizer),
               "quantize_activation": self.quantize_activation}
        if self.activation_quantizer is not None:
            cfg["activation_quantizer"] = keras.utils.serialize_keras_object(self.activation_quantizer)
        return cfg


class PassThroughQuantizeConfig(_tmq.QuantizeConfig):
    """Reshape/Flatten/pooling: nothing to quantize (TFLite keeps the input scale)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


class _IdentityLayout(_tmq.QuantizeLayoutTransform):
    def apply(self, model, layer_quantize_map):
        return model, layer_quantize_map


class _ExplicitOnlyRegistry(_tmq.QuantizeRegistry):
    def supports(self, layer):
        return False

    def get_quantize_config(self, layer):
        raise UserError(f"layer '{layer.name}' ({type(layer).__name__}) has no quantize config")


class _Scheme(_tmq.QuantizeScheme):
    """Every layer carries an explicit config; no tfmot layout transforms (BN is folded already)."""

    def get_layout_transformer(self):
        return _IdentityLayout()

    def get_quantize_registry(self):
        return _ExplicitOnlyRegistry()


def custom_objects() -> dict:
    return {**qz.custom_objects(), **aq.custom_objects(), "WeightLayerQuantizeConfig": WeightLayerQuantizeConfig,
            "PassThroughQuantizeConfig": PassThroughQuantizeConfig, "QuantLSTM": QuantLSTM}


# --------------------------------------------------------------------------------------------
# Building QAT models
# --------------------------------------------------------------------------------------------

def _bits_per_layer(qcfg, n_layers: int) -> list[int]:
    bits = list(qcfg.layer_bits or [])
    if not bits:
        return [qz.check_bits(qcfg.weight_bits, "quant.weight_bits")] * n_layers
    if len(bits) != n_layers:
        raise UserError(f"quant.layer_bits: {len(bits)} entries given, the model has {n_layers} "
                        f"Dense/Conv layers")
    return [qz.check_bits(b, f"quant.layer_bits[{i}]") for i, b in enumerate(bits)]


def _weight_wrappers(qat_model):
    return [l for l in qat_model.layers
            if isinstance(l, QuantizeWrapper) and isinstance(l.quantize_config, WeightLayerQuantizeConfig)]


def sync_weight_ranges(qat_model) -> None:
    """Set every weight quantizer's FakeQuant range from the current kernel.

    Training updates the range in the forward pass, i.e. before the optimizer step of that batch,
    so after ``fit`` the stored range lags the kernel by one step. ``to_tflite`` and
    ``fake_quant_weights`` call this first; call it (or use ``SyncWeightRanges``) before
    evaluating a freshly trained QAT model in Keras so Keras evaluates what gets exported.
    """
    for wrapper in _weight_wrappers(qat_model):
        for weight, quantizer, qvars in wrapper._weight_vars:  # noqa: SLF001
            quantizer(weight, True, qvars)


class SyncWeightRanges(keras.callbacks.Callback):
    """``model.fit(..., callbacks=[SyncWeightRanges()])``: weight ranges match kernels after each epoch."""

    def on_epoch_end(self, epoch, logs=None):
        sync_weight_ranges(self.model)


def make_qat_model(float_model: keras.Model, qcfg, stage: int) -> keras.Model:
    """Fold BN, then wrap every layer for QAT stage 1 (weights) or 2 (weights + 8-bit acts/input)."""
    if stage not in (1, 2):
        raise UserError(f"QAT stage must be 1 or 2, got {stage!r}")
    folded = fold_batchnorm(float_model)
    layers = [l for l in folded.layers if not isinstance(l, keras.layers.InputLayer)]
    for layer in layers:
        if _is_weight_layer(layer):
            if _act_name(layer) not in SUPPORTED_ACTIVATIONS:
                raise UserError(f"layer '{layer.name}': activation '{_act_name(layer)}' cannot be "
                                f"quantized (supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
        elif not isinstance(layer, PASS_THROUGH_LAYERS):
            raise UserError(f"layer '{layer.name}' ({type(layer).__name__}) has no quantize config "
                            f"(supported: Dense, Conv2D, DepthwiseConv2D + BatchNormalization/ReLU/"
                            f"Dropout to fold, Reshape, Flatten, pooling)")
    n_weight = sum(_is_weight_layer(l) for l in layers)
    bits = iter(_bits_per_layer(qcfg, n_weight))
    specs = quant_spec.resolve(qcfg, "quant")  # the quantizer of every operand (preset + overrides)
    last_weight = [l for l in layers if _is_weight_layer(l)][-1] if n_weight else None

    inp = keras.Input(shape=folded.input_shape[1:], dtype=folded.inputs[0].dtype, name=folded.layers[0].name)
    x = inp
    if stage == 2:
        x = QuantizeLayer(qz.InputQuantizer8(), name="quantize_input")(x)
    for layer in layers:
        if _is_weight_layer(layer):
            role = "output" if layer is last_weight else "activation"
            if role == "activation" and _act_name(layer) != "relu" and specs["activation"].bits < 8:
                raise UserError(f"layer '{layer.name}': {specs['activation'].bits}-bit activations need a ReLU "
                                f"(the unsigned grid); its activation is '{_act_name(layer)}'")
            act_q = aq.quantizer_for(specs[role], role) if stage == 2 else None
            cfg = WeightLayerQuantizeConfig(qz.get_weight_quantizer(specs["weight"].kind, next(bits)),
                                            quantize_activation=stage == 2,
                                            activation_quantizer=None if isinstance(act_q, qz.ActivationQuantizer8)
                                            else act_q)
        else:
            cfg = PassThroughQuantizeConfig()
        x = _tmq.quantize_annotate_layer(layer, cfg)(x)
    annotated = keras.Model(inp, x, name=f"{float_model.name}_qat{stage}")
    with _tmq.quantize_scope(custom_objects()):
        qat = _tmq.quantize_apply(annotated, scheme=_Scheme())
    sync_weight_ranges(qat)
    return qat


def transfer_weights(src_qat_model: keras.Model, dst_qat_model: keras.Model) -> int:
    """Copy every weight of src into the same-named layer/variable of dst; return how many.

    Kernels, biases and weight-quantizer ranges go from a stage-1 model to a stage-2 model;
    the stage-2 activation/input ranges (absent in stage 1) keep their initial values.
    """
    src_layers = {l.name: l for l in src_qat_model.layers}
    copied = 0
    for dst in dst_qat_model.layers:
        src = src_layers.get(dst.name)
        if src is None:
            continue
        src_w = {_rel_name(v, src): v for v in src.weights}
        for v in dst.weights:
            s = src_w.get(_rel_name(v, dst))
            if s is not None and tuple(s.shape) == tuple(v.shape):
                v.assign(s)
                copied += 1
    n_dst = len(_weight_wrappers(dst_qat_model))
    if copied < 2 * n_dst:
        raise UserError(f"transfer_weights: only {copied} variables matched between "
                        f"'{src_qat_model.name}' and '{dst_qat_model.name}'")
    return copied


def _rel_name(var, layer) -> str:
    # variable scopes differ between separately built models ("quantize_annotate_3/kernel"), the
    # last path component ("kernel", "bias", "kernel_max", "post_activation_min") is unique per layer
    return var.name.split(":")[0].rsplit("/", 1)[-1]


def layer_bits(qat_model: keras.Model) -> list[int]:
    return [w.quantize_config.weight_quantizer.bits for w in _weight_wrappers(qat_model)]


def fake_quant_weights(qat_model: keras.Model) -> list[tuple[np.ndarray, float]]:
    """(integer weights as int8, per-tensor scale) per Dense/Conv layer, as used at inference.

    The Keras kernel after fake quantization equals ``ints * scale`` (to float rounding).
    """
    sync_weight_ranges(qat_model)
    out = []
    for wrapper in _weight_wrappers(qat_model):
        weight, quantizer, qvars = wrapper._weight_vars[0]  # noqa: SLF001
        q = quantizer(weight, False, qvars).numpy().astype(np.float64)
        scale = float(quantizer.step(qvars).numpy())
        ints = np.round(q / scale)
        n = qz.levels_per_side(quantizer.bits)
        assert np.all(np.abs(ints) <= n), (wrapper.name, np.abs(ints).max(), n)
        err = np.abs(q - ints * scale).max() / scale if q.size else 0.0
        assert err < 1e-3, (wrapper.name, err)
        out.append((ints.astype(np.int8), scale))
    return out


# --------------------------------------------------------------------------------------------
# Conversion and compilation
# --------------------------------------------------------------------------------------------

def to_tflite(qat_model: keras.Model, representative_data: np.ndarray, max_samples: int = 200,
              float_io: bool = False) -> bytes:
    """Convert to a full-integer TFLite model (int8 input/output, batch 1). A float Keras model is
    quantized post-training on representative_data. ``float_io``: float32 input and output around the
    int8 graph (QUANTIZE / DEQUANTIZE at the ends; the firmware tests' float-I/O case)."""
    data = np.asarray(representative_data, dtype=np.float32)
    if data.ndim < 2 or len(data) == 0:
        raise UserError("to_tflite: representative_data must be a non-empty batch of model inputs")
    sync_weight_ranges(qat_model)
    spec = tf.TensorSpec([1, *qat_model.input_shape[1:]], tf.float32, name="input")
    fn = tf.function(lambda x: qat_model(x, training=False))
    concrete = fn.get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(min(len(data), max_samples)):
            yield [data[i:i + 1]]

    converter.representative_dataset = rep
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    converter = _configure(converter)
    return converter.convert()


def _configure(converter):
    """Hook for tests; sets the low-bit QAT flag (see docs/quantization.md)."""
    converter._experimental_low_bit_qat = True  # noqa: SLF001
    return converter


def to_float_tflite(model: keras.Model) -> bytes:
    """The float Keras model as a float32 .tflite (batch 1, no quantization): the float companion of
    ``to_tflite`` (ship's float model, the benchmarks' float baseline)."""
    spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32, name="input")
    fn = tf.function(lambda x: model(x, training=False), autograph=False)
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function(spec)], model).convert()


def compile_for_stage(model: keras.Model, lr: float) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def calibrate_pact(float_acts_model, qat_model, x: np.ndarray, max_rows: int = 2048) -> list[float]:
    """Start every PACT clip of ``qat_model`` (stage 2) at the MSE-optimal clip of its layer's ReLU outputs
    in ``float_acts_model`` (the stage-1 model: same layers, float activations) on ``x``; returns the clips.
    PACT then trains alpha from there (Adam moves it about one learning rate per step, so an alpha left
    at its initial 6.0 would barely move in a short stage 2)."""
    src = _weight_wrappers(float_acts_model)
    dst = _weight_wrappers(qat_model)
    if len(src) != len(dst):
        raise UserError(f"calibrate_pact: {len(src)} weight layers in '{float_acts_model.name}', {len(dst)} in "
                        f"'{qat_model.name}'")
    probe = keras.Model(float_acts_model.inputs, [w.output for w in src])
    outs = probe.predict(np.asarray(x[:max_rows], np.float32), verbose=0, batch_size=256)
    outs = outs if isinstance(outs, list) else [outs]
    clips = []
    for y, w in zip(outs, dst):
        q = w.quantize_config.activation_quantizer
        if not isinstance(q, aq.PACTQuantizer):
            continue
        c = aq.mse_clip(y, q.bits)
        acts = getattr(w, "_quantize_activations", [])
        acts[0]._post_activation_vars["alpha"].assign(c)
        clips.append(c)
    return clips
