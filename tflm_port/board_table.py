"""The boards, defined once (numbers and names only, no imports from the project): each emulated
board's core, its optimized kernel family (tflm_port/layout_table.py), how QEMU runs it and how the
firmware builds it. The converter's targets, the benchmarks and the firmware Makefile read it;
``firmware/boards_gen.mk`` is generated from it (like the front-end tables):

    python -m tflm_port.board_table --write     # regenerate firmware/boards_gen.mk
    python -m tflm_port.board_table --check     # exit 1 if the checked-in file is stale (tested)
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from basics.generated import write_or_check

MK = Path(__file__).resolve().parents[1] / "firmware" / "boards_gen.mk"


@dataclass(frozen=True)
class Board:
    core: str                 # the CPU, as the figures name it
    family: str               # optimized kernel family (layout_table.ISA_LAYOUTS)
    machine: str              # QEMU -M
    make_target: str          # firmware/Makefile target that builds its images (build/<make_target>/)
    isa: str                  # the kernel ISA as the figures' titles name it
    cpu_flags: str = ""       # Cortex-M compiler flags (the AArch64 images are built by their own rules)
    qemu_cpu: str = ""        # QEMU -cpu ("": the machine's own core)

    @property
    def cortex_m(self) -> bool:
        return bool(self.cpu_flags)

    @property
    def qemu(self) -> tuple:
        """The full-system emulator command without the image (and without -icount)."""
        exe = "qemu-system-arm" if self.cortex_m else "qemu-system-aarch64"
        return (exe, "-M", self.machine) + (("-cpu", self.qemu_cpu) if self.qemu_cpu else ())

    @property
    def compiler(self) -> str:
        return "arm-none-eabi-gcc" if self.cortex_m else "aarch64-linux-gnu-gcc"

    @property
    def a64_level(self) -> str:
        """The AArch64 ISA level its images are built for ("v80": armv8.0 NEON, "dotprod": armv8.2 dot
        product); "" for the Cortex-M boards. The make files build one image per level (A64_LEVELS)."""
        if self.cortex_m:
            return ""
        return "dotprod" if self.family == "neon_dotprod" else "v80"

    @property
    def runner_image(self) -> str:
        """The kws_runner image under firmware/build/ (the A76 runs the armv8.2 dot-product build)."""
        return f"{self.make_target}/kws_runner{'_dotprod' if self.a64_level == 'dotprod' else ''}.elf"

    @property
    def user_runner_image(self) -> str:
        """The Linux user-mode kws_runner under firmware/build/ that qemu-aarch64 runs (AArch64 boards only;
        the A76 runs the armv8.2 dot-product build)."""
        return f"aarch64/kws_runner{'_dotprod' if self.a64_level == 'dotprod' else ''}"  # the Linux build dir

    @property
    def reference_image(self) -> str:
        """The reference-kernels-only kws_runner image under firmware/build/."""
        return f"{self.make_target}/kws_runner_ref.elf"

    @property
    def kbench_image(self) -> str:
        """The kernel bench image under firmware/build/ (kernels/optimized.mk; AArch64: build/a64/)."""
        if self.cortex_m:
            return f"{self.make_target}/kws_kbench.elf"
        return f"a64/kws_kbench_{self.a64_level}.elf"

    @property
    def a4bench_image(self) -> str:
        """The SUB8_FC_A4 kernel bench image under firmware/build/ (firmware/a4.mk; AArch64: build/a64/)."""
        if self.cortex_m:
            return f"{self.make_target}/kws_a4bench.elf"
        return f"a64/kws_a4bench_{self.a64_level}.elf"

    @property
    def user_mode(self) -> tuple | None:
        """(qemu user-mode command, Linux image under firmware/build/) for the AArch64 cores: the tests'
        fast bit-exactness runs (no instruction counts); None for the Cortex-M boards."""
        return None if self.cortex_m else (("qemu-aarch64", "-cpu", self.qemu_cpu), "aarch64/kws_runner")

    @property
    def sparse_kernel(self) -> str:
        """The name the runtime reports for this board's optimized sparse kernel."""
        return "sparse_" + self.family.split("_")[0]

    @property
    def title(self) -> str:
        """How figures and charts title the board: "Cortex-M4 (mps2-an386, DSP)", "Cortex-A53 (NEON)"."""
        core = self.core.removesuffix("F")
        return f"{core} ({self.machine}, {self.isa})" if self.cortex_m else f"{core} ({self.isa})"


