"""Many data sources mixed by weight; TTS backends; the resumable clip cache."""
import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from data_scripts import tts
from data_scripts.sources import parse_sources, prepare_mix
from data_scripts.config import DataConfig
from training.dataset import Clip, read_manifest, source_multipliers
from basics.errors import UserError


def _cfg(tmp_path, **kw):
    d = DataConfig(root=str(tmp_path / "data"), num_voices=6, clips_per_voice=1, stream_minutes=0.2, **kw)
    return d


def _folder(path, n, seconds=1.0, seed=0):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = (0.2 * np.sin(np.arange(int(seconds * 16000)) * rng.uniform(0.02, 0.2))).astype(np.float32)
        sf.write(path / f"f{i}.wav", x, 16000)
    return path


@pytest.mark.parametrize("bad, msg", [
    ([{"kind": "tape"}], "unknown source kind"),
    ([{"kind": "espeak", "weight": -1}], "weight must be"),
    ([{"kind": "espeak", "colour": 1}], "unknown key"),
    ([{"kind": "folder", "role": "negative"}], "needs 'path'"),
    ([{"kind": "folder", "role": "negative", "path": "/nonexistent/x"}], "no such folder"),
    ([{"kind": "espeak", "weight": 0}], "sum to zero"),
    (["espeak"], "expected a mapping"),
    ([{"kind": "espeak"}, {"kind": "sentences", "role": "positive"}], "sentences source's role is negative"),
    ([{"kind": "espeak"}, {"kind": "sentences", "backends": "espeak,tape"}], "unknown TTS backend 'tape'"),
    ([{"kind": "espeak", "backends": "espeak"}], "sentences sources only"),
])
def test_bad_sources_one_line(tmp_path, bad, msg):
    with pytest.raises(UserError, match=msg):
        parse_sources(_cfg(tmp_path, sources=bad))


def test_only_negatives_is_refused(tmp_path):
    neg = _folder(tmp_path / "neg", 2)
    with pytest.raises(UserError, match="no source gives keyword clips"):
        parse_sources(_cfg(tmp_path, sources=[{"kind": "folder", "role": "negative", "path": str(neg)}]))


def test_warns_when_only_the_keyword_has_real_recordings(tmp_path, capsys):
    pos, neg = _folder(tmp_path / "mine", 2), _folder(tmp_path / "real_neg", 2, seed=1)
    parse_sources(_cfg(tmp_path, sources=[{"kind": "espeak"}, {"kind": "folder", "role": "positive", "path": str(pos)}]))
    assert "can learn the microphone" in capsys.readouterr().err
    parse_sources(_cfg(tmp_path, sources=[{"kind": "espeak"}, {"kind": "folder", "role": "positive", "path": str(pos)},
                                          {"kind": "folder", "role": "negative", "path": str(neg)}]))
    parse_sources(_cfg(tmp_path, sources=[{"kind": "espeak"}, {"kind": "folder", "role": "negative", "path": str(neg)}]))
    out = capsys.readouterr()
    assert "microphone" not in out.err + out.out


def test_weights_set_each_sources_share_within_its_label():
    clips = ([Clip("a", "keyword", "train", "", "", "tts", 3.0)] * 10 + [Clip("b", "keyword", "train", "", "", "me", 1.0)] * 40
             + [Clip("c", "negative", "train", "", "", "tts", 1.0)] * 30 + [Clip("d", "negative", "train", "", "", "real", 2.0)] * 10)
    m = source_multipliers(clips)
    # keyword windows: tts 3/4, me 1/4 of 50 clips' worth
    assert 10 * m[("tts", "keyword")] == pytest.approx(37.5) and 40 * m[("me", "keyword")] == pytest.approx(12.5)
    assert 30 * m[("tts", "negative")] == pytest.approx(40 / 3) and 10 * m[("real", "negative")] == pytest.approx(80 / 3)
    assert source_multipliers([Clip("a", "keyword", "train", "", "")]) == {}


