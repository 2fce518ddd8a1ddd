"""SUB8_FC_A4: fully connected with k-bit weights and k-bit activations (docs/formats.md section 9).

One unit for the operator: its custom options, the converter that writes it from a QAT model with
activation quantizers below 8 bits (``training/act_quantizers.py``), and the numpy integer reference
(registered in ``tflm_port.reference.CUSTOM_BUILDERS`` when this module is imported).

    convert_a4(qat_model, rep_data, metadata=None, name="<model>", layout=0) -> bytes   # layout 7: DSP kernel
    rewrite_a4(container_tflite, layer_bits, act_bits, metadata=None, name="<model>", layout=0) -> bytes
    activation_bits(qat_model) -> [output bits per Dense layer]

Activations below 8 bits are stored one per byte (an INT8 tensor holding the unsigned k-bit value
0..2^k-1, zero point 0): the tensor arena, the reference and tf.lite tools see ordinary int8 tensors;
the operator clamps its output to the k-bit grid, and a consumer with ``input_bits`` < 8 may rely on
its input lying in 0..2^k-1 (the optimized kernels repack it once per layer, docs/kernels.md).
"""
from __future__ import annotations

import numpy as np
from flatbuffers import flexbuffers

from basics.errors import UserError
from tflm_port import layout_table, packing, sparse
from tflm_port.tflite_io import (METADATA_NAME, TENSOR_TYPE_NAMES, add_buffer, custom_options, get_metadata,
                                 load_model, op_name, quant_params, save_model, schema, set_metadata, tensor_data)
from tflm_port.reference import Reference

A4_CODE = "SUB8_FC_A4"
A4_VERSION = 1
OPTION_KEYS = ("version", "bits", "layout", "in_features", "out_features", "activation", "input_bits",
               "output_bits")
TT = schema.TensorType


def check_combo(bits: int, in_bits: int, out_bits: int, activation: str, where: str) -> None:
    """One UserError line for a combination SUB8_FC_A4 does not define."""
    if not 1 <= bits <= 8:
        raise UserError(f"{where}: weight bits {bits} not in 1..8")
    for what, b in (("input_bits", in_bits), ("output_bits", out_bits)):
        if not 2 <= b <= 8:
            raise UserError(f"{where}: {what} {b} not supported by {A4_CODE} (2..8)")
    if out_bits < 8 and activation != "RELU":
        raise UserError(f"{where}: {out_bits}-bit outputs need activation RELU (the unsigned grid), got {activation}")


# --------------------------------------------------------------------------- layout 7
# a4_pairs lives with the other kernel layouts (tflm_port/layouts_opt.py), so the packing registry holds
# it whatever was imported first
from tflm_port.layouts_opt import POS_R0, POS_R1, A4Pairs  # noqa: E402,F401



# --------------------------------------------------------------------------- reference

def build_reference(ref, op, ins, outs, where):
    """The integer reference of one SUB8_FC_A4 operator: SUB8_FULLY_CONNECTED's arithmetic with the
    output clamped to the k-bit grid [zp_out, zp_out + 2^k - 1]."""
    o = custom_options(op)
    for key in OPTION_KEYS:
        if key not in o:
            raise UserError(f"{where}: custom options lack '{key}'")
    if o["version"] != A4_VERSION:
        raise UserError(f"{where}: {A4_CODE} version {o['version']} not supported ({A4_VERSION})")
    try:
        bits, lay, ib, ob = int(o["bits"]), int(o["layout"]), int(o["input_bits"]), int(o["output_bits"])
    except (TypeError, ValueError):
        raise UserError(f"{where}: custom options bits/layout/input_bits/output_bits must be integers") from None
    check_combo(bits, ib, ob, str(o["activation"]), where)
    if lay in sparse.SPARSE_LAYOUTS:
        raise UserError(f"{where}: {A4_CODE} has no sparse layouts (layout {lay})")
    T = ref.tensors
    s_in, zp_in, _ = quant_params(T[ins[0]])
    s_out, zp_out, _ = quant_params(T[outs[0]])
    if ib < 8 and (int(zp_in[0]) != 0 or ins[0] == ref.input_index):
        raise UserError(f"{where}: input_bits {ib} needs an input produced by a {ob}-bit operator with zero point 0 "
                        f"(got zero point {int(zp_in[0])}{', the model input' if ins[0] == ref.input_index else ''})")
    if ob < 8 and int(zp_out[0]) != 0:
        raise UserError(f"{where}: output_bits {ob} needs output zero point 0, got {int(zp_out[0])}")
    fc = ref._build_sub8(op, ins, outs, where)  # same tensors, weights, layouts and requantization
    if ob < 8:
        fc.act_max = min(fc.act_max, fc.zp_out + (1 << ob) - 1)
    fc.input_bits, fc.output_bits = ib, ob
    return fc


