"""The TFLite Micro adapter (firmware/tflm) against declarations of the TFLM names it uses
(tests/tflm_api_stub: not TFLM). TFLM sources are in no registry reachable here, so this is a
syntax/type check of the adapter against the kws C API it calls, not a build against TFLM."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize("src", ["kws_tflm_sub8.cc", "kws_tflm_fc_packed.cc", "kws_tflm_fc_a4.cc"])
def test_adapter_compiles_against_the_api_declarations(src):
    r = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                        f"-I{ROOT / 'tests' / 'tflm_api_stub'}", f"-I{FW / 'include'}", f"-I{FW / 'runtime'}",
                        f"-I{FW / 'kernels' / 'opt'}", f"-I{FW / 'tflm'}", str(FW / "tflm" / src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
