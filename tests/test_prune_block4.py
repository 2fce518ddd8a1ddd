"""The prune config's 4-row blocks (prune.block_rows 4, layers entries block:4xB:D): parsed, stored as the
converter's block:4xB, refused with one line for layers that are not 4-bit (the format is 4-bit only)."""
from __future__ import annotations

import pytest

from basics.errors import UserError
from training import prune_spec as ps


def test_section_and_entries():
    p = ps.PruneConfig(kind="block", density=0.25, block=8, block_rows=4)
    spec = ps.section_spec(p)
    assert (spec.rows, spec.block, spec.storage, str(spec)) == (4, 8, "block:4x8", "block:4x8:0.25")
    assert ps.run_tag(p) == "-block4x8-d25"
    e = ps.parse_entry("block:4x16:0.5", ps.PruneConfig(), "cfg")
    assert (e.kind, e.rows, e.block, e.density, e.storage) == ("block", 4, 16, 0.5, "block:4x16")
    ps.check(p, "cfg", n_layers=3, weight_bits=4)
    ps.check(ps.PruneConfig(layers="block:4x8:0.3,*,dense"), "cfg", n_layers=3, weight_bits=4)
    ps.check(ps.PruneConfig(kind="block", block_rows=4, store="dense"), "cfg", weight_bits=8)   # stored dense: any bits


@pytest.mark.parametrize("cfg,kw,msg", [
    (dict(kind="block", block_rows=4), dict(weight_bits=8), "4-bit layers only"),
    (dict(layers="block:4x8:0.3,dense"), dict(layer_bits=[2, 8]), "weight layer 0 is 2-bit"),
    (dict(kind="block", block=2, block_rows=4), dict(weight_bits=4), "4, 8 or 16"),
    (dict(kind="block", block_rows=2), dict(weight_bits=4), "1 or 4"),
    (dict(layers="block:4y8:0.3"), dict(weight_bits=4), "block:4xB:D"),
])
def test_bad_configs_one_line(cfg, kw, msg):
    with pytest.raises(UserError) as e:
        ps.check(ps.PruneConfig(**cfg), "cfg", **kw)
    assert "\n" not in str(e.value) and msg in str(e.value), str(e.value)
