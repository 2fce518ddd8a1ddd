/* kws_fully_connected_neon: FULLY_CONNECTED for AArch64 NEON, bit-exact with
 * kws_fully_connected_s8/_sub8. Two builds from this file:
 *   armv8.2-a+dotprod ("neon_dotprod", e.g. Cortex-A76): SDOT, 16 MACs per instruction;
 *   armv8.0-a ("neon", e.g. Cortex-A53, no dot product): SMLAL into int16 lanes, widened to
 *   int32 with SADALP every 4 blocks (16 products of |x*u| <= 1920 fit int16).
 *   k = 8, layout 0 (plain int8): four rows per pass, in_features tail in scalar code.
 *   k = 1..4, layout 3 (r4_nib32): activations copied once per layer into a zero-padded buffer
 *          and summed; per block of 32 weights and row: AND #15 / USHR #4 give the biased nibbles
 *          u = w + 8 of weights j and 16+j; sum x*w = sum x*u - 8 * sum x.
 * Input offset through the prepare-time row sums: sum (x+off)*w = sum x*w + off*sum w. */
#include <string.h>
#include <arm_neon.h>
#include "kws_kernels_opt.h"

#if defined(__ARM_FEATURE_DOTPROD)
const char kws_fc_opt_isa[] = "neon_dotprod";
#else
const char kws_fc_opt_isa[] = "neon";
#endif
const int kws_fc_opt_per_tensor = 0;

/* what this kernel runs and prefers: kws_layout_table.h (from tflm_port/layout_table.py, the
 * converter's --target table). Layout 6 (rows_per_byte): SDOT for 1, 2, 4 bits; on armv8.0 only 1 bit
 * (bit masks: CMTST + AND + SADALP), since the SMLAL path would need small unsigned fields; layout 3
 * for 1..4 bits on both (the A76 keeps 4-bit there: fewer instructions, docs/kernels.md) */
#if defined(__ARM_FEATURE_DOTPROD)
#define KWS_ISA_THIS KWS_ISA_NEON_DOTPROD
#else
#define KWS_ISA_THIS KWS_ISA_NEON
#endif
int kws_fc_opt_supported(int32_t bits, int32_t layout) { return kws_isa_supports(KWS_ISA_THIS, bits, layout); }

int32_t kws_fc_opt_preferred_layout(int32_t bits) { return kws_isa_preferred(KWS_ISA_THIS, bits); }

/* armv8.0, layout 2 at 1 bit (fc_bits_tbl): words of subset-sum tables built per chunk */
#define TB1_CHUNK 16

size_t kws_fc_opt_scratch_bytes(const kws_fc_params *p)
{
#if !defined(__ARM_FEATURE_DOTPROD)
    if (p->layout == KWS_LAYOUT_R4_WORDS && p->bits == 1)   /* fc_bits_tbl: tables, running sums, padded x */
        return 256u * TB1_CHUNK + 16u * (size_t)(p->out_features >> 2) + 32u * (((size_t)p->in_features + 31u) >> 5) + 16u;
#endif
    return (((size_t)p->in_features + 31u) & ~(size_t)31u) + 16u;
}

static inline int32_t finish(int32_t acc, int32_t corr, const int32_t *bias, const kws_fc_opt_ctx *ctx, int32_t off, int32_t o)
{
    uint32_t a = (uint32_t)acc + (uint32_t)corr + (uint32_t)off * (uint32_t)ctx->row_sums[o];
    if (bias) a += (uint32_t)bias[o];
    return (int32_t)a;
}

#define OUT(a, corr, o) y[o] = kws_fc_opt_requant(finish(a, corr, bias, ctx, off, o), p->multiplier[o], p->shift[o], &p->act)

/* four outputs o..o+3 at once from their int32 sums v (lane r = row o+r), bit-exact with
 * kws_fc_opt_requant: input offset x row sums, bias and corr added with wrap-around; the left
 * shift is SSHL (wraps like the reference's uint32 shift); SQRDMULH is exactly
 * SaturatingRoundingDoublingHighMul (floor((a*m + 2^30) / 2^31), multipliers >= 0); the rounding
 * divide by 2^s (half away from zero) is SRSHL by -s after subtracting 1 from negative values
 * (saturating, so INT32_MIN stays put); then the output offset, the activation clamp, narrowing. */
typedef struct {                /* a layer's requantization operands, loaded once per layer */
    const int32_t *row_sums, *bias, *shift, *mult;
    int32_t in_off;
    int32x4_t out_off, lo, hi;
} rq_t;

static inline rq_t rq_make(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int32_t *bias)
{
    rq_t q = {ctx->row_sums, bias, p->shift, p->multiplier, p->act.input_offset, vdupq_n_s32(p->act.output_offset),
              vdupq_n_s32(p->act.act_min), vdupq_n_s32(p->act.act_max)};
    return q;
}

static inline int32x4_t rq_core(const rq_t *q, int32_t o, int32x4_t v)
{
    const int32x4_t zero = vdupq_n_s32(0);
    v = vmlaq_n_s32(v, vld1q_s32(q->row_sums + o), q->in_off);
    if (q->bias) v = vaddq_s32(v, vld1q_s32(q->bias + o));
    const int32x4_t sh = vld1q_s32(q->shift + o);
    const int32x4_t right = vminq_s32(sh, zero);
    v = vshlq_s32(v, vmaxq_s32(sh, zero));
    v = vqrdmulhq_s32(v, vld1q_s32(q->mult + o));
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, right), 31));
    v = vrshlq_s32(v, right);
    v = vaddq_s32(v, q->out_off);
    return vminq_s32(vmaxq_s32(v, q->lo), q->hi);
}

/* outputs o..o+3 */
static inline void requant4q(const rq_t *q, int32_t o, int32x4_t v, int8_t *y)
{
    const int16x4_t h = vmovn_s32(rq_core(q, o, v));
    const uint32_t b4 = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(h, h))), 0);
    memcpy(y + o, &b4, 4);
}

/* outputs o..o+7 */
static inline void requant8q(const rq_t *q, int32_t o, int32x4_t va, int32x4_t vb, int8_t *y)
{
    const int16x8_t h = vcombine_s16(vmovn_s32(rq_core(q, o, va)), vmovn_s32(rq_core(q, o + 4, vb)));
    vst1_s8(y + o, vmovn_s16(h));
}

static inline void requant4(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int32_t *bias, int32_t o,
                            int32_t corr, int32x4_t v, int8_t *y)
{
    const rq_t q = rq_make(p, ctx, bias);
    requant4q(&q, o, vaddq_s32(v, vdupq_n_s32(corr)), y);
}

/* four row sums from four int32x4 accumulators */
static inline int32x4_t hsum4(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3)
{
    return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
}

#if defined(__ARM_FEATURE_DOTPROD)
#define DOT(acc, x, w) acc = vdotq_s32(acc, x, w)
#else
/* 16 int8 x int8 products summed pairwise into int32 lanes */
#define DOT(acc, x, w) acc = vpadalq_s16(vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(w))), vmull_high_s8(x, w))
#endif

/* 64 inputs x 4 rows per step: LD1 of four registers (64 bytes, post-increment) for the activations
 * and for each row; dotprod: 16 SDOT; armv8.0: per 16 products SMULL + SMULL2 + two SADALP.
 * Pointers come back advanced by 64 * cnt. */
#if defined(__ARM_FEATURE_DOTPROD)
#define ROW64(W, A) "ld1 {v4.16b-v7.16b}, [%[" W "]], #64\n\t"                                            \
    "sdot %[" A "].4s, v0.16b, v4.16b\n\tsdot %[" A "].4s, v1.16b, v5.16b\n\t"                            \
    "sdot %[" A "].4s, v2.16b, v6.16b\n\tsdot %[" A "].4s, v3.16b, v7.16b\n\t"
#else
#define MUL16(A, X, Wr) "smull v16.8h, " X ".8b, " Wr ".8b\n\tsmull2 v17.8h, " X ".16b, " Wr ".16b\n\t"      \
    "sadalp %[" A "].4s, v16.8h\n\tsadalp %[" A "].4s, v17.8h\n\t"
