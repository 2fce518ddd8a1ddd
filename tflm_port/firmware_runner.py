"""The firmware runner: build the kws_stream image for a board, run it under QEMU (or the host
ASan/UBSan build) on a model and a WAV file, and parse its detections and instruction counts; and
the checks the firmware needs before it runs (the WAV format, the model's metadata).

Depends on the basics and tflm_port's model reader only; ``tflm_port.deploy`` (the CLI) and
``tflm_port.flash`` build on it, ``training.pipeline`` is the Python side it is compared with.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from basics.audio import SAMPLE_RATE, load_audio
from basics.classes import KEYWORD_CLASS
from basics.errors import UserError, read_json
from tflm_port import board_table
from tflm_port.reference import Reference
from tflm_port.tflite_io import get_metadata, load_model

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BOARDS = tuple(board_table.cortex_m())  # kws_stream runs on the Cortex-M boards (firmware/stream.mk)
DET_RE = re.compile(r"^DET end_sample=(\d+) time_s=([\d.]+) keyword=(\S*) score=([\d.]+)$", re.M)
STREAM_RE = re.compile(r"^STREAM (.*)$", re.M)
RUNNER_RE = re.compile(r"KWS status=\S*(?: \w+=\S*)*")   # kws_runner's one status line (firmware/app/kws_runner.c)
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
            cmd = ([*board_table.BOARDS[board].qemu, "-nographic"] + (ICOUNT if icount else []) +
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


def parse_status(text: str) -> dict | None:
    """kws_runner's status line ("KWS status=0 inferences=20 instr_first=... kernel=dsp opt_ops=3") as a dict,
    numbers as ints and the rest (``kernel``) as strings; None when the output has no such line."""
    m = RUNNER_RE.search(text)
    if not m:
        return None
    return {k: int(v) if re.fullmatch(r"-?\d+", v) else v
            for k, v in (kv.split("=", 1) for kv in m.group(0)[len("KWS "):].split())}


def run_runner(board: str, image: str | Path, args: list, timeout: float = 600) -> tuple[dict | None, str]:
    """A kws_runner image (a path under firmware/build/, e.g. "mps2-an386/kws_runner.elf") on ``board`` under
    QEMU ``-icount shift=0`` with semihosting arguments ``args`` (model, inputs, outputs, ...): its parsed
    status line (None when it printed none) and its whole output."""
    semi = "enable=on,target=native," + ",".join(f"arg={a}" for a in ["kws_runner", *args])
    cmd = [*board_table.BOARDS[board].qemu, *ICOUNT, "-nographic", "-semihosting-config", semi,
           "-kernel", str(FW / "build" / image)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return parse_status(r.stdout + r.stderr), r.stdout + r.stderr


def same_detections(a: list[dict], b: list[dict], score_tol: float = 5e-7) -> bool:
    """Same end samples and keywords, scores equal to the printed precision (6 decimals)."""
    return len(a) == len(b) and all(x["end_sample"] == y["end_sample"] and x["keyword"] == y["keyword"]
                                    and abs(x["score"] - y["score"]) <= score_tol for x, y in zip(a, b))


# --------------------------------------------------------------------------- models to deploy

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
    ths = m.get("thresholds") or {}
    if not isinstance(ths, dict):
        raise UserError(f"{man}: 'thresholds' must be an object (fa_per_hour_1, fa_per_hour_0p5)")
    th = ths.get("fa_per_hour_1")
    return model, {"eval": ev}, ({"stream": {"threshold_at_1fah": th}} if th is not None else {})


def deployable_model(run_dir: Path) -> tuple[Path, dict, dict]:
    """(model.tflite path, config dict, report dict or {}) of a quantized run or a shipped model
    (``.tflite`` with its manifest, or the manifest); UserError otherwise. Reads the files as JSON
    only (the firmware side does not load training's Config; ``training.runs.load_run`` opens a run
    for scoring)."""
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
                            f"QAT, e.g. python training/train.py --weight-bits 4 --float-run {run_dir}")
        raise UserError(f"{run_dir}: not a run directory (no model.tflite, no config.json)")
    rep = run_dir / "report.json"
    report = read_json(rep, "run report") if rep.is_file() else {}
    if not isinstance(report, dict):
        raise UserError(f"{rep}: corrupt run report (not a JSON object)")
    return model, cfg or {}, report
