"""The training recipe for false accepts per hour (docs/recipe.md).

* ``negative_weight``: the loss weight of non-keyword windows (a false-accept penalty);
* ``spec_augment``: SpecAugment-style masks on the normalized training windows: up to
  ``time_masks`` bands of <= ``time_mask_frames`` context frames and ``freq_masks`` bands of
  <= ``freq_mask_bins`` mel bins set to 0 (the feature mean), drawn per window, every epoch;
* ``select_by: fa_per_hour``: the checkpoint kept is the epoch with the lowest FRR at
  ``select_fah`` false accepts per hour on the run's validation stream (other speakers and other
  negative clips than training), among the last third of the epochs, not the one with the lowest
  validation loss;
* hard-negative mining (``hard_negative_rounds``): every window of the training split's negative
  audio is scored by the current model; the windows whose keyword posterior reaches
  ``HARD_NEGATIVE_POSTERIOR`` (and one hop either side) join the training set as _unknown_, and
  the model is fine-tuned for ``hard_negative_epochs``; repeated for each round. The mined
  windows are saved in the run (``hard_negatives.npz``) so the QAT stages train on them too.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.config import EvalConfig, FeatureConfig, RecipeConfig, TrainConfig
from training.dataset import KEYWORD, UNKNOWN, read_manifest
from training.features import lfbe, lfbe_params, stack_context, window_span
from basics.atomic import atomic_write_text
from basics.audio import load_audio
from training.evaluate import StreamScores, det_curve, frr_at, keras_scorer, load_stream_labels, window_end_times

HARD_NEGATIVE_POSTERIOR = 0.5
MINING_BLOCK_S = 60.0


def sample_weights(y: np.ndarray, train: TrainConfig) -> np.ndarray:
    return np.where(y == KEYWORD, 1.0, float(train.negative_weight)).astype(np.float32)


def train_dataset(x: np.ndarray, y: np.ndarray, cfg: RecipeConfig, n_classes: int, seed: int, batch_map=None):
    """tf.data pipeline of (windows, one-hot, weight), shuffled each epoch, then ``batch_map``
    (default: SpecAugment if on; ``batch_maps`` builds the recipe's)."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    t = cfg.train
    ds = tf.data.Dataset.from_tensor_slices((x, y, sample_weights(y, t)))
    ds = ds.shuffle(min(len(x), 200_000), seed=seed, reshuffle_each_iteration=True).batch(t.batch_size)

    def onehot(xb, yb, wb):
        return xb, tf.one_hot(yb, n_classes), wb

    ds = ds.map(onehot, num_parallel_calls=tf.data.AUTOTUNE)
    batch_map = batch_map or batch_maps(cfg)
    if batch_map is not None:
        ds = ds.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(2)


def distill_fn(teacher, weight: float):
    """tf.data map function (windows, one-hot, weights) batch -> the same with the targets
    ``(1 - weight) * one-hot + weight * softmax(teacher logits)``: knowledge distillation from the
    float model into its quantized copy (``quant.distill``). The teacher sees the same (masked)
    windows as the student; the loss stays the cross-entropy of the student's logits."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    a = float(weight)

    def distill(xb, yb, wb):
        soft = tf.nn.softmax(teacher(xb, training=False))
        return xb, (1.0 - a) * yb + a * tf.cast(soft, yb.dtype), wb

    return distill


def batch_maps(cfg: RecipeConfig, teacher=None, distill: float = 0.0):
    """The recipe's per-batch map: SpecAugment (if on), then distillation targets (if a teacher
    and a weight > 0 are given); None when neither applies."""
    maps = ([spec_augment_fn(cfg)] if cfg.train.spec_augment else []) + \
        ([distill_fn(teacher, distill)] if teacher is not None and distill > 0 else [])
    if not maps:
        return None
    if len(maps) == 1:
        return maps[0]

    def chained(xb, yb, wb):
        for m in maps:
            xb, yb, wb = m(xb, yb, wb)
        return xb, yb, wb

    return chained


def spec_augment_fn(cfg: RecipeConfig):
    """tf.data map function (windows, one-hot, weights) batch -> the same with SpecAugment masks."""
    import tensorflow as tf  # lazy: heavy dependency, loaded only when this runs

    t = cfg.train
    ctx, bins = cfg.features.context_frames, cfg.features.num_mel_bins

    def masks(n, size, count, width):
        pos = tf.range(size)[None, :]
        keep = tf.ones([n, size])
        for _ in range(count):
            w = tf.random.uniform([n, 1], 0, width + 1, dtype=tf.int32)
            s = tf.random.uniform([n, 1], 0, size, dtype=tf.int32)
            keep *= 1.0 - tf.cast((pos >= s) & (pos < s + w), tf.float32)
        return keep

    def specaug(xb, yb, wb):
        n = tf.shape(xb)[0]
        x3 = tf.reshape(xb, [n, ctx, bins])
        x3 = x3 * masks(n, ctx, t.time_masks, t.time_mask_frames)[:, :, None]
        x3 = x3 * masks(n, bins, t.freq_masks, t.freq_mask_bins)[:, None, :]
        return tf.reshape(x3, [n, ctx * bins]), yb, wb

    return specaug


class ValStream:
    """The run's validation stream, features computed once, scored by a Keras model per epoch."""

    def __init__(self, dataset: Path, features: FeatureConfig, ecfg: EvalConfig, norm):
        wav, lab = Path(dataset) / "stream" / "val.wav", Path(dataset) / "stream" / "val.json"
        self.features, self.ecfg = features, ecfg
        self.keywords, _ = load_stream_labels(lab)
        audio = load_audio(wav, features.sample_rate, quiet=True)
        self.duration_s = len(audio) / features.sample_rate
        self.feats = norm(lfbe(audio, lfbe_params(features)))

    def frr(self, model, fah: float) -> tuple[float, float]:
        """(FRR at fah false accepts/hour, its threshold) of a Keras model on this stream."""
        ctx, stride = self.features.context_frames, self.features.context_stride
        span = window_span(ctx, stride)
        n = max(0, len(self.feats) - span + 1)
        scorer = keras_scorer(model)
        b = 16384
        post = np.concatenate([scorer(stack_context(self.feats[i:i + b + span - 1], ctx, stride))[:, KEYWORD]
                               for i in range(0, n, b)]) if n else np.zeros(0)
        s = StreamScores(window_end_times(n, self.features), post, self.duration_s)
        return frr_at(det_curve(s, self.keywords, self.ecfg), fah)


