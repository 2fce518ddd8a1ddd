"""Merge records written by a benchmark module run on its own (``--out FILE``) into
bench/results.json with bench/run.py's merge (a record replaces the one with the same key; the
others are kept as they are), then regenerate BENCHMARKS.md.

    .venv/bin/python -m bench.merge FILE.json [FILE.json ...]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError, cli_main, read_json
from bench.host import machine
from bench.records import MARKDOWN, RESULTS, load_results, merge, render


def merge_into_results(recs: list[dict], results: Path = RESULTS, markdown: Path = MARKDOWN) -> list[dict]:
    """``recs`` (machine and date added where absent) merged into ``results``; the merged list."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    mach = machine()
    for r in recs:
        r.setdefault("machine", mach)
        r.setdefault("date", now)
    merged = merge(load_results(results), recs)
    atomic_write_text(results, json.dumps(merged, indent=1) + "\n")
    atomic_write_text(markdown, render(merged))
    return merged


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.merge", description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="JSON lists of records (a module's --out)")
    a = ap.parse_args(argv)
    recs = []
    for f in a.files:
        d = read_json(f, "records file")
        if not isinstance(d, list) or not all(isinstance(r, dict) and "benchmark" in r for r in d):
            raise UserError(f"{f}: expected a JSON list of benchmark records")
        recs += d
    merged = merge_into_results(recs)
    print(f"bench: {len(recs)} records merged ({len(merged)} in {RESULTS}); {MARKDOWN} regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