# the boards every figure and every firmware test runs on, in report order
BOARDS: dict[str, Board] = {
    "mps2-an386": Board("Cortex-M4F", "dsp", "mps2-an386", "mps2-an386", "DSP",
                        "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard"),
    "mps2-an500": Board("Cortex-M7", "dsp", "mps2-an500", "mps2-an500", "DSP",
                        "-mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard"),
    "mps3-an547": Board("Cortex-M55", "mve", "mps3-an547", "mps3-an547", "Helium",
                        "-mcpu=cortex-m55 -mfloat-abi=hard"),
    "aarch64-cortex-a53": Board("Cortex-A53", "neon", "virt", "aarch64-virt", "NEON", qemu_cpu="cortex-a53"),
    "aarch64-cortex-a76": Board("Cortex-A76", "neon_dotprod", "virt", "aarch64-virt", "NEON dot product",
                                qemu_cpu="cortex-a76"),
}
# boards with UART images only (firmware/boards.mk), and the emulated board whose build they reuse
UART_ONLY = {"netduinoplus2": ("Cortex-M4F", "dsp", "mps2-an386")}


@dataclass(frozen=True)
class UartBoard:
    """A board the self-contained UART images (firmware/boards.mk, tflm_port.flash) are built for."""
    chip: str
    flash: tuple[int, int]  # (origin, bytes) of the program memory the image uses
    ram: tuple[tuple[int, int], ...]  # (origin, bytes) of the RAM regions the image uses
    flash_limit: int  # the part's flash
    ram_limit: int  # the part's RAM (all of it, incl. CCM)
    commands: tuple[tuple[str, str], ...]  # (tool, command template: {elf} {bin} {hex})
    note: str = ""
    arena: int = 262144  # tensor arena reserved in the image (bytes; KWS_ARENA_SIZE, make ARENA=)


UART: dict[str, UartBoard] = {
    "mps2-an386": UartBoard(
        "Arm MPS2+ FPGA board with the AN386 image (Cortex-M4F, 25 MHz)",
        (0x0, 4 << 20), ((0x20000000, 4 << 20),), 4 << 20, 4 << 20, (),
        "MPS2+: copy {bin} to the board's USB mass-storage drive (SOFTWARE/) and name it in "
        "MB/HBI0263*/AN386/images.txt (IMAGE0ADDRESS: 0x00000000); console: UART0 on the board's USB serial port"),
    "mps3-an547": UartBoard(
        "Arm MPS3 FPGA board with the AN547 image (Corstone-300, Cortex-M55, 32 MHz)",
        (0x0, 512 * 1024), ((0x20000000, 512 * 1024), (0x31000000, 2 << 20)), 512 * 1024, (512 + 2048) * 1024, (),
        "MPS3: copy {bin} to the board's USB mass-storage drive (SOFTWARE/) and name it in "
        "MB/HBI0309*/AN547/images.txt (IMAGE0ADDRESS: 0x00000000); or run {elf} on Arm's Corstone-300 FVP "
        "(FVP_Corstone_SSE-300 -a {elf})"),
    "netduinoplus2": UartBoard(
        "STM32F405RG (Cortex-M4F, 168 MHz max; reset clock 16 MHz HSI)",
        (0x08000000, 1024 * 1024), ((0x20000000, 128 * 1024),), 1024 * 1024, 192 * 1024,
        (("st-flash", "st-flash --reset write {bin} 0x08000000"),
         ("openocd", "openocd -f interface/stlink.cfg -f target/stm32f4x.cfg -c \"program {elf} verify reset exit\""),
         ("pyocd", "pyocd flash --target stm32f405rgtx {hex}")),
        "console: USART1 TX=PA9 RX=PA10, 115200 8N1 (3.3 V USB-serial adapter); the image uses the 128 KB SRAM, "
        "the 64 KB CCM is left free (QEMU 7.2 does not model it)", arena=40960),
}

