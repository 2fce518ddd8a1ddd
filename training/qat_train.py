"""Float -> stage 1 -> stage 2 quantization-aware training (``train.py --weight-bits K``).

Stage 1 fine-tunes the float model with only the dense weights quantized (tanh quantizer by
default); stage 2 adds linear 8-bit quantization of biases, folded gains, inputs and activations
and starts from stage 1's weights. With ``quant.stages=one`` everything is quantized at once
(the ablation). The float model comes from ``quant.float_run`` or is trained first into the
sibling run directory ``runs/<model>-<keyword>-float``.
"""
from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np

from training.config import Config
from basics.atomic import atomic_path, atomic_write_bytes, atomic_write_text, clean_stale_temporaries
from basics.errors import UserError, read_json
from tflm_port.convert import convert
from training.evaluate import evaluate_run, keras_scorer, tflite_scorer
from training.recipe import load_hard_negatives, with_hard_negatives
from training.runs import load_trained_model, qat_scope, save_model
from training.train import _val_stream, check_run_dir, fit, load_windows, log, train_float

# config sections that must agree between a float run and the QAT run built on it
_SHARED = ("data", "features", "model")


def float_config(cfg: Config) -> Config:
    f = copy.deepcopy(cfg)
    f.quant = type(cfg.quant)()
    return f


def ensure_float_run(cfg: Config, run_dir: Path, progress: bool) -> Path:
    fcfg = float_config(cfg)
    frun = Path(cfg.quant.float_run) if cfg.quant.float_run else run_dir.parent / f"{cfg.model.name}-{cfg.data.keyword}-float"
    if cfg.quant.float_run:
        p = frun / "config.json"
        if not p.is_file() or not (frun / "model.keras").is_file():
            raise UserError(f"{frun}: not a finished float run (needs config.json and model.keras)")
        old = read_json(p, "float run config")
        if not isinstance(old, dict):
            raise UserError(f"{p}: corrupt float run config (not a JSON object)")
        for sec in _SHARED:
            if old.get(sec) != fcfg.to_dict()[sec]:
                keys = [k for k in fcfg.to_dict()[sec] if old.get(sec, {}).get(k) != fcfg.to_dict()[sec][k]]
                raise UserError(f"{p}: float run does not match the config ({', '.join(f'{sec}.{k}' for k in keys)})")
        if old.get("quant", {}).get("weight_bits"):
            raise UserError(f"{p}: quant.float_run must be a float run, this one has weight_bits set")
        log(f"reusing float run {frun}")
    elif not (frun / "model.keras").is_file() or not (frun / "report.json").is_file():
        log(f"training the float model first into {frun}")
        train_float(fcfg, frun, progress)
    else:
        log(f"reusing float run {frun}")
    return frun


