/* kws_fully_connected_sparse_mve: Cortex-M55 (Helium / MVE) kernel for block-compressed sparse rows
 * (SUB8 layout 5, kws_sparse.h), bit-exact with kws_fully_connected_sparse.
 *
 *   k = 8, block 8 / 16: activations widened once per batch row to int16 (x + in_off); per stored
 *          block VLDRB.S16 of 8 weights + VLDRH of 8 activations + VMLADAVA.S16, per 8 weights.
 *   k = 4, block 16: activations of each block column stored even inputs first, then odd; per block
 *          one VLDRB.S16 of 8 bytes (16 nibbles): low nibbles by VSHL #12 + VSHR #12, high nibbles by
 *          VSHR #4 (exact: the byte is sign-extended), two VLDRH + two VMLADAVA.S16.
 *   block 1 (CSR), k = 8 and 4: per 8 (k=8) or 16 (k=4) stored weights, the columns are loaded
 *          (k=4: gathered, even and odd slots apart) and the activations gathered with
 *          VLDRH.S16 [x, col, UXTW #1]; the row's tail is tail-predicated (VCTP16).
 * Instruction counts under QEMU count a gather as one instruction; on silicon a gather loads one
 * element per cycle, so these figures flatter the CSR path more than the block path. */
#include <arm_mve.h>
#include "kws_sparse.h"
#include "kws_kernels_opt.h"
#include "kws_fc_sparse_opt_common.h"

const char kws_fc_sparse_opt_isa[] = "mve";

int kws_fc_sparse_opt_supported(const kws_fc_params *p, const kws_sparse_params *sp)
{
    (void)p;
    if (sp->layout == KWS_LAYOUT_BSR && sp->block == 1 && sp->block_rows == 1) return sp->bits == 8 || sp->bits == 4;  /* CSR: gathers */
    return kws_fc_sparse_opt_block_format(sp);
}

size_t kws_fc_sparse_opt_scratch_bytes(const kws_fc_params *p, const kws_sparse_params *sp)
{
    (void)p;
    return kws_fc_sparse_opt_widened_bytes(sp);
}

/* whole groups of 16 inputs: one VLDRB, VMOVLB / VMOVLT (even / odd bytes -> int16), VADD, two VSTRH */
static void widen(const int8_t *x, int32_t in_n, int32_t padded, int32_t in_off, int deinterleave16, int16_t *xs)
{
    const int16x8_t off = vdupq_n_s16((int16_t)in_off);
    int32_t i = 0;
    for (; i + 16 <= in_n; i += 16) {
        int8x16_t v = vld1q_s8(x + i);
        int16x8_t ev = vaddq_s16(vmovlbq_s8(v), off), od = vaddq_s16(vmovltq_s8(v), off);
        if (deinterleave16) {
            vst1q_s16(xs + i, ev);
            vst1q_s16(xs + i + 8, od);
        } else {
            vst1q_s16(xs + i, vaddq_s16(vldrbq_s16(x + i), off));
            vst1q_s16(xs + i + 8, vaddq_s16(vldrbq_s16(x + i + 8), off));
        }
    }
    kws_fc_sparse_opt_widen_tail(x, i, in_n, padded, in_off, deinterleave16, xs);
}

static int32_t row_block(const kws_sparse_params *sp, uint32_t a, uint32_t e, const int16_t *xs)
{
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const int8_t *vals = (const int8_t *)sp->values;
    const int32_t B = sp->block;
    int32_t acc = 0;
    if (sp->bits == 8) {
        for (uint32_t j = a; j < e; j++) {
            const int16_t *xp = xs + (size_t)cols[j] * (size_t)B;
            const int8_t *wp = vals + (size_t)j * (size_t)B;
            acc = vmladavaq_s16(acc, vldrbq_s16(wp), vld1q_s16(xp));
            if (B == 16) acc = vmladavaq_s16(acc, vldrbq_s16(wp + 8), vld1q_s16(xp + 8));
        }
    } else {
        for (uint32_t j = a; j < e; j++) {
            const int16_t *xp = xs + (size_t)cols[j] * 16u;
            int16x8_t w = vldrbq_s16(vals + (size_t)j * 8u);
            int16x8_t lo = vshrq_n_s16(vshlq_n_s16(w, 12), 12), hi = vshrq_n_s16(w, 4);
            acc = vmladavaq_s16(acc, lo, vld1q_s16(xp));
            acc = vmladavaq_s16(acc, hi, vld1q_s16(xp + 8));
        }
    }
    return acc;
}

