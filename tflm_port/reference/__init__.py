"""Integer reference interpreter in numpy for the .tflite files ``tflm_port.convert`` writes.

Runs a whole batch of inputs at once (vectorized over the batch), with TFLite's integer arithmetic:
int32 accumulation, requantization by a 31-bit fixed-point multiplier and a power-of-two shift,
implemented here from the published arithmetic. Two arithmetic flavours (``rounding=``):

* ``"tflm"`` (default; TFLite Micro and the firmware contract): FC multiplier from
  ``double(s_in) * double(s_w) / double(s_out)``; ``SaturatingRoundingDoublingHighMul`` then
  ``RoundingDivideByPOT``, both rounding half away from zero.
* ``"tflite"`` (tf.lite / LiteRT builtin CPU kernels, ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``): FC
  multiplier from ``double(float32(s_in * s_w)) / double(s_out)`` (the input x weight scale product
  rounded to float32 first), same high multiply, and the final shift rounds ties toward +infinity.
  Measured in docs/converter.md.

Both flavours are evaluated as ONE multiply-add-shift on |acc| in int64 (the two roundings fold into
one constant, see ``fixedpoint.Requant``), bit-identical to the two-step definition.

Layout of the package (like TFLM's reference kernels, one operator a module):

* ``fixedpoint``: multiplier formula, SRDHM, RoundingDivideByPOT, ``Requant`` (the one
  requantization helper), float -> int8 rounding
* ``exact``: exact integer matrix products on float BLAS
* ``common``: operator base class, shapes, activation clamp, padding, work limit
* one module per operator: ``fully_connected`` (FULLY_CONNECTED, SUB8_FULLY_CONNECTED), ``conv2d``,
  ``depthwise_conv2d``, ``average_pool2d``, ``quantize`` (QUANTIZE, DEQUANTIZE), ``reshape``
  (RESHAPE, SQUEEZE, EXPAND_DIMS, shape arithmetic), ``softmax`` (+ ``softmax_fixed``, its arithmetic)
* ``interpreter``: ``Reference``, the graph runner (fused FC-chain path, thread control)
* ``registry``: operators implemented elsewhere (the streaming LSTM, ``SUB8_FC_A4``), found by name

Depends on numpy, ``tflm_port.tflite_io``/``packing``/``sparse`` and ``basics`` only.
"""
from tflm_port.reference.common import MAX_WORK, activation_range
from tflm_port.reference.exact import CHUNK_K, F32_EXACT, F64_EXACT, exact_int_matmul, exact_plan
from tflm_port.reference.fixedpoint import (ROUNDING, Requant, channel_multipliers, multiply_by_quantized_multiplier,
                                            multiply_by_quantized_multiplier_tieup, quantize_f32, quantize_multiplier,
                                            rdbypot, round_half_away, srdhm)
from tflm_port.reference.fully_connected import FullyConnected
from tflm_port.reference.interpreter import BLOCK_ROWS, FUSED_ROWS, QUANT_ROWS, Reference
from tflm_port.reference.registry import CUSTOM_BUILDERS, CUSTOM_OP_MODULES, OP_MODULES

__all__ = ["CUSTOM_BUILDERS", "CUSTOM_OP_MODULES", "OP_MODULES", "BLOCK_ROWS", "CHUNK_K", "F32_EXACT", "F64_EXACT", "FUSED_ROWS", "MAX_WORK", "QUANT_ROWS", "ROUNDING",
           "FullyConnected", "Reference", "Requant", "activation_range", "channel_multipliers", "exact_int_matmul",
           "exact_plan", "multiply_by_quantized_multiplier", "multiply_by_quantized_multiplier_tieup",
           "quantize_f32", "quantize_multiplier", "rdbypot", "round_half_away", "srdhm"]
