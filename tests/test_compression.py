"""bench.compression: model bytes against float32, from the files themselves; the README block is the records."""
from __future__ import annotations

from pathlib import Path

import pytest

from basics.errors import UserError
from bench import compression, records as brec
from tflm_port.model_inspect import describe

ROOT = Path(__file__).resolve().parents[1]
FLOAT, W4, W8 = (ROOT / "models" / f"alexa-{v}.tflite" for v in ("float", "w4", "w8"))


def test_compression_is_the_ratio_of_the_files_bytes():
    recs = compression.measure(FLOAT, [f"w4a8={W4}", f"w8a8={W8}"], "ffnn250k", command="test")
    assert [(r["weight_bits"], r["activation_bits"]) for r in recs] == [(4, 8), (8, 8)]
    for r, path in zip(recs, (W4, W8)):
        d, f = describe(path.read_bytes()), describe(FLOAT.read_bytes())
        assert r["model_bytes"] == path.stat().st_size == d["file_bytes"]
        assert r["float_model_bytes"] == FLOAT.stat().st_size
        assert r["constant_bytes"] == d["constant_bytes"] and r["float_constant_bytes"] == f["constant_bytes"]
        assert r["compression"] == round(FLOAT.stat().st_size / path.stat().st_size, 3)
        assert r["operators"] == ["FULLY_CONNECTED"]
    # 4-bit weights take about half the bytes of 8-bit ones, and both far less than float32
    assert recs[0]["constant_compression"] > 1.8 * recs[1]["constant_compression"] > 1.8 * 3.5


@pytest.mark.parametrize("spec", ["w4a4", "w4=x.tflite", "w0a4=x.tflite", "w4a9=x.tflite", "w4a4="])
def test_bad_variant_is_one_error_line(spec):
    with pytest.raises(UserError, match="VARIANT=PATH"):
        compression.parse_variant(spec)


def test_bad_files_are_refused_not_measured(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(UserError, match="junk.tflite"):
        compression.measure(FLOAT, [f"w4a4={junk}"], "ffnn250k")
    with pytest.raises(UserError, match="missing.tflite"):
        compression.measure(tmp_path / "missing.tflite", [f"w4a4={W4}"], "ffnn250k")
    for argv in (["--float", str(FLOAT), "--model", "m", f"w4a4={junk}"], ["--model", "m"]):
        with pytest.raises(SystemExit) as e:
            compression.main(argv)
        assert e.value.code == 2


def test_readme_compression_block_is_the_records():
    recs = [r for r in brec.load_results(brec.RESULTS) if r.get("benchmark") == "compression"]
    assert {(r["model"], r["weight_bits"], r["activation_bits"]) for r in recs} >= {
        ("ffnn250k", 4, 4), ("lstm", 4, 4), ("lstm", 8, 8)}, "bench/results.json lacks the compression records"
    have = brec.read_block(compression.README.read_text(), compression.START, compression.END)
    assert have == compression.table(recs), "README compression block is stale: python -m bench.compression --write-docs"


def test_default_lstm_shape_w4a4_is_at_least_7_6x_smaller(tmp_path):
    """The issue's compression target on the default LSTM shape (2 x 128; sizes depend on the shape only)."""
    fl, variants = compression.random_lstm_files(tmp_path)
    recs = {(r["weight_bits"], r["activation_bits"]): r for r in compression.measure(fl, variants, "lstm", "2 x 128")}
    assert recs[4, 4]["operators"] == recs[4, 8]["operators"] == ["FULLY_CONNECTED", "SUB8_LSTM_A4"]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in recs[8, 8]["operators"]
    assert recs[4, 4]["constant_compression"] >= 7.6 and recs[4, 4]["compression"] > 7.5
    assert 3.8 < recs[8, 8]["constant_compression"] < 4.0     # int8: a quarter of float32, plus int32 biases
    # w4a8: the same packed kernels, plus the 255 / 254 thresholds of 8-bit gates and tanh (5 KB a layer)
    assert 6.5 < recs[4, 8]["constant_compression"] < recs[4, 4]["constant_compression"]
