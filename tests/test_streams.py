"""basics.streams: the one "window follows the previous one" rule of the float and integer LSTM scorers."""
from __future__ import annotations

import numpy as np

from basics.streams import WindowStream, follows_previous

T, BINS = 4, 3


def _windows(seq: np.ndarray, first: int, last: int) -> np.ndarray:
    """Windows k = first..last-1 of a frame sequence [F, BINS]: window k = seq[k:k+T]."""
    return np.stack([seq[k:k + T] for k in range(first, last)])


class _Log:
    """A stateful toy model: its output is (frames since reset, sum of them), so a wrong reset or a
    missed / repeated frame shows in the numbers."""

    def __init__(self):
        self.frames, self.resets = [], 0

    def step(self, frame):
        self.frames.append(np.asarray(frame))
        return np.array([len(self.frames), float(np.sum(self.frames))])

    def reset(self):
        self.frames, self.resets = [], self.resets + 1


def test_follows_previous_within_a_block_and_across_calls():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(20, BINS)), rng.normal(size=(20, BINS))
    w = np.concatenate([_windows(a, 0, 5), _windows(b, 3, 6), _windows(a, 7, 8)])
    assert follows_previous(w).tolist() == [False, True, True, True, True, False, True, True, False]
    nxt = _windows(a, 8, 10)
    assert follows_previous(nxt, w[-1]).tolist() == [True, True]      # the stream goes on in the next block
    assert follows_previous(nxt, w[-2]).tolist() == [False, True]     # a skipped window is a new stream
    assert follows_previous(nxt, None).tolist() == [False, True]
    assert follows_previous(nxt, np.zeros((T + 1, BINS))).tolist() == [False, True]   # other shape


def test_window_stream_steps_once_per_hop_and_resets_on_a_new_stream():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, BINS)), rng.normal(size=(20, BINS))
    m = _Log()
    s = WindowStream(m.step, m.reset)
    y1 = s(_windows(a, 0, 6))                        # stream a, windows 0..5
    y2 = s(_windows(a, 6, 9))                        # goes on in a second call
    y3 = s(np.concatenate([_windows(b, 2, 4), _windows(a, 0, 1)]))  # stream b, then a again from the start
    assert m.resets == 3
    # frames since the reset: T for the first window of a stream, one more per hop
    assert y1[:, 0].tolist() == [4, 5, 6, 7, 8, 9] and y2[:, 0].tolist() == [10, 11, 12]
    assert y3[:, 0].tolist() == [4, 5, 4]
    # what was fed is each stream's frames in order, once each: the sums equal the stream's prefix sums
    np.testing.assert_allclose(np.concatenate([y1, y2])[:, 1], [a[:k + T].sum() for k in range(9)])
    np.testing.assert_allclose(y3[:, 1], [b[2:6].sum(), b[2:7].sum(), a[:4].sum()])


def test_window_stream_feeds_frames_but_compares_windows():
    """The integer scorer compares the float windows and feeds the quantized ones (``frames``)."""
    a = np.random.default_rng(2).normal(size=(12, BINS))
    w = _windows(a, 0, 4)
    q = np.round(w * 10).astype(np.int8)
    m = _Log()
    y = WindowStream(m.step, m.reset)(w, q)
    assert m.resets == 1 and len(m.frames) == T + 3
    np.testing.assert_array_equal(np.stack(m.frames), np.concatenate([q[0], q[1:, -1]]))
    assert y[-1, 1] == q[0].sum() + q[1:, -1].sum()
