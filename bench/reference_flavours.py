"""How far apart the two arithmetic flavours of the integer reference are on the 64-32-32-4 MLP of
tests/test_tflm_reference.py (the "for scale" column of docs/converter.md): differing output bytes of
rounding="tflm" (TFLite Micro) and rounding="tflite" (equal to tf.lite / LiteRT, asserted by the tests).

    python -m bench.reference_flavours [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from basics.atomic import atomic_write_text
from bench import testmodels
from tflm_port.convert import convert
from tflm_port.reference import Reference


def measure() -> dict:
    src = testmodels.cached_mlp(64, [32, 32], 4, [4, 4, 8])
    out = {}
    for kind, mode in (("int4", "auto"), ("int8", "container")):
        model = convert(src, [4, 4, 8], mode)
        ref = Reference.from_bytes(model)
        x = testmodels.test_inputs(10_000, int(np.prod(ref.input_shape)), ref.input_quant[1], seed=1)
        a = ref.run(x)
        b = Reference.from_bytes(model, rounding="tflite").run(x)
        out[kind] = {"inputs": len(x), "differing_bytes": int((a != b).sum()), "bytes": int(a.size)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the record to this JSON file")
    a = ap.parse_args(argv)
    rec = measure()
    text = json.dumps(rec, indent=1)
    print(text)
    if a.out:
        atomic_write_text(a.out, text + "\n")
    return 0


if __name__ == "__main__":
    main()
