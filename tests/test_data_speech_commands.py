"""Speech Commands preparation on a tiny fixture in the real layout; own-recordings folders; download."""
from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.config import DataConfig
from basics.errors import UserError

SR = 16000
WORDS = ("marvin", "yes", "no")
SPEAKERS = ("0a1b2c3d", "1f2e3d4c", "2b3c4d5e", "3c4d5e6f", "4d5e6f70")


def _utterance(freq: float, seed: int, n: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 0.002 * rng.standard_normal(n)  # Speech Commands clips carry some room noise
    a, b = int(0.3 * n), int(0.7 * n)
    t = np.arange(b - a) / SR
    x[a:b] += 0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(b - a)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def sc_folder(tmp_path_factory):
    """speech_commands_v0.02 layout: word/<speaker>_nohash_<n>.wav, the two lists, _background_noise_."""
    root = tmp_path_factory.mktemp("sc") / "speech_commands_v0.02"
    val, test = [], []
    for wi, w in enumerate(WORDS):
        for si, spk in enumerate(SPEAKERS):
            for n in range(2):
                rel = f"{w}/{spk}_nohash_{n}.wav"
                p = root / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(p), _utterance(300 + 200 * wi, wi * 100 + si * 10 + n), SR, subtype="PCM_16")
                if si == 3:
                    val.append(rel)
                elif si == 4:
                    test.append(rel)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir()
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    sf.write(str(root / "_background_noise_" / "white_noise.wav"), noise, SR, subtype="PCM_16")
    (root / "_background_noise_" / "README.md").write_text("noise\n")
    (root / "LICENSE").write_text("CC-BY-4.0\n")
    return root


