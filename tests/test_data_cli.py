"""subkws-data CLI: --help for every command, bad input -> one 'error:' line and exit 2."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data_scripts.cli", *args], cwd=cwd or REPO, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def _one_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_documents_every_option():
    r = _cli("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("synthetic", "speech-commands", "folder", "stream"))
    for cmd, opts in (("synthetic", ("--keyword", "--num-voices", "--clips-per-voice", "--seed", "--root",
                                     "--stream-minutes", "--noise-dir")),
                      ("speech-commands", ("--folder", "--keyword")), ("folder", ("--folder",)),
                      ("stream", ("--dataset", "--split", "--minutes", "--out", "--snr-min"))):
        r = _cli(cmd, "--help")
        assert r.returncode == 0
        for o in opts:
            assert o in r.stdout, (cmd, o)


def test_bad_input_one_line(tmp_path):
    _one_error(_cli("folder", "--folder", str(tmp_path / "missing"), "--root", str(tmp_path)), "missing",
               "no such data folder")
    _one_error(_cli("speech-commands", "--folder", str(tmp_path / "nope"), "--root", str(tmp_path)), "nope")
    _one_error(_cli("synthetic", "--keyword", "12345", "--root", str(tmp_path)), "data.keyword")
    _one_error(_cli("synthetic", "--noise-dir", str(tmp_path / "nonoise"), "--root", str(tmp_path)), "nonoise")
    _one_error(_cli("stream", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "o")), "ds")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {keywrd: alexa}\n")
    _one_error(_cli("synthetic", "--config", str(cfg), "--root", str(tmp_path)), "data.keywrd")
    # a corrupt wav among the user's recordings
    rec = tmp_path / "rec"
    (rec / "alexa").mkdir(parents=True)
    (rec / "other").mkdir()
    sf.write(str(rec / "other" / "ok.wav"), np.zeros(1600, np.float32), 16000)
    (rec / "alexa" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    _one_error(_cli("folder", "--folder", str(rec), "--root", str(tmp_path / "d")), "broken.wav")
    (rec / "alexa" / "broken.wav").write_bytes(b"")
    _one_error(_cli("folder", "--folder", str(rec), "--root", str(tmp_path / "d")), "broken.wav")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_synthetic_then_stream(tmp_path):
    r = _cli("synthetic", "--keyword", "marvin", "--num-voices", "3", "--clips-per-voice", "1", "--stream-minutes",
             "0.2", "--root", str(tmp_path), "--no-progress")
    assert r.returncode == 0, r.stderr
    ds = Path(r.stdout.strip().splitlines()[-1])
    assert ds.parent == tmp_path / "synthetic" and (ds / "manifest.csv").is_file()
    r = _cli("stream", "--dataset", str(ds), "--split", "train", "--minutes", "0.5", "--out", str(tmp_path / "long"))
    assert r.returncode == 0, r.stderr
    lab = json.loads((tmp_path / "long.json").read_text())
    assert lab["keywords"] and all(k["source"].startswith("clips/train/keyword/") for k in lab["keywords"])
    assert sf.info(str(tmp_path / "long.wav")).duration == pytest.approx(30.0)
