/* kws_conv_dsp.c - CONV_2D and DEPTHWISE_CONV_2D for the Cortex-M DSP extension (M4, M7), bit-exact
 * with kws_conv_s8 / kws_depthwise_conv_s8 (kws_conv_opt.h; docs/kernels.md, "DS-CNN convolutions").
 *
 * Convolutions run on the int8 FULLY_CONNECTED kernel of the build (kws_fully_connected_opt, layout 0):
 * a 1x1 convolution with stride 1 and no padding IS a fully connected layer on every pixel (filter
 * [out_c][1][1][in_c] = weights [out][in], batches = pixels); any other convolution gathers one output
 * row's patches (im2col, [k_h][k_w][in_c] like the filter rows) into the scratch, padding with the input
 * zero point so that (x + input_offset) is 0 there, exactly what the reference's skipped taps add.
 *
 * Depthwise 3x3, stride 1, depth multiplier 1: four channels at a time are copied into int16 planes
 * (x + input_offset, one SXTAB16 per two values, zero borders = the padding); the four planes' rows
 * interleave (row pr of plane j at (4 pr + j) * DW_RS), so rows and planes are immediate offsets.
 * Per channel, two adjacent outputs and one filter row take one LDRD of four plane values
 * A = (x0, x1), B = (x2, x3) and four multiply-accumulates:
 *     out0 += SMLAD(A, (w0, w1)) + SMLABB(B, w2)        x0 w0 + x1 w1 + x2 w2
 *     out1 += SMLADX(PKHBT(B, A), (w0, w1)) + SMLATB(B, w2)   x1 w0 + x2 w1 + x3 w2
 * i.e. 6 instructions per 6 MACs (plus the LDRD). The weights are doubled (2w fits int16) and the bias
 * too, so the accumulator holds 2 * acc, and the requantization is three instructions plus the clamp
 * (a second loop per output row: the MAC loop needs 12 registers already):
 *     ra = base + (acc2 >> 31)          base = 2^(e-1) + output_offset * 2^e, e = -shift >= 1
 *     y  = SMMLAR(acc2, m, ra) >> e
 * SMMLAR gives ra + floor((2 acc m + 2^31) / 2^32) = ra + SRDHM(acc, m) (= floor((acc m + 2^30) / 2^31), the
 * reference's high multiply for m >= 0), and adding 2^(e-1) - [acc < 0] before the arithmetic shift is the
 * reference's rounding divide (round half away from zero): its sign test is on SRDHM's result, which is
 * 0 whenever its sign differs from acc's, and for 0 both give 0. Exact while |acc| < 2^29 (kept by
 * kws_conv_opt_supported: |bias| <= 2^28, |x + input_offset| <= 384, 9 taps) and e <= 21. */
#include <string.h>
#include "kws_conv_opt.h"
#include "kws_kernels_opt.h"

#if defined(__ARM_FEATURE_DSP) && !defined(__ARM_FEATURE_MVE)
#include <arm_acle.h>
#define KWS_CONV_DSP 1
#else
#define KWS_CONV_DSP 0
#endif

#define DW_RS 48  /* int16 values per plane row: out_w + 4 <= DW_RS (the last pair reads two beyond) */
#define DW_CH 4   /* channels per group of planes; row pr of plane j at (pr * DW_CH + j) * DW_RS */
#define DW_ROW (DW_CH * DW_RS)   /* int16 values from one padded row to the next (384 bytes) */

static void fc_params(const kws_conv_params *p, kws_fc_params *f)
{
    memset(f, 0, sizeof *f);
    f->act = p->act;
    f->in_features = p->k_h * p->k_w * p->in_c;
    f->out_features = p->out_c;
    f->multiplier = p->multiplier;
    f->shift = p->shift;
    f->bits = 8;
    f->layout = 0;
    f->row_bytes = f->in_features;
}

static int is_1x1(const kws_conv_params *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0 &&
           p->in_h == p->out_h && p->in_w == p->out_w;
}

static size_t im2col_bytes(const kws_conv_params *p)
{
    return is_1x1(p) ? 0 : (((size_t)p->out_w * p->k_h * p->k_w * p->in_c + 15u) & ~(size_t)15u);
}

