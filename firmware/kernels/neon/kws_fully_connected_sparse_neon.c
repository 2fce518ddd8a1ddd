/* kws_fully_connected_sparse_neon: AArch64 NEON (armv8.0, every core) kernel for block-compressed
 * sparse rows (SUB8 layout 5, kws_sparse.h) with k = 8, block 8 / 16 and k = 4, block 16;
 * bit-exact with kws_fully_connected_sparse. Activations are widened once per batch row to int16
 * (x + in_off; k = 4: each block column's even inputs first, then its odd ones). Per stored block:
 * LD1 of the weights, SXTL (k = 4: SHL #12 + SSHR #12 for the low nibbles, SSHR #4 for the high
 * ones), LD1 of the activations and SMLAL / SMLAL2 into two int32x4 accumulators, reduced once per
 * row (ADDV). Other formats (CSR, k = 2) run the reference: without gathers a CSR weight costs
 * about four scalar instructions, more than the dense kernels here. */
#include <arm_neon.h>
#include "kws_sparse.h"
#include "kws_kernels_opt.h"
#include "kws_fc_sparse_opt_common.h"

const char kws_fc_sparse_opt_isa[] = "neon";

int kws_fc_sparse_opt_supported(const kws_fc_params *p, const kws_sparse_params *sp)
{
    (void)p;
    return kws_fc_sparse_opt_block_format(sp);
}

size_t kws_fc_sparse_opt_scratch_bytes(const kws_fc_params *p, const kws_sparse_params *sp)
{
    (void)p;
    return kws_fc_sparse_opt_widened_bytes(sp);
}

/* whole groups of 16 inputs: LD2 (even / odd bytes apart when de-interleaving) or LD1, SXTL, ADD, ST1 */
static void widen(const int8_t *x, int32_t in_n, int32_t padded, int32_t in_off, int deinterleave16, int16_t *xs)
{
    const int16x8_t off = vdupq_n_s16((int16_t)in_off);
    int32_t i = 0;
    for (; i + 16 <= in_n; i += 16) {
        if (deinterleave16) {
            int8x8x2_t v = vld2_s8(x + i);
            vst1q_s16(xs + i, vaddq_s16(vmovl_s8(v.val[0]), off));
            vst1q_s16(xs + i + 8, vaddq_s16(vmovl_s8(v.val[1]), off));
        } else {
            int8x16_t v = vld1q_s8(x + i);
            vst1q_s16(xs + i, vaddq_s16(vmovl_s8(vget_low_s8(v)), off));
            vst1q_s16(xs + i + 8, vaddq_s16(vmovl_high_s8(v), off));
        }
    }
    kws_fc_sparse_opt_widen_tail(x, i, in_n, padded, in_off, deinterleave16, xs);
}

static inline int32x4_t mla8(int32x4_t acc, int16x8_t w, int16x8_t x)
{
    acc = vmlal_s16(acc, vget_low_s16(w), vget_low_s16(x));
    return vmlal_high_s16(acc, w, x);
}

void kws_fully_connected_sparse_opt(const kws_fc_params *p, const kws_sparse_params *sp, void *scratch,
                                    int32_t batches, const int8_t *input, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, B = sp->block;
    const uint32_t *row_ptr = (const uint32_t *)(const void *)sp->row_ptr;
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const int8_t *vals = (const int8_t *)sp->values;
    int16_t *xs = scratch;
    for (int32_t b = 0; b < batches; b++) {
        widen(input + (size_t)b * in_n, in_n, sp->block_cols * B, p->act.input_offset, sp->bits == 4, xs);
        int8_t *y = output + (size_t)b * out_n;
        for (int32_t o = 0; o < out_n; o++) {
            const uint32_t a = row_ptr[o], e = row_ptr[o + 1];
            int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
            if (sp->bits == 8) {
                for (uint32_t j = a; j < e; j++) {
                    const int16_t *xp = xs + (size_t)cols[j] * (size_t)B;
                    const int8_t *wp = vals + (size_t)j * (size_t)B;
                    acc0 = mla8(acc0, vmovl_s8(vld1_s8(wp)), vld1q_s16(xp));
                    if (B == 16) acc1 = mla8(acc1, vmovl_s8(vld1_s8(wp + 8)), vld1q_s16(xp + 8));
                }
            } else {
                for (uint32_t j = a; j < e; j++) {
                    const int16_t *xp = xs + (size_t)cols[j] * 16u;
                    int16x8_t w = vmovl_s8(vld1_s8(vals + (size_t)j * 8u));
                    acc0 = mla8(acc0, vshrq_n_s16(vshlq_n_s16(w, 12), 12), vld1q_s16(xp));
                    acc1 = mla8(acc1, vshrq_n_s16(w, 4), vld1q_s16(xp + 8));
                }
            }
            int32_t acc = vaddvq_s32(vaddq_s32(acc0, acc1));
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            y[o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
