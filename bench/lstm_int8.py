"""Int8 streaming LSTM: the numpy reference against TFLite Micro and tf.lite, and int8 against float.

    python -m bench.lstm_int8 [--out bench/lstm_int8.json] [--streams 16] [--hops 100]

A random 2 x 16-unit LSTM on 8 bins (the shape of tests/test_lstm_int8.py) and, with --units 128
--bins 64, the default model's shape; int8 through TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM. Streams of
normalized-feature-like frames (normal(0, 1)), one frame per invocation, state carried. Writes one
JSON record (atomic).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from basics.atomic import atomic_write_text
from training.lstm import run_streaming
from training.export_lstm import convert_lstm
from tflm_port.reference import Reference
from bench.testmodels import random_lstm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lstm_int8", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/lstm_int8.json")
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--hops", type=int, default=100)
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--bins", type=int, default=8)
    a = ap.parse_args(argv)

    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs
    from tflite_micro.python.tflite_micro import runtime  # lazy: heavy dependency, loaded only when this runs


    rng = np.random.default_rng(5)
    m = random_lstm(a.units, a.bins, 10, layers=a.layers, seed=0, jitter=0.3, rng=rng)
    t0 = time.time()
    model = convert_lstm(m, rng.normal(size=(24, 12, a.bins)).astype(np.float32))
    t_conv = time.time() - t0
    ref = Reference.from_bytes(model)
    xf = np.random.default_rng(7).normal(size=(a.streams, a.hops, a.bins)).astype(np.float32)
    xq = ref.quantize_input(xf.reshape(-1, 1, a.bins)).reshape(a.streams, a.hops, 1, a.bins)

    t0 = time.time()
    ref.reset_state()
    y_ref = np.stack([ref.run(xq[:, t]) for t in range(a.hops)], axis=1)
    t_ref = time.time() - t0

    def stream_runs(make, reset, setin, invoke, getout):
        out = []
        for s in range(a.streams):
            it = make()
            row = []
            for t in range(a.hops):
                setin(it, xq[s, t][None])
                invoke(it)
                row.append(getout(it))
            out.append(row)
        return np.array(out)

    y_tflm = stream_runs(lambda: runtime.Interpreter.from_bytes(model), None, lambda it, v: it.set_input(v, 0),
                         lambda it: it.invoke(), lambda it: it.get_output(0)[0].copy())

    def mk_tfl():
        it = tf.lite.Interpreter(model_content=model, experimental_op_resolver_type=(
            tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        it.allocate_tensors()
        return it

    y_tfl = stream_runs(mk_tfl, None, lambda it, v: it.set_tensor(it.get_input_details()[0]["index"], v),
                        lambda it: it.invoke(),
                        lambda it: it.get_tensor(it.get_output_details()[0]["index"])[0].copy())
    yf = run_streaming(m, xf)
    s, zp = ref.output_quant
    deq = lambda y: (y.astype(np.float64) - zp) * s  # noqa: E731
    rec = {
        "benchmark": "lstm_int8", "model": "lstm", "shape": f"{a.layers}x{a.units} LSTM on {a.bins} bins, 3 classes",
        "streams": a.streams, "hops": a.hops, "bytes": len(model),
        "reference_vs_tflite_micro_differing_bytes": int((y_ref != y_tflm).sum()),
        "outputs_compared": int(y_ref.size),
        "tflite_interpreter_vs_tflite_micro_differing_bytes": int((y_tfl != y_tflm).sum()),
        "int8_vs_float_max_abs_logit_error": float(np.abs(deq(y_ref) - yf).max()),
        "tflite_interpreter_vs_float_max_abs_logit_error": float(np.abs(deq(y_tfl) - yf).max()),
        "float_logit_range": float(np.abs(yf).max()),
        "reference_seconds": round(t_ref, 3), "convert_seconds": round(t_conv, 1),
        "tensorflow": tf.__version__, "machine": platform.machine(),
    }
    atomic_write_text(a.out, json.dumps(rec, indent=1) + "\n")
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
