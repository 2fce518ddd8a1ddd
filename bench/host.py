"""Host benchmarks (no trained run needed: random-weight QAT models are built in-process).

* ``host_stream_eval``: FFNN-250K scored over synthetic streaming audio (noise + speech-like voiced
  segments, LFBE features, 24 x 64 windows every 10 ms) by the integer reference, batched, vs
  ``tf.lite.Interpreter`` (builtin kernels, no XNNPACK) invoked frame by frame in the same run; the
  tf.lite outputs of the timed frames are checked to equal the reference's ``rounding="tflite"``.
* ``host_audio_eval`` (``run_audio``, ``python -m bench.run --only host_audio``): the whole audio ->
  posteriors path (LFBE features included) on 2 threads, wall and process CPU time, output checked
  equal to the single-thread path.
* ``model_size``: converted model bytes per weight bit width 8..1 (auto and dense modes) vs the float
  TFLite model of the same network, flash split (weights, biases, graph) and an activation-arena
  estimate.

Models: ``training.models.build_ffnn`` -> ``training.qat.make_qat_model(stage=2)`` ->
``training.qat.to_tflite`` -> ``tflm_port.convert`` (``bench.testmodels.qat_ffnn``), or with
``run_dir`` the run's own ``model.tflite`` for the stream benchmark.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
import platform

import numpy as np
import numpy

from tflm_port.sizes import size_split  # noqa: F401  (records keep using it from here)
from tflm_port.convert import convert
from tflm_port.reference import Reference
from tflm_port.tflite_io import get_metadata, load_model
from training.config import FeatureConfig, ModelConfig
from training.features import LfbeParams, Normalizer, lfbe, num_frames, stack_context

HOP_S = 0.010  # one inference per 10 ms feature hop


# --------------------------------------------------------------------------- audio and features

def synth_stream(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise floor + speech-like voiced segments (harmonic stacks with gliding pitch, formant-like
    amplitude envelopes, 0.2-0.9 s long) at random levels; float32 mono in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = (rng.normal(size=n) * 0.01).astype(np.float32)
    # slowly varying coloured noise bursts
    t = 0
    while t < n:
        seg = int(rng.uniform(0.2, 0.9) * sr)
        gap = int(rng.uniform(0.1, 1.2) * sr)
        s = min(seg, n - t)
        if s <= 0:
            break
        tt = np.arange(s) / sr
        f0 = rng.uniform(90, 260) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(1, 5) * tt))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        formants = rng.uniform([300, 900, 2200], [900, 2200, 3500])
        v = np.zeros(s)
        for h in range(1, 25):
            fh = h * f0
            amp = sum(np.exp(-((fh - f) / 150.0) ** 2) for f in formants) / h
            v += amp * np.sin(h * phase)
        env = np.sin(np.pi * np.arange(s) / s) ** 2
        x[t:t + s] += (rng.uniform(0.05, 0.4) * env * v / (np.abs(v).max() + 1e-9)).astype(np.float32)
        t += s + gap
    return np.clip(x, -1, 1)


def stream_features(seconds: float, bins: int = 64, seed: int = 0) -> np.ndarray:
    """Normalized LFBE frames [T, bins] of synth_stream, one per 10 ms hop."""
    f = lfbe(synth_stream(seconds, seed=seed), LfbeParams(num_mel_bins=bins))
    return Normalizer.fit(f)(f)


# --------------------------------------------------------------------------- helpers

def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    try:
        import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs
        tfv = tf.__version__
    except Exception:  # pragma: no cover
        tfv = None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1_5_15": load, "python": platform.python_version(),
            "numpy": numpy.__version__, "tensorflow": tfv}


def _build(bits: int, quick: bool, seed: int = 0):
    from bench import testmodels as qt  # lazy: heavy dependency, loaded only when this runs

    kw = dict(hidden_layers=2, hidden_units=32, context_frames=8, num_mel_bins=8) if quick else {}
    return qt.cached_qat_ffnn(bits, seed=seed, **kw)


def _model_name(quick: bool) -> str:
    return "ffnn-quick" if quick else "ffnn250k"


# --------------------------------------------------------------------------- (a) streaming evaluation

def _tflite_per_frame(model: bytes, xq: np.ndarray) -> tuple[np.ndarray, float]:
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    it = tf.lite.Interpreter(model_content=model, experimental_op_resolver_type=
                             tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]
    o = it.get_output_details()[0]["index"]
    out = np.empty((len(xq), int(np.prod(it.get_output_details()[0]["shape"]))), np.int8)
    t = time.perf_counter()
    for k, row in enumerate(xq):
        it.set_tensor(i, row[None])
        it.invoke()
        out[k] = it.get_tensor(o).reshape(-1)
    return out, time.perf_counter() - t


def stream_eval(model: bytes, frames: np.ndarray, context: int, stride: int, name: str, bits: int,
                tflite_frames: int, repeats: int = 3) -> dict:
    """Reference ``posteriors`` on the stacked windows (what training/evaluate.py feeds) and
    ``posteriors_from_frames`` on the frames, best of ``repeats``; tf.lite frame by frame."""
    ref = Reference.from_bytes(model)
    windows = stack_context(frames, context, stride)
    n = len(windows)

    def best(fn):
        fn()
        b = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            b = min(b, time.perf_counter() - t)
        return b

    t_win = best(lambda: ref.posteriors(windows))
    t_frames = best(lambda: ref.posteriors_from_frames(frames, context, stride))
    q = ref.quantize_input(windows)
    t_run = best(lambda: ref.run(q))
    m = min(tflite_frames, n)
    y_tfl, dt_tfl = _tflite_per_frame(model, q[:m])
    same = int((Reference.from_bytes(model, rounding="tflite").run(q[:m]) != y_tfl).sum())
    ref_rate = n / t_win
    tfl_rate = m / dt_tfl
    return {"benchmark": "host_stream_eval", "model": name, "weight_bits": bits, "board": "host", "kernel": "reference",
            "x_realtime": round(ref_rate * HOP_S, 1), "speedup_vs_tflite_per_frame": round(ref_rate / tfl_rate, 1),
            "inferences_per_s": round(ref_rate),
            "x_realtime_from_frames": round(n / t_frames * HOP_S, 1),
            "inferences_per_s_from_frames": round(n / t_frames),
            "inferences_per_s_run_only": round(n / t_run),
            "tflite_per_frame_inferences_per_s": round(tfl_rate), "tflite_x_realtime": round(tfl_rate * HOP_S, 1),
            "frames": n, "audio_seconds": round(n * HOP_S, 1), "tflite_frames_timed": m,
            "tflite_bytes_differing_vs_reference_tflite_mode": same,
            "note": "x_realtime: posteriors(windows) = quantize + integer model + dequantize + softmax, batched; "
                    "from_frames: posteriors_from_frames (each frame quantized once); run_only: int8 in/out. "
                    f"Best of {repeats}; 1 BLAS thread; feature extraction not included"}


def audio_eval(model: bytes, audio: np.ndarray, bins: int, context: int, stride: int, name: str, bits: int,
               threads: int = 2, repeats: int = 5) -> dict:
    """Audio -> posteriors, all of it timed: ``lfbe`` (FFT blocks on ``threads``), normalization (fitted
    once, outside the timing, as a model carries its own) and ``posteriors_from_frames`` on ``threads``.
    Wall time and process CPU time (all threads), best of ``repeats`` each; the outputs are checked to
    equal the single-thread path byte for byte."""
    p = LfbeParams(num_mel_bins=bins)
    ref = Reference.from_bytes(model)
    norm = Normalizer.fit(lfbe(audio, p))

    def evaluate(th):
        return ref.posteriors_from_frames(norm(lfbe(audio, p, threads=th)), context, stride, threads=th)

    same = evaluate(threads).tobytes() == evaluate(1).tobytes()
    wall, cpu, feat_cpu = [], [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        evaluate(threads)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        c = time.process_time()
        lfbe(audio, p, threads=threads)
        feat_cpu.append(time.process_time() - c)
    secs = len(audio) / p.sample_rate
    return {"benchmark": "host_audio_eval", "model": name, "weight_bits": bits, "board": "host", "kernel": "reference",
            "threads": threads, "audio_seconds": round(secs, 1), "frames": int(num_frames(len(audio), p)),
            "x_realtime_wall": round(secs / min(wall), 1), "x_realtime_per_cpu_second": round(secs / min(cpu), 1),
            "x_realtime_2_cores_from_cpu": round(2 * secs / min(cpu), 1),
            "features_share_of_cpu": round(min(feat_cpu) / min(cpu), 3),
            "threads_output_equals_single_thread": same,
            "note": "audio -> lfbe -> normalize -> posteriors_from_frames, all timed; x_realtime_per_cpu_second = "
                    "audio seconds per second of process CPU time (all threads summed, so one core's rate); "
                    "x_realtime_2_cores_from_cpu = twice that (what 2 fully used cores give); wall time is best of "
                    f"{repeats} on a shared, loaded machine (see load_avg). 1 BLAS thread in the model"}


def run_audio(quick: bool = False, run_dir: Path | None = None) -> list[dict]:
    """``host_audio_eval`` records (python -m bench.run --only host_audio)."""
    seconds = 20.0 if quick else 300.0
    audio = synth_stream(seconds)
    if run_dir is not None:
        model = (Path(run_dir) / "model.tflite").read_bytes()
        md = get_metadata(load_model(model)) or {}
        feat = md.get("features") or {}
        bins = int(feat.get("num_mel_bins", 64))
        context = int(feat.get("context_frames", int(np.prod(Reference.from_bytes(model).input_shape)) // bins))
        lb = md.get("layer_bits") or [0]
        return [audio_eval(model, audio, bins, context, int(feat.get("context_stride", 3)),
                           f"run:{Path(run_dir).name}", int(max(lb)))]
    recs = []
    for bits in (4, 8):
        _, src, _ = _build(bits, quick)
        model = convert(src, [bits] * (3 if quick else 5), "auto")
        recs.append(audio_eval(model, audio, 8 if quick else 64, 8 if quick else 24, 3, _model_name(quick), bits))
    return recs


# --------------------------------------------------------------------------- (b) model size

def _float_tflite(float_model) -> bytes:
    """The float32 baseline of the size records: the project's one float converter."""
    from training.qat import to_float_tflite  # lazy: heavy dependency (TensorFlow), loaded only when this runs

    return to_float_tflite(float_model)


