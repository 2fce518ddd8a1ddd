"""data.lexicon: sound-alike words from the CMU Pronouncing Dictionary for any keyword."""
from __future__ import annotations

import pytest

from basics.errors import UserError
from data_scripts import lexicon
from data_scripts.config import DataConfig


def test_phone_distance_weights_related_swaps_at_half():
    d = lexicon.phone_distance
    assert d(("AH", "L"), ("AH", "L")) == 0
    assert d(("S",), ("Z",)) == 0.5            # a voicing pair
    assert d(("IH",), ("EH",)) == 0.5          # two vowels
    assert d(("S",), ("M",)) == 1.0            # unrelated
    assert d(("AH", "L", "EH", "K", "S", "AH"), ("L", "EH", "K", "S", "AH", "S")) == 2.0   # "lexus"
    assert d(("K", "AE", "T"), ()) == 3.0
    # the early stop returns more than the limit, never less than the true distance's floor
    assert d(("K", "AE", "T"), ("D", "OW", "G", "Z"), limit=1.0) > 1.0


def test_alexa_neighbours_are_close_diverse_and_never_the_keyword():
    words = lexicon.lexicon_soundalikes("alexa", 40)
    assert len(words) == 40 and len(set(words)) == 40
    kw = lexicon.keyword_pronunciations("alexa")
    d = lexicon._dictionary()
    for w in words:
        assert "alexa" not in w
        for ph, _ in d[w]:
            for kph, _ in kw:
                # no near-homophone, nothing that holds the whole keyword
                assert lexicon.phone_distance(kph, ph) >= lexicon.HOMOPHONE_DISTANCE
                assert not lexicon._contains(ph, kph)
    # known neighbours one would list by ear, and none of the near-homophones
    assert {"alexis", "election", "elixir"} <= set(words)
    assert "alexia" not in words and "alexas" not in words
    # diversity: no two taken words within the diversity distance of each other
    first = {w: d[w][0][0] for w in words}
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            assert lexicon.phone_distance(first[a], first[b]) >= lexicon.DIVERSITY_DISTANCE or \
                len(d[a]) > 1 or len(d[b]) > 1


def test_any_keyword_gets_its_own_neighbours_and_a_missing_word_is_named():
    comp = lexicon.lexicon_soundalikes("computer", 10)
    assert len(comp) == 10 and "computer" not in comp and any(w.startswith("comp") for w in comp)
    two = lexicon.lexicon_soundalikes("hey jarvis", 10)
    assert len(two) == 10 and "jarvis" not in two
    assert lexicon.lexicon_soundalikes("alexa", 0) == ()
    with pytest.raises(UserError, match="'nabu' is not in the CMU Pronouncing Dictionary"):
        lexicon.lexicon_soundalikes("okay nabu", 5)


def test_lexicon_words_join_the_confusables_and_key_the_caches_only_when_set(tmp_path):
    from data_scripts.sources import mix_params, parse_sources
    from data_scripts.synthetic import _text_sets, generation_params
    from data_scripts.tts import backend, plan_tts, tts_params

    base, more = _text_sets("alexa", 64), _text_sets("alexa", 64, 32)
    assert set(base[0]) < set(more[0]) and "alexa" not in more[0]
    added = set(more[0]) - set(base[0])
    assert added <= set(lexicon.lexicon_soundalikes("alexa", 32)) and len(added) >= 16
    cfg = DataConfig(tts="espeak")
    assert "lexicon" not in generation_params(cfg) and "lexicon" not in mix_params(parse_sources(cfg), cfg)
    be = backend("espeak", "", str(tmp_path))
    assert "lexicon" not in tts_params("espeak", "alexa", 9, 4, 4, 1, be)   # old caches keep their keys
    cfg.lexicon = 32
    assert generation_params(cfg)["lexicon"] == 32 and mix_params(parse_sources(cfg), cfg)["lexicon"] == 32
    assert tts_params("espeak", "alexa", 9, 4, 4, 1, be, 0, 32)["lexicon"] == 32
    jobs = plan_tts(be, "alexa", 30, 1, 10, 1, lexicon=32)
    used = {j.text for j in jobs if j.kind == "confusable"}
    assert used & added   # the lexicon words are spoken


def test_out_of_range_lexicon_is_one_clear_error():
    with pytest.raises(UserError, match="data.lexicon"):
        DataConfig(lexicon=5000).validate()
