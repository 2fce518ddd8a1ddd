/* kws_fully_connected_a4_mve: SUB8_FC_A4 (k-bit weights, inputs of <= 4 bits) on Helium (MVE, e.g.
 * Cortex-M55), weights in layout 6 (rows_per_byte, k = 2 or 4; kws_fc_a4_rows.h has the arithmetic).
 *
 * One VLDRB of 16 weight bytes holds 16 inputs of G = 8/k rows; each row costs one VMLADAVA.S8 (16
 * MACs into a 32-bit sum) and, above row 0, one VSHR.S8: k = 4 is 4 instructions per 32 MACs, k = 2 is
 * 8 per 64 (+ the loads and LE: 9.25 per block of four rows for k = 4, four blocks per LE iteration).
 * Outputs are requantized four at a time (k = 4: the whole layer after its dots, like the w4a8 kernel). The inputs are used as they are (0..15, zero point 0): no offset, no row sums, and for
 * in % 16 == 0 no copy. VMLADAV is the widest multiply Helium has (16 MACs); what 4-bit activations
 * save here is the w4a8 kernel's input-offset work, not multiplies (docs/kernels.md).
 * Compiled to nothing outside MVE builds (the runtime links it into every image). */
#include "kws_fc_a4.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#include "kws_fc_a4_rows.h"

const int kws_fc_a4_opt_isa = KWS_ISA_MVE;

int kws_fc_a4_opt_supported(const kws_fc_a4_params *p) { return a4r_supported(p); }

/* the padded activations, then (k = 4) the layer's int32 dots (16-byte aligned: the first part is whole blocks) */
size_t kws_fc_a4_opt_scratch_bytes(const kws_fc_a4_params *p)
{
    return a4r_scratch_bytes(p) + 4u * (((size_t)p->fc.out_features + 3u) & ~(size_t)3u);
}

static uint32_t sum_x(const int8_t *xs, int32_t nblk)
{
    uint32_t s = 0;
    for (int32_t c = 0; c < nblk; c++) s = vaddvaq_u8(s, vldrbq_u8((const uint8_t *)xs + 16 * c));
    return s;
}

/* four outputs o..o+3 from their sums v: + bias (wrap-around), then kws_fc_opt_requant's arithmetic four
 * lanes at a time: VSHL (wraps like the reference's uint32 shift), VQRDMULH (SaturatingRoundingDoublingHighMul),
 * the rounding divide as VRSHL after subtracting 1 from negative values (half away from zero), the output
 * offset, the clamp, and a narrowing byte store */
static inline void requant4(const kws_fc_params *f, const int32_t *bias, int32_t o, int32x4_t v, int8_t *y)
{
    const int32x4_t zero = vdupq_n_s32(0), sh = vldrwq_s32(f->shift + o), right = vminq_s32(sh, zero);
    if (bias) v = vaddq_s32(v, vldrwq_s32(bias + o));
    v = vshlq_s32(v, vmaxq_s32(sh, zero));
    v = vqrdmulhq_s32(v, vldrwq_s32(f->multiplier + o));
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, right), 31));
    v = vrshlq_s32(v, right);
    v = vaddq_n_s32(v, f->act.output_offset);
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(f->act.act_min)), vdupq_n_s32(f->act.act_max));
    vstrbq_s32(y + o, v);
}

/* the four sums of a pass -> outputs o..o+3 (scalar for the last, partial pass) */
static inline void out4(const kws_fc_params *f, const int32_t *bias, int32_t o, const int32_t *d, int8_t *y)
{
    if (o + 4 <= f->out_features) {
        requant4(f, bias, o, vldrwq_s32(d), y);
        return;
    }
    for (int32_t r = 0; o + r < f->out_features; r++) y[o + r] = a4r_out(f, bias, o + r, d[r]);
}

/* all outputs of a layer from their dots acc[o], four at a time (requant4's arithmetic, the constants held in
 * registers across the layer), the last out % 4 in scalar code */
