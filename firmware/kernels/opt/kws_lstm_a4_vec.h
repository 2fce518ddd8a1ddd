/* kws_lstm_a4_vec.h - what the Helium and NEON kernels of SUB8_LSTM_A4 share (kernels/mve/kws_lstm_a4_mve.c,
 * kernels/neon/kws_lstm_a4_neon.c; docs/kernels.md): the scratch layout, the once-per-hop operand preparation
 * and the scalar parts of the gate and cell arithmetic (docs/formats.md section 13; exactly the reference's,
 * include/kws_lstm_a4.h).
 *
 * 4-bit weights in layout 0 hold two columns per byte, column 2m in the low nibble. A vector of 16 bytes
 * holds 32 columns; SHL #4 makes the low nibbles 16 w[2m] and AND 0xF0 makes the high nibbles 16 w[2m+1],
 * both exact int8 values without any sign extension. Their products with the activations deinterleaved
 * once per hop (even columns in one array, odd columns in the other, zero past the row) sum to 16 times the
 * dot product. With a zero point on the layer input the same vectors are also dotted with a 0/1 mask of
 * the valid columns: 16 sum w, so sum (x - zp) w = (acc - zp * sum) / 16 exactly.
 *
 * Threshold counts #{T <= z} (the gate levels and tanh(c)) run branch-free on vectors of rows: every table
 * is padded with INT32_MAX to the power of two P above its length, at least 16 (z never reaches
 * INT32_MAX), so log2(P) probes pos += step where T[pos + step - 1] <= z give the count. The runtime pads
 * them once at prepare (p->vec_tab, persistent; 5 KB at 8-bit gates, where copying them every hop cost the
 * A76 a fifth of its instructions); without it they are padded into scratch per invocation. */
#ifndef KWS_LSTM_A4_VEC_H
#define KWS_LSTM_A4_VEC_H

#include <stdint.h>
#include <string.h>
#include "kws_lstm_a4.h"
#include "kws_lstm_a4_simd.h"

typedef struct {
    int32_t *lv;              /* [4u] gate pre-activations z, then levels */
    int8_t *xe, *xo;          /* layer input, even / odd columns, [xb] each (zero past the row) */
    int8_t *me, *mo;          /* 0/1 masks of the valid input columns, [xb] each (zero point correction) */
    int8_t *he, *ho;          /* previous h, even / odd columns, [hb] each */
    int32_t *tc;              /* [u] tanh(c') levels, then the new h before narrowing */
    const int32_t *tab[5];    /* the padded threshold tables of i, f, c, o, tanh(c) (p->vec_tab or scratch) */
    int32_t pow2[5];          /* their lengths P (powers of two above n_thr) */
    int32_t xb, hb;           /* bytes of a deinterleaved activation array: 16 per 32 columns */
} kws_lstm_a4_vec_scratch;

/* the scratch bytes the layout below takes */
static inline size_t kws_lstm_a4_vec_bytes(const kws_lstm_a4_params *p)
{
    const size_t tables = p->vec_tab ? 0u : kws_lstm_a4_vec_tables_bytes(p);
    return 5u * (size_t)p->units * sizeof(int32_t) + tables + 4u * (size_t)((p->n_in + 31) / 32 * 16) + 2u * (size_t)((p->units + 31) / 32 * 16);
}

/* the layout in a scratch buffer of kws_lstm_a4_vec_bytes(p) */
static inline void kws_lstm_a4_vec_layout(const kws_lstm_a4_params *p, int32_t *base, kws_lstm_a4_vec_scratch *s)
{
    const int32_t u = p->units;
    int32_t *w = base;
    s->xb = (p->n_in + 31) / 32 * 16;
    s->hb = (u + 31) / 32 * 16;
    s->lv = w; w += 4 * u;
    s->tc = w; w += u;
    const int32_t *t = p->vec_tab ? p->vec_tab : w;
    for (int g = 0; g < 5; g++) {
        s->pow2[g] = kws_lstm_a4_vec_pow2_above(p->n_thr[g]);
        s->tab[g] = t;
        t += s->pow2[g];
        if (!p->vec_tab) w += s->pow2[g];
    }
    int8_t *b = (int8_t *)(void *)w;
    s->xe = b; b += s->xb;
    s->xo = b; b += s->xb;
    s->me = b; b += s->xb;
    s->mo = b; b += s->xb;
    s->he = b; b += s->hb;
    s->ho = b;
}

