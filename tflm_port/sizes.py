"""Flash and RAM of a .tflite: weight, bias and graph bytes, and an activation-arena estimate."""
from __future__ import annotations

import numpy as np

from tflm_port.tflite_io import CUSTOM_CODE, load_model, op_name

_TYPE_BYTES = {0: 4, 9: 1, 2: 4, 3: 1}  # FLOAT32, INT8, INT32, UINT8


def size_split(data: bytes) -> dict:
    """weights / biases / graph bytes of a .tflite and an activation-arena estimate (the largest
    input + output of one operator, each rounded up to 16 bytes)."""
    m = load_model(data)
    sg = m.subgraphs[0]
    wbytes = bbytes = 0
    arena = 0
    seen = set()
    for op in sg.operators:
        name = op_name(m, op)
        if name in ("FULLY_CONNECTED", CUSTOM_CODE, "CONV_2D", "DEPTHWISE_CONV_2D"):
            for pos, idx in enumerate(op.inputs[1:3], start=1):
                if idx < 0 or idx in seen:
                    continue
                seen.add(idx)
                buf = m.buffers[sg.tensors[idx].buffer]
                nb = len(buf.data) if buf.data is not None else 0
                if pos == 1:
                    wbytes += nb
                else:
                    bbytes += nb
        live = 0
        for idx in list(op.inputs[:1]) + list(op.outputs):
            t = sg.tensors[idx]
            if idx < 0 or m.buffers[t.buffer].data is not None:
                continue
            elems = int(np.prod([max(int(d), 1) for d in t.shape])) if t.shape is not None else 0
            size = elems * _TYPE_BYTES.get(int(t.type), 1)
            live += (size + 15) // 16 * 16
        arena = max(arena, live)
    return {"weights_bytes": wbytes, "biases_bytes": bbytes, "graph_bytes": len(data) - wbytes - bbytes,
            "arena_estimate_bytes": arena}
