"""The ``prune`` section of the training config (issue 13): which weight layers QAT prunes, to which
structure and density, on which schedule. No TensorFlow import: config validation runs it at load.

    prune:
      kind: block          # none | unstructured | block | n:m
      density: 0.25        # target fraction of weights kept (unstructured, block); n:m keeps n/m
      block: 8             # block: 1 x B input blocks of one output (1, 2, 4, 8, 16)
      block_rows: 1        # block: 4 = 4 x B blocks (4 outputs; 4-bit layers, B = 4, 8, 16), stored in
                           #   layout 8's lanes for the Cortex-M DSP kernel (--sparse block:4xB)
      n: 2                 # n:m: N of every M consecutive inputs (M in 2, 4, 8, 16; 1 <= N < M)
      m: 4
      layers: "*,*,*,*,dense"   # per weight layer (graph order); empty = the section's spec everywhere
      end_epoch: 1.0       # stage 1 reaches the target density after this many epochs (polynomial)

A ``layers`` entry is ``*`` (the section's kind and density), ``dense`` (not pruned), a density such
as ``0.5`` (the section's kind at that density), ``unstructured:D``, ``block:B:D``, ``block:4xB:D`` or
``N:M`` (e.g. ``2:4``). The command line gives the same as one comma-separated string
(``--set prune.layers=*,*,*,*,dense``).

Schedule (training/prune.py, MagnitudePruning): in QAT stage 1 the density of every pruned layer
falls from 1.0 at ``begin_epoch`` to its target at ``end_epoch`` (tfmot's polynomial decay, power 3;
N:M at its N/M from ``begin_epoch``), the magnitude masks recomputed every ``frequency`` steps and
applied after every step. Stage 2 (and the one-stage ablation after ``end_epoch``) starts at the
targets, so every epoch a checkpoint can select there is at the target density, and the exported
model's pruned weights are integer zeros. The exported .tflite stores pruned layers in the sparse
layout of their kind (``store: sparse``: N:M -> layout 4, block/unstructured -> layout 5, see
docs/formats.md section 8) or dense (``store: dense``).
"""
from __future__ import annotations

from dataclasses import dataclass

from basics.errors import UserError

KINDS = ("unstructured", "block", "n:m")
NM_M = (2, 4, 8, 16)
BLOCKS = (1, 2, 4, 8, 16)


@dataclass
class PruneConfig:
    kind: str = "none"  # none | unstructured | block | n:m
    density: float = 0.5  # target fraction of weights kept (unstructured / block)
    block: int = 8  # block: 1 x B input blocks
    block_rows: int = 1  # block: 1, or 4 (4 x B blocks, 4-bit layers only)
    n: int = 2  # n:m
    m: int = 4
    layers: str = ""  # per weight layer: * | dense | D | unstructured:D | block:B:D | N:M ("" = * everywhere)
    begin_epoch: float = 0.0  # stage-1 schedule: density 1.0 until begin_epoch ...
    end_epoch: float = 1.0  # ... the target from end_epoch on (polynomial decay between)
    frequency: int = 10  # steps between mask updates
    store: str = "sparse"  # sparse | dense: the exported layers' layout


RANGES: dict[str, tuple] = {
    "prune.kind": ("none", *KINDS), "prune.density": (1e-6, 1.0), "prune.block": (1, 16), "prune.block_rows": (1, 4), "prune.n": (1, 15),
    "prune.m": (2, 16), "prune.begin_epoch": (0.0, 1e5), "prune.end_epoch": (0.0, 1e5),
    "prune.frequency": (1, 1_000_000), "prune.store": ("sparse", "dense"),
}


