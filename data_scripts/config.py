"""The data stage's own configuration: where the audio comes from and how it is split and augmented.

Every data_scripts module takes a ``DataConfig`` (or the few fields it needs), never the whole
training Config; training.config composes this section with the others. ``load_data_config`` reads
the ``data:`` section of a project config file (other sections belong to other stages and are left
to them).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from basics import settings
from basics.errors import UserError

# data.<key> -> (min, max) inclusive, or a tuple of allowed strings (basics.settings.check_value)
DATA_RANGES: dict[str, tuple] = {
    "data.source": ("synthetic", "mix", "speech_commands", "folder"),
    "data.speaker_augment": (0.0, 1.0),
    "data.channel_augment": (0.0, 1.0),
    "data.soundalikes": (0, 1000),
    "data.lexicon": (0, 1000),
    "data.music": (0, 1000),
    "data.sentences": (0, 1_000_000), "data.sentences_weight": (0.0, 1e6),
    "data.positive_weight": (0.0, 1e6),
    "data.num_voices": (0, 100_000),
    "data.clips_per_voice": (0, 100_000),
    "data.augment_copies": (0, 100),
    "data.snr_db_min": (-30.0, 100.0),
    "data.snr_db_max": (-30.0, 100.0),
    "data.seed": (0, 2**31 - 1),
    "data.stream_minutes": (0.0, 24 * 60.0),
}


@dataclass
class DataConfig:
    """Where the audio comes from and how it is split and augmented."""

    source: str = "synthetic"  # synthetic | mix | speech_commands | folder (mix: see data_scripts/sources.py)
    keyword: str = "alexa"
    root: str = "data"  # cache / download folder for generated or prepared data
    folder: str = ""  # for source=folder: <folder>/<keyword>/*.wav and <folder>/<other>/*.wav
    num_voices: int = 0  # synthetic: voices (accent x variant) used; 0 = default of the generator
    clips_per_voice: int = 0  # synthetic: keyword clips per voice; 0 = default
    noise_dir: str = ""  # background noise folder; empty = synthetic coloured noise
    augment: bool = True
    augment_copies: int = 1  # augmented copies per clip added to the training set
    speaker_augment: float = 0.0  # share of augmented synthetic copies given a new speaker (formants, pitch, speed)
    channel_augment: float = 0.0  # share of augmented copies passed through a random microphone/channel response
    snr_db_min: float = 5.0
    snr_db_max: float = 30.0
    soundalikes: int = 0  # sound-alike words (most similar first) among the TTS confusables; 0 = the default 16
    lexicon: int = 0  # words of the CMU Pronouncing Dictionary most like the keyword added to the confusables (data_scripts/lexicon.py)
    music: int = 0  # generated music pieces (15 s each) added to the background-noise bank
    seed: int = 1234
    stream_minutes: float = 60.0  # length of each long streaming audio (val, test): 1 h resolves 1 FA/h
    # many sources mixed by weight (data_scripts/sources.py); any of these makes the source "mix"
    sources: list = field(default_factory=list)  # [{kind, role, weight, path, speakers, ...}]
    tts: str = ""  # "all" = espeak + every installed TTS backend ("all,-festival": all but festival), or "espeak,piper"
    sentences: int = 0  # negative sentences per TTS backend of data.tts, cut into clips (data_scripts/sentences.py)
    sentences_weight: float = 1.0  # the sentence source's weight among the negative sources
    kokoro_voices: str = ""  # folder of Kokoro-82M voice packs (<name>.npy)
    negative_dirs: list = field(default_factory=list)  # folders of real negative audio
    positive_dirs: list = field(default_factory=list)  # folders of the user's own keyword recordings
    # the weight of each positive_dirs folder among the keyword sources (weight 1 per TTS backend): 40 real takes
    # at 0.25 missed 0 and 1 of 40 other real takes, at 1 six and six (docs/recipe.md, "Your own keyword recordings")
    positive_weight: float = 0.25
    noise_dirs: list = field(default_factory=list)  # folders of background noise

    def validate(self, origin: str = "config") -> "DataConfig":
        """Every value in its range and the SNR bounds in order; UserError naming the first bad key."""
        for f in fields(self):
            settings.check_value(f"data.{f.name}", getattr(self, f.name), DATA_RANGES, origin)
        if self.snr_db_min > self.snr_db_max:
            raise UserError(f"{origin}: data.snr_db_min {self.snr_db_min} > data.snr_db_max {self.snr_db_max}")
        return self


def load_data_config(path: str | Path | None) -> DataConfig:
    """The ``data:`` section of a YAML/JSON config file (defaults without a file), checked."""
    cfg = DataConfig()
    if not path:
        return cfg
    d = settings.read_config_file(path)
    settings.update_section(cfg, "data", d.get("data") or {}, DATA_RANGES, str(path))
    return cfg.validate(str(path))
