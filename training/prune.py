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

from dataclasses import dataclass

import numpy as np
import tf_keras as keras

from basics.errors import UserError
from tflm_port.sparse import SparseSpec, prune_mask

KINDS = ("unstructured", "block", "n:m")


@dataclass(frozen=True)
class PruneSpec:
    kind: str = "unstructured"
    density: float = 0.5          # target fraction of weights kept (n:m: n/m)
    n: int = 2
    m: int = 4
    block: int = 8

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"pruning kind '{self.kind}' unknown (use one of {', '.join(KINDS)})")
        if self.kind == "n:m" and not (self.m in (2, 4, 8, 16) and 1 <= self.n < self.m):
            raise UserError(f"pruning n:m {self.n}:{self.m}: need M in 2, 4, 8, 16 and 1 <= N < M")
        if self.kind == "block" and self.block not in (1, 2, 4, 8, 16):
            raise UserError(f"pruning block {self.block}: use 1, 2, 4, 8 or 16")
        if not 0.0 < self.density <= 1.0:
            raise UserError(f"pruning density {self.density} not in (0, 1]")

    @property
    def target_density(self) -> float:
        return self.n / self.m if self.kind == "n:m" else self.density


def polynomial_density(step: int, target: float, begin: int, end: int, power: int = 3) -> float:
    """tfmot PolynomialDecay in terms of density: 1.0 before begin, target after end."""
    if step <= begin:
        return 1.0
    if step >= end or end <= begin:
        return target
    frac = (step - begin) / (end - begin)
    sparsity = (1.0 - target) * (1.0 - (1.0 - frac) ** power)
    return 1.0 - sparsity


def mask_for(w_out_in: np.ndarray, spec: PruneSpec, density: float) -> np.ndarray:
    """Keep-mask [out, in] of |w| (see module doc); density is ignored for n:m. The converter's
    magnitude pruning (``tflm_port.sparse.prune_mask``) in this spec's structure, at least one block kept."""
    structure = (None if spec.kind == "unstructured" else
                 SparseSpec("nm", n=spec.n, m=spec.m) if spec.kind == "n:m" else SparseSpec("block", block=spec.block))
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
    """Prune the weight layers of the model being fit (specs: one PruneSpec or None per weight layer)."""

    def __init__(self, specs, begin_step: int = 0, end_step: int = 1000, frequency: int = 10):
        super().__init__()
        self.specs = list(specs)
        self.begin, self.end, self.frequency = int(begin_step), int(end_step), max(1, int(frequency))
        self.step = 0
        self.masks: list = []

    def _kernels(self):
        ks = weight_kernels(self.model)
        if len(ks) != len(self.specs):
            raise UserError(f"MagnitudePruning: {len(self.specs)} specs for {len(ks)} weight layers")
        return ks

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

    def apply_masks(self) -> None:
        for var, mask in zip(self._kernels(), self.masks):
            if mask is not None:
                var.assign(np.where(mask, var.numpy(), 0.0).astype(var.dtype.as_numpy_dtype))

    def on_train_begin(self, logs=None):
        self.update_masks()
        self.apply_masks()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.frequency == 0 and self.step <= self.end + self.frequency:
            self.update_masks()
        self.apply_masks()

    def on_train_end(self, logs=None):
        self.apply_masks()