def test_espeak_backend_and_resumable_clip_cache(tmp_path, monkeypatch):
    be = tts.backend("espeak")
    be.check()
    x = be.synth("alexa", be.speakers(1, np.random.default_rng(0))[0])
    assert x.dtype == np.float32 and 0.2 * 16000 < len(x) < 2 * 16000 and np.abs(x).max() > 0.05
    ds = tts.prepare_tts("espeak", "alexa", num_speakers=4, keyword_clips=1, negative_clips=1, seed=5,
                         root=tmp_path, stream_minutes=0.1, workers=1, progress=False)
    rows = list(csv.DictReader(open(ds / "manifest.csv")))
    assert {r["label"] for r in rows} == {"keyword", "negative"} and len(rows) == 8
    # splits are disjoint by speaker
    by = {}
    for r in rows:
        by.setdefault(r["voice"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by.values()) and {"train", "val", "test"} <= {r["split"] for r in rows}
    # a second data set with the same plan renders nothing: every clip comes from the cache
    shutil.rmtree(ds)
    monkeypatch.setattr(tts.EspeakBackend, "synth", lambda *a: (_ for _ in ()).throw(AssertionError("rendered")))
    ds2 = tts.prepare_tts("espeak", "alexa", num_speakers=4, keyword_clips=1, negative_clips=1, seed=5,
                          root=tmp_path, stream_minutes=0.1, workers=1, progress=False)
    assert len(list(csv.DictReader(open(ds2 / "manifest.csv")))) == 8


@pytest.mark.parametrize("name", ["flite", "festival"])
def test_debian_voices_speak_the_word(name):
    from tests.fuzz_support import need_tool

    need_tool({"flite": "flite", "festival": "text2wave"}[name])
    be = tts.backend(name)
    be.check()
    for spk in be.speakers(3, np.random.default_rng(1)):
        x = be.synth("alexa", spk)
        assert x.dtype == np.float32 and 0.3 * 16000 < len(x) < 2 * 16000 and np.abs(x).max() > 0.05, spk
    with pytest.raises(UserError, match=name):
        be.synth("alexa", "no_such_voice:1.0")


def test_missing_backend_named_with_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="kokoro: no voice-pack folder"):
        tts.backend("kokoro").check()
    with pytest.raises(UserError, match="no voice packs"):
        tts.backend("kokoro", tmp_path).check()
    ok, missing = tts.available_backends(names=("espeak", "kokoro"))
    assert ok == ["espeak"] and "voice-pack" in missing["kokoro"]
    with pytest.raises(UserError, match="unknown TTS backend"):
        tts.backend("festival9")


def test_mix_of_tts_and_real_folders(tmp_path):
    neg = _folder(tmp_path / "real_neg", 10, seconds=2.5)  # longer than 1.5 s: cut into pieces
    pos = _folder(tmp_path / "my_alexa", 6, seconds=0.8, seed=1)
    noise = _folder(tmp_path / "noise", 1, seconds=3.0, seed=2)
    cfg = _cfg(tmp_path, sources=[
        {"kind": "espeak", "weight": 1}, {"kind": "folder", "role": "negative", "path": str(neg), "weight": 2},
        {"kind": "folder", "role": "positive", "path": str(pos), "weight": 1},
        {"kind": "folder", "role": "noise", "path": str(noise)}])
    ds = prepare_mix(cfg, progress=False)
    clips = read_manifest(ds)
    srcs = {c.source for c in clips}
    assert srcs == {"espeak", "folder:real_neg", "folder:my_alexa"}
    assert all(c.path.is_file() for c in clips)
    mine = [c for c in clips if c.source == "folder:my_alexa"]
    assert sum(c.label == "keyword" for c in mine) == 6
    # counterparts (on by default): head, tail and reversed of every take, negatives, in the take's split
    cuts = [c for c in mine if c.label == "negative"]
    assert len(cuts) == 18 and {c.text for c in cuts} == {"alexa (head)", "alexa (tail)", "alexa (reversed)"}
    split_of = {c.path.stem: c.split for c in mine if c.label == "keyword"}
    assert all(c.split == split_of[c.path.stem.rsplit("-", 1)[0]] for c in cuts)
    assert {c.label for c in clips if c.source == "folder:real_neg"} == {"negative"}
    assert sum(c.source == "folder:real_neg" for c in clips) >= 15  # 2.5 s files -> 2 pieces each
    assert {c.weight for c in clips if c.source == "folder:real_neg"} == {2.0}
    assert (ds / "stream" / "val.wav").is_file() and (ds / "stream" / "test.json").is_file()
    assert prepare_mix(cfg, progress=False) == ds  # cached


def test_sentences_source_is_running_speech_cut_into_clips(tmp_path):
    from data_scripts.common import read_manifest_rows
    from data_scripts.sentences import prepare_sentences, sentences

    d = _cfg(tmp_path, tts="espeak", sentences=3)
    srcs = parse_sources(d)
    sent = [s for s in srcs if s.kind == "sentences"]
    assert len(sent) == 1 and sent[0].role == "negative" and sent[0].backends == "espeak"
    assert sent[0].speakers * sent[0].negative_clips >= 3
    ds = prepare_sentences("alexa", ["espeak"], speakers=3, per_speaker=2, seed=5, root=str(tmp_path / "data"),
                           workers=2, progress=False)
    rows = read_manifest_rows(ds)
    assert rows and all(r["label"] == "negative" for r in rows)
    durs = [sf.info(str(ds / r["path"])).duration for r in rows]
    assert max(durs) <= 1.5 + 1e-6 and min(durs) >= 0.25
    texts = {r["text"] for r in rows}
    assert len(texts) == 6 and all(5 <= len(t.split()) <= 15 and "alexa" not in t for t in texts)
    assert len(rows) > len(texts)  # sentences are longer than one clip: several pieces each
    by_split = {}
    for r in rows:
        by_split.setdefault(r["voice"], set()).add(r["split"])
    assert all(len(v) == 1 for v in by_split.values()) and len(by_split) == 3  # speaker-disjoint splits
    assert prepare_sentences("alexa", ["espeak"], speakers=3, per_speaker=2, seed=5, root=str(tmp_path / "data"),
                             progress=False) == ds  # cached
    assert sentences(4, "alexa", 1) == sentences(4, "alexa", 1) != sentences(4, "alexa", 2)
    with pytest.raises(UserError, match="at least|>= 3 speakers"):
        prepare_sentences("alexa", ["espeak"], speakers=2, per_speaker=1, root=str(tmp_path / "data"))


