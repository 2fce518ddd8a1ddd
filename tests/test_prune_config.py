"""The prune section of the training config (training/prune_spec.py): parsing, per-layer specs, one-line
errors for bad values (library and train.py command line), the QAT callbacks it builds (stage 1 on the
schedule, stage 2 at the targets), and the export path qat_train uses: pruned layers stored in their
sparse layout, weights in pruned positions integer zeros, the model equal to its dense twin."""
import json
from pathlib import Path

import numpy as np
import pytest

from basics.errors import UserError
from training import prune_spec
from training.config import Config, load_config, set_dotted
from training.prune_spec import PruneConfig, PruneSpec, layer_specs


def _cfg(**kv) -> Config:
    c = Config()
    set_dotted(c, "quant.weight_bits", kv.pop("weight_bits", 4))
    for k, v in kv.items():
        set_dotted(c, f"prune.{k}", v)
    return c.validate()


def test_yaml_section_and_per_layer_specs(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("quant: {weight_bits: 4}\nprune:\n  kind: block\n  block: 16\n  density: 0.25\n"
                 "  layers: ['*', 0.5, 'unstructured:0.1', '1:8', dense]\n")
    c = load_config(p)
    specs = layer_specs(c.prune, 5)
    assert specs == [PruneSpec("block", 0.25, block=16), PruneSpec("block", 0.5, block=16),
                     PruneSpec("unstructured", 0.1), PruneSpec("n:m", n=1, m=8), None]
    assert [s.storage for s in specs[:4]] == ["block:16", "block:16", "csr", "nm:1:8"]
    assert prune_spec.storage(specs, [4, 4, 4, 4, 8]) == ["block:16", "block:16", "csr", "nm:1:8", "none"]
    assert prune_spec.storage(specs, [4, 4, 4, 1, 8])[3] == "none"     # 1-bit layers are never stored sparse
    # the command line's comma-separated string gives the same
    c2 = _cfg(kind="block", block=16, density=0.25, layers="*,0.5,unstructured:0.1,1:8,dense")
    assert layer_specs(c2.prune, 5) == specs
    # no layers: the section's spec everywhere; kind none prunes nothing
    assert layer_specs(_cfg(kind="n:m", n=1, m=4).prune, 3) == [PruneSpec("n:m", n=1, m=4)] * 3
    assert layer_specs(Config().prune, 3) == [None] * 3 and not prune_spec.active(Config().prune)
    assert prune_spec.run_tag(c2.prune) == "-block16-d25" and prune_spec.run_tag(Config().prune) == ""


@pytest.mark.parametrize("kv, msg", [
    ({"kind": "blocks"}, "prune.kind must be one of"),
    ({"kind": "block", "density": 0}, "prune.density = 0"),
    ({"kind": "block", "density": 1.5}, "prune.density = 1.5"),
    ({"kind": "block", "block": 3}, "block 3"),
    ({"kind": "n:m", "n": 4, "m": 4}, "n:m 4:4"),
    ({"kind": "block", "layers": "*,x"}, "prune.layers[1]: 'x'"),
    ({"kind": "block", "layers": "block:8:1.5"}, "density 1.5"),
    ({"kind": "n:m", "layers": "0.5"}, "density is N/M"),
    ({"layers": "0.5"}, "prune.kind is none"),
    ({"kind": "block", "begin_epoch": 2, "end_epoch": 1}, "end_epoch 1.0 < prune.begin_epoch 2.0"),
    ({"kind": "block", "store": "packed"}, "prune.store must be one of"),
    ({"kind": "unstructured", "weight_bits": 1}, "1-bit weights have no zero"),
    ({"kind": "unstructured", "weight_bits": 0}, "needs quant.weight_bits"),
])
def test_bad_values_are_one_line_errors(kv, msg):
    with pytest.raises(UserError, match=msg.replace("[", r"\[").replace("]", r"\]")) as e:
        _cfg(**kv)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="weight layer 1 is 1-bit"):
        c = Config()
        for k, v in (("quant.weight_bits", 4), ("quant.layer_bits", "8,1,4"), ("prune.kind", "block")):
            set_dotted(c, k, v)
        c.validate()
    with pytest.raises(UserError, match="has 2 entries, the model has 5"):
        layer_specs(_cfg(kind="block", layers="*,*").prune, 5)
    with pytest.raises(UserError, match="SUB8_FC_A4 has no sparse layout"):
        c = Config()
        for k, v in (("quant.weight_bits", 4), ("quant.activation_bits", 4), ("prune.kind", "n:m")):
            set_dotted(c, k, v)
        c.validate()


