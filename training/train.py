"""The float training pipeline: prepare the data, cut the windows, fit (resumable checkpoints,
TensorBoard logs), hard-negative rounds, save model.keras and evaluate the run.

``python training/train.py`` runs the command line, training/cli.py (its --help describes the
options and the run directory); two-stage QAT builds on this module in training/qat_train.py.
--strategy mirrored|multiworker trains under tf.distribute (docs/distributed.md).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python training/train.py` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.config import Config, RecipeConfig  # noqa: E402
from basics.atomic import atomic_path, atomic_write_text
from basics.errors import UserError, cli_main, read_json  # noqa: E402
from training.evaluate import evaluate_run, keras_scorer  # noqa: E402
from training.runs import load_trained_model, qat_scope, save_model  # noqa: E402,F401  (qat_scope: re-exported)
import numpy as np
from training.feature_store import build_split, fit_input
from training.features import Normalizer
from training import prune_spec
from training.checkpoints import best_val_loss_callbacks
from training.dataset import WindowConfig, prepare_data  # noqa: F401  (prepare_data re-exported: the data step of a run)
from training.recipe import (ValStream, fa_selection_callback, mine_hard_negatives, negative_clips,
                             sample_weights, batch_maps, train_dataset, with_hard_negatives)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------- data
def load_windows(cfg: Config, dataset: Path, run_dir: Path, progress: bool = True):
    """Normalized train/val windows; the normalizer is fitted on train and saved in the run."""
    bins = cfg.features.num_mel_bins
    npath = run_dir / "normalizer.json"
    norm = None
    if npath.is_file():  # checked before the data work: a corrupt file is one line, not a traceback later
        norm = Normalizer.from_dict(read_json(npath, "feature normalization"), bins, str(npath))
    xtr, ytr = build_split(WindowConfig.of(cfg), dataset, "train", progress)
    xva, yva = build_split(WindowConfig.of(cfg), dataset, "val", progress)
    if norm is None:
        norm = Normalizer.fit(xtr.reshape(-1, bins))
        atomic_write_text(npath, json.dumps(norm.to_dict()) + "\n")

    def apply(x):
        return norm(x.reshape(len(x), -1, bins)).reshape(len(x), -1)

    return (apply(xtr), ytr), (apply(xva), yva), norm


# ----------------------------------------------------------------------------- model io
def compile_model(model, cfg: Config, lr, n_classes: int) -> None:
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr, weight_decay=cfg.train.weight_decay or None),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.train.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def fit(model, cfg: Config, run_dir: Path, tag: str, train, val, epochs: int, lr: float, progress: bool,
        callbacks: list | None = None, val_stream=None, teacher=None, distill: float = 0.0) -> None:
    """model.fit with resumable checkpoints, TensorBoard logs and the recipe of training/recipe.py
    (loss weights, SpecAugment, best epoch by val loss or by val-stream FRR at select_fah; with a
    ``teacher`` and ``distill`` > 0 the targets mix in the teacher's posteriors)."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    n_classes = int(model.output_shape[-1])
    steps = epochs * int(np.ceil(len(train[0]) / cfg.train.batch_size))
    sched = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps), alpha=0.05)
    from training import distribute  # lazy: imports TensorFlow

    with distribute.scope():
        compile_model(model, cfg, sched, n_classes)
    ck = run_dir / "checkpoints" / tag
    ck.mkdir(parents=True, exist_ok=True)
    best = ck / "best.weights.h5"
    cbs = [
        keras.callbacks.BackupAndRestore(str(distribute.shared_path(ck / "backup"))),
        keras.callbacks.TensorBoard(str(run_dir / "logs" / tag), write_graph=False, profile_batch=0),
    ]
    if cfg.train.select_by == "fa_per_hour" and val_stream is not None:
        cbs.append(fa_selection_callback(val_stream, cfg.train, best, epochs, log))
    else:
        cbs.extend(best_val_loss_callbacks(best))  # the best so far survives a resume
    if cfg.train.max_minutes > 0:
        if distribute.multi_worker():
            raise UserError("train.max_minutes: not supported with --strategy multiworker (workers would stop apart)")
        cbs.append(_TimeLimit(cfg.train.max_minutes * 60))
    cbs.append(_EpochLog(tag, epochs))
    cbs[-1].batch_size = cfg.train.batch_size
    cbs.extend(callbacks or [])

    def onehot(y):
        return np.eye(n_classes, dtype=np.float32)[y]

    vdata = (val[0], onehot(val[1]))

    if teacher is not None and distill > 0 and distribute.name() != "default":
        raise UserError("quant.distill: not supported with --strategy mirrored/multiworker yet (the teacher runs in "
                        "the input pipeline); use the default strategy")
    bmap = batch_maps(RecipeConfig.of(cfg), teacher, distill)
    inp = fit_input(WindowConfig.of(cfg), cfg.train, run_dir, train, n_classes, cfg.train.seed, distribute.shard_by(),
                    bmap)
    if inp is not None:  # the feature store: the one data path, on one worker or many
        model.fit(inp.data, steps_per_epoch=inp.steps, validation_data=vdata, epochs=epochs, callbacks=cbs,
                  verbose=1 if progress else 0)
    elif bmap is not None:
        ds = train_dataset(train[0], train[1], RecipeConfig.of(cfg), n_classes, cfg.train.seed, bmap)
        model.fit(ds, validation_data=vdata, epochs=epochs, callbacks=cbs, verbose=1 if progress else 0)
    else:
        model.fit(train[0], onehot(train[1]), sample_weight=sample_weights(train[1], cfg.train), validation_data=vdata,
                  epochs=epochs, batch_size=cfg.train.batch_size, shuffle=True, callbacks=cbs,
                  verbose=1 if progress else 0)
    distribute.barrier()  # the chief's best weights are written before any worker reads them
    best = distribute.shared_path(best)
    if best.is_file():
        distribute.load_weights(model, best)


