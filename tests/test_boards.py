"""Self-contained UART images (firmware/boards.mk, tflm_port.flash): no semihosting, model and test
vectors or audio linked into flash, results on the board's UART.

* mps2-an386, mps3-an547 and netduinoplus2 (STM32F405): the self-test image prints, byte for byte,
  the outputs the semihosted kws_runner writes for the same vectors (netduinoplus2 is a Cortex-M4
  like mps2-an386 and is compared with that board's runner), then "PASS n/n"; instruction counts
  agree with the semihosted runner's.
* netduinoplus2: the streaming image (C front end + 4-bit FFNN-250K on the DSP kernels +
  detection) over audio linked into flash detects what the Python pipeline detects on the same
  audio (training.pipeline.python_detections, as tests/test_stream_e2e.py), and the image fits the
  STM32F405 (1 MB flash, 128 KB SRAM used): a test fails if it would not.
* An audio file or arena too large for the board stops the build with one line saying by how much.
* `python -m tflm_port.flash` (make flash) writes .elf/.bin/.hex and prints the flashing commands.
* The Renode descriptions (firmware/renode/) name the same addresses and sizes as the board files.

QEMU runs these images with -serial stdio and without -semihosting-config (a BKPT would lock up).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tflm_port import board_table, flash
from basics.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
UART_BOARDS = board_table.uart_boards()
# the semihosted board whose kws_runner runs the same core and kernels as each UART board
SEMIHOSTED_TWIN = {b: board_table.semihosted_twin(b) for b in UART_BOARDS}

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="qemu-system-arm / gcc-arm-none-eabi not installed")


def _stream_audio(d: Path) -> np.ndarray:
    """~12 s: espeak-ng keyword and negative clips in noise (data_scripts.streaming), else synthetic."""
    if shutil.which("espeak-ng") is None:
        from bench.host import synth_stream

        return synth_stream(12.0, seed=7)
    from data_scripts.streaming import make_stream
    from data_scripts.synthetic import speak
    from basics.audio import load_audio, save_wav

    clips = []
    for i, (text, voice) in enumerate([("alexa", "en-us"), ("alexa", "en-gb+f3"), ("hello there", "en-us"),
                                       ("turn on the light", "en-us+f2")]):
        p = d / f"clip{i}.wav"
        save_wav(p, speak(text, voice))
        clips.append(p)
    make_stream(clips[:2], clips[2:], [], minutes=0.2, seed=3, out_wav=d / "s.wav", out_json=d / "s.json",
                keyword_gap_s=(2.5, 4.0))
    return load_audio(d / "s.wav")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """FFNN-250K, 4-bit QAT through the real conversion path with deployable metadata; images built."""
    from bench.streaming import demo_model
    from tflm_port.convert import retarget
    from basics.audio import save_wav

    r = subprocess.run(["make", "-C", str(FW), "-j2", *board_table.make_targets(SEMIHOSTED_TWIN.values())],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    d = tmp_path_factory.mktemp("boards")
    audio = _stream_audio(d)
    audio = np.concatenate([audio, audio[:97]])  # ends mid-hop
    wav = d / "audio.wav"
    save_wav(wav, audio)
    base = demo_model(audio, bits=4, hidden_layers=4, hidden_units=128)
    (d / "model.tflite").write_bytes(base)
    models = {}
    for b in UART_BOARDS:
        models[b] = d / f"model_{b}.tflite"
        models[b].write_bytes(retarget(base, b))  # each board is a converter target
    return {"dir": d, "audio": audio, "wav": wav, "models": models, "base": d / "model.tflite"}


def _semihosted_runner(board: str, model: Path, inputs: Path, out: Path, n: int) -> dict:
    semi = "enable=on,target=native," + ",".join("arg=" + str(a) for a in ["kws_runner", model, inputs, out, n])
    r = subprocess.run(["qemu-system-arm", "-M", board, "-nographic"] + flash.ICOUNT +
                       ["-semihosting-config", semi, "-kernel", str(FW / "build" / board / "kws_runner.elf")],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"KWS status=(\d+) inferences=(\d+) instr_first=(\d+)", r.stdout + r.stderr)
    assert r.returncode == 0 and m, (r.stdout + r.stderr)[-1000:]
    return {"inferences": int(m.group(2)), "instr_first": int(m.group(3))}


@pytest.mark.parametrize("board", UART_BOARDS)
def test_uart_selftest_equals_semihosted_runner(setup, board, tmp_path):
    n = 24
    model = setup["models"][board]
    vec = flash.make_vectors(model.read_bytes(), n, tmp_path / "v.sktv")
    elf = flash.build_image(board, model, vec, tmp_path / "img", "selftest")
    text = flash.run_qemu(board, elf)
    res = flash.parse_console(text)
    assert res["verdict"] == ("PASS", n, n) and res["exit"] == 0, text[-1500:]
    s = res["summary"]
    assert s["board"] == board and s["vectors"] == n and s["counter"] == "instructions", s
    assert s["opt_ops"] >= 1, s  # the board's optimized kernels ran
    # the same inputs through the semihosted runner of the same core: identical output bytes
    raw = vec.read_bytes()
    hdr, il, ol = 40, int.from_bytes(raw[12:16], "little"), int.from_bytes(raw[16:20], "little")
    inputs = tmp_path / "in.bin"
    inputs.write_bytes(raw[hdr:hdr + n * il])
    out = tmp_path / "out.bin"
    twin = SEMIHOSTED_TWIN[board]
    st = _semihosted_runner(twin, model, inputs, out, n)
    assert st["inferences"] == n
    assert b"".join(res["outputs"]) == out.read_bytes()
    assert b"".join(res["outputs"]) == raw[hdr + n * il:]  # and the expected (tflm_port.reference) bytes
    # counts: netduinoplus2's SysTick (168 MHz in QEMU) converts to the same instruction count as the
    # mps2-an386 runner's (25 MHz) on the same kernels, within the tick resolution and the harness code
    assert abs(s["first"] - st["instr_first"]) <= 0.002 * st["instr_first"] + 50, (s["first"], st["instr_first"])


@pytest.fixture(scope="module")
def stream_image(setup):
    d = setup["dir"] / "stream"
    th = _threshold(setup)
    elf = flash.build_image("netduinoplus2", setup["models"]["netduinoplus2"], setup["wav"], d, "stream", th, 10, 1.0)
    text = flash.run_qemu("netduinoplus2", elf, timeout=300)
    return elf, th, flash.parse_console(text), text


def _threshold(setup) -> float:
    from training.pipeline import python_detections

    py = python_detections(setup["models"]["netduinoplus2"].read_bytes(), setup["audio"], 1.0)
    return float(np.floor(np.quantile(py["smoothed"], 0.97) * 100) / 100)


def test_netduinoplus2_stream_detects_like_python(setup, stream_image):
    from tflm_port.firmware_runner import run_stream, same_detections
    from training.pipeline import python_detections

    elf, th, res, text = stream_image
    assert res["exit"] == 0 and res["summary"].get("status") == 0, text[-1500:]
    audio = setup["audio"]
    s = res["summary"]
    assert s["hops"] == len(audio) // 160
    py = python_detections(setup["models"]["netduinoplus2"].read_bytes(), audio, th, 10, 1.0, features="mirror")
    print(f"netduinoplus2: {len(audio) / 16000:.1f} s, threshold {th}, {len(res['detections'])} detections at "
          f"{[x['time_s'] for x in res['detections']]}; per hop {s['loop_instr'] / s['hops']:,.0f} instructions")
    assert s["decisions"] == len(py["smoothed"])
    assert len(res["detections"]) >= 2
    assert same_detections(res["detections"], py["detections"])
    # the semihosted kws_stream of the same core (mps2-an386) on the same files prints the same DET lines
    semi = run_stream("mps2-an386", setup["models"]["netduinoplus2"], setup["wav"], th, 10, 1.0, icount=True)
    assert semi.returncode == 0, semi.text[-1000:]
    det = [ln for ln in text.splitlines() if ln.startswith("DET ")]
    assert det == [ln for ln in semi.text.splitlines() if ln.startswith("DET ")]
    for k in ("hops", "frames", "decisions", "detections", "arena"):
        assert s[k] == semi.summary[k], k
    assert abs(s["loop_instr"] - semi.summary["loop_instr"]) <= 0.002 * semi.summary["loop_instr"]


def test_netduinoplus2_image_fits_stm32f405(stream_image):
    elf, _, res, _ = stream_image
    mem = flash.image_memory(elf, "netduinoplus2")
    print(mem)
    assert mem["flash_limit_bytes"] == 1024 * 1024 and mem["ram_limit_bytes"] == 192 * 1024
    assert mem["flash_bytes"] <= mem["flash_limit_bytes"], mem
    assert mem["ram_bytes"] <= 128 * 1024, mem  # the image uses the 128 KB SRAM only (no CCM in QEMU 7.2)
    # what ran fits what was reserved: arena and stack high-water marks
    syms = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True).stdout
    arena = int(re.search(r"^[0-9a-f]+ ([0-9a-f]+) [bBdD] arena$", syms, re.M).group(1), 16)
    assert res["summary"]["arena"] <= arena
    assert 256 <= res["summary"]["stack"] <= 16 * 1024  # painted and counted (board_stack_used), within the reserve


def test_too_large_audio_stops_the_build_with_one_line(setup, tmp_path):
    from basics.audio import save_wav

    model = setup["models"]["netduinoplus2"]
    small = tmp_path / "small.wav"
    save_wav(small, np.zeros(16000, np.float32))
    elf = flash.build_image("netduinoplus2", model, small, tmp_path / "ok", "stream")
    used = flash.image_memory(elf, "netduinoplus2")["flash_bytes"]
    big = tmp_path / "big.wav"
    save_wav(big, np.zeros(16000 * 40, np.float32))  # 40 s: 1.28 MB of PCM
    over = used + big.stat().st_size - small.stat().st_size - 1024 * 1024
    r = subprocess.run(["make", "-C", str(FW), "uart-stream", "BOARD=netduinoplus2", f"MODEL={model}", f"AUDIO={big}",
                        f"OUT={tmp_path / 'big'}"], capture_output=True, text=True)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if "does not fit" in ln]
    assert len(lines) == 1, r.stderr
    m = re.search(r"needs (\d+) bytes more FLASH than the board has", lines[0])
    assert m and abs(int(m.group(1)) - over) <= 32, (lines[0], over)
    assert not (tmp_path / "big" / "kws_stream.elf").exists()
    with pytest.raises(UserError, match=r"netduinoplus2: kws_stream.elf does not fit: needs \d+ bytes more FLASH than the board has"):
        flash.build_image("netduinoplus2", model, big, tmp_path / "big2", "stream")
    # an arena larger than the SRAM: the RAM region, by how much
    with pytest.raises(UserError, match=r"does not fit: needs \d+ bytes more SRAM than the board has"):
        flash.build_image("netduinoplus2", model, small, tmp_path / "arena", "stream", arena=160 * 1024)


def test_flash_cli_writes_images_and_prints_commands(setup, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(setup["base"], run / "model.tflite")
    out = tmp_path / "out"
    assert flash.main([str(run), "--board", "netduinoplus2", "--vectors", "6", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    elf = out / "kws_selftest.elf"
    for suffix in (".elf", ".bin", ".hex"):
        assert elf.with_suffix(suffix).stat().st_size > 0
    assert elf.with_suffix(".hex").read_text().startswith(":")
    assert f"st-flash --reset write {elf.with_suffix('.bin')} 0x08000000" in text
    assert "openocd -f interface/stlink.cfg -f target/stm32f4x.cfg" in text and "pyocd flash" in text
    res = flash.parse_console(flash.run_qemu("netduinoplus2", elf))
    assert res["verdict"] == ("PASS", 6, 6)
    # the .bin is the flash image from 0x08000000: starts with the vector table (initial SP, reset vector)
    b = elf.with_suffix(".bin").read_bytes()
    sp, reset = int.from_bytes(b[0:4], "little"), int.from_bytes(b[4:8], "little")
    assert 0x20000000 < sp <= 0x20020000 and 0x08000000 < reset < 0x08000000 + len(b) and reset & 1
    with pytest.raises(UserError, match="no such run directory"):
        flash.main([str(tmp_path / "nowhere"), "--board", "netduinoplus2", "--dry-run"])


def test_renode_descriptions_match_the_board_files():
    """firmware/renode: the .repl addresses/sizes are the ones the images are linked and built for."""
    rd = FW / "renode"
    for board, uart in (("netduinoplus2", "0x40011000"), ("mps2-an386", "0x40004000")):
        repl = (rd / f"{board}.repl").read_text()
        cfg = (FW / "boards" / board / "board_config.h").read_text()
        assert re.search(rf"#define BOARD_UART_BASE {uart}u", cfg)
        assert re.search(rf"@ sysbus <?{uart}", repl), board
        ld = (FW / "boards" / board / "linker.ld").read_text()
        for origin, length in re.findall(r"ORIGIN = (0x[0-9A-Fa-f]+), LENGTH = (\w+)", ld):
            size = int(length[:-1]) * {"K": 1024, "M": 1 << 20}[length[-1]]
            if board == "netduinoplus2" and origin == "0x10000000":
                continue  # CCM: declared in linker.ld, unused
            m = re.search(rf"@ sysbus {origin}\s*\n\s*size: (0x[0-9A-Fa-f]+)", repl)
            assert m and int(m.group(1), 16) == size, (board, origin)
        resc = (rd / f"{board}.resc").read_text()
        assert f"{board}.repl" in resc and "sysbus LoadELF" in resc
        robot = (rd / f"{board}.robot").read_text()
        assert "Wait For Line On Uart" in robot and "PASS" in robot


def test_uart_selftest_reports_fail(setup, tmp_path):
    """A wrong expected output gives FAIL k/n with the first mismatching vector and exit 1; a broken
    model gives FAIL status=<kws_status> and that exit code."""
    model = setup["models"]["netduinoplus2"]
    n = 6
    vec = flash.make_vectors(model.read_bytes(), n, tmp_path / "v.sktv")
    raw = bytearray(vec.read_bytes())
    il, ol = int.from_bytes(raw[12:16], "little"), int.from_bytes(raw[16:20], "little")
    raw[40 + n * il + 3 * ol + 1] ^= 0x01  # vector 3's second output byte
    bad = tmp_path / "bad.sktv"
    bad.write_bytes(bytes(raw))
    text = flash.run_qemu("netduinoplus2", flash.build_image("netduinoplus2", model, bad, tmp_path / "a", "selftest"))
    res = flash.parse_console(text)
    assert res["verdict"] == ("FAIL", n - 1, n) and res["exit"] == 1
    assert f"FAIL {n - 1}/{n} first_mismatch=3" in text
    assert len(res["outputs"]) == n
    broken = tmp_path / "broken.tflite"
    b = bytearray(model.read_bytes())
    b[4:8] = b"XXXX"  # file identifier
    broken.write_bytes(bytes(b))
    text = flash.run_qemu("netduinoplus2", flash.build_image("netduinoplus2", broken, vec, tmp_path / "b", "selftest"))
    assert "FAIL status=3" in text and flash.parse_console(text)["exit"] == 3, text