static int dw_supported(const kws_conv_params *p, const int32_t *bias)
{
    if (p->k_h != 3 || p->k_w != 3 || p->stride_h != 1 || p->stride_w != 1 || p->dil_h != 1 || p->dil_w != 1 ||
        p->depth_multiplier != 1 || p->in_c % DW_CH != 0 || p->out_w + 4 > DW_RS || p->pad_h < 0 || p->pad_w < 0 ||
        p->pad_h > 2 || p->pad_w > 2)
        return 0;
    if (p->act.act_max != 127 || p->act.act_min < -128 || p->act.act_min > 127 || p->act.output_offset < -128 ||
        p->act.output_offset > 127 || p->act.input_offset < -256 || p->act.input_offset > 256)
        return 0;
    for (int32_t c = 0; c < p->out_c; c++) {
        const int32_t e = -p->shift[c], b = bias ? bias[c] : 0;
        if (p->multiplier[c] < 0 || e < 1 || e > 21 || b > (1 << 28) || b < -(1 << 28)) return 0;
    }
    return 1;
}

int kws_conv_opt_supported(const kws_conv_params *p, int depthwise, const int32_t *bias)
{
    if (!KWS_CONV_DSP || !kws_fc_opt_supported(8, 0) || p->batches < 1) return 0;
    if (depthwise) return dw_supported(p, bias);
    return p->dil_h == 1 && p->dil_w == 1;   /* any stride / padding / filter size */
}

size_t kws_conv_opt_scratch_bytes(const kws_conv_params *p, int depthwise)
{
    if (depthwise) return (size_t)(p->out_h + 2) * DW_ROW * sizeof(int16_t) + (size_t)DW_RS * sizeof(int32_t);
    kws_fc_params f;
    fc_params(p, &f);
    return im2col_bytes(p) + kws_fc_opt_scratch_bytes(&f);
}

void kws_conv_opt_row_sums(const kws_conv_params *p, const int8_t *filter, int32_t *row_sums)
{
    kws_fc_params f;
    fc_params(p, &f);
    kws_fc_opt_row_sums(&f, (const uint8_t *)filter, row_sums);
}

/* ---- convolutions on the FC kernel ---- */

static void conv_fc(const kws_conv_params *p, const kws_conv_opt_ctx *ctx, const int8_t *input, const int8_t *filter,
                    const int32_t *bias, int8_t *output)
{
    kws_fc_params f;
    fc_params(p, &f);
    const size_t col = im2col_bytes(p);
    const kws_fc_opt_ctx fctx = {(uint8_t *)ctx->scratch + col, ctx->row_sums};
    if (col == 0) {   /* 1x1: every pixel is one FC input */
        kws_fully_connected_opt(&f, &fctx, p->batches * p->out_h * p->out_w, input, (const uint8_t *)filter, bias, output);
        return;
    }
    int8_t *buf = ctx->scratch;
    const int32_t ic = p->in_c, patch = f.in_features;
    const int8_t pad = (int8_t)(-p->act.input_offset);   /* the input zero point: (pad + input_offset) = 0 */
    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *in_b = input + (size_t)n * p->in_h * p->in_w * ic;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int8_t *d = buf;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                for (int32_t ky = 0; ky < p->k_h; ky++) {
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= p->in_h) {
                        memset(d, pad, (size_t)p->k_w * ic);
                        d += p->k_w * ic;
                        continue;
                    }
                    const int8_t *row = in_b + (size_t)iy * p->in_w * ic;
                    int32_t kx = 0;
                    for (; kx < p->k_w && ix0 + kx < 0; kx++, d += ic) memset(d, pad, (size_t)ic);
                    int32_t kx_end = p->in_w - ix0;
                    if (kx_end > p->k_w) kx_end = p->k_w;
                    if (kx == 0 && kx_end == p->k_w && p->k_w * ic == 4) {   /* a whole 4-byte tap row (conv_0) */
                        memcpy(d, row + (size_t)ix0 * ic, 4);
                        d += 4;
                        continue;
                    }
                    if (kx_end > kx) {   /* the taps inside the row are contiguous in NHWC */
                        memcpy(d, row + (size_t)(ix0 + kx) * ic, (size_t)(kx_end - kx) * ic);
                        d += (kx_end - kx) * ic;
                        kx = kx_end;
                    }
                    for (; kx < p->k_w; kx++, d += ic) memset(d, pad, (size_t)ic);
                }
            }
            kws_fully_connected_opt(&f, &fctx, p->out_w, buf, (const uint8_t *)filter, bias,
                                    output + (((size_t)n * p->out_h + oy) * p->out_w) * p->out_c);
        }
    }
    (void)patch;
}

#if KWS_CONV_DSP
/* ---- depthwise 3x3 ---- */

typedef uint32_t __attribute__((may_alias, aligned(4))) u32a;

