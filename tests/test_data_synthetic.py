"""Synthetic espeak-ng data set: layout contract, voice-disjoint splits, determinism, caching."""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest
import soundfile as sf

from data_scripts.config import DataConfig
from basics.errors import UserError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

TINY = dict(num_voices=6, clips_per_voice=1, stream_minutes=0.25, seed=7)


def _cfg(root: Path, **kw) -> DataConfig:
    d = dict(TINY)
    d.update(kw)
    return DataConfig(root=str(root), **d)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from data_scripts.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("synth")
    t0 = time.time()
    ds = prepare_synthetic(_cfg(root), progress=False)
    return ds, time.time() - t0, root


def _rows(ds: Path) -> list[dict]:
    with open(ds / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_layout_contract(tiny):
    ds, _, root = tiny
    assert ds.parent == root / "synthetic" and ds.name.startswith("alexa-")
    with open(ds / "manifest.csv", newline="") as fh:
        assert next(csv.reader(fh)) == ["path", "label", "split", "voice", "text"]
    rows = _rows(ds)
    assert len(rows) == 6 * 1 + 6 * 2  # keyword + 2.4x negatives (rounded) per voice
    for r in rows:
        assert r["label"] in ("keyword", "negative") and r["split"] in ("train", "val", "test")
        assert (r["label"] == "keyword") == (r["text"] == "alexa")
        info = sf.info(str(ds / r["path"]))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert 0.2 < info.duration <= 1.5
        x, _ = sf.read(str(ds / r["path"]))
        assert abs(x[:160]).max() < 1e-3 and abs(x[-160:]).max() < 1e-3  # silence around the speech
        assert abs(x).max() > 0.05
    for split in ("train", "val", "test"):
        assert {r["label"] for r in rows if r["split"] == split} == {"keyword", "negative"}
    info = json.loads((ds / "info.json").read_text())
    assert info["keyword"] == "alexa" and info["params"]["seed"] == 7
    assert sum(c for s in info["counts"].values() for c in s.values()) == len(rows)
    for split in ("val", "test"):
        lab = json.loads((ds / "stream" / f"{split}.json").read_text())
        assert sf.info(str(ds / "stream" / f"{split}.wav")).frames == round(lab["duration_s"] * 16000)
        assert lab["keywords"], "stream has keywords"
        srcs = {r["path"] for r in rows if r["split"] == split and r["label"] == "keyword"}
        assert {k["source"] for k in lab["keywords"]} <= srcs  # from that split's clips only


def test_splits_disjoint_by_voice_and_variant(tiny):
    rows = _rows(tiny[0])
    voices = {s: {r["voice"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert all(voices.values())
    assert not (voices["train"] & voices["val"]) and not (voices["train"] & voices["test"])
    assert not (voices["val"] & voices["test"])
    variants = {s: {v.split("+")[-1] for v in vs} for s, vs in voices.items()}
    assert not (variants["train"] & variants["test"]) and not (variants["train"] & variants["val"])


def test_cached_second_call(tiny):
    from data_scripts.synthetic import prepare_synthetic

    ds, first, root = tiny
    stamps = {p: p.stat().st_mtime_ns for p in ds.rglob("*") if p.is_file()}
    t0 = time.time()
    again = prepare_synthetic(_cfg(root), progress=False)
    assert again == ds
    assert {p: p.stat().st_mtime_ns for p in ds.rglob("*") if p.is_file()} == stamps  # nothing rewritten
    assert time.time() - t0 < min(1.0, first)  # and nothing synthesized
    assert prepare_synthetic(_cfg(root, seed=8), progress=False) != ds  # other params, other folder
    assert not [p for p in (root / "synthetic").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_same_seed_identical_bytes(tiny, tmp_path):
    from data_scripts.synthetic import prepare_synthetic

    ds = tiny[0]
    other = prepare_synthetic(_cfg(tmp_path), progress=False)
    assert other.name == ds.name
    a = sorted(p.relative_to(ds) for p in ds.rglob("*") if p.is_file())
    b = sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    assert a == b
    for rel in a:
        assert (ds / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_killed_run_leaves_nothing(tmp_path, monkeypatch):
    import data_scripts.synthetic as syn

    calls = []

    def boom(job, out_dir):
        calls.append(job)
        raise KeyboardInterrupt

    monkeypatch.setattr(syn, "_work", boom)
    with pytest.raises(KeyboardInterrupt):
        syn.prepare_synthetic(_cfg(tmp_path, num_voices=3), progress=False)
    assert calls
    assert not (tmp_path / "synthetic").exists() or not list((tmp_path / "synthetic").iterdir())


@pytest.mark.parametrize("keyword", ["alexa", "hey jarvis", "computer", "ok google", "marvin"])
def test_confusables_exclude_keyword(keyword):
    from data_scripts.synthetic import confusables, negative_words

    conf = confusables(keyword)
    assert len(conf) >= 15
    assert keyword not in conf
    assert all(f" {keyword} " not in f" {c} " for c in conf)
    assert keyword not in negative_words(keyword)
    if keyword == "alexa":
        assert {"alex", "lexa", "alexander", "alexis", "texas", "lexus"} <= set(conf)


@pytest.mark.parametrize("keyword", ["", "   ", "123", "alexa!", "x" * 50])
def test_bad_keyword_is_user_error(tmp_path, keyword):
    from data_scripts.synthetic import prepare_synthetic

    with pytest.raises(UserError, match="data.keyword"):
        prepare_synthetic(_cfg(tmp_path, keyword=keyword), progress=False)


def test_bad_voice_counts(tmp_path):
    from data_scripts.synthetic import prepare_synthetic

    with pytest.raises(UserError, match="num_voices"):
        prepare_synthetic(_cfg(tmp_path, num_voices=2), progress=False)
    with pytest.raises(UserError, match="num_voices"):
        prepare_synthetic(_cfg(tmp_path, num_voices=100000), progress=False)


def test_more_soundalikes_widen_the_confusables_and_key_the_caches_only_when_set(tmp_path):
    from data_scripts.sources import mix_params, parse_sources
    from data_scripts.synthetic import _text_sets, generation_params
    from data_scripts.tts import plan_tts, tts_params, backend

    base, more = _text_sets("alexa"), _text_sets("alexa", 64)
    assert base == _text_sets("alexa", 0) and set(base[0]) < set(more[0])
    assert len(more[0]) - len(base[0]) == 64 - 16 and "amelia" in more[0] and "alexa" not in more[0]
    cfg = DataConfig(tts="espeak")
    assert "soundalikes" not in generation_params(cfg) and "soundalikes" not in mix_params(parse_sources(cfg), cfg)
    be = backend("espeak", "", str(tmp_path))
    assert "soundalikes" not in tts_params("espeak", "alexa", 9, 4, 4, 1, be)   # old caches keep their keys
    cfg.soundalikes = 64
    assert generation_params(cfg)["soundalikes"] == 64 and mix_params(parse_sources(cfg), cfg)["soundalikes"] == 64
    jobs = plan_tts(be, "alexa", 30, 1, 10, 1, soundalikes=64)
    used = {j.text for j in jobs if j.kind == "confusable"}
    assert used <= set(more[0]) and used - set(base[0])   # the wider set is drawn from
