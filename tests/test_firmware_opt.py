"""Optimized kernels reached from converted models, end to end: FFNN-250K (random-weight QAT through
training.qat -> tflm_port.convert --target) at 8, 5, 4, 3, 2, 1 bits run by kws_runner on every board
with its optimized kernels (DSP on M4/M7, Helium on M55, NEON / NEON-dotprod on AArch64), every
output byte equal to tflm_port.reference on 1,000 inputs; the runner must report that every FC op ran
the optimized kernel. A layout without its kernel in the build gives KWS_ERR_UNSUPPORTED at init.
Converter: --layout 2|3 and --target from the CLI, retarget() keeps the outputs, the 1-bit QAT MLP.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from basics.errors import UserError
from tests.fw_build import build_available, need_image
from tflm_port import board_table
from tflm_port.firmware_runner import parse_status

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
BUILD = FW / "build"
sys.path.insert(0, str(FW / "tools"))

N_VECTORS = 1000
BITS = (8, 5, 4, 3, 2, 1)
KWS_ERR_UNSUPPORTED = 9

# board -> (converter target, runner command prefix, image, kernel the runner must report): every board of
# tflm_port/board_table.py, converted for itself, runs its own kernel family
BOARDS = {b: (b, list(v.qemu), v.runner_image, v.family) for b, v in board_table.BOARDS.items()}
def run_image(cmd_prefix, image: Path, args, timeout=300):
    """kws_runner under QEMU (semihosting) or natively (host image: cmd_prefix None)."""
    args = [str(a) for a in args]
    if cmd_prefix is None:
        cmd = [str(image)] + args
    else:
        semi = "enable=on,target=native," + ",".join("arg=" + a for a in ["kws_runner"] + args)
        cmd = cmd_prefix + ["-nographic", "-semihosting-config", semi, "-kernel", str(image)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env={"ASAN_OPTIONS": "exitcode=99:detect_leaks=0", "PATH": "/usr/bin:/bin"})
    text = r.stdout + r.stderr
    return r.returncode, parse_status(text), text


@pytest.fixture(scope="module")
def built():
    """Every target whose tools are installed, built once, without a compiler warning."""
    return build_available(no_warnings=True)


@pytest.fixture(scope="module")
def ffnn():
    """bits -> (plain tflite bytes, layer bits): FFNN-250K through the real QAT path."""
    from bench.testmodels import cached_qat_ffnn
    from training import qat

    out = {}
    for b in BITS:
        q, tfl, _ = cached_qat_ffnn(b)
        out[b] = (tfl, qat.layer_bits(q))
    return out


@pytest.fixture(scope="module")
def vectors(ffnn, tmp_path_factory):
    """target -> bits -> (model path, input path, expected output bytes)."""
    import fwtestdata
    from tflm_port.convert import TARGETS, convert
    from tflm_port.reference import Reference

    d = tmp_path_factory.mktemp("fwopt")
    res = {}
    for bits, (tfl, lb) in ffnn.items():
        generic = convert(tfl, lb, target="generic")
        x = fwtestdata.make_inputs(generic, N_VECTORS)
        want = Reference.from_bytes(generic).run(x)
        for target in {v[0] for v in BOARDS.values()}:
            assert target in TARGETS
            model = convert(tfl, lb, target=target)
            y = Reference.from_bytes(model).run(x)
            np.testing.assert_array_equal(y, want)  # the layouts hold the same integer weights
            mp, ip = d / f"{target}_{bits}.tflite", d / f"{target}_{bits}.in.bin"
            mp.write_bytes(model)
            ip.write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
            res.setdefault(target, {})[bits] = (mp, ip, np.ascontiguousarray(y, np.int8).tobytes())
    return res


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("board", list(BOARDS))
def test_converted_ffnn_runs_optimized_bit_exact(built, vectors, board, bits, tmp_path):
    target, prefix, image, isa = BOARDS[board]
    need_image(image)
    mp, ip, want = vectors[target][bits]
    out = tmp_path / "out.bin"
    rc, st, text = run_image(prefix, BUILD / image, [mp, ip, out, N_VECTORS])
    assert rc == 0 and st is not None, text[-2000:]
    assert (st["status"], st["inferences"], st["kernel"]) == (0, N_VECTORS, isa), text[-500:]
    assert st["opt_ops"] == 5, f"only {st['opt_ops']} of 5 FC ops on the optimized kernel: {text[-500:]}"
    got = out.read_bytes()
    if got != want:
        g, w = np.frombuffer(got, np.int8).reshape(N_VECTORS, -1), np.frombuffer(want, np.int8).reshape(N_VECTORS, -1)
        bad = np.argwhere(g != w)
        pytest.fail(f"{board} {bits}-bit: {len(bad)} outputs differ, first {bad[:5].tolist()}")


DSP, MVE, NEON, SDOT = map(board_table.first_of, ("dsp", "mve", "neon", "neon_dotprod"))


@pytest.mark.parametrize("board,image,target,bits,lay", [
    ("host", "host/kws_runner", DSP, 4, 8),                     # reference-only build
    (DSP, "reference_image", DSP, 4, 8),
    (MVE, "runner_image", DSP, 4, 8),   # MVE: no layout 8
    (DSP, "runner_image", MVE, 4, 6),   # DSP: no layout 6
    # the armv8.0 NEON build runs layout 6 (rows_per_byte) at 1 and 2 bits only: a 4-bit layout-6 model (M55) is refused
    (NEON, "runner_image", MVE, 4, 6),
])
def test_layout_without_its_kernel_is_a_clear_status(built, vectors, board, image, target, bits, lay, tmp_path):
    prefix = None if board == "host" else list(board_table.BOARDS[board].qemu)
    image = image if board == "host" else getattr(board_table.BOARDS[board], image)
    need_image(image)
    mp, ip, _ = vectors[target][bits]
    rc, st, text = run_image(prefix, BUILD / image, [mp, ip, tmp_path / "o.bin", 1])
    assert rc == KWS_ERR_UNSUPPORTED and st and st["status"] == KWS_ERR_UNSUPPORTED, text[-1500:]
    assert f"layout {lay}" in text and "needs an optimized kernel this build lacks" in text, text[-1500:]


def test_int8_and_int4_standard_models_take_their_paths(built, ffnn, tmp_path):
    """Standard INT8 FC runs the optimized kernel; INT4 (TFLite packing) stays on the reference (documented)."""
    need_image(BOARDS[DSP][2])
    import fwtestdata
    from tflm_port.convert import convert
    from tflm_port.reference import Reference

    for bits, want_opt in ((8, 5), (4, 0)):
        tfl, lb = ffnn[bits]
        model = convert(tfl, lb, "auto")
        x = fwtestdata.make_inputs(model, 50)
        (tmp_path / "m.tflite").write_bytes(model)
        (tmp_path / "x.bin").write_bytes(x.astype(np.int8).tobytes())
        rc, st, text = run_image(BOARDS[DSP][1], BUILD / BOARDS[DSP][2],
                                 [tmp_path / "m.tflite", tmp_path / "x.bin", tmp_path / "o.bin"])
        assert rc == 0 and st and st["opt_ops"] == want_opt, text[-1000:]
        assert (tmp_path / "o.bin").read_bytes() == Reference.from_bytes(model).run(x).astype(np.int8).tobytes()


def test_convert_cli_layouts_and_target(ffnn, tmp_path):
    """`python -m tflm_port.convert --layout 2|3|6|8` and `--target` work with no extra import."""
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model

    tfl, lb = ffnn[2]
    src = tmp_path / "in.tflite"
    src.write_bytes(tfl)
    outs = {}
    for extra in (["--mode", "dense", "--layout", "2"], ["--mode", "dense", "--layout", "3"],
                  ["--mode", "dense", "--layout", "6"], ["--mode", "dense", "--layout", "8"],
                  ["--target", "mps2-an500"], ["--target", "aarch64-cortex-a76"], ["--target", "generic"]):
        dst = tmp_path / f"out{len(outs)}.tflite"
        r = subprocess.run([sys.executable, "-m", "tflm_port.convert", str(src), str(dst), "--bits",
                            ",".join(map(str, lb))] + extra, capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
        outs[" ".join(extra)] = dst.read_bytes()
    md = get_metadata(load_model(outs["--target mps2-an500"]))
    assert md["target"] == "mps2-an500" and md["layer_storage"] == ["custom/8"] * 5  # 2-bit on DSP: lanes16
    md = get_metadata(load_model(outs["--target aarch64-cortex-a76"]))
    assert md["layer_storage"] == ["custom/6"] * 5  # 2-bit on SDOT: rows_per_byte (layout 6)
    x = np.random.default_rng(1).integers(-128, 128, size=(64, 1536)).astype(np.int8)
    ys = {k: Reference.from_bytes(v).run(x) for k, v in outs.items()}
    for k, y in ys.items():
        np.testing.assert_array_equal(y, ys["--target generic"], err_msg=k)


def test_retarget_keeps_outputs_and_metadata(ffnn):
    from tflm_port.convert import convert, retarget
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model

    x = np.random.default_rng(2).integers(-128, 128, size=(64, 1536)).astype(np.int8)
    for bits in (5, 1):
        tfl, lb = ffnn[bits]
        base = convert(tfl, lb, "auto", metadata={"labels": ["a", "b", "c"]})
        want = Reference.from_bytes(base).run(x)
        for target in (*board_table.cortex_m_per_family(), "generic"):
            data = retarget(base, target)
            md = get_metadata(load_model(data))
            assert md["labels"] == ["a", "b", "c"] and md["target"] == target and md["layer_bits"] == lb
            np.testing.assert_array_equal(Reference.from_bytes(data).run(x), want)


def test_one_bit_qat_mlp_converts():
    """Reported: build_ffnn -> make_qat_model(QuantConfig(weight_bits=1), stage=2) -> convert failed with
    'weights are not a constant tensor'. The bytes convert (also for a target); the converter refuses
    the Keras model itself with one line (it depends on bytes and numpy only)."""
    import tf_keras as keras
    from tflm_port.convert import convert
    from tflm_port.reference import Reference
    from training import qat
    from training.config import FeatureConfig, ModelConfig, QuantConfig
    from training.models import build_ffnn

    keras.utils.set_random_seed(0)
    fm = build_ffnn(ModelConfig(dropout=0.0, hidden_layers=2, hidden_units=32),
                    FeatureConfig(context_frames=8, num_mel_bins=8), 3)
    q = qat.make_qat_model(fm, QuantConfig(weight_bits=1), stage=2)
    data = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    lb = qat.layer_bits(q)
    assert lb == [1, 1, 1]
    plain = qat.to_tflite(q, data)
    a = convert(plain, lb)
    c = convert(plain, lb, target="mps2-an386")
    x = np.random.default_rng(3).integers(-128, 128, size=(32, 64)).astype(np.int8)
    ya = Reference.from_bytes(a).run(x)
    np.testing.assert_array_equal(Reference.from_bytes(c).run(x), ya)
    with pytest.raises(UserError, match="training.qat.to_tflite"):
        convert(q, lb)  # the converter takes bytes only: Keras models go through training's to_tflite
