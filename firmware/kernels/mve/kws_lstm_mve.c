/* kws_lstm_mve.c - UNIDIRECTIONAL_SEQUENCE_LSTM on Helium (MVE, Cortex-M55), bit-exact with
 * kernels/reference/kws_lstm_s8.c.
 *
 * Per hop, the eight matrix-vector products (input and recurrent weights of the four gates) run first,
 * four rows per pass: one VLDRB of 16 inputs (x or the previous h) is shared by the four rows, each row
 * costs one VLDRB and one VMLADAVA.S8 (16 MACs into its 32-bit sum); a row length that is not a multiple
 * of 16 ends with one tail-predicated block (VCTP, zeroing loads). The zero points are folded into the
 * per-row biases at prepare time (kws_lstm_fold_bias, shared with the DSP kernel), so the products see
 * the raw int8 values. The gate pre-activations (two requantizations, int16 saturation, saturating add)
 * then run four units at a time: VSHL, VQRDMULH (TFLite's SaturatingRoundingDoublingHighMul for
 * multipliers >= 0), the rounding divide as VRSHL after subtracting 1 from negative values, and VMIN /
 * VMAX to the int16 range. The table sigmoid / tanh and the cell / hidden update are the reference's
 * scalar code (include/kws_lstm_arith.h). Compiled into every build; a stub outside MVE builds, and the
 * runtime picks it only where kws_kernel_isa() is "mve" (kws_runner_ref.elf keeps the reference). */
#include "kws_kernels.h"
#include "kws_kernels_opt.h"   /* kws_fc_opt_mbqm: the reference's requantization in one long multiply */
#define KWS_LSTM_MBQM kws_fc_opt_mbqm
#include "kws_lstm_arith.h"
#include "kws_lstm_vec_hop.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

int kws_lstm_mve_available(void) { return 1; }

/* out[j] = bias[j] + sum_k w[j][k] x[k], j < rows; w row-major [rows][n] */
static void matvec(const int8_t *w, int32_t rows, int32_t n, const int8_t *x, const int32_t *bias, int32_t *out)
{
    const int32_t nfull = n & ~15, tail = n - nfull;
    const mve_pred16_t pt = vctp8q((uint32_t)tail);
    int32_t j = 0;
    for (; j + 4 <= rows; j += 4) {
        const int8_t *w0 = w + j * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        int32_t a0 = bias[j], a1 = bias[j + 1], a2 = bias[j + 2], a3 = bias[j + 3];
        for (int32_t k = 0; k < nfull; k += 16) {
            const int8x16_t xv = vldrbq_s8(x + k);
            a0 = vmladavaq_s8(a0, vldrbq_s8(w0 + k), xv);
            a1 = vmladavaq_s8(a1, vldrbq_s8(w1 + k), xv);
            a2 = vmladavaq_s8(a2, vldrbq_s8(w2 + k), xv);
            a3 = vmladavaq_s8(a3, vldrbq_s8(w3 + k), xv);
        }
        if (tail) {   /* zeroing loads: the lanes past the row read nothing and add 0 */
            const int8x16_t xv = vldrbq_z_s8(x + nfull, pt);
            a0 = vmladavaq_s8(a0, vldrbq_z_s8(w0 + nfull, pt), xv);
            a1 = vmladavaq_s8(a1, vldrbq_z_s8(w1 + nfull, pt), xv);
            a2 = vmladavaq_s8(a2, vldrbq_z_s8(w2 + nfull, pt), xv);
            a3 = vmladavaq_s8(a3, vldrbq_z_s8(w3 + nfull, pt), xv);
        }
        out[j] = a0; out[j + 1] = a1; out[j + 2] = a2; out[j + 3] = a3;
    }
    for (; j < rows; j++) {
        const int8_t *w0 = w + j * n;
        int32_t a0 = bias[j];
        for (int32_t k = 0; k < n; k += 16) {
            const mve_pred16_t pk = vctp8q((uint32_t)(n - k));
            a0 = vmladavaq_s8(a0, vldrbq_z_s8(w0 + k, pk), vldrbq_z_s8(x + k, pk));
        }
        out[j] = a0;
    }
}

/* kws_multiply_by_quantized_multiplier on four lanes (multiplier >= 0), then clamped to int16 */
static inline int32x4_t requant16(int32x4_t v, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    v = vshlq_s32(v, vdupq_n_s32(left));
    v = vqrdmulhq_n_s32(v, mult);
    if (right) {
        v = vqaddq_s32(v, vshrq_n_s32(v, 31));   /* -1 for negative values: VRSHL rounds half up */
        v = vrshlq_s32(v, vdupq_n_s32(-right));
    }
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(-32768)), vdupq_n_s32(32767));
}

/* gate g's int16 pre-activation sat16(sat16(requant(acc_in)) + sat16(requant(acc_rec))), four units at a
 * time, into out[]; units % 4 left to the scalar code */
static void preact(const kws_lstm_params *p, int g, const int32_t *acc_in, const int32_t *acc_rec, int16_t *out)
{
    const int32_t u4 = p->units & ~3;
    for (int32_t j = 0; j < u4; j += 4) {
        int32x4_t s = vaddq_s32(requant16(vldrwq_s32(acc_in + j), p->in_mult[g], p->in_shift[g]),
                                requant16(vldrwq_s32(acc_rec + j), p->rec_mult[g], p->rec_shift[g]));
        vstrhq_s32(out + j, vminq_s32(vmaxq_s32(s, vdupq_n_s32(-32768)), vdupq_n_s32(32767)));
    }
}

KWS_NO_VECTORIZE
void kws_lstm_s8_mve(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output)
{
    kws_lstm_vec_hops(p, eff, steps, input, h, c, scratch, output, matvec, preact);
}
#else
int kws_lstm_mve_available(void) { return 0; }

void kws_lstm_s8_mve(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output)
{
    (void)p; (void)eff; (void)steps; (void)input; (void)h; (void)c; (void)scratch; (void)output;
}
#endif
