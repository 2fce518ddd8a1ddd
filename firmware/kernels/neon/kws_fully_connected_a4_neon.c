/* kws_fully_connected_a4_neon: SUB8_FC_A4 (k-bit weights, inputs of <= 4 bits) on AArch64 NEON,
 * weights in layout 6 (rows_per_byte, k = 2 or 4; kws_fc_a4_rows.h has the arithmetic). Two builds:
 *
 *   armv8.2-a+dotprod (Cortex-A76): per 16 weight bytes and row one SDOT (16 MACs) and, above row 0,
 *     one SSHR: k = 4 is 3 instructions per 32 MACs (the w4a8 kernel's layout 3 needs AND + USHR +
 *     2 SDOT = 4).
 *   armv8.0-a (Cortex-A53): SMLAL / SMLAL2 of the int8 weight bytes into int16 lanes. That is what
 *     4-bit activations buy here: with x <= 15, |x * b| <= 15 * 128 = 1920 for any byte b, so the
 *     telescoping sums (two rows per byte, one SSHR) fit int16 for 8 blocks (2 products per lane and
 *     block: 8 * 3840 < 32768) before SADALP widens them; k = 4 is 5 instructions per 32 MACs, where
 *     the w4a8 kernel (int8 inputs, |x * u| up to 1920 already) needs AND + USHR + 4 SMLAL = 6.
 *     This relies on the operator's contract: inputs of a <= 4-bit layer lie in 0..2^input_bits-1.
 * Compiled to nothing outside AArch64 builds. */
#include "kws_fc_a4.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include "kws_fc_a4_rows.h"

#if defined(__ARM_FEATURE_DOTPROD)
const int kws_fc_a4_opt_isa = KWS_ISA_NEON_DOTPROD;
#else
const int kws_fc_a4_opt_isa = KWS_ISA_NEON;
#endif

int kws_fc_a4_opt_supported(const kws_fc_a4_params *p) { return a4r_supported(p); }

size_t kws_fc_a4_opt_scratch_bytes(const kws_fc_a4_params *p) { return a4r_scratch_bytes(p); }

static uint32_t sum_x(const int8_t *xs, int32_t nblk)
{
    uint32x4_t s = vdupq_n_u32(0);
    for (int32_t c = 0; c < nblk; c++) s = vpadalq_u16(s, vpaddlq_u8(vld1q_u8((const uint8_t *)xs + 16 * c)));
    return vaddvq_u32(s);
}

#if defined(__ARM_FEATURE_DOTPROD)
#define ACC_T int32x4_t
#define ACC_ZERO vdupq_n_s32(0)
#define MAC(a, xv, b) a = vdotq_s32(a, xv, b)
#define FLUSH(s, h) s = vaddq_s32(s, h)
#else
#define ACC_T int16x8_t
#define ACC_ZERO vdupq_n_s16(0)
#define MAC(h, xv, b) do { h = vmlal_s8(h, vget_low_s8(xv), vget_low_s8(b)); h = vmlal_high_s8(h, xv, b); } while (0)
#define FLUSH(s, h) s = vpadalq_s16(s, h)
#define SPAN 8   /* blocks per int16 span: 8 blocks x 2 products x 1920 < 32768 (the tail loop: < 8) */
#endif

/* four outputs o..o+3 from their sums v: + bias (wrap-around), then kws_fc_opt_requant's arithmetic four
 * lanes at a time: SSHL (wraps like the reference's uint32 shift), SQRDMULH (SaturatingRoundingDoublingHighMul),
 * the rounding divide as SRSHL after subtracting 1 from negative values (half away from zero), the output
 * offset, the clamp, narrowing; the last, partial pass in scalar code */
static inline void out4(const kws_fc_params *f, const int32_t *bias, int32_t o, const int32_t *d, int8_t *y)
{
    if (o + 4 > f->out_features) {
        for (int32_t r = 0; o + r < f->out_features; r++) y[o + r] = a4r_out(f, bias, o + r, d[r]);
        return;
    }
    int32x4_t v = vld1q_s32(d);
    const int32x4_t zero = vdupq_n_s32(0), sh = vld1q_s32(f->shift + o), right = vminq_s32(sh, zero);
    if (bias) v = vaddq_s32(v, vld1q_s32(bias + o));
    v = vshlq_s32(v, vmaxq_s32(sh, zero));
    v = vqrdmulhq_s32(v, vld1q_s32(f->multiplier + o));
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, right), 31));
    v = vrshlq_s32(v, right);
    v = vaddq_s32(v, vdupq_n_s32(f->act.output_offset));
    v = vminq_s32(vmaxq_s32(v, vdupq_n_s32(f->act.act_min)), vdupq_n_s32(f->act.act_max));
    const int16x4_t h = vmovn_s32(v);
    const uint32_t b4 = vget_lane_u32(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(h, h))), 0);
    memcpy(y + o, &b4, 4);
}

/* k = 4: two groups (four rows) per pass, the activations loaded once for both, four blocks (LD1 of four
 * registers per operand) per step; a lone last group is read twice (its second copy's sums unused) */