#define ROW64(W, A) "ld1 {v4.16b-v7.16b}, [%[" W "]], #64\n\t" MUL16(A, "v0", "v4") MUL16(A, "v1", "v5")     \
    MUL16(A, "v2", "v6") MUL16(A, "v3", "v7")
#endif
static inline void dot4_s8_64(int64_t cnt, const int8_t **px, const int8_t **pw0, const int8_t **pw1,
                              const int8_t **pw2, const int8_t **pw3, int32x4_t *a)
{
    const int8_t *xp = *px, *w0 = *pw0, *w1 = *pw1, *w2 = *pw2, *w3 = *pw3;
    int32x4_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    __asm__ volatile("1:\n\t"
                     "ld1 {v0.16b-v3.16b}, [%[x]], #64\n\t"
                     ROW64("w0", "a0") ROW64("w1", "a1") ROW64("w2", "a2") ROW64("w3", "a3")
                     "subs %[cnt], %[cnt], #1\n\t"
                     "b.ne 1b\n\t"
                     : [x] "+r"(xp), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [cnt] "+r"(cnt),
                       [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3)
                     :
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17");
    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
    *px = xp; *pw0 = w0; *pw1 = w1; *pw2 = w2; *pw3 = w3;
}
#undef ROW64
#undef MUL16

static void fc_s8(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                  const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t n16 = in_n & ~15, n64 = in_n & ~63;
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const int8_t *w0 = w + (size_t)o * in_n, *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        int32_t i = 0;
        if (n64) {
            int32x4_t a[4] = {a0, a0, a0, a0};
            const int8_t *xp = x;
            dot4_s8_64(n64 >> 6, &xp, &w0, &w1, &w2, &w3, a);
            a0 = a[0]; a1 = a[1]; a2 = a[2]; a3 = a[3];
            w0 -= n64; w1 -= n64; w2 -= n64; w3 -= n64;  /* the loops below index from the row start */
            i = n64;
        }
        for (; i < n16; i += 16) {
            int8x16_t xv = vld1q_s8(x + i);
            DOT(a0, xv, vld1q_s8(w0 + i));
            DOT(a1, xv, vld1q_s8(w1 + i));
            DOT(a2, xv, vld1q_s8(w2 + i));
            DOT(a3, xv, vld1q_s8(w3 + i));
        }
        int32x4_t v = hsum4(a0, a1, a2, a3);
        if (i < in_n) {
            int32_t s[4] = {0, 0, 0, 0};
            for (; i < in_n; i++) {
                int32_t xi = x[i];
                s[0] += xi * w0[i]; s[1] += xi * w1[i]; s[2] += xi * w2[i]; s[3] += xi * w3[i];
            }
            v = vaddq_s32(v, vld1q_s32(s));
        }
        requant4(p, ctx, bias, o, 0, v, y);
    }
    for (; o < out_n; o++) {
        const int8_t *w0 = w + (size_t)o * in_n;
        int32x4_t a0 = vdupq_n_s32(0);
        int32_t i = 0;
        for (; i < n16; i += 16) DOT(a0, vld1q_s8(x + i), vld1q_s8(w0 + i));
        int32_t s = vaddvq_s32(a0);
        for (; i < in_n; i++) s += (int32_t)x[i] * w0[i];
        OUT(s, 0, o);
    }
}

/* Layout 3 in assembly, per step: dotprod 2 blocks (64 inputs x 4 rows): per block and row AND + USHR
 * + 2 SDOT; armv8.0 4 blocks: per block and row AND + USHR + 4 SMLAL(2) into int16 lanes (16 products
 * of |x*u| <= 1920 per lane and step), then SADALP into the int32 accumulators. */
#define NIB_LD_X "ld1 {v0.16b-v3.16b}, [%[x]], #64\n\t"
#define NIB_LD_W "ld1 {v4.16b-v7.16b}, [%[w]], #64\n\t"
#if defined(__ARM_FEATURE_DOTPROD)
#define NIB_STEP 2
#define NB(A, B, XL, XH) "and v16.16b, " B ".16b, %[m].16b\n\tushr v17.16b, " B ".16b, #4\n\t"               \
    "sdot %[" A "].4s, " XL ".16b, v16.16b\n\tsdot %[" A "].4s, " XH ".16b, v17.16b\n\t"
#define NB4(XL, XH) NB("a0", "v4", XL, XH) NB("a1", "v5", XL, XH) NB("a2", "v6", XL, XH) NB("a3", "v7", XL, XH)
#define NIB_BODY NIB_LD_X NIB_LD_W NB4("v0", "v1") NIB_LD_W NB4("v2", "v3")
#else
#define NIB_STEP 4
#define NB(H, B, XL, XH) "and v16.16b, " B ".16b, %[m].16b\n\tushr v17.16b, " B ".16b, #4\n\t"               \
    "smlal " H ".8h, " XL ".8b, v16.8b\n\tsmlal2 " H ".8h, " XL ".16b, v16.16b\n\t"                       \
    "smlal " H ".8h, " XH ".8b, v17.8b\n\tsmlal2 " H ".8h, " XH ".16b, v17.16b\n\t"
#define NB4(XL, XH) NB("v18", "v4", XL, XH) NB("v19", "v5", XL, XH) NB("v20", "v6", XL, XH) NB("v21", "v7", XL, XH)
#define NIB_BODY "movi v18.8h, #0\n\tmovi v19.8h, #0\n\tmovi v20.8h, #0\n\tmovi v21.8h, #0\n\t"            \
    NIB_LD_X NIB_LD_W NB4("v0", "v1") NIB_LD_W NB4("v2", "v3") NIB_LD_X NIB_LD_W NB4("v0", "v1") NIB_LD_W NB4("v2", "v3") \
    "sadalp %[a0].4s, v18.8h\n\tsadalp %[a1].4s, v19.8h\n\tsadalp %[a2].4s, v20.8h\n\tsadalp %[a3].4s, v21.8h\n\t"
#endif

static void fc_nib(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint8_t *w,
                   const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t W = (in_n + 31) >> 5;
    int8_t *xs = ctx->scratch;
    int32_t i = 0;
    int32x4_t sacc = vdupq_n_s32(0);
    for (; i + 16 <= in_n; i += 16) {
        int8x16_t v = vld1q_s8(x + i);
        vst1q_s8(xs + i, v);
        sacc = vpadalq_s16(sacc, vpaddlq_s8(v));
    }
    int32_t sx = vaddvq_s32(sacc);
    for (; i < in_n; i++) { xs[i] = x[i]; sx += x[i]; }
    for (; i < W * 32; i++) xs[i] = 0;
    const int32_t corr = -8 * sx;
    const uint8x16_t m15 = vdupq_n_u8(15);
#define LO(b) vreinterpretq_s8_u8(vandq_u8(b, m15))
#define HI(b) vreinterpretq_s8_u8(vshrq_n_u8(b, 4))
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const int8_t *xp = xs;
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        int32_t c = 0;
        if (W >= NIB_STEP) {   /* whole steps in assembly: LD1 of four registers, post-increment */
            int64_t cnt = W / NIB_STEP;
            c = (int32_t)cnt * NIB_STEP;
            __asm__ volatile("1:\n\t" NIB_BODY "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                             : [x] "+r"(xp), [w] "+r"(w), [cnt] "+r"(cnt),
                               [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3)
                             : [m] "w"(m15)
                             : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17",
                               "v18", "v19", "v20", "v21");
        }
#if defined(__ARM_FEATURE_DOTPROD)
        for (; c < W; c++, xp += 32, w += 64) {
            int8x16_t xl = vld1q_s8(xp), xh = vld1q_s8(xp + 16);
            uint8x16x4_t b = vld1q_u8_x4(w);
            a0 = vdotq_s32(a0, xl, LO(b.val[0])); a0 = vdotq_s32(a0, xh, HI(b.val[0]));
            a1 = vdotq_s32(a1, xl, LO(b.val[1])); a1 = vdotq_s32(a1, xh, HI(b.val[1]));
            a2 = vdotq_s32(a2, xl, LO(b.val[2])); a2 = vdotq_s32(a2, xh, HI(b.val[2]));
            a3 = vdotq_s32(a3, xl, LO(b.val[3])); a3 = vdotq_s32(a3, xh, HI(b.val[3]));
        }
#else
        for (int32_t c0 = c; c0 < W; c0 += 4) {
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;
            const int32_t c1 = c0 + 4 < W ? c0 + 4 : W;
            for (int32_t cc = c0; cc < c1; cc++, xp += 32, w += 64) {
                int8x16_t xl = vld1q_s8(xp), xh = vld1q_s8(xp + 16);
                uint8x16x4_t b = vld1q_u8_x4(w);
#define MAC16(h, bb)                                                                     \
    h = vmlal_s8(h, vget_low_s8(xl), vget_low_s8(LO(bb))); h = vmlal_high_s8(h, xl, LO(bb)); \
    h = vmlal_s8(h, vget_low_s8(xh), vget_low_s8(HI(bb))); h = vmlal_high_s8(h, xh, HI(bb))
                MAC16(h0, b.val[0]); MAC16(h1, b.val[1]); MAC16(h2, b.val[2]); MAC16(h3, b.val[3]);
            }
            a0 = vpadalq_s16(a0, h0); a1 = vpadalq_s16(a1, h1); a2 = vpadalq_s16(a2, h2); a3 = vpadalq_s16(a3, h3);
        }
#endif
        requant4(p, ctx, bias, o, corr, hsum4(a0, a1, a2, a3), y);
    }
    const int32_t G = out_n - o;
    for (int32_t r = 0; r < G; r++) {
        const uint8_t *wr = w + 16 * r;
        int32x4_t a = vdupq_n_s32(0);
        for (int32_t c = 0; c < W; c++, wr += 16 * G) {
            uint8x16_t b = vld1q_u8(wr);
            DOT(a, vld1q_s8(xs + 32 * c), LO(b));
            DOT(a, vld1q_s8(xs + 32 * c + 16), HI(b));
        }
        OUT(vaddvq_s32(a), corr, o + r);
    }
}

