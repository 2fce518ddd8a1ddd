"""Fuzzing records (issue 15): the C harness under libFuzzer, and the Python readers under
hypothesis. Each run ends in one ``benchmark: "fuzz"`` record per harness.

    .venv/bin/python -m bench.fuzz [--seconds 600] [--cases 100000] [--only c python]

* ``c``: ``firmware/fuzz/fuzz_model.c`` (model init + front-end config + invoke; clang,
  -fsanitize=fuzzer,address,undefined,float-cast-overflow) for ``--seconds``, from the committed seeds
  in a fresh corpus; then the corpus replayed through a coverage build (llvm-cov): line coverage
  per source file. Record: executions, crashes (crash/leak/timeout/oom files or a non-zero exit),
  edges (libFuzzer's final "cov:"), seconds, per-file line coverage.
* ``python``: ``--cases`` hypothesis examples per reader (``TARGETS``: tflite_io, inspect, convert,
  export, reference, deploy metadata, audio loader), each a committed seed model (or a small WAV)
  with random truncation and byte overwrites; ``metadata``: arbitrary JSON under the model metadata's
  keys; ``run_files``: one JSON file of a run directory or shipped model (config, normalizer, report,
  manifest, stream labels) with arbitrary JSON at its readers' keys, or damaged bytes. The property:
  every input ends in a result or one ``UserError``; anything else is a crash (its type and message are recorded, the run goes on with
  the next reader).

bench/run.py runs this module as ``fuzz`` (not in --quick); SUBKWS_FUZZ_SECONDS and
SUBKWS_FUZZ_CASES set the lengths there.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
import warnings

import numpy as np

from basics.atomic import atomic_write_text
from basics.audio import load_audio
from basics.errors import UserError
from data_scripts.common import wav_bytes
from tflm_port import tflite_io as io_
from tflm_port.convert import retarget
from tflm_port.export import export
from tflm_port.firmware_runner import deployable_model, model_metadata
from training.config import Config
from training.evaluate import default_threshold, load_stream_labels
from training.scoring import load_detector
from tflm_port.model_inspect import describe, format_text
from tflm_port.reference import Reference
from tflm_port.tflite_io import get_metadata, load_model, save_model, set_metadata

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
SEEDS = FW / "fuzz" / "seeds"


# --------------------------------------------------------------------------- Python readers

def seed_models() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SEEDS.glob("*.tflite"))]


def seed_wav() -> bytes:
    return wav_bytes((np.sin(np.arange(4000) * 0.05) * 0.3).astype(np.float32))


def mutate(seed: bytes, cut: int, edits: list[tuple[int, int]]) -> bytes:
    """seed truncated to ``cut`` bytes (when cut < len), then byte i set to v for each (i, v) edit."""
    b = bytearray(seed[:cut] if 0 <= cut < len(seed) else seed)
    for i, v in edits:
        if b:
            b[i % len(b)] = v & 0xFF
    return bytes(b)


def _t_tflite_io(data: bytes) -> None:
    m = io_.load_model(data, "fuzz.tflite")
    io_.get_metadata(m)
    io_.metadata_entries(m)
    for t in m.subgraphs[0].tensors:
        io_.tensor_data(m, t)
        io_.quant_params(t)
    for op in m.subgraphs[0].operators:
        io_.op_name(m, op)
        io_.custom_options(op)
    io_.save_model(m)


def _t_inspect(data: bytes) -> None:
    d = describe(data, "fuzz.tflite")
    json.dumps(d)
    format_text(d)


def _t_convert(data: bytes) -> None:
    retarget(data, "mps2-an386", "fuzz.tflite")


def _t_export(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as td:
        export(data, "fuzz", Path(td) / "out", vectors=3, model_name="fuzz.tflite")


def _t_reference(data: bytes) -> None:
    ref = Reference.from_bytes(data, "fuzz.tflite")
    x = np.zeros((2,) + ref.input_shape, np.float32)
    ref.posteriors(x)


def _t_deploy(data: bytes) -> None:
    model_metadata(data, "fuzz.tflite")


def _t_audio(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "fuzz.wav"
        p.write_bytes(data)
        load_audio(p)


def _t_metadata(data: bytes) -> None:
    """A valid model whose "subkws" metadata is arbitrary JSON: every reader of the metadata."""
    describe(data, "fuzz.tflite")
    for fn in (lambda: retarget(data, "mps3-an547", "fuzz.tflite"), lambda: model_metadata(data, "fuzz.tflite")):
        try:
            fn()
        except UserError:
            pass


RUN_FILES = {  # the JSON files of a run directory or a shipped model, and the keys their readers use
    "config.json": ["train", "eval", "features", "quant", "model", "data", "smoothing_frames", "refractory_s",
                    "num_mel_bins", "context_frames", "sample_rate", "epochs", "thresholds"],
    "normalizer.json": ["mean", "std"],
    "report.json": ["stream", "threshold_at_1fah", "frr_at_1fah"],
    "m.json": ["model", "name", "smoothing_frames", "refractory_s", "thresholds", "fa_per_hour_1"],
    "labels.json": ["keywords", "start_s", "end_s", "duration_s"],
}


def run_files_base() -> dict:
    """Valid contents of each RUN_FILES file (a run directory holding the mlp seed model)."""
    bins = Config().features.num_mel_bins
    return {"config.json": Config().to_dict(), "normalizer.json": {"mean": [0.0] * bins, "std": [1.0] * bins},
            "report.json": {"stream": {"threshold_at_1fah": 0.5}},
            "m.json": {"model": "model.tflite", "smoothing_frames": 5, "refractory_s": 1.0,
                       "thresholds": {"fa_per_hour_1": 0.5}},
            "labels.json": {"keywords": [{"start_s": 0.1, "end_s": 0.5}], "duration_s": 1.0}}


def _t_run_files(case: tuple[str, bytes]) -> None:
    """One JSON file of a run directory replaced by ``case`` = (file name, its bytes); every reader
    of it: evaluate's loader and default threshold, its label reader, deploy's run reader."""
    name, text = case
    base = run_files_base()
    with tempfile.TemporaryDirectory() as td:
        run = Path(td) / "run"
        run.mkdir()
        shutil.copyfile(SEEDS / "mlp_int8_frontend.tflite", run / "model.tflite")
        for f, v in base.items():
            (run / f).write_text(json.dumps(v))
        (run / name).write_bytes(text)
        for path in (run, run / "m.json"):
            det = load_detector(path)
            default_threshold(det, path)
            _, cfg, report = deployable_model(path)
            if cfg:
                Config.from_dict(cfg, str(path))
        load_stream_labels(run / "labels.json")


def run_files_strategy():
    """(file name, bytes): a valid file with values at its readers' keys replaced by arbitrary JSON,
    or its text truncated and overwritten."""
    from hypothesis import strategies as st  # lazy: heavy dependency, loaded only when this runs

    base = run_files_base()
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(), st.text(max_size=8))
    anything = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=8),
                                                      st.dictionaries(st.text(max_size=6), c, max_size=4)),
                            max_leaves=30)

    def edit(name, changes):
        d = json.loads(json.dumps(base[name]))
        for path, v in changes:
            node = d
            for k in path[:-1]:
                nxt = node.get(k) if isinstance(node, dict) else None
                if not isinstance(nxt, dict):
                    nxt = {}
                    if isinstance(node, dict):
                        node[k] = nxt
                node = nxt
            if isinstance(node, dict):
                node[path[-1]] = v
        return name, json.dumps(d).encode()

    def damage(name, cut, edits):
        return name, mutate(json.dumps(base[name]).encode(), cut, edits)

    names = st.sampled_from(sorted(RUN_FILES))
    edited = names.flatmap(lambda n: st.builds(edit, st.just(n), st.lists(
        st.tuples(st.lists(st.sampled_from(RUN_FILES[n]), min_size=1, max_size=3), anything), min_size=1, max_size=3)))
    damaged = st.builds(damage, names, st.integers(-1, 400), st.lists(st.tuples(st.integers(0, 400),
                                                                                st.integers(0, 255)), max_size=4))
    return st.one_of(edited, edited, damaged)


def with_metadata(seed: bytes, value) -> bytes:
    m = load_model(seed)
    set_metadata(m, "subkws", value)
    return save_model(m)


TARGETS = {"tflite_io": _t_tflite_io, "inspect": _t_inspect, "convert": _t_convert, "export": _t_export,
           "reference": _t_reference, "deploy": _t_deploy, "audio": _t_audio,
           "metadata": _t_metadata, "run_files": _t_run_files}


def check(target: str, data: bytes) -> None:
    """The property: a result or one UserError (with a one-line message); anything else propagates."""
    try:
        TARGETS[target](data)
    except UserError as e:
        assert "\n" not in str(e), f"multi-line UserError: {e!r}"


def strategy(target: str):
    """hypothesis strategy of (seed, cut, edits) -> input bytes for ``target``."""
    from hypothesis import strategies as st  # lazy: heavy dependency, loaded only when this runs

    if target == "run_files":
        return run_files_strategy()
    seeds = [seed_wav()] if target == "audio" else seed_models()
    if target == "metadata":  # arbitrary JSON under the keys the tools read, inside a valid model

        base = [json.loads(json.dumps(get_metadata(load_model(s)) or {})) for s in seeds]
        leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                         st.text(max_size=8))
        anything = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=70),
                                                          st.dictionaries(st.text(max_size=6), c, max_size=4)),
                                max_leaves=80)
        keys = st.sampled_from(["labels", "features", "layer_bits", "layer_storage", "mode", "layout", "target",
                                "format_version", "normalization", "mean", "std", "sample_rate", "context_frames"])

        def edit(i, changes):
            md = json.loads(json.dumps(base[i]))
            for path, v in changes:
                node = md
                for k in path[:-1]:
                    node = node.setdefault(k, {}) if isinstance(node, dict) else {}
                if isinstance(node, dict):
                    node[path[-1]] = v
            return with_metadata(seeds[i], md)

        return st.builds(edit, st.integers(0, len(seeds) - 1),
                         st.lists(st.tuples(st.lists(keys, min_size=1, max_size=3), anything), max_size=3))
    cut = st.one_of(st.just(-1), st.just(-1), st.just(-1), st.integers(0, 12000))  # mostly whole files
    offset = st.one_of(st.integers(0, 64), st.integers(0, 1 << 16))  # headers and tables, anywhere
    byte = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
    return st.builds(mutate, st.sampled_from(seeds), cut, st.lists(st.tuples(offset, byte), min_size=0, max_size=4))


def run_python(cases: int, targets=None, on_record=None) -> list[dict]:
    """``cases`` hypothesis examples per target; ``on_record(records so far)`` after each target (so a
    long run that is stopped keeps the targets it finished)."""
    from hypothesis import HealthCheck, given, settings  # lazy: heavy dependency, loaded only when this runs
    from hypothesis import strategies as st  # noqa: F401  (lazy: optional test dependency)

    warnings.filterwarnings("ignore")
    recs = []
    for target in targets or TARGETS:
        seen = {"n": 0}

        @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False)
        @given(strategy(target))
        def prop(data):
            seen["n"] += 1
            check(target, data)

        t0 = time.time()
        crash = None
        try:
            prop()
        except Exception as e:  # the minimal failing example hypothesis found
            crash = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        recs.append({"benchmark": "fuzz", "model": f"python:{target}", "harness": f"python:{target}",
                     "tool": "hypothesis", "executions": seen["n"], "crashes": int(crash is not None),
                     "first_crash": crash, "seconds": round(time.time() - t0, 1), "edges": None,
                     "line_coverage": None, "seeds": 1 if target in ("audio", "run_files") else len(seed_models())})
        print(json.dumps(recs[-1]), file=sys.stderr)
        if on_record is not None:
            on_record(recs)
    return recs


# --------------------------------------------------------------------------- C harness

def _make(*targets, build: Path) -> None:
    r = subprocess.run(["make", "-s", "-C", str(FW), f"BUILD={build}", *targets], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"make {' '.join(targets)} failed:\n{r.stderr[-2000:]}")


def run_c(seconds: int, build: Path = FW / "build") -> dict:
    for tool in ("clang", "llvm-profdata", "llvm-cov"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not installed (make setup)")
    build = Path(build).resolve()
    fz = build / "fuzz"
    _make(f"{build}/fuzz/fuzz_model", f"{build}/fuzz/fuzz_model_cov", build=build)
    corpus = fz / "bench-corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for p in fz.glob("bench-crash-*"):
        p.unlink()
    t0 = time.time()
    r = subprocess.run([str(fz / "fuzz_model"), f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
                        "-max_len=262144", "-print_final_stats=1", f"-artifact_prefix={fz}/bench-crash-",
                        str(corpus), str(SEEDS)], capture_output=True, text=True, cwd=fz)
    wall = time.time() - t0
    log = r.stderr
    (fz / "bench-fuzz.log").write_text(log[-200000:])
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    edges = re.findall(r"cov: (\d+)", log)
    crashes = len(list(fz.glob("bench-crash-*")))
    if r.returncode != 0 and crashes == 0:
        crashes = 1
    rec = {"benchmark": "fuzz", "model": "c:fuzz_model", "harness": "firmware/fuzz/fuzz_model.c", "tool": "libFuzzer",
           "sanitizers": "address,undefined,float-cast-overflow",
           "executions": int(execs.group(1)) if execs else None, "crashes": crashes,
           "seconds": round(wall, 1), "edges": int(edges[-1]) if edges else None,
           "corpus_files": len(list(corpus.iterdir())), "seeds": len(list(SEEDS.glob("*.tflite")))}
    # line coverage: replay the corpus through the coverage build
    prof = fz / "bench-cov.profraw"
    subprocess.run([str(fz / "fuzz_model_cov"), "-runs=0", str(corpus), str(SEEDS)], capture_output=True,
                   cwd=fz, env={**os.environ, "LLVM_PROFILE_FILE": str(prof)})
    subprocess.run(["llvm-profdata", "merge", "-sparse", str(prof), "-o", str(fz / "bench-cov.profdata")],
                   check=True, capture_output=True)
    cov = subprocess.run(["llvm-cov", "export", "-summary-only", f"-instr-profile={fz / 'bench-cov.profdata'}",
                          str(fz / "fuzz_model_cov")], check=True, capture_output=True, text=True)
    files = {}
    for f in json.loads(cov.stdout)["data"][0]["files"]:
        name = os.path.relpath(f["filename"], FW)
        lines = f["summary"]["lines"]
        files[name] = {"lines": lines["count"], "covered": lines["covered"], "percent": round(lines["percent"], 1)}
    rec["line_coverage"] = dict(sorted(files.items()))
    return rec


def run(quick: bool = False, seconds: int | None = None, cases: int | None = None, only=None) -> list[dict]:
    """bench/run.py's entry: lengths from SUBKWS_FUZZ_SECONDS / SUBKWS_FUZZ_CASES (default 600 s and
    100,000 examples per reader); each record's command says how it was run."""
    seconds = seconds or int(os.environ.get("SUBKWS_FUZZ_SECONDS", 20 if quick else 600))
    cases = cases or int(os.environ.get("SUBKWS_FUZZ_CASES", 200 if quick else 100_000))
    recs = []
    if not only or "c" in only:
        recs.append(run_c(seconds))
        recs[-1]["command"] = f"SUBKWS_FUZZ_SECONDS={seconds} python -m bench.run --only fuzz"
    if not only or "python" in only:
        for r in run_python(cases):
            r["command"] = f"SUBKWS_FUZZ_CASES={cases} python -m bench.run --only fuzz"
            recs.append(r)
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, help="libFuzzer run time (default 600, env SUBKWS_FUZZ_SECONDS)")
    ap.add_argument("--cases", type=int, help="hypothesis examples per Python reader (default 100000)")
    ap.add_argument("--only", nargs="*", choices=["c", "python"])
    ap.add_argument("--targets", nargs="*", choices=list(TARGETS), help="Python readers (default all)")
    ap.add_argument("--out", type=Path, help="write the records (JSON list) here")
    a = ap.parse_args(argv)
    command = "python -m bench.fuzz " + " ".join(argv if argv is not None else sys.argv[1:])

    def save(recs):
        for r in recs:
            r["command"] = command
        if a.out:
            atomic_write_text(a.out, json.dumps(recs, indent=1) + "\n")

    recs = []
    if not a.only or "c" in a.only:
        recs.append(run_c(a.seconds or int(os.environ.get("SUBKWS_FUZZ_SECONDS", 600))))
        save(recs)
    if not a.only or "python" in a.only:
        done = list(recs)
        recs += run_python(a.cases or int(os.environ.get("SUBKWS_FUZZ_CASES", 100_000)), a.targets,
                           on_record=lambda py: save(done + py))
    save(recs)
    print(json.dumps(recs, indent=1))
    return 1 if any(r["crashes"] for r in recs) else 0


if __name__ == "__main__":
    sys.exit(main())