def _register():
    from tflm_port import reference  # lazy: the reference imports this plugin by name (registry)

    reference.CUSTOM_BUILDERS[A4_CODE] = build_reference


_register()


# --------------------------------------------------------------------------- converter

def _drop_unused_buffers(model):
    from tflm_port.convert import _drop_unused_buffers as drop  # lazy: convert finds this plugin by name

    drop(model)


def _layout_for(layout: int, bits: int, in_bits: int) -> int:
    """``layout`` 7 is the Cortex-M DSP plan (``layout_table.a4_layout("dsp", ..)``): layout 7 where the A4
    kernel runs (2..4-bit weights, inputs of <= 4 bits), layout 2 (the w4a8 DSP kernel's r4_words) for 8-bit
    inputs with 1..7-bit weights, layout 0 otherwise. Any other layout applies to every layer."""
    if layout != A4Pairs.id:
        return layout
    return layout_table.a4_layout("dsp", bits, in_bits)


def rewrite_a4(data: bytes, layer_bits: list[int], act_bits: list[int], metadata: dict | None = None,
               name: str = "<model>", layout: int = 0) -> bytes:
    """A plain int8 .tflite (FULLY_CONNECTED chain whose k-bit activations sit in int8 containers with
    the k-bit step) -> every FULLY_CONNECTED as SUB8_FC_A4 with ``input_bits`` = the previous layer's
    ``act_bits`` (8 for the first) and ``output_bits`` = its own."""
    from tflm_port.convert import convert  # lazy: convert finds this plugin by name

    layer_bits, act_bits = [int(b) for b in layer_bits], [int(b) for b in act_bits]
    if len(layer_bits) != len(act_bits):
        raise UserError(f"{name}: {len(layer_bits)} weight widths but {len(act_bits)} activation widths")
    packing.get_layout(layout)
    lays = [_layout_for(layout, b, 8 if j == 0 else act_bits[j - 1]) for j, b in enumerate(layer_bits)]
    for b, lay in zip(layer_bits, lays):
        packing.get_layout(lay).check_bits(b)
    plain = convert(data, layer_bits, mode="container", metadata=metadata, name=name)
    model = load_model(plain, name)
    sg = model.subgraphs[0]
    fcs = [op for op in sg.operators if op_name(model, op) == "FULLY_CONNECTED"]
    if len(fcs) != len(act_bits):
        raise UserError(f"{name}: {len(act_bits)} activation widths but {len(fcs)} FULLY_CONNECTED layers")
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = A4_CODE
    code.version = 1
    model.operatorCodes.append(code)
    idx = len(model.operatorCodes) - 1
    A = schema.ActivationFunctionType
    for j, op in enumerate(fcs):
        where = f"{name}: layer {j} ({layer_bits[j]}-bit weights)"
        ib = 8 if j == 0 else act_bits[j - 1]
        ob = act_bits[j]
        opt = op.builtinOptions
        act = opt.fusedActivationFunction if opt is not None else A.NONE
        if act not in (A.NONE, A.RELU):
            raise UserError(f"{where}: fused activation {act} cannot be expressed by {A4_CODE} (NONE/RELU)")
        act_s = "RELU" if act == A.RELU else "NONE"
        check_combo(layer_bits[j], ib, ob, act_s, where)
        x_t, o_t, w_t = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]], sg.tensors[op.inputs[1]]
        if j > 0 and op.inputs[0] != fcs[j - 1].outputs[0]:
            raise UserError(f"{where}: input is not the previous layer's output (only FC chains)")
        if x_t.type != TT.INT8 or o_t.type != TT.INT8:
            raise UserError(f"{where}: activations are {TENSOR_TYPE_NAMES.get(x_t.type)}, expected INT8")
        if ob < 8:
            o_t.quantization.zeroPoint = [0]  # the int8 container's -128 becomes the unsigned grid's 0
        w = tensor_data(model, w_t)
        w = w.reshape(w.shape[0], -1).astype(np.int8)
        out_f, in_f = w.shape
        packed = packing.pack(w, layer_bits[j], lays[j])
        w_t.buffer = add_buffer(model, packed)
        w_t.type = TT.UINT8
        w_t.shape = [len(packed)]
        w_t.shapeSignature = None
        op.opcodeIndex = idx
        op.builtinOptionsType = 0
        op.builtinOptions = None
        opts = {"version": A4_VERSION, "bits": layer_bits[j], "layout": lays[j], "in_features": in_f,
                "out_features": out_f, "activation": act_s, "input_bits": ib, "output_bits": ob}
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(opts)), np.uint8).copy()
        op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    meta = get_metadata(model) or {}
    meta.update({"mode": "a4", "layout": layout, "layer_layouts": lays, "activation_bits": act_bits})
    set_metadata(model, METADATA_NAME, meta)
    _drop_unused_buffers(model)
    out = save_model(model)

    Reference.from_bytes(out, name)  # the written model must load (shapes, options, grids)
    return out