#if defined(__ARM_FEATURE_DOTPROD)
/* ---------------- layout 6 (rows_per_byte), k = 1, 2, 4, SDOT ----------------
 * Byte j of a group holds input j of G = 8/k rows; read as int8 and shifted right arithmetically by
 * k*r it is sum_{q >= r} 2^(k(q-r)) f_q, so S_r = sum x * (b >> k*r) costs one SSHR and one SDOT per
 * row and 16 inputs, no masking; F_r = S_r - 2^k S_{r+1} (F_top = S_top), row dot = F_r - 2^(k-1) sum x
 * (k = 1: F_r = S_r - 2 S_{r+1}, F_7 = -S_7, dot = 2 F_r - sum x). See docs/formats.md layout 6. */

static inline void rows_dots(int32_t K, const int32_t *S, int32_t sx, int32_t *d)
{
    const int32_t G = 8 / K;
    for (int32_t r = 0; r < G; r++) {
        uint32_t f = r == G - 1 ? (K == 1 ? -(uint32_t)S[r] : (uint32_t)S[r]) : (uint32_t)S[r] - ((uint32_t)S[r + 1] << K);
        d[r] = K == 1 ? (int32_t)(2u * f - (uint32_t)sx) : (int32_t)(f - (r == G - 1 ? 0u : (uint32_t)sx << (K - 1)));
    }
}

static void rows_group_sums(int32_t K, const int8_t *xs, const int8_t *wg, int32_t nblk, int32_t *S)
{
    const int32_t G = 8 / K;
    for (int32_t r = 0; r < G; r++) {
        const int8x16_t sh = vdupq_n_s8((int8_t)(-K * r));
        int32x4_t a = vdupq_n_s32(0);
        for (int32_t c = 0; c < nblk; c++) a = vdotq_s32(a, vld1q_s8(xs + 16 * c), vshlq_s8(vld1q_s8(wg + 16 * c), sh));
        S[r] = vaddvq_s32(a);
    }
}

/* Eight rows per pass (issue 14): the telescoped sums of rows o..o+7 over the 64-input steps in assembly,
 * LD1 of four registers for the activations and for each byte stream, per 16 inputs and 8 rows:
 *   K = 4: four streams (row pairs), each SDOT + SSHR #4 + SDOT;
 *   K = 2: two streams (row quads), each SDOT + 3 x (SSHR + SDOT);
 *   K = 1: one stream (8 rows), SDOT + 7 x (SSHR + SDOT);
 * the blocks left over (in_features % 64) in intrinsics. The row dots come out as two int32x4 (rows
 * o..o+3, o+4..o+7) with the telescoping undone in vector registers (wrapping, as rows_dots):
 *   K = 4: d = S - 16 * (S of the pair's upper row, lanes 0/2) - 8 sum x (lanes 0/2);
 *   K = 2: d = S - 4 * (S of the next row; lane 3: 0) - 2 sum x (lanes 0..2);
 *   K = 1: d = 2 S - 4 * (S of the next row) - sum x, the top row 2 * (-S_7) - sum x. */
#define SDA(A, X, B) "sdot %[" A "].4s, " X ".16b, " B ".16b\n\t"
#define SSH(T, B, N) "sshr " T ".16b, " B ".16b, #" N "\n\t"
#define Q4(X, B, A, C) SDA(A, X, B) SSH("v16", B, "4") SDA(C, X, "v16")
#define Q4S(A, C) Q4("v0", "v4", A, C) Q4("v1", "v5", A, C) Q4("v2", "v6", A, C) Q4("v3", "v7", A, C)
#define Q2(X, B, A0, A1, A2, A3) SDA(A0, X, B) SSH("v16", B, "2") SDA(A1, X, "v16") SSH("v17", B, "4")         \
    SDA(A2, X, "v17") SSH("v16", B, "6") SDA(A3, X, "v16")
#define Q2S(A0, A1, A2, A3) Q2("v0", "v4", A0, A1, A2, A3) Q2("v1", "v5", A0, A1, A2, A3)                     \
    Q2("v2", "v6", A0, A1, A2, A3) Q2("v3", "v7", A0, A1, A2, A3)
#define Q1(X, B) SDA("a0", X, B) SSH("v16", B, "1") SDA("a1", X, "v16") SSH("v17", B, "2") SDA("a2", X, "v17")  \
    SSH("v16", B, "3") SDA("a3", X, "v16") SSH("v17", B, "4") SDA("a4", X, "v17") SSH("v16", B, "5")          \
    SDA("a5", X, "v16") SSH("v17", B, "6") SDA("a6", X, "v17") SSH("v16", B, "7") SDA("a7", X, "v16")
#define LDX "ld1 {v0.16b-v3.16b}, [%[x]], #64\n\t"
#define LDW(P) "ld1 {v4.16b-v7.16b}, [%[" P "]], #64\n\t"
#define LOOP_END "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
#define ACC8 [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3), [a4] "+w"(a4), [a5] "+w"(a5),    \
    [a6] "+w"(a6), [a7] "+w"(a7)
#define CLOB8 "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17"