static inline __attribute__((always_inline)) uint32_t sxtab16_ror8(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline __attribute__((always_inline)) uint32_t pack16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)lo | (uint32_t)hi << 16;
}

/* (B bottom, A top): the middle pair (x2, x1) of A = (x0, x1), B = (x2, x3) */
static inline __attribute__((always_inline)) uint32_t pkhbt(uint32_t b, uint32_t a)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2" : "=r"(r) : "r"(b), "r"(a));
    return r;
}

/* the accumulators (2 acc, without the bias) of one output row and channel: per pair of outputs three LDRD
 * (one per filter row), 12 multiply-accumulates, 3 PKHBT and one STRD, in one loop */
static inline __attribute__((always_inline)) void dw_row_pairs(const int16_t *r, int32_t *acc, int32_t pairs, uint32_t W0,
                                                              uint32_t W1, uint32_t Wr, uint32_t Wt, uint32_t Wu)
{
    uint32_t A, B;
    int32_t a0, a1;
    __asm__ volatile("1:\n\t"
                     "ldrd %[A], %[B], [%[q]]\n\t"
                     "smuad %[a0], %[A], %[W0]\n\t"
                     "pkhbt %[A], %[B], %[A]\n\t"
                     "smuadx %[a1], %[A], %[W0]\n\t"
                     "smlabb %[a0], %[B], %[Wt], %[a0]\n\t"
                     "smlatb %[a1], %[B], %[Wt], %[a1]\n\t"
                     "ldrd %[A], %[B], [%[q], #384]\n\t"
                     "smlad %[a0], %[A], %[W1], %[a0]\n\t"
                     "pkhbt %[A], %[B], %[A]\n\t"
                     "smladx %[a1], %[A], %[W1], %[a1]\n\t"
                     "smlabt %[a0], %[B], %[Wt], %[a0]\n\t"
                     "smlatt %[a1], %[B], %[Wt], %[a1]\n\t"
                     "ldrd %[A], %[B], [%[q], #768]\n\t"
                     "adds %[q], %[q], #4\n\t"
                     "smlad %[a0], %[A], %[Wr], %[a0]\n\t"
                     "pkhbt %[A], %[B], %[A]\n\t"
                     "smladx %[a1], %[A], %[Wr], %[a1]\n\t"
                     "smlabb %[a0], %[B], %[Wu], %[a0]\n\t"
                     "smlatb %[a1], %[B], %[Wu], %[a1]\n\t"
                     "strd %[a0], %[a1], [%[o]], #8\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [A] "=&r"(A), [B] "=&r"(B), [a0] "=&r"(a0), [a1] "=&r"(a1), [q] "+r"(r), [o] "+r"(acc), [n] "+r"(pairs)
                     : [W0] "r"(W0), [W1] "r"(W1), [Wr] "r"(Wr), [Wt] "r"(Wt), [Wu] "r"(Wu)
                     : "cc", "memory");
}
#if DW_ROW != 192
#error "dw_row_pairs / dw_gather_pairs: padded rows are 384 bytes apart, planes 96"
#endif

/* y = clamp(RDBPOT(SRDHM(acc, m), e) + output_offset) for one output (see the top of this file) */
static inline __attribute__((always_inline)) int8_t requant1(int32_t acc2, int32_t m, int32_t e, int32_t base, int32_t amin)
{
    int32_t y, ra = base + (acc2 >> 31);
    __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(acc2), "r"(m), "r"(ra));
    y = __ssat(y >> e, 8);
    return (int8_t)(y < amin ? amin : y);
}

/* one output row of one channel from its accumulators, two outputs per step: bias, SMMLAR with the
 * rounding term, then SSAT with the arithmetic shift by e folded in (an immediate, so one loop per e,
 * DW_REQ(e) below); the lower bound for both outputs with one SSUB16 + SEL */
