"""Reading and writing .tflite flatbuffers with TFLite's generated object API.

Everything here turns a malformed file into a one-line ``UserError`` instead of a traceback.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
import importlib.util
import struct
import sys

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from basics.errors import UserError
from tflm_port.packing import unpack_int4



def _load_schema():
    """TFLite's generated flatbuffer object API from the TF wheel, loaded as a standalone module so
    that reading a model does not pay for ``import tensorflow`` (seconds, ~600 MB)."""
    if "tensorflow.lite.python.schema_py_generated" in sys.modules:
        return sys.modules["tensorflow.lite.python.schema_py_generated"]
    spec = importlib.util.find_spec("tensorflow")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            path = Path(loc) / "lite" / "python" / "schema_py_generated.py"
            if path.is_file():
                sspec = importlib.util.spec_from_file_location("_subkws_tflite_schema", path)
                mod = importlib.util.module_from_spec(sspec)
                sspec.loader.exec_module(mod)
                sys.modules["_subkws_tflite_schema"] = mod
                return mod
    from tensorflow.lite.python import schema_py_generated  # pragma: no cover  (lazy: the slow fallback)

    return schema_py_generated  # pragma: no cover


schema = _load_schema()

FILE_IDENTIFIER = b"TFL3"
CUSTOM_CODE = "SUB8_FULLY_CONNECTED"
METADATA_NAME = "subkws"

TENSOR_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
BUILTIN_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
ACTIVATION_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}


# Limits a model must stay within before anything uses it (the firmware's are tighter: kws.h).
# They bound what a hostile file can make a tool allocate: a shape of [1, 2^31-1] is refused here,
# not discovered by the kernel's out-of-memory killer.
LIMITS = {"bytes": 1 << 30, "subgraphs": 16, "tensors": 4096, "operators": 4096, "operator_codes": 1024,
          "buffers": 1 << 16, "rank": 8, "elements": 1 << 24, "op_tensors": 64, "name_bytes": 4096}
# bytes per element of the types whose constant data is checked against the shape (INT4: packed)
_ZP_RANGE = {9: (-128, 127), 3: (0, 255), 17: (-8, 7), 7: (-32768, 32767)}  # INT8, UINT8, INT4, INT16
_TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 17: 0.5}


def read_bytes(path: str | Path) -> bytes:
    try:
        p = Path(path)
        if p.is_dir():
            raise UserError(f"{path}: is a folder, not a file")
        if p.is_file() and p.stat().st_size > LIMITS["bytes"]:
            raise UserError(f"{path}: {p.stat().st_size} bytes, above the {LIMITS['bytes']}-byte limit")
        return p.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None


def text(value) -> str:
    """A flatbuffer string as text: bytes that are not UTF-8 are replaced (U+FFFD), never an error."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def load_model(data: bytes, name: str = "<bytes>") -> "schema.ModelT":
    """Parse and validate a .tflite flatbuffer; any problem -> UserError naming ``name``.

    This is the one place every tool (inspect, convert, export, reference, deploy) reads a model
    through: sizes are checked against ``LIMITS``, indices against their tables, constant data
    against shapes, quantization for finiteness, and every name is decoded (errors replaced), so
    that what comes back can be used without further checks of the file's structure."""
    data = bytes(data)
    if len(data) < 8:
        raise UserError(f"{name}: not a TFLite model ({len(data)} bytes, too short)")
    if len(data) > LIMITS["bytes"]:
        raise UserError(f"{name}: {len(data)} bytes, above the {LIMITS['bytes']}-byte limit")
    if data[4:8] != FILE_IDENTIFIER:
        raise UserError(f"{name}: not a TFLite model (file identifier {data[4:8]!r}, expected b'TFL3')")
    root = int.from_bytes(data[0:4], "little")
    if root + 4 > len(data):
        raise UserError(f"{name}: truncated or corrupted TFLite file (root offset {root} beyond {len(data)} bytes)")
    try:
        _check_vector_lengths(data)
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except UserError as e:
        raise UserError(f"{name}: truncated or corrupted TFLite file ({e})") from None
    except Exception as e:  # flatbuffers raises IndexError/struct.error/... on bad offsets
        raise UserError(f"{name}: truncated or corrupted TFLite file ({type(e).__name__}: {e})") from None
    _validate(model, name, len(data))
    return model