/* once per invocation: the padded tables and the column masks */
static inline void kws_lstm_a4_vec_setup(const kws_lstm_a4_params *p, kws_lstm_a4_vec_scratch *s)
{
    if (!p->vec_tab) kws_lstm_a4_vec_tables(p, (int32_t *)(uintptr_t)s->tab[0]);   /* scratch: ours to write */
    memset(s->me, 0, (size_t)s->xb * 2u);
    for (int32_t k = 0; k < p->n_in; k++) ((k & 1) ? s->mo : s->me)[k >> 1] = 1;
}

/* v[n] -> even columns in e, odd columns in o, zero up to bytes */
static inline void kws_lstm_a4_vec_split(const int8_t *v, int32_t n, int8_t *e, int8_t *o, int32_t bytes)
{
    memset(e, 0, (size_t)bytes);
    memset(o, 0, (size_t)bytes);
    for (int32_t k = 0; k + 1 < n; k += 2) {
        e[k >> 1] = v[k];
        o[k >> 1] = v[k + 1];
    }
    if (n & 1) e[n >> 1] = v[n - 1];
}

/* sum_k (x[k] + off) w[k] over one layout-0 row of 4-bit weights (the rows the vector passes leave over) */
static inline int32_t kws_lstm_a4_vec_dot1(const uint8_t *row, const int8_t *x, int32_t n, int32_t off)
{
    int32_t acc = 0;
    for (int32_t k = 0; k < n; k++) {
        const int32_t w = (k & 1) ? (int8_t)row[k >> 1] >> 4 : (int8_t)(row[k >> 1] << 4) >> 4;
        acc += ((int32_t)x[k] + off) * w;
    }
    return acc;
}

static inline int32_t kws_lstm_a4_vec_clamp_z(int64_t v)
{
    return v > KWS_LSTM_A4_Z_CLAMP ? KWS_LSTM_A4_Z_CLAMP : v < -KWS_LSTM_A4_Z_CLAMP ? -KWS_LSTM_A4_Z_CLAMP : (int32_t)v;
}

/* the gate pre-activation z of one row from its two dot products (zero point applied) */
static inline int32_t kws_lstm_a4_vec_z(const kws_lstm_a4_params *p, int32_t g, int32_t row, int32_t a, int32_t b)
{
    return kws_lstm_a4_vec_clamp_z(kws_lstm_a4_rs(a, p->m_in[g], p->s_in[g])) +
           kws_lstm_a4_vec_clamp_z(kws_lstm_a4_rs(b, p->m_rec[g], p->s_rec[g])) + p->bias[row];
}

/* the new cell value of one unit from its gate levels (c' before tanh) */
static inline int16_t kws_lstm_a4_vec_cell(const kws_lstm_a4_params *p, int32_t gi, int32_t gf, int32_t gg, int32_t cj)
{
    int64_t v = (int64_t)(gf * cj) * p->m_fc + (int64_t)(gi * gg) * p->m_ig;
    if (p->s_c > 0) v = (v + ((int64_t)1 << (p->s_c - 1))) >> p->s_c;
    return (int16_t)kws_lstm_a4_clamp_n(v, p->nc);
}

/* the new hidden value from the o level and the tanh(c') level */
static inline int8_t kws_lstm_a4_vec_hidden(const kws_lstm_a4_params *p, int32_t go, int32_t tc)
{
    return (int8_t)kws_lstm_a4_clamp_n(kws_lstm_a4_rs((int64_t)(go * tc), p->m_h, p->s_h), p->nh);
}

#endif