#define DW_REQ(E)                                                                                          \
    case E:                                                                                                \
        __asm__ volatile("1:\n\t"                                                                          \
                         "ldrd %[y0], %[y1], [%[a]], #8\n\t"                                               \
                         "add %[y0], %[y0], %[b2]\n\t"                                                     \
                         "add %[y1], %[y1], %[b2]\n\t"                                                     \
                         "add %[t], %[base], %[y0], asr #31\n\t"                                           \
                         "smmlar %[y0], %[y0], %[m], %[t]\n\t"                                             \
                         "add %[t], %[base], %[y1], asr #31\n\t"                                           \
                         "smmlar %[y1], %[y1], %[m], %[t]\n\t"                                             \
                         "ssat %[y0], #8, %[y0], asr #" #E "\n\t"                                          \
                         "ssat %[y1], #8, %[y1], asr #" #E "\n\t"                                          \
                         "pkhbt %[y0], %[y0], %[y1], lsl #16\n\t"                                          \
                         "ssub16 %[t], %[y0], %[mn]\n\t"                                                   \
                         "sel %[y0], %[y0], %[mn]\n\t"                                                     \
                         "strb %[y0], [%[o]]\n\t"                                                          \
                         "lsrs %[y0], %[y0], #16\n\t"                                                      \
                         "strb %[y0], [%[o], %[C]]\n\t"                                                    \
                         "add %[o], %[o], %[C], lsl #1\n\t"                                                \
                         "subs %[n], %[n], #1\n\t"                                                         \
                         "bne 1b\n\t"                                                                      \
                         : [y0] "=&r"(y0), [y1] "=&r"(y1), [t] "=&r"(t), [a] "+r"(acc), [o] "+r"(o), [n] "+r"(pairs) \
                         : [C] "r"(C), [b2] "r"(b2), [m] "r"(m), [base] "r"(base), [mn] "r"(amin2)      \
                         : "cc", "memory");                                                                \
        break;
static void dw_requant_pairs(const int32_t *acc, int8_t *o, int32_t C, int32_t pairs, int32_t b2, int32_t m, int32_t e,
                             int32_t base, uint32_t amin2)
{
    int32_t y0, y1, t;
    switch (e) {   /* 1..21 (kws_conv_opt_supported) */
        DW_REQ(1) DW_REQ(2) DW_REQ(3) DW_REQ(4) DW_REQ(5) DW_REQ(6) DW_REQ(7) DW_REQ(8) DW_REQ(9) DW_REQ(10)
        DW_REQ(11) DW_REQ(12) DW_REQ(13) DW_REQ(14) DW_REQ(15) DW_REQ(16) DW_REQ(17) DW_REQ(18) DW_REQ(19)
        DW_REQ(20) DW_REQ(21)
        default: break;
    }
}
#undef DW_REQ

/* two pixels of four channels per step into the planes: LDR of each pixel's 4 bytes, SXTAB16 (x + input
 * offset, ROR 8 for the odd channels), PKHBT / PKHTB into one word per plane (the two pixels' values) */
static inline __attribute__((always_inline)) void dw_gather_pairs(const int8_t *src, int32_t C, int16_t *d, int32_t n,
                                                                 uint32_t off2)
{
    uint32_t va, vb, ha, hb, t;
    __asm__ volatile("1:\n\t"
                     "ldr %[va], [%[s]]\n\t"
                     "ldr %[vb], [%[s], %[C]]\n\t"
                     "add %[s], %[s], %[C], lsl #1\n\t"
                     "sxtab16 %[ha], %[off], %[va], ror #8\n\t"
                     "sxtab16 %[va], %[off], %[va]\n\t"
                     "sxtab16 %[hb], %[off], %[vb], ror #8\n\t"
                     "sxtab16 %[vb], %[off], %[vb]\n\t"
                     "pkhbt %[t], %[ha], %[hb], lsl #16\n\t"
                     "str %[t], [%[d], #96]\n\t"
                     "pkhtb %[t], %[hb], %[ha], asr #16\n\t"
                     "str %[t], [%[d], #288]\n\t"
                     "pkhtb %[t], %[vb], %[va], asr #16\n\t"
                     "str %[t], [%[d], #192]\n\t"
                     "pkhbt %[t], %[va], %[vb], lsl #16\n\t"
                     "str %[t], [%[d]], #4\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [va] "=&r"(va), [vb] "=&r"(vb), [ha] "=&r"(ha), [hb] "=&r"(hb), [t] "=&r"(t), [s] "+r"(src),
                       [d] "+r"(d), [n] "+r"(n)
                     : [C] "r"(C), [off] "r"(off2)
                     : "cc", "memory");
}