def test_train_cli_bad_prune_value_is_one_line(tmp_path, capsys):
    from training import cli  # lazy: the command line imports the training stack (TensorFlow)

    with pytest.raises(SystemExit) as e:
        cli.main(["--run-dir", str(tmp_path / "x"), "--weight-bits", "4", "--set", "prune.kind=block",
                  "--set", "prune.layers=*,*,block:5:0.5"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "Traceback" not in err
    assert err.count("\n") == 0 and "prune.layers[2]" in err and "block 5" in err
    assert not (tmp_path / "x").exists()
    assert "prune.layers" in cli.build_parser().format_help() and "prune.kind" in cli.build_parser().format_help()


def test_qat_callbacks_schedule_and_export_keep_zeros():
    """qat_train's path: stage 1 on the schedule (target reached at end_epoch), stage 2 from weights that
    are denser than the targets (a stage-1 epoch selected before the schedule ended) pruned at its first
    step; export_sparsity gives the metadata and the per-layer storage; the converted model stores the
    pruned layers sparse, holds integer zeros where the masks pruned and equals its dense twin."""
    import tf_keras as keras

    from tflm_port.convert import convert, weight_report
    from tflm_port.reference import Reference
    from tflm_port.tflite_io import get_metadata, load_model
    from training import qat
    from training.config import FeatureConfig, ModelConfig, QuantConfig
    from training.models import build_ffnn
    from training.prune import export_sparsity, layer_densities, qat_callbacks

    keras.utils.set_random_seed(5)
    fm = build_ffnn(ModelConfig(name="ffnn", hidden_layers=2, hidden_units=32, dropout=0.0),
                    FeatureConfig(context_frames=4, num_mel_bins=8), 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 32)).astype(np.float32)
    y = rng.integers(0, 3, 128)
    p = PruneConfig(kind="block", block=8, density=0.25, layers="*,2:4,dense", end_epoch=1.0, frequency=2)
    qcfg = QuantConfig(weight_bits=4)
    s1 = qat.compile_for_stage(qat.make_qat_model(fm, qcfg, stage=1), 1e-2)
    cbs = qat_callbacks(p, s1, stage=1, steps_per_epoch=8)
    assert (cbs[0].begin, cbs[0].end) == (0, 8)
    s1.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=cbs)        # 8 steps: the schedule ends
    d1 = layer_densities(s1)
    assert d1[0] <= 0.25 + 1e-9 and d1[1] <= 0.5 and d1[2] == 1.0
    s2 = qat.make_qat_model(fm, qcfg, stage=2)          # the float weights: as if stage 1's best were dense
    logs = []
    cb2 = qat_callbacks(p, s2, stage=2, steps_per_epoch=8, log=logs.append)[0]
    assert (cb2.begin, cb2.end) == (0, 0)
    s2 = qat.compile_for_stage(s2, 1e-2)
    s2.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb2])
    assert logs and "denser than their targets" in logs[0]
    ints = [w for w, _ in qat.fake_quant_weights(s2)]
    for w_int, mask in zip(ints, cb2.masks):
        if mask is not None:
            assert (w_int[~mask] == 0).all(), "a pruned weight is not an integer zero after QAT"
    assert cb2.masks[2] is None
    meta, sparse_spec = export_sparsity(p, s2, qat.layer_bits(s2))
    assert sparse_spec == ["block:8", "nm:2:4", "none"]
    sizes = [32 * 32, 32 * 32, 32 * 3]
    assert meta["prune"]["density"] == round((0.25 * sizes[0] + 0.5 * sizes[1] + sizes[2]) / sum(sizes), 4)
    assert meta["prune"]["layers"] == ["block:8:0.25", "2:4", "dense"] and meta["prune"]["sparsity_kind"] == "block+n:m"
    tfl = qat.to_tflite(s2, x)
    sp = convert(tfl, qat.layer_bits(s2), mode="auto", metadata=meta, sparse_spec=sparse_spec)
    dense = convert(tfl, qat.layer_bits(s2), mode="auto")
    rows = weight_report(sp)
    assert [r["format"] for r in rows[:2]] == ["block:8", "nm:2:4"] and rows[0]["density"] <= 0.25
    assert get_metadata(load_model(sp))["prune"]["density"] == meta["prune"]["density"]
    drows = weight_report(dense)
    assert rows[0]["weight_bytes"] < drows[0]["weight_bytes"] and rows[1]["weight_bytes"] < drows[1]["weight_bytes"]
    xi = np.random.default_rng(1).integers(-128, 128, (64, 32)).astype(np.int8)
    np.testing.assert_array_equal(Reference.from_bytes(sp).run(xi), Reference.from_bytes(dense).run(xi))
    with pytest.raises(UserError, match="1-bit layer cannot be pruned"):
        export_sparsity(p, s2, [1, 4, 4])
    assert export_sparsity(PruneConfig(), s2, [4, 4, 4]) == ({}, None)


