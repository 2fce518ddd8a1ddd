/* kws_lstm_neon.c - UNIDIRECTIONAL_SEQUENCE_LSTM on AArch64 NEON, bit-exact with
 * kernels/reference/kws_lstm_s8.c. Two builds from this file:
 *   armv8.2-a+dotprod (Cortex-A76): SDOT, 16 MACs into four int32 lanes per instruction;
 *   armv8.0-a (Cortex-A53): SMULL / SMULL2 (int8 x int8 -> int16, exact) and SADALP into int32 lanes.
 *
 * Per hop, the eight matrix-vector products (input and recurrent weights of the four gates) run first,
 * four rows per pass: one LD1 of 16 inputs (x or the previous h) is shared by the four rows; the four
 * rows' lane sums are reduced with three ADDP into one vector of four sums, plus the per-row biases in
 * which the zero points were folded at prepare time (kws_lstm_fold_bias, shared with the DSP kernel).
 * A row length that is not a multiple of 16 ends in scalar code. The gate pre-activations (two
 * requantizations, int16 saturation, saturating add) run four units at a time: SSHL, SQRDMULH (TFLite's
 * SaturatingRoundingDoublingHighMul for multipliers >= 0), the rounding divide as SRSHL after
 * subtracting 1 from negative values, SQXTN and SQADD. The table sigmoid / tanh and the cell / hidden
 * update are the reference's scalar code (include/kws_lstm_arith.h). Compiled into every build; a stub
 * outside AArch64, and the runtime picks it only where kws_kernel_isa() is "neon" or "neon_dotprod"
 * (kws_runner_ref.elf keeps the reference). */
#include "kws_kernels.h"
#include "kws_kernels_opt.h"   /* kws_fc_opt_mbqm: the reference's requantization in one long multiply */
#define KWS_LSTM_MBQM kws_fc_opt_mbqm
#include "kws_lstm_arith.h"
#include "kws_lstm_vec_hop.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

int kws_lstm_neon_available(void) { return 1; }

static inline int32x4_t dot16(int32x4_t a, int8x16_t w, int8x16_t x)
{
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(a, w, x);
#else
    a = vpadalq_s16(a, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(a, vmull_high_s8(w, x));
#endif
}

/* out[j] = bias[j] + sum_k w[j][k] x[k], j < rows; w row-major [rows][n] */
static void matvec(const int8_t *w, int32_t rows, int32_t n, const int8_t *x, const int32_t *bias, int32_t *out)
{
    const int32_t nfull = n & ~15;
    int32_t j = 0;
    for (; j + 4 <= rows; j += 4) {
        const int8_t *w0 = w + j * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t k = 0; k < nfull; k += 16) {
            const int8x16_t xv = vld1q_s8(x + k);
            a0 = dot16(a0, vld1q_s8(w0 + k), xv);
            a1 = dot16(a1, vld1q_s8(w1 + k), xv);
            a2 = dot16(a2, vld1q_s8(w2 + k), xv);
            a3 = dot16(a3, vld1q_s8(w3 + k), xv);
        }
        vst1q_s32(out + j, vaddq_s32(vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)), vld1q_s32(bias + j)));
        for (int32_t k = nfull; k < n; k++) {
            const int32_t xk = x[k];
            out[j] += w0[k] * xk; out[j + 1] += w1[k] * xk; out[j + 2] += w2[k] * xk; out[j + 3] += w3[k] * xk;
        }
    }
    for (; j < rows; j++) {
        const int8_t *w0 = w + j * n;
        int32x4_t a0 = vdupq_n_s32(0);
        for (int32_t k = 0; k < nfull; k += 16) a0 = dot16(a0, vld1q_s8(w0 + k), vld1q_s8(x + k));
        int32_t s = bias[j] + vaddvq_s32(a0);
        for (int32_t k = nfull; k < n; k++) s += w0[k] * x[k];
        out[j] = s;
    }
}

/* kws_multiply_by_quantized_multiplier on four lanes (multiplier >= 0), saturated to int16 */
static inline int16x4_t requant16(int32x4_t v, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    v = vshlq_s32(v, vdupq_n_s32(left));
    v = vqrdmulhq_n_s32(v, mult);
    if (right) {
        v = vqaddq_s32(v, vshrq_n_s32(v, 31));   /* -1 for negative values: SRSHL rounds half up */
        v = vrshlq_s32(v, vdupq_n_s32(-right));
    }
    return vqmovn_s32(v);
}

/* gate g's int16 pre-activation sat16(sat16(requant(acc_in)) + sat16(requant(acc_rec))), four units at a
 * time, into out[]; units % 4 left to the scalar code */
static void preact(const kws_lstm_params *p, int g, const int32_t *acc_in, const int32_t *acc_rec, int16_t *out)
{
    const int32_t u4 = p->units & ~3;
    for (int32_t j = 0; j < u4; j += 4)
        vst1_s16(out + j, vqadd_s16(requant16(vld1q_s32(acc_in + j), p->in_mult[g], p->in_shift[g]),
                                    requant16(vld1q_s32(acc_rec + j), p->rec_mult[g], p->rec_shift[g])));
}

KWS_NO_VECTORIZE
void kws_lstm_s8_neon(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                      int16_t *c, void *scratch, int8_t *output)
{
    kws_lstm_vec_hops(p, eff, steps, input, h, c, scratch, output, matvec, preact);
}
#else
int kws_lstm_neon_available(void) { return 0; }

void kws_lstm_s8_neon(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                      int16_t *c, void *scratch, int8_t *output)
{
    (void)p; (void)eff; (void)steps; (void)input; (void)h; (void)c; (void)scratch; (void)output;
}
#endif
