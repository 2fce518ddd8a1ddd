/* kws_avgpool_s8: NHWC int8 average pooling; windows are clipped to the image and the sum is
 * divided by the number of valid taps, rounding half away from zero (TFLite AVERAGE_POOL_2D). */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_avgpool_s8(const kws_pool_params *p, const int8_t *input, int8_t *output)
{
    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *in_b = input + (size_t)n * p->in_h * p->in_w * p->c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = (p->in_h - iy0) < p->f_h ? (p->in_h - iy0) : p->f_h;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = (p->in_w - ix0) < p->f_w ? (p->in_w - ix0) : p->f_w;
                for (int32_t c = 0; c < p->c; c++) {
                    int32_t acc = 0, count = 0;
                    for (int32_t fy = fy0; fy < fy1; fy++)
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            acc += in_b[((size_t)(iy0 + fy) * p->in_w + (ix0 + fx)) * p->c + c];
                            count++;
                        }
                    if (count > 0)
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    output[(((size_t)n * p->out_h + oy) * p->out_w + ox) * p->c + c] = kws_clamp_s8(acc, &p->act);
                }
            }
        }
    }
}