static int32_t row_csr(const kws_sparse_params *sp, uint32_t a, uint32_t e, const int16_t *x16)
{
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const int8_t *vals = (const int8_t *)sp->values;
    int32_t acc = 0;
    uint32_t j = a;
    if (sp->bits == 8) {   /* whole groups of 8 unpredicated, the tail predicated once */
        for (; j + 8 <= e; j += 8)
            acc = vmladavaq_s16(acc, vldrhq_gather_shifted_offset_s16(x16, vld1q_u16(cols + j)), vldrbq_s16(vals + j));
        if (j < e) {
            mve_pred16_t pr = vctp16q(e - j);
            int16x8_t xv = vldrhq_gather_shifted_offset_z_s16(x16, vldrhq_z_u16(cols + j, pr), pr);
            acc = vmladavaq_p_s16(acc, xv, vldrbq_z_s16(vals + j, pr), pr);
        }
        return acc;
    }
    if ((j & 1u) && j < e) {   /* a row starting in a high nibble */
        acc += x16[cols[j]] * kws_sparse_value(kws_sparse_field(sp->values, j * 4u, 4u), 4u);
        j++;
    }
    const uint16x8_t step2 = vidupq_n_u16(0, 2);
    for (; j + 16 <= e; j += 16) {
        int16x8_t w = vldrbq_s16(vals + j / 2u);
        int16x8_t lo = vshrq_n_s16(vshlq_n_s16(w, 12), 12), hi = vshrq_n_s16(w, 4);
        uint16x8_t ce = vldrhq_gather_shifted_offset_u16(cols + j, step2);
        uint16x8_t co = vldrhq_gather_shifted_offset_u16(cols + j + 1, step2);
        acc = vmladavaq_s16(acc, vldrhq_gather_shifted_offset_s16(x16, ce), lo);
        acc = vmladavaq_s16(acc, vldrhq_gather_shifted_offset_s16(x16, co), hi);
    }
    if (j < e) {
        const uint32_t n = e - j;
        mve_pred16_t pe = vctp16q((n + 1) / 2u), po = vctp16q(n / 2u);
        int16x8_t w = vldrbq_z_s16(vals + j / 2u, pe);
        int16x8_t lo = vshrq_n_s16(vshlq_n_s16(w, 12), 12), hi = vshrq_n_s16(w, 4);
        uint16x8_t ce = vldrhq_gather_shifted_offset_z_u16(cols + j, step2, pe);
        uint16x8_t co = vldrhq_gather_shifted_offset_z_u16(cols + j + 1, step2, po);
        acc = vmladavaq_p_s16(acc, vldrhq_gather_shifted_offset_z_s16(x16, ce, pe), lo, pe);
        acc = vmladavaq_p_s16(acc, vldrhq_gather_shifted_offset_z_s16(x16, co, po), hi, po);
    }
    return acc;
}

void kws_fully_connected_sparse_opt(const kws_fc_params *p, const kws_sparse_params *sp, void *scratch,
                                    int32_t batches, const int8_t *input, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const uint32_t *row_ptr = (const uint32_t *)(const void *)sp->row_ptr;
    int16_t *xs = scratch;
    for (int32_t b = 0; b < batches; b++) {
        widen(input + (size_t)b * in_n, in_n, sp->block_cols * sp->block, p->act.input_offset,
              sp->block == 16 && sp->bits == 4, xs);
        int8_t *y = output + (size_t)b * out_n;
        for (int32_t o = 0; o < out_n; o++) {
            const uint32_t a = row_ptr[o], e = row_ptr[o + 1];
            int32_t acc = sp->block == 1 ? row_csr(sp, a, e, xs) : row_block(sp, a, e, xs);
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            y[o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
