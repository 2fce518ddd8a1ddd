"""Firmware tests: the C runtime (firmware/) against tflite-micro / tflm_port.reference outputs,
on the host (ASan/UBSan) and under QEMU on every board, plus hostile-model robustness.

Build once per session into firmware/build (gitignored); test data cached in firmware/build/testdata.
Board runs: KWS_FW_FULL=1 runs every vector of every model on every board. By default
(VECTOR_LIMITS, EMULATED_VECTORS below) the emulated boards run all 1,000 vectors of every case
except the small DS-CNN (100); the ASan host build runs 50 vectors of the full DS-CNN and 200 of the
small one; the -O2 host build (host-release) runs all 1,000 of every case.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
DATA = BUILD / "testdata"
sys.path.insert(0, str(FW / "tools"))

from tflm_port import board_table  # noqa: E402
from tflm_port.firmware_runner import parse_status  # noqa: E402

FULL = os.environ.get("KWS_FW_FULL") == "1"
SAN_ENV = dict(os.environ, ASAN_OPTIONS="exitcode=99:detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1:exitcode=98")

TABLE = board_table.BOARDS  # the boards: tflm_port/board_table.py
# bare metal on qemu-system-aarch64 -M virt (PMU instruction counts for firmware/bench.py): run name -> board
BARE_METAL = {f"{v.make_target}-{v.qemu_cpu}": b for b, v in TABLE.items() if v.user_mode}
# run name -> (make target, tool that must exist, board of the table): the AArch64 boards run the Linux
# build under qemu-aarch64 user mode (fast) and, as BARE_METAL, the bare-metal build
BOARDS = {
    "host": ("host", "gcc", None),              # ASan + UBSan
    "host-release": ("host", "gcc", "release"),  # same code, -O2 without sanitizers (fast full runs)
    **{b: (Path(v.user_mode[1]).parent.name, v.user_mode[0][0], b) if v.user_mode else (v.make_target, v.qemu[0], b)
       for b, v in TABLE.items()},
    **{name: (TABLE[b].make_target, TABLE[b].qemu[0], b) for name, b in BARE_METAL.items()},
}
COMPILER = {"host": "gcc", **{t: v.compiler for b, v in TABLE.items() for t in (BOARDS[b][0], v.make_target)}}


def _missing(board):
    target, tool, _ = BOARDS[board]
    for t in (tool, COMPILER[target]):
        if shutil.which(t) is None:
            return t
    return None


@pytest.fixture(scope="session")
def built():
    """make each target once; a target whose toolchain is missing is skipped, not failed."""
    done = {}
    for board, (target, _, _) in BOARDS.items():
        if target in done.values() or _missing(board):
            continue
        r = subprocess.run(["make", "-C", str(FW), "-j2", target], capture_output=True, text=True)
        assert r.returncode == 0, f"make {target} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        done[board] = target
    return True


@pytest.fixture(scope="session")
def cases():
    import fwtestdata

    return fwtestdata.build(DATA)


def run_board(board, model, inputs, outputs, max_vectors=None, icount=False, timeout=300):
    """Run kws_runner on a board; returns (returncode, parsed status dict or None, full text)."""
    _, _, how = BOARDS[board]
    v = TABLE.get(how)
    args = [str(model), str(inputs), str(outputs)] + ([str(max_vectors)] if max_vectors else [])
    env = None
    if board == "host":
        cmd = [str(BUILD / "host" / "kws_runner")] + args
        env = SAN_ENV
    elif board == "host-release":
        cmd = [str(BUILD / "host" / "kws_runner_release")] + args
    elif board in TABLE and v.user_mode:
        cmd = [*v.user_mode[0], str(BUILD / v.user_mode[1])] + args
    else:
        for a in args:
            assert "," not in a, a
        semi = ["-semihosting-config", "enable=on,target=native," + ",".join("arg=" + a for a in ["kws_runner"] + args)]
        # the product image (on the A76 too: the armv8.0 build, bit-exact everywhere)
        cmd = [*v.qemu, "-nographic"] + semi + ["-kernel", str(BUILD / v.make_target / "kws_runner.elf")]
        if icount:
            cmd[1:1] = ["-icount", "shift=0,align=off,sleep=off"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, None, "TIMEOUT"
    text = r.stdout + r.stderr
    return r.returncode, parse_status(text), text


def _skip_if_missing(board):
    t = _missing(board)
    if t:
        pytest.skip(f"{t} not installed (apt: gcc-arm-none-eabi, gcc-aarch64-linux-gnu, qemu-system-arm, qemu-user)")


def test_host_unit_tests(built):
    _skip_if_missing("host")
    r = subprocess.run([str(BUILD / "host" / "test_units")], capture_output=True, text=True, env=SAN_ENV)
    assert r.returncode == 0, r.stdout + r.stderr


# The full DS-CNN (~116 M instructions per inference with reference kernels) runs all 1,000 vectors
# on every emulated board (about 2 min per board here) and on host-release; the ASan build is ~10x
# slower than -O2, so it runs a prefix. The extra small DS-CNN runs a prefix under emulation.
# KWS_FW_FULL=1 runs every vector of every case everywhere.
VECTOR_LIMITS = {"host": {"dscnn": 50, "dscnn_small_softmax": 200}, "host-release": {}}
EMULATED_VECTORS = {"dscnn_small_softmax": 100}
MODEL_CASES = ["ffnn_int8", "ffnn_int4", "ffnn_sub8_5", "ffnn_sub8_2", "ffnn_sub8_1", "sub8_all_bits", "softmax_wide", "requantize_relu6",
               "mlp_float_io", "tiny_dscnn_softmax", "dscnn_small_softmax", "dscnn"]


BIT_EXACT_BOARDS = [b for b in BOARDS if b not in BARE_METAL]


@pytest.mark.parametrize("board", BIT_EXACT_BOARDS)
@pytest.mark.parametrize("case", MODEL_CASES)
def test_model_bit_exact(built, cases, board, case, tmp_path):
    """Every output byte equals the expected output (tflite-micro, or tflm_port.reference for the custom op)."""
    _skip_if_missing(board)
    info = cases[case]
    n = info["n"]
    if not FULL:
        n = min(n, VECTOR_LIMITS.get(board, EMULATED_VECTORS).get(case, n))
    out = tmp_path / "out.bin"
    rc, st, text = run_board(board, DATA / f"{case}.tflite", DATA / f"{case}.in.bin", out, max_vectors=n)
    assert rc == 0 and st is not None, text[-2000:]
    assert st["inferences"] == n, text[-2000:]
    got = out.read_bytes()
    want = (DATA / f"{case}.expected.bin").read_bytes()[: n * info["out_bytes"]]
    if got != want:
        dt = np.float32 if info["out_dtype"] == "float32" else np.int8
        g = np.frombuffer(got, dt).reshape(-1, info["out_bytes"] // np.dtype(dt).itemsize)
        w = np.frombuffer(want, dt).reshape(g.shape)
        bad = np.argwhere(g != w)
        pytest.fail(f"{case} on {board}: {len(bad)} output values differ, first at {bad[:5].tolist()}: "
                    f"got {g[tuple(bad[0])]} want {w[tuple(bad[0])]}")


def test_reference_agrees_with_tflite_micro(cases):
    """tflm_port.reference gives tflite-micro's exact bytes on the first 100 vectors of every case whose
    expected outputs come from tflite-micro (fwtestdata records the comparison when it builds the data);
    the one case the reference cannot run is named, with its reason."""
    import fwtestdata

    tflm = {k: v for k, v in cases.items() if k != "_version" and v["source"] == "tflm"}
    assert len(tflm) >= 7
    for name, info in tflm.items():
        agree = info["reference_agrees_with_tflm"]
        if name in fwtestdata.REFERENCE_UNSUPPORTED:
            assert isinstance(agree, str) and fwtestdata.REFERENCE_UNSUPPORTED[name] in agree, (name, agree)
        else:
            assert agree is True, f"{name}: reference vs tflite-micro: {agree}"


def test_test_models_cover_shape_arithmetic(cases):
    """The DS-CNN cases keep Keras' SHAPE / STRIDED_SLICE / PACK chain in front of RESHAPE (the runtime
    drops it as dead code: these are the only firmware-test models with it, fwtestdata._dscnn); the
    cases made by training.qat.to_tflite (batch 1) have none."""
    from tflm_port.tflite_io import load_model, op_name

    def ops(case):
        m = load_model((DATA / f"{case}.tflite").read_bytes())
        return {op_name(m, op) for op in m.subgraphs[0].operators}

    shape_ops = {"SHAPE", "STRIDED_SLICE", "PACK"}
    assert shape_ops <= ops("dscnn_small_softmax") and shape_ops <= ops("dscnn")
    assert not shape_ops & (ops("mlp_float_io") | ops("softmax_wide") | ops("tiny_dscnn_softmax"))
    assert {"QUANTIZE", "DEQUANTIZE"} <= ops("mlp_float_io")


@pytest.mark.parametrize("case", ["ffnn_int8", "ffnn_int4", "sub8_all_bits", "mlp_float_io", "softmax_wide",
                                  "tiny_dscnn_softmax"])
def test_aarch64_bare_metal(built, cases, case, tmp_path):
    """The bare-metal AArch64 build (figures board) is bit-exact too, and counts instructions."""
    board = next(iter(BARE_METAL))
    _skip_if_missing(board)
    n = 100
    rc, st, text = run_board(board, DATA / f"{case}.tflite", DATA / f"{case}.in.bin", tmp_path / "o.bin",
                             max_vectors=n, icount=True)
    assert rc == 0 and st and st["inferences"] == n, text[-2000:]
    assert st["instr_first"] > 0 and st["instr_total"] >= st["instr_first"], st
    want = (DATA / f"{case}.expected.bin").read_bytes()[: n * cases[case]["out_bytes"]]
    assert (tmp_path / "o.bin").read_bytes() == want


@pytest.mark.parametrize("board", [*board_table.cortex_m_per_family(), next(iter(BARE_METAL))])
def test_instruction_count_is_deterministic(built, cases, board, tmp_path):
    """-icount shift=0: the same run gives the same instruction counts, whatever else the host does."""
    _skip_if_missing(board)
    runs = [run_board(board, DATA / "ffnn_int8.tflite", DATA / "ffnn_int8.in.bin", tmp_path / "o.bin",
                      max_vectors=3, icount=True)[1] for _ in range(2)]
    assert runs[0]["instr_first"] > 20_000  # M55 Helium int8 FFNN-250K: ~51k instructions
    assert (runs[0]["instr_first"], runs[0]["instr_total"]) == (runs[1]["instr_first"], runs[1]["instr_total"])


# ---------------------------------------------------------------- hostile models

def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _load(b: bytes):
    s = _schema()
    return s.ModelT.InitFromObj(s.Model.GetRootAsModel(b, 0))


def _save(m) -> bytes:
    import flatbuffers

    s = _schema()
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _crafted(tiny: bytes, sub8: bytes) -> dict[str, bytes]:
    """Structurally valid flatbuffers with semantically hostile content."""
    from flatbuffers import flexbuffers

    out = {}
    t = _load(tiny)  # the first CONV_2D of the tiny DS-CNN: its index depends on how the converter laid out the graph
    conv = next(k for k, op in enumerate(t.subgraphs[0].operators)
                if max(t.operatorCodes[op.opcodeIndex].builtinCode,
                       t.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == _schema().BuiltinOperator.CONV_2D)

    def mut(name, base, fn):
        m = _load(base)
        fn(m, m.subgraphs[0])
        out[name] = _save(m)

    def custom_opts(d):
        def f(m, sg):
            for op in sg.operators:
                if m.operatorCodes[op.opcodeIndex].builtinCode == 32:
                    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(d)), np.uint8).copy()
        return f

    base_opts = {"version": 1, "bits": 1, "layout": 0, "in_features": 37, "out_features": 13, "activation": "RELU"}
    mut("tensor_type_invalid", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]], "type", 99))
    mut("tensor_type_float_activation", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]], "type", 0))
    mut("huge_shape", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]], "shape", [1 << 30, 1 << 30, 4, 4]))
    mut("huge_shape_overflow32", tiny, lambda m, sg: setattr(sg.tensors[sg.inputs[0]], "shape", [65536, 65537]))
    mut("negative_dim", tiny, lambda m, sg: setattr(sg.tensors[sg.inputs[0]], "shape", [1, -48]))
    mut("rank_too_high", tiny, lambda m, sg: setattr(sg.tensors[sg.inputs[0]], "shape", [1] * 9 + [48]))
    mut("buffer_index_out_of_range", tiny, lambda m, sg: setattr(sg.tensors[1], "buffer", 100000))
    mut("opcode_index_out_of_range", tiny, lambda m, sg: setattr(sg.operators[3], "opcodeIndex", 1000))
    def op_input(value):
        def f(m, sg):
            ins = np.array(sg.operators[conv].inputs, np.int32)
            ins[0] = value
            sg.operators[conv].inputs = ins
        return f

    mut("op_input_index_out_of_range", tiny, op_input(5000))
    mut("op_input_negative", tiny, op_input(-7))
    mut("graph_input_out_of_range", tiny, lambda m, sg: setattr(sg, "inputs", np.array([12345], np.int32)))
    mut("quant_missing", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]], "quantization", None))
    mut("zero_point_out_of_range", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]].quantization, "zeroPoint", [1000]))
    mut("scale_nan", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]].quantization, "scale", [float("nan")]))
    mut("scale_zero", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]].quantization, "scale", [0.0]))
    mut("weights_buffer_too_short", tiny, lambda m, sg: setattr(m.buffers[sg.tensors[sg.operators[conv].inputs[1]].buffer], "data",
                                                                np.zeros(3, np.uint8)))
    mut("conv_stride_zero", tiny, lambda m, sg: setattr(sg.operators[conv].builtinOptions, "strideW", 0))
    mut("conv_options_missing", tiny, lambda m, sg: (setattr(sg.operators[conv], "builtinOptions", None),
                                                     setattr(sg.operators[conv], "builtinOptionsType", 0)))
    mut("no_subgraphs", tiny, lambda m, sg: setattr(m, "subgraphs", []))
    mut("version_2", tiny, lambda m, sg: setattr(m, "version", 2))
    mut("output_is_constant", tiny, lambda m, sg: setattr(sg.tensors[sg.operators[conv].outputs[0]], "buffer",
                                                          sg.tensors[sg.operators[conv].inputs[1]].buffer))
    for k, v in {"bits_9": dict(bits=9), "bits_0": dict(bits=0), "layout_1": dict(layout=1), "layout_7": dict(layout=7),
                 "version_2": dict(version=2), "activation_tanh": dict(activation="TANH"),
                 "in_features_wrong": dict(in_features=36), "out_features_huge": dict(out_features=1 << 30),
                 "bits_string": dict(bits="one")}.items():
        d = dict(base_opts)
        d.update(v)
        mut("sub8_" + k, sub8, custom_opts(d))
    d = dict(base_opts)
    del d["bits"]
    mut("sub8_bits_missing", sub8, custom_opts(d))
    mut("sub8_options_not_a_map", sub8, custom_opts([1, 2, 3]))
    return out


def _hostile_set(cases, n_flips, n_offsets, n_truncs, seed=1):
    tiny = (DATA / "tiny_dscnn_softmax.tflite").read_bytes()
    sub8 = (DATA / "sub8_all_bits.tflite").read_bytes()
    rng = random.Random(seed)
    out = {"identifier": b"XXXX".join([tiny[:4], tiny[8:]]), "empty": b"", "tiny_header": tiny[:12],
           "root_offset_huge": b"\xf0\xff\xff\x7f" + tiny[4:]}
    out.update(_crafted(tiny, sub8))
    for base_name, base in (("tiny", tiny), ("sub8", sub8)):
        for i in range(n_truncs):
            cut = rng.randrange(0, len(base))
            out[f"{base_name}_trunc_{cut}"] = base[:cut]
        for i in range(n_flips):
            b = bytearray(base)
            for _ in range(rng.choice([1, 1, 2, 8])):
                pos = rng.randrange(0, min(len(b), 4096) if rng.random() < 0.8 else len(b))
                b[pos] ^= 1 << rng.randrange(8)
            out[f"{base_name}_flip_{i}"] = bytes(b)
        # overwrite 4-aligned words near the start (tables, vtables, offsets) with big / negative values
        positions = list(range(0, min(len(base), 2048), 4))
        rng.shuffle(positions)
        for pos in positions[:n_offsets]:
            b = bytearray(base)
            b[pos:pos + 4] = rng.choice([b"\xf0\xff\xff\x7f", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80", b"\xfc\xff\x00\x00"])
            out[f"{base_name}_word_{pos}"] = bytes(b)
    return out


def _check_hostile(board, models: dict, tmp_path, expect=None):
    """Every model ends with a status in 0..13 that matches the runner's exit code, an error names
    itself in one line, and a model named in ``expect`` gets exactly that status."""
    expect = expect or {}
    inputs = tmp_path / "zeros.bin"
    inputs.write_bytes(bytes(8192))
    failures, errors = [], 0
    for name, blob in models.items():
        mp = tmp_path / "m.tflite"
        mp.write_bytes(blob if blob else b"\0")
        rc, st, text = run_board(board, mp, inputs, tmp_path / "o.bin", max_vectors=1, timeout=60)
        if rc is None:
            failures.append(f"{name}: hang")
        elif st is None or rc != st["status"] or not (0 <= rc <= 13):
            failures.append(f"{name}: rc={rc}: {text[-600:]}")
        elif name in expect and rc != expect[name]:
            failures.append(f"{name}: status {rc}, expected {expect[name]}: {text[-300:]}")
        elif rc != 0:
            errors += 1
            if "KWS error: " not in text or len(text.split("KWS error: ")[1].strip()) < 10:
                failures.append(f"{name}: error {rc} without a message")
    assert not failures, f"{len(failures)} hostile models misbehaved on {board}:\n" + "\n".join(failures[:10])
    return errors


# the status every hand-made hostile model must be rejected with (kws.h: 2 FORMAT, 3 IDENTIFIER, 4 VERSION,
# 5 INDEX, 6 TYPE, 7 SHAPE, 8 QUANT, 9 UNSUPPORTED, 10 OPTIONS, 12 LIMIT)
EXPECTED_STATUS = {
    "identifier": 3, "empty": 2, "tiny_header": 2, "root_offset_huge": 2,
    "tensor_type_invalid": 6, "tensor_type_float_activation": 6, "huge_shape": 7, "huge_shape_overflow32": 7,
    "negative_dim": 7, "rank_too_high": 12, "buffer_index_out_of_range": 5, "opcode_index_out_of_range": 5,
    "op_input_index_out_of_range": 5, "op_input_negative": 5, "graph_input_out_of_range": 5, "quant_missing": 8,
    "zero_point_out_of_range": 8, "scale_nan": 8, "scale_zero": 8, "weights_buffer_too_short": 7,
    "conv_stride_zero": 10, "conv_options_missing": 10, "no_subgraphs": 2, "version_2": 4, "output_is_constant": 7,
    "sub8_bits_9": 10, "sub8_bits_0": 10, "sub8_layout_1": 9, "sub8_layout_7": 9, "sub8_version_2": 4,
    "sub8_activation_tanh": 10, "sub8_in_features_wrong": 7, "sub8_out_features_huge": 10, "sub8_bits_string": 10,
    "sub8_bits_missing": 10, "sub8_options_not_a_map": 10,
}


def test_hostile_models_host(built, cases, tmp_path):
    """Random mutations end in a clean status (no crash, hang or sanitizer report); every hand-made one is
    rejected with its own status code."""
    _skip_if_missing("host")
    models = _hostile_set(cases, n_flips=150, n_offsets=100, n_truncs=30)
    crafted = {k for k in models if not re.search(r"_(flip|trunc|word)_", k)}
    assert crafted == set(EXPECTED_STATUS), "a crafted model has no expected status (or one is no longer built)"
    _check_hostile("host", models, tmp_path, expect=EXPECTED_STATUS)


@pytest.mark.parametrize("board", [board_table.cortex_m()[0], board_table.aarch64()[0]])
def test_hostile_models_board(built, cases, board, tmp_path):
    _skip_if_missing(board)
    models = _hostile_set(cases, n_flips=25, n_offsets=20, n_truncs=8, seed=2)
    _check_hostile(board, models, tmp_path, expect=EXPECTED_STATUS)