static inline __attribute__((always_inline)) void rows8(const int32_t K, const int32_t nblk, const int8_t *xp,
                                                         const int8_t *wg, const int32_t pad, const int32x4_t cor,
                                                         int32x4_t *da, int32x4_t *db)
{
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    const int8_t *w0 = wg, *w1 = wg + (K == 1 ? 0 : pad), *w2 = wg + (K == 4 ? 2 * pad : 0), *w3 = wg + (K == 4 ? 3 * pad : 0);
    int64_t cnt = nblk >> 2;
    if (cnt) {
        if (K == 4)
            __asm__ volatile("1:\n\t" LDX LDW("w0") Q4S("a0", "a1") LDW("w1") Q4S("a2", "a3") LDW("w2") Q4S("a4", "a5")
                             LDW("w3") Q4S("a6", "a7") LOOP_END
                             : [x] "+r"(xp), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [cnt] "+r"(cnt), ACC8
                             : : CLOB8);
        else if (K == 2)
            __asm__ volatile("1:\n\t" LDX LDW("w0") Q2S("a0", "a1", "a2", "a3") LDW("w1") Q2S("a4", "a5", "a6", "a7") LOOP_END
                             : [x] "+r"(xp), [w0] "+r"(w0), [w1] "+r"(w1), [cnt] "+r"(cnt), ACC8
                             : : CLOB8);
        else
            __asm__ volatile("1:\n\t" LDX LDW("w0") Q1("v0", "v4") Q1("v1", "v5") Q1("v2", "v6") Q1("v3", "v7") LOOP_END
                             : [x] "+r"(xp), [w0] "+r"(w0), [cnt] "+r"(cnt), ACC8
                             : : CLOB8);
    }
#define SD(a, b) a = vdotq_s32(a, xv, b)
    for (int32_t c = nblk & ~3; c < nblk; c++, xp += 16, w0 += 16, w1 += 16, w2 += 16, w3 += 16) {
        const int8x16_t xv = vld1q_s8(xp), b0 = vld1q_s8(w0);
        if (K == 4) {
            const int8x16_t b1 = vld1q_s8(w1), b2 = vld1q_s8(w2), b3 = vld1q_s8(w3);
            SD(a0, b0); SD(a1, vshrq_n_s8(b0, 4)); SD(a2, b1); SD(a3, vshrq_n_s8(b1, 4));
            SD(a4, b2); SD(a5, vshrq_n_s8(b2, 4)); SD(a6, b3); SD(a7, vshrq_n_s8(b3, 4));
        } else if (K == 2) {
            const int8x16_t b1 = vld1q_s8(w1);
            SD(a0, b0); SD(a1, vshrq_n_s8(b0, 2)); SD(a2, vshrq_n_s8(b0, 4)); SD(a3, vshrq_n_s8(b0, 6));
            SD(a4, b1); SD(a5, vshrq_n_s8(b1, 2)); SD(a6, vshrq_n_s8(b1, 4)); SD(a7, vshrq_n_s8(b1, 6));
        } else {
            SD(a0, b0); SD(a1, vshrq_n_s8(b0, 1)); SD(a2, vshrq_n_s8(b0, 2)); SD(a3, vshrq_n_s8(b0, 3));
            SD(a4, vshrq_n_s8(b0, 4)); SD(a5, vshrq_n_s8(b0, 5)); SD(a6, vshrq_n_s8(b0, 6)); SD(a7, vshrq_n_s8(b0, 7));
        }
    }
#undef SD
    const int32x4_t sa = hsum4(a0, a1, a2, a3), sb = hsum4(a4, a5, a6, a7), zero = vdupq_n_s32(0);
    if (K == 4) {
        const int32x4_t k16 = {16, 0, 16, 0};
        *da = vsubq_s32(vmlsq_s32(sa, vrev64q_s32(sa), k16), cor);
        *db = vsubq_s32(vmlsq_s32(sb, vrev64q_s32(sb), k16), cor);
    } else if (K == 2) {
        *da = vsubq_s32(vmlsq_n_s32(sa, vextq_s32(sa, zero, 1), 4), cor);
        *db = vsubq_s32(vmlsq_n_s32(sb, vextq_s32(sb, zero, 1), 4), cor);
    } else {
        const int32x4_t sg = {2, 2, 2, -2};
        *da = vsubq_s32(vmlsq_n_s32(vshlq_n_s32(sa, 1), vextq_s32(sa, sb, 1), 4), cor);
        *db = vsubq_s32(vmlsq_n_s32(vmulq_s32(sb, sg), vextq_s32(sb, zero, 1), 4), cor);
    }
}
#undef SDA
#undef SSH
#undef Q4
#undef Q4S
#undef Q2
#undef Q2S
#undef Q1
#undef LDX
#undef LDW
#undef LOOP_END
#undef ACC8
#undef CLOB8

