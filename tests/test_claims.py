"""What the docs claim, held to the code and the records (issue 11, "claims that match the code"):
the generated figure blocks of README.md and docs/kernels.md equal what bench/results.json gives, the
deployment table says where a narrower model is stored in 4-bit nibbles, DS-CNN QAT is refused before
any training, and the README no longer says biases are quantized to 8 bits."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import kernels as kb
from bench import run as brun
from training.config import Config, ModelConfig, QuantConfig
from basics.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("block", kb.DOC_BLOCKS, ids=lambda b: b[0].name)
def test_generated_doc_blocks_match_the_records(block):
    path, start, end, gen = block
    have = kb.doc_block(path.read_text(), start, end)
    assert have is not None, f"{path}: the {start} block is missing"
    assert have == gen(brun.load_results(brun.RESULTS)), \
        f"{path}: stale figures; run python -m bench.kernels --write-docs"


def test_deploy_table_names_nibble_storage():
    recs = brun.load_results(brun.RESULTS)
    assert kb.stored_as(["custom/3"] * 5, 2) == "**4-bit nibbles** (layout 3)"
    assert kb.stored_as(["custom/6"] * 5, 2) == "2-bit (layout 6)"
    assert kb.stored_as(["custom/3"] * 5, 4) == "4-bit (layout 3)"
    table = kb.deploy_table(recs)
    for line in table.splitlines()[2:]:
        stored = line.split(" | ")[5].split(" / ")
        for bits, cell in zip((4, 2, 1), stored):  # every model narrower than its storage says so
            assert cell.startswith(f"{bits}-bit") or "nibbles" in cell, line


def test_readme_does_not_claim_8bit_biases():
    text = (ROOT / "README.md").read_text()
    assert "activations and biases" not in text and "everything else)" not in text
    assert "biases stay float during" in text and "int32" in text


def test_dscnn_qat_is_refused_before_training(tmp_path):
    from training.qat_train import train_quantized

    cfg = Config(model=ModelConfig(name="dscnn"), quant=QuantConfig(weight_bits=4))
    with pytest.raises(UserError, match="dscnn cannot be trained below 8 bits yet"):
        train_quantized(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists() and not list(tmp_path.parent.glob("dscnn-*-float"))


# ----------------------------------------------------------------------------- figures beside a record
FIGURE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+)(?!\d|,\d)")  # 1,234 and up, thousands separated (a comma after it is punctuation)
CITES_A_RECORD = re.compile(r"bench/[a-z0-9_]+\.json")
GENERATED = re.compile(r"<!-- ([a-z0-9-]+): .*?-->.*?<!-- /\1 -->", re.S)
# figures that stand in a paragraph citing a record but are not measurements: what the text computes or a
# model's size; each (file, figure) with its reason
NOT_MEASURED = {
    ("README.md", "230,787"): "the LSTM's parameter count (training/lstm.py), not a record field",
    ("docs/hardening.md", "4,829,977"): "the superseded fuzz record, quoted as history",
    ("docs/hardening.md", "1,203"): "the superseded fuzz record, quoted as history",
    ("docs/hardening.md", "1,384"): "the superseded fuzz record, quoted as history",
    ("docs/hardening.md", "105,000"): "7 readers x 15,000 cases, computed in the sentence",
    ("docs/kernels.md", "252,932"): "the superseded w4a8 LSTM record (before the persistent tables), quoted as history",
    ("docs/porting.md", "2,060"): "arena bytes computed from the code in the sentence (4 x 515)",
    ("docs/porting.md", "3,088"): "arena bytes computed from the code in the sentence (2 x 1536 + 16)",
}


def _record_values() -> set[int]:
    vals: set[int] = set()

    def walk(o):
        if isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, (int, float)) and not isinstance(o, bool):
            vals.add(round(float(o)))

    for f in sorted((ROOT / "bench").glob("*.json")):
        walk(json.loads(f.read_text()))
    return vals


def stale_figures(text: str, where: str, values: set[int], not_measured=NOT_MEASURED) -> list[str]:
    """'where: figure | context' for each figure of 1,000 or more that stands in a paragraph citing a
    bench/*.json record (outside the generated blocks) and is no value of any record."""
    text = GENERATED.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    out = []
    for para in re.split(r"\n\s*\n", text):
        if not CITES_A_RECORD.search(para):
            continue
        for m in FIGURE.finditer(para):
            if int(m.group(1).replace(",", "")) not in values and (where, m.group(1)) not in not_measured:
                out.append(f"{where}: {m.group(1)} | {para[max(0, m.start() - 60):m.end() + 30]!r}")
    return out


def test_figures_beside_a_record_citation_are_in_the_records():
    """A paragraph that cites bench/results.json (or another bench record) quotes only figures some record
    holds: a figure typed by hand and left behind when the record was measured again fails here."""
    values = _record_values()
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    bad = [s for f in files for s in stale_figures(f.read_text(), f.relative_to(ROOT).as_posix(), values)]
    assert not bad, "figures not in any bench record (regenerate, cite the record, or say why):\n" + "\n".join(bad)
    for (rel, fig), why in NOT_MEASURED.items():  # the exceptions still stand where they are said to
        assert fig in (ROOT / rel).read_text() and why, (rel, fig)


def test_stale_figure_check_catches_a_hand_typed_figure():
    values = {321786, 243828}
    text = ("On the STM32F405 the loop takes 391,377 instructions and 243,828 bytes of flash\n"
            "(bench/results.json), 1.13x the other loop's 593,670, at 243,828 bytes.\n\n"
            "A paragraph without a citation may say 391,377.\n\n"
            "<!-- t: gen -->\n99,999 (bench/results.json)\n<!-- /t -->\n")
    got = stale_figures(text, "R.md", values, not_measured={})
    assert [g.split(" |")[0] for g in got] == ["R.md: 391,377", "R.md: 593,670"], got   # also before a comma
