"""Reference speed: python -m tflm_port.bench_reference (1536-128x4-3, 4-bit, 60,000 frames)."""
import time, numpy as np
from tflm_port import qat_testing as qt
from tflm_port.convert import convert
from tflm_port.reference import Reference
src = qt.mlp_tflite(1536, [128,128,128,128], 3, [4,4,4,4,8], n_cal=64)
for mode in ("auto","dense"):
    ref = Reference.from_bytes(convert(src, [4,4,4,4,8], mode))
    x = np.random.default_rng(0).integers(-128,128,size=(60000,1536),dtype=np.int8)
    ref.run(x[:1000])
    t=time.perf_counter(); ref.run(x); dt=time.perf_counter()-t
    print(mode, f"{len(x)/dt:.0f} inferences/s = {len(x)/dt/100:.0f}x real time at 10 ms hop")
