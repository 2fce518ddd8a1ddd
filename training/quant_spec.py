"""Which quantizer each operand gets: the per-operand spec of ``QuantConfig`` (no TensorFlow import).

A spec is ``kind:bits`` (``pact:4``, ``sawb:4``, ``fixed:16``; weights may add ``:channel`` for
per-output-channel scales). ``resolve(qcfg)`` turns a QuantConfig into one ``OperandSpec`` per
operand from the preset (``tailored`` / ``naive``), ``weight_bits``, ``activation_bits`` and the
explicit ``operands`` overrides; ``check(qcfg, origin)`` raises one UserError line for a bad key or an
unsupported combination. ``training/act_quantizers.py`` builds the Keras quantizers from the specs.

Operands (docs/quantization.md, "Per-operand quantizers"):

| operand | what | kinds |
|---|---|---|
| input | the model input (LFBE window) | minmax (8 bit) |
| weight | every Dense/Conv kernel (LSTM: input kernels) | tanh, linear, sawb |
| recurrent_weight | LSTM recurrent kernels | tanh, linear, sawb |
| activation | ReLU outputs of hidden layers | pact, minmax |
| output | the logits (last Dense, linear) | minmax (8 bit) |
| gate | LSTM sigmoid gates, in [0, 1] | fixed, minmax |
| tanh | LSTM tanh outputs and cell input, in [-1, 1] | fixed, minmax |
| hidden | LSTM hidden state h = o * tanh(c), in [-1, 1] | fixed, minmax |
| cell | LSTM cell state | fixed, minmax |
"""
from __future__ import annotations

from dataclasses import dataclass

from basics.errors import UserError

WEIGHT_KINDS = ("auto", "tanh", "linear", "sawb")
OPERANDS: dict[str, tuple[str, ...]] = {
    "input": ("minmax",),
    "weight": WEIGHT_KINDS,
    "recurrent_weight": WEIGHT_KINDS,
    "activation": ("pact", "minmax"),
    "output": ("minmax",),
    "gate": ("fixed", "minmax"),
    "tanh": ("fixed", "minmax"),
    "hidden": ("fixed", "minmax"),
    "cell": ("fixed", "minmax"),
}
# kind -> allowed bits (inclusive range)
KIND_BITS = {"auto": (1, 8), "tanh": (1, 8), "linear": (1, 8), "sawb": (2, 8), "pact": (2, 8), "minmax": (2, 16), "fixed": (2, 16)}
# operand -> bits the deployment (tflm_port) can run, where narrower than the kind's
OPERAND_BITS = {"input": (8, 8), "output": (8, 8), "activation": (2, 8), "gate": (2, 8), "tanh": (2, 8),
                "hidden": (2, 8), "cell": (8, 16)}
PRESETS = ("tailored", "naive")


@dataclass(frozen=True)
class OperandSpec:
    kind: str
    bits: int
    per_channel: bool = False

    def __str__(self) -> str:
        return f"{self.kind}:{self.bits}" + (":channel" if self.per_channel else "")


def parse(operand: str, text, origin: str = "config") -> OperandSpec:
    """``"pact:4"`` -> OperandSpec for ``operand``; UserError naming the key otherwise."""
    key = f"{origin}: quant.operands.{operand}"
    if operand not in OPERANDS:
        raise UserError(f"{origin}: unknown operand 'quant.operands.{operand}' (known: {', '.join(OPERANDS)})")
    parts = str(text).strip().split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise UserError(f"{key} = {text!r}: expected kind:bits (e.g. {OPERANDS[operand][0]}:4)")
    kind, bits = parts[0], int(parts[1])
    per_channel = len(parts) == 3
    if per_channel and parts[2] != "channel":
        raise UserError(f"{key} = {text!r}: the third field may only be 'channel'")
    if kind not in OPERANDS[operand]:
        raise UserError(f"{key} = {text!r}: quantizer '{kind}' cannot quantize the {operand} "
                        f"(use one of {', '.join(OPERANDS[operand])})")
    lo, hi = KIND_BITS[kind]
    olo, ohi = OPERAND_BITS.get(operand, (lo, hi))
    lo, hi = max(lo, olo), min(hi, ohi)
    if not lo <= bits <= hi:
        raise UserError(f"{key} = {text!r}: {bits} bits not supported for {kind} on the {operand} ({lo}..{hi})")
    if per_channel and kind not in WEIGHT_KINDS:
        raise UserError(f"{key} = {text!r}: per-channel scales exist only for weights")
    return OperandSpec(kind, bits, per_channel)


