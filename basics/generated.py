"""The command line of a generator whose output is checked in (a C header, a make fragment):
``--write`` writes it atomically, ``--check`` exits 1 with one line when the file on disk differs."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from basics.atomic import atomic_write_text


def write_or_check(argv, prog: str, description: str, path: Path, render: Callable[[], str]) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help=f"write {path.name}")
    g.add_argument("--check", action="store_true", help="exit 1 if the checked-in file differs")
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        if not path.is_file() or path.read_text() != text:
            print(f"{path}: stale; run python -m {prog} --write", file=sys.stderr)
            return 1
        return 0
    atomic_write_text(path, text)
    return 0
