"""Moved to ``basics.audio`` (the bottom layer every package may import). Kept as a re-export for
code written against the old path; new code imports ``basics.audio``."""
from basics.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, list_audio, load_audio, resample, save_wav  # noqa: F401