def test_tts_all_can_leave_a_backend_out(tmp_path):
    kinds = [s.kind for s in parse_sources(_cfg(tmp_path, tts="all,-festival"))]
    assert "espeak" in kinds and "festival" not in kinds
    with pytest.raises(UserError, match="unknown TTS backend 'tape'"):
        parse_sources(_cfg(tmp_path, tts="all,-tape"))
    with pytest.raises(UserError, match="out of 'all' only"):
        parse_sources(_cfg(tmp_path, tts="espeak,-flite"))


def test_keyword_counterparts_cut_around_the_word():
    from data_scripts.speech_commands import keyword_counterparts
    sr = 16000
    y = np.zeros(int(1.2 * sr), np.float32)
    y[int(0.2 * sr):int(1.0 * sr)] = 0.3 * np.sin(np.arange(int(0.8 * sr)) * 0.1)   # 0.8 s of "speech"
    c = keyword_counterparts(y)
    assert set(c) == {"head", "tail", "reversed"}
    assert np.array_equal(c["reversed"], y[::-1])
    # the head ends and the tail starts 45 % into / before the end of the speech: the middle is in neither
    assert abs(len(c["head"]) - int(0.2 * sr + 0.45 * 0.8 * sr)) <= 320
    assert abs(len(c["tail"]) - int(0.2 * sr + 0.45 * 0.8 * sr)) <= 320
    assert np.array_equal(c["head"], y[:len(c["head"])]) and np.array_equal(c["tail"], y[len(y) - len(c["tail"]):])
    assert keyword_counterparts(np.zeros(800, np.float32)) == {}   # 50 ms: every piece under 0.1 s


def test_counterparts_can_be_turned_off_and_change_the_cache_key(tmp_path):
    from data_scripts.sources import mix_params
    pos = _folder(tmp_path / "my_alexa", 4, seconds=0.8, seed=1)
    on = [{"kind": "espeak"}, {"kind": "folder", "role": "positive", "path": str(pos)}]
    off = [{"kind": "espeak"}, {"kind": "folder", "role": "positive", "path": str(pos), "counterparts": False}]
    s_on, s_off = parse_sources(_cfg(tmp_path, sources=on)), parse_sources(_cfg(tmp_path, sources=off))
    assert s_on[1].counterparts and not s_off[1].counterparts
    assert mix_params(s_on, _cfg(tmp_path)) != mix_params(s_off, _cfg(tmp_path))
    # a negative folder never has counterparts, and its cache key is what it was before the option existed
    neg = parse_sources(_cfg(tmp_path, sources=[{"kind": "espeak"}, {"kind": "folder", "role": "negative", "path": str(pos)}]))
    assert not neg[1].counterparts and "counterparts" not in mix_params(neg, _cfg(tmp_path))["sources"][1]
    with pytest.raises(UserError, match="counterparts must be true or false"):
        parse_sources(_cfg(tmp_path, sources=[{"kind": "espeak"}, {"kind": "folder", "role": "positive", "path": str(pos),
                                                                   "counterparts": "yes"}]))
    ds = prepare_mix(_cfg(tmp_path, sources=off), progress=False)
    assert {c.label for c in read_manifest(ds) if c.source == "folder:my_alexa"} == {"keyword"}


def test_positive_dirs_join_at_positive_weight(tmp_path):
    pos = _folder(tmp_path / "my_alexa", 2, seconds=0.8, seed=1)
    srcs = parse_sources(_cfg(tmp_path, positive_dirs=[str(pos)]))
    mine = [s for s in srcs if s.role == "positive"]
    assert len(mine) == 1 and mine[0].weight == 0.25 and mine[0].counterparts
    assert [s.weight for s in parse_sources(_cfg(tmp_path, positive_dirs=[str(pos)], positive_weight=2.0))
            if s.role == "positive"] == [2.0]
    assert all(s.weight == 1.0 for s in parse_sources(_cfg(tmp_path, negative_dirs=[str(pos)])) if s.kind == "folder")
