"""Deploy a trained run on an emulated board: model + audio in, detections out.

    python -m tflm_port.deploy RUN_DIR --board mps2-an386 --audio file.wav [--threshold T] [--check]
    make deploy RUN=runs/x BOARD=mps2-an386 AUDIO=file.wav [THRESHOLD=0.6]

RUN_DIR must be a quantized (QAT) run: it holds ``model.tflite`` with the "subkws" metadata
(labels, feature normalization). The firmware image ``firmware/build/<board>/kws_stream.elf`` is
built (make), and runs under QEMU (``-icount shift=0``: instruction counts are exact) with the
model and the audio read from the host by semihosting; it prints one line per detection (time,
keyword, smoothed score) and per-hop instruction counts. The audio must be WAV, 16 kHz, mono,
16-bit PCM: anything else is refused with one line before the firmware runs.

The firmware gets the run's model re-stored for the board's optimized kernels
(``tflm_port.convert.retarget``: SUB8 layout 2 on the Cortex-M4/M7 DSP kernels, layout 6 (rows_per_byte, 1/2/4 bits),
layout 3 (3 bits) or INT8 on the M55 Helium kernels; same integer weights, scales and biases, so the same
outputs); ``model.tflite``
in the run stays as it is for the Python pipeline (tflm_port.reference runs every layout).
``--no-retarget`` runs model.tflite unchanged.

``--check`` also runs the Python pipeline on the same audio (training/frontend_mirror.py features,
tflm_port.reference, training.evaluate's smoothing and detection rule) and says whether the
detections are identical.

Defaults: threshold = the run's threshold at 1 false accept/hour (report.json), smoothing and
refractory period from the run's config (eval.smoothing_frames, eval.refractory_s).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from basics.errors import UserError, cli_main, read_json

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = ("mps2-an386", "mps2-an500", "mps3-an547")
HOP = 160
SAMPLE_RATE = 16000
KEYWORD_CLASS = 2
DET_RE = re.compile(r"^DET end_sample=(\d+) time_s=([\d.]+) keyword=(\S*) score=([\d.]+)$", re.M)
STREAM_RE = re.compile(r"^STREAM (.*)$", re.M)
ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]


@dataclass
class StreamResult:
    detections: list[dict] = field(default_factory=list)  # {"end_sample", "time_s", "keyword", "score"}
    summary: dict = field(default_factory=dict)  # the STREAM line's fields (ints)
    text: str = ""
    returncode: int = 0


# --------------------------------------------------------------------------- checks

def check_wav(path: str | Path) -> None:
    """UserError (one line) unless ``path`` is a readable WAV, 16 kHz, mono, 16-bit PCM."""
    import soundfile as sf

    from basics.audio import load_audio

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such audio file")
    try:
        info = sf.info(os.fsencode(path))  # bytes: the name need not be UTF-8
    except Exception:
        load_audio(path)  # raises the project's one-line UserError for corrupt / unreadable files
        raise UserError(f"{path}: not a readable audio file") from None
    problems = []
    if info.format != "WAV":
        problems.append(f"format {info.format}")
    if info.subtype != "PCM_16":
        problems.append(f"sample format {info.subtype}")
    if info.channels != 1:
        problems.append(f"{info.channels} channels")
    if info.samplerate != SAMPLE_RATE:
        problems.append(f"{info.samplerate} Hz")
    if problems:
        raise UserError(f"{path}: the firmware reads WAV, 16 kHz, mono, 16-bit PCM; this file has "
                        f"{', '.join(problems)} (convert it, e.g. sox in.wav -r 16000 -c 1 -b 16 out.wav)")
    if info.frames < 400:
        raise UserError(f"{path}: audio shorter than one 25 ms frame")


def model_metadata(model: bytes, name: str = "model") -> dict:
    """The "subkws" metadata, checked for what the firmware's front end needs (UserError otherwise)."""
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model

    md = get_metadata(load_model(model, name)) or {}
    feats = md.get("features") or {}
    feats = feats if isinstance(feats, dict) else {}
    norm = feats.get("normalization") or {}
    norm = norm if isinstance(norm, dict) else {}

    def numbers(v):
        return isinstance(v, list) and len(v) == 64 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)

    if not numbers(norm.get("mean")) or not numbers(norm.get("std")) or min(norm["std"]) <= 0:
        raise UserError(f"{name}: no features.normalization (64 finite means, 64 positive stds) in the subkws "
                        "metadata; export the model with training.qat_train (or tflm_port.convert with that metadata)")
    if feats.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE or feats.get("num_mel_bins", 64) != 64:
        raise UserError(f"{name}: the firmware front end computes 64 mel bins at 16 kHz; the model wants other features")
    labels = md.get("labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) > KEYWORD_CLASS
                                   and all(isinstance(x, str) for x in labels)):
        raise UserError(f"{name}: metadata labels must be a list of at least {KEYWORD_CLASS + 1} strings")
    ref = Reference.from_bytes(model, name)
    if ref.input_dtype != np.int8 or ref.output_dtype != np.int8:
        raise UserError(f"{name}: the streaming firmware needs int8 model input and output")
    ctx, stride = feats.get("context_frames"), feats.get("context_stride")
    if not (type(ctx) is int and type(stride) is int and 1 <= ctx <= 1000 and 1 <= stride <= 100
            and ctx * 64 == int(np.prod(ref.input_shape))):
        raise UserError(f"{name}: features.context_frames / context_stride ({ctx!r}, {stride!r}) do not fit the "
                        f"model input {list(ref.input_shape)} (context_frames x 64 bins)")
    return md


