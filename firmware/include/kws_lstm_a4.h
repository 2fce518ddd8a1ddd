/*
 * kws_lstm_a4.h - SUB8_LSTM_A4: the streaming LSTM with k-bit packed weights and k-bit activations
 * (docs/formats.md section 13; tflm_port/lstm_a4.py is the same in numpy). All arithmetic is integer: the
 * converter stores every multiplier and the activation thresholds in the op's params tensor, so the
 * kernels compute no scale and call no libm.
 */
#ifndef KWS_LSTM_A4_H
#define KWS_LSTM_A4_H

#include <stddef.h>
#include <stdint.h>

#define KWS_LSTM_A4_INPUTS 7           /* x, W, R, bias, params, h (variable), c (variable) */
#define KWS_LSTM_A4_N_MULT 21          /* params words before the thresholds */
#define KWS_LSTM_A4_Z_CLAMP (1 << 29)  /* each gate term is clamped to +-2^29 (the sum fits int32) */

typedef struct {
    int32_t units, n_in, weight_bits, zp_x;
    int32_t w_row_bytes, r_row_bytes;  /* layout 0 (row_lsb): ceil(cols * bits / 8) */
    const uint8_t *w, *r;              /* [4u][n_in], [4u][u] packed, gate-major rows (i, f, c, o) */
    const int32_t *bias;               /* [4u], scale 2^-16 (added to the gate pre-activation) */
    int32_t m_in[4], s_in[4], m_rec[4], s_rec[4];   /* gate pre-activations: rs(acc, M, S), scale 2^-16 */
    int32_t m_fc, m_ig, s_c;           /* C' = rs(F C m_fc + I G m_ig, s_c) */
    int32_t m_h, s_h;                  /* H' = rs(O TC, m_h, s_h) */
    const int32_t *thr[5];             /* thresholds of i, f, c (cell input), o, tanh(c): non-decreasing */
    int32_t n_thr[5];
    int32_t nt, nh, nc;                /* largest level of the symmetric grids: tanh, hidden, cell */
    const int32_t *vec_tab;            /* Helium / NEON only, may be NULL: the five tables padded once at prepare
                                        * (kws_lstm_a4_vec_tables, include/kws_lstm_a4_simd.h) */
} kws_lstm_a4_params;

/* steps time steps of one stream: input [steps][n_in], state h [u] (int8), c [u] (int16) updated in place,
 * output [steps][u]; scratch: kws_lstm_a4_scratch_bytes(p) (4-byte aligned). */
void kws_lstm_a4(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                 int32_t *scratch, int8_t *output);
size_t kws_lstm_a4_scratch_bytes(const kws_lstm_a4_params *p);

/* floor((v m + 2^(s-1)) / 2^s), 0 <= s <= 62, |v m| < 2^62 (the op's prepare guarantees it) */
static inline int64_t kws_lstm_a4_rs(int64_t v, int32_t m, int32_t s)
{
    int64_t p = v * (int64_t)m;
    return s > 0 ? (p + ((int64_t)1 << (s - 1))) >> s : p;
}

/* #{k : t[k] <= z} for a non-decreasing t */
static inline int32_t kws_lstm_a4_count(const int32_t *t, int32_t n, int32_t z)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = (lo + hi) >> 1;
        if (t[mid] <= z) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* the level of gate g (0..3) of one row from its two accumulators (zero point folded in A) */
static inline int32_t kws_lstm_a4_gate(const kws_lstm_a4_params *p, int32_t g, int32_t row, int32_t a, int32_t b)
{
    int64_t zi = kws_lstm_a4_rs(a, p->m_in[g], p->s_in[g]), zr = kws_lstm_a4_rs(b, p->m_rec[g], p->s_rec[g]);
    zi = zi > KWS_LSTM_A4_Z_CLAMP ? KWS_LSTM_A4_Z_CLAMP : zi < -KWS_LSTM_A4_Z_CLAMP ? -KWS_LSTM_A4_Z_CLAMP : zi;
    zr = zr > KWS_LSTM_A4_Z_CLAMP ? KWS_LSTM_A4_Z_CLAMP : zr < -KWS_LSTM_A4_Z_CLAMP ? -KWS_LSTM_A4_Z_CLAMP : zr;
    int32_t q = kws_lstm_a4_count(p->thr[g], p->n_thr[g], (int32_t)zi + (int32_t)zr + p->bias[row]);
    return g == 2 ? q - p->nt : q;
}

static inline int32_t kws_lstm_a4_clamp_n(int64_t v, int32_t n)
{
    return v > n ? n : v < -n ? -n : (int32_t)v;
}

/* the cell and hidden update of one unit from its four gate levels */
static inline void kws_lstm_a4_cell(const kws_lstm_a4_params *p, int32_t gi, int32_t gf, int32_t gg, int32_t go,
                                    int16_t *cj_io, int8_t *hj)
{
    int64_t v = (int64_t)gf * *cj_io * p->m_fc + (int64_t)gi * gg * p->m_ig;
    if (p->s_c > 0) v = (v + ((int64_t)1 << (p->s_c - 1))) >> p->s_c;
    const int32_t cj = kws_lstm_a4_clamp_n(v, p->nc);
    *cj_io = (int16_t)cj;
    const int32_t tc = kws_lstm_a4_count(p->thr[4], p->n_thr[4], cj) - p->nt;
    *hj = (int8_t)kws_lstm_a4_clamp_n(kws_lstm_a4_rs((int64_t)go * tc, p->m_h, p->s_h), p->nh);
}

/* Cortex-M DSP kernel (kernels/dsp/kws_lstm_a4_dsp.c): 4-bit weights, in_features and units multiples of 8,
 * weights 4-byte aligned; same bytes as kws_lstm_a4. available() is 0 in builds without the DSP extension. */
int kws_lstm_a4_dsp_available(void);
int kws_lstm_a4_dsp_supported(const kws_lstm_a4_params *p);
size_t kws_lstm_a4_dsp_scratch_bytes(const kws_lstm_a4_params *p);
void kws_lstm_a4_dsp(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output);

#endif
