"""Rewrite a plain TFLiteConverter output into the sub-8-bit forms of docs/formats.md.

    convert(tflite_bytes_or_qat_model, layer_bits, mode="auto", layout=0, metadata=None, rep_data=None) -> bytes

* ``layer_bits[j]`` is the bit width of the j-th FULLY_CONNECTED operator in execution order.
* ``mode``: ``"auto"`` (INT8 for 8, INT4 for 2/3/4, SUB8_FULLY_CONNECTED for 1/5/6/7),
  ``"container"`` (k-bit values in INT8, standard FULLY_CONNECTED) or ``"dense"``
  (SUB8_FULLY_CONNECTED for every k < 8).
* Each layer's integer weights must lie on the k-bit grid, possibly times a common factor g (the
  TFLite converter writes 2-bit and 1-bit fake quant as {-7, 0, 7}/7): the values are divided by g and
  the weight scale multiplied by g (in float32). Anything else is a ``UserError``.

* ``target``: pick the storage per layer for that board's fastest kernel instead of mode/layout
  (``TARGETS``): Cortex-M4/M7 (DSP): SUB8_FULLY_CONNECTED layout 8 (lanes16) for k = 1, 2, 4, layout 2 for
  the other k < 8; Cortex-M55 (Helium):
  layout 6 (rows_per_byte) for k = 1, 2, 4 and layout 9 (rows24) for k = 3; Cortex-A76 (NEON dot product) and
  Cortex-A53 (NEON armv8.0): layout 6 for k = 1, 2, layout 9 for k = 3, layout 3 for k = 4; k = 5..7 as INT8 container
  (the optimized int8 kernel) on Helium / NEON;
  8 bits INT8 FULLY_CONNECTED everywhere; ``generic``: mode auto, layout 0 (reference kernels).
* ``retarget(model_bytes, target)``: the same for an already converted model (deploy).

CLI: ``python -m tflm_port.convert in.tflite out.tflite --bits 4,4,4,4,8 [--mode auto] [--layout 0]
[--target mps2-an386] [--sparse nm:2:4|block:8|csr|none[,...]] [--metadata meta.json]``; it prints the weight
bytes per layer and format.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
from functools import reduce
from importlib.metadata import version
from pathlib import Path

import numpy as np
from flatbuffers import flexbuffers

from basics.atomic import atomic_write_bytes
from basics.errors import UserError, cli_main
from tflm_port import layout_table, packing, sparse
from tflm_port.board_table import BOARDS, UART_ONLY
from tflm_port.layout_table import ISA_PREFERRED
from tflm_port.reference import Reference
from tflm_port.tflite_io import (CUSTOM_CODE, METADATA_NAME, TENSOR_TYPE_NAMES, add_buffer, buffer_bytes, custom_options,
                                 get_metadata, load_model, op_name, quant_params, read_bytes, save_model, schema,
                                 set_metadata, tensor_data)

MODES = ("auto", "container", "dense")
FORMAT_VERSION = 1
INT4_FC_VERSION = 10  # FULLY_CONNECTED op version TFLite's converter writes for INT4 weights
TT = schema.TensorType


def project_version() -> str:
    try:
        return version("subkws")
    except Exception:  # pragma: no cover
        return "0.1.0"


# target -> (kernel family, plan: bits -> (storage, layout)). The layout each family prefers is
# tflm_port/layout_table.py's ISA_PREFERRED, the table the C kernels' kws_fc_opt_preferred_layout() read.
def _family_plan(family: str):
    def plan(bits):
        lay = ISA_PREFERRED[family][bits]
        return ("int8", 0) if bits == 8 or lay < 0 else ("custom", lay)
    return plan


# every board of tflm_port/board_table.py (and the UART-only STM32F405) plus "generic" (reference kernels)
TARGETS = {**{b: (v.family, _family_plan(v.family)) for b, v in BOARDS.items()},
           **{b: (fam, _family_plan(fam)) for b, (_, fam, _) in UART_ONLY.items()},
           "generic": ("reference", None)}


def target_plan(target: str, layer_bits: list[int]) -> list[tuple[str, int]]:
    """[(storage 'int8'|'int4'|'custom', layout)] per layer for a target (see TARGETS)."""
    if target not in TARGETS:
        raise UserError(f"target '{target}' unknown (use one of {', '.join(TARGETS)})")
    plan = TARGETS[target][1]
    return [(storage_for(b, "auto"), 0) if plan is None else plan(int(b)) for b in layer_bits]


def storage_for(bits: int, mode: str) -> str:
    """'int8' | 'int4' | 'custom' for a layer of ``bits`` in ``mode``."""
    if mode not in MODES:
        raise UserError(f"mode '{mode}' unknown (use one of {', '.join(MODES)})")
    if not 1 <= bits <= 8:
        raise UserError(f"bit width {bits} not in 1..8")
    if bits == 8 or mode == "container":
        return "int8"
    if mode == "dense":
        return "custom"
    return "int4" if bits in (2, 3, 4) else "custom"


def to_grid(w: np.ndarray, bits: int, where: str) -> tuple[np.ndarray, int]:
    """Return (w / g, g) with w / g on the k-bit grid; g = 1 if w already is; else UserError."""
    lo, hi = packing.grid_range(bits)

    def fits(v):
        if bits == 1:
            return bool(np.all((v == 1) | (v == -1)))
        return bool(np.all((v >= lo) & (v <= hi)))

    if fits(w):
        return w.astype(np.int8), 1
    nz = np.abs(w[w != 0]).astype(np.int64)
    g = int(reduce(math.gcd, np.unique(nz).tolist(), 0)) if nz.size else 1
    if g > 1 and np.all(w % g == 0) and fits(w // g):
        return (w // g).astype(np.int8), g
    vals = np.unique(w)
    raise UserError(f"{where}: weights are not on the {bits}-bit grid "
                    f"(values {vals.min()}..{vals.max()}, {vals.size} distinct; expected "
                    f"{'{-1,+1}' if bits == 1 else f'[{lo}, {hi}]'} times a common factor)")


def parse_sparse(value, n_layers: int) -> list:
    """``sparse`` argument -> [SparseSpec | None] per layer: None, one spec / string for every layer,
    or a list (strings like "nm:2:4,block:8,csr,none" are split on commas)."""
    if value is None:
        return [None] * n_layers
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",")]
    if isinstance(value, sparse.SparseSpec):
        value = [value]
    specs = [v if isinstance(v, sparse.SparseSpec) or v is None else sparse.SparseSpec.parse(str(v)) for v in value]
    if len(specs) == 1:
        specs = specs * n_layers
    if len(specs) != n_layers:
        raise UserError(f"--sparse: {len(specs)} entries for {n_layers} FULLY_CONNECTED layers (give one or one per layer)")
    return specs


def convert(src: bytes, layer_bits: list[int], mode: str = "auto", layout: int = 0, metadata: dict | None = None,
            name: str = "<model>", target: str | None = None, sparse_spec=None) -> bytes:
    """Convert TFLite bytes (a QAT Keras model: ``training.qat.to_tflite`` first) to the requested sub-8-bit form;
    with ``target``, mode/layout are chosen per layer for that target's kernels (``TARGETS``);
    ``sparse_spec`` (``parse_sparse``) stores the chosen layers in a sparse layout (4 N:M, 5 block/CSR)."""
    layer_bits = [int(b) for b in layer_bits]
    for b in layer_bits:
        storage_for(b, mode)
    if target is not None:
        plan = target_plan(target, layer_bits)
    else:
        plan = [(storage_for(b, mode), layout) for b in layer_bits]
    specs = parse_sparse(sparse_spec, len(layer_bits))
    plan = [(st, lay) if sp is None else (("tflite_sparse", 0) if sp.kind == "tflite" else ("custom", sp.layout))
            for (st, lay), sp in zip(plan, specs)]
    for (store, lay_id), b, sp in zip(plan, layer_bits, specs):
        if sp is not None:
            if b not in sparse.SUPPORTED_BITS:
                raise UserError(f"--sparse {sp}: {b}-bit layers cannot be sparse (2..8 bits; 1-bit weights have no zero)")
        elif store == "custom":
            if lay_id in sparse.SPARSE_LAYOUTS:   # 4/5 need the sparse index data: only --sparse writes them
                raise UserError(f"{name}: layout {lay_id} is a sparse layout (4 N:M, 5 block/CSR): use --sparse, "
                                "not --layout (dense kernel layouts: 0, 2, 3, 6, 8, 9)")
            if lay_id in packing.RETIRED_LAYOUTS:
                raise UserError(f"{name}: {packing.RETIRED_LAYOUTS[lay_id]}")
            packing.get_layout(lay_id).check_bits(b)
    if not isinstance(src, (bytes, bytearray, memoryview)):
        raise UserError(f"{name}: convert takes .tflite bytes, got {type(src).__name__} (a Keras model: "
                        "training.qat.to_tflite turns it into bytes)")
    data = bytes(src)
    model = load_model(data, name)
    sg = model.subgraphs[0]
    fc_ops = [(k, op) for k, op in enumerate(sg.operators or []) if op_name(model, op) == "FULLY_CONNECTED"]
    if len(fc_ops) != len(layer_bits):
        raise UserError(f"{name}: layer_bits has {len(layer_bits)} entries but the model has "
                        f"{len(fc_ops)} FULLY_CONNECTED layers")
    custom_index = None
    need_int4_version = False
    rescaled = []
    densities = []
    for (k, op), bits, (store, layout), sp in zip(fc_ops, layer_bits, plan, specs):
        where = f"{name}: layer {k} (FULLY_CONNECTED, {bits}-bit)"
        if len(op.inputs) < 2 or op.inputs[1] < 0 or len(op.outputs) != 1 or op.inputs[0] < 0:
            raise UserError(f"{where}: needs input, weights (and bias) and one output; has inputs {op.inputs[:8]}")
        w_t = sg.tensors[op.inputs[1]]
        if len(w_t.shape) < 2:
            raise UserError(f"{where}: weights of shape {w_t.shape}, expected [out, in]")
        if w_t.type not in (TT.INT8, TT.INT4):
            raise UserError(f"{where}: weights are {TENSOR_TYPE_NAMES.get(w_t.type, w_t.type)}, expected INT8 or INT4 "
                            "(was the model converted with int8 quantization?)")
        w = tensor_data(model, w_t)
        if w is None:
            raise UserError(f"{where}: weights are not a constant tensor")
        s_w, zp_w, _ = quant_params(w_t)
        if len(s_w) != 1:
            raise UserError(f"{where}: per-channel weight scales ({len(s_w)}) not supported; use per-tensor")
        if np.any(zp_w != 0):
            raise UserError(f"{where}: weight zero point {int(zp_w[0])} != 0 (symmetric weights needed)")
        w = w.reshape(w.shape[0], -1)
        out_f, in_f = w.shape
        wq, g = to_grid(w.astype(np.int64), bits, where) if bits < 8 else (w.astype(np.int8), 1)
        if g != 1:
            # w = g * wq: fold g into the weight scale; the int32 bias (scale s_in*s_w) is divided by g
            # with rounding half away from zero (exact when divisible; else off by <= 0.5 new LSB).
            w_t.quantization.scale = [float(np.float32(s_w[0]) * np.float32(g))]
            rescaled.append(k)
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b_t = sg.tensors[op.inputs[2]]
                bias = tensor_data(model, b_t).astype(np.int64)
                nb = np.sign(bias) * ((np.abs(bias) + g // 2) // g)
                b_t.buffer = add_buffer(model, nb.astype("<i4").tobytes())
                s_in = np.float32(quant_params(sg.tensors[op.inputs[0]])[0][0])
                b_t.quantization.scale = [float(np.float32(s_in) * np.float32(w_t.quantization.scale[0]))]
        densities.append(round(sparse.density(wq), 6))
        s_w_new = float(np.float32(w_t.quantization.scale[0]))
        w_t.buffer = add_buffer(model, b"")  # own buffer: the converter may share identical ones
        buf = model.buffers[w_t.buffer]
        if store == "tflite_sparse":   # INT8 FULLY_CONNECTED with TFLite's SparsityParameters (1 x 16 blocks)
            sparse.encode_tflite_sparsity(model, w_t, wq.astype(np.int8), where)
        elif store == "int8":
            w_t.type = TT.INT8
            buf.data = wq.astype(np.int8).reshape(-1).view(np.uint8).copy()
        elif store == "int4":
            w_t.type = TT.INT4
            buf.data = np.frombuffer(packing.pack_int4(wq), np.uint8).copy()
            need_int4_version = True
        else:
            opt = op.builtinOptions
            act = opt.fusedActivationFunction if opt is not None else 0
            A = schema.ActivationFunctionType
            if act not in (A.NONE, A.RELU):
                raise UserError(f"{where}: fused activation {act} cannot be expressed by {CUSTOM_CODE} (NONE/RELU)")
            if opt is not None and (opt.keepNumDims or opt.weightsFormat != 0):
                raise UserError(f"{where}: keep_num_dims / shuffled weights not supported by {CUSTOM_CODE}")
            x_t = sg.tensors[op.inputs[0]]
            if x_t.type != TT.INT8:
                raise UserError(f"{where}: activations are {TENSOR_TYPE_NAMES.get(x_t.type)}, expected INT8")
            packed = (packing.pack(wq, bits, layout) if sp is None
                      else sparse.pack(wq, bits, sp, where))
            w_t.type = TT.UINT8
            w_t.shape = [len(packed)]
            w_t.shapeSignature = None
            q = w_t.quantization
            q.scale, q.zeroPoint, q.quantizedDimension = [s_w_new], [0], 0
            buf.data = np.frombuffer(packed, np.uint8).copy()
            if custom_index is None:
                code = schema.OperatorCodeT()
                code.builtinCode = schema.BuiltinOperator.CUSTOM
                code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
                code.customCode = CUSTOM_CODE
                code.version = 1
                model.operatorCodes.append(code)
                custom_index = len(model.operatorCodes) - 1
            op.opcodeIndex = custom_index
            op.builtinOptionsType = 0
            op.builtinOptions = None
            opts = {"version": 1, "bits": bits, "layout": layout, "in_features": in_f, "out_features": out_f,
                    "activation": "RELU" if act == A.RELU else "NONE"}
            if sp is not None:
                opts.update(sp.options(wq))
            op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
            op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    if need_int4_version:
        for code in model.operatorCodes:
            if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.FULLY_CONNECTED:
                code.version = max(code.version, INT4_FC_VERSION)
    meta = dict(metadata or {})
    meta.update({"format": "subkws-tflite", "format_version": FORMAT_VERSION, "project_version": project_version(),
                 "layer_bits": layer_bits, "mode": mode, "layout": layout})
    meta.pop("target", None)
    meta.pop("layer_storage", None)
    if target is not None:
        meta.update({"mode": "target", "target": target, "layout": max(lay for _, lay in plan),
                     "layer_storage": [f"{st}/{lay}" if st == "custom" else st for st, lay in plan]})
    if rescaled:
        meta["rescaled_operators"] = rescaled
    meta.pop("layer_sparsity", None)
    meta.pop("layer_density", None)
    if any(sp is not None for sp in specs):
        meta["layer_sparsity"] = [str(sp) if sp is not None else "none" for sp in specs]
        meta["layer_density"] = densities
    set_metadata(model, METADATA_NAME, meta)
    _drop_unused_buffers(model)
    return save_model(model)


def to_plain(data: bytes, name: str = "<model>") -> tuple[bytes, list[int]]:
    """A converted model back to standard FULLY_CONNECTED ops with the same integer weights
    (SUB8_FULLY_CONNECTED of any layout -> INT8 weights on the k-bit grid; INT4 / INT8 kept), and its
    layer bits (metadata "layer_bits", else 8/4/k from the tensors). Exact: convert() of the result
    gives the same arithmetic (same scales, biases, activations)."""
    Reference.from_bytes(bytes(data), name)  # validates operators, custom options and shapes first
    model = load_model(bytes(data), name)
    sg = model.subgraphs[0]
    fc_code = None
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.FULLY_CONNECTED:
            fc_code = i
    bits_found = []
    for op in sg.operators or []:
        kind = op_name(model, op)
        if kind == CUSTOM_CODE:
            o = custom_options(op)
            bits, lay, nin, nout = int(o["bits"]), int(o["layout"]), int(o["in_features"]), int(o["out_features"])
            w_t = sg.tensors[op.inputs[1]]
            raw = tensor_data(model, w_t).reshape(-1)
            w = (sparse.unpack(raw, bits, nout, nin, lay, o, name) if lay in sparse.SPARSE_LAYOUTS
                 else packing.unpack(raw, bits, nout, nin, lay))
            w_t.buffer = add_buffer(model, w.astype(np.int8).tobytes())
            w_t.type = TT.INT8
            w_t.shape = [nout, nin]
            w_t.shapeSignature = None
            if fc_code is None:
                code = schema.OperatorCodeT()
                code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
                code.version = 1
                model.operatorCodes.append(code)
                fc_code = len(model.operatorCodes) - 1
            opt = schema.FullyConnectedOptionsT()
            opt.fusedActivationFunction = (schema.ActivationFunctionType.RELU if o.get("activation") == "RELU"
                                           else schema.ActivationFunctionType.NONE)
            op.opcodeIndex = fc_code
            op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
            op.builtinOptions = opt
            op.customOptions = None
            bits_found.append(bits)
        elif kind == "FULLY_CONNECTED":
            w_t = sg.tensors[op.inputs[1]]
            if w_t.sparsity is not None:   # TFLite's standard encoding -> dense INT8
                w = sparse.decode_tflite_sparsity(w_t, buffer_values(model, w_t), name)
                w_t.sparsity = None
                w_t.buffer = add_buffer(model, w.tobytes())
            bits_found.append(4 if w_t.type == TT.INT4 else 8)
    md = get_metadata(model) or {}
    lb = md.get("layer_bits")
    lb = [int(b) for b in lb] if isinstance(lb, list) and all(type(b) is int and 1 <= b <= 8 for b in lb) else []
    _drop_unused_buffers(model)
    return save_model(model), (lb if len(lb) == len(bits_found) else bits_found)


def retarget(data: bytes, target: str, name: str = "<model>") -> bytes:
    """Re-store an already converted model for ``target`` (TARGETS); metadata kept."""
    if (get_metadata(load_model(bytes(data), name)) or {}).get("mode") == "a4":   # SUB8_FC_A4 (tflm_port/fc_a4.py)
        # fc_a4 is an operator plugin built on this module (as the reference finds it by name in
        # reference/registry.py), so it is looked up at run time, not imported: no cycle
        fc_a4 = importlib.import_module("tflm_port.fc_a4")
        if target not in TARGETS:
            raise UserError(f"target '{target}' unknown (use one of {', '.join(TARGETS)})")
        family = TARGETS[target][0]   # the family's A4 / FC kernel layouts (layout_table.a4_layout), 0 on "generic"
        return fc_a4.retarget_a4(data, 0, name, family=family if family in layout_table.A4_LAYOUTS else None)

    plain, layer_bits = to_plain(data, name)
    md = get_metadata(load_model(bytes(data), name)) or {}
    sp = md.get("layer_sparsity")  # sparse layers stay sparse (their kernels are chosen at prepare time)
    return convert(plain, layer_bits, metadata=md, name=name, target=target,
                   sparse_spec=sp if isinstance(sp, list) and len(sp) == len(layer_bits) else None)


def weight_report(data: bytes, name: str = "<model>") -> list[dict]:
    """Per FC-like layer of a converted model: storage format, bit width, density, weight bytes."""
    model = load_model(bytes(data), name)
    sg = model.subgraphs[0]
    rows = []
    for op in sg.operators or []:
        kind = op_name(model, op)
        if kind not in ("FULLY_CONNECTED", CUSTOM_CODE):
            continue
        w_t = sg.tensors[op.inputs[1]]
        raw = buffer_values(model, w_t) if w_t.sparsity is not None else tensor_data(model, w_t)
        nbytes = 0 if raw is None else int(raw.size)
        if kind == CUSTOM_CODE:
            o = custom_options(op)
            lay, bits = int(o["layout"]), int(o["bits"])
            nin, nout = int(o["in_features"]), int(o["out_features"])
            if lay in sparse.SPARSE_LAYOUTS:
                fmt = str(sparse.spec_from_options(lay, o))
                w = sparse.unpack(raw.reshape(-1), bits, nout, nin, lay, o, name)
            else:
                fmt = f"layout{lay}"
                w = packing.unpack(raw.reshape(-1), bits, nout, nin, lay)
        elif w_t.sparsity is not None:
            bits, fmt = 8, "tflite"
            w = sparse.decode_tflite_sparsity(w_t, raw, name)
            nbytes += sum(4 * len(getattr(d, a).values) for d in w_t.sparsity.dimMetadata or []
                          for a in ("arraySegments", "arrayIndices") if getattr(d, a, None) is not None)
        else:
            bits = 4 if w_t.type == TT.INT4 else 8
            fmt = "int4" if bits == 4 else "int8"
            w = raw                                   # tensor_data unpacks INT4
            if bits == 4:
                nbytes = (nbytes + 1) // 2
        rows.append({"format": fmt, "bits": bits, "density": round(sparse.density(w), 4), "weight_bytes": nbytes})
    return rows


def buffer_values(model, w_t) -> np.ndarray:
    """The raw int8 values of a weight tensor's buffer (for sparse tensors, whose buffer does not
    match their shape)."""
    return np.frombuffer(buffer_bytes(model, w_t.buffer) or b"", np.int8)


def _drop_unused_buffers(model) -> None:
    """Empty the buffers no tensor or metadata refers to any more (indices stay valid)."""
    used = {md.buffer for md in model.metadata or []}
    for sg in model.subgraphs:
        used.update(t.buffer for t in sg.tensors or [])
    for i, buf in enumerate(model.buffers):
        if i not in used:
            buf.data = None


def _parse_bits(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x]
    except ValueError:
        raise UserError(f"--bits: '{s}' is not a comma-separated list of integers") from None


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tflm_port.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--bits", required=True, help="bit width per FULLY_CONNECTED layer, e.g. 4,4,4,4,8")
    p.add_argument("--mode", default="auto", choices=MODES)
    p.add_argument("--layout", type=int, default=0, help="SUB8 weight layout (0 row_lsb, "
                   "2 r4_words: Cortex-M DSP kernels, 3 r4_nib32: Helium/NEON kernels, "
                   "6 rows_per_byte: Helium/NEON dot-product kernels, 1/2/4 bits; 8 lanes16: Cortex-M DSP kernels, "
                   "1/2/4 bits; 9 rows24: Helium/NEON kernels, 3 bits; 4 and 5 are the sparse layouts: --sparse)")
    p.add_argument("--target", choices=sorted(TARGETS),
                   help="choose mode/layout per layer for this board's optimized kernels (overrides --mode/--layout)")
    p.add_argument("--sparse", help="store layers sparse (docs/formats.md section 8): nm:N:M (e.g. nm:2:4, "
                   "nm:1:8), block:B (B = 1, 2, 4, 8, 16 inputs per block), csr (= block:1), none; one value for "
                   "every layer or a comma-separated list per FULLY_CONNECTED layer")
    p.add_argument("--metadata", help="JSON file merged into the 'subkws' metadata")
    a = p.parse_args(argv)
    meta = None
    if a.metadata:
        try:
            meta = json.loads(read_bytes(a.metadata).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"{a.metadata}: not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise UserError(f"{a.metadata}: expected a JSON object, got {type(meta).__name__}")
    out = convert(read_bytes(a.input), _parse_bits(a.bits), a.mode, a.layout, meta, name=a.input, target=a.target,
                  sparse_spec=a.sparse)
    if Path(a.output).is_dir():
        raise UserError(f"{a.output}: is a folder; give the output file name")
    try:
        atomic_write_bytes(a.output, out)
    except OSError as e:
        raise UserError(f"{a.output}: cannot write ({e.strerror or e})") from None
    print(f"wrote {a.output} ({len(out)} bytes)")
    for j, r in enumerate(weight_report(out, a.output)):
        print(f"  layer {j}: {r['format']:>8} {r['bits']}-bit density {r['density']:.3f} weights {r['weight_bytes']} bytes")
    return 0


if __name__ == "__main__":
    main()
