"""Train a streaming keyword-spotting model end to end and evaluate it.

With no arguments: generate (or reuse) the offline synthetic "alexa" data set, train the
float FFNN (~248K parameters) and evaluate it (per-clip accuracy and a streaming DET curve),
all into runs/ffnn-alexa-float/. Options override a config file; every config key can be set
with --set section.key=value (keys and defaults are listed at the end of this help).

A run directory holds: config.json (resolved config), normalizer.json (feature normalization),
checkpoints/ (resumable: a killed run continues from its last finished epoch when started again
with the same --run-dir), logs/ (TensorBoard), model.keras, report.json, det.json, det.png.
With --weight-bits K (1..8) the float model is fine-tuned with two-stage QAT afterwards.
--strategy mirrored|multiworker trains under tf.distribute (docs/distributed.md).
"""
# The command line of training/train.py and training/qat_train.py (`python training/train.py`,
# `python -m training.cli` or `subkws-train`); the docstring above is its --help.
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from basics.errors import UserError, cli_main
from training import distribute, feature_store
from training.config import Config, all_keys, load_config, set_dotted
from training.qat_train import train_quantized
from training.train import log, resolve_run_dir, summary, train_float


def build_parser() -> argparse.ArgumentParser:
    keys = "\n".join(f"  {s}.{k} = {v!r}" for s, k, v in all_keys())
    ap = argparse.ArgumentParser(prog="python training/train.py", description=__doc__,
                                 epilog=f"config keys (--set section.key=value, or in --config):\n{keys}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="YAML or JSON config file (sections data/features/model/train/quant/eval/prune)")
    ap.add_argument("--run-dir", type=Path, help="output / resume directory (default runs/<model>-<keyword>-<float|wK>)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="set any config key")
    ap.add_argument("--keyword", help="wake word (data.keyword, default alexa)")
    ap.add_argument("--data-source", choices=["synthetic", "speech_commands", "folder"], help="data.source")
    ap.add_argument("--data-folder", help="data.folder: extracted Speech Commands, or your own recordings "
                    "(<folder>/<keyword>/*.wav, other subfolders negatives)")
    ap.add_argument("--data-root", help="data.root: where generated/prepared data is cached (default ./data)")
    ap.add_argument("--noise-dir", help="data.noise_dir: folder of background noise audio (default: synthetic noise)")
    ap.add_argument("--model", choices=["ffnn", "dscnn", "lstm"], help="model.name (lstm needs "
                    "features.context_stride=1)")
    ap.add_argument("--epochs", type=int, help="train.epochs for the float model")
    ap.add_argument("--weight-bits", type=int, help="quant.weight_bits: run two-stage QAT to K-bit weights (1..8)")
    ap.add_argument("--layer-bits", help="quant.layer_bits: per-layer weight bits, e.g. 8,4,4,4,4")
    ap.add_argument("--weight-quantizer", choices=["auto", "tanh", "linear", "sawb"], help="quant.weight_quantizer")
    ap.add_argument("--activation-bits", type=int, help="quant.activation_bits: ReLU outputs at K bits (2..8, "
                    "< 8 exports SUB8_FC_A4; docs/quantization.md)")
    ap.add_argument("--preset", choices=["tailored", "naive"], help="quant.preset: the quantizer of every operand")
    ap.add_argument("--stages", choices=["two", "one"], help="quant.stages: two-stage QAT or everything at once")
    ap.add_argument("--float-run", help="quant.float_run: reuse this finished float run directory")
    ap.add_argument("--quick", action="store_true", help="tiny data and few epochs: a smoke test in about a minute")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--strategy", choices=["default", "mirrored", "multiworker"], default="default",
                    help="tf.distribute strategy (multiworker: TF_CONFIG; see docs/distributed.md)")
    ap.add_argument("--shard-by", choices=["file", "data"], default="file",
                    help="multiworker input: each worker reads its own store shards (file) or its windows of "
                         "one common stream (data: the same global batches as one worker)")
    ap.add_argument("--feature-store", type=Path, help="feature store folder (default <data set>/store/<key>)")
    return ap


SHORTCUTS = {"keyword": "data.keyword", "data_source": "data.source", "data_folder": "data.folder",
             "data_root": "data.root", "noise_dir": "data.noise_dir", "model": "model.name",
             "epochs": "train.epochs", "weight_bits": "quant.weight_bits", "layer_bits": "quant.layer_bits",
             "weight_quantizer": "quant.weight_quantizer", "stages": "quant.stages", "float_run": "quant.float_run",
             "activation_bits": "quant.activation_bits", "preset": "quant.preset"}


def config_from_args(a) -> Config:
    cfg = load_config(a.config)
    if a.quick:
        for k, v in {"data.num_voices": 12, "data.clips_per_voice": 2, "data.stream_minutes": 2.0,
                     "train.epochs": 3, "quant.stage1_epochs": 1, "quant.stage2_epochs": 1}.items():
            set_dotted(cfg, k, v, "--quick")
    for item in a.set:
        if "=" not in item:
            raise UserError(f"--set {item}: expected section.key=value")
        k, v = item.split("=", 1)
        set_dotted(cfg, k.strip(), v.strip(), "--set")
    for opt, key in SHORTCUTS.items():
        v = getattr(a, opt)
        if v is not None:
            set_dotted(cfg, key, v, f"--{opt.replace('_', '-')}")
    return cfg.validate("command line")


@cli_main
def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    cfg = config_from_args(a)
    run_dir = resolve_run_dir(cfg, a.run_dir)
    progress = not a.no_progress and sys.stderr.isatty()
    feature_store.use_store(a.feature_store)
    run_dir = distribute.setup(a.strategy, run_dir, a.shard_by)  # a private folder on non-chief workers
    if cfg.quant.weight_bits:
        report = train_quantized(cfg, run_dir, progress)
    else:
        report = train_float(cfg, run_dir, progress)
    if not distribute.is_chief():
        log(f"worker {distribute.worker_index()} done")
        return 0
    log(summary(report))
    log(f"DET curve: {report['det_png']}")
    return 0


if __name__ == "__main__":
    main()