@dataclass(frozen=True)
class PruneSpec:
    """How one weight layer is pruned (training/prune.py) and stored (tflm_port.sparse)."""

    kind: str = "unstructured"
    density: float = 0.5          # target fraction of weights kept (n:m: n/m)
    n: int = 2
    m: int = 4
    block: int = 8
    rows: int = 1                 # block: 1 or 4 output rows per block

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"pruning kind '{self.kind}' unknown (use one of {', '.join(KINDS)})")
        if self.kind == "n:m" and not (self.m in NM_M and 1 <= self.n < self.m):
            raise UserError(f"pruning n:m {self.n}:{self.m}: need M in 2, 4, 8, 16 and 1 <= N < M")
        if self.kind == "block" and self.block not in BLOCKS:
            raise UserError(f"pruning block {self.block}: use 1, 2, 4, 8 or 16")
        if self.kind == "block" and self.rows not in (1, 4):
            raise UserError(f"pruning block rows {self.rows}: use 1 or 4")
        if self.kind == "block" and self.rows == 4 and self.block not in (4, 8, 16):
            raise UserError(f"pruning block 4x{self.block}: 4-row blocks are 4, 8 or 16 inputs wide")
        if not 0.0 < self.density <= 1.0:
            raise UserError(f"pruning density {self.density} not in (0, 1]")

    @property
    def target_density(self) -> float:
        return self.n / self.m if self.kind == "n:m" else self.density

    @property
    def storage(self) -> str:
        """The converter's ``--sparse`` value for this structure (tflm_port.sparse.SparseSpec.parse)."""
        if self.kind == "n:m":
            return f"nm:{self.n}:{self.m}"
        if self.kind == "block" and self.rows > 1:
            return f"block:{self.rows}x{self.block}"
        return "csr" if self.kind == "unstructured" or self.block == 1 else f"block:{self.block}"

    def __str__(self) -> str:
        if self.kind == "n:m":
            return f"{self.n}:{self.m}"
        if self.kind == "block" and self.rows > 1:
            return f"block:{self.rows}x{self.block}:{self.density:g}"
        return (f"block:{self.block}:{self.density:g}" if self.kind == "block"
                else f"unstructured:{self.density:g}")


