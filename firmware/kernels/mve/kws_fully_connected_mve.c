/* kws_fully_connected_mve: FULLY_CONNECTED for Cortex-M cores with Helium (MVE, e.g. M55),
 * bit-exact with kws_fully_connected_s8/_sub8.
 *
 *   k = 8, layout 0 (plain int8): four rows per pass, one VLDRB of activations feeds four
 *          VMLADAVA.S8 (16 MACs each); the in_features tail is one predicated step (VCTP8).
 *   k = 1..4, layout 3 (r4_nib32): activations copied once per layer into a zero-padded buffer
 *          (and summed); per block of 32 weights and row: one VLDRB, VAND #15 and VSHR #4 give
 *          the biased nibbles u = w + 8 of weights j and 16+j, two VMLADAVA.S8;
 *          sum x*w = sum x*u - 8 * sum x.
 * The input offset enters through the prepare-time row sums: sum (x+off)*w = sum x*w + off*sum w. */
#include <string.h>
#include <arm_mve.h>
#include "kws_kernels_opt.h"

const char kws_fc_opt_isa[] = "mve";
const int kws_fc_opt_per_tensor = 0;

/* what this kernel runs and prefers: kws_layout_table.h (from tflm_port/layout_table.py, the
 * converter's --target table): int8 row-major, layout 3 for 1..4 bits, layout 6 for 1, 2, 4 bits */
int kws_fc_opt_supported(int32_t bits, int32_t layout) { return kws_isa_supports(KWS_ISA_MVE, bits, layout); }

int32_t kws_fc_opt_preferred_layout(int32_t bits) { return kws_isa_preferred(KWS_ISA_MVE, bits); }

/* scratch: the zero-padded activations (layouts 3/4), then the int32 sums of the layer's outputs,
 * requantized together at the end (requant_layer) */
static inline size_t xs_bytes(int32_t in_n) { return (((size_t)in_n + 31u) & ~(size_t)31u) + 16u; }

size_t kws_fc_opt_scratch_bytes(const kws_fc_params *p)
{
    return xs_bytes(p->in_features) + 4u * (((size_t)p->out_features + 3u) & ~(size_t)3u);
}

static inline int32_t *acc_buf(const kws_fc_opt_ctx *ctx, int32_t in_n)
{
    return (int32_t *)(void *)((uint8_t *)ctx->scratch + xs_bytes(in_n));
}

static inline int32_t finish(int32_t acc, int32_t corr, const int32_t *bias, const kws_fc_opt_ctx *ctx, int32_t off, int32_t o)
{
    uint32_t a = (uint32_t)acc + (uint32_t)corr + (uint32_t)off * (uint32_t)ctx->row_sums[o];
    if (bias) a += (uint32_t)bias[o];
    return (int32_t)a;
}

/* all outputs of a layer from their sums acc[o] (corrections included), four at a time: + input
 * offset x row sums + bias (wrap-around), then VQRDMULH, which is exactly
 * SaturatingRoundingDoublingHighMul, and the rounding divide as VRSHL after subtracting 1 from
 * negative values (round half away from zero); the last out % 4 outputs in scalar code */
static void requant_layer(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int32_t *bias, const int32_t *acc,
                          int8_t *y)
{
    const int32_t n = p->out_features, n4 = n & ~3, off = p->act.input_offset, ooff = p->act.output_offset;
    const int32x4_t zero = vdupq_n_s32(0), omin = vdupq_n_s32(p->act.act_min), omax = vdupq_n_s32(p->act.act_max);
    const int32_t *rs = ctx->row_sums, *sp = p->shift, *mp = p->multiplier, *bp = bias;
    const int32_t *a = acc;
    int8_t *yp = y;
#define RQ4(BIAS)                                                         \
    for (int32_t o = 0; o < n4; o += 4) {                                 \
        int32x4_t v = vmlaq_n_s32(vldrwq_s32(a), vldrwq_s32(rs), off);     \
        a += 4; rs += 4;                                                  \
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
    for (int32_t o = n4; o < n; o++) y[o] = kws_fc_opt_requant(finish(acc[o], 0, bias, ctx, off, o), p->multiplier[o], p->shift[o], &p->act);
}

#define PUT4(o, corr, a0, a1, a2, a3) do { acc[o] = (int32_t)((uint32_t)(a0) + (uint32_t)(corr)); \
    acc[(o) + 1] = (int32_t)((uint32_t)(a1) + (uint32_t)(corr)); acc[(o) + 2] = (int32_t)((uint32_t)(a2) + (uint32_t)(corr)); \
    acc[(o) + 3] = (int32_t)((uint32_t)(a3) + (uint32_t)(corr)); } while (0)