def preset_specs(preset: str, weight_quantizer: str, weight_bits: int, activation_bits: int) -> dict:
    """The preset's spec of every operand (before ``operands`` overrides).

    tailored: the weight quantizer named by ``weight_quantizer``; PACT (learned clip) for ReLU outputs
    below 8 bits, the project's 8-bit moving-average min/max at 8 bits; fixed grids on the known
    ranges of the LSTM operands (sigmoid [0, 1], tanh [-1, 1]), a 16-bit cell.
    naive: uniform min/max everywhere (linear weights, min/max activations and LSTM operands at
    ``activation_bits``, 16-bit cell)."""
    if preset not in PRESETS:
        raise UserError(f"quant.preset: unknown preset '{preset}' (use one of {', '.join(PRESETS)})")
    wb = max(int(weight_bits), 1)
    ab = int(activation_bits)
    if preset == "tailored":
        act = f"pact:{ab}" if ab < 8 else "minmax:8"
        base = {"weight": f"{weight_quantizer}:{wb}", "recurrent_weight": f"{weight_quantizer}:{wb}",
                "activation": act, "gate": f"fixed:{ab}", "tanh": f"fixed:{ab}", "hidden": f"fixed:{ab}",
                "cell": "fixed:16"}
    else:
        base = {"weight": f"linear:{wb}", "recurrent_weight": f"linear:{wb}", "activation": f"minmax:{ab}",
                "gate": f"minmax:{ab}", "tanh": f"minmax:{ab}", "hidden": f"minmax:{ab}", "cell": "minmax:16"}
    base.update(input="minmax:8", output="minmax:8")
    return base


def resolve(qcfg, origin: str = "config") -> dict[str, OperandSpec]:
    """OperandSpec per operand for a QuantConfig (preset, then ``operands`` overrides)."""
    wq = getattr(qcfg, "weight_quantizer", "tanh")
    if wq not in WEIGHT_KINDS:
        raise UserError(f"{origin}: quant.weight_quantizer must be one of {', '.join(WEIGHT_KINDS)}, got {wq!r}")
    wb = int(getattr(qcfg, "weight_bits", 0) or 0)
    ab = int(getattr(qcfg, "activation_bits", 8))
    texts = preset_specs(getattr(qcfg, "preset", "tailored"), wq, wb if wb else 8, ab)
    over = getattr(qcfg, "operands", None) or {}
    if not isinstance(over, dict):
        raise UserError(f"{origin}: quant.operands must be a mapping operand -> 'kind:bits', got {over!r}")
    for k in over:
        if k not in OPERANDS:
            raise UserError(f"{origin}: unknown operand 'quant.operands.{k}' (known: {', '.join(OPERANDS)})")
    texts.update({k: v for k, v in over.items()})
    specs = {}
    for op, t in texts.items():
        try:
            specs[op] = parse(op, t, origin)
        except UserError as e:
            if op in over:
                raise
            raise UserError(f"{e} (from quant.preset / weight_bits / activation_bits)") from None
    return specs


def check(qcfg, model_name: str = "ffnn", origin: str = "config") -> dict[str, OperandSpec]:
    """Validate the quantization section as a whole: one UserError line for a bad combination."""
    specs = resolve(qcfg, origin)
    act = specs["activation"]
    if act.bits < 8 and model_name not in ("ffnn", "lstm"):
        raise UserError(f"{origin}: {act.bits}-bit activations need model.name ffnn or lstm (the 4-bit activation "
                        f"operators are fully connected / recurrent; '{model_name}' has convolutions)")
    for op in ("weight", "recurrent_weight"):
        if specs[op].per_channel:
            raise UserError(f"{origin}: quant.operands.{op} = {specs[op]}: per-channel weight scales cannot be "
                            "deployed (the FC / SUB8 operators take one scale per tensor); drop ':channel'")
    if act.bits < 8 and int(getattr(qcfg, "weight_bits", 0) or 0) == 0:
        raise UserError(f"{origin}: quant.activation_bits {act.bits} needs quant.weight_bits (QAT), got 0 (float)")
    return specs