static void requant_layer(const kws_fc_params *f, const int32_t *bias, const int32_t *acc, int8_t *y)
{
    const int32_t n = f->out_features, n4 = n & ~3, ooff = f->act.output_offset;
    const int32x4_t zero = vdupq_n_s32(0), omin = vdupq_n_s32(f->act.act_min), omax = vdupq_n_s32(f->act.act_max);
    const int32_t *sp = f->shift, *mp = f->multiplier, *bp = bias, *a = acc;
    int8_t *yp = y;
#define RQ4(BIAS)                                                         \
    for (int32_t o = 0; o < n4; o += 4) {                                 \
        int32x4_t v = vldrwq_s32(a);                                      \
        a += 4;                                                           \
        BIAS                                                              \
        const int32x4_t sh = vldrwq_s32(sp);                              \
        sp += 4;                                                          \
        const int32x4_t right = vminq_s32(sh, zero);                      \
        v = vshlq_s32(v, vmaxq_s32(sh, zero));                            \
        v = vqrdmulhq_s32(v, vldrwq_s32(mp));                             \
        mp += 4;                                                          \
        v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, right), 31));          \
        v = vrshlq_s32(v, right);                                         \
        v = vaddq_n_s32(v, ooff);                                         \
        v = vminq_s32(vmaxq_s32(v, omin), omax);                          \
        vstrbq_s32(yp, v);                                                \
        yp += 4;                                                          \
    }
    if (bp) { RQ4(v = vaddq_s32(v, vldrwq_s32(bp)); bp += 4;) }
    else { RQ4() }
#undef RQ4
    for (int32_t o = n4; o < n; o++) y[o] = a4r_out(f, bias, o, acc[o]);
}

/* k = 4: two groups (four rows) per pass, the activation block loaded once for both; one VLDRB per operand,
 * VMLADAVA (even registers: the sums are pinned to r0..r6), four blocks per low-overhead loop iteration
 * (WLS / LE, the nblk % 4 others first); each pass ends in the same assembly block with the two low rows'
 * dots S_a - 16 S_b - 8 sum x and one STM of the four dots, and the layer is requantized four outputs at a
 * time afterwards (requant_layer): the shape of our w4a8 layout-6 kernel (kws_fully_connected_mve.c)
 * without its input-offset term */
static void rows_k4(const kws_fc_params *f, const int8_t *xs, uint32_t sx, const int8_t *w, const int32_t *bias,
                    int32_t *acc, int8_t *y)
{
    const int32_t out_n = f->out_features, nblk = a4r_blocks(f->in_features), pad = 16 * nblk;
    const uint32_t c8 = sx << 3;
    int32_t o = 0, S[2];
    int32_t *ap = acc;
    const int8_t *wg = w;
    register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
#define K4_BODY "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[p0]], #16\n\tvldrb.8 q2, [%[p1]], #16\n\t"              \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q3, q1, #4\n\tvmladava.s8 %[a1], q0, q3\n\t"                              \
    "vmladava.s8 %[a2], q0, q2\n\tvshr.s8 q3, q2, #4\n\tvmladava.s8 %[a3], q0, q3\n\t"
#define K4_PASS(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t" ODD       \
    "wls lr, lr, 2f\n\t1:\n\t" K4_BODY K4_BODY K4_BODY K4_BODY "le lr, 1b\n\t2:\n\t"                                  \
    "sub %[a0], %[a0], %[a1], lsl #4\n\tsub %[a0], %[a0], %[c]\n\tsub %[a2], %[a2], %[a3], lsl #4\n\t"                \
    "sub %[a2], %[a2], %[c]\n\tstmia %[ap]!, {r0, r2, r4, r6}\n\t"                                                   \
    : [x] "+r"(xp), [p0] "+r"(p0), [p1] "+r"(p1), [ap] "+r"(ap), [n] "+r"(cnt),                                     \
      [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3) : [c] "r"(c8) : "memory", "q0", "q1", "q2", "q3")
