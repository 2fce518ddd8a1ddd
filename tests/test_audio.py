"""Bad audio never crashes: one line naming the file."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from basics.audio import load_audio
from basics.errors import UserError


def test_reads_resamples_and_mixes_down(tmp_path, capsys):
    x = np.sin(np.linspace(0, 100, 8000)).astype(np.float32) * 0.5
    sf.write(tmp_path / "a.wav", np.stack([x, x], 1), 8000)
    y = load_audio(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    assert "resampling 8000 Hz" in capsys.readouterr().err


@pytest.mark.parametrize("content,msg", [(b"", "not a readable audio file"), (b"RIFF\x00\x00garbage" * 10, "not a readable")])
def test_corrupt_files(tmp_path, content, msg):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(UserError, match=msg) as e:
        load_audio(p)
    assert str(p) in str(e.value)


def test_empty_and_missing(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(UserError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(UserError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_evaluate_cli_on_missing_run_dir(tmp_path):
    r = subprocess.run([sys.executable, "-m", "training.evaluate", str(tmp_path / "nothing")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no such model, manifest or run directory" in r.stderr and "Traceback" not in r.stderr
