/* kws_fully_connected_s8: int8 activations x int8 weights [out][in], int32 bias, per-channel
 * or per-tensor requantisation (TFLite int8 FULLY_CONNECTED semantics). */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_fully_connected_s8(const kws_fc_params *p, int32_t batches, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t in_off = p->act.input_offset;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * in_n;
        for (int32_t o = 0; o < out_n; o++) {
            const int8_t *w = weights + (size_t)o * in_n;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_n; i++)
                acc += ((int32_t)x[i] + in_off) * (int32_t)w[i];
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            output[(size_t)b * out_n + o] = kws_requantize_clamp_s8(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
