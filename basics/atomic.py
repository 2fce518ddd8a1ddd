"""Atomic writes: a result appears under its final name whole or not at all (a killed run leaves
only a temporary beside it, which ``clean_stale_temporaries`` removes later)."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.<pid>.*.tmp`` folders ``atomic_path`` leaves behind when its process is
    killed (kill -9 skips the cleanup): those whose process no longer runs. Temporaries of a live
    process (another run writing into the same folder) are kept; ones without a pid in the name
    (older versions) are removed when older than an hour. Returns what was removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp"):
        parts = p.name.split(".")  # "", <name parts>, <pid>, <random>, "tmp"
        pid = int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None
        try:
            if pid is not None:
                if _alive(pid):
                    continue
            elif time.time() - p.lstat().st_mtime < 3600:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            continue
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; rename it over ``dest`` only if the block succeeds.

    Works for files and for directories (a directory is renamed as a whole), so a killed run
    never leaves a half-written result under the final name.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the pid in the name lets clean_stale_temporaries tell a killed writer's leftovers from a live one's
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=".tmp", dir=dest.parent))
    target = tmp / dest.name
    try:
        yield target
        if dest.is_dir() and not dest.is_symlink():
            old = dest.with_name(f".{dest.name}.old.tmp")
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
            os.replace(target, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))