static void rows_k4(const kws_fc_params *f, const int8_t *xs, uint32_t sx, const int8_t *w, const int32_t *bias,
                    int8_t *y)
{
    const int32_t out_n = f->out_features, nblk = a4r_blocks(f->in_features), pad = 16 * nblk;
    int32_t S[4], d[4];
    for (int32_t o = 0; o < out_n; o += 4, w += 2 * pad) {
        const int8_t *xp = xs, *p0 = w, *p1 = o + 2 < out_n ? w + pad : w;
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
        int32_t c = 0;
#define K4(j) MAC(h0, xv.val[j], b0.val[j]); MAC(h1, xv.val[j], vshrq_n_s8(b0.val[j], 4)); \
              MAC(h2, xv.val[j], b1.val[j]); MAC(h3, xv.val[j], vshrq_n_s8(b1.val[j], 4))
#define K4_STEP do { const int8x16x4_t xv = vld1q_s8_x4(xp), b0 = vld1q_s8_x4(p0), b1 = vld1q_s8_x4(p1); \
                     xp += 64; p0 += 64; p1 += 64; K4(0); K4(1); K4(2); K4(3); } while (0)
#if defined(__ARM_FEATURE_DOTPROD)
        {
            int32x4_t h0 = s0, h1 = s1, h2 = s2, h3 = s3;
            for (; c + 4 <= nblk; c += 4) K4_STEP;
            s0 = h0; s1 = h1; s2 = h2; s3 = h3;
        }
#else
        for (; c + SPAN <= nblk; c += SPAN) {   /* two steps into int16 lanes, then widened */
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;
            K4_STEP;
            K4_STEP;
            FLUSH(s0, h0); FLUSH(s1, h1); FLUSH(s2, h2); FLUSH(s3, h3);
        }
#endif
#undef K4_STEP
#undef K4
        {   /* the last blocks (fewer than a span) one at a time */
            ACC_T h0 = ACC_ZERO, h1 = ACC_ZERO, h2 = ACC_ZERO, h3 = ACC_ZERO;
            for (; c < nblk; c++, xp += 16, p0 += 16, p1 += 16) {
                const int8x16_t xv = vld1q_s8(xp), b0 = vld1q_s8(p0), b1 = vld1q_s8(p1);
                MAC(h0, xv, b0); MAC(h1, xv, vshrq_n_s8(b0, 4)); MAC(h2, xv, b1); MAC(h3, xv, vshrq_n_s8(b1, 4));
            }
            FLUSH(s0, h0); FLUSH(s1, h1); FLUSH(s2, h2); FLUSH(s3, h3);
        }
        S[0] = vaddvq_s32(s0); S[1] = vaddvq_s32(s1); S[2] = vaddvq_s32(s2); S[3] = vaddvq_s32(s3);
        d[0] = a4r_dot(4, 0, S, sx); d[1] = S[1]; d[2] = a4r_dot(4, 0, S + 2, sx); d[3] = S[3];
        out4(f, bias, o, d, y);
    }
}

/* k = 2: one group of four rows per pass, four blocks per step */
static void rows_k2(const kws_fc_params *f, const int8_t *xs, uint32_t sx, const int8_t *w, const int32_t *bias,
                    int8_t *y)
{
    const int32_t out_n = f->out_features, nblk = a4r_blocks(f->in_features), pad = 16 * nblk;
    int32_t S[4], d[4];
    for (int32_t o = 0; o < out_n; o += 4, w += pad) {
        const int8_t *xp = xs, *pw = w;
        int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
        int32_t c = 0;
#define K2(j) MAC(h0, xv.val[j], b.val[j]); MAC(h1, xv.val[j], vshrq_n_s8(b.val[j], 2)); \
              MAC(h2, xv.val[j], vshrq_n_s8(b.val[j], 4)); MAC(h3, xv.val[j], vshrq_n_s8(b.val[j], 6))
#define K2_STEP do { const int8x16x4_t xv = vld1q_s8_x4(xp), b = vld1q_s8_x4(pw); \
                     xp += 64; pw += 64; K2(0); K2(1); K2(2); K2(3); } while (0)
#if defined(__ARM_FEATURE_DOTPROD)
        {
            int32x4_t h0 = s0, h1 = s1, h2 = s2, h3 = s3;
            for (; c + 4 <= nblk; c += 4) K2_STEP;
            s0 = h0; s1 = h1; s2 = h2; s3 = h3;
        }
#else
        for (; c + SPAN <= nblk; c += SPAN) {
            int16x8_t h0 = vdupq_n_s16(0), h1 = h0, h2 = h0, h3 = h0;
            K2_STEP;
            K2_STEP;
            FLUSH(s0, h0); FLUSH(s1, h1); FLUSH(s2, h2); FLUSH(s3, h3);
        }
#endif
#undef K2_STEP
#undef K2
        {
            ACC_T h0 = ACC_ZERO, h1 = ACC_ZERO, h2 = ACC_ZERO, h3 = ACC_ZERO;
            for (; c < nblk; c++, xp += 16, pw += 16) {
                const int8x16_t xv = vld1q_s8(xp), b = vld1q_s8(pw);
                MAC(h0, xv, b); MAC(h1, xv, vshrq_n_s8(b, 2)); MAC(h2, xv, vshrq_n_s8(b, 4)); MAC(h3, xv, vshrq_n_s8(b, 6));
            }
            FLUSH(s0, h0); FLUSH(s1, h1); FLUSH(s2, h2); FLUSH(s3, h3);
        }
        S[0] = vaddvq_s32(s0); S[1] = vaddvq_s32(s1); S[2] = vaddvq_s32(s2); S[3] = vaddvq_s32(s3);
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
        if (f->bits == 4) rows_k4(f, xs, sx, (const int8_t *)weights, bias, y);
        else rows_k2(f, xs, sx, (const int8_t *)weights, bias, y);
    }
}
#else
typedef int kws_fc_a4_neon_unused;   /* not an AArch64 build: the A4 kernel comes from another file */
#endif