def train_quantized(cfg: Config, run_dir: Path, progress: bool = True) -> dict:
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    from training import qat  # lazy: heavy dependency, loaded only when this runs

    q = cfg.quant
    if not 1 <= q.weight_bits <= 8:
        raise UserError(f"quant.weight_bits: {q.weight_bits} is not supported (1..8)")
    if q.stages not in ("two", "one"):
        raise UserError(f"quant.stages: unknown value '{q.stages}' (two or one)")
    t0 = time.time()
    for d in (run_dir, run_dir / "checkpoints" / "stage1", run_dir / "checkpoints" / "stage2"):
        clean_stale_temporaries(d)  # left by a run killed mid-write
    frun = ensure_float_run(cfg, run_dir, progress)
    check_run_dir(run_dir, cfg)
    shutil.copyfile(frun / "normalizer.json", run_dir / "normalizer.json")
    for f in ("dataset.json", "labels.json"):
        shutil.copyfile(frun / f, run_dir / f)
    dataset = Path(json.loads((run_dir / "dataset.json").read_text())["dataset"])
    train, val, norm = load_windows(cfg, dataset, run_dir, progress)

    train = with_hard_negatives(train, load_hard_negatives(frun))  # the float run's mined windows
    vs = _val_stream(cfg, dataset, norm)
    mpath = run_dir / "model.keras"
    if mpath.is_file():
        log(f"{mpath} exists: QAT finished earlier, evaluating it")
        model = load_trained_model(run_dir)
    else:
        float_model = load_trained_model(frun)
        tf.keras.utils.set_random_seed(cfg.train.seed + 1)
        if q.stages == "two":
            log(f"stage 1: {q.weight_quantizer} {q.weight_bits}-bit weights, float activations")
            m1 = finished_stage(run_dir, "stage1", lambda: qat.make_qat_model(float_model, q, stage=1),
                                lambda m: fit(m, cfg, run_dir, "stage1", train, val, q.stage1_epochs,
                                              q.stage1_learning_rate, progress, [qat.SyncWeightRanges()],
                                              val_stream=vs))
            log("stage 2: + 8-bit inputs, activations, biases")
            model = qat.make_qat_model(float_model, q, stage=2)
            qat.transfer_weights(m1, model)
            fit(model, cfg, run_dir, "stage2", train, val, q.stage2_epochs, q.stage2_learning_rate, progress,
                [qat.SyncWeightRanges()], val_stream=vs)
        else:
            log(f"one stage: {q.weight_bits}-bit weights and 8-bit everything else at once")
            model = qat.make_qat_model(float_model, q, stage=2)
            fit(model, cfg, run_dir, "stage2", train, val, q.stage1_epochs + q.stage2_epochs,
                q.stage1_learning_rate, progress, [qat.SyncWeightRanges()], val_stream=vs)
        qat.sync_weight_ranges(model)
        with qat_scope():
            save_model(model, mpath)
        atomic_write_text(run_dir / "qat.json", json.dumps({
            "layer_bits": qat.layer_bits(model), "weight_quantizer": q.weight_quantizer, "stages": q.stages,
            "float_run": str(frun)}, indent=2) + "\n")
        log(f"QAT done in {time.time() - t0:.0f} s -> {mpath}")
    name = f"{cfg.model.name} w{q.weight_bits} {q.weight_quantizer} {q.stages}-stage"
    tfl = run_dir / "model.tflite"
    if not tfl.is_file():
        export_tflite(model, cfg, norm, train[0], tfl)
        log(f"converted -> {tfl} ({tfl.stat().st_size:,} bytes)")
    # the figures that count are the deployed integer model's, scored by the bit-exact reference

    report = evaluate_run(run_dir, cfg, norm, tflite_scorer(tfl), dataset, name=name)
    (run_dir / "keras_eval").mkdir(exist_ok=True)
    keras_report = evaluate_run(run_dir / "keras_eval", cfg, norm, keras_scorer(model), dataset,
                                name=name + " (Keras fake-quant)")
    report.update(layer_bits=qat.layer_bits(model), quantizer=q.weight_quantizer, stages=q.stages,
                  float_run=str(frun), seconds=round(time.time() - t0, 1), scored_with="tflm_port.reference",
                  model_bytes=tfl.stat().st_size)
    report["keras_fake_quant"] = {k: keras_report[k] for k in ("clip_accuracy",)}
    report["keras_fake_quant"].update({k: keras_report["stream"][k] for k in ("frr_at_1fah", "frr_at_0p5fah")})
    _ = np
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def finished_stage(run_dir: Path, tag: str, build, train):
    """The model of a finished training stage: ``build()`` then either load the weights it saved when
    it finished (``checkpoints/<tag>/final.weights.h5``) or ``train(model)`` and save them atomically.
    A run killed in a later stage (kill -9) resumes there instead of training this stage again."""
    final = run_dir / "checkpoints" / tag / "final.weights.h5"
    model = build()
    if final.is_file():
        log(f"{tag} finished earlier: loading {final}")
        try:
            model.load_weights(str(final))
        except Exception as e:  # h5py raises OSError/KeyError/ValueError on a damaged file
            raise UserError(f"{final}: cannot load the {tag} weights ({type(e).__name__}); delete it to "
                            "train the stage again") from None
        return model
    train(model)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as tmp:
        model.save_weights(str(tmp))
    return model


def tflite_metadata(cfg: Config, normalization: dict, labels: list) -> dict:
    """The "subkws" metadata every exported .tflite carries: labels, LFBE and context parameters,
    normalization, model name (what scoring, deploy and the firmware front end read)."""
    f = cfg.features
    return {"labels": labels,
            "features": {"sample_rate": f.sample_rate, "window_ms": f.window_ms, "hop_ms": f.hop_ms,
                         "num_mel_bins": f.num_mel_bins, "context_frames": f.context_frames,
                         "context_stride": f.context_stride, "lfbe": "training/features.py",
                         "normalization": normalization},
            "model": cfg.model.name}


def export_tflite(model, cfg: Config, norm, rep_windows, path: Path) -> None:
    """Convert a finished QAT model to the deployable .tflite with the project's metadata."""
    from training import qat  # lazy: heavy dependency, loaded only when this runs

    rng = np.random.default_rng(0)
    rep = rep_windows[rng.choice(len(rep_windows), size=min(500, len(rep_windows)), replace=False)]
    labels = json.loads((path.parent / "labels.json").read_text())
    meta = {**tflite_metadata(cfg, norm.to_dict(), labels),
            "weight_quantizer": cfg.quant.weight_quantizer, "stages": cfg.quant.stages}
    data = convert(qat.to_tflite(model, rep.astype(np.float32)), qat.layer_bits(model), mode="auto", metadata=meta,
                   name=str(path))
    atomic_write_bytes(path, data)
