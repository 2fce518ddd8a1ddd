/* kws_dequantize_s8_f32: x = (float)((double)scale * (q - zero_point)) (TFLite DEQUANTIZE). */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_dequantize_s8_f32(float scale, int32_t zero_point, int32_t n, const int8_t *input, float *output)
{
    const double s = (double)scale;
    for (int32_t i = 0; i < n; i++)
        output[i] = (float)(s * (double)((int32_t)input[i] - zero_point));
}