def _check_vector_lengths(data: bytes) -> None:
    """Refuse, before unpacking, vectors whose length runs past the end of the file: the object API
    would otherwise build a Python list of up to 2^32 entries from a single corrupted length."""
    n = len(data)

    def u32(pos):
        if pos < 0 or pos + 4 > n:
            raise UserError(f"offset {pos} beyond end of file")
        return struct.unpack_from("<I", data, pos)[0]

    def table(pos):
        vt = pos - struct.unpack_from("<i", data, pos)[0] if pos + 4 <= n else -1
        if vt < 0 or vt + 4 > n:
            raise UserError(f"table at {pos}: vtable outside the file")
        vsize = struct.unpack_from("<H", data, vt)[0]
        if vt + vsize > n:
            raise UserError(f"table at {pos}: vtable outside the file")
        return vt, vsize

    def field(pos, slot):
        vt, vsize = table(pos)
        o = 4 + 2 * slot
        if o + 2 > vsize:
            return None
        off = struct.unpack_from("<H", data, vt + o)[0]
        return pos + off if off else None

    def vector(pos, slot, elem):
        f = field(pos, slot)
        if f is None:
            return None, 0
        v = f + u32(f)
        count = u32(v)
        if v + 4 + count * elem > n:
            raise UserError(f"vector of {count} entries at {v} runs past the end of the file")
        return v + 4, count

    root = u32(0)
    for slot in (1, 2, 4, 5, 6):  # operator_codes, subgraphs, buffers, metadata_buffer, metadata
        start, count = vector(root, slot, 4)
        if slot in (1, 2, 4, 6) and count:
            lim = {1: "operator_codes", 2: "subgraphs", 4: "buffers", 6: "buffers"}[slot]
            if count > LIMITS[lim]:
                raise UserError(f"{count} {lim} (limit {LIMITS[lim]})")
        if slot == 2:
            for i in range(count):
                sg = start + 4 * i + u32(start + 4 * i)
                for s2, elem in ((0, 4), (1, 4), (2, 4), (3, 4)):  # tensors, inputs, outputs, operators
                    s2start, s2count = vector(sg, s2, elem)
                    if s2 == 0 and s2count > LIMITS["tensors"]:
                        raise UserError(f"{s2count} tensors (limit {LIMITS['tensors']})")
                    if s2 == 3 and s2count > LIMITS["operators"]:
                        raise UserError(f"{s2count} operators (limit {LIMITS['operators']})")
                    if s2 == 0:
                        for j in range(s2count):
                            t = s2start + 4 * j + u32(s2start + 4 * j)
                            vector(t, 0, 4)  # shape
                            vector(t, 7, 4)  # shape_signature
                    if s2 == 3:
                        for j in range(s2count):
                            op = s2start + 4 * j + u32(s2start + 4 * j)
                            for slot_op, el in ((1, 4), (2, 4), (5, 1), (7, 1), (8, 4)):
                                vector(op, slot_op, el)
        if slot == 4:
            for i in range(count):
                b = start + 4 * i + u32(start + 4 * i)
                vector(b, 0, 1)


