/* kws_lstm_a4.c - reference kernel of SUB8_LSTM_A4 (docs/formats.md section 13): k-bit weights in layout 0,
 * k-bit gates / cell input / tanh(c) / hidden state, a 8..16-bit cell state. Per step every gate of every
 * unit is computed from the previous hidden state first (scratch), then the cell and hidden updates. */
#include "kws_kernels.h"
#include "kws_lstm_a4.h"

size_t kws_lstm_a4_scratch_bytes(const kws_lstm_a4_params *p)
{
    return (size_t)p->units * 4u * sizeof(int32_t);
}

/* sum_k (x[k] + off) * row[k] over a layout-0 row of k-bit two's complement fields */
KWS_NO_VECTORIZE
static int32_t dot_row(const uint8_t *row, uint32_t k, const int8_t *x, int32_t n, int32_t off)
{
    const uint32_t sh = 32u - k;
    uint32_t bitbuf = 0, nbits = 0;
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++) {
        while (nbits < k) {
            bitbuf |= (uint32_t)(*row++) << nbits;
            nbits += 8;
        }
        int32_t w = (int32_t)(bitbuf << sh) >> sh;
        bitbuf >>= k;
        nbits -= k;
        acc += ((int32_t)x[i] + off) * w;
    }
    return acc;
}

KWS_NO_VECTORIZE
void kws_lstm_a4(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                 int32_t *scratch, int8_t *output)
{
    const int32_t u = p->units;
    const uint32_t k = (uint32_t)p->weight_bits;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + (size_t)t * (size_t)p->n_in;
        for (int32_t g = 0; g < 4; g++) {
            for (int32_t j = 0; j < u; j++) {
                const int32_t row = g * u + j;
                int32_t a = dot_row(p->w + (size_t)row * (size_t)p->w_row_bytes, k, x, p->n_in, -p->zp_x);
                int32_t b = dot_row(p->r + (size_t)row * (size_t)p->r_row_bytes, k, h, u, 0);
                scratch[row] = kws_lstm_a4_gate(p, g, row, a, b);
            }
        }
        for (int32_t j = 0; j < u; j++) {
            const int32_t gi = scratch[j], gf = scratch[u + j], gg = scratch[2 * u + j], go = scratch[3 * u + j];
            kws_lstm_a4_cell(p, gi, gf, gg, go, &c[j], &h[j]);
        }
        for (int32_t j = 0; j < u; j++) output[(size_t)t * (size_t)u + (size_t)j] = h[j];
    }
}
