"""Reading and writing .tflite flatbuffers with TFLite's generated object API.

Everything here turns a malformed file into a one-line ``UserError`` instead of a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from training.errors import UserError



def _load_schema():
    """TFLite's generated flatbuffer object API from the TF wheel, loaded as a standalone module so
    that reading a model does not pay for ``import tensorflow`` (seconds, ~600 MB)."""
    import importlib.util
    import sys

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
    from tensorflow.lite.python import schema_py_generated  # pragma: no cover

    return schema_py_generated  # pragma: no cover


schema = _load_schema()

FILE_IDENTIFIER = b"TFL3"
CUSTOM_CODE = "SUB8_FULLY_CONNECTED"
METADATA_NAME = "subkws"

TENSOR_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
BUILTIN_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
ACTIVATION_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None


def load_model(data: bytes, name: str = "<bytes>") -> "schema.ModelT":
    """Parse and sanity-check a .tflite flatbuffer; any problem -> UserError naming ``name``."""
    data = bytes(data)
    if len(data) < 8:
        raise UserError(f"{name}: not a TFLite model ({len(data)} bytes, too short)")
    if data[4:8] != FILE_IDENTIFIER:
        raise UserError(f"{name}: not a TFLite model (file identifier {data[4:8]!r}, expected b'TFL3')")
    root = int.from_bytes(data[0:4], "little")
    if root + 4 > len(data):
        raise UserError(f"{name}: truncated or corrupted TFLite file (root offset {root} beyond {len(data)} bytes)")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as e:  # flatbuffers raises IndexError/struct.error/... on bad offsets
        raise UserError(f"{name}: truncated or corrupted TFLite file ({type(e).__name__}: {e})") from None
    _validate(model, name, len(data))
    return model


def _validate(m, name: str, size: int) -> None:
    def bad(msg):
        raise UserError(f"{name}: corrupted TFLite file: {msg}")

    if not m.subgraphs:
        bad("no subgraphs")
    nbuf = len(m.buffers or [])
    ncode = len(m.operatorCodes or [])
    for buf in m.buffers or []:
        if buf.offset and buf.offset + buf.size > size:
            bad(f"buffer data at offset {buf.offset} (+{buf.size}) beyond end of file ({size} bytes)")
    for sg in m.subgraphs:
        nt = len(sg.tensors or [])
        for t in sg.tensors or []:
            if not 0 <= t.buffer < max(nbuf, 1):
                bad(f"tensor buffer index {t.buffer} out of range ({nbuf} buffers)")
        for i in list(sg.inputs if sg.inputs is not None else []) + list(sg.outputs if sg.outputs is not None else []):
            if not 0 <= i < nt:
                bad(f"subgraph input/output tensor index {i} out of range ({nt} tensors)")
        for op in sg.operators or []:
            if not 0 <= op.opcodeIndex < ncode:
                bad(f"operator code index {op.opcodeIndex} out of range ({ncode} codes)")
            for i in list(op.inputs if op.inputs is not None else []) + list(op.outputs if op.outputs is not None else []):
                if not -1 <= i < nt:
                    bad(f"operator tensor index {i} out of range ({nt} tensors)")
    for md in m.metadata or []:
        if not 0 <= md.buffer < nbuf:
            bad(f"metadata buffer index {md.buffer} out of range")


def save_model(model) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def op_name(model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    bc = max(code.builtinCode, code.deprecatedBuiltinCode)
    if bc == schema.BuiltinOperator.CUSTOM:
        cc = code.customCode
        return cc.decode() if isinstance(cc, bytes) else str(cc)
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
        from tflm_port.packing import unpack_int4

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
    n = t.name
    return n.decode(errors="replace") if isinstance(n, bytes) else str(n)


def quant_params(tensor) -> tuple[np.ndarray, np.ndarray, int]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
    scale = np.asarray(q.scale, dtype=np.float32)
    zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), dtype=np.int64)
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
        mname = md.name.decode() if isinstance(md.name, bytes) else md.name
        if mname == name:
            raw = buffer_bytes(model, md.buffer)
            try:
                return json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise UserError(f"metadata '{name}': not valid UTF-8 JSON ({e})") from None
    return None


def metadata_entries(model) -> dict[str, bytes]:
    out = {}
    for md in model.metadata or []:
        mname = md.name.decode() if isinstance(md.name, bytes) else md.name
        out[mname] = buffer_bytes(model, md.buffer)
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
        mname = md.name.decode() if isinstance(md.name, bytes) else md.name
        if mname == name:
            md.buffer = add_buffer(model, raw)
            return
    md = schema.MetadataT()
    md.name = name
    md.buffer = add_buffer(model, raw)
    model.metadata.append(md)
