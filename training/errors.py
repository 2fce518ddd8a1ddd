"""Moved to ``basics.errors`` and ``basics.atomic`` (the bottom layer every package may import).
Kept as a re-export for code written against the old path; new code imports ``basics``."""
from basics.atomic import atomic_path, atomic_write_bytes, atomic_write_text, clean_stale_temporaries  # noqa: F401
from basics.errors import UserError, cli_main, read_json  # noqa: F401
