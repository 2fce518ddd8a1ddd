"""Each stage receives only its own part of the configuration (docs/architecture.md).

* data_scripts: every configuration parameter is a ``DataConfig`` (the data section), annotated;
* the window stage (training/dataset.py, training/feature_store.py): a ``WindowConfig`` (the data
  and feature sections), a ``DataConfig`` or a ``FeatureConfig``;
* the front end and scoring (training/features.py, training/evaluate.py, training/recipe.py): the
  feature section (and the evaluation section where detections are counted);
* the training recipe (training/recipe.py, feature_store.fit_input): ``TrainConfig`` or ``RecipeConfig``
  (train + feature sections); the QAT export (training/qat_train.py): ``ExportConfig``.

The whole training ``Config`` may reach only the orchestration functions listed in ``WHOLE_CONFIG``
(they read the model, training or quantization sections as well). The checks read the source (AST),
so a new function that takes the whole Config, or an unannotated ``cfg``, fails here.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# module -> functions that may take the whole Config (each reads more than the data/feature/eval sections)
WHOLE_CONFIG = {
    "training/dataset.py": {"of"},  # WindowConfig.of: takes the data and feature sections out of a Config
    "training/feature_store.py": set(),  # fit_input: WindowConfig + TrainConfig
    "training/evaluate.py": {"evaluate_run"},  # the report names the model and its bit width
    "training/recipe.py": set(),  # the training recipe: TrainConfig or RecipeConfig (train + feature sections)
    # the QAT orchestration composes the float run's Config and runs the stages; the export it calls
    # (export_tflite, tflite_metadata) receives an ExportConfig (model, features, quant, prune)
    "training/qat_train.py": {"float_config", "ensure_float_run", "train_quantized"},
}
STAGE_MODULES = ["training/features.py", *WHOLE_CONFIG]
CONFIG_NAMES = {"cfg", "config", "data_cfg"}


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef):
    a = fn.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs]


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def config_violations(source: str, where: str, data_stage: bool, allowed: set[str] = frozenset()) -> list[str]:
    """'where:line function(param: annotation)' for every parameter that may carry the whole Config:
    annotated ``Config`` (outside ``allowed``), or named like a config without an annotation; in the
    data stage, any config parameter that is not a DataConfig."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for arg in _params(node):
            ann = _annotation(arg)
            words = set(ann.replace("|", " ").replace("[", " ").replace("]", " ").replace(",", " ").split())
            bad = False
            if data_stage:
                bad = (arg.arg in CONFIG_NAMES or any(w.endswith("Config") for w in words)) and ann != "DataConfig"
            elif "Config" in words and node.name not in allowed:
                bad = True
            elif arg.arg in CONFIG_NAMES and not ann:
                bad = True
            if bad:
                out.append(f"{where}:{node.lineno} {node.name}({arg.arg}: {ann or 'unannotated'})")
    return out


def test_data_scripts_take_only_the_data_section():
    files = sorted((ROOT / "data_scripts").glob("*.py"))
    assert len(files) >= 10
    bad = [v for f in files for v in config_violations(f.read_text(), str(f.relative_to(ROOT)), data_stage=True)]
    assert not bad, bad
    # and they do take it: the data sources and the augmenter are typed with the data section
    noise = (ROOT / "data_scripts" / "noise.py").read_text()
    assert "def training_noise(cfg: DataConfig" in noise


def test_front_end_and_window_stage_never_take_the_whole_config():
    bad = []
    for rel in STAGE_MODULES:
        bad += config_violations((ROOT / rel).read_text(), rel, data_stage=False, allowed=WHOLE_CONFIG.get(rel, set()))
    assert not bad, bad
    for rel, names in WHOLE_CONFIG.items():  # the allowance list names functions that exist
        defined = {n.name for n in ast.walk(ast.parse((ROOT / rel).read_text())) if isinstance(n, ast.FunctionDef)}
        assert names <= defined, (rel, names - defined)


def test_the_check_catches_a_violation():
    src = ("from training.config import Config\n"
           "def windows(audio, cfg: Config):\n    pass\n"
           "def more(audio, cfg):\n    pass\n"
           "def fine(audio, features: FeatureConfig, w: WindowConfig | None = None):\n    pass\n"
           "def evaluate_run(run_dir, cfg: Config):\n    pass\n")
    got = config_violations(src, "x.py", data_stage=False, allowed={"evaluate_run"})
    assert got == ["x.py:2 windows(cfg: Config)", "x.py:4 more(cfg: unannotated)"]
    data_src = ("def prep(cfg, progress=True):\n    pass\n"
                "def mix(data: Config):\n    pass\n"
                "def ok(cfg: DataConfig, n: int):\n    pass\n")
    assert config_violations(data_src, "d.py", data_stage=True) == ["d.py:1 prep(cfg: unannotated)",
                                                                  "d.py:3 mix(data: Config)"]


def test_windows_from_the_feature_section_alone():
    """The window functions run on a FeatureConfig and a DataConfig without any other section."""
    from data_scripts.config import DataConfig
    from training.config import FeatureConfig
    from training.dataset import WindowConfig, background_windows, clip_windows
    from training.evaluate import window_end_times
    from training.features import lfbe_params

    f = FeatureConfig(num_mel_bins=16, context_frames=5, context_stride=2)
    p = lfbe_params(f)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * ((t > 0.3) & (t < 0.7))).astype(np.float32)
    x, y = clip_windows(audio, "keyword", f, p, rng)
    assert x.shape[1] == 5 * 16 and len(x) == len(y) > 0
    bg = background_windows([], 3, f, p, rng)
    assert bg.shape == (3, 5 * 16)
    span = (5 - 1) * 2 + 1
    assert window_end_times(1, f)[0] == ((span - 1) * 160 + 400) / 16000
    w = WindowConfig(DataConfig(), f)
    assert not hasattr(w, "model") and not hasattr(w, "train") and not hasattr(w, "quant")


def test_training_stages_receive_their_sections():
    """The recipe runs on a RecipeConfig (train + features) and the export's metadata on an ExportConfig
    (model, features, quant, prune): neither view carries the data, eval or (recipe) model sections."""
    from basics.classes import KEYWORD_CLASS
    from training.config import Config, ExportConfig, RecipeConfig
    from training.qat_train import tflite_metadata
    from training.recipe import sample_weights

    cfg = Config()
    cfg.train.negative_weight = 4.0
    cfg.features.num_mel_bins = 40
    r = RecipeConfig.of(cfg)
    assert {f for f in r.__dataclass_fields__} == {"train", "features"}
    other = 1 - min(KEYWORD_CLASS, 1)
    assert sample_weights(np.array([other, KEYWORD_CLASS]), r.train).tolist() == [4.0, 1.0]
    e = ExportConfig.of(cfg)
    assert {f for f in e.__dataclass_fields__} == {"model", "features", "quant", "prune"}
    meta = tflite_metadata(e, {"mean": [0.0], "std": [1.0]}, ["a", "b", "c"])
    assert meta["model"] == "ffnn" and meta["features"]["num_mel_bins"] == 40 and meta["labels"] == ["a", "b", "c"]
    for view in (r, e):
        assert not hasattr(view, "data") and not hasattr(view, "eval")
