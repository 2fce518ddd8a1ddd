"""Typed configuration: one dataclass per concern, no global flags.

A config file (YAML or JSON) may set any field, nested by section::

    data: {keyword: alexa, num_voices: 40}
    model: {name: ffnn, hidden_units: 128}

Unknown sections or keys are a UserError naming the key. Command-line options of
``training/train.py`` override the file (``--data.keyword hey``) and the shortcuts listed in
``--help``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from basics import settings
from basics.errors import UserError
from data_scripts.config import DATA_RANGES, DataConfig  # noqa: F401  (the data stage owns its section)
from basics.atomic import atomic_write_text
from training import prune_spec
from training.prune_spec import PruneConfig


@dataclass
class FeatureConfig:
    """LFBE front end and the model's context window (see training/features.py)."""

    sample_rate: int = 16000
    window_ms: float = 25.0
    hop_ms: float = 10.0
    num_mel_bins: int = 64
    context_frames: int = 24
    context_stride: int = 3  # frames between stacked frames: 24 frames x stride 3 see 0.71 s of audio
    clip_seconds: float = 1.0


@dataclass
class ModelConfig:
    name: str = "ffnn"  # ffnn | dscnn | lstm
    hidden_layers: int = 4
    hidden_units: int = 128
    dropout: float = 0.2
    dscnn_filters: int = 64
    dscnn_blocks: int = 4
    lstm_units: int = 128  # lstm: units per layer (2 x 128 = 230K parameters with 64 mel bins)
    lstm_layers: int = 2


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0  # smoothing caps the posterior (0.967 at 0.05) and blunts the DET tail
    seed: int = 1234
    max_minutes: float = 0.0  # 0 = no wall-clock cap
    # the recipe for false accepts per hour (docs/recipe.md)
    negative_weight: float = 1.0  # loss weight of the non-keyword classes (a false-accept penalty)
    spec_augment: bool = False  # SpecAugment-style time and frequency masks on the training windows
    time_masks: int = 2  # masks of up to time_mask_frames context frames each
    time_mask_frames: int = 3
    freq_masks: int = 2  # masks of up to freq_mask_bins mel bins each
    freq_mask_bins: int = 8
    hard_negative_rounds: int = 0  # mine the training negatives for windows that fire, retrain; repeat
    hard_negative_epochs: int = 4  # epochs of fine-tuning after each mining round
    hard_negative_max: int = 20000  # mined windows added per round at most
    select_by: str = "val_loss"  # val_loss | fa_per_hour: keep the epoch with the lowest val-stream FRR at select_fah
    select_fah: float = 1.0


@dataclass
class QuantConfig:
    """Two-stage QAT (issue 3). weight_bits=0 means float only."""

    weight_bits: int = 0
    layer_bits: list = field(default_factory=list)  # per Dense layer; empty = weight_bits everywhere
    weight_quantizer: str = "auto"  # auto (sawb at 2-3 bits, tanh otherwise) | tanh | linear | sawb
    activation_bits: int = 8  # ReLU outputs (stage 2); < 8 exports SUB8_FC_A4 (docs/quantization.md)
    preset: str = "tailored"  # tailored | naive: the quantizer of every operand (training/quant_spec.py)
    operands: dict = field(default_factory=dict)  # per-operand override, e.g. {activation: "pact:4"}
    stages: str = "two"  # two | one
    stage1_epochs: int = 10
    stage2_epochs: int = 10
    stage1_learning_rate: float = 5e-4
    stage2_learning_rate: float = 2e-4
    float_run: str = ""  # reuse a finished float run directory
    distill: float = 0.0  # weight of the float model's posteriors in the QAT targets (0 = hard labels only)
    # LSTM only: auto (w8a8 -> TFLite's int8 LSTM, packed k-bit weights or k-bit activations -> SUB8_LSTM_A4)
    # | int8 (TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM, 8-bit activations only) | sub8 (SUB8_LSTM_A4)
    lstm_op: str = "auto"


