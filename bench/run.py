"""Benchmark aggregator: ``python -m bench.run [--quick] [--run-dir DIR] [--only host firmware]``.

Runs the registered benchmark modules, merges their records into ``bench/results.json`` (a JSON
list; a record replaces an earlier one with the same benchmark, model, weight_bits, board, kernel)
and regenerates ``BENCHMARKS.md``. Both files are written atomically.

Modules: ``bench.host`` (``run(quick, run_dir) -> list[dict]``), ``bench.kernels``, ``bench.streaming``,
``bench.boards`` (the STM32F405 UART images: flash/RAM against the part's limits) and, when present,
``firmware/bench.py`` (owned by the firmware; called through its ``main(argv)`` with ``--out`` to a
temporary file whose JSON list is read back). ``--quick`` is a smoke test: tiny models, 20 s of audio,
firmware skipped unless ``--only firmware`` asks for it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import tempfile
import traceback
from pathlib import Path

from basics.atomic import atomic_write_text
from basics.errors import UserError, cli_main
from bench import a4
from bench import distributed
from bench.records import (KEY, MARKDOWN, RESULTS, SECTIONS, _fmt, load_firmware_bench, load_results,  # noqa: F401
                           merge, record_key, render)

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- modules

def run_host(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import host  # lazy: heavy dependency, loaded only when this runs

    return host.run(quick=quick, run_dir=run_dir)


def run_host_audio(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import host  # lazy: heavy dependency, loaded only when this runs

    return host.run_audio(quick=quick, run_dir=run_dir)


def run_model_size(quick: bool, run_dir: Path | None) -> list[dict]:
    """Only the ``model_size`` records of ``host`` (no timing: seconds, not the 300 s stream)."""
    from bench import host  # lazy: heavy dependency, loaded only when this runs

    return host.model_size([8, 4] if quick else [8, 7, 6, 5, 4, 3, 2, 1], quick)


def run_firmware(quick: bool, run_dir: Path | None) -> list[dict]:
    mod = load_firmware_bench()
    if mod is None:
        print("bench: firmware/bench.py not found or has no main(); skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as td:
        out = Path(td) / "fw.json"
        argv = ["--out", str(out)]
        if quick:
            argv += ["--boards", "mps2-an386", "--models", "ffnn_int4"]
        rc = mod.main(argv)
        if rc not in (0, None) or not out.exists():
            raise RuntimeError(f"firmware/bench.py exited with {rc}")
        recs = json.loads(out.read_text())
    cmd = "python firmware/bench.py" + (" --boards mps2-an386 --models ffnn_int4" if quick else "")
    for r in recs:
        r.setdefault("command", cmd)
    return recs


def run_kernels(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import kernels  # lazy: heavy dependency, loaded only when this runs

    return kernels.run(quick)


def run_streaming(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import streaming  # lazy: heavy dependency, loaded only when this runs

    return streaming.run(quick)


def run_boards(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import boards  # lazy: heavy dependency, loaded only when this runs

    return boards.run(quick)


def run_sparse(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import sparse  # lazy: heavy dependency, loaded only when this runs

    recs = sparse.run(quick)
    if recs:
        sparse.plot(recs, ROOT / "bench" / "sparse_density.png")
    return recs


def run_a4(quick: bool, run_dir: Path | None) -> list[dict]:

    return a4.run(quick)


def run_fuzz(quick: bool, run_dir: Path | None) -> list[dict]:
    from bench import fuzz  # lazy: heavy dependency, loaded only when this runs

    return fuzz.run(quick)


def run_distributed(quick: bool, run_dir: Path | None) -> list[dict]:

    return distributed.run(quick)


MODULES = {"host": run_host, "host_audio": run_host_audio, "model_size": run_model_size, "firmware": run_firmware, "kernels": run_kernels, "streaming": run_streaming,
           "boards": run_boards, "sparse": run_sparse, "fuzz": run_fuzz, "a4": run_a4, "distributed": run_distributed}
# need QEMU (fuzz: minutes of libFuzzer); skipped by --quick
EMULATED = ("firmware", "kernels", "streaming", "boards", "sparse", "fuzz", "a4")
ON_REQUEST = ("model_size",)  # a part of "host", run alone only through --only


# --------------------------------------------------------------------------- main

@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny models, short audio, no firmware")
    ap.add_argument("--run-dir", type=Path, help="a trained run directory (uses its model.tflite for the stream benchmark)")
    ap.add_argument("--only", nargs="*", choices=list(MODULES), help="benchmark modules to run (default: all)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results JSON (default bench/results.json)")
    ap.add_argument("--markdown", type=Path, default=MARKDOWN, help="markdown report (default BENCHMARKS.md)")
    a = ap.parse_args(argv)
    if a.run_dir is not None and not (a.run_dir / "model.tflite").is_file():
        raise UserError(f"{a.run_dir}: no model.tflite (not a finished QAT run directory)")
    mods = a.only if a.only else [m for m in MODULES if m not in ON_REQUEST and not (a.quick and m in EMULATED)]
    old = load_results(a.results)  # fail early on a broken results file
    cmd = "python -m bench.run" + (" --quick" if a.quick else "") + (f" --run-dir {a.run_dir}" if a.run_dir else "")
    from bench.host import machine  # lazy: heavy dependency, loaded only when this runs

    mach = machine()
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    new, failed = [], []
    for name in mods:
        try:
            recs = MODULES[name](a.quick, a.run_dir)
        except Exception as e:  # one broken module must not lose the others' records
            traceback.print_exc()
            print(f"bench: module '{name}' failed: {e}", file=sys.stderr)
            failed.append(name)
            continue
        for r in recs:
            r.setdefault("command", cmd)
            r.setdefault("machine", mach)
            r.setdefault("date", now)
            print(json.dumps({k: v for k, v in r.items() if k != "machine"}))
        new += recs
    merged = merge(load_results(a.results), new)
    atomic_write_text(a.results, json.dumps(merged, indent=1) + "\n")
    atomic_write_text(a.markdown, render(merged))
    print(f"bench: {len(new)} records ({len(merged)} in {a.results}); {a.markdown} regenerated")
    return 1 if failed else 0


if __name__ == "__main__":
    main()
