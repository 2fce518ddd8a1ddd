/* kws_depthwise_conv_s8: NHWC int8 depthwise convolution, filter [1][k_h][k_w][out_c],
 * out_c = in_c * depth_multiplier, per-channel requantisation (TFLite DEPTHWISE_CONV_2D). */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_depthwise_conv_s8(const kws_conv_params *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output)
{
    const int32_t in_off = p->act.input_offset;
    const int32_t dm = p->depth_multiplier;
    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *in_b = input + (size_t)n * p->in_h * p->in_w * p->in_c;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                for (int32_t ic = 0; ic < p->in_c; ic++) {
                    for (int32_t m = 0; m < dm; m++) {
                        const int32_t oc = ic * dm + m;
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < p->k_h; ky++) {
                            const int32_t iy = iy0 + ky * p->dil_h;
                            if (iy < 0 || iy >= p->in_h) continue;
                            for (int32_t kx = 0; kx < p->k_w; kx++) {
                                const int32_t ix = ix0 + kx * p->dil_w;
                                if (ix < 0 || ix >= p->in_w) continue;
                                acc += ((int32_t)in_b[((size_t)iy * p->in_w + ix) * p->in_c + ic] + in_off) *
                                       (int32_t)filter[((size_t)ky * p->k_w + kx) * p->out_c + oc];
                            }
                        }
                        if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[oc]);
                        output[(((size_t)n * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] = kws_requantize_clamp_s8(acc, p->multiplier[oc], p->shift[oc], &p->act);
                    }
                }
            }
        }
    }
}
