"""The best-epoch checkpoint by validation loss, kept across a resume.

Keras' ModelCheckpoint(save_best_only=True) remembers the best val_loss in memory only: after a
kill -9 and a resume (BackupAndRestore) its best starts over at +inf, so the first epoch after the
restart overwrites best.weights.h5 even when an earlier epoch was better. Here the best value is
written beside the weights (``<best>.val_loss.json``) each time the weights are, and a restarted run
starts from it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from basics.atomic import atomic_write_text


def state_path(best: Path) -> Path:
    return Path(best).with_name(Path(best).name.split(".")[0] + ".val_loss.json")


def saved_best(best: Path) -> float | None:
    """The best val_loss of an earlier (killed) run of this stage, when its weights and value are both
    there and the value is a finite number; else None (start over)."""
    p = state_path(best)
    if not (Path(best).is_file() and p.is_file()):
        return None
    try:
        v = float(json.loads(p.read_text())["val_loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return v if math.isfinite(v) else None


def best_val_loss_callbacks(best: Path) -> list:
    """[ModelCheckpoint of the lowest val_loss into ``best``, starting from the saved best; a callback
    that records each new best beside it]."""
    import tf_keras as keras  # lazy: heavy dependency (TensorFlow), loaded only when training

    best = Path(best)
    ck = keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                         save_weights_only=True, initial_value_threshold=saved_best(best))

    class RecordBest(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.last = ck.best

        def on_epoch_end(self, epoch, logs=None):  # runs after ck's (the order in the callback list)
            if ck.best != self.last and math.isfinite(ck.best):
                self.last = ck.best
                atomic_write_text(state_path(best), json.dumps({"val_loss": float(ck.best), "epoch": epoch + 1}) + "\n")

    return [ck, RecordBest()]