def _validate(m, name: str, size: int) -> None:
    def bad(msg):
        raise UserError(f"{name}: corrupted TFLite file: {msg}")

    L = LIMITS
    m.buffers = m.buffers or []
    m.operatorCodes = m.operatorCodes or []
    m.metadata = m.metadata or []
    if not m.subgraphs:
        bad("no subgraphs")
    nbuf, ncode = len(m.buffers), len(m.operatorCodes)
    for buf in m.buffers:
        if buf.offset and (buf.offset < 0 or buf.size < 0 or buf.offset + buf.size > size):
            bad(f"buffer data at offset {buf.offset} (+{buf.size}) beyond end of file ({size} bytes)")
    for code in m.operatorCodes:
        code.customCode = text(code.customCode) if code.customCode is not None else None
        if code.customCode is not None and len(code.customCode) > L["name_bytes"]:
            bad(f"custom operator name of {len(code.customCode)} characters")
    for md in m.metadata:
        md.name = text(md.name)
        if not 0 <= md.buffer < nbuf:
            bad(f"metadata buffer index {md.buffer} out of range")
    for sg in m.subgraphs:
        sg.name = text(sg.name) if sg.name is not None else None
        sg.tensors = sg.tensors or []
        sg.operators = sg.operators or []
        sg.inputs = [int(i) for i in (sg.inputs if sg.inputs is not None else [])]
        sg.outputs = [int(i) for i in (sg.outputs if sg.outputs is not None else [])]
        nt = len(sg.tensors)
        for k, t in enumerate(sg.tensors):
            t.name = text(t.name)
            where = f"tensor {k} ({t.name[:60]})"
            shape = [int(d) for d in (t.shape if t.shape is not None else [])]
            t.shape = shape
            if len(shape) > L["rank"]:
                bad(f"{where}: rank {len(shape)} above the limit {L['rank']}")
            if any(d < 0 for d in shape):
                bad(f"{where}: negative dimension in shape {shape}")
            count = 1
            for d in shape:
                count *= d
            if count > L["elements"]:
                bad(f"{where}: shape {shape} has {count} elements, above the limit {L['elements']}")
            if not 0 <= t.buffer < max(nbuf, 1):
                bad(f"{where}: buffer index {t.buffer} out of range ({nbuf} buffers)")
            # a tensor in TFLite's sparse encoding stores only its non-zeros (tflm_port/sparse.py checks them)
            if (nbuf and m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data)
                    and t.type in _TYPE_BYTES and getattr(t, "sparsity", None) is None):
                need = math.ceil(count * _TYPE_BYTES[t.type])
                have = len(m.buffers[t.buffer].data)
                if have != need:
                    bad(f"{where}: constant data of {have} bytes, shape {shape} x {TENSOR_TYPE_NAMES.get(t.type)} "
                        f"needs {need}")
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale):
                sc = np.asarray(q.scale, dtype=np.float64)
                if not np.all(np.isfinite(sc)) or np.any(sc <= 0):
                    bad(f"{where}: quantization scale not finite and positive")
                if q.zeroPoint is not None and len(q.zeroPoint) not in (0, len(sc)):
                    bad(f"{where}: {len(q.zeroPoint)} zero points for {len(sc)} scales")
                lo, hi = _ZP_RANGE.get(t.type, (-(1 << 31), (1 << 31) - 1))
                if q.zeroPoint is not None and len(q.zeroPoint) and (min(q.zeroPoint) < lo or max(q.zeroPoint) > hi):
                    bad(f"{where}: zero point outside {lo}..{hi}")
                if len(sc) > 1 and not (0 <= (q.quantizedDimension or 0) < max(len(shape), 1)
                                        and shape and shape[q.quantizedDimension or 0] == len(sc)):
                    bad(f"{where}: {len(sc)} per-channel scales do not match quantized dimension "
                        f"{q.quantizedDimension} of shape {shape}")
        for i in sg.inputs + sg.outputs:
            if not 0 <= i < nt:
                bad(f"subgraph input/output tensor index {i} out of range ({nt} tensors)")
        for k, op in enumerate(sg.operators):
            op.inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            op.outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            if not 0 <= op.opcodeIndex < ncode:
                bad(f"operator {k}: operator code index {op.opcodeIndex} out of range ({ncode} codes)")
            if len(op.inputs) > L["op_tensors"] or len(op.outputs) > L["op_tensors"]:
                bad(f"operator {k}: {len(op.inputs)} inputs / {len(op.outputs)} outputs (limit {L['op_tensors']})")
            for i in op.inputs + op.outputs:
                if not -1 <= i < nt:
                    bad(f"operator {k}: tensor index {i} out of range ({nt} tensors)")
            if any(i < 0 for i in op.outputs):
                bad(f"operator {k}: output tensor index -1")


