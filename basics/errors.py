"""User-facing errors: one line naming the file or key and the problem, non-zero exit, no traceback."""
from __future__ import annotations

import functools
import json
import os
import sys
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


def read_json(path: str | os.PathLike, what: str = "JSON file", mapping: bool = False):
    """The JSON value in ``path``; a missing, unreadable or corrupt file is one UserError line, and so
    is a value that is not a JSON object when ``mapping`` asks for one."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read {what} ({type(e).__name__})") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt {what} ({str(e)[:100]})") from None
    if mapping and not isinstance(d, dict):
        raise UserError(f"{path}: expected a JSON object in this {what}")
    return d
