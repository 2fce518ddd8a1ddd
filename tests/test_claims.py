"""What the docs claim, held to the code and the records (issue 11, "claims that match the code"):
the generated figure blocks of README.md and docs/kernels.md equal what bench/results.json gives, the
deployment table says where a narrower model is stored in 4-bit nibbles, DS-CNN QAT is refused before
any training, and the README no longer says biases are quantized to 8 bits."""
from __future__ import annotations

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
