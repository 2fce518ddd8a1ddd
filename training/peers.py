"""Pretrained peers scored beside our models under the same detection rule (benchmarks only).

microWakeWord (pymicro-wakeword, Apache-2.0; a dev/benchmark dependency, imported lazily) runs its
bundled streaming TFLite model with its own front end: one inference every 3 hops (30 ms). Its
raw probabilities go through our rule (causal moving average over the model's own
``sliding_window_size`` inferences, threshold, refractory period), so DET curves compare models,
not detection rules.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from basics.errors import UserError
from training.scoring import StreamScores, smooth

PEERS = ("microwakeword",)


class MicroWakeWordPeer:
    kind = "peer"

    def __init__(self, model: str = "alexa", refractory_s: float = 1.0):
        try:
            from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model  # lazy: heavy dependency, loaded only when this runs
        except ImportError:
            raise UserError("--compare microwakeword needs pymicro-wakeword (pip install -e '.[bench]')") from None
        try:
            self._mww = MicroWakeWord.from_builtin(Model(model))
        except ValueError:
            raise UserError(f"microwakeword: no bundled model '{model}' (have: "
                            f"{', '.join(m.value for m in Model)})") from None
        self._features_cls = MicroWakeWordFeatures
        self.name = f"microWakeWord {model}"
        self.smoothing_frames = int(self._mww.sliding_window_size)
        self.refractory_s = refractory_s

        self.model_bytes = Path(self._mww.tflite_model).stat().st_size

    def _raw(self, pcm: bytes) -> tuple[np.ndarray, np.ndarray]:
        mww = self._mww
        mww.reset()
        mww.sliding_window_size, keep = 1, mww.sliding_window_size  # raw probabilities; we smooth
        try:
            feats = self._features_cls()
            probs, times, hop = [], [], 0
            for f in feats.process_streaming(pcm):
                hop += 1
                p = mww.process_streaming_prob(f)
                if len(mww._features) == 0:  # an inference ran on this hop
                    probs.append(float(p))
                    times.append((hop * 160 + 240) / 16000.0)
        finally:
            mww.sliding_window_size = keep
        return np.asarray(times), np.asarray(probs)

    def score(self, audio: np.ndarray) -> StreamScores:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        t, p = self._raw(pcm)
        return StreamScores(t, p, smooth(p, self.smoothing_frames), len(audio) / 16000.0)


def load_peer(name: str, refractory_s: float = 1.0):
    if name == "microwakeword":
        return MicroWakeWordPeer(refractory_s=refractory_s)
    raise UserError(f"unknown peer '{name}' (known: {', '.join(PEERS)})")