#define OUT(a, corr, o) acc[o] = (int32_t)((uint32_t)(a) + (uint32_t)(corr))

static void fc_s8(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                  const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t n16 = in_n & ~15, tail = in_n - n16;
    const mve_pred16_t pt = vctp8q((uint32_t)tail);
    int32_t o = 0;
    int32_t *acc = acc_buf(ctx, in_n);
    if (tail == 0) {
        /* whole rows of 16: the row pointers chain (row o+4 starts where row o+3 ends) and the inner
         * loop is a low-overhead loop (DLS/LE) in assembly, accumulators pinned to even registers */
        const int8_t *w0 = w;
        int32_t *ap = acc;
        const int32_t nblk = n16 >> 4;
        /* one assembly block per pass: zero the accumulators (pinned to even registers for VMLADAVA),
         * an odd block, two blocks per WLS/LE iteration, STM of the four sums */
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
#define S8_BODY "vldrb.8 q0, [%[x]], #16\n\t"                                                        \
    "vldrb.8 q1, [%[w0]], #16\n\tvmladava.s8 %[a0], q0, q1\n\tvldrb.8 q2, [%[w1]], #16\n\tvmladava.s8 %[a1], q0, q2\n\t" \
    "vldrb.8 q3, [%[w2]], #16\n\tvmladava.s8 %[a2], q0, q3\n\tvldrb.8 q1, [%[w3]], #16\n\tvmladava.s8 %[a3], q0, q1\n\t"
#define S8_PASS(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t" ODD \
    "wls lr, lr, 2f\n\t1:\n\t" S8_BODY S8_BODY S8_BODY S8_BODY "le lr, 1b\n\t2:\n\tstmia %[ap]!, {r0, r2, r4, r6}\n\t" \
    : [x] "+r"(xp), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [ap] "+r"(ap), [n] "+r"(cnt),      \
      [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3) : : "memory", "q0", "q1", "q2", "q3")
        /* four blocks per LE iteration; the nblk % 4 remaining blocks before the loop (one loop per case) */
        const int32_t quarter = nblk >> 2;
#define S8_ROWS(REM) for (; o + 4 <= out_n; o += 4) {                                        \
            const int8_t *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n, *xp = x;   \
            register int32_t cnt __asm__("lr") = quarter;                              \
            S8_PASS(REM);                                                              \
            w0 = w3;                                                                   \
        }
        switch (nblk & 3) {
        case 0: S8_ROWS(""); break;
        case 1: S8_ROWS(S8_BODY); break;
        case 2: S8_ROWS(S8_BODY S8_BODY); break;
        default: S8_ROWS(S8_BODY S8_BODY S8_BODY); break;
        }
