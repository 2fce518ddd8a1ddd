"""The board list has one source, tflm_port/board_table.py: every Python user (firmware tests,
benchmarks, converter targets, runners, flash tool, charts) reads its boards, QEMU command lines,
kernel families, UART capability and image paths from there. The check is grep-like, on the syntax
tree of every Python file of the project, as test_architecture.py does for the class ids:

* no literal list, tuple, set or dict names two or more boards (a hand-kept board list or a table of
  board properties). One board named alone is a choice (the board a test or a quick run uses), not a
  list. A dict keyed by boards whose values are all numbers is a table of figures (external anchors,
  targets), not of board properties, and is allowed;
* no QEMU command line spells a machine or CPU (``"-M", "<name>"`` / ``"-cpu", "<name>"``);
* no image path names a board's build folder (``"mps2-an386/kws_runner.elf"``, ``BUILD / "a64" / ...``).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from tflm_port import board_table as bt

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("basics", "data_scripts", "training", "tflm_port", "bench", "firmware", "tests")
HOME = ROOT / "tflm_port" / "board_table.py"

BOARD_NAMES = set(bt.BOARDS) | set(bt.UART) | set(bt.UART_ONLY)
# build folders under firmware/build/ that hold a board's images (the AArch64 kernel bench: a64/)
BUILD_DIRS = {v.make_target for v in bt.BOARDS.values()} | BOARD_NAMES | {"a64", "aarch64"}
QEMU_FLAGS = {"-M", "-cpu"}
IMAGE_PATH = re.compile(r"(?:^|/)(?:%s)/kws_\w+" % "|".join(sorted(map(re.escape, BUILD_DIRS), key=len, reverse=True)))


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_figure(node) -> bool:
    """A number, None, or a tuple of them (a figure, or one figure per bit width)."""
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _is_figure(node.operand)
    return isinstance(node, ast.Tuple) and all(map(_is_figure, node.elts))


def violations(path: Path, src: str) -> list[str]:
    tree = ast.parse(src)
    docs = _docstrings(tree)
    out = []
    where = lambda node, what: out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {what}")  # noqa: E731
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
            items = (node.keys + node.values) if isinstance(node, ast.Dict) else node.elts
            named = {s for s in map(_str, items) if s in BOARD_NAMES}
            figures = isinstance(node, ast.Dict) and all(map(_is_figure, node.values))
            if len(named) >= 2 and not figures:
                where(node, f"boards listed by hand: {sorted(named)}")
            if isinstance(node, (ast.List, ast.Tuple)):
                for a, b in zip(node.elts, node.elts[1:]):
                    if _str(a) in QEMU_FLAGS and _str(b) is not None:
                        where(node, f"QEMU {_str(a)} {_str(b)} spelled by hand")
        s = _str(node)
        if s is not None and id(node) not in docs and IMAGE_PATH.search(s):
            where(node, f"image path by hand: {s!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if _str(side) in BUILD_DIRS:
                    where(node, f"image path by hand: ... / {_str(side)!r}")
    return out


def _sources():
    for folder in FOLDERS:
        for p in sorted((ROOT / folder).rglob("*.py")):
            if p != HOME and "build" not in p.relative_to(ROOT).parts:
                yield p


def test_boards_are_named_in_one_place():
    found = [v for p in _sources() for v in violations(p, p.read_text())]
    assert not found, "boards named outside tflm_port/board_table.py:\n" + "\n".join(found)


def test_the_check_catches_each_kind():
    """Each form the rule forbids is caught; one board alone and a table of figures are not."""
    fake = ROOT / "tests" / "fake.py"
    src = '\n'.join([
        'BOARDS = ["mps2-an386", "mps3-an547"]',
        'TWIN = {"netduinoplus2": "mps2-an386"}',
        'cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53"]',
        'img = "aarch64-virt/kws_runner.elf"',
        'elf = BUILD / "a64" / "kws_kbench_v80.elf"',
        'ok1 = run_stream("mps2-an386", model)',
        'ok2 = {"mps2-an386": 490630, "mps3-an547": (1, None)}',
        'ok3 = ["qemu-system-arm", "-M", board]',
    ])
    got = violations(fake, src)
    lines = sorted({int(v.split(":")[1]) for v in got})
    assert lines == [1, 2, 3, 4, 5], got
    assert sum("QEMU" in v for v in got) == 2, got


def test_table_is_consistent():
    """What the table derives: every family has kernels, the UART-only boards reuse an emulated board's
    build, the generated make fragment is current, the converter knows every board as a target."""
    from tflm_port.convert import TARGETS
    from tflm_port.layout_table import ISA_LAYOUTS

    assert all(v.family in ISA_LAYOUTS for v in bt.BOARDS.values())
    for b in bt.uart_boards():
        twin = bt.semihosted_twin(b)
        assert twin in bt.BOARDS and bt.BOARDS[twin].cortex_m, b
    assert set(TARGETS) == BOARD_NAMES | {"generic"}
    assert bt.per_family() == [b for b in bt.BOARDS if b != "mps2-an500"]
    assert bt.main(["--check"]) == 0
    mk = (ROOT / "firmware" / "boards_gen.mk").read_text()
    assert f"UART_BOARDS := {' '.join(bt.uart_boards())}" in mk


# ----------------------------------------------------------------------------- the make files
MAKE_GENERATED = ROOT / "firmware" / "boards_gen.mk"
_MAKE_DEFAULT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*\?=\s*[\w.-]+\s*$")  # BOARD ?= <board>: a default, a choice


def make_violations(name: str, text: str) -> list[str]:
    """'file:line: what' for every board name or -mcpu= flag in a make file's code (comments and a
    one-board default such as ``BOARD ?= netduinoplus2`` aside): boards_gen.mk is where they go."""
    words = sorted(BOARD_NAMES, key=len, reverse=True)
    board = re.compile(r"(?<![A-Za-z0-9])(?:%s)(?![A-Za-z0-9])" % "|".join(map(re.escape, words)))
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if not code.strip() or _MAKE_DEFAULT.match(code):
            continue
        for m in board.finditer(code):
            out.append(f"{name}:{i}: board {m.group(0)} named by hand")
        if "-mcpu=" in code:
            out.append(f"{name}:{i}: -mcpu= spelled by hand")
    return out


def _make_files():
    fw = ROOT / "firmware"
    for p in sorted([*fw.rglob("*.mk"), *fw.rglob("Makefile")]):
        if p != MAKE_GENERATED and "build" not in p.relative_to(fw).parts:
            yield p


def test_make_files_name_no_board():
    """Every board-specific make variable (CPU_, OPT_ISA_, SPARSE_ISA_, UART_LIB_, UART_ARENA_, the
    AArch64 levels' -mcpu) comes from boards_gen.mk; the hand-written make files only iterate."""
    files = list(_make_files())
    assert len(files) >= 6, files
    found = [v for p in files for v in make_violations(str(p.relative_to(ROOT)), p.read_text())]
    assert not found, "boards named in make files outside firmware/boards_gen.mk:\n" + "\n".join(found)


def test_make_check_catches_each_kind():
    text = "\n".join([
        "UART_LIB_mps2-an386 := $(BUILD)/mps2-an386/libkws.a",
        "\t$(A64_CC) $(FLAGS) -mcpu=cortex-a76 -o $@",
        "kbench-aarch64-cortex-a53: x",
        "# make -C firmware mps2-an386   one board (a comment)",
        "BOARD ?= netduinoplus2",
        "$(foreach b,$(CM_BOARDS),$(eval OPT_SRC_$(b) := $(OPT_ISA_$(b))))",
        "HDRS := boards/common/cortex_m/*.h",
    ])
    got = make_violations("x.mk", text)
    assert sorted({int(v.split(":")[1]) for v in got}) == [1, 2, 3], got
    assert sum("mps2-an386" in v for v in got) == 2, got


def test_generated_make_fragment_follows_the_table():
    """UART_LIB_<board> is the semihosted twin's libkws.a, UART_ARENA_<board> the table's arena, and each
    AArch64 ISA level is built with its core's -mcpu (as the QEMU runs of that level use)."""
    mk = MAKE_GENERATED.read_text()
    for b in bt.uart_boards():
        assert f"UART_LIB_{b} = $(BUILD)/{bt.semihosted_twin(b)}/libkws.a" in mk
        assert f"UART_ARENA_{b} := {bt.UART[b].arena}" in mk
    for v in bt.BOARDS.values():
        if not v.cortex_m:
            assert f"A64_CPU_{v.a64_level} := -mcpu={v.qemu_cpu}" in mk
            assert v.kbench_image.endswith(f"_{v.a64_level}.elf")
    assert f"A64_LEVELS := {' '.join(bt.a64_levels())}" in mk
