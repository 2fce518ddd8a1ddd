"""Self-contained firmware images for dev kits: build them, run them under QEMU, flash them.

    python -m tflm_port.flash RUN_DIR --board netduinoplus2 [--audio file.wav] [--threshold T]
                              [--vectors 20] [--out DIR] [--dry-run]
    make flash BOARD=netduinoplus2 RUN=runs/<qat run> [AUDIO=file.wav] [THRESHOLD=0.6]

The image has no semihosting: the model and the test vectors (or the audio) are linked into flash
(firmware/boards.mk), results go to the board's UART, and the instruction/cycle counter is DWT
CYCCNT where it counts (silicon) or SysTick (QEMU). With ``--audio`` it is the streaming loop
(kws_stream: front end + model + detection over the linked audio, one ``DET`` line per detection);
without, the self-test (kws_selftest: ``--vectors`` test vectors made by tflm_port.reference from
the model, one ``OUT`` line per vector, then ``PASS n/n`` or ``FAIL``). The model is re-stored for the
board's optimized kernels (tflm_port.convert.retarget), as tflm_port.deploy does.

Outputs: OUT/kws_<app>.elf, .bin, .hex (+ .map); then the standard flashing command of the board is
printed, and run when its tool (st-flash, openocd, pyocd) is installed, unless ``--dry-run``. The
same .elf is what the emulator tests run: ``qemu-system-arm -M <board> -nographic -kernel <elf>``.
A model or audio too large for the board stops the build with one line saying by how much.
"""
from __future__ import annotations

import argparse
import os
import re
import select
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from basics.atomic import atomic_write_bytes
from basics.errors import UserError, cli_main
from tflm_port.board_table import UART, UartBoard
from tflm_port.convert import retarget
from tflm_port.export import make_test_vectors, pack_test_vectors
from tflm_port.firmware_runner import check_wav, decimal_arg, deployable_model, model_metadata, threshold_arg
from tflm_port.reference import Reference

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
ICOUNT = ["-icount", "shift=0,align=off,sleep=off"]


# the UART boards, their memory and flashing tools: tflm_port/board_table.py
BOARDS = UART
DET_RE = re.compile(r"^DET end_sample=(\d+) time_s=([\d.]+) keyword=(\S*) score=([\d.]+)$", re.M)
OUT_RE = re.compile(r"^OUT (\d+) ([0-9a-f]*)$", re.M)
KV_LINE = re.compile(r"^(SELFTEST|STREAM) (.*)$", re.M)
VERDICT_RE = re.compile(r"^(PASS|FAIL) (\d+)/(\d+)", re.M)
EXIT_RE = re.compile(r"^EXIT (-?\d+)$", re.M)


def board(name: str) -> UartBoard:
    if name not in BOARDS:
        raise UserError(f"unknown board {name!r}; the UART images exist for {', '.join(BOARDS)}")
    return BOARDS[name]


# --------------------------------------------------------------------------- build

def _plain_path(p: Path, what: str) -> str:
    s = str(Path(p).resolve())
    if re.search(r"[\s,'\"$]", s):
        raise UserError(f"{p}: {what} path must not contain spaces, commas, quotes or $ (make cannot pass it)")
    return s


def build_image(board_name: str, model: Path, data: Path, out_dir: Path, app: str = "selftest",
                threshold: float = 0.5, smoothing: int = 10, refractory_s: float = 1.0, quiet: bool = False,
                arena: int | None = None) -> Path:
    """make the UART image (app "selftest": data = SKTV vectors; "stream": data = WAV audio) into out_dir;
    returns the .elf. A build that fails (e.g. the image does not fit) raises UserError with make's line."""
    board(board_name)
    for tool in ("make", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found: install gcc-arm-none-eabi and libnewlib-arm-none-eabi (make setup)")
    out_dir.mkdir(parents=True, exist_ok=True)
    var = {"selftest": "VECTORS", "stream": "AUDIO"}[app]
    args = ["make", "-C", str(FW), "-j2", f"uart-{app}", f"BOARD={board_name}", f"MODEL={_plain_path(model, 'model')}",
            f"{var}={_plain_path(data, 'data')}", f"OUT={_plain_path(out_dir, 'output')}"]
    if app == "stream":
        args += [f"THRESHOLD={decimal_arg(threshold)}", f"SMOOTHING={int(smoothing)}", f"REFRACTORY={decimal_arg(refractory_s)}"]
    if quiet:
        args.append("QUIET=1")
    if arena:
        args.append(f"ARENA={int(arena)}")
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("make")]
        fit = [ln for ln in lines if "does not fit" in ln or "no such file" in ln or "not a UART board" in ln]
        raise UserError((fit or lines or [f"make uart-{app} failed"])[-1])
    return out_dir / f"kws_{app}.elf"