@dataclass
class EvalConfig:
    smoothing_frames: int = 10  # moving average of the keyword posterior
    refractory_s: float = 1.0
    tolerance_s: float = 0.75  # a detection counts for a keyword ending within this window
    thresholds: int = 101


# key -> (min, max) inclusive, or a tuple of allowed strings. Floats must also be finite.
RANGES: dict[str, tuple] = {
    **DATA_RANGES,  # the data section's own (data_scripts/config.py)
    **prune_spec.RANGES,  # the prune section's own (training/prune_spec.py)
    "train.negative_weight": (0.0, 1e6), "train.time_masks": (0, 100), "train.time_mask_frames": (0, 10_000),
    "train.freq_masks": (0, 100), "train.freq_mask_bins": (0, 10_000), "train.hard_negative_rounds": (0, 100),
    "train.hard_negative_epochs": (1, 100_000), "train.hard_negative_max": (0, 100_000_000),
    "train.select_by": ("val_loss", "fa_per_hour"), "train.select_fah": (0.0, 1e6),
    "features.sample_rate": (8000, 48000), "features.window_ms": (1.0, 1000.0), "features.hop_ms": (1.0, 1000.0),
    "features.num_mel_bins": (1, 512), "features.context_frames": (1, 1000), "features.context_stride": (1, 100),
    "features.clip_seconds": (0.1, 60.0),
    "model.name": ("ffnn", "dscnn", "lstm"), "model.hidden_layers": (1, 64), "model.hidden_units": (1, 65536),
    "model.dropout": (0.0, 0.99), "model.dscnn_filters": (1, 4096), "model.dscnn_blocks": (1, 64),
    "model.lstm_units": (1, 4096), "model.lstm_layers": (1, 8),
    "train.epochs": (1, 100_000), "train.batch_size": (1, 1 << 20), "train.learning_rate": (1e-12, 10.0),
    "train.weight_decay": (0.0, 10.0), "train.label_smoothing": (0.0, 0.99), "train.seed": (0, 2**31 - 1),
    "train.max_minutes": (0.0, 1e7),
    "quant.weight_bits": (0, 8), "quant.weight_quantizer": ("auto", "tanh", "linear", "sawb"),
    "quant.activation_bits": (2, 8), "quant.preset": ("tailored", "naive"), "quant.stages": ("two", "one"),
    "quant.stage1_epochs": (0, 100_000), "quant.stage2_epochs": (0, 100_000),
    "quant.distill": (0.0, 1.0), "quant.stage1_learning_rate": (1e-12, 10.0), "quant.stage2_learning_rate": (1e-12, 10.0),
    "quant.layer_bits": (1, 8),  # each entry
    "quant.lstm_op": ("auto", "int8", "sub8"),
    "eval.smoothing_frames": (1, 10_000), "eval.refractory_s": (0.0, 3600.0), "eval.tolerance_s": (0.0, 60.0),
    "eval.thresholds": (2, 100_000),
}


