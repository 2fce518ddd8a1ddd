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
