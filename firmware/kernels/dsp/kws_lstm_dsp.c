/* kws_lstm_dsp.c - UNIDIRECTIONAL_SEQUENCE_LSTM for Cortex-M cores with the DSP extension (M4, M7),
 * bit-exact with kernels/reference/kws_lstm_s8.c.
 *
 * Per hop: the input frame and the previous hidden state are widened once to int16 pairs in SXTB16
 * order (x0,x2)(x1,x3); each gate row then takes one 32-bit load of four weights, SXTB16 and
 * SXTB16 ROR 8, and two SMLAD per four weights, four rows per pass sharing one LDRD of the operand
 * (an assembly loop: 23 instructions per 16 MACs). The zero points are folded at prepare time into
 * per-row biases (b - zp_x sum W, -zp_h sum R: kws_lstm_fold_bias), so the inner loops see the raw
 * int8 values. Gate activations and the cell / hidden update are the reference's scalar code.
 * Compiled into every build; the runtime picks it only where it exists (__ARM_FEATURE_DSP) and the
 * build's optimized kernels are the DSP ones (kws_kernel_isa() == "dsp"; kws_runner_ref.elf keeps
 * the reference). See docs/kernels.md. */
#include <string.h>
#include "kws_kernels.h"
#include "kws_kernels_opt.h"   /* kws_fc_opt_mbqm: the reference's requantization in one SMULL */
#define KWS_LSTM_MBQM kws_fc_opt_mbqm
#include "kws_lstm_arith.h"   /* the reference's gate activation and cell update */

void kws_lstm_fold_bias(const kws_lstm_params *p, int32_t *eff)
{
    for (int g = 0; g < 4; g++) {
        for (int32_t j = 0; j < p->units; j++) {
            int32_t sw = 0, sr = 0;
            for (int32_t k = 0; k < p->n_in; k++) sw += p->w[g][j * p->n_in + k];
            for (int32_t k = 0; k < p->units; k++) sr += p->r[g][j * p->units + k];
            eff[(2 * g) * p->units + j] = p->b[g][j] - p->zp_x * sw;
            eff[(2 * g + 1) * p->units + j] = -p->zp_h * sr;
        }
    }
}

static size_t pad4(int32_t n) { return ((size_t)n + 3u) & ~(size_t)3u; }

size_t kws_lstm_dsp_scratch_bytes(const kws_lstm_params *p)
{
    return 2u * (4u * (size_t)p->units + pad4(p->n_in) + pad4(p->units)) + 16u;
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* SXTB16 with its rotate operand (GCC 12 emits a separate ROR for __sxtb16(ror(v, 8))) */
static inline __attribute__((always_inline)) uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

int kws_lstm_dsp_available(void) { return 1; }

/* int8 v[n] -> int16 pairs (v0,v2)(v1,v3) per group of four, zero padded */
static void widen(const int8_t *v, int32_t n, int16_t *out)
{
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        out[k] = v[k]; out[k + 1] = v[k + 2]; out[k + 2] = v[k + 1]; out[k + 3] = v[k + 3];
    }
    for (int32_t i = k; i < (int32_t)pad4(n); i++) out[i] = 0;
    for (int32_t i = k; i < n; i++) {
        int32_t pos = i - k;   /* tail: same order, missing ones stay 0 */
        out[k + (pos == 0 ? 0 : pos == 1 ? 2 : 1)] = v[i];
    }
}

static inline __attribute__((always_inline)) int32_t dot(const int8_t *w, const int16_t *x16, int32_t n, int32_t acc)
{
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        uint32_t wv, xa, xb;
        memcpy(&wv, w + k, 4);
        memcpy(&xa, x16 + k, 4);
        memcpy(&xb, x16 + k + 2, 4);
        acc = __smlad(__sxtb16(wv), xa, acc);
        acc = __smlad(sxtb16_ror8(wv), xb, acc);
    }
    if (k < n) {   /* 1..3 left: x16 holds them as (x0,x2)(x1,..) */
        acc += w[k] * x16[k];
        if (k + 1 < n) acc += w[k + 1] * x16[k + 2];
        if (k + 2 < n) acc += w[k + 2] * x16[k + 1];
    }
    return acc;
}

