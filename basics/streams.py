"""Scoring a stream of context windows with a stateful (one frame per step) model.

The data set's windows overlap: window k of a stream is window k-1 shifted by one frame (one hop).
A streaming model (the LSTM, float in training/lstm.py or integer in tflm_port/lstm.py) scores such a
window with ONE step, the state carried from the previous window; a window that does not follow the
previous one (a new clip or stream) starts from a reset state, warmed up on all its frames. This is
the one place that rule is written; the float and the integer scorers both call it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def follows_previous(w: np.ndarray, last: np.ndarray | None = None) -> np.ndarray:
    """bool [N]: window i of ``w`` [N, T, bins] is window i-1 shifted by one frame (for i = 0: ``last``,
    the final window of the previous call, or False when there is none or its shape differs)."""
    w = np.asarray(w)
    follows = np.zeros(len(w), bool)
    follows[1:] = np.all(w[1:, :-1] == w[:-1, 1:], axis=(1, 2))   # one vector op for the whole block
    if len(w) and last is not None and last.shape == w[0].shape:
        follows[0] = np.array_equal(last[1:], w[0][:-1])
    return follows


class WindowStream:
    """Feeds windows to a stateful model: ``step(frame) -> output`` advances it by one frame, ``reset()``
    starts a new stream. Calling it with a block of windows [N, T, bins] returns the N outputs stacked;
    the last window is kept, so a long stream may come in blocks."""

    def __init__(self, step: Callable[[np.ndarray], np.ndarray], reset: Callable[[], None]):
        self.step, self.reset = step, reset
        self.last: np.ndarray | None = None

    def __call__(self, w: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        """``w`` [N, T, bins] decides which windows follow; ``frames`` (default ``w``; the same windows in
        the model's own input type, e.g. quantized) is what is fed. N must be > 0."""
        frames = w if frames is None else frames
        follows = follows_previous(w, self.last)
        out = []
        for i in range(len(w)):
            if follows[i]:
                y = self.step(frames[i][-1])
            else:
                self.reset()
                for fr in frames[i]:
                    y = self.step(fr)
            out.append(y)
        self.last = np.array(w[-1], copy=True)
        return np.stack(out)
