"""training.prune: magnitude pruning with a polynomial schedule inside both QAT stages on a tiny FFNN;
pruned weights are exact integer zeros after conversion, N:M masks give models the converter stores as
nm:2:4, and the sparse model equals its dense twin in tflm_port.reference."""
import numpy as np
import pytest

from basics.errors import UserError
from training.prune import MagnitudePruning, PruneSpec, mask_for, polynomial_density


def test_schedule_and_masks():
    assert polynomial_density(0, 0.2, 10, 110) == 1.0
    assert polynomial_density(110, 0.2, 10, 110) == pytest.approx(0.2)
    mid = polynomial_density(60, 0.2, 10, 110)
    assert 0.2 < mid < 1.0
    w = np.random.default_rng(0).normal(size=(6, 19))
    m = mask_for(w, PruneSpec("n:m", n=2, m=4), 1.0)
    assert all(m[:, g:g + 4].sum(axis=1).max() <= 2 for g in range(0, 19, 4))
    m = mask_for(w, PruneSpec("unstructured", density=0.25), 0.25)
    assert m.sum() == round(0.25 * w.size) and np.abs(w[m]).min() >= np.abs(w[~m]).max()
    m = mask_for(w, PruneSpec("block", block=4), 0.5)
    assert all(len(set(r[c:c + 4])) == 1 for r in m for c in range(0, 16, 4))
    m = mask_for(w, PruneSpec("block", block=4, rows=4), 0.5)      # 4 x 4 blocks (the last row group: rows 4, 5)
    assert all(len(set(m[g:g + 4, c:c + 4].reshape(-1))) == 1 for g in (0, 4) for c in range(0, 19, 4))
    assert m[:4].any() and not m.all()
    with pytest.raises(UserError):
        PruneSpec("n:m", n=4, m=4)


def test_pruned_weights_stay_zero_through_two_stage_qat_and_conversion():
    import tf_keras as keras

    from tflm_port import sparse
    from tflm_port.convert import convert
    from tflm_port.reference import Reference
    from training import qat
    from training.config import FeatureConfig, ModelConfig, QuantConfig
    from training.models import build_ffnn

    keras.utils.set_random_seed(3)
    fm = build_ffnn(ModelConfig(name="ffnn", hidden_layers=2, hidden_units=16, dropout=0.0),
                    FeatureConfig(context_frames=4, num_mel_bins=8), 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 32)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    specs = [PruneSpec("n:m", n=2, m=4), PruneSpec("unstructured", density=0.3), PruneSpec("block", density=0.5, block=8)]
    qcfg = QuantConfig(weight_bits=4, layer_bits=[4, 4, 4])
    s1 = qat.compile_for_stage(qat.make_qat_model(fm, qcfg, stage=1), 1e-2)
    s1.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[MagnitudePruning(specs, 0, 6, frequency=2)])
    s2 = qat.make_qat_model(fm, qcfg, stage=2)
    qat.transfer_weights(s1, s2)
    s2 = qat.compile_for_stage(s2, 1e-2)
    cb = MagnitudePruning(specs, 0, 0, frequency=1)       # stage 2 starts at the final densities
    s2.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    masks = [m for m in cb.masks]
    tfl = qat.to_tflite(s2, x)
    ints = [w for w, _ in qat.fake_quant_weights(s2)]
    for w_int, mask, spec in zip(ints, masks, specs):
        w_oi = w_int.reshape(-1, w_int.shape[-1]).T              # Keras kernel [in, out] -> [out, in]
        mk = mask.reshape(-1, mask.shape[-1]).T
        assert w_oi.shape == mk.shape
        assert (w_oi[~mk] == 0).all(), "a pruned weight is not zero after QAT"
        assert sparse.density(w_oi) <= spec.target_density + 1.0 / w_oi.size
    sp = convert(tfl, [4, 4, 4], mode="dense", sparse_spec="nm:2:4,csr,block:8")
    dense = convert(tfl, [4, 4, 4], mode="dense")
    xi = np.random.default_rng(1).integers(-128, 128, (100, 32)).astype(np.int8)
    np.testing.assert_array_equal(Reference.from_bytes(sp).run(xi), Reference.from_bytes(dense).run(xi))
