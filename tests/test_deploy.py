"""tflm_port.deploy: a quantized run on an emulated board, and one-line refusals of bad input."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


def deploy(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tflm_port.deploy", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from bench.host import synth_stream
    from bench.streaming import demo_model
    from basics.audio import save_wav
    from training.config import Config

    d = tmp_path_factory.mktemp("run")
    x = synth_stream(8.0, seed=11)
    (d / "model.tflite").write_bytes(demo_model(x, bits=4, hidden_layers=1, hidden_units=32, seed=2))
    Config().save(d / "config.json")
    (d / "report.json").write_text(json.dumps({"stream": {"threshold_at_1fah": 0.5}}))
    save_wav(d / "audio.wav", np.concatenate([x, x[:50]]))
    return d


def one_line_error(r, *needles):
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "DET" not in r.stdout and "STREAM" not in r.stdout  # refused before the firmware ran


@pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm / gcc-arm-none-eabi not installed")
def test_deploy_runs_and_matches_python(run_dir):
    from training.pipeline import python_detections
    from basics.audio import load_audio

    audio = load_audio(run_dir / "audio.wav")
    sm = python_detections((run_dir / "model.tflite").read_bytes(), audio, 1.0)["smoothed"]
    th = float(np.floor(np.quantile(sm, 0.95) * 100) / 100)
    r = deploy(run_dir, "--board", "mps2-an386", "--audio", run_dir / "audio.wav", "--threshold", th, "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "identical to the firmware" in r.stdout
    rows = re.findall(r"^\s+(\d+\.\d{3})\s+(\S+)\s+(\d\.\d{6})$", r.stdout, re.M)  # time, keyword, score
    assert rows and all(kw == "keyword" and float(sc) >= th for _, kw, sc in rows)
    assert "instructions" in r.stdout


def test_float_only_run_refused(tmp_path):
    from training.config import Config

    Config().save(tmp_path / "config.json")
    (tmp_path / "a.wav").write_bytes(b"")
    one_line_error(deploy(tmp_path, "--board", "mps2-an386", "--audio", tmp_path / "a.wav"), "float-only run",
                   "quantized")


def test_not_a_run_dir(tmp_path):
    one_line_error(deploy(tmp_path / "nope", "--board", "mps2-an386", "--audio", tmp_path / "a.wav"), "no such run")


@pytest.mark.parametrize("kind", ["8khz", "stereo", "float", "corrupt", "flac", "missing"])
def test_bad_audio_refused_in_one_line(run_dir, tmp_path, kind):
    import soundfile as sf

    x = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    p = tmp_path / ("a.flac" if kind == "flac" else "a.wav")
    needle = {"8khz": "8000 Hz", "stereo": "2 channels", "float": "FLOAT", "corrupt": "not a readable audio file",
              "flac": "format FLAC", "missing": "no such audio file"}[kind]
    if kind == "8khz":
        sf.write(p, x[:8000], 8000, subtype="PCM_16")
    elif kind == "stereo":
        sf.write(p, np.stack([x, x], 1), 16000, subtype="PCM_16")
    elif kind == "float":
        sf.write(p, x, 16000, subtype="FLOAT")
    elif kind == "corrupt":
        p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(200)))
    elif kind == "flac":
        sf.write(p, x, 16000, format="FLAC")
    one_line_error(deploy(run_dir, "--board", "mps2-an386", "--audio", p), needle)


def test_threshold_needed_without_report(run_dir, tmp_path):
    for f in ("model.tflite", "config.json", "audio.wav"):
        shutil.copy(run_dir / f, tmp_path / f)
    one_line_error(deploy(tmp_path, "--board", "mps2-an386", "--audio", tmp_path / "audio.wav"), "--threshold")


def test_model_without_normalization_refused(run_dir, tmp_path):
    from tflm_port.tflite_io import get_metadata, load_model, save_model, set_metadata

    m = load_model((run_dir / "model.tflite").read_bytes())
    md = get_metadata(m)
    del md["features"]["normalization"]
    set_metadata(m, "subkws", md)
    (tmp_path / "model.tflite").write_bytes(save_model(m))
    shutil.copy(run_dir / "config.json", tmp_path / "config.json")
    one_line_error(deploy(tmp_path, "--board", "mps2-an386", "--audio", run_dir / "audio.wav", "--threshold", "0.5"),
                   "normalization")
