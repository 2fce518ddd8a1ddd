"""Helpers shared by the hostile-input tests: tiny hand-built .tflite models and the rule that a
missing fuzz tool skips locally but fails under CI (CI=true)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest


def need_tool(name: str) -> str:
    """Path of ``name``; skip when it is missing, except under CI where a missing fuzz tool is a failure."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not installed (make setup installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + ": CI must run the fuzz tests")
        pytest.skip(msg)
    return path


def need_module(name: str):
    try:
        return __import__(name)
    except ImportError:
        msg = f"python package {name} not installed (pip install -e '.[dev]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + ": CI must run the fuzz tests")
        pytest.skip(msg)


def graph_model(op_code: int, n_inputs: int, shape: list[int], custom_code: str | None = None) -> bytes:
    """One operator ``op_code`` reading ``n_inputs`` int8 tensors of ``shape`` into one output."""
    from tflm_port.tflite_io import save_model, schema

    m = schema.ModelT()
    m.version = 3
    m.buffers = [schema.BufferT()]
    sg = schema.SubGraphT()
    sg.tensors = []
    for i in range(n_inputs + 1):
        t = schema.TensorT()
        t.shape = np.array(shape, np.int32)
        t.type = schema.TensorType.INT8
        t.buffer = 0
        t.name = f"t{i}"
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint = [0.1], [0]
        t.quantization = q
        sg.tensors.append(t)
    code = schema.OperatorCodeT()
    code.builtinCode = op_code
    code.deprecatedBuiltinCode = min(op_code, 127)
    code.version = 1
    if custom_code is not None:
        code.customCode = custom_code
    m.operatorCodes = [code]
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.arange(n_inputs, dtype=np.int32)
    op.outputs = np.array([n_inputs], np.int32)
    sg.operators = [op]
    sg.inputs = np.array([0], np.int32)
    sg.outputs = np.array([n_inputs], np.int32)
    m.subgraphs = [sg]
    return save_model(m)
