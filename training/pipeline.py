"""The Python side of the streaming pipeline, audio in, detections out, as the firmware computes it:
front end (``frontend_mirror``, bit-exact with the C front end, or ``features.lfbe``) -> int8 context
windows -> the integer reference -> posterior smoothing and the detection rule (``scoring``).
``tflm_port.deploy --check`` compares it with the firmware's detections.
"""
from __future__ import annotations

import numpy as np

from basics.classes import KEYWORD_CLASS
from tflm_port.firmware_runner import model_metadata
from tflm_port.reference import Reference
from training.features import Normalizer, lfbe, params_from_metadata, stack_context, window_span
from training.frontend_mirror import lfbe_mirror, quantize_frames
from training.runs import softmax
from training.scoring import detect, smooth


def python_detections(model: bytes, audio: np.ndarray, threshold: float, smoothing: int = 10,
                      refractory_s: float = 1.0, features: str = "mirror") -> dict:
    """Detections of the Python pipeline on float audio (16 kHz), the partial last hop dropped as on
    the device. features="mirror": training.frontend_mirror (bit-exact with the C front end);
    "reference": training.features.lfbe + Normalizer + Reference.quantize_input. Scoring is
    training.runs.tflite_scorer's (float32 dequantize, float64 softmax), then scoring.smooth
    and scoring.detect. Returns {"detections": [...], "inputs": int8 frames, "smoothed", "posterior"}."""
    md = model_metadata(model)
    p, _, _ = params_from_metadata(md["features"], "model")
    hop, win_len = p.hop_samples, p.window_samples
    f = md["features"]
    norm = f["normalization"]
    ctx, stride = int(f["context_frames"]), int(f["context_stride"])
    ref = Reference.from_bytes(model)
    s, zp = ref.input_quant
    x = np.asarray(audio, np.float32)[: hop * (len(audio) // hop)]
    if features == "mirror":
        q = quantize_frames(lfbe_mirror(x), norm["mean"], norm["std"], s, zp)
    elif features == "reference":
        q = ref.quantize_input(Normalizer(**norm)(lfbe(x, p)))
    else:
        raise ValueError(features)
    span = window_span(ctx, stride)
    win = stack_context(q, ctx, stride)
    post = np.zeros(0)
    if len(win):
        y = ref.dequantize_output(ref.run(win.reshape((len(win),) + tuple(ref.input_shape)))).reshape(len(win), -1)
        post = softmax(y.astype(np.float64))[:, KEYWORD_CLASS]
    end = (np.arange(len(win)) + span - 1) * hop + win_len
    times = end / p.sample_rate
    sm = smooth(post, smoothing)
    det_t = detect(sm, times, threshold, refractory_s)
    idx = np.searchsorted(times, det_t)
    label = (md.get("labels") or ["", "", "keyword"])[KEYWORD_CLASS]
    dets = [{"end_sample": int(end[i]), "time_s": float(times[i]), "keyword": label, "score": float(sm[i])} for i in idx]
    return {"detections": dets, "inputs": q, "smoothed": sm, "posterior": post}
