"""Kokoro-82M synthesis with the real model and voice packs (development only: the packs are in ../shared)."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from data_scripts import tts

VOICES = Path(__file__).resolve().parents[1].parent / "shared" / "tts" / "kokoro" / "voices"
pytestmark = pytest.mark.skipif(not VOICES.is_dir(), reason=f"Kokoro voice packs not present ({VOICES}): "
                                "they sit beside the checkout in development only")


def test_kokoro_blended_speaker_says_a_word(tmp_path):
    b = tts.backend("kokoro", VOICES)
    b.cache_dir = tmp_path
    speaker = b.speakers(1, np.random.default_rng(0))[0]
    audio = b.synth("alexa", speaker)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.3 * tts.SAMPLE_RATE < len(audio) < 2.5 * tts.SAMPLE_RATE   # one word at 16 kHz, not silence or a run-on
    assert np.sqrt(np.mean(audio ** 2)) > 0.01


def _load(args) -> str:
    voices, cache = args
    b = tts.backend("kokoro", voices)
    b.cache_dir = Path(cache)
    b._load()
    return "ok"


def test_parallel_workers_join_the_model_once(tmp_path):
    # the package joins its parts through a fixed temporary name: before the lock, parallel workers on a fresh
    # cache crashed with FileNotFoundError on that name's rename (a realnoise + Kokoro run, 2026-12-01)
    with mp.get_context("spawn").Pool(3) as pool:
        assert pool.map(_load, [(str(VOICES), str(tmp_path))] * 3) == ["ok"] * 3
    assert len(list(tmp_path.glob("*.onnx"))) == 1 and not list(tmp_path.glob("*.tmp"))
