"""User-facing errors: one line naming the file or key and the problem, non-zero exit, no traceback."""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """An error caused by the user's input (file, config, option). Printed as one line."""


def cli_main(fn):
    """Decorate a CLI ``main``: UserError -> one line on stderr, exit 2; Ctrl-C -> exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            rc = fn(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        sys.exit(rc or 0)

    return wrapper


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """The JSON value in ``path``; a missing, unreadable or corrupt file is one UserError line."""
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read {what} ({type(e).__name__})") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt {what} ({str(e)[:100]})") from None


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.<pid>.*.tmp`` folders ``atomic_path`` leaves behind when its process is
    killed (kill -9 skips the cleanup): those whose process no longer runs. Temporaries of a live
    process (another run writing into the same folder) are kept; ones without a pid in the name
    (older versions) are removed when older than an hour. Returns what was removed."""
    import shutil
    import time

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
            import shutil

            old = dest.with_name(f".{dest.name}.old.tmp")
            if old.exists():
                shutil.rmtree(old)
            os.replace(dest, old)
            os.replace(target, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, dest)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))
