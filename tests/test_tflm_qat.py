"""The converter on training.qat stage-2 models (the real QAT path) at 8, 5, 4, 3, 2, 1 bits:

* the converted integer weights and scales are exactly training.qat.fake_quant_weights,
* no layer needs the converter's rescaling (1/2/3-bit use a 4-bit FakeQuant with 7 grid steps),
* auto / dense modes give the same outputs as the container model, byte for byte."""
import numpy as np
import pytest

from tflm_port import packing
from bench import testmodels as qt
from tflm_port.convert import convert
from tflm_port.reference import Reference
from tflm_port.tflite_io import CUSTOM_CODE, custom_options, get_metadata, load_model, op_name, quant_params, tensor_data

SETS = {"8-5-4": [8, 5, 4], "3-2-1": [3, 2, 1]}  # every bit width once, small FFNN 64-32-32-3


@pytest.fixture(scope="module", params=list(SETS))
def qat_model(request):
    bits = SETS[request.param]
    q, src, _ = qt.cached_qat_ffnn(bits, seed=7, hidden_layers=2, hidden_units=32, context_frames=8, num_mel_bins=8)
    return bits, q, src


def converted_weights(data):
    """[(integer weights [out, in], float32 scale)] per FC / SUB8 layer of a converted model."""
    m = load_model(data)
    sg = m.subgraphs[0]
    out = []
    for op in sg.operators:
        name = op_name(m, op)
        w_t = sg.tensors[op.inputs[1]]
        s = np.float32(quant_params(w_t)[0][0]) if name in ("FULLY_CONNECTED", CUSTOM_CODE) else None
        if name == "FULLY_CONNECTED":
            w = tensor_data(m, w_t)
            out.append((w.reshape(w.shape[0], -1).astype(np.int64), s))
        elif name == CUSTOM_CODE:
            o = custom_options(op)
            w = packing.unpack(tensor_data(m, w_t).reshape(-1), o["bits"], o["out_features"], o["in_features"], o["layout"])
            out.append((w.astype(np.int64), s))
    return out


@pytest.mark.parametrize("mode", ["auto", "container", "dense"])
def test_converted_weights_equal_fake_quant(qat_model, mode):
    from training import qat

    bits, q, src = qat_model
    assert qat.layer_bits(q) == bits
    data = convert(src, bits, mode)
    fq = qat.fake_quant_weights(q)
    got = converted_weights(data)
    assert len(got) == len(fq) == len(bits)
    for (w, s), (wq, sq), k in zip(got, fq, bits):
        np.testing.assert_array_equal(w, wq.T.astype(np.int64), err_msg=f"{k}-bit layer")  # Keras [in, out]
        assert s == np.float32(sq), (k, s, sq)
        assert np.array_equal(w.astype(np.float32) * s, (wq.T.astype(np.float32) * np.float32(sq)))
        lo, hi = packing.grid_range(k)
        assert set(np.unique(w)) <= ({-1, 1} if k == 1 else set(range(lo, hi + 1)))
    assert "rescaled_operators" not in get_metadata(load_model(data))


def test_auto_and_dense_equal_container(qat_model):
    bits, q, src = qat_model
    cont = Reference.from_bytes(convert(src, bits, "container"))
    x = np.concatenate([qt.test_inputs(4000, 64, cont.input_quant[1], seed=3), qt.realistic_inputs(2000, cont, 3)])
    y = cont.run(x)
    assert len(np.unique(y)) > 10
    for mode in ("auto", "dense"):
        for layout in (0, 2):
            np.testing.assert_array_equal(Reference.from_bytes(convert(src, bits, mode, layout)).run(x), y,
                                          err_msg=f"{mode} layout {layout}")


def test_container_runs_in_tflite_micro_and_matches(qat_model):
    bits, q, src = qat_model
    data = convert(src, bits, "container")
    ref = Reference.from_bytes(data)
    x = qt.test_inputs(1000, 64, ref.input_quant[1], seed=4)
    assert int((qt.run_tflm(data, x) != ref.run(x)).sum()) == 0
