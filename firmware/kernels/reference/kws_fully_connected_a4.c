/* kws_fully_connected_a4: SUB8_FC_A4 reference. k-bit weights in layout 0 (row_lsb, docs/formats.md
 * section 3), activations in int8 containers (input_bits < 8: unsigned 0..2^k-1, zero point 0).
 * One output at a time: acc = bias + sum (x + input_offset) * w, requantized like TFLite's int8
 * FULLY_CONNECTED, clamped to [act_min, act_max] (the k-bit grid when output_bits < 8). */
#include "kws_fc_a4.h"

KWS_NO_VECTORIZE
void kws_fully_connected_a4(const kws_fc_a4_params *p, int32_t batches, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const kws_fc_params *f = &p->fc;
    const int32_t in_n = f->in_features, out_n = f->out_features, off = f->act.input_offset;
    const uint32_t k = (uint32_t)f->bits, sh = 32u - k;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * (size_t)in_n;
        for (int32_t o = 0; o < out_n; o++) {
            const uint8_t *row = weights + (size_t)o * (size_t)f->row_bytes;
            uint32_t bitbuf = 0, nbits = 0;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_n; i++) {
                while (nbits < k) {
                    bitbuf |= (uint32_t)(*row++) << nbits;
                    nbits += 8;
                }
                int32_t w = k == 1 ? ((bitbuf & 1u) ? 1 : -1) : (int32_t)(bitbuf << sh) >> sh;
                bitbuf >>= k;
                nbits -= k;
                acc += ((int32_t)x[i] + off) * w;
            }
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            acc = kws_multiply_by_quantized_multiplier(acc, f->multiplier[o], f->shift[o]) + f->act.output_offset;
            if (acc < f->act.act_min) acc = f->act.act_min;
            if (acc > f->act.act_max) acc = f->act.act_max;
            output[(size_t)b * (size_t)out_n + (size_t)o] = (int8_t)acc;
        }
    }
}
