"""Reference speed: python -m bench.reference_speed [--frames 60000]

FFNN-250K (1536-128x4-3) through the real QAT path, INT4 and INT8, `run` on int8 inputs with 1 and 2
Python threads (BLAS pinned to 1 thread), and `posteriors` on float windows. Prints inferences/s and
x real time at one inference per 10 ms."""
import argparse
import os
import time

import numpy as np

from bench import testmodels as qt
from tflm_port.convert import convert
from tflm_port.reference import Reference


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60_000)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(a.frames, 1536), dtype=np.int8)
    xf = rng.normal(size=(a.frames, 1536)).astype(np.float32)
    print(f"load average {os.getloadavg()}")
    for bits in (4, 8):
        _, src, _ = qt.cached_qat_ffnn(bits, seed=bits)
        ref = Reference.from_bytes(convert(src, [bits] * qt.FFNN_LAYERS, "auto"))
        ref.run(x[:2000])
        for what, fn in (("run threads=1", lambda: ref.run(x)), ("run threads=2", lambda: ref.run(x, threads=2)),
                         ("posteriors", lambda: ref.posteriors(xf))):
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            print(f"INT{bits} {what}: {a.frames / dt:,.0f} inferences/s = {a.frames / dt / 100:,.0f}x real time")


if __name__ == "__main__":
    main()
