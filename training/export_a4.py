"""Export of a QAT model with k-bit activations to SUB8_FC_A4 (docs/formats.md section 9): the
training side of ``tflm_port.fc_a4`` (which works on .tflite bytes only)."""
from __future__ import annotations

from basics.errors import UserError
from tflm_port import fc_a4
from tflm_port.tflite_io import load_model, op_name, quant_params
from training import act_quantizers as aq
from training import qat


def activation_bits(qat_model) -> list[int]:
    """Output bits of every Dense/Conv layer of a QAT model (8 where the quantizer is 8-bit or absent)."""
    return [aq.bits_of(w.quantize_config.activation_quantizer) if w.quantize_config.activation_quantizer else 8
            for w in qat._weight_wrappers(qat_model)]  # noqa: SLF001


def _grids(qat_model) -> list:
    out = []
    for w in qat._weight_wrappers(qat_model):  # noqa: SLF001
        q = w.quantize_config.activation_quantizer
        if q is None or not hasattr(q, "grid"):
            out.append(None)
            continue
        acts = getattr(w, "_quantize_activations", [])
        qvars = acts[0]._post_activation_vars if acts else {}  # noqa: SLF001
        out.append(q.grid({k: v.numpy() for k, v in qvars.items()}))
    return out


def convert_a4(qat_model, rep_data, metadata: dict | None = None, name: str = "<model>", layout: int = 0) -> bytes:
    """QAT model (stage 2, activation quantizers below 8 bits) -> .tflite whose Dense layers are all
    SUB8_FC_A4 (docs/formats.md section 9). The grid scales of the activation quantizers are checked
    against the tensors the TFLite converter wrote."""
    lb = qat.layer_bits(qat_model)
    ab = activation_bits(qat_model)
    if all(b == 8 for b in ab):
        raise UserError(f"{name}: no activation below 8 bits: use tflm_port.convert (standard operators)")
    with aq.container_export():
        data = qat.to_tflite(qat_model, rep_data)
    out = fc_a4.rewrite_a4(data, lb, ab, metadata, name, layout)
    model = load_model(out, name)
    sg = model.subgraphs[0]
    a4 = [op for op in sg.operators if op_name(model, op) == fc_a4.A4_CODE]
    for j, (op, g) in enumerate(zip(a4, _grids(qat_model))):
        if g is None:
            continue
        s = float(quant_params(sg.tensors[op.outputs[0]])[0][0])
        if abs(s - g.scale) > 1e-5 * g.scale:
            raise UserError(f"{name}: layer {j}: the converter wrote activation scale {s}, the quantizer's grid "
                            f"has {g.scale}")
    return out
