"""Issue 12's record fields: every ``benchmark: "inference"`` record says its activation bits (8 where the
writer predates 4-bit activations; bench.records.merge fills it, every writer merges through it) and the
LSTM firmware bench writes ``model: "lstm"`` inference records with the LSTM's shape (bench/lstm_fw.py)."""
from __future__ import annotations

from bench import records as brec
from tflm_port import board_table
from bench.lstm_fw import inference_records
from bench.run import RESULTS, load_results


def test_merge_fills_activation_bits_of_inference_records_only():
    old = [{"benchmark": "inference", "model": "ffnn250k", "board": "b", "kernel": "dsp", "weight_bits": 4},
           {"benchmark": "model_size", "model": "ffnn250k", "weight_bits": 4}]
    new = [{"benchmark": "inference", "model": "ffnn250k", "board": "b", "kernel": "a4_dsp", "weight_bits": 4,
            "activation_bits": 4}]
    out = brec.merge(old, new)
    assert [r.get("activation_bits") for r in out] == [8, None, 4]   # the w4a4 record does not replace the w4a8 one


def test_lstm_inference_records_carry_the_shape():
    row = {"board": "mps2-an386", "core": "Cortex-M4F", "image": "kws_runner.elf", "kernel": "dsp",
           "lstm_kernel": "dsp", "hops": 10, "byte_exact": True, "instructions_per_hop": 500000,
           "instructions_first_hop": 499000, "arena_bytes": 1, "model_bytes": 2,
           "shape": "2x128 LSTM on 64 bins + Dense 3",
           "lstm_shape": {"layers": 2, "units": 128, "input_bins": 64, "dense_outputs": 3}}
    (r,) = inference_records([row])
    assert (r["benchmark"], r["model"], r["kernel"], r["activation_bits"], r["weight_bits"]) == \
        ("inference", "lstm", "lstm_dsp", 8, 8)
    assert r["macs"] == 4 * 128 * (64 + 128) + 4 * 128 * 256 + 128 * 3 and r["instructions"] == 500000
    assert r["lstm_shape"]["units"] == 128 and r["ok"] == 1


def test_results_json_inference_records_have_the_fields():
    recs = [r for r in load_results(RESULTS) if r.get("benchmark") == "inference"]
    # integer rows 4 or 8; the float32 LSTM kernel's rows (bench/lstm_float_fw.py) say 32 / 32
    assert recs and all(r.get("activation_bits") in (4, 8) or (r.get("kernel") == "lstm_float" and
                                                               r.get("weight_bits") == r.get("activation_bits") == 32)
                        for r in recs)
    lstm = [r for r in recs if r.get("model") == "lstm"]
    assert lstm and all(r["lstm_shape"]["units"] > 0 and r["kernel"].startswith("lstm_") for r in lstm)
    assert {r["board"] for r in lstm if r["kernel"] != "lstm_reference"} >= {board_table.first_of("dsp"), board_table.first_of("mve")}


def test_runner_status_line_parses_every_field():
    """tflm_port.firmware_runner.parse_status reads kws_runner's status line (firmware/app/kws_runner.c) the
    LSTM benchmarks take their instruction counts from: every field, numbers as ints (negative ones too)."""
    from tflm_port.firmware_runner import parse_status

    text = ("boot\nKWS status=0 inferences=20 instr_first=587880 instr_total=11802640 arena=14480 stack=1200 "
            "model=237784 op=-1 tensor=-1 kernel=neon_dotprod opt_ops=3\nKWS bye\n")
    d = parse_status(text)
    assert d == {"status": 0, "inferences": 20, "instr_first": 587880, "instr_total": 11802640, "arena": 14480,
                 "stack": 1200, "model": 237784, "op": -1, "tensor": -1, "kernel": "neon_dotprod", "opt_ops": 3}
    bad = parse_status("KWS status=7 inferences=0 instr_first=0 instr_total=0 arena=0 stack=0 model=12 op=2 "
                       "tensor=5 kernel=dsp opt_ops=0\nKWS error: bad model: ...")
    assert bad["status"] == 7 and bad["op"] == 2 and bad["kernel"] == "dsp"
    assert parse_status("no status here\nKWS error: x") is None
