/* kws_quantize_f32_s8: q = clamp(round_half_away(x / scale) + zero_point, -128, 127) in float32. */
#include <math.h>
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_quantize_f32_s8(float scale, int32_t zero_point, int32_t n, const float *input, int8_t *output)
{
    for (int32_t i = 0; i < n; i++) {
        float r = roundf(input[i] / scale);
        int32_t q;
        if (r != r) q = 0;                      /* NaN: defined result instead of UB */
        else if (r > 1e6f) q = 1000000;
        else if (r < -1e6f) q = -1000000;
        else q = (int32_t)r;
        q += zero_point;
        if (q < -128) q = -128;
        if (q > 127) q = 127;
        output[i] = (int8_t)q;
    }
}
