"""Describe a .tflite file: operators, tensors (type, shape, bytes), custom-op options, metadata.

    python -m tflm_port.model_inspect model.tflite [--json]

A truncated or corrupted file gives one line ``error: <file>: <problem>`` and exit status 2.
"""
from __future__ import annotations

import argparse
import json

from basics.errors import cli_main
from tflm_port.tflite_io import (ACTIVATION_NAMES, CUSTOM_CODE, TENSOR_TYPE_NAMES, buffer_bytes, custom_options,
                                 load_model, metadata_entries, op_name, quant_params, read_bytes, tensor_name)


def describe(data: bytes, name: str = "<bytes>") -> dict:
    m = load_model(data, name)
    sg = m.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        s, zp, qd = quant_params(t)
        tensors.append({
            "index": i, "name": tensor_name(t), "type": TENSOR_TYPE_NAMES.get(t.type, str(t.type)),
            "shape": [int(x) for x in (t.shape if t.shape is not None else [])],
            "bytes": len(buffer_bytes(m, t.buffer)),
            "scale": [float(x) for x in s][:4] + (["..."] if len(s) > 4 else []),
            "zero_point": [int(x) for x in zp][:4] + (["..."] if len(zp) > 4 else []),
        })
    ops = []
    for k, op in enumerate(sg.operators or []):
        name_ = op_name(m, op)
        d = {"index": k, "op": name_, "inputs": [int(i) for i in op.inputs], "outputs": [int(i) for i in op.outputs]}
        if name_ == CUSTOM_CODE or (op.customOptions is not None and len(op.customOptions)):
            d["custom_options"] = custom_options(op)
        opt = op.builtinOptions
        if opt is not None and hasattr(opt, "fusedActivationFunction"):
            d["activation"] = ACTIVATION_NAMES.get(opt.fusedActivationFunction, opt.fusedActivationFunction)
        ops.append(d)
    meta = {}
    for k, raw in metadata_entries(m).items():
        try:
            meta[k] = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta[k] = f"<{len(raw)} bytes>"
    weight_bytes = sum(t["bytes"] for t in tensors)
    return {"file": name, "file_bytes": len(data), "constant_bytes": weight_bytes,
            "inputs": [int(i) for i in sg.inputs], "outputs": [int(i) for i in sg.outputs],
            "operators": ops, "tensors": tensors, "metadata": meta}


def format_text(d: dict) -> str:
    lines = [f"{d['file']}: {d['file_bytes']} bytes, constant data {d['constant_bytes']} bytes",
             f"inputs {d['inputs']}  outputs {d['outputs']}", "operators:"]
    for op in d["operators"]:
        extra = f" act={op['activation']}" if "activation" in op else ""
        if "custom_options" in op:
            extra += " options=" + json.dumps(op["custom_options"], sort_keys=True)
        lines.append(f"  [{op['index']}] {op['op']} in={op['inputs']} out={op['outputs']}{extra}")
    lines.append("tensors:")
    for t in d["tensors"]:
        q = f" scale={t['scale']} zp={t['zero_point']}" if t["scale"] else ""
        lines.append(f"  [{t['index']}] {t['name']}: {t['type']} {t['shape']} {t['bytes']} B{q}")
    lines.append("metadata:")
    for k, v in d["metadata"].items():
        lines.append(f"  {k}: {json.dumps(v, sort_keys=True) if not isinstance(v, str) else v}")
    return "\n".join(lines)


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tflm_port.model_inspect", description="Describe a .tflite model.")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = p.parse_args(argv)
    d = describe(read_bytes(a.model), a.model)
    print(json.dumps(d, indent=1) if a.json else format_text(d))
    return 0


if __name__ == "__main__":
    main()
