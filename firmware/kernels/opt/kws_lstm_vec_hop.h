/* kws_lstm_vec_hop.h - the hop of the Helium and NEON int8 LSTM kernels (kernels/mve/kws_lstm_mve.c,
 * kernels/neon/kws_lstm_neon.c), written once: the eight matrix-vector products of the hop (input and
 * recurrent weights of the four gates, the zero points folded into eff), then per gate the vector
 * pre-activations of units 0 .. units & ~3 through the table sigmoid / tanh, the remaining units through the
 * reference's scalar gate, then the reference's cell / hidden update (include/kws_lstm_arith.h). Each file
 * passes its own matvec and preact; always_inline makes them direct calls. */
#ifndef KWS_LSTM_VEC_HOP_H
#define KWS_LSTM_VEC_HOP_H

#include "kws_kernels.h"
#include "kws_lstm_arith.h"

/* out[j] = bias[j] + sum_k w[j][k] x[k], j < rows */
typedef void (*kws_lstm_vec_matvec)(const int8_t *w, int32_t rows, int32_t n, const int8_t *x, const int32_t *bias,
                                    int32_t *out);
/* gate g's int16 pre-activations of units 0 .. units & ~3 from the two sums */
typedef void (*kws_lstm_vec_preact)(const kws_lstm_params *p, int g, const int32_t *acc_in, const int32_t *acc_rec,
                                    int16_t *out);

static inline __attribute__((always_inline)) void
kws_lstm_vec_hops(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                  int16_t *c, void *scratch, int8_t *output, kws_lstm_vec_matvec matvec, kws_lstm_vec_preact preact)
{
    const int32_t u = p->units, nin = p->n_in, u4 = u & ~3;
    int32_t *acc = (int32_t *)scratch;   /* [8][u]: gate g's input sums at 2g, recurrent sums at 2g + 1 */
    int16_t *gates = (int16_t *)(acc + 8 * u);
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + t * nin;
        for (int g = 0; g < 4; g++) {
            matvec(p->w[g], u, nin, x, eff + (2 * g) * u, acc + (2 * g) * u);
            matvec(p->r[g], u, u, h, eff + (2 * g + 1) * u, acc + (2 * g + 1) * u);
        }
        for (int g = 0; g < 4; g++) {
            const int32_t *ai = acc + (2 * g) * u, *ar = acc + (2 * g + 1) * u;
            int16_t *out = gates + g * u;
            preact(p, g, ai, ar, out);
            if (g == KWS_LSTM_GATE_C) {
                for (int32_t j = 0; j < u4; j++) out[j] = kws_lstm_tanh16(out[j], 3);
            } else {
                for (int32_t j = 0; j < u4; j++) out[j] = kws_lstm_sigmoid16(out[j]);
            }
            for (int32_t j = u4; j < u; j++) out[j] = kws_lstm_gate(p, g, ai[j], ar[j]);
        }
        const int16_t *gi = gates, *gf = gates + u, *gc = gates + 2 * u, *go = gates + 3 * u;
        for (int32_t j = 0; j < u; j++) {
            h[j] = kws_lstm_cell(p, gi[j], gf[j], gc[j], go[j], &c[j]);
            output[t * u + j] = h[j];
        }
    }
}

#endif
