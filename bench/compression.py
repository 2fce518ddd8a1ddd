"""Compression of trained, deployable models against their float32 form (issue 12; IBM's 4-bit LSTM: 7.6x).

    python -m bench.compression --model lstm --shape "1 x 64" --float lstm-float.tflite \\
        w8a8=runs/a/model.tflite w4a4=runs/b/model.tflite [--merge]
    python -m bench.compression --random-lstm [--merge] # the default LSTM shape (2 x 128), random weights
    python -m bench.compression --write-docs          # README block from bench/results.json

Each VARIANT=PATH names a .tflite file and its weight and activation bits (``w4a4``: 4-bit weights, 4-bit
activations). Measured per file: the whole file's bytes and the bytes of its constant tensors (weights,
biases, thresholds: what ``tflm_port.model_inspect`` reports), each against the float32 model's. The file
figure is what goes to flash; the constant figure is the one papers quote (IBM's 7.6x counts weights).
``--random-lstm`` measures the default LSTM shape (2 layers x 128 units on 64 bins, 3 classes) without a
training run: random weights through the same exporters (float32 and int8 by ``training.export_lstm``, w4a4
by ``tflm_port.lstm_a4``); sizes depend on the shape only. Records: ``benchmark: "compression"`` in
bench/results.json (``--merge``), one per variant; every file is read through the project's .tflite reader,
so a damaged one is one error line, never a record. ``--merge`` also regenerates BENCHMARKS.md and the
README block.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import shlex
import sys
import tempfile
from pathlib import Path

from basics.errors import UserError, cli_main
from bench import records as brec
from tflm_port.model_inspect import describe
from tflm_port.tflite_io import read_bytes

README = brec.ROOT / "README.md"
START, END = "<!-- compression: python -m bench.compression --write-docs -->", "<!-- /compression -->"
VARIANT = re.compile(r"^w([1-8])a([1-8]|16)$")


def parse_variant(spec: str) -> tuple[int, int, Path]:
    """'w4a4=path' -> (4, 4, Path(path)); one UserError line for anything else."""
    name, sep, path = spec.partition("=")
    m = VARIANT.match(name)
    if not sep or not m or not path:
        raise UserError(f"{spec}: expected VARIANT=PATH with VARIANT like w4a4 (weight bits 1-8, activation bits 1-8)")
    return int(m.group(1)), int(m.group(2)), Path(path)


def _sizes(path: Path) -> dict:
    d = describe(read_bytes(path), str(path))
    return {"file_bytes": d["file_bytes"], "constant_bytes": d["constant_bytes"],
            "operators": sorted({o["op"] for o in d["operators"]})}


def measure(float_path: Path, variants: list[str], model: str, shape: str | None = None,
            command: str | None = None) -> list[dict]:
    """One ``compression`` record per variant: its bytes against the float32 model's."""
    base = _sizes(Path(float_path))
    if base["constant_bytes"] == 0:
        raise UserError(f"{float_path}: the float model has no constant tensors to compare with")
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for spec in variants:
        wb, ab, path = parse_variant(spec)
        s = _sizes(path)
        out.append({"benchmark": "compression", "model": model, "shape": shape, "weight_bits": wb,
                    "activation_bits": ab, "board": None, "kernel": None, "file": str(path),
                    "float_file": str(float_path), "operators": s["operators"],
                    "model_bytes": s["file_bytes"], "float_model_bytes": base["file_bytes"],
                    "constant_bytes": s["constant_bytes"], "float_constant_bytes": base["constant_bytes"],
                    "compression": round(base["file_bytes"] / s["file_bytes"], 3),
                    "constant_compression": round(base["constant_bytes"] / max(1, s["constant_bytes"]), 3),
                    "date": date, "command": command})
    return out


