"""Write the fuzz seed corpus firmware/fuzz/seeds/: small converted models of every operator and
every weight storage (INT8, INT4, SUB8_FULLY_CONNECTED bits 1..7 in layouts 0..3, float I/O with
QUANTIZE/DEQUANTIZE, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, SOFTMAX, RESHAPE), some with the
"subkws" metadata the streaming front end reads. Committed; re-run only to refresh it (needs TF):

    python firmware/fuzz/make_seeds.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "firmware" / "tools"))

from basics.atomic import atomic_write_bytes
from basics.errors import UserError  # noqa: E402
from tflm_port import board_table  # noqa: E402

OUT = ROOT / "firmware" / "fuzz" / "seeds"
CONTEXT = 2  # front-end metadata below: 2 frames x 64 bins = 128 model inputs


def frontend_metadata() -> dict:
    return {"labels": ["_silence_", "_unknown_", "alexa"],
            "features": {"sample_rate": 16000, "num_mel_bins": 64, "context_frames": CONTEXT, "context_stride": 1,
                         "normalization": {"mean": [float(-4 + 0.01 * i) for i in range(64)],
                                           "std": [float(1 + 0.02 * i) for i in range(64)]}}}


def seeds() -> dict[str, bytes]:
    import fwtestdata as fw
    from tflm_port import convert

    out = {}
    out["mlp_int8_frontend"] = convert.convert(fw._mlp([8, 8], n_in=128, hidden=[16], n_out=3), [8, 8],
                                               metadata=frontend_metadata())
    out["mlp_int4_frontend"] = convert.convert(fw._mlp([4, 8], n_in=128, hidden=[16], n_out=3), [4, 8],
                                               metadata=frontend_metadata())
    allbits = fw._rebit(fw._mlp([2] * 7 + [8], mode="dense", n_in=37, hidden=[13, 11, 9, 7, 5, 3, 9], n_out=4),
                        [1, 2, 3, 4, 5, 6, 7])
    plain, _ = convert.to_plain(allbits)
    bits = [1, 2, 3, 4, 5, 6, 7, 8]
    for layout in (0, 2, 3):  # layout 1 is retired; seeds/sub8_layout1.tflite stays as a model the runtime refuses
        usable = []
        for b in bits:
            try:
                convert.storage_for(b, "dense")
                from tflm_port import packing

                packing.get_layout(layout).check_bits(b)
                usable.append(b)
            except UserError:
                usable.append(8)
        out[f"sub8_layout{layout}"] = convert.convert(plain, usable if layout else bits, mode="dense", layout=layout)
    for target in board_table.cortex_m_per_family():
        out[f"frontend_{target}"] = convert.retarget(out["mlp_int4_frontend"], target)
    out["mlp_float_io"] = fw._ptq_mlp_float_io()
    out["tiny_dscnn_softmax"] = fw._tiny_dscnn_softmax()
    out["softmax_wide"] = fw._softmax_wide()
    out["requantize_relu6"] = fw._requantize_relu6()
    out.update(a4_and_sparse_seeds())
    return out


def a4_and_sparse_seeds() -> dict[str, bytes]:
    """SUB8_FC_A4 (4-bit weights and activations; layout 0, and the DSP plan's layouts 2 and 7) and
    sparse SUB8 layouts 4 (N:M) and 5 (block rows, CSR) chains, built without training."""
    from bench.sparse import fc_chain_model
    from tflm_port import fc_a4, sparse
    from tflm_port.convert import convert

    rng = np.random.default_rng(0)
    out = {}
    dims = [37, 32, 16, 3]
    ws = [rng.integers(-7, 8, (dims[i + 1], dims[i])).astype(np.int8) for i in range(3)]
    a4 = fc_a4.rewrite_a4(fc_chain_model(ws, [True, True, False], seed=0), [4, 4, 4], [4, 4, 8], name="a4")
    out["a4_layout0"] = a4
    out["a4_layout7"] = fc_a4.retarget_a4(a4, 7, "a4")
    specs, bits, dims, ws = ["nm:2:4", "block:4", "csr"], [4, 2, 8], [40, 24, 12, 3], []
    for j in range(3):
        sp = sparse.SparseSpec.parse(specs[j])
        hi = 127 if bits[j] == 8 else (1 << (bits[j] - 1)) - 1
        w = rng.integers(-hi, hi + 1, (dims[j + 1], dims[j])).astype(np.int8)
        keep = sparse.prune_mask(w + rng.random(w.shape) * 0.1, sp.n / sp.m if sp.kind == "nm" else 0.3, sp)
        ws.append(np.where(keep, w, 0).astype(np.int8))
    out["sparse_nm_block_csr"] = convert(fc_chain_model(ws, [True, True, False], seed=1), bits, mode="dense",
                                         sparse_spec=specs)
    out["sparse_block4"] = sparse_block4_seed()
    return out


def sparse_block4_seed() -> bytes:
    """4-bit layout-5 chain with 4-row blocks (block_rows 4: block:4x8, 4x4, 4x16; odd sizes, tails)."""
    from bench.sparse import fc_chain_model
    from tflm_port import sparse
    from tflm_port.convert import convert

    rng = np.random.default_rng(4)
    specs, dims, ws = ["block:4x8", "block:4x4", "block:4x16"], [45, 22, 13, 3], []
    for j, s in enumerate(specs):
        w = rng.integers(-7, 8, (dims[j + 1], dims[j])).astype(np.int8)
        keep = sparse.prune_mask(w + rng.random(w.shape) * 0.1, 0.4, sparse.SparseSpec.parse(s))
        ws.append(np.where(keep, w, 0).astype(np.int8))
    return convert(fc_chain_model(ws, [True, True, False], seed=2), [4, 4, 4], mode="dense", sparse_spec=specs)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        atomic_write_bytes(OUT / f"{name}.tflite", data)
        print(f"{name}: {len(data)} bytes")
