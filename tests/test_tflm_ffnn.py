"""FFNN-250K (1536-128x4-3) through the project's real QAT path (training.models.build_ffnn ->
training.qat.make_qat_model(stage=2) -> training.qat.to_tflite -> tflm_port.convert), INT8 and INT4:

* rounding="tflite" == tf.lite.Interpreter and ai-edge-litert (BUILTIN_WITHOUT_DEFAULT_DELEGATES),
* rounding="tflm" (the firmware contract) == tflite-micro,

0 differing output bytes over 10,000 inputs each (structured, small around the zero point, uniform
random, and N(0, 1) feature-like windows)."""
import numpy as np
import pytest

from bench import testmodels as qt
from tflm_port.convert import convert
from tflm_port.reference import Reference

N = 10_000


@pytest.fixture(scope="module", params=[8, 4], ids=["int8", "int4"])
def ffnn(request):
    bits = request.param
    _, src, _ = qt.cached_qat_ffnn(bits, seed=bits)
    model = convert(src, [bits] * qt.FFNN_LAYERS, "auto")
    ref = Reference.from_bytes(model)
    x = np.concatenate([qt.test_inputs(N - 2500, 1536, ref.input_quant[1], seed=bits),
                        qt.realistic_inputs(2500, ref, seed=bits)])
    return bits, model, x


def test_model_is_what_we_think(ffnn):
    bits, model, x = ffnn
    ref = Reference.from_bytes(model)
    assert ref.input_shape == (1536,) and ref.output_shape == (3,) and len(x) >= N
    assert [(fc.in_features, fc.out_features) for fc in ref.fc_chain] == [(1536, 128)] + [(128, 128)] * 3 + [(128, 3)]
    y = ref.run(x)
    assert len(np.unique(y)) > 50  # outputs are not saturated / constant: the comparison is meaningful


def test_tflite_flavour_bit_exact_with_tflite_and_litert(ffnn):
    bits, model, x = ffnn
    y = Reference.from_bytes(model, rounding="tflite").run(x)
    assert int((qt.run_tflite(model, x) != y).sum()) == 0
    assert int((qt.run_litert(model, x) != y).sum()) == 0


def test_tflm_flavour_bit_exact_with_tflite_micro(ffnn):
    bits, model, x = ffnn
    y = Reference.from_bytes(model).run(x)
    assert int((qt.run_tflm(model, x) != y).sum()) == 0