def _rows(ds: Path) -> list[dict]:
    with open(ds / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_speech_commands_splits_from_lists(sc_folder, tmp_path):
    from data_scripts.speech_commands import prepare_speech_commands

    cfg = DataConfig(source="speech_commands", keyword="marvin", folder=str(sc_folder), root=str(tmp_path),
                     stream_minutes=0.2)
    ds = prepare_speech_commands(cfg, progress=False)
    assert ds.parent == tmp_path / "speech_commands"
    rows = _rows(ds)
    assert len(rows) == len(WORDS) * len(SPEAKERS) * 2
    val = set((sc_folder / "validation_list.txt").read_text().split())
    test = set((sc_folder / "testing_list.txt").read_text().split())
    for r in rows:
        rel = r["path"].removeprefix("clips/")
        want = "test" if rel in test else "val" if rel in val else "train"
        assert r["split"] == want, r
        assert r["label"] == ("keyword" if rel.startswith("marvin/") else "negative")
        assert r["text"] == rel.split("/")[0]
        assert r["voice"] == Path(rel).name.split("_nohash_")[0]
        assert (ds / r["path"]).read_bytes() == (sc_folder / rel).read_bytes()
    voices = {s: {r["voice"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert not (voices["train"] & voices["test"]) and not (voices["train"] & voices["val"])
    assert [p.name for p in (ds / "noise").iterdir()] == ["white_noise.wav"]
    info = json.loads((ds / "info.json").read_text())
    assert info["counts"]["test"] == {"keyword": 2, "negative": 4}
    assert info["keyword"] == "marvin" and info["words"] == sorted(WORDS)
    for split in ("val", "test"):
        lab = json.loads((ds / "stream" / f"{split}.json").read_text())
        srcs = {r["path"] for r in rows if r["split"] == split and r["label"] == "keyword"}
        assert lab["keywords"] and {k["source"] for k in lab["keywords"]} <= srcs
    assert prepare_speech_commands(cfg, progress=False) == ds  # cached


def test_speech_commands_bad_input(sc_folder, tmp_path):
    from data_scripts.speech_commands import prepare_speech_commands

    with pytest.raises(UserError, match=r"data.keyword: 'alexa' is not a word of .*marvin, no, yes"):
        prepare_speech_commands(DataConfig(keyword="alexa", folder=str(sc_folder), root=str(tmp_path)), progress=False)
    with pytest.raises(UserError, match="no such Speech Commands folder"):
        prepare_speech_commands(DataConfig(keyword="yes", folder=str(tmp_path / "nope"), root=str(tmp_path)))
    broken = tmp_path / "broken"
    (broken / "yes").mkdir(parents=True)
    (broken / "validation_list.txt").write_text("")
    with pytest.raises(UserError, match="testing_list.txt: missing"):
        prepare_speech_commands(DataConfig(keyword="yes", folder=str(broken), root=str(tmp_path)))
    (broken / "testing_list.txt").write_text("")
    (broken / "yes" / "bad_nohash_0.wav").write_bytes(b"not audio")
    with pytest.raises(UserError, match="bad_nohash_0.wav: not a readable audio file"):
        prepare_speech_commands(DataConfig(keyword="yes", folder=str(broken), root=str(tmp_path)), progress=False)
    assert not (tmp_path / "speech_commands").exists() or not list((tmp_path / "speech_commands").iterdir())


def test_own_recordings_folder(tmp_path):
    from data_scripts.speech_commands import prepare_folder

    src = tmp_path / "recordings"
    rng = np.random.default_rng(1)
    for i in range(12):
        p = src / "hey_robot" / f"take{i}.flac"  # any format, any rate
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), _utterance(700, i), SR)
    for spk in ("ann", "bob", "cy"):
        for i in range(3):
            p = src / "other" / spk / f"o{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            x = _utterance(400, 50 + i, n=44100)
            sf.write(str(p), x, 44100, subtype="PCM_16")
    long = np.concatenate([_utterance(500, 90 + k) for k in range(4)])  # 4 s of negative speech
    sf.write(str(src / "other" / "long.wav"), long, SR, subtype="PCM_16")
    (src / "_noise").mkdir()
    sf.write(str(src / "_noise" / "fan.wav"), (0.02 * rng.standard_normal(2 * SR)).astype(np.float32), SR)
    cfg = DataConfig(source="folder", keyword="hey robot", folder=str(src), root=str(tmp_path / "data"),
                     stream_minutes=0.2)
    ds = prepare_folder(cfg, progress=False)
    rows = _rows(ds)
    kw = [r for r in rows if r["label"] == "keyword"]
    assert len(kw) == 12 and all(r["path"].startswith("clips/hey_robot/") and r["path"].endswith(".wav") for r in kw)
    for r in rows:
        info = sf.info(str(ds / r["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16") and info.duration <= 1.5
    assert len([r for r in rows if "long-part" in r["path"]]) >= 2  # long negative cut into pieces
    spk_split = {}
    for r in rows:
        if r["voice"]:
            spk_split.setdefault(r["voice"], set()).add(r["split"])
    assert set(spk_split) == {"ann", "bob", "cy"} and all(len(s) == 1 for s in spk_split.values())
    assert (ds / "noise" / "fan.wav").is_file()
    # deterministic split by content hash, independent of the seed
    again = prepare_folder(DataConfig(keyword="hey robot", folder=str(src), root=str(tmp_path / "d2"), seed=99,
                                      stream_minutes=0.2), progress=False)
    assert {(r["path"], r["split"]) for r in _rows(again)} == {(r["path"], r["split"]) for r in rows}
    with pytest.raises(UserError, match="data.keyword: no subfolder 'computer'"):
        prepare_folder(DataConfig(keyword="computer", folder=str(src), root=str(tmp_path / "data")))
    with pytest.raises(UserError, match="no such data folder"):
        prepare_folder(DataConfig(keyword="hey robot", folder=str(tmp_path / "missing"), root=str(tmp_path)))


def test_download_resume_and_extract(tmp_path):
    from data_scripts.speech_commands import download, extract

    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tf:
        data = b"hello\n" * 1000
        ti = tarfile.TarInfo("yes/a_nohash_0.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    blob = payload.getvalue()
    srv = tmp_path / "server" / "sc.tar.gz"
    srv.parent.mkdir()
    srv.write_bytes(blob)
    dest = tmp_path / "dl" / "sc.tar.gz"
    got = download(srv.as_uri(), dest, progress=False)
    assert got.read_bytes() == blob and not dest.with_name("sc.tar.gz.part").exists()
    out = extract(got, tmp_path / "extracted", progress=False)
    assert (out / "yes" / "a_nohash_0.txt").read_bytes() == data
    with pytest.raises(UserError, match="download failed"):
        download((tmp_path / "server" / "missing.tar.gz").as_uri(), tmp_path / "dl" / "x.tar.gz", progress=False)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match="cannot extract"):
        extract(bad, tmp_path / "bad_out", progress=False)
    assert not (tmp_path / "bad_out").exists()
