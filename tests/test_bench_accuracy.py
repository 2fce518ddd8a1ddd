"""The dev benchmark's tools: the long synthetic negative stream and the second FA/h figure."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import devbench, negstream
from basics.errors import UserError
from training.scoring import load_detector
from data_scripts.vocabulary import SOUNDALIKE_POOL

ROOT = Path(__file__).resolve().parents[1]


def test_sentences_never_hold_the_keyword_and_are_deterministic():
    a = negstream.sentences(300, "alexa", 5)
    assert a == negstream.sentences(300, "alexa", 5) and a != negstream.sentences(300, "alexa", 6)
    assert all(5 <= len(s.split()) <= 15 for s in a)
    assert not any("alexa" in w for s in a for w in s.split())
    assert any(w in SOUNDALIKE_POOL for s in a for w in s.split())  # confusable words do occur


def test_music_and_stream_shape():
    rng = np.random.default_rng(0)
    m = negstream.music(3.0, rng)
    assert m.shape == (48000,) and np.isfinite(m).all() and 0.3 < np.max(np.abs(m)) <= 0.6 + 1e-6
    speech = [np.sin(np.arange(16000 * k) / 9).astype(np.float32) * 0.5 for k in (1, 2, 3)]
    noise = [np.random.default_rng(1).standard_normal(16000).astype(np.float32)]
    y, info = negstream.build_stream(speech, noise, 0.05, 7)
    assert y.shape == (int(0.05 * 3600 * 16000),) and np.max(np.abs(y)) <= 0.99 + 1e-6
    assert abs(sum(info["seconds"].values()) - 180.0) < 0.01
    assert info["blocks"][0][1] == 0 and info["blocks"][-1][2] == 180.0
    assert all(a[2] == b[1] for a, b in zip(info["blocks"], info["blocks"][1:]))  # blocks tile the stream
    y2, _ = negstream.build_stream(speech, noise, 0.05, 7)
    assert np.array_equal(y, y2)
    with pytest.raises(UserError, match="no sentences"):
        negstream.build_stream([], noise, 0.01, 7)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make setup)")
def test_negstream_cli_writes_flac_and_description(tmp_path):
    out = tmp_path / "neg.flac"
    with pytest.raises(SystemExit) as e:
        negstream.main(["--hours", "0.005", "--sentences", "4", "--backends", "espeak", "--root",
                        str(tmp_path / "data"), "--out", str(out), "--no-progress", "--workers", "1"])
    assert e.value.code == 0
    y, sr = sf.read(out)
    assert sr == 16000 and len(y) == int(0.005 * 3600 * 16000)
    d = json.loads(out.with_suffix(".json").read_text())
    assert d["backends"] == ["espeak"] and d["sentences"] == 4
    assert not [p for p in tmp_path.rglob("*.tmp*")]  # nothing half-written left behind


def test_negstream_bad_input_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        negstream.main(["--hours", "0"])
    assert e.value.code != 0 and "--hours" in capsys.readouterr().err


def test_devbench_second_fa_figure(tmp_path):
    rng = np.random.default_rng(3)
    for d, n, sec in (("pos", 3, 1.2), ("neg", 2, 20.0)):
        (tmp_path / d).mkdir()
        for i in range(n):
            sf.write(tmp_path / d / f"{i}.flac", (0.1 * rng.standard_normal(int(sec * 16000))).astype(np.float32), 16000)
    long = tmp_path / "long.flac"
    sf.write(long, (0.1 * rng.standard_normal(60 * 16000)).astype(np.float32), 16000)
    dev = devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",))
    r = devbench.evaluate_model(load_detector(ROOT / "models" / "alexa-w1.tflite"), dev, long)
    assert r["long_negative_hours"] == round(60 / 3600, 3)
    assert r["missed_at_1fah_long"] == round(r["frr_at_1fah_long"] * 3)
    assert r["fah_long_at_threshold_1fah"] >= 0 and r["fah_long_at_threshold_1fah"] * 60 / 3600 == pytest.approx(
        round(r["fah_long_at_threshold_1fah"] * 60 / 3600))  # a whole number of detections


def test_false_accepts_by_kind(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"blocks": [["speech", 0, 1800], ["music", 1800, 3600],
                                                            ["speech", 3600, 5400]]}))
    got = devbench.false_accepts_by_kind(tmp_path / "s.flac", np.array([10.0, 1800.0, 1801.0, 5000.0]))
    assert got == {"speech": 3 / 1.0, "music": 1 / 0.5}
    assert devbench.false_accepts_by_kind(tmp_path / "missing.flac", np.array([1.0])) == {}


def test_devbench_summary_mixed_bits_and_long_column():
    base = {"benchmark": "dev_real", "positives": 80, "frr_at_0p5fah": 0.1, "missed_at_1fah": 8}
    recs = [{**base, "recipe": "demo", "weight_bits": 4, "seed": s, "frr_at_1fah": f, "frr_at_1fah_long": 0.2}
            for s, f in ((1, 0.1), (2, 0.3))]
    recs.append({**base, "recipe": "demo", "weight_bits": "1,2,2,2,8", "seed": 1, "frr_at_1fah": 0.05})
    t = devbench.summary_table(recs)
    assert "| demo | 4 | - | 2 | 20.0% (10.0-30.0) |" in t and "| 20.0% (20.0-20.0) |" in t
    assert "| demo | 1,2,2,2,8 (per layer) |" in t and t.rstrip().endswith("| - | - | - |")


def test_devbench_third_figure_real_hard_negatives(tmp_path):
    rng = np.random.default_rng(4)
    folders = (("pos", 3, 1.2), ("neg", 2, 20.0), ("real/mycroft_precise/athena", 2, 10.0),
               ("real/sc_v1_sample", 3, 1.0), ("real/elsewhere", 1, 5.0))   # the last is not a hard folder
    for d, n, sec in folders:
        (tmp_path / d).mkdir(parents=True)
        for i in range(n):
            sf.write(tmp_path / d / f"{i}.flac", (0.1 * rng.standard_normal(int(sec * 16000))).astype(np.float32), 16000)
    dev = devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",))
    det = load_detector(ROOT / "models" / "alexa-w1.tflite")
    r = devbench.evaluate_model(det, dev, hard=True)
    gap = 2 * devbench.HARD_GAP_S
    spans = {"real/mycroft_precise/athena": 2 * (10.0 + gap), "real/sc_v1_sample": 3 * (1.0 + gap)}
    assert set(r["fah_hard_by_folder"]) == set(spans)
    assert r["hard_negative_hours"] == round(sum(spans.values()) / 3600, 3)
    assert r["missed_at_1fah_hard"] == round(r["frr_at_1fah_hard"] * 3)
    # five false accepts an hour allowed: never more misses than at one
    assert r["frr_at_5fah_hard"] <= r["frr_at_1fah_hard"] and r["missed_at_5fah_hard"] == round(r["frr_at_5fah_hard"] * 3)
    # per-folder rates add up to the whole: the same detections, each counted in the folder it fell in
    total = sum(r["fah_hard_by_folder"][k] * s / 3600 for k, s in spans.items())
    assert total == pytest.approx(r["fah_hard_at_threshold_1fah"] * sum(spans.values()) / 3600, abs=0.02)
    assert "frr_at_1fah_hard" not in devbench.evaluate_model(det, dev)
    q = r["positive_score_quantiles"]
    assert set(q) == {"10", "50"} and 0.0 <= q["10"] <= q["50"] <= 1.0
    # the top files: real files of the hard folders, highest first, each with the positives it outscores
    top = r["top_hard_negatives"]
    assert 1 <= len(top) <= devbench.TOP_HARD
    assert all((tmp_path / t["file"]).is_file() and not t["file"].startswith("real/elsewhere") for t in top)
    assert [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    with pytest.raises(UserError, match="no hard-negative folders"):
        devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",)).hard_negatives(("real/none*",))


def test_top_files_attributes_each_decision_to_the_file_it_ends_in():
    from training.scoring import StreamScores
    spans = [("a.flac", 0, 16000), ("b.flac", 16000, 48000), ("c.flac", 48000, 64000)]
    times = np.array([0.5, 0.99, 1.0, 1.5, 2.9, 3.0, 3.5, 4.0])
    smoothed = np.array([0.2, 0.1, 0.3, 0.9, 0.4, 0.8, 0.05, 0.6])
    sc = StreamScores(times=times, posterior=smoothed, smoothed=smoothed, duration_s=4.0)
    top = devbench.top_files(sc, spans, pos=np.array([0.1, 0.5, 0.85, 0.95]), n=2)
    # b holds the decisions ending in (1 s, 3 s]: 0.9, 0.4 and 0.8; a holds 0.2, 0.1 and 0.3 (the one at exactly 1 s)
    assert top == [{"file": "b.flac", "score": 0.9, "positives_below": 3},
                   {"file": "c.flac", "score": 0.6, "positives_below": 2}]
    assert devbench.top_files(sc, [], pos=np.array([0.5])) == []


def test_devbench_hard_halves_split_the_files_and_score_apart(tmp_path):
    rng = np.random.default_rng(5)
    for d, n, sec in (("pos", 3, 1.2), ("neg", 2, 20.0), ("real/mycroft_precise/athena", 12, 1.0),
                      ("real/sc_v1_sample/dog", 10, 1.0)):
        (tmp_path / d).mkdir(parents=True)
        for i in range(n):
            sf.write(tmp_path / d / f"{i}.flac", (0.1 * rng.standard_normal(int(sec * 16000))).astype(np.float32), 16000)
    full = devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",))
    halves = {h: devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",), hard_half=h).hard_files()
              for h in devbench.HALVES}
    for d, files in full.hard_files().items():
        a, b = set(halves["train"][d]), set(halves["eval"][d])
        assert a | b == set(files) and not a & b   # every file in exactly one half, subfolders included
    n_train = sum(len(v) for v in halves["train"].values())
    assert 0 < n_train < 22
    devbench.link_half(devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",), hard_half="train"), tmp_path / "mine")
    linked = sorted((tmp_path / "mine").iterdir())
    assert len(linked) == n_train and all(p.is_symlink() and p.resolve().is_file() for p in linked)
    det = load_detector(ROOT / "models" / "alexa-w1.tflite")
    ev = devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",), hard_half="eval")
    r = devbench.evaluate_model(det, ev, hard=True)
    gap = 2 * devbench.HARD_GAP_S
    assert r["hard_half"] == "eval" and r["hard_negative_hours"] == round((22 - n_train) * (1.0 + gap) / 3600, 3)
    t = devbench.summary_table([{"benchmark": "dev_real", "recipe": "demo", "positives": 3, **r},
                                {"benchmark": "dev_real", "recipe": "demo", "positives": 3,
                                 **devbench.evaluate_model(det, full, hard=True)}])
    assert "| demo [hard negatives: eval half] |" in t and "| demo | float |" in t


def test_devbench_keyword_halves_are_disjoint_and_scored_apart(tmp_path):
    rng = np.random.default_rng(6)
    for d, n, sec in (("pos", 7, 1.2), ("neg", 2, 10.0)):
        (tmp_path / d).mkdir(parents=True)
        for i in range(n):
            sf.write(tmp_path / d / f"k{i:02d}.flac", (0.1 * rng.standard_normal(int(sec * 16000))).astype(np.float32),
                     16000)
    halves = {h: devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",), keyword_half=h) for h in devbench.HALVES}
    train, ev = ({f.name for f in halves[h].pos_files} for h in ("train", "eval"))
    # name order, every other clip: disjoint, together all seven, and the same whatever order the disk lists them in
    assert train == {"k00.flac", "k02.flac", "k04.flac", "k06.flac"} and ev == {"k01.flac", "k03.flac", "k05.flac"}
    assert len(halves["eval"].positives) == 3
    devbench.link_half(halves["train"], tmp_path / "mine", keywords=True)
    assert sorted(p.resolve().name for p in (tmp_path / "mine").iterdir()) == sorted(train)
    det = load_detector(ROOT / "models" / "alexa-w1.tflite")
    r = devbench.evaluate_model(det, halves["eval"])
    assert r["keyword_half"] == "eval" and r["positives"] == 3
    assert "keyword_half" not in devbench.evaluate_model(det, devbench.DevAudio(tmp_path, positives="pos", negatives=("neg",)))
    t = devbench.summary_table([{"benchmark": "dev_real", "recipe": "demo", **r}])
    assert "| demo [keywords: eval half] |" in t


def test_devbench_ladder_table_rungs_in_order_float_and_4bit():
    def rec(recipe, bits, seed, missed, **kw):
        return {"benchmark": "dev_real", "recipe": recipe, "weight_bits": bits, "seed": seed, "positives": 80,
                "missed_at_1fah": missed, "frr_at_1fah_hard": missed / 40, "frr_at_5fah_hard": missed / 80,
                "hard_half": "eval", **kw}
    recs = [rec("b", 32, 1, 2), rec("b", 32, 2, 4), rec("b", 4, 1, 6),
            rec("a", 32, 1, 8),
            rec("a", 32, 3, 30, hard_half=None),                    # not on the eval half: left out
            rec("a", 4, 2, 30, activation_bits=4),                  # w4a4: not this table's 4-bit
            rec("a", 4, 3, 30, quantizer_preset="naive"),
            rec("x-user40", 32, 1, 1, positives=40, keyword_half="eval"),
            rec("x-user40", 32, 2, 9, positives=40)]               # scored on all keywords: not this rung
    t = devbench.ladder_table(recs, ladder=(("a", "first"), ("missing", "none"), ("b", "+ b"), ("x-user40", "+ u")))
    lines = t.splitlines()
    assert len(lines) == 5 and lines[2].startswith("| a | first | 1 / 0 | 8.0 (8) of 80 | - | 20.0% | - |")
    assert lines[3] == "| b | + b | 2 / 1 | 3.0 (2, 4) of 80 | 6.0 (6) of 80 | 7.5% | 15.0% | 3.8% | 7.5% |"
    assert lines[4].startswith("| x-user40 | + u | 1 / 0 | 1.0 (1) of 40 |")


def test_devbench_quant_table_one_row_per_model_and_precision():
    def rec(recipe, bits, seed, missed, **kw):
        return {"benchmark": "dev_real", "recipe": recipe, "weight_bits": bits, "seed": seed, "positives": 80,
                "missed_at_1fah": missed, "frr_at_1fah_hard": missed / 40, "frr_at_5fah_hard": missed / 80,
                "hard_half": "eval", **kw}
    recs = [rec("f", 32, 1, 2), rec("f", 32, 2, 4),
            rec("f", 4, 1, 6, model_bytes=100), rec("f", 4, 2, 8, activation_bits=8, model_bytes=100),   # w4a8
            rec("f", 4, 1, 1, activation_bits=4, quantizer_preset="tailored"),
            rec("f", 4, 1, 3, activation_bits=4, quantizer_preset="naive"),
            rec("f", 4, 1, 9, activation_bits=4, quantizer_preset="naive", keyword_half="eval"),    # other halves: out
            rec("f", 4, 1, 9, activation_bits=4, quantizer_preset="naive", hard_half=None),
            rec("l", 32, 1, 5, model="lstm", activation_bits=32), rec("l", 4, 1, 7, model="ffnn")]   # wrong model: out
    rows = (("ffnn250k", "f", "float", 32, 32, None), ("ffnn250k", "f", "w4a8", 4, 8, "tailored"),
            ("ffnn250k", "f", "w4a4", 4, 4, "tailored"), ("ffnn250k", "f", "naive", 4, 4, "naive"),
            ("ffnn250k", "f", "w2a4", 2, 4, "tailored"),
            ("lstm", "l", "float", 32, 32, None), ("lstm", "l", "w4a8", 4, 8, "tailored"))
    lines = devbench.quant_table(recs, rows=rows).splitlines()
    assert lines[2:] == [
        "| ffnn250k (f) | float | 2 | 3.0 (2, 4) of 80 | 7.5% | 3.8% | - |",
        "| ffnn250k (f) | w4a8 | 2 | 7.0 (6, 8) of 80 | 17.5% | 8.8% | 100 |",
        "| ffnn250k (f) | w4a4 | 1 | 1.0 (1) of 80 | 2.5% | 1.2% | - |",
        "| ffnn250k (f) | naive | 1 | 3.0 (3) of 80 | 7.5% | 3.8% | - |",
        "| lstm (l) | float | 1 | 5.0 (5) of 80 | 12.5% | 6.2% | - |"]


def test_readme_accuracy_tables_are_the_records():
    """The README's generated accuracy tables are what bench/accuracy.json gives now."""
    records = json.loads((ROOT / "bench" / "accuracy.json").read_text())
    text = (ROOT / "README.md").read_text()
    for name, gen in (("devbench-summary", devbench.summary_table), ("devbench-ladder", devbench.ladder_table),
                      ("devbench-quant", devbench.quant_table)):
        want = devbench.fill_block(text, name, gen(records), ROOT / "README.md")
        assert want == text, f"README.md: stale {name} block; run python -m bench.devbench --summary " \
                             "bench/accuracy.json --readme README.md"