static void dw_dsp(const kws_conv_params *p, void *scratch, const int8_t *input, const int8_t *filter,
                   const int32_t *bias, int8_t *output)
{
    const int32_t C = p->in_c, OH = p->out_h, OW = p->out_w, IH = p->in_h, IW = p->in_w;
    const int32_t rows = OH + 2;
    int16_t *pl = scratch;
    int32_t *acc = (int32_t *)(void *)(pl + rows * DW_ROW);   /* one output row of accumulators */
    const uint32_t off2 = (uint32_t)(uint16_t)p->act.input_offset * 0x10001u;
    const int32_t zp = p->act.output_offset;
    const uint32_t amin2 = (uint32_t)(uint16_t)p->act.act_min * 0x10001u;
    /* padded columns pc = ix + pad_w in [0, OW + 2): the input columns that land there */
    const int32_t ix_hi = IW < OW + 2 - p->pad_w ? IW : OW + 2 - p->pad_w;
    const int32_t pairs = OW / 2;
    memset(pl, 0, (size_t)rows * DW_ROW * sizeof(int16_t));   /* the borders stay 0 */
    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *in_b = input + (size_t)n * IH * IW * C;
        int8_t *out_b = output + (size_t)n * OH * OW * C;
        for (int32_t c0 = 0; c0 < C; c0 += DW_CH) {
            /* four channels into their planes: x + input_offset as int16 */
            for (int32_t pr = 0; pr < rows; pr++) {
                const int32_t iy = pr - p->pad_h;
                if (iy < 0 || iy >= IH) continue;
                const int8_t *src = in_b + (size_t)iy * IW * C + c0;
                int16_t *d0 = pl + pr * DW_ROW + p->pad_w;
                const int32_t np = ix_hi / 2, ix = 2 * np;
                if (np) dw_gather_pairs(src, C, d0, np, off2);
                src += (size_t)ix * C;
                if (ix < ix_hi) {
                    uint32_t v;
                    memcpy(&v, src, 4);
                    const uint32_t lo = __sxtab16(off2, v), hi = sxtab16_ror8(off2, v);
                    d0[ix] = (int16_t)lo; d0[ix + 2 * DW_RS] = (int16_t)(lo >> 16);
                    d0[ix + DW_RS] = (int16_t)hi; d0[ix + 3 * DW_RS] = (int16_t)(hi >> 16);
                }
            }
            for (int32_t j = 0; j < DW_CH; j++) {
                const int32_t c = c0 + j;
                const int16_t *P = pl + j * DW_RS;
                const int8_t *w = filter + c;
#define W2(ky, kx) (2 * (int32_t)w[((ky) * 3 + (kx)) * C])
                const uint32_t W0 = pack16(W2(0, 0), W2(0, 1)), W1 = pack16(W2(1, 0), W2(1, 1)),
                               Wr = pack16(W2(2, 0), W2(2, 1)), Wt = pack16(W2(0, 2), W2(1, 2)),
                               Wu = pack16(W2(2, 2), 0);
#undef W2
                const int32_t b2 = bias ? 2 * bias[c] : 0, m = p->multiplier[c], e = -p->shift[c];
                const int32_t base = (1 << (e - 1)) + zp * (1 << e);
                for (int32_t oy = 0; oy < OH; oy++) {
                    const int16_t *r = P + oy * DW_ROW;
                    if (pairs) dw_row_pairs(r, acc, pairs, W0, W1, Wr, Wt, Wu);
                    if (OW & 1) {   /* odd width: the last output alone */
                        const u32a *q = (const u32a *)(r + 2 * pairs);
                        int32_t a0 = __smlad(q[0], W0, 0);
                        a0 = __smlabb(q[1], Wt, a0);
                        a0 = __smlad(q[DW_ROW / 2], W1, a0);
                        a0 = __smlabt(q[DW_ROW / 2 + 1], Wt, a0);
                        a0 = __smlad(q[DW_ROW], Wr, a0);
                        a0 = __smlabb(q[DW_ROW + 1], Wu, a0);
                        acc[OW - 1] = a0;
                    }
                    int8_t *o = out_b + (size_t)oy * OW * C + c;
                    if (pairs) dw_requant_pairs(acc, o, C, pairs, b2, m, e, base, amin2);
                    if (OW & 1) o[(OW - 1) * C] = requant1(acc[OW - 1] + b2, m, e, base, p->act.act_min);
                }
            }
        }
    }
}
#endif

void kws_conv_opt(const kws_conv_params *p, int depthwise, const kws_conv_opt_ctx *ctx, const int8_t *input,
                  const int8_t *filter, const int32_t *bias, int8_t *output)
{
#if KWS_CONV_DSP
    if (depthwise) dw_dsp(p, ctx->scratch, input, filter, bias, output);
    else conv_fc(p, ctx, input, filter, bias, output);
#else
    (void)depthwise;
    conv_fc(p, ctx, input, filter, bias, output);   /* never reached: kws_conv_opt_supported() says no */
#endif
}
