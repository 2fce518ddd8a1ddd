"""A tiny labelled recordings folder (tone-burst "keyword", noise-burst negatives) and the config
overrides that train on it in seconds: shared by the feature store and distributed training tests."""
from __future__ import annotations

from pathlib import Path

# small features and model: the tests exercise the data path and the strategy, not accuracy
TINY_SETS = ["data.augment=false", "data.stream_minutes=0.3", "features.num_mel_bins=16",
             "features.context_frames=8", "features.context_stride=2", "model.hidden_layers=2",
             "model.hidden_units=16", "model.dropout=0", "train.batch_size=32", "train.epochs=2",
             "quant.stage1_epochs=1", "quant.stage2_epochs=1"]


def make_folder(root: Path, train_speakers: int = 6, clips: int = 4) -> Path:
    """<root>/beep/<speaker>/*.wav (keyword) and <root>/other/<speaker>/*.wav (negatives)."""
    from bench.distributed import make_recordings

    return make_recordings(root, train_speakers, clips)


def tiny_config(folder: Path, data_root: Path):
    from training.config import Config, set_dotted

    cfg = Config()
    for kv in TINY_SETS + [f"data.source=folder", f"data.folder={folder}", "data.keyword=beep",
                           f"data.root={data_root}"]:
        k, v = kv.split("=", 1)
        set_dotted(cfg, k, v)
    return cfg.validate()


def tiny_args(folder: Path, data_root: Path) -> list[str]:
    out = ["--data-source", "folder", "--data-folder", str(folder), "--keyword", "beep", "--data-root",
           str(data_root), "--no-progress"]
    for kv in TINY_SETS:
        out += ["--set", kv]
    return out
