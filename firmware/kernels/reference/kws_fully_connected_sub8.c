/* kws_fully_connected_sub8: int8 activations x k-bit weights (k = 1..8), layout 0 "row_lsb":
 * each output row holds in_features k-bit fields packed LSB-first into a bit stream and
 * starts on a byte boundary (row_bytes = ceil(in*k/8)). k >= 2: two's complement;
 * k = 1: bit 1 -> +1, bit 0 -> -1. Arithmetic is TFLite int8 FULLY_CONNECTED's. */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_fully_connected_sub8(const kws_fc_params *p, int32_t batches, const int8_t *input,
                              const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t in_off = p->act.input_offset;
    const uint32_t k = (uint32_t)p->bits;
    const uint32_t mask = (1u << k) - 1u;
    const uint32_t sign = 1u << (k - 1u);
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * in_n;
        for (int32_t o = 0; o < out_n; o++) {
            const uint8_t *row = weights + (size_t)o * (size_t)p->row_bytes;
            uint32_t bitbuf = 0, nbits = 0;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_n; i++) {
                if (nbits < k) {
                    bitbuf |= (uint32_t)(*row++) << nbits;
                    nbits += 8;
                }
                uint32_t f = bitbuf & mask;
                bitbuf >>= k;
                nbits -= k;
                int32_t w = (k == 1) ? (int32_t)(f << 1) - 1 : (int32_t)(f ^ sign) - (int32_t)sign;
                acc += ((int32_t)x[i] + in_off) * w;
            }
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            acc = kws_multiply_by_quantized_multiplier(acc, p->multiplier[o], p->shift[o]);
            acc += p->act.output_offset;
            if (acc < p->act.act_min) acc = p->act.act_min;
            if (acc > p->act.act_max) acc = p->act.act_max;
            output[(size_t)b * out_n + o] = (int8_t)acc;
        }
    }
}
