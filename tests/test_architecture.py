"""The import contract (pyproject.toml [tool.importlinter], docs/architecture.md): the layers import
one way and no package has an import cycle between its modules. ``lint-imports`` (import-linter,
pinned in the dev extras) checks it; the second test shows the check fails on a violation."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("basics", "data_scripts", "training", "tflm_port", "bench")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.is_file():
        pytest.fail(f"{exe}: import-linter is not installed (pip install -e '.[dev]')")
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_import_contract_kept():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", r.stdout)
    assert kept and int(kept.group(1)) >= 5 and kept.group(2) == "0", r.stdout[-2000:]


def test_import_contract_catches_a_violation(tmp_path):
    """A copy of the tree where a data source imports training's Config, the reference imports
    training and bench/records.py imports bench.run: lint-imports must fail and name the three imports."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.md"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "data_scripts" / "noise.py", "a") as fh:
        fh.write("\nfrom training.config import Config  # noqa: E402,F401\n")
    with open(tmp_path / "tflm_port" / "reference" / "exact.py", "a") as fh:
        fh.write("\nimport training.evaluate  # noqa: E402,F401\n")
    with open(tmp_path / "bench" / "records.py", "a") as fh:  # the records module importing the aggregator: a cycle
        fh.write("\nfrom bench import run  # noqa: E402,F401\n")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0
    assert "data_scripts.noise -> training.config" in r.stdout, r.stdout[-3000:]
    assert "tflm_port.reference.exact -> training.evaluate" in r.stdout, r.stdout[-3000:]
    assert "No cycles are allowed in bench." in r.stdout and ".records -> .run" in r.stdout, r.stdout[-3000:]


def test_class_ids_have_one_definition():
    """KEYWORD_CLASS is defined once in Python (basics.classes) and the firmware's copy agrees."""
    from basics.classes import KEYWORD_CLASS, class_names

    assert class_names("alexa")[KEYWORD_CLASS] == "alexa"
    header = (ROOT / "firmware" / "detect" / "kws_detect.h").read_text()
    m = re.search(r"#define KWS_DET_KEYWORD_CLASS (\d+)", header)
    assert m and int(m.group(1)) == KEYWORD_CLASS
    hits = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if re.search(r"^\s*KEYWORD_CLASS\s*=", p.read_text(), re.M)]
    assert [p.relative_to(ROOT).as_posix() for p in hits] == ["basics/classes.py"]


def test_imports_inside_functions_are_marked_lazy():
    """Imports belong at module top; one inside a function must say why it is lazy (a heavy or
    optional dependency) in a comment containing "lazy" on its line."""
    import ast

    unmarked = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            src = path.read_text()
            lines = src.split("\n")

            def walk(node, in_function):
                for child in ast.iter_child_nodes(node):
                    inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                    if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                        text = lines[child.lineno - 1] + lines[child.end_lineno - 1]
                        if "lazy" not in text:
                            unmarked.append(f"{path.relative_to(ROOT)}:{child.lineno}")
                    walk(child, inside)

            walk(ast.parse(src), False)
    assert not unmarked, "imports inside functions without a 'lazy' reason: " + ", ".join(unmarked)


def test_every_training_module_is_in_the_training_layers():
    """A training module left out of the training layers contract is unconstrained inside the package:
    each one (training/*.py but __init__) is named in exactly one layer."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c.get("containers") == ["training"])
    named = [m.strip() for layer in layers for m in layer.split("|")]
    modules = sorted(p.stem for p in (ROOT / "training").glob("*.py") if p.stem != "__init__")
    assert sorted(named) == modules, {"missing": sorted(set(modules) - set(named)),
                                      "not a module": sorted(set(named) - set(modules))}


def test_every_tflm_port_module_is_in_the_layers():
    """A tflm_port module in no layer is unconstrained: it could import training and be imported by it (the
    LSTM export did, unseen). Each module of tflm_port (the reference as one package) is named in the
    top-level layers contract."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    top = next(c for c in contracts if c["type"] == "layers" and "containers" not in c)
    named = {m.strip() for layer in top["layers"] for m in layer.split("|")}
    modules = {f"tflm_port.{p.stem}" for p in (ROOT / "tflm_port").glob("*.py") if p.stem != "__init__"}
    modules |= {f"tflm_port.{p.name}" for p in (ROOT / "tflm_port").iterdir() if (p / "__init__.py").is_file()}
    assert not modules - named, f"tflm_port modules in no layer: {sorted(modules - named)}"


def test_contracts_ignore_no_import():
    """The contract holds without exceptions: no contract lists ``ignore_imports`` (the last one, the QAT
    export importing the LSTM export back from above training, went when that export moved into training)."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["name"]: c["ignore_imports"] for c in contracts if c.get("ignore_imports")} == {}


def test_docs_list_the_training_layers_of_the_contract():
    """docs/architecture.md spells the training layers as the contract has them (top first, ' > ' between
    layers): a layer added to pyproject.toml and not to the page fails here."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c.get("containers") == ["training"])
    want = " > ".join(", ".join(f"`{m.strip()}`" for m in layer.split("|")) for layer in layers)
    page = " ".join((ROOT / "docs" / "architecture.md").read_text().split())
    assert want in page, want


def test_one_keras_to_tflite_converter():
    """TFLiteConverter is set up in training/qat.py (to_tflite, to_float_tflite) and only in the two
    documented exceptions (docs/architecture.md, "Not done yet"): the stateful LSTM step model and the
    firmware tests' open-batch DS-CNN cases. A benchmark or tool with its own converter fails here."""
    allowed = {"training/qat.py", "training/export_lstm.py", "firmware/tools/fwtestdata.py"}
    found = {p.relative_to(ROOT).as_posix() for d in (*PACKAGES, "firmware")
             for p in (ROOT / d).rglob("*.py") if re.search(r"TFLiteConverter\.from_", p.read_text())}
    assert found == allowed, {"own converter": sorted(found - allowed), "gone": sorted(allowed - found)}
