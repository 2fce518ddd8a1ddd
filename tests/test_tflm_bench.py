"""bench.run --quick smoke test: records with the agreed keys, merge by identifying keys, markdown."""
import json

from bench import run as bench_run

STREAM_KEYS = {"benchmark", "model", "weight_bits", "x_realtime", "speedup_vs_tflite_per_frame"}
SIZE_KEYS = {"benchmark", "model", "weight_bits", "model_bytes", "float_model_bytes", "weights_bytes",
             "biases_bytes", "graph_bytes", "arena_estimate_bytes"}


def test_quick_bench(tmp_path):
    res, md = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    old = {"benchmark": "model_size", "model": "ffnn-quick", "weight_bits": 4, "board": None, "kernel": None,
           "model_bytes": -1}
    keep = {"benchmark": "inference", "model": "x", "weight_bits": 8, "board": "b", "kernel": "k", "instructions": 5}
    res.write_text(json.dumps([old, keep]))
    rc = bench_run.main.__wrapped__(["--quick", "--only", "host", "host_audio", "--results", str(res), "--markdown", str(md)])
    assert rc == 0
    recs = json.loads(res.read_text())
    stream = [r for r in recs if r["benchmark"] == "host_stream_eval"]
    size = [r for r in recs if r["benchmark"] == "model_size"]
    assert {r["weight_bits"] for r in stream} == {4, 8} and {r["weight_bits"] for r in size} == {4, 8}
    for r in stream:
        assert STREAM_KEYS <= set(r) and r["x_realtime"] > 0 and r["speedup_vs_tflite_per_frame"] > 0
        assert r["tflite_bytes_differing_vs_reference_tflite_mode"] == 0
    for r in size:
        assert SIZE_KEYS <= set(r) and 0 < r["model_bytes"] < r["float_model_bytes"]
        assert r["weights_bytes"] + r["biases_bytes"] + r["graph_bytes"] == r["model_bytes"]
        assert "command" in r and "machine" in r
    audio = [r for r in recs if r["benchmark"] == "host_audio_eval"]
    assert {r["weight_bits"] for r in audio} == {4, 8}
    for r in audio:  # features included, threads give the single-thread bytes
        assert r["threads_output_equals_single_thread"] is True and r["x_realtime_per_cpu_second"] > 0
        assert 0 < r["features_share_of_cpu"] < 1 and r["frames"] == 1998
    assert {**keep, "activation_bits": 8} in recs and old not in recs  # replaced by identifying keys, others kept (inference records gain activation_bits 8 when absent)
    text = md.read_text()
    assert "## Host: streaming evaluation speed" in text and "## Host: audio to posteriors" in text and "ratio to float" in text
    assert "not cycles" in text  # the kept firmware record renders its section with the QEMU note


def test_merge_and_render_without_tensorflow():
    a = {"benchmark": "model_size", "model": "m", "weight_bits": 4, "board": None, "kernel": None, "model_bytes": 1}
    b = dict(a, model_bytes=2)
    c = dict(a, weight_bits=8)
    assert bench_run.merge([a, c], [b]) == [c, b]
    assert "| m | 4 |" in bench_run.render([b])