def decimal_arg(v: float) -> str:
    """v as the firmware parses it (plain decimal, 9 places); float() of it is what Python then uses."""
    s = f"{v:.9f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def threshold_arg(t: float) -> str:
    if not 0.0 <= t <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {t}")
    return decimal_arg(t)


# --------------------------------------------------------------------------- firmware

def build(board: str, quiet: bool = True) -> Path:
    """make the kws_stream image for board ('host' = the ASan/UBSan Linux build); returns its path."""
    if board != "host" and board not in BOARDS:
        raise UserError(f"unknown board {board!r}; choose from {', '.join(BOARDS)}")
    cc = "gcc" if board == "host" else "arm-none-eabi-gcc"
    for tool in (cc, "make") + (() if board == "host" else ("qemu-system-arm",)):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found: install gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm "
                            "(make setup)")
    r = subprocess.run(["make", "-C", str(FW), "-j2", f"stream-{board}"], capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stdout + r.stderr).strip().splitlines()[-5:]
        raise UserError(f"firmware build for {board} failed: {' | '.join(tail)}")
    return FW / "build" / board / ("kws_stream" if board == "host" else "kws_stream.elf")


def _safe(paths: dict[str, Path], tmp: Path) -> dict[str, str]:
    """Semihosting splits its command line on spaces (and QEMU's option parser on commas): link
    awkward paths into tmp under plain names."""
    out = {}
    for key, p in paths.items():
        s = str(Path(p).resolve())
        if re.search(r"[\s,]", s):
            link = tmp / f"{key}{Path(p).suffix}"
            if not link.exists():
                os.symlink(s, link)
            s = str(link)
            if re.search(r"[\s,]", s):
                raise UserError(f"{p}: paths with spaces or commas are not supported (temporary folder {tmp})")
        out[key] = s
    return out


def run_stream(board: str, model_path: str | Path, wav_path: str | Path, threshold: float, smoothing: int = 10,
               refractory_s: float = 1.0, frames_out: Path | None = None, decisions_out: Path | None = None,
               quiet: bool = False, icount: bool = True, timeout: float = 600, build_first: bool = True) -> StreamResult:
    """Run kws_stream on board (QEMU) or 'host'; parse its detections and summary."""
    exe = build(board) if build_first else FW / "build" / board / ("kws_stream" if board == "host" else "kws_stream.elf")
    with tempfile.TemporaryDirectory(prefix="kws_stream_") as td:
        files = {"model": Path(model_path), "audio": Path(wav_path)}
        if frames_out:
            files["frames"] = Path(frames_out)
        if decisions_out:
            files["decisions"] = Path(decisions_out)
        for k in ("frames", "decisions"):
            if k in files:
                files[k].touch()
        p = _safe(files, Path(td))
        args = [p["model"], p["audio"], "-t", threshold_arg(threshold), "-s", str(int(smoothing)),
                "-r", decimal_arg(refractory_s)]
        if frames_out:
            args += ["-f", p["frames"]]
        if decisions_out:
            args += ["-p", p["decisions"]]
        if quiet:
            args.append("-q")
        if board == "host":
            cmd = [str(exe)] + args
            env = dict(os.environ, ASAN_OPTIONS="exitcode=99:detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1:exitcode=98")
        else:
            cmd = (["qemu-system-arm", "-M", board, "-nographic"] + (ICOUNT if icount else []) +
                   ["-semihosting-config", "enable=on,target=native," + ",".join("arg=" + a for a in ["kws_stream"] + args),
                    "-kernel", str(exe)])
            env = None
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise UserError(f"firmware on {board} did not finish within {timeout:.0f} s") from None
    text = r.stdout + r.stderr
    res = StreamResult(text=text, returncode=r.returncode)
    for m in DET_RE.finditer(text):
        res.detections.append({"end_sample": int(m.group(1)), "time_s": float(m.group(2)), "keyword": m.group(3),
                               "score": float(m.group(4))})
    m = STREAM_RE.search(text)
    if m:
        res.summary = {k: int(v) for k, v in (kv.split("=", 1) for kv in m.group(1).split())}
    return res