#undef S8_ROWS
#undef S8_BODY
#undef S8_PASS
    }
    for (; o + 4 <= out_n; o += 4) {
        const int8_t *w0 = w + (size_t)o * in_n, *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n;
        const int8_t *xp = x;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (int32_t i = 0; i < n16; i += 16) {
            int8x16_t xv = vldrbq_s8(xp);
            xp += 16;
            a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w0)); w0 += 16;
            a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1)); w1 += 16;
            a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2)); w2 += 16;
            a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3)); w3 += 16;
        }
        if (tail) {
            int8x16_t xv = vldrbq_z_s8(xp, pt);
            a0 = vmladavaq_p_s8(a0, xv, vldrbq_z_s8(w0, pt), pt);
            a1 = vmladavaq_p_s8(a1, xv, vldrbq_z_s8(w1, pt), pt);
            a2 = vmladavaq_p_s8(a2, xv, vldrbq_z_s8(w2, pt), pt);
            a3 = vmladavaq_p_s8(a3, xv, vldrbq_z_s8(w3, pt), pt);
        }
        PUT4(o, 0, a0, a1, a2, a3);
    }
    for (; o < out_n; o++) {
        const int8_t *w0 = w + (size_t)o * in_n;
        int32_t a0 = 0, i = 0;
        for (; i < n16; i += 16) a0 = vmladavaq_s8(a0, vldrbq_s8(x + i), vldrbq_s8(w0 + i));
        if (tail) a0 = vmladavaq_p_s8(a0, vldrbq_z_s8(x + i, pt), vldrbq_z_s8(w0 + i, pt), pt);
        OUT(a0, 0, o);
    }
    requant_layer(p, ctx, bias, acc, y);
}