def check_value(key: str, value, origin: str = "config") -> None:
    """UserError unless ``value`` is allowed for ``key`` (RANGES); keys without a range pass."""
    settings.check_value(key, value, RANGES, origin)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)  # pruning in QAT (training/prune_spec.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, origin: str = "config") -> "Config":
        cfg = cls()
        update(cfg, d, origin)
        return cfg.validate(origin)

    def validate(self, origin: str = "config") -> "Config":
        """Every value in its range (RANGES, finite) and the sections consistent; UserError naming the
        first bad key otherwise. Run at load, before any data is prepared or a run directory written."""
        for sec in fields(self):
            obj = getattr(self, sec.name)
            for f in fields(obj):
                check_value(f"{sec.name}.{f.name}", getattr(obj, f.name), origin)
        self.data.validate(origin)
        if self.model.name == "lstm" and self.features.context_stride != 1:
            raise UserError(f"{origin}: model lstm steps once per hop: set features.context_stride=1 (got "
                            f"{self.features.context_stride}); features.context_frames is the sequence length")
        if self.model.name == "lstm" and self.quant.layer_bits:
            raise UserError(f"{origin}: quant.layer_bits is not supported with model lstm (use quant.weight_bits "
                            "and quant.operands)")
        if self.quant.lstm_op != "auto" and self.model.name != "lstm":
            raise UserError(f"{origin}: quant.lstm_op {self.quant.lstm_op} applies to model lstm only")
        if self.quant.lstm_op == "int8" and self.quant.activation_bits < 8:
            raise UserError(f"{origin}: quant.lstm_op int8 (TFLite's int8 LSTM) has 8-bit activations: "
                            f"quant.activation_bits {self.quant.activation_bits} needs sub8 or auto")
        if self.quant.weight_bits or self.quant.activation_bits != 8 or self.quant.operands:
            from training import quant_spec  # lazy: quant_spec imports this module

            quant_spec.check(self.quant, self.model.name, origin)
        if self.prune.kind != "none" or self.prune.layers.strip():
            prune_spec.check(self.prune, origin, weight_bits=self.quant.weight_bits,
                             activation_bits=self.quant.activation_bits, layer_bits=self.quant.layer_bits)
            if prune_spec.active(self.prune) and not self.quant.weight_bits:
                raise UserError(f"{origin}: prune.kind {self.prune.kind} needs quant.weight_bits (pruning runs in QAT)")
        if self.features.hop_ms > self.features.window_ms:
            raise UserError(f"{origin}: features.hop_ms {self.features.hop_ms} > features.window_ms "
                            f"{self.features.window_ms} (frames would skip audio)")
        return self


    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


# ----------------------------------------------------------------------------- per-stage views
# What one stage of training reads, and all it reads (docs/architecture.md, "Configuration per stage");
# ``X.of(cfg)`` takes the sections out of a run's Config. tests/test_stage_config.py keeps the whole
# Config away from the functions that receive these.

@dataclass(frozen=True)
class RecipeConfig:
    """The training recipe (training/recipe.py): loss weights, batch size, SpecAugment, checkpoint
    selection (the train section) and the window shape its masks cut (the feature section)."""

    train: TrainConfig
    features: FeatureConfig

    @classmethod
    def of(cls, cfg: "Config") -> "RecipeConfig":
        return cls(cfg.train, cfg.features)


@dataclass(frozen=True)
class ExportConfig:
    """The QAT export (training/qat_train.py ``export_tflite``, ``tflite_metadata``): the model's
    name, the front end's settings the metadata records, the quantization and the pruning sections."""

    model: ModelConfig
    features: FeatureConfig
    quant: QuantConfig
    prune: PruneConfig

    @classmethod
    def of(cls, cfg: "Config") -> "ExportConfig":
        return cls(cfg.model, cfg.features, cfg.quant, cfg.prune)


def update(cfg: Config, d: dict, origin: str = "config") -> Config:
    """Apply a nested dict to cfg in place, rejecting unknown sections and keys."""
    if not isinstance(d, dict):
        raise UserError(f"{origin}: expected a mapping of sections, got {type(d).__name__}")
    sections = {f.name: f for f in fields(cfg)}
    for sec, vals in d.items():
        if sec not in sections:
            raise UserError(f"{origin}: unknown section '{sec}' (known: {', '.join(sections)})")
        settings.update_section(getattr(cfg, sec), sec, vals, RANGES, origin)
    return cfg


def load_config(path: str | Path | None) -> Config:
    cfg = Config()
    if not path:
        return cfg
    return update(cfg, settings.read_config_file(path), str(path)).validate(str(path))


def set_dotted(cfg: Config, dotted: str, value, origin: str = "command line") -> None:
    if "." not in dotted:
        raise UserError(f"{origin}: option '{dotted}' must be section.key")
    sec, key = dotted.split(".", 1)
    update(cfg, {sec: {key: value}}, origin)


def all_keys() -> list[tuple[str, str, object]]:
    """(section, key, default) for --help."""
    out = []
    cfg = Config()
    for sec in fields(cfg):
        for f in fields(getattr(cfg, sec.name)):
            out.append((sec.name, f.name, getattr(getattr(cfg, sec.name), f.name)))
    return out


_ = dataclasses  # re-export convenience
