"""The C streaming front end (firmware/frontend) against its Python mirror and the LFBE definition.

* training/frontend_mirror.py == training/features.lfbe within a tolerance (synthetic and real audio):
  max |diff| of the log-mel features, and the int8 model inputs differing by > 1 LSB (none allowed);
* the C front end == the mirror bit for bit (log-mel float32 and int8 inputs), on the host build and
  under QEMU on the Cortex-M4 and M55;
* the generated C tables are up to date.
"""
from __future__ import annotations

import os
import subprocess
import shutil
from pathlib import Path

import numpy as np
import pytest

from tflm_port import board_table
from training.features import Normalizer, lfbe
from firmware.tools.gen_frontend_tables import main as tables_main
from training.frontend_mirror import log_f32, lfbe_mirror, pcm_to_float, quantize_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SUBKWS_SHARED_DATA", ROOT.parent / "shared" / "data"))
LOG_TOL = 5e-4  # max |C/mirror log-mel - lfbe| seen: 1.3e-5 synthetic, 1.25e-4 real (quiet bins of loud frames:
# float32 FFT rounding relative to a tiny energy; numpy's FFT rounds differently) 


def synthetic_pcm(seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    from bench.host import synth_stream

    rng = np.random.default_rng(seed)
    x = synth_stream(seconds, seed=seed)
    t = np.arange(len(x)) / 16000
    x[: len(x) // 4] += 0.3 * np.sin(2 * np.pi * 1000 * t[: len(x) // 4])  # a tone
    x[len(x) // 2: len(x) // 2 + 8000] = 0.0  # digital silence
    x[-4000:] = rng.uniform(-1, 1, 4000)  # full-scale noise (clips)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    return np.concatenate([pcm, pcm[:97]])  # ends mid-hop


def real_pcm(seconds: float = 12.0) -> np.ndarray:
    import soundfile as sf

    folder = SHARED / "real" / "picovoice_wwb" / "alexa_dev"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing: real-audio check needs /work/shared/data (see its README)")
    parts, n = [], 0
    for f in sorted(folder.glob("*.flac")):
        x, sr = sf.read(str(f), dtype="int16")
        assert sr == 16000 and x.ndim == 1
        parts.append(x)
        n += len(x)
        if n > seconds * 16000:
            break
    return np.concatenate(parts)


def norm_params(feats):
    n = Normalizer.fit(feats)
    return n.mean, n.std


def agreement(pcm):
    x = pcm_to_float(pcm)
    m, r = lfbe_mirror(x), lfbe(x)
    mean, std = norm_params(r)
    s, zp = 0.0421, -7  # a typical input scale / zero point
    qm = quantize_frames(m, mean, std, s, zp).astype(int)
    from tflm_port.reference import round_half_away  # the reference's quantize_input arithmetic

    y = Normalizer(mean=mean, std=std)(r)
    qr = np.clip(round_half_away(y / np.float32(s)) + zp, -128, 127).astype(int)
    d = np.abs(qm - qr)
    return float(np.abs(m - r).max()), float((d > 0).mean()), float((d > 1).mean())


def test_tables_up_to_date():
    assert tables_main(["--check-tables"]) == 0


def test_tables_symmetric_as_the_c_split_assumes():
    """kws_frontend.c computes power bins k and 256 - k together and the FFT's W = 1 butterflies without
    multiplying: bit-exact with the mirror only while cos[256-k] == -cos[k], sin[256-k] == sin[k]
    (k != 128), cos[0] == 1, sin[0] == 0 hold exactly in the float32 tables."""
    from training.frontend_mirror import tables

    t = tables()
    k = np.arange(1, 256)
    k = k[k != 128]
    assert np.array_equal(t["cos"][256 - k], -t["cos"][k]) and np.array_equal(t["sin"][256 - k], t["sin"][k])
    assert t["cos"][0] == 1.0 and t["sin"][0] == 0.0


def test_log_f32_accuracy():
    x = np.exp(np.linspace(np.log(1e-6), np.log(1e7), 200_001)).astype(np.float32)
    err = np.abs(log_f32(x).astype(np.float64) - np.log(x.astype(np.float64)))
    assert err.max() < 2e-6, err.max()


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_mirror_agrees_with_lfbe(source):
    pcm = synthetic_pcm() if source == "synthetic" else real_pcm()
    max_diff, frac_1lsb, frac_2lsb = agreement(pcm)
    print(f"{source}: max |log-mel diff| {max_diff:.2e}, int8 inputs differing: {frac_1lsb:.2e} by >= 1 LSB, "
          f"{frac_2lsb:.2e} by > 1 LSB")
    assert max_diff < LOG_TOL
    assert frac_2lsb == 0.0
    assert frac_1lsb < 1e-3


def test_quantize_frames_equals_reference_quantize_input():
    from tflm_port.reference import round_half_away

    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 64)).astype(np.float32) * 3
    f[0, :8] = [0.5, -0.5, 1.5, -1.5, 0.49999997, -0.49999997, 1e30, -1e30]
    mean, std = np.zeros(64), np.ones(64)
    for s, zp in [(0.05, 0), (0.0421, -7), (1.0, 3)]:
        q = quantize_frames(f, mean, std, s, zp)
        ref = np.clip(round_half_away(f / np.float32(s)) + zp, -128, 127).astype(np.int8)
        assert np.array_equal(q, ref)


# --------------------------------------------------------------------------- C == mirror

BOARD_RUNS = ["host", *board_table.cortex_m_per_family()]


@pytest.fixture(scope="module")
def stream_model(tmp_path_factory):
    from bench.streaming import demo_model

    pcm = synthetic_pcm(4.0, seed=5)
    d = tmp_path_factory.mktemp("fe")
    model = d / "m.tflite"
    model.write_bytes(demo_model(pcm_to_float(pcm), bits=8, hidden_layers=1, hidden_units=16))
    return model


@pytest.mark.parametrize("source", ["synthetic", "real"])
@pytest.mark.parametrize("board", BOARD_RUNS)
def test_c_frontend_bit_exact_with_mirror(stream_model, board, source, tmp_path):
    from tflm_port.firmware_runner import model_metadata, run_stream
    from tflm_port.reference import Reference
    from basics.audio import save_wav

    tool = "gcc" if board == "host" else "qemu-system-arm"
    if shutil.which(tool) is None or (board != "host" and shutil.which("arm-none-eabi-gcc") is None):
        pytest.skip(f"{tool} / arm-none-eabi-gcc not installed")
    pcm = synthetic_pcm(seed=2) if source == "synthetic" else real_pcm(6.0)
    wav = tmp_path / "a.wav"
    save_wav(wav, pcm_to_float(pcm))
    frames = tmp_path / "frames.bin"
    r = run_stream(board, stream_model, wav, threshold=1.0, frames_out=frames, quiet=True, icount=False)
    assert r.returncode == 0, r.text
    assert r.summary["hops"] == len(pcm) // 160  # the partial last hop is dropped
    raw = np.fromfile(frames, np.uint8).reshape(-1, 64 * 4 + 64)
    c_lfbe = raw[:, :256].copy().view(np.float32)
    c_q = raw[:, 256:].copy().view(np.int8)
    x = pcm_to_float(pcm)[: 160 * (len(pcm) // 160)]
    m = lfbe_mirror(x)
    md = model_metadata(stream_model.read_bytes())
    ref = Reference.from_file(stream_model)
    s, zp = ref.input_quant
    q = quantize_frames(m, md["features"]["normalization"]["mean"], md["features"]["normalization"]["std"], s, zp)
    assert c_lfbe.shape == m.shape
    assert np.array_equal(c_lfbe.view(np.uint32), m.view(np.uint32)), np.abs(c_lfbe - m).max()
    assert np.array_equal(c_q, q)


def test_mirror_power_spectrum_matches_numpy():
    """The FFT path (256-point complex radix-2 + real split) against numpy's float64 rfft."""
    from training.features import hann
    from training.frontend_mirror import power_spectrum

    rng = np.random.default_rng(0)
    fr = rng.uniform(-1, 1, (20, 400)).astype(np.float32)
    pw = power_spectrum(fr)
    ref = np.abs(np.fft.rfft(fr.astype(np.float64) * hann(400), n=512)) ** 2
    assert np.abs(pw - ref).max() / ref.max() < 1e-5


QUANT_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "kws_frontend.h"
int main(int argc, char **argv)
{
    FILE *f = fopen(argv[1], "rb"), *o = fopen(argv[2], "wb");
    float v[4];
    int32_t zp;
    while (fread(v, 4, 4, f) == 4 && fread(&zp, 4, 1, f) == 1) {
        int8_t q = kws_quantize_feature(v[0], v[1], v[2], v[3], zp);
        fwrite(&q, 1, 1, o);
    }
    fclose(f);
    fclose(o);
    return 0;
}
"""


def test_c_quantize_feature_equals_mirror(tmp_path):
    """kws_quantize_feature (its integer fast path for |q| < 4096 and an int8 zero point, the roundf
    path otherwise) == quantize_frames byte for byte: exact halves, values next to them, huge values,
    NaN, zero points inside and outside the int8 range."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    rng = np.random.default_rng(3)
    q = np.concatenate([np.arange(-300, 300, 0.5), rng.normal(0, 60, 4000), rng.normal(0, 5000, 500),
                        [np.nextafter(np.float32(0.5), np.float32(0)), np.nextafter(np.float32(-0.5), np.float32(0)),
                         np.nextafter(np.float32(2.5), np.float32(9)), 4095.5, -4095.5, 4096.5, 1e30, -1e30, np.nan,
                         np.inf, -np.inf]]).astype(np.float32)
    cases = []
    for zp in (-7, 0, 127, -128, 300, -1000):
        for scale in (np.float32(1.0), np.float32(0.0421)):
            x = q * scale  # ((x - 0) / 1) / scale = q up to rounding
            cases.append((x, scale, zp))
    exe = tmp_path / "quant"
    src = tmp_path / "quant_main.c"
    src.write_text(QUANT_MAIN)
    fe = ROOT / "firmware" / "frontend"
    r = subprocess.run(["gcc", "-std=c99", "-O2", "-ffp-contract=off", f"-I{fe}", str(src),
                                      str(fe / "kws_frontend.c"), str(fe / "kws_frontend_tables.c"), "-lm", "-o", str(exe)],
                                     capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for x, scale, zp in cases:
        rec = np.zeros(len(x), dtype=[("x", "<f4"), ("m", "<f4"), ("s", "<f4"), ("sc", "<f4"), ("zp", "<i4")])
        rec["x"], rec["m"], rec["s"], rec["sc"], rec["zp"] = x, 0.0, 1.0, scale, zp
        inp, out = tmp_path / "in.bin", tmp_path / "out.bin"
        rec.tofile(inp)
        r = subprocess.run([str(exe), str(inp), str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        c = np.fromfile(out, np.int8)
        with np.errstate(invalid="ignore"):
            m = quantize_frames(x.reshape(-1, 1), np.zeros(1), np.ones(1), float(scale), zp).ravel()
        fin = np.isfinite(x)  # the mirror's arithmetic is undefined for inf / NaN (never a log-mel value)
        assert np.array_equal(c[fin], m[fin]), (zp, scale, x[fin][c[fin] != m[fin]][:5])
        assert (c[np.isnan(x)] == -128).all() and (c[x == np.inf] == 127).all() and (c[x == -np.inf] == -128).all()