static void fc_nib(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint8_t *w,
                   const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t W = (in_n + 31) >> 5;
    int8_t *xs = ctx->scratch;
    int32_t sx = 0;
    for (int32_t i = 0; i < W * 32; i += 16) {
        mve_pred16_t pr = vctp8q((uint32_t)(in_n - i > 0 ? in_n - i : 0));
        int8x16_t v = vldrbq_z_s8(x + i, pr); /* zero beyond in_features */
        vstrbq_s8(xs + i, v);
        sx = vaddvaq_s8(sx, v);
    }
    const int32_t corr = -8 * sx;
    const uint8x16_t m15 = vdupq_n_u8(15);
    int32_t o = 0;
    int32_t *acc = acc_buf(ctx, in_n);
    for (; o + 4 <= out_n; o += 4) {
        const int8_t *xp = xs;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (int32_t c = 0; c < W; c++) {
            int8x16_t xl = vldrbq_s8(xp), xh = vldrbq_s8(xp + 16);
            uint8x16_t b;
            xp += 32;
            b = vldrbq_u8(w);
            a0 = vmladavaq_s8(a0, xl, vreinterpretq_s8_u8(vandq_u8(b, m15)));
            a0 = vmladavaq_s8(a0, xh, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
            b = vldrbq_u8(w + 16);
            a1 = vmladavaq_s8(a1, xl, vreinterpretq_s8_u8(vandq_u8(b, m15)));
            a1 = vmladavaq_s8(a1, xh, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
            b = vldrbq_u8(w + 32);
            a2 = vmladavaq_s8(a2, xl, vreinterpretq_s8_u8(vandq_u8(b, m15)));
            a2 = vmladavaq_s8(a2, xh, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
            b = vldrbq_u8(w + 48);
            a3 = vmladavaq_s8(a3, xl, vreinterpretq_s8_u8(vandq_u8(b, m15)));
            a3 = vmladavaq_s8(a3, xh, vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
            w += 64;
        }
        PUT4(o, corr, a0, a1, a2, a3);
    }
    const int32_t G = out_n - o;
    for (int32_t r = 0; r < G; r++) {
        const uint8_t *wr = w + 16 * r;
        int32_t a = 0;
        for (int32_t c = 0; c < W; c++, wr += 16 * G) {
            uint8x16_t b = vldrbq_u8(wr);
            a = vmladavaq_s8(a, vldrbq_s8(xs + 32 * c), vreinterpretq_s8_u8(vandq_u8(b, m15)));
            a = vmladavaq_s8(a, vldrbq_s8(xs + 32 * c + 16), vreinterpretq_s8_u8(vshrq_n_u8(b, 4)));
        }
        OUT(a, corr, o + r);
    }
    requant_layer(p, ctx, bias, acc, y);
}

/* ---------------- layout 6 (rows_per_byte), k = 1, 2, 4 ----------------
 * Byte j of a group holds input j of G = 8/k rows; read as int8 and shifted right arithmetically by
 * k*r it is sum_{q >= r} 2^(k(q-r)) f_q (f_q the row-q field: biased below the top row, two's
 * complement at the top), so S_r = sum x * (b >> k*r) needs one VSHR and one VMLADAVA per row and
 * 16 inputs, no masking: f-sums F_r = S_r - 2^k S_{r+1} (F_top = S_top); row dot = F_r - 2^(k-1) sum x
 * (k = 1: bits, F_r = S_r - 2 S_{r+1}, F_7 = -S_7, dot = 2 F_r - sum x). All mod 2^32, like the sums. */

/* xs = x zero-padded to 16 * nblk bytes; returns sum x */
static int32_t pad_copy(const int8_t *x, int32_t in_n, int32_t nblk, int8_t *xs)
{
    int32_t sx = 0;
    for (int32_t i = 0; i < nblk * 16; i += 16) {
        mve_pred16_t pr = vctp8q((uint32_t)(in_n - i));
        int8x16_t v = vldrbq_z_s8(x + i, pr);
        vstrbq_s8(xs + i, v);
        sx = vaddvaq_s8(sx, v);
    }
    return sx;
}

/* dots of the G rows of one group from their telescoping sums S[0..G-1] */
static inline void rows_dots(int32_t K, const int32_t *S, int32_t sx, int32_t *d)
{
    const int32_t G = 8 / K;
    for (int32_t r = 0; r < G; r++) {
        uint32_t f = r == G - 1 ? (K == 1 ? -(uint32_t)S[r] : (uint32_t)S[r]) : (uint32_t)S[r] - ((uint32_t)S[r + 1] << K);
        d[r] = K == 1 ? (int32_t)(2u * f - (uint32_t)sx) : (int32_t)(f - (r == G - 1 ? 0u : (uint32_t)sx << (K - 1)));
    }
}

/* one group's telescoping sums, any K (tails) */
static void rows_group_sums(int32_t K, const int8_t *xs, const int8_t *wg, int32_t nblk, int32_t *S)
{
    const int32_t G = 8 / K;
    for (int32_t r = 0; r < G; r++) {
        const int8x16_t sh = vdupq_n_s8((int8_t)(-K * r));
        int32_t a = 0;
        for (int32_t c = 0; c < nblk; c++) a = vmladavaq_s8(a, vldrbq_s8(xs + 16 * c), vshlq_s8(vldrbq_s8(wg + 16 * c), sh));
        S[r] = a;
    }
}

#define MLA(a, b) a = vmladavaq_s8(a, xv, b)

static inline __attribute__((always_inline)) void fc_rows(const int32_t K, const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                    const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features;
    const int32_t nblk = (in_n + 15) >> 4, pad = 16 * nblk, G = 8 / K;
    int8_t *xs = ctx->scratch;
    const int32_t sx = pad_copy(x, in_n, nblk, xs);
    int32_t o = 0, d[8], S[8];
    int32_t *acc = acc_buf(ctx, in_n);
    const int8_t *wg = w;
    if (K == 4) {
        /* one assembly block per pass (see fc_s8): sums, then rows 2g = S_a - 16 S_b - 8 sum x, 2g+1 = S_b */
        const uint32_t c8 = (uint32_t)sx << 3;
        int32_t *ap = acc;
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
#define K4_BODY "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[p0]], #16\n\tvldrb.8 q2, [%[p1]], #16\n\t"         \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q3, q1, #4\n\tvmladava.s8 %[a1], q0, q3\n\t"                          \
    "vmladava.s8 %[a2], q0, q2\n\tvshr.s8 q3, q2, #4\n\tvmladava.s8 %[a3], q0, q3\n\t"
#define K4_PASS(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t" ODD \
    "wls lr, lr, 2f\n\t1:\n\t" K4_BODY K4_BODY K4_BODY K4_BODY "le lr, 1b\n\t2:\n\t"                                              \
    "sub %[a0], %[a0], %[a1], lsl #4\n\tsub %[a0], %[a0], %[c]\n\tsub %[a2], %[a2], %[a3], lsl #4\n\t"                \
    "sub %[a2], %[a2], %[c]\n\tstmia %[ap]!, {r0, r2, r4, r6}\n\t"                                                   \
    : [x] "+r"(xp), [p0] "+r"(p0), [p1] "+r"(p1), [ap] "+r"(ap), [n] "+r"(cnt),                                     \
      [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3) : [c] "r"(c8) : "memory", "q0", "q1", "q2", "q3")
        /* four blocks per LE iteration, the nblk % 4 remaining ones first (one loop per case) */
#define K4_ROWS(REM) for (; o + 4 <= out_n; o += 4) {                              \
            const int8_t *xp = xs, *p0 = wg, *p1 = wg + pad;                   \
            register int32_t cnt __asm__("lr") = nblk >> 2;                    \
            K4_PASS(REM);                                                      \
            wg = p1;   /* the next pair of groups starts where this one ends */ \
        }
        switch (nblk & 3) {
        case 0: K4_ROWS(""); break;
        case 1: K4_ROWS(K4_BODY); break;
        case 2: K4_ROWS(K4_BODY K4_BODY); break;
        default: K4_ROWS(K4_BODY K4_BODY K4_BODY); break;
        }
#undef K4_ROWS
#undef K4_BODY
#undef K4_PASS
    } else if (K == 2) {
        /* one assembly block per pass: sums S_0..S_3, then rows r = S_r - 4 S_{r+1} - 2 sum x, row 3 = S_3 */
        const uint32_t c2 = (uint32_t)sx << 1;
        int32_t *ap = acc;
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
#define K2_BODY "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[p0]], #16\n\t"                                   \
    "vmladava.s8 %[a0], q0, q1\n\tvshr.s8 q2, q1, #2\n\tvmladava.s8 %[a1], q0, q2\n\t"                          \
    "vshr.s8 q3, q1, #4\n\tvmladava.s8 %[a2], q0, q3\n\tvshr.s8 q2, q1, #6\n\tvmladava.s8 %[a3], q0, q2\n\t"
#define K2_PASS(ODD) __asm__ volatile("mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t" ODD \
    "wls lr, lr, 2f\n\t1:\n\t" K2_BODY K2_BODY K2_BODY K2_BODY "le lr, 1b\n\t2:\n\t"                                              \
    "sub %[a0], %[a0], %[a1], lsl #2\n\tsub %[a0], %[a0], %[c]\n\tsub %[a1], %[a1], %[a2], lsl #2\n\t"                \
    "sub %[a1], %[a1], %[c]\n\tsub %[a2], %[a2], %[a3], lsl #2\n\tsub %[a2], %[a2], %[c]\n\t"                       \
    "stmia %[ap]!, {r0, r2, r4, r6}\n\t"                                                                         \
    : [x] "+r"(xp), [p0] "+r"(wg), [ap] "+r"(ap), [n] "+r"(cnt),                                                   \
      [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3) : [c] "r"(c2) : "memory", "q0", "q1", "q2", "q3")
#define K2_ROWS(REM) for (; o + 4 <= out_n; o += 4) {                              \
            const int8_t *xp = xs;                                             \
            register int32_t cnt __asm__("lr") = nblk >> 2;                    \
            K2_PASS(REM);                                                      \
        }
        switch (nblk & 3) {
        case 0: K2_ROWS(""); break;
        case 1: K2_ROWS(K2_BODY); break;
        case 2: K2_ROWS(K2_BODY K2_BODY); break;
        default: K2_ROWS(K2_BODY K2_BODY K2_BODY); break;
        }
#undef K2_ROWS
#undef K2_BODY
#undef K2_PASS
    } else {
        /* eight accumulators: VMLADAVA writes even registers only, so they are pinned to r0..r12 and lr,
         * and the loop counts with SUBS/BNE instead of LE (which would need lr); one assembly block per
         * pass ends with the rows dot_r = 2 S_r - 4 S_{r+1} - sum x, dot_7 = -2 S_7 - sum x and one STM */
        int32_t *ap = acc;
        register int32_t a0 __asm__("r0"), a1 __asm__("r2"), a2 __asm__("r4"), a3 __asm__("r6");
        register int32_t a4 __asm__("r8"), a5 __asm__("r10"), a6 __asm__("r12"), a7 __asm__("lr");
#define B1(A, N) "vshr.s8 q2, q1, #" N "\n\tvmladava.s8 %[" A "], q0, q2\n\t"
#define K1_BODY "vldrb.8 q0, [%[x]], #16\n\tvldrb.8 q1, [%[w]], #16\n\tvmladava.s8 %[a0], q0, q1\n\t" \
    B1("a1", "1") B1("a2", "2") B1("a3", "3") B1("a4", "4") B1("a5", "5") B1("a6", "6") B1("a7", "7")
#define DOT1(A, B) "lsl %[" A "], %[" A "], #1\n\tsub %[" A "], %[" A "], %[" B "], lsl #2\n\tsub %[" A "], %[" A "], %[sx]\n\t"
#define K1_PASS(ODD) __asm__ volatile(                                                                               \
    "mov %[a0], #0\n\tmov %[a1], #0\n\tmov %[a2], #0\n\tmov %[a3], #0\n\t"                                         \
    "mov %[a4], #0\n\tmov %[a5], #0\n\tmov %[a6], #0\n\tmov %[a7], #0\n\t" ODD                                    \
    "cmp %[cnt], #0\n\tbeq 2f\n\t1:\n\t" K1_BODY K1_BODY "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t2:\n\t"              \
    DOT1("a0", "a1") DOT1("a1", "a2") DOT1("a2", "a3") DOT1("a3", "a4") DOT1("a4", "a5") DOT1("a5", "a6")            \
    DOT1("a6", "a7") "add %[a7], %[sx], %[a7], lsl #1\n\trsb %[a7], %[a7], #0\n\t"                                   \
    "stmia %[ap]!, {r0, r2, r4, r6, r8, r10, r12, lr}\n\t"                                                          \
    : [x] "+r"(xp), [w] "+r"(wg), [cnt] "+r"(cnt), [ap] "+r"(ap), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2),   \
      [a3] "=&r"(a3), [a4] "=&r"(a4), [a5] "=&r"(a5), [a6] "=&r"(a6), [a7] "=&r"(a7)                                 \
    : [sx] "r"(sx) : "cc", "memory", "q0", "q1", "q2")
        for (; o + 8 <= out_n; o += 8) {   /* two blocks per iteration (all 14 free registers are in use) */
            const int8_t *xp = xs;
            int32_t cnt = nblk >> 1;
            if (nblk & 1) K1_PASS(K1_BODY);
            else K1_PASS("");
        }