static inline __attribute__((always_inline)) void fc_rows(const int32_t K, const kws_fc_params *p, const kws_fc_opt_ctx *ctx,
                                                          const int8_t *x, const int8_t *w, const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t nblk = (in_n + 15) >> 4, pad = 16 * nblk, G = 8 / K;
    /* sum x by SDOT with ones; the activations are read in place when in_features % 16 == 0, else
     * copied once into the zero-padded scratch */
    const int8_t *xs = x;
    const int8x16_t ones = vdupq_n_s8(1);
    int32_t i = 0;
    int32x4_t sacc = vdupq_n_s32(0);
    if (in_n & 15) {
        int8_t *xc = ctx->scratch;
        for (; i + 16 <= in_n; i += 16) {
            int8x16_t v = vld1q_s8(x + i);
            vst1q_s8(xc + i, v);
            sacc = vdotq_s32(sacc, v, ones);
        }
        for (int32_t j = i; j < pad; j++) xc[j] = j < in_n ? x[j] : 0;
        sacc = vdotq_s32(sacc, vld1q_s8(xc + i), ones);
        xs = xc;
    } else {
        for (; i < in_n; i += 16) sacc = vdotq_s32(sacc, vld1q_s8(x + i), ones);
    }
    const int32_t sx = vaddvq_s32(sacc);
    int32_t o = 0, d[8], S[8];
    const int8_t *wg = w;
    {
        const uint32_t u = (uint32_t)sx;
        const int32x4_t cor = K == 4 ? (int32x4_t){(int32_t)(8u * u), 0, (int32_t)(8u * u), 0}
                            : K == 2 ? (int32x4_t){(int32_t)(2u * u), (int32_t)(2u * u), (int32_t)(2u * u), 0}
                                     : vdupq_n_s32(sx);
        const rq_t q = rq_make(p, ctx, bias);
        for (; o + 8 <= out_n; o += 8, wg += (8 / G) * pad) {
            int32x4_t da, db;
            rows8(K, nblk, xs, wg, pad, cor, &da, &db);
            requant8q(&q, o, da, db, y);
        }
        if (K == 1 && o < out_n) {   /* the last group is whole in memory (8 rows per byte): same pass */
            int32x4_t da, db;
            rows8(K, nblk, xs, wg, pad, cor, &da, &db);
            vst1q_s32(d, da);
            vst1q_s32(d + 4, db);
            for (int32_t r = 0; o + r < out_n; r++) OUT(d[r], 0, o + r);
            o = out_n;
        }
    }
#define SD(a, b) a = vdotq_s32(a, xv, b)
    if (K == 4) {
        for (; o + 4 <= out_n; o += 4, wg += 2 * pad) {
            const int8_t *xp = xs, *p0 = wg, *p1 = wg + pad;
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            for (int32_t c = 0; c < nblk; c++, xp += 16, p0 += 16, p1 += 16) {
                int8x16_t xv = vld1q_s8(xp), b0 = vld1q_s8(p0), b1 = vld1q_s8(p1);
                SD(a0, b0); SD(a1, vshrq_n_s8(b0, 4)); SD(a2, b1); SD(a3, vshrq_n_s8(b1, 4));
            }
            vst1q_s32(S, hsum4(a0, a1, a2, a3));
            rows_dots(4, S, sx, d);
            rows_dots(4, S + 2, sx, d + 2);
            requant4(p, ctx, bias, o, 0, vld1q_s32(d), y);
        }
    } else if (K == 2) {
        for (; o + 4 <= out_n; o += 4, wg += pad) {
            const int8_t *xp = xs, *p0 = wg;
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            int32_t c = 0;
            if (nblk >= 4) {   /* 64 inputs per step: LD1 of four registers, 3 SSHR + 4 SDOT per 16 inputs */
                int64_t cnt = nblk >> 2;
                c = (int32_t)cnt << 2;
#define R2(X, B) "sdot %[a0].4s, " X ".16b, " B ".16b\n\tsshr v16.16b, " B ".16b, #2\n\tsdot %[a1].4s, " X ".16b, v16.16b\n\t" \
    "sshr v17.16b, " B ".16b, #4\n\tsdot %[a2].4s, " X ".16b, v17.16b\n\tsshr v16.16b, " B ".16b, #6\n\t"               \
    "sdot %[a3].4s, " X ".16b, v16.16b\n\t"
                __asm__ volatile("1:\n\tld1 {v0.16b-v3.16b}, [%[x]], #64\n\tld1 {v4.16b-v7.16b}, [%[w]], #64\n\t"
                                 R2("v0", "v4") R2("v1", "v5") R2("v2", "v6") R2("v3", "v7")
                                 "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                                 : [x] "+r"(xp), [w] "+r"(p0), [cnt] "+r"(cnt),
                                   [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3)
                                 :
                                 : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17");
#undef R2
            }
            for (; c < nblk; c++, xp += 16, p0 += 16) {
                int8x16_t xv = vld1q_s8(xp), b = vld1q_s8(p0);
                SD(a0, b); SD(a1, vshrq_n_s8(b, 2)); SD(a2, vshrq_n_s8(b, 4)); SD(a3, vshrq_n_s8(b, 6));
            }
            vst1q_s32(S, hsum4(a0, a1, a2, a3));
            rows_dots(2, S, sx, d);
            requant4(p, ctx, bias, o, 0, vld1q_s32(d), y);
        }
    }
#undef SD
    for (; o < out_n; o += G, wg += pad) {
        rows_group_sums(K, xs, wg, nblk, S);
        rows_dots(K, S, sx, d);
        for (int32_t r = 0; r < G && o + r < out_n; r++) OUT(d[r], 0, o + r);
    }
}
#endif

#if !defined(__ARM_FEATURE_DOTPROD)
/* ---------------- layout 6, k = 1, armv8.0 (no dot product): bit masks ----------------
 * Byte j holds input j of 8 rows (bit r = row r, 1 = +1). Per 16 inputs and row: CMTST with the row's
 * bit gives a byte mask, AND keeps the activations whose weight is +1, SADALP adds byte pairs into int16
 * lanes (at most 2 * 128 per lane and block: flushed into int32 every 64 blocks). T_r = sum of the kept
 * activations, dot_r = 2 T_r - sum x. */
static void fc_bits_v80(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                        const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t nblk = (in_n + 15) >> 4, pad = 16 * nblk;
    int8_t *xs = ctx->scratch;
    int32_t i = 0;
    int32x4_t sacc = vdupq_n_s32(0);
    for (; i + 16 <= in_n; i += 16) {
        int8x16_t v = vld1q_s8(x + i);
        vst1q_s8(xs + i, v);
        sacc = vpadalq_s16(sacc, vpaddlq_s8(v));
    }
    int32_t sx = vaddvq_s32(sacc);
    for (; i < in_n; i++) { xs[i] = x[i]; sx += x[i]; }
    for (; i < pad; i++) xs[i] = 0;
    const uint8x16_t m0 = vdupq_n_u8(1), m1 = vdupq_n_u8(2), m2 = vdupq_n_u8(4), m3 = vdupq_n_u8(8);
    const uint8x16_t m4 = vdupq_n_u8(16), m5 = vdupq_n_u8(32), m6 = vdupq_n_u8(64), m7 = vdupq_n_u8(128);
    const int32x4_t nsx = vdupq_n_s32(-sx);
    const int8_t *wg = w;
    int32_t o = 0;
#define KEEP(h, m) h = vpadalq_s8(h, vandq_s8(xv, vreinterpretq_s8_u8(vtstq_u8(b, m))))
    for (; o < out_n; o += 8, wg += pad) {
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
        for (int32_t c0 = 0; c0 < nblk; c0 += 64) {
            const int32_t c1 = c0 + 64 < nblk ? c0 + 64 : nblk;
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0, h4 = h0, h5 = h0, h6 = h0, h7 = h0;
            const int8_t *xp = xs + 16 * c0, *bp = wg + 16 * c0;
            int64_t cnt = (c1 - c0) >> 2;
            int32_t c = c0 + 4 * (int32_t)cnt;
            if (cnt) {   /* four blocks per step: LD1 of four registers, then CMTST + AND + SADALP per row */
#define KB(X, B, H, M) "cmtst v16.16b, " B ".16b, %[" M "].16b\n\tand v16.16b, v16.16b, " X ".16b\n\t"      \
    "sadalp %[" H "].8h, v16.16b\n\t"
#define BLK(X, B) KB(X, B, "h0", "m0") KB(X, B, "h1", "m1") KB(X, B, "h2", "m2") KB(X, B, "h3", "m3")       \
    KB(X, B, "h4", "m4") KB(X, B, "h5", "m5") KB(X, B, "h6", "m6") KB(X, B, "h7", "m7")
                __asm__ volatile("1:\n\tld1 {v0.16b-v3.16b}, [%[x]], #64\n\tld1 {v4.16b-v7.16b}, [%[w]], #64\n\t"
                                 BLK("v0", "v4") BLK("v1", "v5") BLK("v2", "v6") BLK("v3", "v7")
                                 "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                                 : [x] "+r"(xp), [w] "+r"(bp), [cnt] "+r"(cnt), [h0] "+w"(h0), [h1] "+w"(h1),
                                   [h2] "+w"(h2), [h3] "+w"(h3), [h4] "+w"(h4), [h5] "+w"(h5), [h6] "+w"(h6),
                                   [h7] "+w"(h7)
                                 : [m0] "w"(m0), [m1] "w"(m1), [m2] "w"(m2), [m3] "w"(m3), [m4] "w"(m4),
                                   [m5] "w"(m5), [m6] "w"(m6), [m7] "w"(m7)
                                 : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16");
#undef BLK
#undef KB
            }
            for (; c < c1; c++) {
                const int8x16_t xv = vld1q_s8(xs + 16 * c);
                const uint8x16_t b = vld1q_u8((const uint8_t *)wg + 16 * c);
                KEEP(h0, m0); KEEP(h1, m1); KEEP(h2, m2); KEEP(h3, m3);
                KEEP(h4, m4); KEEP(h5, m5); KEEP(h6, m6); KEEP(h7, m7);
            }
            s0 = vpadalq_s16(s0, h0); s1 = vpadalq_s16(s1, h1); s2 = vpadalq_s16(s2, h2); s3 = vpadalq_s16(s3, h3);
            s4 = vpadalq_s16(s4, h4); s5 = vpadalq_s16(s5, h5); s6 = vpadalq_s16(s6, h6); s7 = vpadalq_s16(s7, h7);
        }
        /* dot = 2 T - sum x, four rows at a time */
        const int32x4_t d0 = vaddq_s32(vshlq_n_s32(hsum4(s0, s1, s2, s3), 1), nsx);
        const int32x4_t d1 = vaddq_s32(vshlq_n_s32(hsum4(s4, s5, s6, s7), 1), nsx);
        if (o + 8 <= out_n) {
            requant4(p, ctx, bias, o, 0, d0, y);
            requant4(p, ctx, bias, o + 4, 0, d1, y);
        } else {   /* last group: out % 8 rows */
            int32_t d[8];
            vst1q_s32(d, d0);
            vst1q_s32(d + 4, d1);
            for (int32_t r = 0; r < 8 && o + r < out_n; r++) OUT(d[r], 0, o + r);
        }
    }
#undef KEEP
}
#endif

#if !defined(__ARM_FEATURE_DOTPROD)
/* ---------------- layout 6, k = 2, armv8.0 (no dot product): telescoping sums in int16 lanes ----------------
 * Byte j of a group holds input j of 4 rows: b = u0 + 4 u1 + 16 u2 + 64 w3 as int8 (u = w + 2 biased,
 * w3 two's complement); b >> 2r (arithmetic) = sum_{q >= r} 4^(q-r) f_q. Per 16 inputs and group:
 * SMLAL + SMLAL2 of x with b itself (no extraction) and with SSHR #2, #4, #6 of b: 3 SSHR + 8 SMLAL per
 * 64 MACs, against AND/USHR + 2 SMLAL per 16 weights and row for nibbles. The int16 lanes H_r = sum x (b >> 2r)
 * wrap modulo 2^16 (|x b| reaches 16,384), but the row fields F_r = H_r - 4 H_{r+1} (F_3 = H_3) are exact
 * in int16 modulo 2^16 and their true values are small: per lane two products per block of |x u| <= 384
 * (|x w3| <= 256), so a window of up to WIN2 = 40 blocks keeps |F_r| <= 30,720 < 2^15. Each window ends
 * with 3 MLS (by element) + 4 SADALP into int32; dot_r = F_r - 2 sum x (r < 3), dot_3 = F_3. */
#define WIN2 40
/* one block (16 inputs, xv) of one group (bytes b) into its four int16 accumulators */
#define MAC2(h0, h1, h2, h3, bb) do {                                                                   \
        const int8x16_t b = (bb), b1 = vshrq_n_s8(b, 2), b2 = vshrq_n_s8(b, 4), b3 = vshrq_n_s8(b, 6); \
        h0 = vmlal_s8(h0, vget_low_s8(xv), vget_low_s8(b)); h0 = vmlal_high_s8(h0, xv, b);             \
        h1 = vmlal_s8(h1, vget_low_s8(xv), vget_low_s8(b1)); h1 = vmlal_high_s8(h1, xv, b1);           \
        h2 = vmlal_s8(h2, vget_low_s8(xv), vget_low_s8(b2)); h2 = vmlal_high_s8(h2, xv, b2);           \
        h3 = vmlal_s8(h3, vget_low_s8(xv), vget_low_s8(b3)); h3 = vmlal_high_s8(h3, xv, b3);           \
    } while (0)
/* end of a window: F_r = H_r - 4 H_{r+1} in this order (each uses the next one before it changes), then
 * into the int32 sums */
#define FLUSH2(s0, s1, s2, s3, h0, h1, h2, h3) do {                                                     \
        h0 = vmlsq_n_s16(h0, h1, 4); h1 = vmlsq_n_s16(h1, h2, 4); h2 = vmlsq_n_s16(h2, h3, 4);          \
        s0 = vpadalq_s16(s0, h0); s1 = vpadalq_s16(s1, h1); s2 = vpadalq_s16(s2, h2); s3 = vpadalq_s16(s3, h3); \
    } while (0)
