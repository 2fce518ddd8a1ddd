/*
 * kws_lstm_a4.h - SUB8_LSTM_A4: the streaming LSTM with k-bit packed weights and k-bit activations
 * (docs/formats.md section 12; tflm_port/lstm_a4.py is the same in numpy). All arithmetic is integer: the
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

#endif