#undef B1
#undef K1_BODY
#undef DOT1
#undef K1_PASS
    }
    /* remaining rows (fewer than 4, or 8 for k = 1): whole groups, one at a time */
    for (; o < out_n; o += G, wg += pad) {
        rows_group_sums(K, xs, wg, nblk, S);
        rows_dots(K, S, sx, d);
        for (int32_t r = 0; r < G && o + r < out_n; r++) OUT(d[r], 0, o + r);
    }
    requant_layer(p, ctx, bias, acc, y);
}
#undef MLA

/* layout 9 (rows24), 3-bit weights: fc_rows24 */
#include "kws_fc_rows24_mve.h"

void kws_fully_connected_opt(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, int32_t batches,
                             const int8_t *input, const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * p->in_features;
        int8_t *y = output + (size_t)b * p->out_features;
        if (p->layout == KWS_LAYOUT_ROW_LSB) fc_s8(p, ctx, x, (const int8_t *)weights, bias, y);
        else if (p->layout == KWS_LAYOUT_ROWS24) fc_rows24(p, ctx, x, (const int8_t *)weights, bias, y);
        else if (p->layout == KWS_LAYOUT_ROWS_PER_BYTE) {
            if (p->bits == 4) fc_rows(4, p, ctx, x, (const int8_t *)weights, bias, y);
            else if (p->bits == 2) fc_rows(2, p, ctx, x, (const int8_t *)weights, bias, y);
            else fc_rows(1, p, ctx, x, (const int8_t *)weights, bias, y);
        } else fc_nib(p, ctx, x, weights, bias, y);
    }
}
