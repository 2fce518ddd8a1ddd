"""Magnitude pruning during the two-stage sub-8-bit QAT (issue 13), our own masks instead of tfmot's
prune_low_magnitude: tfmot's pruning wrapper cannot wrap the QuantizeWrapper of our custom
QuantizeConfigs, and a mask on the latent float kernel is all the quantizers need (tanh(0) = 0 and
the symmetric k-bit grid holds 0 exactly, so a pruned weight is an exact integer 0 after conversion).

    from training.prune import PruneSpec, MagnitudePruning
    specs = [PruneSpec("n:m", n=2, m=4), PruneSpec("unstructured", density=0.25), None]   # per weight layer
    model.fit(..., callbacks=[MagnitudePruning(specs, begin_step=0, end_step=200, frequency=10)])

* kinds: ``unstructured`` (largest |w| of the layer), ``block`` (1 x B input blocks of one output,
  ranked by L1 norm: the block-sparse kernels' structure), ``n:m`` (N largest |w| of every M consecutive
  inputs of one output). Densities follow tfmot's PolynomialDecay (power 3) from 1.0 at begin_step to
  the target at end_step; ``n:m`` goes straight to N of M at begin_step (a partial N:M is no N:M).
* The mask is recomputed every ``frequency`` steps and applied after every batch, so the optimizer
  cannot revive a pruned weight; ``apply_masks`` applies it once more (call it before conversion).
* Works on plain Keras models and on training.qat QAT models (Dense / Conv kernels, inputs along the
  kernel's input axis; tflm_port.sparse stores the same structures).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from basics.errors import UserError
from tflm_port.sparse import SparseSpec, prune_mask
from training.prune_spec import KINDS, PruneConfig, PruneSpec, layer_specs, storage

__all__ = ["KINDS", "PruneSpec", "MagnitudePruning", "mask_for", "polynomial_density", "qat_callbacks",
           "weight_kernels", "layer_densities"]


def polynomial_density(step: int, target: float, begin: int, end: int, power: int = 3) -> float:
    """tfmot PolynomialDecay in terms of density: 1.0 before begin, target after end."""
    if step >= end:   # also begin == end: the target from that step on
        return target
    if step <= begin:
        return 1.0
    frac = (step - begin) / (end - begin)
    sparsity = (1.0 - target) * (1.0 - (1.0 - frac) ** power)
    return 1.0 - sparsity


def mask_for(w_out_in: np.ndarray, spec: PruneSpec, density: float) -> np.ndarray:
    """Keep-mask [out, in] of |w| (see module doc); density is ignored for n:m. The converter's
    magnitude pruning (``tflm_port.sparse.prune_mask``) in this spec's structure, at least one block kept."""
    structure = (None if spec.kind == "unstructured" else
                 SparseSpec("nm", n=spec.n, m=spec.m) if spec.kind == "n:m" else
                 SparseSpec("block", block=spec.block, rows=spec.rows))
    return prune_mask(w_out_in, density, structure, min_keep=1)


def weight_kernels(model) -> list:
    """The kernel variables of the model's Dense / Conv layers (QAT wrappers unwrapped), graph order."""
    out = []
    for layer in model.layers:
        wv = getattr(layer, "_weight_vars", None)   # tfmot QuantizeWrapper: (variable, quantizer, vars)
        inner = getattr(layer, "layer", layer)
        if not isinstance(inner, (keras.layers.Dense, keras.layers.Conv2D)) or isinstance(inner, keras.layers.DepthwiseConv2D):
            continue
        if wv:
            out += [v for v, _, _ in wv if "kernel" in v.name]
        else:
            out.append(inner.kernel)
    return out


def _to_out_in(k: np.ndarray) -> np.ndarray:
    return k.reshape(-1, k.shape[-1]).T          # Dense [in, out] / Conv [kh, kw, cin, cout] -> [out, in]


