"""Train a streaming keyword-spotting model end to end and evaluate it.

With no arguments: generate (or reuse) the offline synthetic "alexa" data set, train the
float FFNN (~248K parameters) and evaluate it (per-clip accuracy and a streaming DET curve),
all into runs/ffnn-alexa-float/. Options override a config file; every config key can be set
with --set section.key=value (keys and defaults are listed at the end of this help).

A run directory holds: config.json (resolved config), normalizer.json (feature normalization),
checkpoints/ (resumable: a killed run continues from its last finished epoch when started again
with the same --run-dir), logs/ (TensorBoard), model.keras, report.json, det.json, det.png.
With --weight-bits K (1..8) the float model is fine-tuned with two-stage QAT afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python training/train.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.config import Config, all_keys, load_config, set_dotted  # noqa: E402
from basics.atomic import atomic_path, atomic_write_text
from basics.errors import UserError, cli_main  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def prepare_data(cfg: Config, progress: bool = True) -> Path:
    src = cfg.data.source
    d = cfg.data
    if src == "mix" or (src == "synthetic" and (d.sources or d.tts or d.negative_dirs or d.positive_dirs)):
        from data_scripts.sources import prepare_mix

        return prepare_mix(cfg.data, progress=progress)
    if src == "synthetic":
        from data_scripts.synthetic import prepare_synthetic

        return prepare_synthetic(cfg.data, progress=progress)
    if src == "speech_commands":
        from data_scripts.speech_commands import prepare_speech_commands

        return prepare_speech_commands(cfg.data, progress=progress)
    if src == "folder":
        from data_scripts.speech_commands import prepare_folder

        return prepare_folder(cfg.data, progress=progress)
    raise UserError(f"data.source: unknown source '{src}' (known: synthetic, mix, speech_commands, folder)")


def load_windows(cfg: Config, dataset: Path, run_dir: Path, progress: bool = True):
    """Normalized train/val windows; the normalizer is fitted on train and saved in the run."""
    from training.dataset import build_split
    from training.features import Normalizer

    xtr, ytr = build_split(cfg, dataset, "train", progress)
    xva, yva = build_split(cfg, dataset, "val", progress)
    bins = cfg.features.num_mel_bins
    npath = run_dir / "normalizer.json"
    if npath.is_file():
        norm = Normalizer(**json.loads(npath.read_text()))
    else:
        norm = Normalizer.fit(xtr.reshape(-1, bins))
        atomic_write_text(npath, json.dumps(norm.to_dict()) + "\n")

    def apply(x):
        return norm(x.reshape(len(x), -1, bins)).reshape(len(x), -1)

    return (apply(xtr), ytr), (apply(xva), yva), norm


# ----------------------------------------------------------------------------- model io
def save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(str(tmp))


def load_trained_model(run_dir: Path):
    import tf_keras as keras

    run_dir = Path(run_dir)
    path = run_dir / "model.keras"
    if not path.is_file():
        raise UserError(f"{run_dir}: no trained model (model.keras) – has training finished?")
    try:
        if (run_dir / "qat.json").is_file():
            with qat_scope():
                return keras.models.load_model(str(path), compile=False)
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot load model ({str(e).splitlines()[0]})") from None


def qat_scope():
    """Keras custom-object scope that can load QAT models (tfmot wrappers and our quantizers)."""
    import tensorflow_model_optimization as tfmot

    from training import qat

    return tfmot.quantization.keras.quantize_scope(qat.custom_objects())


def compile_model(model, cfg: Config, lr, n_classes: int) -> None:
    import tf_keras as keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr, weight_decay=cfg.train.weight_decay or None),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.train.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def fit(model, cfg: Config, run_dir: Path, tag: str, train, val, epochs: int, lr: float, progress: bool,
        callbacks: list | None = None, val_stream=None) -> None:
    """model.fit with resumable checkpoints, TensorBoard logs and the recipe of training/recipe.py
    (loss weights, SpecAugment, best epoch by val loss or by val-stream FRR at select_fah)."""
    import numpy as np
    import tf_keras as keras

    from training.recipe import fa_selection_callback, sample_weights, train_dataset

    n_classes = int(model.output_shape[-1])
    steps = epochs * int(np.ceil(len(train[0]) / cfg.train.batch_size))
    sched = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
    compile_model(model, cfg, sched, n_classes)
    ck = run_dir / "checkpoints" / tag
    ck.mkdir(parents=True, exist_ok=True)
    best = ck / "best.weights.h5"
    cbs = [
        keras.callbacks.BackupAndRestore(str(ck / "backup")),
        keras.callbacks.TensorBoard(str(run_dir / "logs" / tag), write_graph=False, profile_batch=0),
    ]
    if cfg.train.select_by == "fa_per_hour" and val_stream is not None:
        cbs.append(fa_selection_callback(val_stream, cfg, best, epochs, log))
    else:
        cbs.append(keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                                   save_weights_only=True))
    if cfg.train.max_minutes > 0:
        cbs.append(_TimeLimit(cfg.train.max_minutes * 60))
    cbs.append(_EpochLog(tag, epochs))
    cbs.extend(callbacks or [])

    def onehot(y):
        return np.eye(n_classes, dtype=np.float32)[y]

    vdata = (val[0], onehot(val[1]))
    if cfg.train.spec_augment:
        ds = train_dataset(train[0], train[1], cfg, n_classes, cfg.train.seed)
        model.fit(ds, validation_data=vdata, epochs=epochs, callbacks=cbs, verbose=1 if progress else 0)
    else:
        model.fit(train[0], onehot(train[1]), sample_weight=sample_weights(train[1], cfg), validation_data=vdata,
                  epochs=epochs, batch_size=cfg.train.batch_size, shuffle=True, callbacks=cbs,
                  verbose=1 if progress else 0)
    if best.is_file():
        model.load_weights(str(best))


class _EpochLog:
    """One line per finished epoch (the progress record when there is no terminal)."""

    def __new__(cls, tag: str, epochs: int):
        import tf_keras as keras

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                items = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k in
                                 ("loss", "accuracy", "val_loss", "val_accuracy"))
                log(f"{tag} epoch {epoch + 1}/{epochs}: {items}")

        return EpochLog()


class _TimeLimit:
    def __new__(cls, seconds: float):
        import tf_keras as keras

        class TimeLimit(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                if time.time() - self.t0 > seconds:
                    log(f"time limit of {seconds / 60:.1f} min reached after epoch {epoch + 1}; stopping")
                    self.model.stop_training = True

        return TimeLimit()


# ----------------------------------------------------------------------------- evaluation
def evaluate_run(run_dir: Path, cfg: Config, norm, scorer, dataset: Path | None = None, name: str = "") -> dict:
    """Per-clip accuracy on the test clips and the streaming DET curve on the test stream."""
    import numpy as np

    from basics.audio import load_audio
    from training.dataset import read_manifest
    from training.evaluate import clip_scores, evaluate_stream, plot_det

    run_dir = Path(run_dir)
    if dataset is None:
        dataset = Path(json.loads((run_dir / "dataset.json").read_text())["dataset"])
    clips = [c for c in read_manifest(dataset) if c.split == "test"]
    sc = clip_scores(scorer, [load_audio(c.path, cfg.features.sample_rate) for c in clips], cfg, norm)
    truth = np.array([c.label == "keyword" for c in clips])
    acc = float(np.mean((sc >= 0.5) == truth))
    stream = evaluate_stream(scorer, dataset / "stream" / "test.wav", dataset / "stream" / "test.json", cfg, norm)
    det = stream.pop("det")
    report = {
        "run_dir": str(run_dir), "name": name or run_dir.name, "model": cfg.model.name,
        "weight_bits": cfg.quant.weight_bits, "clip_accuracy": acc, "test_clips": len(clips),
        "keyword_clip_recall_at_0p5": float(np.mean(sc[truth] >= 0.5)) if truth.any() else None,
        "stream": stream,
    }
    atomic_write_text(run_dir / "det.json", json.dumps(det, indent=1) + "\n")
    plot_det({report["name"]: det}, run_dir / "det.png", title=f"DET, {report['name']}, synthetic test stream")
    report["det_png"] = str(run_dir / "det.png")
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def summary(report: dict) -> str:
    s = report["stream"]
    return (f"{report['name']}: clip accuracy {100 * report['clip_accuracy']:.1f}% on {report['test_clips']} test clips; "
            f"streaming ({s['hours'] * 60:.1f} min, {s['keywords']} keywords): FRR {100 * s['frr_at_1fah']:.1f}% "
            f"at 1 FA/h (threshold {s['threshold_at_1fah']:.2f}), {100 * s['frr_at_0p5fah']:.1f}% at 0.5 FA/h")


# ----------------------------------------------------------------------------- driver
def resolve_run_dir(cfg: Config, run_dir: Path | None) -> Path:
    if run_dir:
        return Path(run_dir)
    tag = "float" if not cfg.quant.weight_bits else f"w{cfg.quant.weight_bits}"
    return Path("runs") / f"{cfg.model.name}-{cfg.data.keyword}-{tag}"


def check_run_dir(run_dir: Path, cfg: Config) -> None:
    """A run directory belongs to one config: refuse to resume it with another."""
    p = run_dir / "config.json"
    if p.is_file():
        old = json.loads(p.read_text())
        if old != cfg.to_dict():
            diff = [f"{s}.{k}" for s in old for k in old[s] if old[s].get(k) != cfg.to_dict().get(s, {}).get(k)]
            raise UserError(f"{p}: run directory holds a different config ({', '.join(diff) or 'keys'}); "
                            "use another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(p)


def train_float(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    import numpy as np
    import tensorflow as tf

    from training.models import build_model, class_names

    check_run_dir(run_dir, cfg)
    t0 = time.time()
    log(f"data: {cfg.data.source} (keyword '{cfg.data.keyword}')")
    dataset = prepare_data(cfg, progress)
    atomic_write_text(run_dir / "dataset.json", json.dumps({"dataset": str(Path(dataset).resolve())}) + "\n")
    log(f"dataset ready: {dataset} ({time.time() - t0:.0f} s)")
    train, val, norm = load_windows(cfg, dataset, run_dir, progress)
    counts = np.bincount(train[1], minlength=3).tolist()
    log(f"windows: train {len(train[0])} (silence/unknown/keyword {counts}), val {len(val[0])} ({time.time() - t0:.0f} s)")
    labels = class_names(cfg.data.keyword)
    atomic_write_text(run_dir / "labels.json", json.dumps(labels) + "\n")
    mpath = run_dir / "model.keras"
    if mpath.is_file():
        log(f"{mpath} exists: training finished earlier, evaluating it")
        model = load_trained_model(run_dir)
    else:
        tf.keras.utils.set_random_seed(cfg.train.seed)
        model = build_model(cfg.model, cfg.features, len(labels))
        log(f"model {cfg.model.name}: {model.count_params():,} parameters "
            f"({sum(int(np.prod(w.shape)) for w in model.trainable_weights):,} trainable)")
        vs = _val_stream(cfg, dataset, norm)
        fit(model, cfg, run_dir, "float", train, val, cfg.train.epochs, cfg.train.learning_rate, progress,
            val_stream=vs)
        mine_rounds(model, cfg, run_dir, dataset, norm, train, val, vs, progress)
        save_model(model, mpath)
        log(f"trained in {time.time() - t0:.0f} s -> {mpath}")
    from training.evaluate import keras_scorer

    report = evaluate_run(run_dir, cfg, norm, keras_scorer(model), dataset, name=f"{cfg.model.name} float")
    report["params"] = int(model.count_params())
    report["seconds"] = round(time.time() - t0, 1)
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def _val_stream(cfg: Config, dataset: Path, norm):
    if cfg.train.select_by != "fa_per_hour":
        if cfg.train.select_by != "val_loss":
            raise UserError(f"train.select_by: '{cfg.train.select_by}' (val_loss or fa_per_hour)")
        return None
    from training.recipe import ValStream

    if not (Path(dataset) / "stream" / "val.wav").is_file():
        raise UserError(f"{dataset}: no validation stream (stream/val.wav) for train.select_by=fa_per_hour")
    return ValStream(dataset, cfg, norm)


def mine_rounds(model, cfg: Config, run_dir: Path, dataset: Path, norm, train, val, vs, progress: bool) -> None:
    """Hard-negative mining rounds (training/recipe.py); the mined windows are kept in the run."""
    import numpy as np

    from basics.atomic import atomic_path
    from training.recipe import mine_hard_negatives, negative_clips, with_hard_negatives

    t = cfg.train
    if t.hard_negative_rounds <= 0:
        return
    clips = negative_clips(dataset)
    mined = []
    for r in range(t.hard_negative_rounds):
        x, info = mine_hard_negatives(model, clips, cfg, norm, t.hard_negative_max,
                                      np.random.default_rng([t.seed, 99, r]), progress)
        log(f"hard negatives, round {r + 1}/{t.hard_negative_rounds}: {info['windows_found']} of "
            f"{info['windows_scored']} negative windows fire; {info['windows_kept']} added")
        if len(x):
            mined.append(x)
        hard = np.concatenate(mined) if mined else None
        fit(model, cfg, run_dir, f"mine{r + 1}", with_hard_negatives(train, hard), val, t.hard_negative_epochs,
            t.learning_rate * 0.3, progress, val_stream=vs)
    if mined:
        with atomic_path(run_dir / "hard_negatives.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, x=np.concatenate(mined))


def build_parser() -> argparse.ArgumentParser:
    keys = "\n".join(f"  {s}.{k} = {v!r}" for s, k, v in all_keys())
    ap = argparse.ArgumentParser(prog="python training/train.py", description=__doc__,
                                 epilog=f"config keys (--set section.key=value, or in --config):\n{keys}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="YAML or JSON config file (sections data/features/model/train/quant/eval)")
    ap.add_argument("--run-dir", type=Path, help="output / resume directory (default runs/<model>-<keyword>-<float|wK>)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="set any config key")
    ap.add_argument("--keyword", help="wake word (data.keyword, default alexa)")
    ap.add_argument("--data-source", choices=["synthetic", "speech_commands", "folder"], help="data.source")
    ap.add_argument("--data-folder", help="data.folder: extracted Speech Commands, or your own recordings "
                    "(<folder>/<keyword>/*.wav, other subfolders negatives)")
    ap.add_argument("--data-root", help="data.root: where generated/prepared data is cached (default ./data)")
    ap.add_argument("--noise-dir", help="data.noise_dir: folder of background noise audio (default: synthetic noise)")
    ap.add_argument("--model", choices=["ffnn", "dscnn"], help="model.name")
    ap.add_argument("--epochs", type=int, help="train.epochs for the float model")
    ap.add_argument("--weight-bits", type=int, help="quant.weight_bits: run two-stage QAT to K-bit weights (1..8)")
    ap.add_argument("--layer-bits", help="quant.layer_bits: per-layer weight bits, e.g. 8,4,4,4,4")
    ap.add_argument("--weight-quantizer", choices=["tanh", "linear"], help="quant.weight_quantizer")
    ap.add_argument("--stages", choices=["two", "one"], help="quant.stages: two-stage QAT or everything at once")
    ap.add_argument("--float-run", help="quant.float_run: reuse this finished float run directory")
    ap.add_argument("--quick", action="store_true", help="tiny data and few epochs: a smoke test in about a minute")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


SHORTCUTS = {"keyword": "data.keyword", "data_source": "data.source", "data_folder": "data.folder",
             "data_root": "data.root", "noise_dir": "data.noise_dir", "model": "model.name",
             "epochs": "train.epochs", "weight_bits": "quant.weight_bits", "layer_bits": "quant.layer_bits",
             "weight_quantizer": "quant.weight_quantizer", "stages": "quant.stages", "float_run": "quant.float_run"}


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
    if cfg.quant.weight_bits:
        from training.qat_train import train_quantized

        report = train_quantized(cfg, run_dir, progress)
    else:
        report = train_float(cfg, run_dir, progress)
    log(summary(report))
    log(f"DET curve: {report['det_png']}")
    return 0


if __name__ == "__main__":
    main()