def random_lstm_files(folder: Path, units: int = 128, layers: int = 2, bins: int = 64) -> tuple[Path, list[str]]:
    """(float32 .tflite, ['w8a8=...', 'w4a8=...', 'w4a4=...']) of a random-weight LSTM of this shape, written in
    ``folder``: w8a8 TFLite's int8 LSTM, w4a8 and w4a4 SUB8_LSTM_A4 (what quant.lstm_op auto exports them as)."""
    import numpy as np  # lazy: only where the random models are built

    from bench.testmodels import random_lstm, random_lstm_a4  # lazy: TensorFlow only where a model is built
    from training.export_lstm import convert_lstm, with_metadata  # lazy: heavy dependency

    meta = {"labels": ["a", "b", "c"]}
    m = random_lstm(units, bins, 80, layers=layers)
    frames = np.random.default_rng(0).normal(size=(24, 12, bins)).astype(np.float32)
    files = {"float": with_metadata(convert_lstm(m, int8=False), meta), "w8a8": with_metadata(convert_lstm(m, frames), meta),
             "w4a8": random_lstm_a4(bins, units, layers, activation_bits=8), "w4a4": random_lstm_a4(bins, units, layers)}
    for k, data in files.items():
        (folder / f"{k}.tflite").write_bytes(data)
    return folder / "float.tflite", [f"{k}={folder / k}.tflite" for k in ("w8a8", "w4a8", "w4a4")]


def _label(r: dict) -> str:
    return r["model"] + (f" ({r['shape']})" if r.get("shape") else "")


def table(records: list[dict]) -> str:
    rows = [r for r in records if r.get("benchmark") == "compression"]
    rows.sort(key=lambda r: (r["model"], str(r.get("shape")), -r["weight_bits"], -r["activation_bits"]))
    out = ["| model | weights / activations | operators | file bytes | vs float32 | constant bytes | vs float32 |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {_label(r)} | w{r['weight_bits']}a{r['activation_bits']} | {', '.join(r['operators'])} | "
                   f"{r['model_bytes']:,} | {r['compression']:.2f}x smaller | {r['constant_bytes']:,} | "
                   f"{r['constant_compression']:.2f}x smaller |")
    floats = sorted({(_label(r), r["float_model_bytes"], r["float_constant_bytes"]) for r in rows})
    dates = sorted({r.get("date", "")[:10] for r in rows if r.get("date")})
    out += ["", "Float32 models: " + "; ".join(f"{m} {fb:,} bytes ({cb:,} constant)" for m, fb, cb in floats)
            + f". Measured {', '.join(dates)} by `python -m bench.compression` (bench/results.json, benchmark "
            "\"compression\"; the commands are in the records)."]
    return "\n".join(out)


def write_docs(records: list[dict]) -> None:
    brec.write_block(README, START, END, table(records))


@cli_main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compression", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", metavar="VARIANT=PATH", help="e.g. w4a4=runs/x/model.tflite")
    ap.add_argument("--float", dest="float_path", type=Path, help="the float32 .tflite of the same network")
    ap.add_argument("--model", help="model name of the records (ffnn250k, lstm)")
    ap.add_argument("--shape", help="the model's shape, said in the records (e.g. '1 x 64')")
    ap.add_argument("--random-lstm", action="store_true", help="measure the default LSTM shape (2 x 128) with "
                    "random weights instead of given files")
    ap.add_argument("--merge", action="store_true", help="merge the records into bench/results.json")
    ap.add_argument("--write-docs", action="store_true", help="rewrite the README block from bench/results.json; exit")
    a = ap.parse_args(argv)
    if a.write_docs:
        write_docs(brec.load_results(brec.RESULTS))
        return 0
    command = "python -m bench.compression " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    if a.random_lstm:
        with tempfile.TemporaryDirectory() as tmp:
            fl, variants = random_lstm_files(Path(tmp))
            recs = measure(fl, variants, "lstm", "2 x 128, random weights", command)
        for r in recs:
            r["file"], r["float_file"] = f"(random {r['file'].rsplit('/', 1)[-1]})", "(random float.tflite)"
    elif not a.variants or a.float_path is None or not a.model:
        raise UserError("give --float F.tflite, --model NAME and at least one VARIANT=PATH (or --random-lstm)")
    else:
        recs = measure(a.float_path, a.variants, a.model, a.shape, command)
    print(json.dumps(recs, indent=1))
    if a.merge:
        write_docs(brec.merge_results(recs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