static __attribute__((noinline)) void fc_rows2_v80(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                         const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t nblk = (in_n + 15) >> 4, pad = 16 * nblk;
    const int8_t *xs = x;
    int32_t i = 0;
    int32x4_t sacc = vdupq_n_s32(0);
    if (in_n == pad) {   /* whole blocks: the kernel reads the input itself, only its sum is needed */
        for (; i < in_n; i += 16) sacc = vpadalq_s16(sacc, vpaddlq_s8(vld1q_s8(x + i)));
    } else {             /* a zero-padded copy in the scratch */
        int8_t *xc = ctx->scratch;
        for (; i + 16 <= in_n; i += 16) {
            int8x16_t v = vld1q_s8(x + i);
            vst1q_s8(xc + i, v);
            sacc = vpadalq_s16(sacc, vpaddlq_s8(v));
        }
        for (; i < pad; i++) xc[i] = i < in_n ? x[i] : 0;
        xs = xc;
    }
    int32_t sx = vaddvq_s32(sacc);
    for (i = in_n & ~15; i < in_n; i++) sx += x[i];
    const int32_t tsx[4] = {2 * sx, 2 * sx, 2 * sx, 0};
    const int32x4_t corr = vld1q_s32(tsx);
    const int8_t *wg = w;
    int32_t o = 0;
    /* two groups (eight rows) per pass: one activation load feeds both */
    for (; o + 8 <= out_n; o += 8, wg += 2 * pad) {
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
        const int8_t *xp = xs, *ap = wg, *bp = wg + pad;
        for (int32_t c0 = 0; c0 < nblk; c0 += WIN2) {
            const int32_t c1 = c0 + WIN2 < nblk ? c0 + WIN2 : nblk;
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0, h4 = h0, h5 = h0, h6 = h0, h7 = h0;
            int64_t cnt = (c1 - c0) >> 2;
            int32_t c = c0 + 4 * (int32_t)cnt;
            if (cnt) {   /* four blocks per step: LD1 of four registers for x and for each group's bytes */
#define T2(X, B, H0, H1, H2, H3) "smlal %[" H0 "].8h, " X ".8b, " B ".8b\n\tsmlal2 %[" H0 "].8h, " X ".16b, " B ".16b\n\t" \
    "sshr v16.16b, " B ".16b, #2\n\tsshr v17.16b, " B ".16b, #4\n\tsshr v18.16b, " B ".16b, #6\n\t"                      \
    "smlal %[" H1 "].8h, " X ".8b, v16.8b\n\tsmlal2 %[" H1 "].8h, " X ".16b, v16.16b\n\t"                              \
    "smlal %[" H2 "].8h, " X ".8b, v17.8b\n\tsmlal2 %[" H2 "].8h, " X ".16b, v17.16b\n\t"                              \
    "smlal %[" H3 "].8h, " X ".8b, v18.8b\n\tsmlal2 %[" H3 "].8h, " X ".16b, v18.16b\n\t"
#define T2AB(X, BA, BB) T2(X, BA, "h0", "h1", "h2", "h3") T2(X, BB, "h4", "h5", "h6", "h7")
                __asm__ volatile("1:\n\tld1 {v0.16b-v3.16b}, [%[x]], #64\n\tld1 {v4.16b-v7.16b}, [%[a]], #64\n\t"
                                 "ld1 {v20.16b-v23.16b}, [%[b]], #64\n\t"
                                 T2AB("v0", "v4", "v20") T2AB("v1", "v5", "v21") T2AB("v2", "v6", "v22")
                                 T2AB("v3", "v7", "v23")
                                 "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                                 : [x] "+r"(xp), [a] "+r"(ap), [b] "+r"(bp), [cnt] "+r"(cnt),
                                   [h0] "+w"(h0), [h1] "+w"(h1), [h2] "+w"(h2), [h3] "+w"(h3),
                                   [h4] "+w"(h4), [h5] "+w"(h5), [h6] "+w"(h6), [h7] "+w"(h7)
                                 :
                                 : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18",
                                   "v20", "v21", "v22", "v23");
#undef T2AB
#undef T2
            }
            for (; c < c1; c++, xp += 16, ap += 16, bp += 16) {
                const int8x16_t xv = vld1q_s8(xp);
                MAC2(h0, h1, h2, h3, vld1q_s8(ap));
                MAC2(h4, h5, h6, h7, vld1q_s8(bp));
            }
            FLUSH2(s0, s1, s2, s3, h0, h1, h2, h3);
            FLUSH2(s4, s5, s6, s7, h4, h5, h6, h7);
        }
        requant4(p, ctx, bias, o, 0, vsubq_s32(hsum4(s0, s1, s2, s3), corr), y);
        requant4(p, ctx, bias, o + 4, 0, vsubq_s32(hsum4(s4, s5, s6, s7), corr), y);
    }
    for (; o < out_n; o += 4, wg += pad) {   /* a last single group */
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
        const int8_t *xp = xs, *bp = wg;
        for (int32_t c0 = 0; c0 < nblk; c0 += WIN2) {
            const int32_t c1 = c0 + WIN2 < nblk ? c0 + WIN2 : nblk;
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;
            int64_t cnt = (c1 - c0) >> 2;
            int32_t c = c0 + 4 * (int32_t)cnt;
            if (cnt) {   /* four blocks per step: LD1 of four registers for x and for the group's bytes */
#define T2(X, B) "smlal %[h0].8h, " X ".8b, " B ".8b\n\tsmlal2 %[h0].8h, " X ".16b, " B ".16b\n\t"              \
    "sshr v16.16b, " B ".16b, #2\n\tsshr v17.16b, " B ".16b, #4\n\tsshr v18.16b, " B ".16b, #6\n\t"             \
    "smlal %[h1].8h, " X ".8b, v16.8b\n\tsmlal2 %[h1].8h, " X ".16b, v16.16b\n\t"                             \
    "smlal %[h2].8h, " X ".8b, v17.8b\n\tsmlal2 %[h2].8h, " X ".16b, v17.16b\n\t"                             \
    "smlal %[h3].8h, " X ".8b, v18.8b\n\tsmlal2 %[h3].8h, " X ".16b, v18.16b\n\t"
                __asm__ volatile("1:\n\tld1 {v0.16b-v3.16b}, [%[x]], #64\n\tld1 {v4.16b-v7.16b}, [%[w]], #64\n\t"
                                 T2("v0", "v4") T2("v1", "v5") T2("v2", "v6") T2("v3", "v7")
                                 "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                                 : [x] "+r"(xp), [w] "+r"(bp), [cnt] "+r"(cnt),
                                   [h0] "+w"(h0), [h1] "+w"(h1), [h2] "+w"(h2), [h3] "+w"(h3)
                                 :
                                 : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18");
#undef T2
            }
            for (; c < c1; c++, xp += 16, bp += 16) {
                const int8x16_t xv = vld1q_s8(xp);
                MAC2(h0, h1, h2, h3, vld1q_s8(bp));
            }
            FLUSH2(s0, s1, s2, s3, h0, h1, h2, h3);
        }
        const int32x4_t d = vsubq_s32(hsum4(s0, s1, s2, s3), corr);
        if (o + 4 <= out_n) requant4(p, ctx, bias, o, 0, d, y);
        else {   /* last group: out % 4 rows */
            int32_t dd[4];
            vst1q_s32(dd, d);
            for (int32_t r = 0; o + r < out_n; r++) OUT(dd[r], 0, o + r);
        }
    }
}
#undef MAC2
#undef FLUSH2
#undef WIN2
#endif

#if !defined(__ARM_FEATURE_DOTPROD)
/* ---------------- layout 2 (r4_words), k = 1, armv8.0 (no dot product): table lookups (issue 14) ----------------
 * Layout 2 puts the 32-input words of a group's four rows next to each other, so one 16-byte load holds
 * byte q (0..3) of word c of rows 0..3 in lane 4r + q; byte q holds inputs 32c + q + 4t (t = 0..7) in bit
 * 7 - t, one nibble = four inputs of one row. Per layer and word the kernel builds subset-sum tables
 * of those four inputs: entry 16q + n = sum of x over the bits of nibble n (TBL with four registers looks
 * up 16 lanes, i.e. 4 rows x 4 nibbles = 64 weights, per instruction). A sum of four activations needs 10
 * bits, so x = 16 xh + xl is split (xl = x & 15, xh = x >> 4): four tables per word (high / low nibble x
 * xl / xh), entries in 0..60 and -32..28, looked up as bytes. Per 16-byte weight load (128 MACs):
 * USHR + ORR (high-nibble index + 16q), SLI (low-nibble index + 16q), 4 TBL, 2 ADD, UADALP + SADALP into
 * int16 lanes (lane pairs of one row): 12 instructions, against 24 for the bit masks on layout 6.
 * T = sum of x over a row's set bits = 16 TH + TL, dot = 2 T - sum x (bit 1 = +1, 0 = -1).
 * The tables of TB1_CHUNK words (256 bytes each) are built, then every row group runs over them with its
 * running sum T in the scratch; rows of a last group of out % 4 rows: scalar. */
/* TBL indices that build a table register from {X0, X1, Y0, Y1} (the word's 32 inputs and the pair sums
 * Y[i] = X[i] + X[i+4]): [part (high nibble: inputs q + 4t, low: 16 + q + 4t)][q][n >> 2 | n & 3][n];
 * 255 = out of range = 0 */
static const uint8_t TB1_IDX[2][4][2][16] = {
    {{{255, 255, 255, 255, 4, 4, 4, 4, 0, 0, 0, 0, 32, 32, 32, 32}, {255, 12, 8, 40, 255, 12, 8, 40, 255, 12, 8, 40, 255, 12, 8, 40}},
     {{255, 255, 255, 255, 5, 5, 5, 5, 1, 1, 1, 1, 33, 33, 33, 33}, {255, 13, 9, 41, 255, 13, 9, 41, 255, 13, 9, 41, 255, 13, 9, 41}},
     {{255, 255, 255, 255, 6, 6, 6, 6, 2, 2, 2, 2, 34, 34, 34, 34}, {255, 14, 10, 42, 255, 14, 10, 42, 255, 14, 10, 42, 255, 14, 10, 42}},
     {{255, 255, 255, 255, 7, 7, 7, 7, 3, 3, 3, 3, 35, 35, 35, 35}, {255, 15, 11, 43, 255, 15, 11, 43, 255, 15, 11, 43, 255, 15, 11, 43}}},
    {{{255, 255, 255, 255, 20, 20, 20, 20, 16, 16, 16, 16, 48, 48, 48, 48}, {255, 28, 24, 56, 255, 28, 24, 56, 255, 28, 24, 56, 255, 28, 24, 56}},
     {{255, 255, 255, 255, 21, 21, 21, 21, 17, 17, 17, 17, 49, 49, 49, 49}, {255, 29, 25, 57, 255, 29, 25, 57, 255, 29, 25, 57, 255, 29, 25, 57}},
     {{255, 255, 255, 255, 22, 22, 22, 22, 18, 18, 18, 18, 50, 50, 50, 50}, {255, 30, 26, 58, 255, 30, 26, 58, 255, 30, 26, 58, 255, 30, 26, 58}},
     {{255, 255, 255, 255, 23, 23, 23, 23, 19, 19, 19, 19, 51, 51, 51, 51}, {255, 31, 27, 59, 255, 31, 27, 59, 255, 31, 27, 59, 255, 31, 27, 59}}}};

/* the four 64-byte tables (HL, HH, LL, LH) of each of nc words from their 32 activations each (xw):
 * per word LD1, 2 AND + 2 SSHR (xl, xh), 4 EXT + 4 ADD (pair sums), then per table register 2 TBL + ADD
 * and one ST1 of four registers per table: 65 instructions */
#define TB1_T(S, I0, I1, O) "tbl " O ".16b, {" S "}, " I0 ".16b\n\ttbl v30.16b, {" S "}, " I1 ".16b\n\t"             \
    "add " O ".16b, " O ".16b, v30.16b\n\t"
#define TB1_TAB(S, A, B, C, D, E, F, G, H) TB1_T(S, A, B, "v26") TB1_T(S, C, D, "v27") TB1_T(S, E, F, "v28")          \
    TB1_T(S, G, H, "v29") "st1 {v26.16b-v29.16b}, [%[t]], #64\n\t"
#define TB1_XL "v0.16b-v3.16b"
#define TB1_XH "v4.16b-v7.16b"
static void tb1_tables(const int8_t *xw, int8_t *t, int64_t nc)
{
    const int8_t *ip = (const int8_t *)TB1_IDX;
    __asm__ volatile("ld1 {v8.16b-v11.16b}, [%[ip]], #64\n\tld1 {v12.16b-v15.16b}, [%[ip]], #64\n\t"
                     "ld1 {v16.16b-v19.16b}, [%[ip]], #64\n\tld1 {v20.16b-v23.16b}, [%[ip]], #64\n\t"
                     "movi v24.16b, #15\n\tmovi v25.16b, #0\n\t"
                     "1:\n\tld1 {v26.16b, v27.16b}, [%[x]], #32\n\t"
                     "and v0.16b, v26.16b, v24.16b\n\tand v1.16b, v27.16b, v24.16b\n\t"
                     "sshr v4.16b, v26.16b, #4\n\tsshr v5.16b, v27.16b, #4\n\t"
                     "ext v30.16b, v0.16b, v1.16b, #4\n\tadd v2.16b, v0.16b, v30.16b\n\t"
                     "ext v30.16b, v1.16b, v25.16b, #4\n\tadd v3.16b, v1.16b, v30.16b\n\t"
                     "ext v30.16b, v4.16b, v5.16b, #4\n\tadd v6.16b, v4.16b, v30.16b\n\t"
                     "ext v30.16b, v5.16b, v25.16b, #4\n\tadd v7.16b, v5.16b, v30.16b\n\t"
                     TB1_TAB(TB1_XL, "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15")
                     TB1_TAB(TB1_XH, "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15")
                     TB1_TAB(TB1_XL, "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23")
                     TB1_TAB(TB1_XH, "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23")
                     "subs %[n], %[n], #1\n\tb.ne 1b\n\t"
                     : [x] "+r"(xw), [t] "+r"(t), [n] "+r"(nc), [ip] "+r"(ip)
                     :
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
                       "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
                       "v27", "v28", "v29", "v30");
}
#undef TB1_T
#undef TB1_TAB
#undef TB1_XL
#undef TB1_XH

/* one group (16-byte load of 4 rows x 4 bytes) of one word against the tables in v0..v15 */
#define TB1_G(P, AL, AH) "ld1 {v16.16b}, [%[" P "]], #16\n\t" "ushr v17.16b, v16.16b, #4\n\t"                  \
    "orr v17.16b, v17.16b, %[qo].16b\n\t" "sli v16.16b, %[q4].16b, #4\n\t"                                      \
    "tbl v18.16b, {v0.16b-v3.16b}, v17.16b\n\t" "tbl v19.16b, {v8.16b-v11.16b}, v16.16b\n\t"                     \
    "add v18.16b, v18.16b, v19.16b\n\t" "uadalp %[" AL "].8h, v18.16b\n\t"                                      \
    "tbl v18.16b, {v4.16b-v7.16b}, v17.16b\n\t" "tbl v19.16b, {v12.16b-v15.16b}, v16.16b\n\t"                    \
    "add v18.16b, v18.16b, v19.16b\n\t" "sadalp %[" AH "].8h, v18.16b\n\t"
#define TB1_LDT "ld1 {v0.16b-v3.16b}, [%[t]], #64\n\tld1 {v4.16b-v7.16b}, [%[t]], #64\n\t"                       \
    "ld1 {v8.16b-v11.16b}, [%[t]], #64\n\tld1 {v12.16b-v15.16b}, [%[t]], #64\n\t"
#define TB1_CLOB "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",   \
    "v13", "v14", "v15", "v16", "v17", "v18", "v19"

/* T of rows 4 lanes from the int16 sums: 16 TH + TL, added to the running sums at s */
static inline void tb1_add(int32_t *s, int first, uint16x8_t al, int16x8_t ah)
{
    int32x4_t v = vreinterpretq_s32_u32(vpaddlq_u16(al));
    v = vaddq_s32(v, vshlq_n_s32(vpaddlq_s16(ah), 4));
    vst1q_s32(s, first ? v : vaddq_s32(vld1q_s32(s), v));
}

static void fc_bits_tbl(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                        const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t nw = (in_n + 31) >> 5, full = out_n >> 2;   /* words per row, whole groups of 4 rows */
    const size_t gstride = (size_t)16 * nw;                   /* bytes of a whole group */
    int8_t *tab = (int8_t *)ctx->scratch;                     /* TB1_CHUNK * 256 */
    int32_t *tsum = (int32_t *)(tab + 256 * TB1_CHUNK);       /* T of the rows of whole groups */
    const int8_t *xs = x;
    int32_t sx = 0;
    {
        int32x4_t sacc = vdupq_n_s32(0);
        int32_t i = 0;
        for (; i + 16 <= in_n; i += 16) sacc = vpadalq_s16(sacc, vpaddlq_s8(vld1q_s8(x + i)));
        sx = vaddvq_s32(sacc);
        for (; i < in_n; i++) sx += x[i];
        if (in_n & 31) {   /* a zero-padded copy after the running sums */
            int8_t *xc = (int8_t *)(tsum + 4 * full);
            memcpy(xc, x, (size_t)in_n);
            memset(xc + in_n, 0, (size_t)(32 * nw - in_n));
            xs = xc;
        }
    }
    static const uint8_t qo_b[16] = {0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48, 0, 16, 32, 48};
    static const uint8_t q4_b[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    const uint8x16_t qo = vld1q_u8(qo_b), q4 = vld1q_u8(q4_b);
    for (int32_t c0 = 0; c0 < nw; c0 += TB1_CHUNK) {
        const int64_t nc = nw - c0 < TB1_CHUNK ? nw - c0 : TB1_CHUNK;
        tb1_tables(xs + 32 * c0, tab, nc);
        int32_t g = 0;
        for (; g + 4 <= full; g += 4) {   /* 16 rows per pass */
            const int8_t *g0 = w + g * gstride + 16 * c0, *g1 = g0 + gstride, *g2 = g1 + gstride, *g3 = g2 + gstride;
            const int8_t *tp = tab;
            int64_t cnt = nc;
            uint16x8_t l0 = vdupq_n_u16(0), l1 = l0, l2 = l0, l3 = l0;
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;
            __asm__ volatile("1:\n\t" TB1_LDT TB1_G("g0", "l0", "h0") TB1_G("g1", "l1", "h1") TB1_G("g2", "l2", "h2")
                             TB1_G("g3", "l3", "h3") "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                             : [t] "+r"(tp), [g0] "+r"(g0), [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3), [cnt] "+r"(cnt),
                               [l0] "+w"(l0), [l1] "+w"(l1), [l2] "+w"(l2), [l3] "+w"(l3),
                               [h0] "+w"(h0), [h1] "+w"(h1), [h2] "+w"(h2), [h3] "+w"(h3)
                             : [qo] "w"(qo), [q4] "w"(q4)
                             : TB1_CLOB);
            tb1_add(tsum + 4 * g, c0 == 0, l0, h0); tb1_add(tsum + 4 * g + 4, c0 == 0, l1, h1);
            tb1_add(tsum + 4 * g + 8, c0 == 0, l2, h2); tb1_add(tsum + 4 * g + 12, c0 == 0, l3, h3);
        }
        for (; g < full; g++) {           /* 4 rows per pass */
            const int8_t *g0 = w + g * gstride + 16 * c0, *tp = tab;
            int64_t cnt = nc;
            uint16x8_t l0 = vdupq_n_u16(0);
            int16x8_t h0 = vdupq_n_s16(0);
            __asm__ volatile("1:\n\t" TB1_LDT TB1_G("g0", "l0", "h0") "subs %[cnt], %[cnt], #1\n\tb.ne 1b\n\t"
                             : [t] "+r"(tp), [g0] "+r"(g0), [cnt] "+r"(cnt), [l0] "+w"(l0), [h0] "+w"(h0)
                             : [qo] "w"(qo), [q4] "w"(q4)
                             : TB1_CLOB);
            tb1_add(tsum + 4 * g, c0 == 0, l0, h0);
        }
    }
    const int32x4_t nsx = vdupq_n_s32(-sx);
    {
        const rq_t q = rq_make(p, ctx, bias);
        for (int32_t g = 0; g < full; g++)   /* dot = 2 T - sum x */
            requant4q(&q, 4 * g, vaddq_s32(vshlq_n_s32(vld1q_s32(tsum + 4 * g), 1), nsx), y);
    }
    if (out_n & 3) {   /* the last group: out % 4 rows, words interleaved by G' = out % 4 */
        const int32_t G = out_n & 3;
        const uint8_t *base = (const uint8_t *)w + full * gstride;
        for (int32_t r = 0; r < G; r++) {
            uint32_t t = 0;
            for (int32_t j = 0; j < in_n; j++) {
                uint32_t word;
                memcpy(&word, base + ((size_t)(j >> 5) * G + r) * 4, 4);
                if ((word >> kws_fc_opt_bit1_pos(j & 31)) & 1u) t += (uint32_t)x[j];
            }
            OUT((int32_t)(2u * t - (uint32_t)sx), 0, 4 * full + r);
        }
    }
}
#undef TB1_G
#undef TB1_LDT
#undef TB1_CLOB
#endif

/* layout 9 (rows24), 3-bit weights: fc_rows24 (both builds) */
#include "kws_fc_rows24_neon.h"

void kws_fully_connected_opt(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, int32_t batches,
                             const int8_t *input, const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * p->in_features;
        int8_t *y = output + (size_t)b * p->out_features;
        if (p->layout == KWS_LAYOUT_ROW_LSB) fc_s8(p, ctx, x, (const int8_t *)weights, bias, y);
        else if (p->layout == KWS_LAYOUT_ROWS24) fc_rows24(p, ctx, x, (const int8_t *)weights, bias, y);
#if defined(__ARM_FEATURE_DOTPROD)
        else if (p->layout == KWS_LAYOUT_ROWS_PER_BYTE) {
            if (p->bits == 4) fc_rows(4, p, ctx, x, (const int8_t *)weights, bias, y);
            else if (p->bits == 2) fc_rows(2, p, ctx, x, (const int8_t *)weights, bias, y);
            else fc_rows(1, p, ctx, x, (const int8_t *)weights, bias, y);
        }
#else
        else if (p->layout == KWS_LAYOUT_R4_WORDS && p->bits == 1) fc_bits_tbl(p, ctx, x, (const int8_t *)weights, bias, y);
        else if (p->layout == KWS_LAYOUT_ROWS_PER_BYTE && p->bits == 2) fc_rows2_v80(p, ctx, x, (const int8_t *)weights, bias, y);
        else if (p->layout == KWS_LAYOUT_ROWS_PER_BYTE) fc_bits_v80(p, ctx, x, (const int8_t *)weights, bias, y);
#endif
        else fc_nib(p, ctx, x, weights, bias, y);
    }
}
