"""A tiny labelled recordings folder (tone-burst "keyword", noise-burst negatives) and the config
overrides that train on it in seconds: shared by the feature store and distributed training tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000
# small features and model: the tests exercise the data path and the strategy, not accuracy
TINY_SETS = ["data.augment=false", "data.stream_minutes=0.3", "features.num_mel_bins=16",
             "features.context_frames=8", "features.context_stride=2", "model.hidden_layers=2",
             "model.hidden_units=16", "model.dropout=0", "train.batch_size=32", "train.epochs=2",
             "quant.stage1_epochs=1", "quant.stage2_epochs=1"]


def _speakers(per_split: dict[str, int]) -> dict[str, list[str]]:
    from data_scripts.speech_commands import _split_of

    out: dict[str, list[str]] = {k: [] for k in per_split}
    i = 0
    while any(len(out[k]) < n for k, n in per_split.items()):
        name = f"spk{i:03d}"
        s = _split_of(f"speaker:{name}")
        if len(out[s]) < per_split[s]:
            out[s].append(name)
        i += 1
    return out


def make_folder(root: Path, train_speakers: int = 6, clips: int = 4) -> Path:
    """<root>/beep/<speaker>/*.wav (keyword) and <root>/other/<speaker>/*.wav (negatives)."""
    import soundfile as sf

    root = Path(root)
    spk = _speakers({"train": train_speakers, "val": 2, "test": 2})
    rng = np.random.default_rng(5)
    t = np.arange(int(0.6 * SR)) / SR
    for names in spk.values():
        for n in names:
            f0 = rng.uniform(500, 1500)
            for c in range(clips):
                kw = np.zeros(int(1.0 * SR), np.float32)
                burst = 0.5 * np.sin(2 * np.pi * (f0 + 400 * t) * t) * np.hanning(len(t))
                kw[SR // 5:SR // 5 + len(t)] = burst
                kw += rng.normal(0, 0.003, len(kw)).astype(np.float32)
                neg = np.zeros(int(1.0 * SR), np.float32)
                neg[SR // 5:SR // 5 + len(t)] = rng.normal(0, 0.2, len(t)) * np.hanning(len(t))
                neg += rng.normal(0, 0.003, len(neg)).astype(np.float32)
                for lab, x in (("beep", kw), ("other", neg)):
                    p = root / lab / n / f"{c}.wav"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(p, x, SR, subtype="PCM_16")
    return root


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
