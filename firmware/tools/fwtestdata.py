"""Test models, input vectors and expected outputs for the firmware tests and benchmarks.

``build(outdir)`` writes, per case, ``<name>.tflite``, ``<name>.in.bin`` (N input vectors, raw
bytes back to back) and ``<name>.expected.bin`` (N expected output vectors), plus ``cases.json``.
Expected outputs come from tflite-micro (standard ops) and from ``tflm_port.reference`` (the
executable definition of SUB8_FULLY_CONNECTED); both must agree where both apply. Results are
cached in ``outdir`` keyed by DATA_VERSION.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA_VERSION = 6  # 5: the MLP test models are built through training.qat (bench/testmodels.py); 6: the
#                   float-I/O MLP and the wide softmax too (training.qat.to_tflite); _dscnn says why not it
N_VECTORS = 1000

# name -> (builder, description). FFNN = 1536 -> 128 x4 -> 3, as in training.models.
FFNN = dict(n_in=1536, hidden=[128] * 4, n_out=3)


def _mlp(bits, mode=None, **shape):
    from bench import testmodels
    from tflm_port import convert

    cfg = dict(FFNN)
    cfg.update(shape)
    b = testmodels.mlp_tflite(cfg["n_in"], cfg["hidden"], cfg["n_out"], bits)
    if mode:
        b = convert.convert(b, bits, mode=mode)
    return b


def pack_row_lsb(w: np.ndarray, bits: int) -> bytes:
    """Layout 0 "row_lsb" packer written from docs/formats.md, independent of tflm_port.packing."""
    out_f, in_f = w.shape
    row_bytes = (in_f * bits + 7) // 8
    fields = (w > 0).astype(np.uint32) if bits == 1 else (w.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint32)
    bitmat = ((fields[:, :, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8).reshape(out_f, -1)
    bitmat = np.pad(bitmat, ((0, 0), (0, row_bytes * 8 - bitmat.shape[1])))
    return np.packbits(bitmat, axis=1, bitorder="little").tobytes()


def _rebit(model: bytes, bits_per_op, seed=0) -> bytes:
    """Give every SUB8_FULLY_CONNECTED op new random weights on the k-bit grid (k from bits_per_op),
    packed by pack_row_lsb, scale s_w / (2^(k-1)-1) so activations stay in range; bias rescaled."""
    import flatbuffers
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    rng = np.random.default_rng(seed)
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    j = 0
    for op in sg.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode != schema.BuiltinOperator.CUSTOM:
            continue
        k = bits_per_op[j]
        j += 1
        opts = flexbuffers.Loads(bytes(op.customOptions))
        out_f, in_f = opts["out_features"], opts["in_features"]
        hi = 1 if k == 1 else (1 << (k - 1)) - 1
        w = rng.choice([-1, 1], size=(out_f, in_f)) if k == 1 else rng.integers(-hi, hi + 1, size=(out_f, in_f))
        wt = sg.tensors[op.inputs[1]]
        packed = pack_row_lsb(w, k)
        m.buffers[wt.buffer].data = None  # old weights: drop (the converter gives each its own buffer)
        m.buffers.append(schema.BufferT())
        m.buffers[-1].data = np.frombuffer(packed, np.uint8).copy()
        wt.buffer = len(m.buffers) - 1
        wt.shape = np.array([len(packed)], np.int32)
        s_w = np.float32(wt.quantization.scale[0]) / np.float32(hi)
        wt.quantization.scale = [float(s_w)]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bt = sg.tensors[op.inputs[2]]
            bias = np.frombuffer(bytes(m.buffers[bt.buffer].data), "<i4").astype(np.int64)
            nb = bias * hi
            m.buffers[bt.buffer].data = None
            m.buffers.append(schema.BufferT())
            m.buffers[-1].data = np.frombuffer(np.clip(nb, -2**31, 2**31 - 1).astype("<i4").tobytes(), np.uint8).copy()
            bt.buffer = len(m.buffers) - 1
            s_in = np.float32(sg.tensors[op.inputs[0]].quantization.scale[0])
            bt.quantization.scale = [float(s_in * s_w)]
        opts["bits"] = k
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
    assert j == len(bits_per_op), f"model has {j} custom ops, {len(bits_per_op)} bit widths given"
    fb = flatbuffers.Builder(1 << 20)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _ptq_mlp_float_io():
    """Plain post-training int8 quantization with float32 input/output: QUANTIZE, per-channel
    FULLY_CONNECTED, DEQUANTIZE."""
    import tf_keras as keras

    from training import qat

    keras.utils.set_random_seed(5)
    inp = keras.Input(shape=(96,))
    x = keras.layers.Dense(48, activation="relu")(inp)
    x = keras.layers.Dense(24, activation="relu")(x)
    x = keras.layers.Dense(5)(x)
    model = keras.Model(inp, x)
    rng = np.random.default_rng(5)
    data = rng.normal(size=(128, 96)).astype(np.float32)
    return qat.to_tflite(model, data, max_samples=64, float_io=True)


def _dscnn(filters=64, blocks=4, softmax=False):
    """DS-CNN in the training.models shape (MLPerf Tiny KWS), BatchNorm folded by the converter,
    int8 post-training quantization (per-channel convolutions).

    The one converter set-up of its own left here, on purpose: ``training.qat.to_tflite`` traces the
    model at batch 1, so Keras' Reshape becomes a plain RESHAPE. Converted from the Keras model (batch
    dimension open), the graph keeps the shape arithmetic in front of each RESHAPE (SHAPE,
    STRIDED_SLICE, PACK), which models converted elsewhere carry and which the runtime drops as dead
    code (firmware/runtime/kws_model.c) and the reference skips (tflm_port/reference/reshape.py):
    these two cases are the firmware tests' only models with it. The "dscnn" case is also the model of
    the recorded DS-CNN firmware figures (firmware/bench.py, bench/results.json)."""
    import tensorflow as tf
    import tf_keras as keras

    from training.config import FeatureConfig, ModelConfig
    from training.models import build_dscnn

    keras.utils.set_random_seed(7)
    m = build_dscnn(ModelConfig(name="dscnn", dscnn_filters=filters, dscnn_blocks=blocks), FeatureConfig(), 3)
    if softmax:
        m = keras.Model(m.input, keras.layers.Softmax()(m.output))
    rng = np.random.default_rng(7)
    data = rng.normal(size=(64, m.input.shape[1])).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([data[i:i + 1]] for i in range(64))
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _softmax_wide():
    """FULLY_CONNECTED -> SOFTMAX with logits spread over the whole int8 range (many distinct outputs)."""
    import tf_keras as keras

    from training import qat

    keras.utils.set_random_seed(11)
    inp = keras.Input(shape=(32,))
    x = keras.layers.Dense(10, kernel_initializer=keras.initializers.RandomNormal(stddev=1.5))(inp)
    model = keras.Model(inp, keras.layers.Softmax()(x))
    rng = np.random.default_rng(11)
    data = rng.normal(size=(128, 32)).astype(np.float32)
    return qat.to_tflite(model, data, max_samples=64)


def _requantize_relu6():
    """Hand-built graph: QUANTIZE int8 -> int8 (new scale and zero point), then FULLY_CONNECTED with a
    fused RELU6 and per-tensor weights, and a RESHAPE: ops the converted models do not contain."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    rng = np.random.default_rng(3)
    m = schema.ModelT()
    m.version = 3
    m.buffers = [schema.BufferT()]

    def buf(data: bytes | None):
        b = schema.BufferT()
        if data is not None:
            b.data = np.frombuffer(data, np.uint8).copy()
        m.buffers.append(b)
        return len(m.buffers) - 1

    def tensor(shape, ttype, scale=None, zp=None, data=None, name=""):
        t = schema.TensorT()
        t.shape = np.array(shape, np.int32)
        t.type = ttype
        t.buffer = buf(data)
        t.name = name
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(scale)]
            q.zeroPoint = [int(zp)]
            t.quantization = q
        return t

    TT = schema.TensorType
    w = rng.integers(-127, 128, size=(24, 40)).astype(np.int8)
    bias = rng.integers(-3000, 3000, size=24).astype("<i4")
    sg = schema.SubGraphT()
    sg.tensors = [tensor([1, 40], TT.INT8, 0.05, 3, name="in"),
                  tensor([1, 40], TT.INT8, 0.0731, -17, name="requantized"),
                  tensor([24, 40], TT.INT8, 0.004, 0, w.tobytes(), name="w"),
                  tensor([24], TT.INT32, 0.0731 * 0.004, 0, bias.tobytes(), name="b"),
                  tensor([1, 24], TT.INT8, 0.03, -90, name="fc"),
                  tensor([2], TT.INT32, data=np.array([4, 6], "<i4").tobytes(), name="shape"),
                  tensor([4, 6], TT.INT8, 0.03, -90, name="out")]
    codes = []
    for c in (schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOperator.RESHAPE):
        oc = schema.OperatorCodeT()
        oc.builtinCode = c
        oc.deprecatedBuiltinCode = c
        oc.version = 1
        codes.append(oc)
    m.operatorCodes = codes

    def op(code, ins, outs, opt_type=0, opt=None):
        o = schema.OperatorT()
        o.opcodeIndex = code
        o.inputs = np.array(ins, np.int32)
        o.outputs = np.array(outs, np.int32)
        o.builtinOptionsType = opt_type
        o.builtinOptions = opt
        return o

    fc = schema.FullyConnectedOptionsT()
    fc.fusedActivationFunction = schema.ActivationFunctionType.RELU6
    rs = schema.ReshapeOptionsT()
    rs.newShape = [4, 6]
    sg.operators = [op(0, [0], [1]), op(1, [1, 2, 3], [4], schema.BuiltinOptions.FullyConnectedOptions, fc),
                    op(2, [4, 5], [6], schema.BuiltinOptions.ReshapeOptions, rs)]
    sg.inputs = np.array([0], np.int32)
    sg.outputs = np.array([6], np.int32)
    m.subgraphs = [sg]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _tiny_dscnn_softmax():
    from bench import testmodels

    return testmodels.tiny_dscnn_tflite(softmax=True)