class _EpochLog:
    """One line per finished epoch (the progress record when there is no terminal)."""

    def __new__(cls, tag: str, epochs: int):
        import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

        class EpochLog(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0, self.t_train = time.perf_counter(), None

            def on_test_begin(self, logs=None):  # validation: the training part of the epoch ends
                self.t_train = self.t_train or time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                items = " ".join(f"{k} {v:.4f}" for k, v in logs.items() if k in
                                 ("loss", "accuracy", "val_loss", "val_accuracy"))
                rate = ""
                steps, batch = (self.params or {}).get("steps"), getattr(self, "batch_size", None)
                if steps and batch and getattr(self, "t0", None):
                    dt = (self.t_train or time.perf_counter()) - self.t0
                    rate = f" ({steps * batch / max(dt, 1e-9):.0f} examples/s)"  # global batch, all workers
                log(f"{tag} epoch {epoch + 1}/{epochs}: {items}{rate}")

        return EpochLog()


class _TimeLimit:
    def __new__(cls, seconds: float):
        import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

        class TimeLimit(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                if time.time() - self.t0 > seconds:
                    log(f"time limit of {seconds / 60:.1f} min reached after epoch {epoch + 1}; stopping")
                    self.model.stop_training = True

        return TimeLimit()


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
    if cfg.quant.weight_bits and cfg.quant.activation_bits < 8:
        tag += f"a{cfg.quant.activation_bits}"
    if cfg.quant.weight_bits and cfg.quant.preset != "tailored":
        tag += f"-{cfg.quant.preset}"
    if cfg.quant.weight_bits:
        tag += prune_spec.run_tag(cfg.prune)   # e.g. -block8-d25 (training/prune_spec.py)
    return Path("runs") / f"{cfg.model.name}-{cfg.data.keyword}-{tag}"


def check_run_dir(run_dir: Path, cfg: Config) -> None:
    """A run directory belongs to one config: refuse to resume it with another."""
    p = run_dir / "config.json"
    if p.is_file():
        saved = read_json(p, "run config", mapping=True)
        old = Config().to_dict()   # keys added since the run was written hold their defaults
        for sec, vals in saved.items():
            old[sec] = {**old.get(sec, {}), **vals} if isinstance(vals, dict) else vals
        if old != cfg.to_dict():
            diff = [f"{s}.{k}" for s in old for k in old[s] if old[s].get(k) != cfg.to_dict().get(s, {}).get(k)]
            raise UserError(f"{p}: run directory holds a different config ({', '.join(diff) or 'keys'}); "
                            "use another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(p)


def train_float(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    from training.models import build_model, class_names  # lazy: heavy dependency, loaded only when this runs

    from training import distribute  # lazy: imports TensorFlow

    check_run_dir(run_dir, cfg)
    t0 = time.time()
    distribute.wait_for_chief(run_dir / "normalizer.json")  # the chief prepares the data and the store
    log(f"data: {cfg.data.source} (keyword '{cfg.data.keyword}')")
    dataset = prepare_data(cfg.data, progress)
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
        with distribute.scope():
            model = build_model(cfg.model, cfg.features, len(labels))
            distribute.sync_batchnorm(model)
        log(f"model {cfg.model.name}: {model.count_params():,} parameters "
            f"({sum(int(np.prod(w.shape)) for w in model.trainable_weights):,} trainable)")
        vs = _val_stream(cfg, dataset, norm)
        fit(model, cfg, run_dir, "float", train, val, cfg.train.epochs, cfg.train.learning_rate, progress,
            val_stream=vs)
        mine_rounds(model, cfg, run_dir, dataset, norm, train, val, vs, progress)
        save_model(model, mpath)
        log(f"trained in {time.time() - t0:.0f} s -> {mpath}")
        if distribute.multi_worker():  # evaluate a plain copy: the distributed one needs every worker
            model = load_trained_model(run_dir)
    if not distribute.is_chief():
        return distribute.worker_report(run_dir, model)
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

    if not (Path(dataset) / "stream" / "val.wav").is_file():
        raise UserError(f"{dataset}: no validation stream (stream/val.wav) for train.select_by=fa_per_hour")
    return ValStream(dataset, cfg.features, cfg.eval, norm)


def mine_rounds(model, cfg: Config, run_dir: Path, dataset: Path, norm, train, val, vs, progress: bool) -> None:
    """Hard-negative mining rounds (training/recipe.py); the mined windows are kept in the run."""
    t = cfg.train
    if t.hard_negative_rounds <= 0:
        return
    clips = negative_clips(dataset)
    mined = []
    for r in range(t.hard_negative_rounds):
        x, info = mine_hard_negatives(model, clips, cfg.features, norm, t.hard_negative_max,
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


if __name__ == "__main__":  # `python training/train.py`: the command line lives in training/cli.py, which sits
    import runpy  # above this module and qat_train (it dispatches to either), so this module cannot import it

    runpy.run_module("training.cli", run_name="__main__")