def section_spec(p: PruneConfig, density: float | None = None, where: str = "prune") -> PruneSpec:
    try:
        return PruneSpec(p.kind, p.density if density is None else density, n=p.n, m=p.m, block=p.block,
                         rows=p.block_rows)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def _number(text: str, entry: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserError(f"{where}: '{entry}' is not *, dense, a density, unstructured:D, block:B:D, block:4xB:D or N:M") from None
    if not 0.0 < v <= 1.0:
        raise UserError(f"{where}: density {text} in '{entry}' not in (0, 1]")
    return v


def parse_entry(entry: str, p: PruneConfig, where: str) -> PruneSpec | None:
    """One ``layers`` entry -> PruneSpec, or None for a layer left dense."""
    e = entry.strip().lower()
    if e in ("dense", "none", "1", "1.0"):
        return None
    if e == "*":
        return None if p.kind == "none" else section_spec(p, where=where)
    parts = e.split(":")
    try:
        if parts[0] == "unstructured" and len(parts) == 2:
            return PruneSpec("unstructured", _number(parts[1], entry, where))
        if parts[0] == "block" and len(parts) == 3 and parts[1].isdigit():
            return PruneSpec("block", _number(parts[2], entry, where), block=int(parts[1]))
        r, _, b = parts[1].partition("x") if len(parts) == 3 else ("", "", "")
        if parts[0] == "block" and r.isdigit() and b.isdigit():
            return PruneSpec("block", _number(parts[2], entry, where), block=int(b), rows=int(r))
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            return PruneSpec("n:m", n=int(parts[0]), m=int(parts[1]))
        if len(parts) == 1:
            d = _number(parts[0], entry, where)
            if p.kind == "none":
                raise UserError(f"{where}: '{entry}' is a density, but prune.kind is none (set prune.kind, or "
                                "write unstructured:D / block:B:D)")
            if p.kind == "n:m":
                raise UserError(f"{where}: '{entry}': an n:m layer's density is N/M (write N:M)")
            return section_spec(p, d, where)
    except UserError as err:
        msg = str(err)
        raise UserError(msg if msg.startswith(where) else f"{where}: '{entry}': {msg}") from None
    raise UserError(f"{where}: '{entry}' is not *, dense, a density, unstructured:D, block:B:D, block:4xB:D or N:M")


def entries(p: PruneConfig) -> list[str]:
    text = str(p.layers).strip()
    if text.startswith("[") and text.endswith("]"):   # a YAML list, as the str field holds it
        text = text[1:-1].replace("'", "").replace('"', "")
    return [] if not text else [t.strip() for t in text.replace(";", ",").split(",")]


def check(p: PruneConfig, origin: str = "config", n_layers: int | None = None, weight_bits: int = 0,
          activation_bits: int = 8, layer_bits: list | None = None) -> None:
    """One UserError line for a bad prune section (the count of ``layers`` when n_layers is known)."""
    if p.kind == "none" and not p.layers.strip():
        return
    if p.kind != "none":
        section_spec(p, where=f"{origin}: prune")
    for i, e in enumerate(entries(p)):
        parse_entry(e, p, f"{origin}: prune.layers[{i}]")
    if p.end_epoch < p.begin_epoch:
        raise UserError(f"{origin}: prune.end_epoch {p.end_epoch} < prune.begin_epoch {p.begin_epoch}")
    if weight_bits == 1 and not layer_bits:
        raise UserError(f"{origin}: prune with quant.weight_bits 1: 1-bit weights have no zero (use 2..8 bits)")
    if activation_bits < 8 and p.store == "sparse" and active(p):
        raise UserError(f"{origin}: prune.store sparse with {activation_bits}-bit activations: SUB8_FC_A4 has no "
                        "sparse layout; set prune.store=dense")
    if p.store == "sparse":   # 4-row blocks are a 4-bit format (tflm_port.sparse): refuse them before training
        es = entries(p)
        specs = (layer_specs(p, len(layer_bits), origin) if layer_bits else
                 [parse_entry(e, p, f"{origin}: prune.layers[{i}]") for i, e in enumerate(es)] if es else
                 [section_spec(p, where=f"{origin}: prune")] if p.kind != "none" else [])
        bits = layer_bits or [weight_bits] * len(specs)
        for i, (spec, b) in enumerate(zip(specs, bits)):
            if spec is not None and spec.kind == "block" and spec.rows == 4 and b and b != 4:
                raise UserError(f"{origin}: prune: 4-row blocks ({spec.storage}) are stored for 4-bit layers only, "
                                f"weight layer {i} is {b}-bit (use 1 x B blocks there, or prune.store=dense)")
    if layer_bits:   # per-layer bits: one per weight layer, so the layer count is known here
        for i, (spec, b) in enumerate(zip(layer_specs(p, len(layer_bits), origin), layer_bits)):
            if spec is not None and b < 2:
                raise UserError(f"{origin}: prune: weight layer {i} is {b}-bit (quant.layer_bits) and 1-bit weights "
                                "have no zero; mark it dense in prune.layers")
    if n_layers is not None:
        layer_specs(p, n_layers, origin)


def layer_specs(p: PruneConfig, n_layers: int, origin: str = "config") -> list[PruneSpec | None]:
    """One PruneSpec (or None: dense) per weight layer, graph order."""
    es = entries(p)
    if not es:
        return [None if p.kind == "none" else section_spec(p, where=f"{origin}: prune")] * n_layers
    if len(es) != n_layers:
        raise UserError(f"{origin}: prune.layers has {len(es)} entries, the model has {n_layers} weight layers")
    return [parse_entry(e, p, f"{origin}: prune.layers[{i}]") for i, e in enumerate(es)]


def active(p: PruneConfig) -> bool:
    return p.kind != "none" or any(e.strip().lower() not in ("dense", "none", "1", "1.0") for e in entries(p))


def run_tag(p: PruneConfig) -> str:
    """Suffix of a default run directory name: -sparse-d25 (unstructured, 25 % kept), -block8-d25, -nm2-4."""
    if not active(p):
        return ""
    if p.kind == "none":
        return "-sparse"
    d = f"-d{100 * p.density:g}".replace(".", "p")
    blk = f"{p.block_rows}x{p.block}" if p.block_rows > 1 else f"{p.block}"
    return {"unstructured": f"-sparse{d}", "block": f"-block{blk}{d}", "n:m": f"-nm{p.n}-{p.m}"}[p.kind]


def storage(specs: list, layer_bits: list) -> list[str] | None:
    """The converter's per-layer ``sparse_spec`` for pruned layers of >= 2 bits (None: nothing sparse)."""
    out = [s.storage if s is not None and b >= 2 else "none" for s, b in zip(specs, layer_bits)]
    return out if any(o != "none" for o in out) else None