def image_memory(elf: Path, board_name: str) -> dict:
    """Static flash and RAM of an image from its section headers, against the board's limits.
    flash_bytes = loadable sections in program memory (code, constants, model, data blobs, .data's
    initial values); ram_bytes = everything placed in the RAM regions (.data, .bss, stack, arena)."""
    b = board(board_name)
    out = subprocess.run(["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    flash = ram = 0
    for line in out.splitlines():
        p = line.split()
        if len(p) != 3 or not p[1].isdigit() or not p[0].startswith("."):
            continue
        name, size, addr = p[0], int(p[1]), int(p[2])
        if name.startswith((".debug", ".comment", ".ARM.attributes")) or size == 0:
            continue
        in_ram = any(o <= addr < o + n for o, n in b.ram)
        if in_ram:
            ram += size
        if (b.flash[0] <= addr < b.flash[0] + b.flash[1]) or name == ".data":
            flash += size
    return {"flash_bytes": flash, "ram_bytes": ram, "flash_limit_bytes": b.flash_limit,
            "ram_limit_bytes": b.ram_limit, "flash_region_bytes": b.flash[1],
            "ram_region_bytes": sum(n for _, n in b.ram)}


# --------------------------------------------------------------------------- run (QEMU)

def run_qemu(board_name: str, elf: Path, icount: bool = True, timeout: float = 300) -> str:
    """Run a UART image under qemu-system-arm (no semihosting: a BKPT would lock the core up); the
    console up to the board's "EXIT <code>" line, carriage returns removed. QEMU is stopped there."""
    board(board_name)
    if shutil.which("qemu-system-arm") is None:
        raise UserError("qemu-system-arm not found: install qemu-system-arm (make setup)")
    cmd = ["qemu-system-arm", "-M", board_name, "-nographic", "-monitor", "none", "-serial", "stdio"] + \
          (ICOUNT if icount else []) + ["-kernel", str(elf)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise UserError(f"{elf}: no EXIT line from {board_name} within {timeout:.0f} s; console ends: "
                                f"{buf[-200:].decode(errors='replace')!r}")
            r, _, _ = select.select([p.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break  # QEMU ended (e.g. lockup)
                buf += chunk
                if EXIT_RE.search(buf.decode(errors="replace").replace("\r", "")):
                    break
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
    return buf.decode(errors="replace").replace("\r", "")


def parse_console(text: str) -> dict:
    """OUT lines (bytes per vector), DET lines, the SELFTEST/STREAM summary, PASS/FAIL, exit code."""
    res = {"outputs": [bytes.fromhex(m.group(2)) for m in OUT_RE.finditer(text)],
           "detections": [{"end_sample": int(m.group(1)), "time_s": float(m.group(2)), "keyword": m.group(3),
                           "score": float(m.group(4))} for m in DET_RE.finditer(text)],
           "summary": {}, "verdict": None, "exit": None}
    m = KV_LINE.search(text)
    if m:
        for kv in m.group(2).split():
            k, _, v = kv.partition("=")
            res["summary"][k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    m = VERDICT_RE.search(text)
    if m:
        res["verdict"] = (m.group(1), int(m.group(2)), int(m.group(3)))
    m = EXIT_RE.search(text)
    if m:
        res["exit"] = int(m.group(1))
    return res


# --------------------------------------------------------------------------- flash

def flash_commands(board_name: str, elf: Path) -> list[tuple[str, str]]:
    """[(tool, command)] for the board's programmers; [] when the board is programmed by copying a file."""
    b = board(board_name)
    f = {"elf": shlex.quote(str(elf)), "bin": shlex.quote(str(elf.with_suffix(".bin"))),
         "hex": shlex.quote(str(elf.with_suffix(".hex")))}
    return [(tool, cmd.format(**f)) for tool, cmd in b.commands]


def make_vectors(model: bytes, n: int, path: Path) -> Path:
    ref = Reference.from_bytes(model)
    x, y = make_test_vectors(ref, n)
    atomic_write_bytes(path, pack_test_vectors(x, y, ref.input_quant, ref.output_quant))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tflm_port.flash", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a quantized run directory (holds model.tflite)")
    ap.add_argument("--board", required=True, choices=sorted(BOARDS))
    ap.add_argument("--audio", type=Path, help="WAV 16 kHz mono 16-bit: build the streaming image over it")
    ap.add_argument("--threshold", type=float, help="detection threshold (default: the run's at 1 FA/h)")
    ap.add_argument("--vectors", type=int, default=20, help="test vectors in the self-test image (default 20)")
    ap.add_argument("--out", type=Path, help="output folder (default firmware/build/flash/<board>)")
    ap.add_argument("--dry-run", action="store_true", help="print the flashing command, do not run it")
    a = ap.parse_args(argv)
    b = board(a.board)
    model_path, cfg, report = deployable_model(a.run_dir)
    out = a.out or FW / "build" / "flash" / a.board
    out.mkdir(parents=True, exist_ok=True)
    data = retarget(model_path.read_bytes(), a.board, str(model_path))
    fw_model = out / "model.tflite"
    atomic_write_bytes(fw_model, data)
    if a.audio:
        check_wav(a.audio)
        md = model_metadata(data, str(model_path))
        th = a.threshold if a.threshold is not None else (report.get("stream") or {}).get("threshold_at_1fah")
        if th is None:
            raise UserError(f"{a.run_dir}: no report.json threshold to use; give --threshold")
        th = float(threshold_arg(float(th)))
        ev = cfg.get("eval", {})
        audio = out / "audio.wav"
        shutil.copyfile(a.audio, audio)
        elf = build_image(a.board, fw_model, audio, out, "stream", th, int(ev.get("smoothing_frames", 10)),
                          float(ev.get("refractory_s", 1.0)))
        what = f"streaming loop over {a.audio} (keyword {(md.get('labels') or ['', '', '?'])[2]!r}, threshold {th:g})"
    else:
        if a.vectors < 1:
            raise UserError(f"--vectors must be >= 1, got {a.vectors}")
        vec = make_vectors(data, a.vectors, out / "vectors.sktv")
        elf = build_image(a.board, fw_model, vec, out, "selftest")
        what = f"self-test over {a.vectors} test vectors"
    mem = image_memory(elf, a.board)
    print(f"{a.board} ({b.chip}): {what}")
    print(f"image: {elf} (+ .bin, .hex); flash {mem['flash_bytes']:,} of {mem['flash_limit_bytes']:,} bytes, "
          f"RAM {mem['ram_bytes']:,} of {mem['ram_limit_bytes']:,} bytes (static: .data + .bss + stack + arena)")
    print(f"emulate: qemu-system-arm -M {a.board} -nographic -kernel {elf}")
    cmds = flash_commands(a.board, elf)
    if not cmds:
        print("flash: " + b.note.format(elf=elf, bin=elf.with_suffix(".bin"), hex=elf.with_suffix(".hex")))
        return 0
    if b.note:
        print(f"note: {b.note}")
    for tool, cmd in cmds:
        print(f"flash ({tool}): {cmd}")
    if a.dry_run:
        return 0
    for tool, cmd in cmds:
        if shutil.which(tool):
            print(f"running: {cmd}")
            r = subprocess.run(cmd, shell=True)
            if r.returncode != 0:
                raise UserError(f"{tool} failed with exit {r.returncode} (is the board connected?)")
            return 0
    print(f"none of {', '.join(t for t, _ in cmds)} is installed: run one of the commands above "
          "(apt: stlink-tools or openocd; pip: pyocd)")
    return 0


if __name__ == "__main__":
    cli_main(main)()