# kernel family -> (dense ISA file, sparse ISA file) under firmware/
FAMILY_SRC = {
    "dsp": ("kernels/dsp/kws_fully_connected_dsp.c", "kernels/dsp/kws_fully_connected_sparse_dsp.c"),
    "mve": ("kernels/mve/kws_fully_connected_mve.c", "kernels/mve/kws_fully_connected_sparse_mve.c"),
}


def cortex_m() -> list[str]:
    return [b for b, v in BOARDS.items() if v.cortex_m]


def aarch64() -> list[str]:
    return [b for b, v in BOARDS.items() if not v.cortex_m]


def per_family() -> list[str]:
    """The first board of each kernel family, in report order (the M7 runs the M4's kernels)."""
    return list({v.family: b for b, v in reversed(BOARDS.items())}.values())[::-1]


def first_of(family: str) -> str:
    """The first board (report order) whose optimized kernels are of this family."""
    return next(b for b, v in BOARDS.items() if v.family == family)


def cortex_m_per_family() -> list[str]:
    """The first Cortex-M board of each kernel family (the M4 for the DSP kernels, the M55 for MVE)."""
    return [b for b in per_family() if BOARDS[b].cortex_m]


def make_targets(boards) -> list[str]:
    """The firmware/Makefile targets that build these boards' images, each once, in order."""
    return list(dict.fromkeys(BOARDS[b].make_target for b in boards))


def uart_boards() -> list[str]:
    """The boards with self-contained UART images (firmware/boards.mk, tflm_port.flash)."""
    return list(UART)


def semihosted_twin(board: str) -> str:
    """The emulated board whose semihosted build runs the same core and kernels as a UART board."""
    return board if board in BOARDS else UART_ONLY[board][2]


def a64_levels() -> dict[str, str]:
    """AArch64 ISA level -> the compiler's -mcpu for it: the core of the first board of that level."""
    out: dict[str, str] = {}
    for v in BOARDS.values():
        if v.a64_level:
            out.setdefault(v.a64_level, f"-mcpu={v.qemu_cpu}")
    return out


def render_mk() -> str:
    out = ["# GENERATED by `python -m tflm_port.board_table --write` from tflm_port/board_table.py: do not edit.",
           "# The Cortex-M boards, their compiler flags and their optimized kernel files (firmware/Makefile).",
           f"CM_BOARDS := {' '.join(cortex_m())}"]
    for b in cortex_m():
        v = BOARDS[b]
        dense, sparse = FAMILY_SRC[v.family]
        out += [f"CPU_{b} := {v.cpu_flags}", f"OPT_ISA_{b} := {dense}", f"SPARSE_ISA_{b} := {sparse}"]
    levels = a64_levels()
    out += ["# The AArch64 ISA levels (one image each: build/a64/*_<level>.elf, libkws*.a) and the core each is tuned for.",
            f"A64_LEVELS := {' '.join(levels)}"]
    out += [f"A64_CPU_{lvl} := {flag}" for lvl, flag in levels.items()]
    out += ["# The boards with self-contained UART images (firmware/boards.mk): the compiler flags of a UART-only",
            "# board (its emulated twin's), the semihosted build's libkws.a each links, the arena reserved (bytes).",
            f"UART_BOARDS := {' '.join(uart_boards())}"]
    for b in uart_boards():
        twin = semihosted_twin(b)
        if b not in BOARDS:
            out.append(f"CPU_{b} := {BOARDS[twin].cpu_flags}")
        out += [f"UART_LIB_{b} = $(BUILD)/{twin}/libkws.a", f"UART_ARENA_{b} := {UART[b].arena}"]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    return write_or_check(argv, "tflm_port.board_table", __doc__.splitlines()[0], MK, render_mk)


if __name__ == "__main__":
    sys.exit(main())