# --------------------------------------------------------------------------- the Python pipeline

def python_detections(model: bytes, audio: np.ndarray, threshold: float, smoothing: int = 10,
                      refractory_s: float = 1.0, features: str = "mirror") -> dict:
    """Detections of the Python pipeline on float audio (16 kHz), the partial last hop dropped as on
    the device. features="mirror": training.frontend_mirror (bit-exact with the C front end);
    "reference": training.features.lfbe + Normalizer + Reference.quantize_input. Scoring is
    training.evaluate.tflite_scorer's (float32 dequantize, float64 softmax), then evaluate.smooth
    and evaluate.detect. Returns {"detections": [...], "inputs": int8 frames, "smoothed", "posterior"}."""
    from training.evaluate import detect, smooth, softmax
    from training.features import Normalizer, lfbe, stack_context, window_span
    from training.frontend_mirror import lfbe_mirror, quantize_frames
    from tflm_port.reference import Reference

    md = model_metadata(model)
    f = md["features"]
    norm = f["normalization"]
    ctx, stride = int(f["context_frames"]), int(f["context_stride"])
    ref = Reference.from_bytes(model)
    s, zp = ref.input_quant
    x = np.asarray(audio, np.float32)[: HOP * (len(audio) // HOP)]
    if features == "mirror":
        q = quantize_frames(lfbe_mirror(x), norm["mean"], norm["std"], s, zp)
    elif features == "reference":
        q = ref.quantize_input(Normalizer(**norm)(lfbe(x)))
    else:
        raise ValueError(features)
    span = window_span(ctx, stride)
    win = stack_context(q, ctx, stride)
    post = np.zeros(0)
    if len(win):
        y = ref.dequantize_output(ref.run(win.reshape((len(win),) + tuple(ref.input_shape)))).reshape(len(win), -1)
        post = softmax(y.astype(np.float64))[:, KEYWORD_CLASS]
    end = (np.arange(len(win)) + span - 1) * HOP + 400
    times = end / SAMPLE_RATE
    sm = smooth(post, smoothing)
    det_t = detect(sm, times, threshold, refractory_s)
    idx = np.searchsorted(times, det_t)
    label = (md.get("labels") or ["", "", "keyword"])[KEYWORD_CLASS]
    dets = [{"end_sample": int(end[i]), "time_s": float(times[i]), "keyword": label, "score": float(sm[i])} for i in idx]
    return {"detections": dets, "inputs": q, "smoothed": sm, "posterior": post}


def same_detections(a: list[dict], b: list[dict], score_tol: float = 5e-7) -> bool:
    """Same end samples and keywords, scores equal to the printed precision (6 decimals)."""
    return len(a) == len(b) and all(x["end_sample"] == y["end_sample"] and x["keyword"] == y["keyword"]
                                    and abs(x["score"] - y["score"]) <= score_tol for x, y in zip(a, b))


# --------------------------------------------------------------------------- CLI

def load_shipped(path: Path) -> tuple[Path, dict, dict]:
    """A shipped model: ``models/<name>.tflite`` (manifest ``<name>.json`` beside it) or the manifest
    itself, as (model path, config-like dict with the detection settings, report-like dict with the
    1-FA/h threshold)."""
    path = Path(path)
    man = path if path.suffix == ".json" else path.with_suffix(".json")
    m = {}
    if man.is_file():
        try:
            m = json.loads(man.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{man}: not a readable model manifest ({e})") from None
        if not isinstance(m, dict) or not isinstance(m.get("model"), str):
            raise UserError(f"{man}: a model manifest needs 'model' (the .tflite file name beside it)")
    model = man.parent / m["model"] if path.suffix == ".json" else path
    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    ev = {k: m[k] for k in ("smoothing_frames", "refractory_s") if k in m}
    th = (m.get("thresholds") or {}).get("fa_per_hour_1")
    return model, {"eval": ev}, ({"stream": {"threshold_at_1fah": th}} if th is not None else {})


def load_run(run_dir: Path) -> tuple[Path, dict, dict]:
    """(model.tflite path, config dict, report dict or {}) of a quantized run or a shipped model
    (``.tflite`` with its manifest, or the manifest); UserError otherwise."""
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.suffix in (".tflite", ".json"):
        return load_shipped(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    model = run_dir / "model.tflite"
    cfg = read_json(run_dir / "config.json", "run config") if (run_dir / "config.json").is_file() else None
    if cfg is not None and not isinstance(cfg, dict):
        raise UserError(f"{run_dir / 'config.json'}: corrupt run config (not a JSON object)")
    if not model.is_file():
        if cfg is not None:
            raise UserError(f"{run_dir}: a float-only run (no model.tflite): deploy needs a quantized run; train one with "
                            f"QAT, e.g. python -m training.train --weight-bits 4 --float-run {run_dir}")
        raise UserError(f"{run_dir}: not a run directory (no model.tflite, no config.json)")
    rep = run_dir / "report.json"
    report = read_json(rep, "run report") if rep.is_file() else {}
    if not isinstance(report, dict):
        raise UserError(f"{rep}: corrupt run report (not a JSON object)")
    return model, cfg or {}, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tflm_port.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a quantized run directory (holds model.tflite), or a shipped model "
                    "(models/<name>.tflite with its manifest <name>.json beside it)")
    ap.add_argument("--board", required=True, choices=BOARDS)
    ap.add_argument("--audio", required=True, type=Path, help="WAV, 16 kHz, mono, 16-bit PCM")
    ap.add_argument("--threshold", type=float, help="detection threshold (default: the run's at 1 FA/h)")
    ap.add_argument("--check", action="store_true", help="also run the Python pipeline and compare detections")
    ap.add_argument("--no-retarget", action="store_true",
                    help="run model.tflite as it is (default: re-store it for the board's optimized kernels)")
    a = ap.parse_args(argv)
    model_path, cfg, report = load_run(a.run_dir)
    check_wav(a.audio)
    md = model_metadata(model_path.read_bytes(), str(model_path))
    th = a.threshold
    if th is None:
        stream = report.get("stream")
        th = stream.get("threshold_at_1fah") if isinstance(stream, dict) else None
        if th is None:
            raise UserError(f"{a.run_dir}: no threshold in its report.json or manifest; give --threshold")
        if isinstance(th, bool) or not isinstance(th, (int, float)):
            raise UserError(f"{a.run_dir}: its stream.threshold_at_1fah / thresholds.fa_per_hour_1 is not a number ({th!r})")
    th = float(threshold_arg(float(th)))
    from training.config import Config

    ev = Config.from_dict(cfg, str(a.run_dir / "config.json")).eval if cfg else Config().eval
    smoothing, refractory = int(ev.smoothing_frames), float(decimal_arg(float(ev.refractory_s)))
    label = (md.get("labels") or ["", "", "keyword"])[KEYWORD_CLASS]
    print(f"deploy: {model_path} ({model_path.stat().st_size} bytes, keyword {label!r}) on {a.board}, "
          f"audio {a.audio}, threshold {th:g}, smoothing {smoothing} frames, refractory {refractory:g} s")
    with tempfile.TemporaryDirectory(prefix="kws_deploy_") as td:
        fw_model = model_path
        if not a.no_retarget:
            from tflm_port.convert import retarget
            from tflm_port.tflite_io import get_metadata, load_model

            data = retarget(model_path.read_bytes(), a.board, str(model_path))
            fw_model = Path(td) / "model.tflite"
            fw_model.write_bytes(data)
            st = (get_metadata(load_model(data)) or {}).get("layer_storage", [])
            print(f"firmware model: re-stored for {a.board} ({', '.join(st)}; {len(data)} bytes)")
        res = run_stream(a.board, fw_model, a.audio, th, smoothing, refractory)
    if res.returncode != 0 or not res.summary:
        lines = [ln for ln in res.text.strip().splitlines() if ln.strip()]
        raise UserError(f"firmware on {a.board} failed (exit {res.returncode}): {lines[-1] if lines else 'no output'}")
    s = res.summary
    print(f"{'time_s':>9}  {'keyword':<12} score")
    for d in res.detections:
        print(f"{d['time_s']:9.3f}  {d['keyword']:<12} {d['score']:.6f}")
    hops = max(1, s["hops"])
    print(f"{len(res.detections)} detection(s) in {s['hops'] * HOP / SAMPLE_RATE:.2f} s of audio; per 10 ms hop: "
          f"front end {s['fe_instr'] / hops:,.0f} instructions, whole loop {s['loop_instr'] / hops:,.0f} "
          f"(max {s['loop_max']:,}); arena {s['arena']} B, stack {s['stack']} B (QEMU -icount instruction counts)")
    if a.check:
        from basics.audio import load_audio

        py = python_detections(model_path.read_bytes(), load_audio(a.audio), th, smoothing, refractory)
        same = same_detections(res.detections, py["detections"])
        print(f"python pipeline: {len(py['detections'])} detection(s), "
              f"{'identical to the firmware' if same else 'DIFFERENT from the firmware'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    cli_main(main)()
