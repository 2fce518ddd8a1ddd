"""Converter modes, custom op vs container equivalence, metadata, errors, inspect and export CLIs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from basics.errors import UserError
from bench import testmodels as qt
from tflm_port.convert import convert
from tflm_port.export import (c_array_source, parse_c_array, read_test_vectors, write_c_array,
                              write_test_vectors)
from tflm_port.model_inspect import describe
from tflm_port.reference import Reference
from tflm_port.tflite_io import CUSTOM_CODE, get_metadata, load_model, op_name, custom_options

META = {"labels": ["_silence_", "_unknown_", "alexa"],
        "features": {"sample_rate": 16000, "window_ms": 25.0, "hop_ms": 10.0, "num_mel_bins": 64,
                     "context_frames": 24, "context_stride": 3, "norm_mean": -3.5, "norm_std": 2.25}}


@pytest.fixture(scope="module")
def src():
    return {"448": qt.cached_mlp(20, [16, 8], 3, [4, 4, 8]),
            "567": qt.cached_mlp(21, [15, 9], 3, [5, 6, 7]),
            "231": qt.cached_mlp(19, [13, 7], 3, [2, 3, 1])}


def weight_kinds(data):
    m = load_model(data)
    sg = m.subgraphs[0]
    out = []
    for op in sg.operators:
        n = op_name(m, op)
        if n == "FULLY_CONNECTED":
            from tflm_port.tflite_io import TENSOR_TYPE_NAMES
            out.append(TENSOR_TYPE_NAMES[sg.tensors[op.inputs[1]].type])
        elif n == CUSTOM_CODE:
            out.append(f"SUB8/{custom_options(op)['bits']}")
    return out


def test_auto_mode_storage(src):
    assert weight_kinds(convert(src["448"], [4, 4, 8])) == ["INT4", "INT4", "INT8"]
    assert weight_kinds(convert(src["567"], [5, 6, 7])) == ["SUB8/5", "SUB8/6", "SUB8/7"]
    assert weight_kinds(convert(src["231"], [2, 3, 1])) == ["INT4", "INT4", "SUB8/1"]
    assert weight_kinds(convert(src["231"], [2, 3, 1], "dense")) == ["SUB8/2", "SUB8/3", "SUB8/1"]
    assert weight_kinds(convert(src["448"], [4, 4, 8], "container")) == ["INT8", "INT8", "INT8"]


@pytest.mark.parametrize("name,bits", [("567", [5, 6, 7]), ("231", [2, 3, 1]), ("448", [4, 4, 8])])
@pytest.mark.parametrize("layout", [0])
def test_custom_op_equals_container(src, name, bits, layout):
    dense = Reference.from_bytes(convert(src[name], bits, "dense", layout))
    cont = Reference.from_bytes(convert(src[name], bits, "container"))
    x = qt.test_inputs(10_000, dense.input_shape[0], dense.input_quant[1], seed=2)
    np.testing.assert_array_equal(dense.run(x), cont.run(x))


def test_retired_layout_1_is_refused_in_one_line(src, tmp_path):
    """Layout 1 (row_bitplane) had no C kernel: the converter refuses it (API and CLI), naming the file."""
    with pytest.raises(UserError, match="layout 1 \\(row_bitplane\\) is retired"):
        convert(src["567"], [5, 6, 7], "dense", 1)
    (tmp_path / "in.tflite").write_bytes(src["567"])
    r = subprocess.run([sys.executable, "-m", "tflm_port.convert", str(tmp_path / "in.tflite"), str(tmp_path / "o.tflite"),
                        "--bits", "5,6,7", "--mode", "dense", "--layout", "1"], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and "Traceback" not in r.stderr and "retired" in lines[-1] and "in.tflite" in lines[-1]
    assert not (tmp_path / "o.tflite").exists()


def test_custom_op_options_and_weight_tensor(src):
    m = load_model(convert(src["567"], [5, 6, 7], "dense", 0))
    sg = m.subgraphs[0]
    op = sg.operators[0]
    assert op_name(m, op) == CUSTOM_CODE
    opts = custom_options(op)
    assert opts == {"version": 1, "bits": 5, "layout": 0, "in_features": 21, "out_features": 15, "activation": "RELU"}
    w = sg.tensors[op.inputs[1]]
    assert list(w.shape) == [15 * ((21 * 5 + 7) // 8)]
    assert list(w.quantization.zeroPoint) == [0] and len(w.quantization.scale) == 1
    assert custom_options(sg.operators[2])["activation"] == "NONE"


def test_metadata_round_trip(src):
    m = load_model(convert(src["448"], [4, 4, 8], metadata=META))
    md = get_metadata(m)
    assert md["labels"] == META["labels"] and md["features"] == META["features"]
    assert md["layer_bits"] == [4, 4, 8] and md["mode"] == "auto" and md["format_version"] == 1
    assert "project_version" in md
    names = [x.name.decode() if isinstance(x.name, bytes) else x.name for x in m.metadata]
    assert "min_runtime_version" in names  # TFLite's own entries are kept


def test_errors(src):
    with pytest.raises(UserError, match="layer_bits has 2 entries"):
        convert(src["448"], [4, 4])
    with pytest.raises(UserError, match="not on the 2-bit grid"):
        convert(src["448"], [2, 4, 8])
    with pytest.raises(UserError, match="not on the 5-bit grid"):
        convert(src["448"], [4, 4, 5])
    with pytest.raises(UserError, match="unknown weight layout"):
        convert(src["567"], [5, 6, 7], layout=10)
    with pytest.raises(UserError, match="mode"):
        convert(src["567"], [5, 6, 7], mode="fast")
    with pytest.raises(UserError, match="truncated or corrupted"):
        convert(src["448"][:200], [4, 4, 8])
    with pytest.raises(UserError, match="not a TFLite model"):
        convert(b"hello world!", [4])


def test_corrupted_files_never_traceback(src):
    data = convert(src["567"], [5, 6, 7])
    rng = np.random.default_rng(0)
    for trial in range(200):
        d = bytearray(data)
        if trial % 2:
            d = d[: int(rng.integers(0, len(d)))]
        else:
            for pos in rng.integers(0, len(d), size=8):
                d[pos] = int(rng.integers(0, 256))
        try:
            describe(bytes(d), "x.tflite")
            Reference.from_bytes(bytes(d), "x.tflite")
        except UserError:
            pass


def _cli(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)


def test_inspect_cli(tmp_path, src):
    p = tmp_path / "m.tflite"
    p.write_bytes(convert(src["567"], [5, 6, 7], metadata=META))
    r = _cli("-m", "tflm_port.model_inspect", str(p))
    assert r.returncode == 0, r.stderr
    assert CUSTOM_CODE in r.stdout and '"bits": 5' in r.stdout and "alexa" in r.stdout and "UINT8" in r.stdout
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(p.read_bytes()[:300])
    r = _cli("-m", "tflm_port.model_inspect", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}:")


def test_convert_cli_bad_bits(tmp_path, src):
    p = tmp_path / "m.tflite"
    p.write_bytes(src["448"])
    r = _cli("-m", "tflm_port.convert", str(p), str(tmp_path / "o.tflite"), "--bits", "2,4,8", "--mode", "dense")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    r = _cli("-m", "tflm_port.convert", str(p), str(tmp_path / "o.tflite"), "--bits", "4,4,8")
    assert r.returncode == 0 and (tmp_path / "o.tflite").exists()


def test_export_c_array_and_vectors(tmp_path, src):
    data = convert(src["567"], [5, 6, 7])
    hp, cp = write_c_array(data, "kws_model", tmp_path)
    text = cp.read_text()
    assert "alignas(16) const unsigned char kws_model[]" in text
    assert f"kws_model_len = {len(data)};" in text
    assert parse_c_array(text) == data
    assert "extern const unsigned char kws_model[];" in hp.read_text()
    ref = Reference.from_bytes(data)
    vp = write_test_vectors(ref, tmp_path / "v.sktv", n=50)
    tv = read_test_vectors(vp.read_bytes())
    assert tv["inputs"].shape == (50, 21) and tv["outputs"].shape == (50, 3)
    np.testing.assert_array_equal(ref.run(tv["inputs"]), tv["outputs"])
    raw = vp.read_bytes()
    assert raw[:4] == b"SKTV" and int.from_bytes(raw[6:8], "little") == 40
    with pytest.raises(UserError):
        read_test_vectors(raw[:-1])


def test_export_cli(tmp_path, src):
    p = tmp_path / "model-1.tflite"
    p.write_bytes(convert(src["448"], [4, 4, 8]))
    r = _cli("-m", "tflm_port.export", str(p), str(tmp_path / "out"), "--vectors", "20")
    assert r.returncode == 0, r.stderr
    assert parse_c_array((tmp_path / "out" / "model_1.c").read_text()) == p.read_bytes()
    assert (tmp_path / "out" / "model_1.sktv").exists()
