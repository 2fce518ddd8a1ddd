"""lfbe on threads (issue 14, host speed): the same bytes as one thread, whatever the block tail."""
import numpy as np
import pytest

from training.features import LFBE_ROWS, LfbeParams, lfbe


@pytest.mark.parametrize("tail", [0, 1, 3, 100])
@pytest.mark.parametrize("bins", [64, 8])
def test_lfbe_threads_bit_exact(tail, bins):
    p = LfbeParams(num_mel_bins=bins)
    n = 2 * LFBE_ROWS + tail  # frames: two full FFT blocks and a tail (the BLAS product of a
    rng = np.random.default_rng(tail)  # 1..100-row block sums in another order, so lfbe must not split it)
    x = (rng.normal(size=(n - 1) * p.hop_samples + p.window_samples) * 0.1).astype(np.float32)
    one = lfbe(x, p)
    assert one.shape == (n, bins)
    for th in (2, 3):
        assert lfbe(x, p, threads=th).tobytes() == one.tobytes()


def test_lfbe_threads_short_audio():
    p = LfbeParams()
    x = np.zeros(p.window_samples - 1, np.float32)
    assert lfbe(x, p, threads=2).shape == (0, 64)
    x = np.ones(p.window_samples + 5 * p.hop_samples, np.float32)
    assert lfbe(x, p, threads=2).tobytes() == lfbe(x, p).tobytes()
