"""Layout 8 (lanes16, docs/formats.md section 11) through the runtime on the Cortex-M DSP boards: random
int8-activation FC chains with 4-, 2- and 1-bit weights and odd layer sizes (group tails, input tails),
converted with --target, run by kws_runner under QEMU, byte for byte equal to the Python reference.
No training: the chains are built with the TFLite schema (bench.sparse.fc_chain_model)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fw_build import need_image
from tflm_port import board_table

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "firmware" / "build"


DSP_BOARDS = [b for b, v in board_table.BOARDS.items() if v.family == "dsp"]   # the M4 and the M7


@pytest.mark.parametrize("board", DSP_BOARDS)
def test_layout8_chains_exact_through_the_runtime(board, tmp_path):
    v = board_table.BOARDS[board]
    need_image(v.runner_image)
    r = subprocess.run(["make", "-C", str(ROOT / "firmware"), "-j2", *board_table.make_targets([board])],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    from bench.sparse import fc_chain_model  # lazy: TensorFlow schema, only after the image check
    from tflm_port.convert import convert
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model

    rng = np.random.default_rng(14)
    for k in (4, 2, 1):
        m = (1 << (k - 1)) - 1
        sizes = [int(rng.integers(20, 300)), int(rng.integers(1, 40)), int(rng.integers(1, 40)), 7]
        ws = [rng.choice([-1, 1], (b, a)) if k == 1 else rng.integers(-m, m + 1, (b, a))
              for a, b in zip(sizes[:-1], sizes[1:])]
        model = convert(fc_chain_model(ws, [True] * (len(ws) - 1) + [False], seed=k), [k] * len(ws), target=board)
        assert get_metadata(load_model(model))["layer_storage"] == ["custom/8"] * len(ws)
        x = rng.integers(-128, 128, (6, sizes[0])).astype(np.int8)
        mp, xp, op = tmp_path / "m.tflite", tmp_path / "x.bin", tmp_path / "o.bin"
        mp.write_bytes(model)
        xp.write_bytes(x.tobytes())
        semi = f"enable=on,target=native,arg=kws_runner,arg={mp},arg={xp},arg={op},arg=6"
        r = subprocess.run([*v.qemu, "-nographic", "-semihosting-config", semi, "-kernel",
                            str(BUILD / v.runner_image)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "opt_ops=3" in r.stdout + r.stderr, (r.stdout + r.stderr)[-1500:]
        assert op.read_bytes() == Reference.from_bytes(model).run(x).astype(np.int8).tobytes(), (board, k, sizes)
