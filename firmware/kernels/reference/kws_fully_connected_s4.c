/* kws_fully_connected_s4: int8 activations x INT4 weights. The weight tensor [out][in] is packed
 * two elements per byte over the whole tensor, low nibble first: element e lives in byte e/2,
 * bits 0..3 when e is even, bits 4..7 when odd ([1,2,3,4] -> 0x21 0x43). With an odd in_features
 * every other row starts in a high nibble. */
#include "kws_kernels.h"

static inline int32_t lo4(uint32_t b) { return (int32_t)(b << 28) >> 28; }
static inline int32_t hi4(uint32_t b) { return (int32_t)(b << 24) >> 28; }

KWS_NO_VECTORIZE
void kws_fully_connected_s4(const kws_fc_params *p, int32_t batches, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t in_off = p->act.input_offset;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * in_n;
        for (int32_t o = 0; o < out_n; o++) {
            size_t e = (size_t)o * in_n;
            const uint8_t *w = weights + (e >> 1);
            int32_t acc = 0, i = 0;
            if (e & 1) { /* row starts in a high nibble */
                acc += ((int32_t)x[0] + in_off) * hi4(*w++);
                i = 1;
            }
            for (; i + 1 < in_n; i += 2) {
                uint32_t byte = *w++;
                acc += ((int32_t)x[i] + in_off) * lo4(byte);
                acc += ((int32_t)x[i + 1] + in_off) * hi4(byte);
            }
            if (i < in_n) acc += ((int32_t)x[i] + in_off) * lo4(*w);
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            output[(size_t)b * out_n + o] = kws_requantize_clamp_s8(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
