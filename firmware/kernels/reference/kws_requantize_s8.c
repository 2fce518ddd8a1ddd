/* kws_requantize_s8: int8 -> int8 with a new scale/zero point (TFLite QUANTIZE int8 -> int8). */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_requantize_s8(int32_t in_zp, int32_t out_zp, int32_t multiplier, int32_t shift, int32_t n,
                       const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < n; i++) {
        int32_t v = kws_multiply_by_quantized_multiplier((int32_t)input[i] - in_zp, multiplier, shift) + out_zp;
        if (v < -128) v = -128;
        if (v > 127) v = 127;
        output[i] = (int8_t)v;
    }
}