def test_devbench_rows_carry_density(tmp_path):
    """bench.devbench: a model's density and sparsity kind come from its subkws metadata (1.0 / dense
    without a prune entry); sparse rows neither replace nor merge with the dense row of the same recipe."""
    from bench import devbench
    from tflm_port.tflite_io import METADATA_NAME, get_metadata, load_model, save_model, set_metadata

    src = Path(__file__).resolve().parents[1] / "models" / "alexa-w4.tflite"
    assert devbench.sparsity(src) == {"density": 1.0, "sparsity_kind": "dense"}
    m = load_model(src.read_bytes())
    set_metadata(m, METADATA_NAME, {**get_metadata(m), "prune": {"density": 0.2504, "sparsity_kind": "block",
                                                                  "layers": ["block:8:0.25"] * 4 + ["dense"]}})
    (tmp_path / "s.tflite").write_bytes(save_model(m))
    sp = devbench.sparsity(tmp_path / "s.tflite")
    assert sp["density"] == 0.2504 and sp["sparsity_kind"] == "block" and sp["prune_layers"][-1] == "dense"
    assert devbench.sparsity(tmp_path) == {}                       # a folder without model.tflite
    base = {"benchmark": "dev_real", "positives": 80, "frr_at_0p5fah": 0.1, "missed_at_1fah": 8, "recipe": "demo",
            "weight_bits": 4, "seed": 1, "frr_at_1fah": 0.1, "name": "x"}
    rec = tmp_path / "acc.json"
    devbench.merge_records(rec, [base])
    devbench.merge_records(rec, [{**base, **sp, "frr_at_1fah": 0.2}])
    recs = json.loads(rec.read_text())
    assert len(recs) == 2
    t = devbench.summary_table(recs)
    assert "| demo | 4 | - | 1 | 10.0% |" in t and "| demo | 4, 25.04 % of weights kept (block) | - | 1 | 20.0% |" in t
    # block shapes are told apart (1 x 8 and 4 x 8 blocks at the same density are different models)
    shaped = [{**base, **sp, "name": n, "layer_sparsity": [shape] * 4 + ["none"], "frr_at_1fah": f}
              for n, shape, f in (("a", "block:8", 0.3), ("b", "block:4x8", 0.4))]
    t = devbench.summary_table(shaped)
    assert "25.04 % of weights kept (block 8) | - | 1 | 30.0% |" in t
    assert "25.04 % of weights kept (block 4x8) | - | 1 | 40.0% |" in t