# name: (builder, weight_bits, model family, expected-output source)
CASES = {
    "ffnn_int8": (lambda: _mlp([8] * 5), 8, "ffnn250k", "tflm"),
    "ffnn_int4": (lambda: _mlp([4] * 4 + [8]), 4, "ffnn250k", "tflm"),
    "ffnn_sub8_5": (lambda: _mlp([5] * 4 + [8], mode="dense"), 5, "ffnn250k", "reference"),
    "ffnn_sub8_2": (lambda: _mlp([2] * 4 + [8], mode="dense"), 2, "ffnn250k", "reference"),
    # 1-bit: the 2-bit model re-packed with random {-1,+1} weights by our own packer
    "ffnn_sub8_1": (lambda: _rebit(_mlp([2] * 4 + [8], mode="dense"), [1] * 4), 1, "ffnn250k", "reference"),
    # every k = 1..7 on odd sizes (fields straddle bytes, rows end mid-byte), then an INT8 FC
    "sub8_all_bits": (lambda: _rebit(_mlp([2] * 7 + [8], mode="dense", n_in=37, hidden=[13, 11, 9, 7, 5, 3, 9], n_out=4),
                                     [1, 2, 3, 4, 5, 6, 7]), 0, "op", "reference"),
    "mlp_float_io": (_ptq_mlp_float_io, 8, "op", "tflm"),
    "tiny_dscnn_softmax": (_tiny_dscnn_softmax, 8, "op", "tflm"),
    "softmax_wide": (_softmax_wide, 8, "op", "tflm"),
    "requantize_relu6": (_requantize_relu6, 8, "op", "tflm"),
    "dscnn_small_softmax": (lambda: _dscnn(filters=16, blocks=2, softmax=True), 8, "op", "tflm"),
    "dscnn": (lambda: _dscnn(), 8, "dscnn", "tflm"),
}


