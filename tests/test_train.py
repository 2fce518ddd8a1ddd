"""End to end on a tiny synthetic set: train.py writes a complete run directory, resumes after
SIGKILL, refuses a mismatched config, and the QAT path ends in a .tflite scored by the reference."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tflm_port.convert import weight_report
from tflm_port.tflite_io import get_metadata, load_model

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "data.num_voices=6", "--set", "data.clips_per_voice=1", "--set", "data.stream_minutes=0.5",
        "--set", "train.batch_size=64", "--no-progress"]


def run(args, data_root, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), "--data-root", str(data_root), *TINY, *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, **kw)


@pytest.fixture(scope="module")
def float_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    rd = base / "float"
    r = run(["--run-dir", str(rd), "--epochs", "2"], base / "data")
    assert r.returncode == 0, r.stderr[-3000:]
    return base, rd, r


def test_float_run_directory_is_complete(float_run):
    base, rd, r = float_run
    for f in ("config.json", "normalizer.json", "labels.json", "model.keras", "report.json", "det.json", "det.png"):
        assert (rd / f).is_file(), f
    assert any((rd / "logs").rglob("events.out.tfevents*"))
    rep = json.loads((rd / "report.json").read_text())
    assert rep["params"] > 240_000 and 0.0 <= rep["clip_accuracy"] <= 1.0
    assert rep["stream"]["keywords"] >= 1 and len(json.loads((rd / "det.json").read_text())) > 10
    assert "FRR" in r.stdout and "det.png" in r.stdout
    assert (rd / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_dir_refuses_another_config(float_run):
    base, rd, _ = float_run
    r = run(["--run-dir", str(rd), "--epochs", "3"], base / "data")
    assert r.returncode == 2 and "different config" in r.stderr and "train.epochs" in r.stderr
    assert "Traceback" not in r.stderr


def test_sigkill_then_resume(float_run, tmp_path):
    base, _, _ = float_run
    rd = tmp_path / "resume"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "training" / "train.py"), "--data-root", str(base / "data"), *TINY,
           "--run-dir", str(rd), "--epochs", "40"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    seen = []
    t0 = time.time()
    for line in p.stdout:  # wait until two epochs are done, then kill -9
        seen.append(line)
        if "float epoch 2/40:" in line:
            p.send_signal(signal.SIGKILL)
            break
        assert time.time() - t0 < 600, "".join(seen[-20:])
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not (rd / "model.keras").exists()
    # no half-written files under final names
    assert not [f for f in rd.rglob("*") if f.name.endswith(".tmp") and f.is_file()]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    epochs = [int(l.split("float epoch ")[1].split("/")[0]) for l in r.stdout.splitlines() if "float epoch " in l]
    assert epochs and epochs[0] >= 3, epochs  # continued after the killed run's last epoch, not from 1
    assert (rd / "model.keras").is_file()


def test_qat_run_ends_in_scored_tflite(float_run):
    base, rd, _ = float_run
    q = base / "w4"
    # the first layer pruned to 25 % in 1 x 8 blocks (the prune section), the others dense
    r = run(["--run-dir", str(q), "--epochs", "2", "--weight-bits", "4", "--float-run", str(rd),
             "--set", "quant.stage1_epochs=1", "--set", "quant.stage2_epochs=1", "--set", "quant.distill=0.5",
             "--set", "prune.kind=block", "--set", "prune.density=0.25", "--set", "prune.layers=*,dense,dense,dense,dense"],
            base / "data")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "distillation: targets = 0.5 x labels + 0.5 x the float model's posteriors" in r.stdout + r.stderr
    assert json.loads((q / "qat.json").read_text())["distill"] == 0.5
    rep = json.loads((q / "report.json").read_text())
    assert rep["scored_with"] == "tflm_port.reference" and rep["layer_bits"] == [4] * 5
    data = (q / "model.tflite").read_bytes()
    assert data[4:8] == b"TFL3" and rep["model_bytes"] == len(data)
    # pruned weights are integer zeros in the stored model: layer 0 is stored block:8 at <= 25 %
    rows = weight_report(data)
    assert rows[0]["format"] == "block:8" and rows[0]["density"] <= 0.25 and rep["prune"]["kernel_density"][0] <= 0.25
    assert not any(x["format"].startswith(("block", "csr", "nm")) for x in rows[1:])
    assert rep["prune"]["layers"] == ["block:8:0.25"] + ["dense"] * 4
    assert get_metadata(load_model(data))["prune"]["density"] == rep["prune"]["density"]
    # a float run that does not match the config is refused in one line
    r = run(["--run-dir", str(base / "w4b"), "--weight-bits", "4", "--float-run", str(rd),
             "--set", "model.hidden_units=64"], base / "data")
    assert r.returncode == 2 and "does not match" in r.stderr and "model.hidden_units" in r.stderr


def test_unknown_keyword_and_bad_bits_are_one_line(tmp_path):
    r = run(["--run-dir", str(tmp_path / "x"), "--weight-bits", "9"], tmp_path / "data")
    assert r.returncode == 2 and "weight_bits" in r.stderr and "Traceback" not in r.stderr
