"""Build the firmware images a test needs, one make target at a time, so that one missing cross
compiler or emulator skips only the boards that need it (and fails under CI=true: conftest.py)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tflm_port.board_table import BOARDS

FW = Path(__file__).resolve().parents[1] / "firmware"

# make target (the first folder of an image path under firmware/build) -> tools to build and run it, besides
# make: the boards of tflm_port/board_table.py, then the host build
TARGET_TOOLS = {**{v.make_target: ("arm-none-eabi-gcc" if v.cpu_flags else "aarch64-linux-gnu-gcc", v.qemu[0])
                   for v in BOARDS.values()}, "host": ("gcc",)}


def missing(target: str) -> list[str]:
    return [t for t in ("make",) + TARGET_TOOLS[target] if shutil.which(t) is None]


def need_image(image: str) -> None:
    """Skip when the tools for ``image`` (a path like "mps3-an547/kws_runner.elf") are absent."""
    gone = missing(image.split("/")[0])
    if gone:
        pytest.skip(f"{', '.join(gone)} not installed (make setup installs it)")


def build_available(no_warnings: bool = False) -> set[str]:
    """make every target whose tools are installed; returns the targets built."""
    done = set()
    for target in TARGET_TOOLS:
        if missing(target):
            continue
        r = subprocess.run(["make", "-C", str(FW), "-j2", target], capture_output=True, text=True)
        assert r.returncode == 0, f"make {target}:\n" + r.stdout[-3000:] + r.stderr[-3000:]
        if no_warnings:
            assert "warning" not in (r.stdout + r.stderr).lower(), r.stderr[-3000:]
        done.add(target)
    return done


def write_stream_case(data: bytes, x, model: Path, xin: Path, exp: Path) -> None:
    """Write a stateful model's firmware test case: the model bytes, its input hops ``x`` ([hops, ...] int8,
    one invocation per hop) and the numpy reference's outputs for them, hop by hop from a reset state."""
    import numpy as np  # noqa: PLC0415 (the build helpers above need no numpy)
    from tflm_port.reference import Reference  # noqa: PLC0415

    ref = Reference.from_bytes(data)
    ref.reset_state()
    y = np.concatenate([ref.run(x[t]) for t in range(len(x))])
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(data)
    xin.write_bytes(x.tobytes())
    exp.write_bytes(y.tobytes())
