"""Float -> stage 1 -> stage 2 quantization-aware training (``train.py --weight-bits K``).

Stage 1 fine-tunes the float model with only the dense weights quantized (tanh quantizer by
default); stage 2 adds linear 8-bit quantization of inputs and activations and starts from stage
1's weights. BatchNorm is folded into the weights and biases before stage 1; biases stay float and
become int32 at conversion (TFLite), never 8-bit. With ``quant.stages=one`` everything is quantized at once
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

from training.config import Config, ExportConfig
from basics.atomic import atomic_path, atomic_write_bytes, atomic_write_text, clean_stale_temporaries
from basics.errors import UserError, read_json
from tflm_port.convert import convert
from training.evaluate import evaluate_run, keras_scorer, tflite_scorer
from training.recipe import load_hard_negatives, with_hard_negatives
from training.runs import load_trained_model, qat_scope, run_dataset, save_model, tflite_metadata
from training.train import _val_stream, check_run_dir, fit, load_windows, log, train_float

# config sections that must agree between a float run and the QAT run built on it
_SHARED = ("data", "features", "model")


def float_config(cfg: Config) -> Config:
    f = copy.deepcopy(cfg)
    f.quant = type(cfg.quant)()
    f.prune = type(cfg.prune)()   # pruning runs in QAT only
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
        defaults = Config().to_dict()  # keys added since the float run was written hold their defaults
        for sec in _SHARED:
            oldsec = {**defaults.get(sec, {}), **old.get(sec, {})} if isinstance(old.get(sec), dict) else old.get(sec)
            if oldsec != fcfg.to_dict()[sec]:
                keys = [k for k in fcfg.to_dict()[sec] if (oldsec or {}).get(k) != fcfg.to_dict()[sec][k]]
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

    from training import distribute, lstm_qat, prune, qat  # lazy: heavy dependency (TensorFlow), loaded only when this runs

    q = cfg.quant
    if not 1 <= q.weight_bits <= 8:
        raise UserError(f"quant.weight_bits: {q.weight_bits} is not supported (1..8)")
    if q.stages not in ("two", "one"):
        raise UserError(f"quant.stages: unknown value '{q.stages}' (two or one)")
    if cfg.model.name not in ("ffnn", "lstm"):  # refused before any training: the export would fail after both stages
        raise UserError(f"model.name: {cfg.model.name} cannot be trained below 8 bits yet: the sub-8-bit converter "
                        "packs FULLY_CONNECTED layers only, so QAT export supports model.name ffnn (train "
                        f"{cfg.model.name} as float, without --weight-bits)")
    is_lstm = cfg.model.name == "lstm"   # LSTM QAT: training/lstm_qat.py (own quantized layer, same two stages)
    make_qat = lstm_qat.make_qat_lstm if is_lstm else qat.make_qat_model
    sync_cb = lstm_qat.SyncRanges if is_lstm else qat.SyncWeightRanges
    t0 = time.time()
    for d in (run_dir, run_dir / "checkpoints" / "stage1", run_dir / "checkpoints" / "stage2"):
        clean_stale_temporaries(d)  # left by a run killed mid-write
    frun = ensure_float_run(cfg, run_dir, progress)
    check_run_dir(run_dir, cfg)
    dataset = run_dataset(frun)   # checked first: a missing or corrupt float run file is one line
    if not (frun / "labels.json").is_file():
        raise UserError(f"{frun / 'labels.json'}: missing (not a finished float run)")
    shutil.copyfile(frun / "normalizer.json", run_dir / "normalizer.json")
    for f in ("dataset.json", "labels.json"):
        shutil.copyfile(frun / f, run_dir / f)
    train, val, norm = load_windows(cfg, dataset, run_dir, progress)

    train = with_hard_negatives(train, load_hard_negatives(frun))  # the float run's mined windows
    vs = _val_stream(cfg, dataset, norm)
    mpath = run_dir / "model.keras"
    if mpath.is_file():
        log(f"{mpath} exists: QAT finished earlier, evaluating it")
        model = load_trained_model(run_dir)
    else:
        float_model = load_trained_model(frun)
        teacher = load_trained_model(frun) if q.distill > 0 else None  # its own copy: QAT folds float_model's BN
        if teacher is not None:
            teacher.trainable = False
            log(f"distillation: targets = {1 - q.distill:g} x labels + {q.distill:g} x the float model's posteriors")
        tf.keras.utils.set_random_seed(cfg.train.seed + 1)

        def qat_model(stage: int):  # under the strategy: folded from the same float weights on every worker
            with distribute.scope():
                return make_qat(float_model, q, stage=stage)

        spe = int(np.ceil(len(train[0]) / cfg.train.batch_size))   # steps per epoch, as fit's LR schedule

        def prune_cbs(m, stage):  # magnitude pruning (the prune section; none by default)
            return prune.qat_callbacks(cfg.prune, m, stage, spe, log)

        if q.stages == "two":
            log(f"stage 1: {q.weight_quantizer if q.preset == 'tailored' else 'linear'} {q.weight_bits}-bit weights, "
                "float activations")
            m1 = finished_stage(run_dir, "stage1", lambda: qat_model(stage=1),
                                lambda m: fit(m, cfg, run_dir, "stage1", train, val, q.stage1_epochs,
                                              q.stage1_learning_rate, progress,
                                              [sync_cb(), *prune_cbs(m, 1)], val_stream=vs,
                                              teacher=teacher, distill=q.distill))
            log(f"stage 2: + 8-bit inputs, {q.activation_bits}-bit activations ({q.preset}) "
                "(biases int32 at conversion)")
            model = qat_model(stage=2)
            qat.transfer_weights(m1, model)
            if (q.activation_bits < 8 or q.operands) and not is_lstm:   # PACT clips start where stage 1's ReLU outputs say
                clips = qat.calibrate_pact(m1, model, train[0])
                if clips:
                    log(f"PACT clips from stage 1's activations: {', '.join(f'{c:.3g}' for c in clips)}")
            fit(model, cfg, run_dir, "stage2", train, val, q.stage2_epochs, q.stage2_learning_rate, progress,
                [sync_cb(), *prune_cbs(model, 2)], val_stream=vs, teacher=teacher, distill=q.distill)
        else:
            log(f"one stage: {q.weight_bits}-bit weights and 8-bit inputs and activations at once")
            model = qat_model(stage=2)
            fit(model, cfg, run_dir, "stage2", train, val, q.stage1_epochs + q.stage2_epochs,
                q.stage1_learning_rate, progress, [sync_cb(), *prune_cbs(model, 1)], val_stream=vs,
                teacher=teacher, distill=q.distill)
        lstm_qat.sync_ranges(model) if is_lstm else qat.sync_weight_ranges(model)
        with qat_scope():
            save_model(model, mpath)
        atomic_write_text(run_dir / "qat.json", json.dumps({
            "layer_bits": qat.layer_bits(model), "weight_quantizer": q.weight_quantizer, "stages": q.stages,
            "activation_bits": q.activation_bits, "preset": q.preset, "operands": q.operands,
            "distill": q.distill, "float_run": str(frun)}, indent=2) + "\n")
        log(f"QAT done in {time.time() - t0:.0f} s -> {mpath}")
        if distribute.multi_worker():  # convert and evaluate a plain (not distributed) copy, on the chief only
            plain = make_qat(float_model, q, stage=2)
            plain.set_weights(model.get_weights())
            model = plain
    if not distribute.is_chief():
        return distribute.worker_report(run_dir, model)
    from training.quant_spec import resolve  # lazy: quant_spec imports TensorFlow-side quantizers

    wkind = resolve(q)["weight"].kind   # the naive preset quantizes weights linearly whatever weight_quantizer says
    name = f"{cfg.model.name} w{q.weight_bits}a{q.activation_bits} {wkind} {q.preset} {q.stages}-stage"
    tfl = run_dir / "model.tflite"
    undeployable = None
    if is_lstm:   # TFLite's int8 LSTM or SUB8_LSTM_A4 (training/export_lstm_a4.py, quant.lstm_op)
        from training import export_lstm_a4  # lazy: only LSTM runs need it

        _, undeployable = export_lstm_a4.lstm_operator(model, q.lstm_op)
    if undeployable:   # no operator for this combination: the Keras fake-quant model is what is scored
        log(f"no .tflite: {undeployable}")
    elif not tfl.is_file():
        export_tflite(model, ExportConfig.of(cfg), norm, train[0], tfl)
        log(f"converted -> {tfl} ({tfl.stat().st_size:,} bytes)")
    # the figures that count are the deployed integer model's, scored by the bit-exact reference
    if undeployable:
        report = evaluate_run(run_dir, cfg, norm, keras_scorer(model), dataset, name=name + " (Keras fake-quant)")
        report.update(activation_bits=q.activation_bits, quantizer_preset=q.preset, quantizer=q.weight_quantizer,
                      stages=q.stages, float_run=str(frun), seconds=round(time.time() - t0, 1),
                      scored_with="keras fake-quant (no operator for this combination)", not_deployed=undeployable,
                      ranges=distribute.quantizer_ranges(model))
        atomic_write_text(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
        return report
    report = evaluate_run(run_dir, cfg, norm, tflite_scorer(tfl), dataset, name=name)
    (run_dir / "keras_eval").mkdir(exist_ok=True)
    keras_report = evaluate_run(run_dir / "keras_eval", cfg, norm, keras_scorer(model), dataset,
                                name=name + " (Keras fake-quant)")
    report.update(activation_bits=q.activation_bits, quantizer_preset=q.preset)
    report["ranges"] = distribute.quantizer_ranges(model)
    report.update(layer_bits=qat.layer_bits(model), quantizer=q.weight_quantizer, stages=q.stages,
                  float_run=str(frun), seconds=round(time.time() - t0, 1), scored_with="tflm_port.reference",
                  model_bytes=tfl.stat().st_size)
    pmeta, _ = prune.export_sparsity(cfg.prune, model, qat.layer_bits(model))
    if pmeta:
        report["prune"] = {**pmeta["prune"], "kernel_density": [round(d, 4) for d in prune.layer_densities(model)]}
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


def export_tflite(model, cfg: ExportConfig, norm, rep_windows, path: Path) -> None:
    """Convert a finished QAT model to the deployable .tflite with the project's metadata."""
    from training import prune, qat  # lazy: heavy dependency, loaded only when this runs

    rng = np.random.default_rng(0)
    rep = rep_windows[rng.choice(len(rep_windows), size=min(500, len(rep_windows)), replace=False)]
    labels = read_json(path.parent / "labels.json", "run labels file")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise UserError(f"{path.parent / 'labels.json'}: corrupt run labels file (not a list of class names)")
    meta = {**tflite_metadata(cfg, norm.to_dict(), labels),
            "weight_quantizer": cfg.quant.weight_quantizer, "stages": cfg.quant.stages}
    pmeta, sparse_spec = prune.export_sparsity(cfg.prune, model, qat.layer_bits(model))   # pruned layers stored sparse
    meta.update(pmeta)
    if cfg.model.name == "lstm":   # w8a8: TFLite's int8 UNIDIRECTIONAL_SEQUENCE_LSTM; w4a8, w4a4: SUB8_LSTM_A4
        from training import export_lstm_a4  # lazy: TensorFlow/tfmot, and only LSTM runs need it
        from training.export_lstm import convert_qat_lstm  # lazy: as above

        if export_lstm_a4.lstm_operator(model, cfg.quant.lstm_op)[0] == "sub8":
            meta.update(preset=cfg.quant.preset)
            atomic_write_bytes(path, export_lstm_a4.convert_lstm_a4(model, meta, name=str(path)))
            return

        frames = rep[:100].reshape(min(100, len(rep)), cfg.features.context_frames, -1).astype(np.float32)
        atomic_write_bytes(path, convert_qat_lstm(model, frames, {**meta, "preset": cfg.quant.preset}))
        return
    if cfg.quant.activation_bits < 8 or cfg.quant.operands:   # k-bit activations: SUB8_FC_A4 (tflm_port/fc_a4.py)
        from training import export_a4  # lazy: only k-bit-activation models need it

        if any(b < 8 for b in export_a4.activation_bits(model)):
            meta.update(preset=cfg.quant.preset, activation_bits=export_a4.activation_bits(model))
            atomic_write_bytes(path, export_a4.convert_a4(model, rep.astype(np.float32), meta, name=str(path)))
            return
    data = convert(qat.to_tflite(model, rep.astype(np.float32)), qat.layer_bits(model), mode="auto", metadata=meta,
                   name=str(path), sparse_spec=sparse_spec)
    atomic_write_bytes(path, data)
