/* kws_fully_connected_sub8: int8 activations x k-bit weights (k = 1..8), layout 0 "row_lsb":
 * each output row holds in_features k-bit fields packed LSB-first into a bit stream and
 * starts on a byte boundary (row_bytes = ceil(in*k/8)). k >= 2: two's complement;
 * k = 1: bit 1 -> +1, bit 0 -> -1. Arithmetic is TFLite int8 FULLY_CONNECTED's.
 *
 * k >= 2: a 32-bit bit buffer refilled a byte at a time; the field is sign-extended with a
 * shift pair. k = 1: sum(w*x) = 2 * sum_{bit=1} x - sum x, so only the set bits are summed. */
#include "kws_kernels.h"

KWS_NO_VECTORIZE
void kws_fully_connected_sub8(const kws_fc_params *p, int32_t batches, const int8_t *input,
                              const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t in_off = p->act.input_offset;
    const uint32_t k = (uint32_t)p->bits;
    const uint32_t sh = 32u - k;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * in_n;
        int32_t x_sum = 0; /* sum of (x + in_off), for k = 1 */
        if (k == 1)
            for (int32_t i = 0; i < in_n; i++) x_sum += (int32_t)x[i] + in_off;
        for (int32_t o = 0; o < out_n; o++) {
            const uint8_t *row = weights + (size_t)o * (size_t)p->row_bytes;
            int32_t acc = 0;
            if (k == 1) {
                int32_t pos = 0;
                for (int32_t i = 0; i < in_n; i += 8) {
                    uint32_t byte = *row++;
                    int32_t n = in_n - i < 8 ? in_n - i : 8;
                    for (int32_t j = 0; j < n; j++, byte >>= 1)
                        pos += ((int32_t)x[i + j] + in_off) & -(int32_t)(byte & 1u);
                }
                acc = 2 * pos - x_sum;
            } else {
                uint32_t bitbuf = 0, nbits = 0;
                for (int32_t i = 0; i < in_n; i++) {
                    if (nbits < k) {
                        bitbuf |= (uint32_t)(*row++) << nbits;
                        nbits += 8;
                    }
                    int32_t w = (int32_t)(bitbuf << sh) >> sh; /* low k bits, sign-extended */
                    bitbuf >>= k;
                    nbits -= k;
                    acc += ((int32_t)x[i] + in_off) * w;
                }
            }
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            output[(size_t)b * out_n + o] = kws_requantize_clamp_s8(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
