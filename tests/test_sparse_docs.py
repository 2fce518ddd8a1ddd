"""The sparse figures of README.md and docs/kernels.md are generated from the sweep records (bench/sparse.py --write-docs) and
must equal what bench/results.json gives now; the generator refuses a README without its block."""
from pathlib import Path

import pytest

from basics.errors import UserError
from bench import run as brun
from bench import sparse as bsparse

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("block", bsparse.DOC_BLOCKS, ids=lambda b: b[0].name)
def test_sparse_doc_blocks_match_the_records(block):
    path, start, end, gen = block
    have = bsparse.doc_block(path.read_text(), start, end)
    assert have is not None, f"{path}: the {start} block is missing"
    assert have == gen(brun.load_results(brun.RESULTS)), \
        f"{path}: stale sparse figures; run python -m bench.sparse --write-docs"


def test_block_generator_figures_and_missing_block(tmp_path):
    recs = [{"case": "sparse_sweep", "board": "mps2-an386", "weight_bits": 4, "sparsity_kind": "dense",
             "instructions": 1000, "weight_bytes": 400, "date": "2026-01-02T00:00:00"},
            {"case": "sparse_sweep", "board": "mps2-an386", "weight_bits": 4, "sparsity_kind": "block",
             "sparse_format": "block:4x8", "target_density": 0.2, "density": 0.2, "vs_dense": 0.4,
             "weight_bytes_vs_dense": 0.3, "vs_cmsis_nn_s8_anchor": 0.25, "instructions": 400,
             "weight_bytes": 120},
            {"benchmark": "sparse_crossover", "board": "mps2-an386", "weight_bits": 4, "sparsity_kind": "block",
             "sparse_format": "block:4x8", "crossover_density": 0.5, "kernel": "sparse_dsp"}]
    text = bsparse.readme_block(recs)
    assert "our dense 4-bit (1,000)" in text and "| 0.40x |" in text and "0.25x of CMSIS-NN s8" in text
    assert "| Cortex-M4 (mps2-an386, DSP) | 4 | n/a | n/a | 50 % | n/a | n/a | n/a |" in text
    assert "20 % density <= 0.4x dense 4-bit" not in bsparse.kernels_block(recs)   # not every point: no verdict
    p = tmp_path / "R.md"
    p.write_text("no block here\n")
    blocks = [(p, bsparse.DOC_START, bsparse.DOC_END, bsparse.readme_block)]
    with pytest.raises(UserError, match="no <!-- sparse-table"):
        bsparse.write_docs(recs, blocks)
    p.write_text(f"a\n{bsparse.DOC_START}\nold\n{bsparse.DOC_END}\nb\n")
    bsparse.write_docs(recs, blocks)
    assert bsparse.doc_block(p.read_text()) == text and p.read_text().endswith(f"{bsparse.DOC_END}\nb\n")