#define K4_ROWS(REM) for (; o + 4 <= out_n; o += 4) {                              \
        const int8_t *xp = xs, *p0 = wg, *p1 = wg + pad;                       \
        register int32_t cnt __asm__("lr") = nblk >> 2;                        \
        K4_PASS(REM);                                                          \
        wg = p1;   /* the next pair of groups starts where this one ends */     \
    }
    switch (nblk & 3) {
    case 0: K4_ROWS(""); break;
    case 1: K4_ROWS(K4_BODY); break;
    case 2: K4_ROWS(K4_BODY K4_BODY); break;
    default: K4_ROWS(K4_BODY K4_BODY K4_BODY); break;
    }
#undef K4_ROWS
#undef K4_PASS
#undef K4_BODY
    for (; o < out_n; o += 2, wg += pad) {   /* one group of two rows (the last may hold one) */
        int32_t b0 = 0, b1 = 0;
        for (int32_t c = 0; c < nblk; c++) {
            const int8x16_t xv = vldrbq_s8(xs + 16 * c), g0 = vldrbq_s8(wg + 16 * c);
            b0 = vmladavaq_s8(b0, xv, g0);
            b1 = vmladavaq_s8(b1, xv, vshrq_n_s8(g0, 4));
        }
        S[0] = b0; S[1] = b1;
        acc[o] = a4r_dot(4, 0, S, sx);
        if (o + 1 < out_n) acc[o + 1] = a4r_dot(4, 1, S, sx);
    }
    requant_layer(f, bias, acc, y);
}

/* k = 2: one group of four rows per pass */
static void rows_k2(const kws_fc_params *f, const int8_t *xs, uint32_t sx, const int8_t *w, const int32_t *bias,
                    int8_t *y)
{
    const int32_t out_n = f->out_features, nblk = a4r_blocks(f->in_features), pad = 16 * nblk;
    int32_t S[4], d[4];
    for (int32_t o = 0; o < out_n; o += 4, w += pad) {
        const int8_t *xp = xs, *pw = w;
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
#define K2_BODY "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[pw]], #16\n\t"                                        \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q2, q1, #2\n\tvmladava.s8 %[a1], q0, q2\n\t"                         \
    "vshr.s8 q2, q1, #4\n\tvmladava.s8 %[a2], q0, q2\n\tvshr.s8 q2, q1, #6\n\tvmladava.s8 %[a3], q0, q2\n\t"
#define K2_PASS(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t" ODD \
                                      "wls lr, %[n], 2f\n1:\n\t" K2_BODY K2_BODY "le lr, 1b\n2:\n\t"          \
                         : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [x] "+r"(xp),          \
                           [pw] "+r"(pw)                                                                           \
                         : [n] "r"(nblk >> 1)                                                                      \
                         : "lr", "memory", "q0", "q1", "q2")
        if (nblk & 1) K2_PASS(K2_BODY);
        else K2_PASS("");
#undef K2_PASS
#undef K2_BODY
        S[0] = a0; S[1] = a1; S[2] = a2; S[3] = a3;
        for (int32_t r = 0; r < 4; r++) d[r] = a4r_dot(2, r, S, sx);
        out4(f, bias, o, d, y);
    }
}

void kws_fully_connected_a4_opt(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const kws_fc_params *f = &p->fc;
    const int32_t in_n = f->in_features, out_n = f->out_features;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *xs = a4r_padded(input + (size_t)b * (size_t)in_n, in_n, scratch);
        const uint32_t sx = sum_x(xs, a4r_blocks(in_n));
        int8_t *y = output + (size_t)b * (size_t)out_n;
        if (f->bits == 4) rows_k4(f, xs, sx, (const int8_t *)weights, bias,
                                  (int32_t *)(void *)((int8_t *)scratch + a4r_scratch_bytes(p)), y);
        else rows_k2(f, xs, sx, (const int8_t *)weights, bias, y);
    }
}
#else
typedef int kws_fc_a4_mve_unused;   /* not an MVE build: the A4 kernel comes from another file */
#endif