class MagnitudePruning(keras.callbacks.Callback):
    """Prune the weight layers of the model being fit (specs: one PruneSpec or None per weight layer).

    The schedule's step is the optimizer's iteration count when the model has one (a fit resumed by
    BackupAndRestore continues the schedule where it stopped), else the batches seen by this callback.
    ``log`` (a print-like function) gets one line when a fit starts from weights denser than their
    targets at step >= end_step (they are pruned to the targets there)."""

    def __init__(self, specs, begin_step: int = 0, end_step: int = 1000, frequency: int = 10, log=None):
        super().__init__()
        self.specs = list(specs)
        self.begin, self.end, self.frequency = int(begin_step), int(end_step), max(1, int(frequency))
        self.step = 0
        self.masks: list = []
        self.log = log
        self._apply, self._mask_vars, self._mask_ids = None, None, []

    def _kernels(self):
        ks = weight_kernels(self.model)
        if len(ks) != len(self.specs):
            raise UserError(f"MagnitudePruning: {len(self.specs)} specs for {len(ks)} weight layers")
        return ks

    def _current_step(self) -> int:
        it = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        try:
            return int(it.numpy()) if it is not None else self.step
        except (AttributeError, TypeError, ValueError):
            return self.step

    def update_masks(self) -> None:
        self.masks = []
        for var, spec in zip(self._kernels(), self.specs):
            if spec is None:
                self.masks.append(None)
                continue
            d = (spec.target_density if spec.kind == "n:m" and self.step >= self.begin
                 else polynomial_density(self.step, spec.target_density, self.begin, self.end))
            w = _to_out_in(var.numpy())
            self.masks.append(mask_for(w, spec, d).T.reshape(var.shape) if d < 1.0 else None)
        self._load_masks()

    def _load_masks(self) -> None:
        """The masks into mask variables beside the kernels; one compiled function multiplies them in
        (after every step: a numpy round trip per kernel would cost more than the step itself)."""
        pairs = [(v, m) for v, m in zip(self._kernels(), self.masks) if m is not None]
        if not pairs:
            self._apply = None
            return
        ks = [v for v, _ in pairs]
        if self._mask_vars is None or [id(k) for k in ks] != self._mask_ids:
            self._mask_vars = [tf.Variable(tf.ones(v.shape, v.dtype), trainable=False) for v in ks]
            self._mask_ids = [id(k) for k in ks]

            @tf.function
            def apply():
                for v, mv in zip(ks, self._mask_vars):
                    v.assign(v * mv)

            self._apply = apply
        for mv, (v, m) in zip(self._mask_vars, pairs):
            mv.assign(m.astype(v.dtype.as_numpy_dtype))

    def apply_masks(self) -> None:
        if self._apply is not None:
            self._apply()

    def on_train_begin(self, logs=None):
        self.step = self._current_step()
        if self.log is not None and self.step >= self.end:
            dens = layer_densities(self.model)
            over = [f"{d:.3f}>{s.target_density:g}" for d, s in zip(dens, self.specs)
                    if s is not None and d > s.target_density + 1e-3]   # not the rounding to whole blocks
            if over:
                self.log(f"pruning: the weights start denser than their targets ({', '.join(over)}): "
                         "pruned to the targets now")
        self.update_masks()
        self.apply_masks()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.frequency == 0 and self.step <= self.end + self.frequency:
            self.update_masks()
        self.apply_masks()

    def on_train_end(self, logs=None):
        self.apply_masks()


def layer_densities(model) -> list[float]:
    """Fraction of non-zero kernel weights per weight layer (graph order)."""
    return [float(np.count_nonzero(v.numpy())) / max(1, int(np.prod(v.shape))) for v in weight_kernels(model)]


def qat_callbacks(p: PruneConfig, model, stage: int, steps_per_epoch: int, log=None) -> list:
    """The pruning callback of one QAT fit (empty when the prune section prunes nothing): stage 1 follows
    the schedule (begin_epoch .. end_epoch), stage 2 (``stage=2``: also the one-stage ablation's only
    fit, which keeps the schedule by passing ``stage=1``) starts at the targets."""
    specs = layer_specs(p, len(weight_kernels(model)), "prune")
    if all(s is None for s in specs):
        return []
    if stage == 1:
        begin = int(round(p.begin_epoch * steps_per_epoch))
        end = max(begin, int(round(p.end_epoch * steps_per_epoch)))
    else:
        begin = end = 0
    return [MagnitudePruning(specs, begin, end, p.frequency, log=log)]


def export_sparsity(p: PruneConfig, model, layer_bits: list) -> tuple[dict, list[str] | None]:
    """(metadata, converter sparse_spec) for exporting a pruned QAT model: the metadata's ``prune`` entry
    names each layer's structure, the target density over all weight layers (weighted by their sizes)
    and the kind; the sparse_spec stores pruned layers in their sparse layout (``prune.store=sparse``).
    ({}, None) when the prune section prunes nothing."""
    kernels = weight_kernels(model)
    specs = layer_specs(p, len(kernels), "prune")
    if all(s is None for s in specs):
        return {}, None
    for i, (s, b) in enumerate(zip(specs, layer_bits)):
        if s is not None and b < 2:
            raise UserError(f"prune.layers[{i}]: a {b}-bit layer cannot be pruned (1-bit weights have no zero)")
    sizes = [int(np.prod(v.shape)) for v in kernels]
    target = sum((1.0 if s is None else s.target_density) * n for s, n in zip(specs, sizes)) / max(1, sum(sizes))
    kinds = sorted({s.kind for s in specs if s is not None})
    meta = {"prune": {"layers": [str(s) if s is not None else "dense" for s in specs],
                      "density": round(target, 4), "sparsity_kind": "+".join(kinds),
                      "store": p.store}}
    return meta, (storage(specs, layer_bits) if p.store == "sparse" else None)