def model_size(bits_list, quick: bool) -> list[dict]:
    recs = []
    float_bytes = None
    for bits in bits_list:
        q, src, _ = _build(bits, quick)
        if float_bytes is None:
            float_bytes = len(_float_tflite(_float_model(q, quick)))
        n_fc = len(_fc_layers(q))
        auto = convert(src, [bits] * n_fc, "auto")
        dense = convert(src, [bits] * n_fc, "dense") if bits < 8 else auto
        rec = {"benchmark": "model_size", "model": _model_name(quick), "weight_bits": bits, "board": None,
               "kernel": None, "model_bytes": len(auto), "float_model_bytes": float_bytes,
               "ratio_to_float": round(len(auto) / float_bytes, 4), "dense_model_bytes": len(dense),
               "dense_ratio_to_float": round(len(dense) / float_bytes, 4), "mode": "auto"}
        rec.update(size_split(auto))
        rec.update({f"dense_{k}": v for k, v in size_split(dense).items() if k != "arena_estimate_bytes"})
        recs.append(rec)
    return recs


def _fc_layers(qat_model):
    from training import qat  # lazy: heavy dependency, loaded only when this runs

    return qat.layer_bits(qat_model)


def _float_model(qat_model, quick: bool):
    """The float network of the same architecture (BN folded, as the converter would fold it)."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs
    from training.models import build_ffnn  # lazy: heavy dependency, loaded only when this runs
    from training.qat import fold_batchnorm  # lazy: heavy dependency, loaded only when this runs

    kw = dict(hidden_layers=2, hidden_units=32) if quick else {}
    fk = dict(context_frames=8, num_mel_bins=8) if quick else {}
    keras.utils.set_random_seed(0)
    return fold_batchnorm(build_ffnn(ModelConfig(dropout=0.0, **kw), FeatureConfig(**fk), 3))


# --------------------------------------------------------------------------- entry

def run(quick: bool = False, run_dir: Path | None = None) -> list[dict]:
    recs = []
    seconds = 20.0 if quick else 300.0
    if run_dir is not None:
        model = (Path(run_dir) / "model.tflite").read_bytes()
        ref = Reference.from_bytes(model)

        md = get_metadata(load_model(model)) or {}
        feat = md.get("features") or {}
        bins = int(feat.get("num_mel_bins", 64))
        context = int(feat.get("context_frames", int(np.prod(ref.input_shape)) // bins))
        stride = int(feat.get("context_stride", 3))
        lb = md.get("layer_bits") or [0]
        recs.append(stream_eval(model, stream_features(seconds, bins), context, stride, f"run:{Path(run_dir).name}",
                                int(max(lb)), 500 if quick else 3000))
    else:
        frames = stream_features(seconds, bins=8 if quick else 64)
        for bits in (4, 8):
            _, src, _ = _build(bits, quick)
            model = convert(src, [bits] * (3 if quick else 5), "auto")
            recs.append(stream_eval(model, frames, 8 if quick else 24, 3, _model_name(quick), bits,
                                    500 if quick else 3000))
    recs += model_size([8, 4] if quick else [8, 7, 6, 5, 4, 3, 2, 1], quick)
    return recs