/* one row's four weights at [p] against the pair (xa, xb) into acc: SXTB16 / SXTB16 ROR 8 and two SMLAD */
#define ROW4(acc, ld) ld "\n\tsxtb16 %[t], %[v]\n\tsmlad %[" acc "], %[t], %[xa], %[" acc "]\n\t" \
                      "sxtb16 %[t], %[v], ror #8\n\tsmlad %[" acc "], %[t], %[xb], %[" acc "]\n\t"

/* four rows j..j+3 of a row-major [rows][n] int8 matrix at once: each x pair is loaded once (one LDRD of the
 * widened operand), the rows through two pointers (rows 0 / 2) and the row stride as a register offset
 * (rows 1 / 3), all post-incremented: 23 instructions per 16 MACs (the C loop compiled to 31: GCC at -Os
 * kept the loop bound and a row address on the stack) */
static __attribute__((noinline)) void dot4(const int8_t *w, int32_t n, const int16_t *x16, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t cnt = n >> 2, k = cnt << 2;
    if (cnt > 0) {
        const int8_t *p0 = w, *p2 = w + 2 * n;
        const int16_t *px = x16;
        uint32_t xa, xb, v, t;
        __asm__ volatile("1:\n\t"
                         "ldrd %[xa], %[xb], [%[px]], #8\n\t"
                         ROW4("a1", "ldr %[v], [%[p0], %[n]]")
                         ROW4("a0", "ldr %[v], [%[p0]], #4")
                         ROW4("a3", "ldr %[v], [%[p2], %[n]]")
                         ROW4("a2", "ldr %[v], [%[p2]], #4")
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p0] "+r"(p0), [p2] "+r"(p2),
                           [px] "+r"(px), [cnt] "+r"(cnt), [xa] "=&r"(xa), [xb] "=&r"(xb), [v] "=&r"(v), [t] "=&r"(t)
                         : [n] "r"(n)
                         : "cc", "memory");
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    if (k < n) {
        for (int r = 0; r < 4; r++) acc[r] = dot(w + r * n + k, x16 + k, n - k, acc[r]);
    }
}

KWS_NO_VECTORIZE
void kws_lstm_s8_dsp(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output)
{
    const int32_t u = p->units, nin = p->n_in;
    int16_t *gates = (int16_t *)scratch;                 /* [4][u] */
    int16_t *x16 = gates + 4 * u, *h16 = x16 + pad4(nin);
    for (int32_t t = 0; t < steps; t++) {
        widen(input + t * nin, nin, x16);
        widen(h, u, h16);
        for (int g = 0; g < 4; g++) {
            const int8_t *w = p->w[g], *rw = p->r[g];
            const int32_t *bi = eff + (2 * g) * u, *br = eff + (2 * g + 1) * u;
            int16_t *out = gates + g * u;
            int32_t ai[4], ar4[4];
            const int32_t u4 = u & ~3;
            for (int32_t j = 0; j < u; j++) {
                int32_t a, ar;
                if (j < u4) {                       /* four rows per pass */
                    if ((j & 3) == 0) {
                        memcpy(ai, bi + j, sizeof ai);
                        memcpy(ar4, br + j, sizeof ar4);
                        dot4(w + j * nin, nin, x16, ai);
                        dot4(rw + j * u, u, h16, ar4);
                    }
                    a = ai[j & 3];
                    ar = ar4[j & 3];
                } else {
                    a = dot(w + j * nin, x16, nin, bi[j]);
                    ar = dot(rw + j * u, h16, u, br[j]);
                }
                out[j] = kws_lstm_gate(p, g, a, ar);
            }
        }
        const int16_t *gi = gates, *gf = gates + u, *gc = gates + 2 * u, *go = gates + 3 * u;
        for (int32_t j = 0; j < u; j++) {
            h[j] = kws_lstm_cell(p, gi[j], gf[j], gc[j], go[j], &c[j]);
            output[t * u + j] = h[j];
        }
    }
}
#else
int kws_lstm_dsp_available(void) { return 0; }

void kws_lstm_s8_dsp(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output)
{
    (void)p; (void)eff; (void)steps; (void)input; (void)h; (void)c; (void)scratch; (void)output;
}
#endif