# tflm cases the numpy reference cannot run, with the reason (the agreement test expects exactly this)
REFERENCE_UNSUPPORTED = {"requantize_relu6": "batch dimension 1"}  # its RESHAPE output is [4, 6]


def _input_info(model: bytes):
    """(elements, is_float, zero_point) of input 0, read from the flatbuffer (works for custom ops)."""
    from tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    sg = m.subgraphs[0]
    t = sg.tensors[sg.inputs[0]]
    q = t.quantization
    has = q is not None and q.zeroPoint is not None and len(q.zeroPoint)
    zp = int(q.zeroPoint[0]) if has else 0
    scale = float(q.scale[0]) if has else 1.0
    return int(np.prod(t.shape)), t.type == schema.TensorType.FLOAT32, zp, scale


def make_inputs(model: bytes, n: int, seed: int = 0) -> np.ndarray:
    from bench import testmodels

    size, is_float, zp, scale = _input_info(model)
    if is_float:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, size)).astype(np.float32) * 2.0
        x[0] = 0.0
        x[1] = 1e6
        x[2] = -1e6
        return x
    # structured vectors (extremes, zero point, ramps, spikes, +-3 around zp) and then the
    # distribution the models were calibrated on (N(0,1) features), so layers do not all saturate
    structured = testmodels.test_inputs(min(n, 150), size, zp=zp, seed=seed)
    rng = np.random.default_rng(seed + 1)
    natural = np.clip(np.round(rng.normal(size=(max(n - len(structured), 0), size)) / scale) + zp, -128, 127)
    return np.concatenate([structured, natural.astype(np.int8)])[:n]


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model)
    shape = tuple(it.get_input_details(0)["shape"])
    out = []
    for row in x:
        it.set_input(row.reshape(shape), 0)
        it.invoke()
        out.append(it.get_output(0).reshape(-1).copy())
    return np.array(out)


