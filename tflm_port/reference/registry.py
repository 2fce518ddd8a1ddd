"""Operators implemented outside this package, found by name when a graph uses them.

* ``OP_MODULES``: builtin operator name -> module whose ``build(reference, op, ins, outs, where)``
  returns the operator object (the streaming LSTM: ``tflm_port.lstm``);
* ``CUSTOM_BUILDERS``: custom code -> builder with the same signature; the modules in
  ``CUSTOM_OP_MODULES`` fill it when imported (``SUB8_FC_A4``: ``tflm_port.fc_a4``).

Both are imported on first use only, so the reference does not import its extensions up front.
"""
from __future__ import annotations

import importlib

OP_MODULES = {"UNIDIRECTIONAL_SEQUENCE_LSTM": "tflm_port.lstm"}
CUSTOM_BUILDERS: dict = {}
CUSTOM_OP_MODULES = ("tflm_port.fc_a4", "tflm_port.lstm_a4")


def extension_builder(name: str):
    """The builder of an operator implemented outside the package, or None."""
    if name in OP_MODULES:
        return importlib.import_module(OP_MODULES[name]).build
    if name not in CUSTOM_BUILDERS:
        for mod in CUSTOM_OP_MODULES:
            importlib.import_module(mod)
    return CUSTOM_BUILDERS.get(name)
