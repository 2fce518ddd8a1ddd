"""Model builders (tf_keras / Keras 2 objects, as tfmot requires).

* ``ffnn``: the paper's feedforward, streaming, state-free model. Input: one context window of
  ``context_frames`` stacked LFBE frames flattened frame-major (24 x 64 = 1536 by default);
  ``hidden_layers`` x [Dense(hidden_units) -> BatchNorm -> ReLU] -> Dense(n_classes) logits.
  One decision every 10 ms hop from the latest window, no recurrent state.
* ``dscnn``: DS-CNN in the MLPerf Tiny KWS reference shape (Conv 10x4/2 + 4 depthwise-separable
  blocks of 64 channels + global average pool + Dense), on the same context window reshaped to
  (frames, mel bins, 1).

* ``lstm``: streaming LSTM (training/lstm.py): the window as a sequence of frames, LSTM layers,
  Dense on the last step; deployed one frame per hop with the state carried.

All output logits; the posterior is the softmax of the (dequantized) logits.
"""
from __future__ import annotations

import tf_keras as keras

from training.config import FeatureConfig, ModelConfig
from basics.classes import CLASS_NAMES, class_names  # noqa: F401  (re-exported)
from basics.errors import UserError
from training.lstm import build_lstm as build

def build_ffnn(mcfg: ModelConfig, fcfg: FeatureConfig, n_classes: int) -> keras.Model:
    n_in = fcfg.context_frames * fcfg.num_mel_bins
    x = inp = keras.Input(shape=(n_in,), name="lfbe_window")
    for i in range(mcfg.hidden_layers):
        x = keras.layers.Dense(mcfg.hidden_units, use_bias=False, name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
        if mcfg.dropout > 0:
            x = keras.layers.Dropout(mcfg.dropout, name=f"dropout_{i}")(x)
    out = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name="ffnn")


def build_dscnn(mcfg: ModelConfig, fcfg: FeatureConfig, n_classes: int) -> keras.Model:
    n_in = fcfg.context_frames * fcfg.num_mel_bins
    f = mcfg.dscnn_filters
    inp = keras.Input(shape=(n_in,), name="lfbe_window")
    x = keras.layers.Reshape((fcfg.context_frames, fcfg.num_mel_bins, 1), name="to_image")(inp)
    x = keras.layers.Conv2D(f, (10, 4), strides=(2, 2), padding="same", use_bias=False, name="conv_0")(x)
    x = keras.layers.BatchNormalization(name="bn_0")(x)
    x = keras.layers.ReLU(name="relu_0")(x)
    for i in range(1, mcfg.dscnn_blocks + 1):
        x = keras.layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False, name=f"dw_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"dw_bn_{i}")(x)
        x = keras.layers.ReLU(name=f"dw_relu_{i}")(x)
        x = keras.layers.Conv2D(f, (1, 1), use_bias=False, name=f"pw_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"pw_bn_{i}")(x)
        x = keras.layers.ReLU(name=f"pw_relu_{i}")(x)
    x = keras.layers.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])), name="avg_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name="dscnn")


def build_lstm(mcfg: ModelConfig, fcfg: FeatureConfig, n_classes: int) -> keras.Model:

    return build(mcfg, fcfg, n_classes)


BUILDERS = {"ffnn": build_ffnn, "dscnn": build_dscnn, "lstm": build_lstm}


def build_model(mcfg: ModelConfig, fcfg: FeatureConfig, n_classes: int) -> keras.Model:
    if mcfg.name not in BUILDERS:
        raise UserError(f"model.name: unknown model '{mcfg.name}' (known: {', '.join(BUILDERS)})")
    return BUILDERS[mcfg.name](mcfg, fcfg, n_classes)