def fa_selection_callback(val_stream: ValStream, train: TrainConfig, best_path: Path, epochs: int, log):
    """Keras callback: keep the weights of the epoch with the lowest val-stream FRR at select_fah
    (ties: the later epoch), over the last third of the epochs."""
    import tf_keras as keras  # lazy: heavy dependency, loaded only when this runs

    fah = train.select_fah
    state_path = best_path.with_suffix(".json")

    class SelectByFa(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best = json.loads(state_path.read_text())["frr"] if state_path.is_file() else np.inf

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 < max(1, (2 * epochs) // 3):
                return
            frr, th = val_stream.frr(self.model, fah)
            log(f"  val stream: FRR {100 * frr:.1f}% at {fah:g} FA/h (threshold {th:.4f})")
            if frr <= self.best:
                self.best = frr
                self.model.save_weights(str(best_path))

                atomic_write_text(state_path, json.dumps({"frr": frr, "epoch": epoch + 1, "threshold": th}) + "\n")

    return SelectByFa()


def negative_clips(dataset: Path, split: str = "train") -> list[Path]:
    return [c.path for c in read_manifest(dataset) if c.split == split and c.label == "negative"]


def mine_hard_negatives(model, clips: list[Path], features: FeatureConfig, norm, max_windows: int,
                        rng: np.random.Generator, progress: bool = False) -> tuple[np.ndarray, dict]:
    """Normalized windows of the negative clips (streamed back to back, 0.2 s apart) whose keyword
    posterior reaches HARD_NEGATIVE_POSTERIOR, with one hop either side; at most max_windows."""
    from tqdm import tqdm  # lazy: heavy dependency, loaded only when this runs

    p = lfbe_params(features)
    ctx, stride = features.context_frames, features.context_stride
    scorer = keras_scorer(model)
    gap = np.zeros(int(0.2 * p.sample_rate), np.float32)
    hits, seen, block, blen = [], 0, [], 0
    order = [clips[i] for i in rng.permutation(len(clips))]

    def flush(parts):
        nonlocal seen
        f = norm(lfbe(np.concatenate(parts), p))
        w = stack_context(f, ctx, stride)
        if not len(w):
            return
        post = scorer(w)[:, KEYWORD]
        idx = np.flatnonzero(post >= HARD_NEGATIVE_POSTERIOR)
        idx = np.unique(np.clip(np.concatenate([idx - 1, idx, idx + 1]), 0, len(w) - 1))
        seen += len(w)
        if len(idx):
            hits.append(w[idx])

    for c in tqdm(order, desc="mining", unit="clip", disable=not progress, leave=False):
        a = load_audio(c, p.sample_rate, quiet=True)
        block += [a, gap]
        blen += len(a) + len(gap)
        if blen >= MINING_BLOCK_S * p.sample_rate:
            flush(block)
            block, blen = [], 0
    if block:
        flush(block)
    x = np.concatenate(hits) if hits else np.zeros((0, ctx * features.num_mel_bins), np.float32)
    found = len(x)
    if len(x) > max_windows:
        x = x[rng.choice(len(x), max_windows, replace=False)]
    return x.astype(np.float32), {"windows_scored": int(seen), "windows_found": int(found), "windows_kept": len(x),
                                  "clips": len(clips)}


def load_hard_negatives(run_dir: Path) -> np.ndarray | None:
    f = Path(run_dir) / "hard_negatives.npz"
    if not f.is_file():
        return None
    return np.load(f)["x"]


def with_hard_negatives(train: tuple[np.ndarray, np.ndarray], hard: np.ndarray | None):
    if hard is None or not len(hard):
        return train
    return (np.concatenate([train[0], hard]), np.concatenate([train[1], np.full(len(hard), UNKNOWN, np.int32)]))