def save_model(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def op_name(model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    bc = max(code.builtinCode, code.deprecatedBuiltinCode)
    if bc == schema.BuiltinOperator.CUSTOM:
        return text(code.customCode)
    return BUILTIN_OP_NAMES.get(bc, f"BUILTIN_{bc}")


def buffer_bytes(model, index: int) -> bytes:
    buf = model.buffers[index]
    if buf.data is None:
        return b""
    return np.asarray(buf.data, dtype=np.uint8).tobytes()


def tensor_data(model, tensor) -> np.ndarray | None:
    """Constant tensor -> numpy array of its values (INT4 unpacked to int8); None if no data."""
    raw = buffer_bytes(model, tensor.buffer)
    if not raw:
        return None
    shape = tuple(int(s) for s in (tensor.shape if tensor.shape is not None else []))
    count = int(np.prod(shape)) if shape else 1
    t = tensor.type
    if t == schema.TensorType.INT4:
        return unpack_int4(raw, count).reshape(shape)
    dt = {schema.TensorType.INT8: np.int8, schema.TensorType.UINT8: np.uint8,
          schema.TensorType.INT32: np.int32, schema.TensorType.INT16: np.int16,
          schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT64: np.int64}.get(t)
    if dt is None:
        raise UserError(f"tensor {tensor_name(tensor)}: unsupported constant type {TENSOR_TYPE_NAMES.get(t, t)}")
    arr = np.frombuffer(raw, dtype=np.dtype(dt).newbyteorder("<"))
    if arr.size != count:
        raise UserError(f"tensor {tensor_name(tensor)}: buffer holds {arr.size} values, shape {shape} needs {count}")
    return arr.reshape(shape).astype(dt)


def tensor_name(t) -> str:
    return text(t.name)


def quant_params(tensor) -> tuple[np.ndarray, np.ndarray, int]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
    scale = np.asarray(q.scale, dtype=np.float32)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else np.zeros(len(scale)),
                    dtype=np.int64)
    return scale, zp, int(q.quantizedDimension or 0)


def custom_options(op) -> dict:
    raw = op.customOptions
    if raw is None or len(raw) == 0:
        return {}
    try:
        v = flexbuffers.Loads(bytearray(np.asarray(raw, dtype=np.uint8).tobytes()))
    except Exception as e:
        raise UserError(f"custom options: not a valid FlexBuffer ({type(e).__name__})") from None
    if not isinstance(v, dict):
        raise UserError("custom options: FlexBuffer is not a map")
    return {(k.decode() if isinstance(k, bytes) else k): (x.decode() if isinstance(x, bytes) else x) for k, x in v.items()}


def get_metadata(model, name: str = METADATA_NAME) -> dict | None:
    for md in model.metadata or []:
        if text(md.name) == name:
            raw = buffer_bytes(model, md.buffer)
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise UserError(f"metadata '{name}': not valid UTF-8 JSON ({type(e).__name__}: "
                                f"{str(e)[:80]})") from None
            if not isinstance(value, dict):
                raise UserError(f"metadata '{name}': expected a JSON object, got {type(value).__name__}")
            return value
    return None


def metadata_entries(model) -> dict[str, bytes]:
    out = {}
    for md in model.metadata or []:
        out[text(md.name)] = buffer_bytes(model, md.buffer)
    return out


def add_buffer(model, data: bytes) -> int:
    buf = schema.BufferT()
    buf.data = np.frombuffer(bytes(data), dtype=np.uint8).copy() if data else None
    model.buffers.append(buf)
    return len(model.buffers) - 1


def set_metadata(model, name: str, value: dict) -> None:
    raw = json.dumps(value, sort_keys=True).encode("utf-8")
    if model.metadata is None:
        model.metadata = []
    for md in model.metadata:
        if text(md.name) == name:
            md.buffer = add_buffer(model, raw)
            return
    md = schema.MetadataT()
    md.name = name
    md.buffer = add_buffer(model, raw)
    model.metadata.append(md)
