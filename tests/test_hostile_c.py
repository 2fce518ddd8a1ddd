"""Hostile inputs to the C runtime and apps (issue 15, item 11) and the libFuzzer harness.

Host builds (gcc, ASan/UBSan) of kws_runner / kws_stream; the fuzz harness needs clang with
libFuzzer (make setup installs it; missing -> skip, or a failure under CI=true)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.fuzz_support import graph_model, need_tool

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
SEED = FW / "fuzz" / "seeds" / "mlp_int8_frontend.tflite"


@pytest.fixture(scope="module")
def host_apps():
    need_tool("gcc")
    r = subprocess.run(["make", "-C", str(FW), "build/host/kws_runner", "build/host/kws_stream"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return FW / "build" / "host"


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    from basics.audio import save_wav

    p = tmp_path_factory.mktemp("wav") / "a.wav"
    save_wav(p, (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32))
    return p


def _run(args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_zero_byte_model_says_empty(host_apps, wav, tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    rc, out = _run([host_apps / "kws_stream", empty, wav])
    assert rc != 0 and "model file is empty" in out and "too large" not in out
    rc, out = _run([host_apps / "kws_runner", empty, tmp_path / "in.bin", tmp_path / "out.bin"])
    assert rc != 0 and "model file is empty" in out and "too large" not in out


@pytest.mark.parametrize("name, code, n_in, shape", [
    ("LSTM", 16, 20, [1, 4]),                   # more inputs than KWS_MAX_OP_INPUTS
    ("BIDIRECTIONAL_SEQUENCE_LSTM", 52, 48, [1, 2, 4]),  # (UNIDIRECTIONAL_SEQUENCE_LSTM runs: issue 12)
    ("CONV_3D", 132, 2, [1, 2, 2, 2, 2, 1]),     # rank 6: above KWS_MAX_RANK
])
def test_unsupported_operator_is_named(host_apps, wav, tmp_path, name, code, n_in, shape):
    model = tmp_path / f"{name}.tflite"
    model.write_bytes(graph_model(code, n_in, shape))
    np.zeros(8, np.int8).tofile(tmp_path / "in.bin")
    for args in ([host_apps / "kws_stream", model, wav], [host_apps / "kws_runner", model, tmp_path / "in.bin",
                                                          tmp_path / "out.bin"]):
        rc, out = _run(args)
        assert rc != 0 and f"unsupported operator {name}" in out, out
        assert "runtime error" not in out and "Sanitizer" not in out


def test_malformed_lstm_is_one_status_line(host_apps, tmp_path):
    """A UNIDIRECTIONAL_SEQUENCE_LSTM whose 24 inputs are all the graph input: refused at prepare, no crash."""
    model = tmp_path / "lstm.tflite"
    model.write_bytes(graph_model(44, 24, [1, 2, 4]))
    np.zeros(8, np.int8).tofile(tmp_path / "in.bin")
    rc, out = _run([host_apps / "kws_runner", model, tmp_path / "in.bin", tmp_path / "out.bin"])
    assert rc != 0 and "KWS error" in out and "KWS status=0" not in out, out
    assert "runtime error" not in out and "Sanitizer" not in out


def test_stream_smoothing_out_of_range_is_refused(host_apps, wav):
    for s in ("99999999999", "0", "65", "2.5"):
        rc, out = _run([host_apps / "kws_stream", SEED, wav, "-s", s])
        assert rc == 101 and "bad -s" in out and "runtime error" not in out, (s, out)
    rc, out = _run([host_apps / "kws_stream", SEED, wav, "-s", "3"])
    assert rc == 0 and "STREAM status=0" in out


def test_libfuzzer_harness_runs_clean(tmp_path):
    """make fuzz for ~30 s from the committed seeds: no crash, leak, sanitizer report or timeout."""
    need_tool("clang")
    build = tmp_path / "build"
    r = subprocess.run(["make", "-s", "-C", str(FW), "fuzz", f"BUILD={build}", "FUZZ_SECONDS=30"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = re.search(r"Done (\d+) runs", r.stderr)
    assert runs and int(runs.group(1)) > 1000, r.stderr[-2000:]
    assert not list((build / "fuzz").glob("crash-*")) and not list((build / "fuzz").glob("leak-*"))
    assert "ERROR: " not in r.stderr
