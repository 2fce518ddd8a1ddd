"""The FA/h recipe: loss weights, SpecAugment masks, hard-negative mining, float .tflite in the reference."""
import numpy as np
import pytest
import soundfile as sf

from training.config import Config, RecipeConfig
from training.dataset import KEYWORD, UNKNOWN
from training.recipe import (HARD_NEGATIVE_POSTERIOR, mine_hard_negatives, sample_weights, train_dataset,
                             with_hard_negatives)


def _cfg():
    c = Config()
    c.features.context_frames, c.features.context_stride = 4, 1
    c.train.batch_size, c.train.negative_weight = 8, 3.0
    c.train.spec_augment, c.train.time_masks, c.train.time_mask_frames = True, 1, 2
    c.train.freq_masks, c.train.freq_mask_bins = 1, 10
    return RecipeConfig.of(c)  # the recipe's sections only


def test_negative_weight_applies_to_non_keyword_windows():
    c = _cfg()
    w = sample_weights(np.array([0, 1, 2, 1]), c.train)
    assert w.tolist() == [3.0, 3.0, 1.0, 3.0]


def test_spec_augment_masks_bands_of_frames_and_bins():
    c = _cfg()
    x = np.ones((64, 4 * 64), np.float32)
    y = np.full(64, KEYWORD, np.int32)
    xb, yb, wb = next(iter(train_dataset(x, y, c, 3, seed=0)))
    xb = xb.numpy().reshape(-1, 4, 64)
    assert xb.shape[0] == 8 and yb.shape == (8, 3) and np.all(wb.numpy() == 1.0)
    zero_frames = (xb == 0).all(axis=2).sum(axis=1)
    zero_bins = (xb == 0).all(axis=1).sum(axis=1)
    assert np.all(zero_frames <= 2) and np.all(zero_bins <= 10)
    assert (zero_frames > 0).any() and (zero_bins > 0).any()  # masks are drawn
    assert set(np.unique(xb)) <= {0.0, 1.0}  # masking only zeroes


class _FiresOnLoud:
    """A stand-in Keras model: keyword posterior high where the window's first feature is high."""
    output_shape = (None, 3)

    def predict(self, x, batch_size=None, verbose=0):
        z = np.zeros((len(x), 3))
        z[:, KEYWORD] = np.where(x[:, 0] > 0.5, 10.0, -10.0)
        return z


def test_mining_keeps_windows_that_fire_and_their_neighbours(tmp_path):
    c = _cfg()
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.normal(size=16000)).astype(np.float32)
    loud = quiet.copy()
    loud[6000:6800] += 0.5 * np.sin(np.arange(800) * 0.3).astype(np.float32)
    for i, x in enumerate([quiet, loud]):
        sf.write(tmp_path / f"n{i}.wav", x, 16000)

    class Norm:
        def __call__(self, f):
            return (f - f.mean()) / (f.std() + 1e-6)

    x, info = mine_hard_negatives(_FiresOnLoud(), [tmp_path / "n0.wav", tmp_path / "n1.wav"], c.features, Norm(),
                                  max_windows=1000, rng=np.random.default_rng(1))
    assert 0 < info["windows_found"] < info["windows_scored"] and len(x) == info["windows_kept"]
    assert x.shape[1] == 4 * 64
    assert HARD_NEGATIVE_POSTERIOR == 0.5
    x2, info2 = mine_hard_negatives(_FiresOnLoud(), [tmp_path / "n1.wav"], c.features, Norm(), max_windows=3,
                                    rng=np.random.default_rng(1))
    assert len(x2) == 3
    tr = with_hard_negatives((np.zeros((2, 256), np.float32), np.array([2, 2], np.int32)), x2)
    assert tr[0].shape == (5, 256) and tr[1].tolist() == [2, 2, UNKNOWN, UNKNOWN, UNKNOWN]


def test_float_tflite_runs_in_the_reference_like_keras():
    import tf_keras as keras

    from tflm_port.reference import Reference
    from training.ship import float_tflite

    keras.utils.set_random_seed(0)
    inp = keras.Input((32,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(16, use_bias=False)(inp))
    out = keras.layers.Dense(3)(keras.layers.ReLU()(h))
    m = keras.Model(inp, out)
    m.layers[2].set_weights([np.full(16, 2.0), np.full(16, 0.1), np.full(16, 0.3), np.full(16, 4.0)])
    ref = Reference.from_bytes(float_tflite(m, {"labels": ["a", "b", "c"]}))
    x = np.random.default_rng(0).normal(size=(20, 32)).astype(np.float32)
    want = m.predict(x, verbose=0)
    assert ref.input_dtype == np.float32 and np.allclose(ref.run(x), want, atol=1e-5)
    assert np.allclose(ref.posteriors(x).sum(axis=1), 1.0)


def test_distillation_mixes_the_teachers_posteriors_into_the_targets():
    import tf_keras as keras

    from training.recipe import batch_maps

    keras.utils.set_random_seed(0)
    inp = keras.Input((4 * 64,))
    teacher = keras.Model(inp, keras.layers.Dense(3)(inp))
    c = _cfg()
    c.train.spec_augment = False
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4 * 64)).astype(np.float32)
    y = np.array([KEYWORD, UNKNOWN] * 8, np.int32)
    assert batch_maps(c) is None and batch_maps(c, teacher, 0.0) is None  # off: hard labels untouched
    xb, yb, wb = next(iter(train_dataset(x, y, c, 3, seed=0, batch_map=batch_maps(c, teacher, 0.25))))
    soft = keras.activations.softmax(teacher(xb)).numpy()
    onehot = np.eye(3, dtype=np.float32)[np.argmax(yb.numpy() - 0.25 * soft, axis=1)]
    assert np.allclose(yb.numpy(), 0.75 * onehot + 0.25 * soft, atol=1e-6)
    assert np.allclose(yb.numpy().sum(axis=1), 1.0, atol=1e-6) and not np.allclose(yb.numpy(), onehot)
    assert np.allclose(wb.numpy(), sample_weights(np.argmax(onehot, axis=1), c.train))
    c.train.spec_augment = True   # SpecAugment first, then the teacher sees the masked windows
    xb, yb, _ = next(iter(train_dataset(x, y, c, 3, seed=0, batch_map=batch_maps(c, teacher, 1.0))))
    assert np.allclose(yb.numpy(), keras.activations.softmax(teacher(xb)).numpy(), atol=1e-6)
