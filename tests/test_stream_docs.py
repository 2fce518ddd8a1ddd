"""The README's streaming-hop paragraph is generated from the streaming_loop records (issue 14: every
figure from a record): it must equal what bench.streaming.hop_paragraph makes of bench/results.json."""
from __future__ import annotations

from bench import streaming
from bench.records import RESULTS, load_results


def test_readme_stream_hop_paragraph_matches_the_records():
    have = streaming.doc_block(streaming.README.read_text())
    assert have is not None, f"README.md: the {streaming.DOC_START} block is missing"
    assert have == streaming.hop_paragraph(load_results(RESULTS)), \
        "README.md: stale streaming-hop figures; run python -m bench.streaming --write-docs"


def test_hop_paragraph_names_its_figures():
    recs = [{"benchmark": "streaming_loop", "board": b, "model": "ffnn-250k", "weight_bits": 4,
             "total_instructions_per_hop": t, "frontend_instructions_per_hop": f, "realtime_margin_100mhz_estimate": 0.7,
             "ram_bytes": 19_999, "static_ram_bytes": 5_000, "arena_bytes": 13_000, "stack_bytes": 1_999,
             "date": "2026-11-30T15:00:00+00:00", "command": "python -m bench.run --only streaming"}
            for b, t, f in (("mps2-an386", 321_000, 29_000), ("mps3-an547", 70_000, 28_000))]
    text = streaming.hop_paragraph(recs)
    for s in ("321,000", "29,000", "20.0 KB", "5,000 static", "13,000 arena", "1,999 stack", "70,000", "28,000",
              "2026-11-30", "not cycles"):
        assert s in text, s
