"""Worker processes that do not outlive their parent."""
from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a pool worker's initializer: ask Linux to send SIGTERM when the parent dies (even by
    SIGKILL), so a killed run leaves no orphan workers. No-op elsewhere; re-checks the parent in
    case it died before the request was made."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        os._exit(1)