def retarget_a4(data: bytes, layout: int = 0, name: str = "<model>", family: str | None = None) -> bytes:
    """An A4 model with every SUB8_FC_A4's weights re-stored for ``layout`` (7: the Cortex-M DSP plan of
    ``_layout_for``; 0: the reference layout) or, with ``family`` (an optimized kernel family of
    ``layout_table``: dsp, mve, neon, neon_dotprod), for that family's kernels (``layout_table.a4_layout``:
    its A4 kernel's layout for <= 4-bit inputs, its FC kernel's for 8-bit ones); same integers, same arithmetic."""
    if family is not None and family not in layout_table.A4_LAYOUTS:
        raise UserError(f"{name}: kernel family '{family}' unknown (use one of {', '.join(layout_table.A4_LAYOUTS)})")
    model = load_model(bytes(data), name)
    sg = model.subgraphs[0]
    lays = []
    for op in sg.operators or []:
        if op_name(model, op) != A4_CODE:
            continue
        o = custom_options(op)
        bits, nin, nout, ib = int(o["bits"]), int(o["in_features"]), int(o["out_features"]), int(o["input_bits"])
        w_t = sg.tensors[op.inputs[1]]
        w = packing.unpack(tensor_data(model, w_t).reshape(-1), bits, nout, nin, int(o["layout"]))
        lay = layout_table.a4_layout(family, bits, ib) if family else _layout_for(layout, bits, ib)
        packed = packing.pack(w, bits, lay)
        w_t.buffer = add_buffer(model, packed)
        w_t.shape = [len(packed)]
        o["layout"] = lay
        op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(o)), np.uint8).copy()
        lays.append(lay)
    if not lays:
        raise UserError(f"{name}: no {A4_CODE} operator to retarget")
    meta = get_metadata(model) or {}
    meta.update({"layout": layout, "layer_layouts": lays})
    if family is not None:
        meta["kernel_family"] = family
    set_metadata(model, METADATA_NAME, meta)
    _drop_unused_buffers(model)
    out = save_model(model)

    Reference.from_bytes(out, name)
    return out