def run_reference(model: bytes, x: np.ndarray) -> np.ndarray:
    from tflm_port.reference import Reference

    return np.asarray(Reference.from_bytes(model).run(x)).reshape(len(x), -1)


def build(outdir: str | os.PathLike, names=None, n: int = N_VECTORS) -> dict:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    index_path = outdir / "cases.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    if index.get("_version") != DATA_VERSION:
        index = {"_version": DATA_VERSION}
    for name in names or CASES:
        if name in index and index[name].get("n") == n and (outdir / f"{name}.expected.bin").exists():
            continue
        builder, bits, family, source = CASES[name]
        model = builder()
        x = make_inputs(model, n)
        agree = None
        if source == "tflm":
            y = run_tflm(model, x)
            # cross-check the numpy reference on the first 100 vectors; recorded here (tflm is the
            # source of the expected bytes) and asserted by tests/test_firmware.py
            try:
                agree = bool(np.array_equal(run_reference(model, x[:100]), y[:100]))
            except Exception as e:
                agree = f"reference failed: {e}"
        else:
            y = run_reference(model, x)
        (outdir / f"{name}.tflite").write_bytes(model)
        (outdir / f"{name}.in.bin").write_bytes(np.ascontiguousarray(x).tobytes())
        (outdir / f"{name}.expected.bin").write_bytes(np.ascontiguousarray(y).tobytes())
        index[name] = {"n": n, "weight_bits": bits, "family": family, "source": source,
                       "in_bytes": int(x[0].nbytes), "out_bytes": int(y[0].nbytes),
                       "out_dtype": str(y.dtype), "model_bytes": len(model), "reference_agrees_with_tflm": agree}
        index_path.write_text(json.dumps(index, indent=1))
    return index


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", nargs="?", default=str(ROOT / "firmware" / "build" / "testdata"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("-n", type=int, default=N_VECTORS)
    a = ap.parse_args()
    print(json.dumps(build(a.outdir, a.only, a.n), indent=1))
