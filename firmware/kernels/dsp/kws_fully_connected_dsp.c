/* kws_fully_connected_dsp: FULLY_CONNECTED for Cortex-M cores with the DSP extension (M4, M7,
 * M33...): int8 activations x 1..8-bit weights, bit-exact with kws_fully_connected_s8/_sub8.
 *
 *   k = 8, layout 0 (plain int8): activations widened once per layer to int16 pairs in SXTB16
 *          order (x0,x2)(x1,x3); weights sign-extended by SXTB16 / SXTB16 ROR 8; two SMLAD per
 *          four weights, four rows per pass.
 *   k = 2..7, layout 2: activations widened once per layer to int16 pairs (x0,x1); one 32-bit
 *          load of weights and one AND (shifted operand) fill both 16-bit lanes of an SMLAD with
 *          biased unsigned fields u = w + 2^(k-1); the bias is removed with one sum of the
 *          activations per layer: sum x*w = sum x*u - 2^(k-1) * sum x. Four rows per pass.
 *   k = 1, layout 2: activations x' = x + 128 (uint8) reordered once per layer so that the
 *          byte-wise UADD8 t,t,t (GE = bit 7 of each byte, then t <<= 1) selects four of them
 *          with SEL, summed by USADA8: T = sum x' where bit = 1, sum x'*w = 2T - sum x'.
 * The input offset enters through the prepare-time row sums: sum (x+off)*w = sum x*w + off*sum w.
 * See docs/kernels.md. */
#include <string.h>
#include <arm_acle.h>
#include "kws_kernels_opt.h"

#if !defined(__ARM_FEATURE_DSP)
#error "kws_fully_connected_dsp needs the Arm DSP extension (e.g. -mcpu=cortex-m4)"
#endif

#define INLINE static inline __attribute__((always_inline))

const char kws_fc_opt_isa[] = "dsp";
const int kws_fc_opt_per_tensor = 1;

/* what this kernel runs and prefers: kws_layout_table.h (from tflm_port/layout_table.py, the
 * converter's --target table): int8 row-major, layout 2 for 1..7 bits */
int kws_fc_opt_supported(int32_t bits, int32_t layout) { return kws_isa_supports(KWS_ISA_DSP, bits, layout); }

int32_t kws_fc_opt_preferred_layout(int32_t bits) { return kws_isa_preferred(KWS_ISA_DSP, bits); }

/* scratch: the widened / reordered activations, then the int32 sums of the layer's outputs, which
 * requant_layer turns into int8 at the end of the layer */
static inline size_t xs_bytes(int32_t in_n) { return 2u * (((size_t)in_n + 31u) & ~(size_t)31u) + 16u; }

size_t kws_fc_opt_scratch_bytes(const kws_fc_params *p)
{
    return xs_bytes(p->in_features) + 4u * (size_t)p->out_features;
}

static inline int32_t *acc_buf(const kws_fc_opt_ctx *ctx, int32_t in_n)
{
    return (int32_t *)(void *)((uint8_t *)ctx->scratch + xs_bytes(in_n));
}

/* one output: the int32 sum a (mod 2^32) times the multiplier mul at shift sh, plus the output offset,
 * clamped to [lo, hi] (full: the usual [-128, 127], one SSAT); kws_fc_opt_requant's arithmetic,
 * bit-exact with the reference, shared by requant_layer_rows and requant_loop */
INLINE int8_t requant_one(uint32_t a, int32_t mul, int32_t sh, int32_t ooff, int32_t lo, int32_t hi, const int full)
{
    const int32_t left = sh & ~(sh >> 31), right = left - sh;       /* shift = left - right, one of them 0 */
    /* SaturatingRoundingDoublingHighMul = floor((x*m + 2^30) / 2^31): one SMLAL onto 2^30 */
    uint32_t l32 = 1u << 30;
    int32_t h32 = 0;
    __asm__("smlal %[l], %[h], %[a], %[m]" : [l] "+r"(l32), [h] "+r"(h32) : [a] "r"(a << left), [m] "r"(mul));
    const int32_t h = (int32_t)((l32 >> 31) | ((uint32_t)h32 << 1));
    /* rounding divide by 2^right, half away from zero (kws_rounding_divide_by_pot) */
    const uint32_t mask = ~(0xFFFFFFFFu << right);
    const uint32_t thr = (mask >> 1) + ((uint32_t)h >> 31);
    int32_t v = (h >> right) + (((uint32_t)h & mask) > thr) + ooff;
    if (full) {
        v = __ssat(v, 8);
    } else {
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
    }
    return (int8_t)v;
}

/* y[o] = requant(acc[o] + off * row_sums[o] + bias[o]), one pass over the layer with everything in
 * registers; the arithmetic is kws_fc_opt_requant's (bit-exact with the reference), the rounding
 * divide written with a 32-bit mask */
/* full, pt (constants after inlining): full = the usual [-128, 127] clamp (one SSAT); pt = one
 * multiplier/shift for every row (p->per_tensor), read once */
KWS_NO_VECTORIZE
INLINE void requant_layer_rows(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int32_t *bias, const int32_t *acc,
                               int32_t off, int8_t *y, const int full, const int pt)
{
    const int32_t n = p->out_features, ooff = p->act.output_offset, lo = p->act.act_min, hi = p->act.act_max;
    const int32_t *rs = ctx->row_sums, *mp = p->multiplier, *sp = p->shift, *ap = acc, *bp = bias;
    const int32_t m0 = mp[0], sh0 = sp[0];
    int8_t *yp = y, *const end = y + n;
    while (yp < end) {
        uint32_t a = (uint32_t)*ap++ + (uint32_t)off * (uint32_t)*rs++;
        if (bp) a += (uint32_t)*bp++;
        const int32_t sh = pt ? sh0 : *sp++;
        const int32_t mul = pt ? m0 : *mp++;
        *yp++ = requant_one(a, mul, sh, ooff, lo, hi, full);
    }
}

KWS_NO_VECTORIZE
static void requant_layer(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int32_t *bias, const int32_t *acc,
                          int32_t off, int8_t *y)
{
    const int full = p->act.act_min == -128 && p->act.act_max == 127;   /* the usual range: one SSAT clamps */
    if (p->per_tensor) {
        if (full) requant_layer_rows(p, ctx, bias, acc, off, y, 1, 1);
        else requant_layer_rows(p, ctx, bias, acc, off, y, 0, 1);
    } else if (full) requant_layer_rows(p, ctx, bias, acc, off, y, 1, 0);
    else requant_layer_rows(p, ctx, bias, acc, off, y, 0, 0);
}

#define SUM(o, a, corr) acc[o] = (int32_t)((uint32_t)(a) + (uint32_t)(corr))

INLINE uint32_t ror32(uint32_t v, unsigned r) { return (v >> r) | (v << (32u - r)); }
#define __ror ror32

INLINE uint32_t load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* LDR, unaligned allowed on ARMv7E-M */
    return v;
}

INLINE int32_t finish(int32_t acc, int32_t corr, const int32_t *bias, const kws_fc_opt_ctx *ctx, int32_t off, int32_t o)
{
    uint32_t a = (uint32_t)acc + (uint32_t)corr + (uint32_t)off * (uint32_t)ctx->row_sums[o];
    if (bias) a += (uint32_t)bias[o];
    return (int32_t)a;
}

/* ---------------- k = 8, plain int8 weights ---------------- */

KWS_NO_VECTORIZE
static void fc_s8(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const int8_t *w,
                  const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t n4 = in_n >> 2;
    uint32_t *xs = ctx->scratch;
    int32_t *acc = acc_buf(ctx, in_n);
    int32_t g = 0;
    if (n4 >= 2) {   /* 8 inputs per step: LDR (x may be unaligned), SXTB16 / SXTB16 ror 8, STRD */
        const int8_t *xp = x;
        uint32_t *op = xs, v0, v1, e, od;
        int32_t cnt = n4 >> 1;
        g = cnt << 1;
#define SX(V) "sxtb16 %[e], " V "\n\tsxtb16 %[od], " V ", ror #8\n\tstrd %[e], %[od], [%[op]], #8\n\t"
        __asm__ volatile("1:\n\tldr %[v0], [%[xp]], #4\n\tldr %[v1], [%[xp]], #4\n\t" SX("%[v0]") SX("%[v1]")
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [xp] "+r"(xp), [op] "+r"(op), [cnt] "+r"(cnt), [v0] "=&r"(v0), [v1] "=&r"(v1), [e] "=&r"(e),
                           [od] "=&r"(od)
                         :
                         : "cc", "memory");
#undef SX
    }
    for (; g < n4; g++) {
        uint32_t v = load32(x + 4 * g);
        xs[2 * g] = __sxtb16(v);
        xs[2 * g + 1] = __sxtb16(__ror(v, 8));
    }
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const int8_t *w0 = w + (size_t)o * in_n, *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n;
        const uint32_t *xp = xs;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (n4 > 0) {
            uint32_t xa, xb, v, t;
            int32_t cnt = n4 >> 2;
#define S8_ROW(A, P) "ldr %[v], [%[" P "]], #4\n\tsxtb16 %[t], %[v]\n\tsmlad %[" A "], %[t], %[xa], %[" A "]\n\t" \
                     "sxtb16 %[t], %[v], ror #8\n\tsmlad %[" A "], %[t], %[xb], %[" A "]\n\t"
#define S8_COL "ldrd %[xa], %[xb], [%[xp]], #8\n\t" S8_ROW("a0", "w0") S8_ROW("a1", "w1") S8_ROW("a2", "w2") S8_ROW("a3", "w3")
            /* four columns of 4 inputs per iteration (n4 % 4 single columns first) */
            for (int32_t r = n4 & 3; r > 0; r--) __asm__ volatile(S8_COL
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
                               [w2] "+r"(w2), [w3] "+r"(w3), [xp] "+r"(xp), [xa] "=&r"(xa), [xb] "=&r"(xb),
                               [v] "=&r"(v), [t] "=&r"(t)
                             :
                             : "memory");
            if (cnt > 0) __asm__ volatile("1:\n\t"
                             S8_COL S8_COL S8_COL S8_COL
                             "subs %[cnt], %[cnt], #1\n\t"
                             "bne 1b\n\t"
                             : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w0] "+r"(w0), [w1] "+r"(w1),
                               [w2] "+r"(w2), [w3] "+r"(w3), [xp] "+r"(xp), [cnt] "+r"(cnt), [xa] "=&r"(xa), [xb] "=&r"(xb),
                               [v] "=&r"(v), [t] "=&r"(t)
                             :
                             : "cc", "memory");
#undef S8_ROW
#undef S8_COL
        }
        for (int32_t i = n4 * 4; i < in_n; i++) {
            int32_t xi = x[i];
            a0 += xi * *w0++; a1 += xi * *w1++; a2 += xi * *w2++; a3 += xi * *w3++;
        }
        SUM(o, a0, 0);
        SUM(o + 1, a1, 0);
        SUM(o + 2, a2, 0);
        SUM(o + 3, a3, 0);
    }
    for (; o < out_n; o++) {
        const int8_t *w0 = w + (size_t)o * in_n;
        const uint32_t *xp = xs;
        int32_t a0 = 0;
        for (int32_t c = 0; c < n4; c++, xp += 2, w0 += 4) {
            uint32_t v = load32(w0);
            a0 = __smlad(__sxtb16(v), xp[0], a0);
            a0 = __smlad(__sxtb16(__ror(v, 8)), xp[1], a0);
        }
        for (int32_t i = n4 * 4; i < in_n; i++) a0 += (int32_t)x[i] * *w0++;
        SUM(o, a0, 0);
    }
    requant_layer(p, ctx, bias, acc, off, y);
}

/* ---------------- k = 2..7, layout 2: biased fields in 16-bit lanes ---------------- */

/* x -> int16 in natural order, zero padded to whole words of weights; returns sum x */
KWS_NO_VECTORIZE
static int32_t widen16(const int8_t *x, int32_t in_n, int32_t padded, int16_t *xs)
{
    int32_t s = 0, i = 0;
    if (in_n >= 8) {   /* 8 inputs per step: SXTB16 (ror 8), PKHBT/PKHTB to natural pairs, STRD, SMLAD sums */
        const int8_t *xp = x;
        int16_t *op = xs;
        int32_t cnt = in_n >> 3;
        uint32_t v0, v1, e, od, lo, hi;
        const uint32_t ones = 0x00010001u;
        i = cnt << 3;
#define WID(V) "sxtb16 %[e], " V "\n\tsxtb16 %[od], " V ", ror #8\n\t"                                       \
    "pkhbt %[lo], %[e], %[od], lsl #16\n\tpkhtb %[hi], %[od], %[e], asr #16\n\t"                             \
    "smlad %[s], %[e], %[one], %[s]\n\tsmlad %[s], %[od], %[one], %[s]\n\tstrd %[lo], %[hi], [%[op]], #8\n\t"
        /* x may be unaligned (batches of odd sizes): LDR, not LDRD; xs is 16-byte aligned scratch */
        __asm__ volatile("1:\n\tldr %[v0], [%[xp]], #4\n\tldr %[v1], [%[xp]], #4\n\t" WID("%[v0]") WID("%[v1]")
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [xp] "+r"(xp), [op] "+r"(op), [cnt] "+r"(cnt), [s] "+r"(s), [v0] "=&r"(v0), [v1] "=&r"(v1),
                           [e] "=&r"(e), [od] "=&r"(od), [lo] "=&r"(lo), [hi] "=&r"(hi)
                         : [one] "r"(ones)
                         : "cc", "memory");
#undef WID
    }
    for (; i + 4 <= in_n; i += 4) {
        uint32_t v = load32(x + i);
        uint32_t e = __sxtb16(v), od = __sxtb16(__ror(v, 8));    /* (x0,x2) (x1,x3) */
        uint32_t lo = (e & 0xFFFFu) | (od << 16), hi = (od & 0xFFFF0000u) | (e >> 16); /* (x0,x1) (x2,x3) */
        memcpy(xs + i, &lo, 4);
        memcpy(xs + i + 2, &hi, 4);
        s = __smlad(e, 0x00010001, s);
        s = __smlad(od, 0x00010001, s);
    }
    for (; i < in_n; i++) { xs[i] = x[i]; s += x[i]; }
    for (; i < padded; i++) xs[i] = 0;
    return s;
}

/* one 32-bit word of fields against the F activation pairs x0..x7 (terms j >= F vanish at compile time) */
#define LT(acc, v, j) if ((j) < F) acc = __smlad(((v) >> (K * (j))) & M, x##j, acc)
#define LANE_MAC(acc, v)                                                                  \
    do { LT(acc, v, 0); LT(acc, v, 1); LT(acc, v, 2); LT(acc, v, 3);                      \
         LT(acc, v, 4); LT(acc, v, 5); LT(acc, v, 6); LT(acc, v, 7); } while (0)
#define LX(j) if ((j) < F) x##j = xp[j]

/* The column loop of a full group of four rows, in assembly so that every field costs exactly
 * one AND (mask register, shifted operand) and one SMLAD: GCC otherwise splits the AND into a
 * shift plus an immediate AND and spills. */
#define F0(A, X) "and %[t], %[m], %[w]\n\tsmlad %[" A "], %[t], %[" X "], %[" A "]\n\t"
#define FS(A, X, S) "and %[t], %[m], %[w], lsr #" S "\n\tsmlad %[" A "], %[t], %[" X "], %[" A "]\n\t"
#define LDW "ldr %[w], [%[wp]], #4\n\t"
#define LDWO(O) "ldr %[w], [%[wp], #" O "]\n\t"
#define ROW4(A) LDW F0(A, "x0") FS(A, "x1", "4") FS(A, "x2", "8") FS(A, "x3", "12")
#define ROW5(A) LDW F0(A, "x0") FS(A, "x1", "5") FS(A, "x2", "10")
#define ROW2L(A, O) LDWO(O) F0(A, "x0") FS(A, "x1", "2") FS(A, "x2", "4") FS(A, "x3", "6")
#define ROW2H(A, O) LDWO(O) FS(A, "x0", "8") FS(A, "x1", "10") FS(A, "x2", "12") FS(A, "x3", "14")
#define LANES_OPS : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(wp), \
                    [cnt] "+r"(cnt), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(w), \
                    [t] "=&r"(t) : [m] "r"(M) : "cc", "memory"

INLINE void lanes_asm(const int32_t K, int32_t cnt, const uint32_t *xp, const uint32_t *wp, uint32_t M,
                      int32_t *pa0, int32_t *pa1, int32_t *pa2, int32_t *pa3)
{
    int32_t a0 = *pa0, a1 = *pa1, a2 = *pa2, a3 = *pa3;
    uint32_t x0, x1, x2, x3, w, t;
#define COL4 "ldrd %[x0], %[x1], [%[xp]], #8\n\tldrd %[x2], %[x3], [%[xp]], #8\n\t" ROW4("a0") ROW4("a1") ROW4("a2") ROW4("a3")
#define COL5 "ldrd %[x0], %[x1], [%[xp]], #8\n\tldr %[x2], [%[xp]], #4\n\t" ROW5("a0") ROW5("a1") ROW5("a2") ROW5("a3")
#define COL2 "ldrd %[x0], %[x1], [%[xp]], #8\n\tldrd %[x2], %[x3], [%[xp]], #8\n\t"                   \
             ROW2L("a0", "0") ROW2L("a1", "4") ROW2L("a2", "8") ROW2L("a3", "12")                     \
             "ldrd %[x0], %[x1], [%[xp]], #8\n\tldrd %[x2], %[x3], [%[xp]], #8\n\t"                   \
             ROW2H("a0", "0") ROW2H("a1", "4") ROW2H("a2", "8") ROW2H("a3", "12") "adds %[wp], %[wp], #16\n\t"
    /* four columns per iteration; the remaining columns one by one first */
    const int32_t U = 4;
    int32_t rest = cnt % U;
    cnt /= U;
    if (K == 4) {
        for (; rest > 0; rest--) __asm__ volatile(COL4 LANES_OPS);
        if (cnt) __asm__ volatile("1:\n\t" COL4 COL4 COL4 COL4 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" LANES_OPS);
    } else if (K == 5) {
        for (; rest > 0; rest--) __asm__ volatile(COL5 LANES_OPS);
        if (cnt) __asm__ volatile("1:\n\t" COL5 COL5 COL5 COL5 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" LANES_OPS);
    } else {
        for (; rest > 0; rest--) __asm__ volatile(COL2 LANES_OPS);
        if (cnt) __asm__ volatile("1:\n\t" COL2 COL2 COL2 COL2 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" LANES_OPS);
    }
#undef COL4
#undef COL5
#undef COL2
    (void)x3;
    *pa0 = a0; *pa1 = a1; *pa2 = a2; *pa3 = a3;
}

INLINE void fc_lanes_k(const int32_t K, const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x,
                       const uint32_t *w, const int32_t *bias, int8_t *y)
{
    const int32_t F = 16 / K, per = 2 * F;
    uint32_t M = ((1u << K) - 1u) * 0x00010001u;
    __asm__("" : "+r"(M)); /* keep the mask in a register: AND Rd, Rmask, Rw, LSR #s is one instruction */
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t W = (in_n + per - 1) / per;
    int16_t *xs = ctx->scratch;
    const int32_t sx = widen16(x, in_n, W * per, xs);
    const int32_t corr = -(int32_t)((uint32_t)sx << (K - 1));
    int32_t *acc = acc_buf(ctx, in_n);
    uint32_t x0 = 0, x1 = 0, x2 = 0, x3 = 0, x4 = 0, x5 = 0, x6 = 0, x7 = 0;
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (K == 4 || K == 5 || K == 2) {
            if (W > 0) lanes_asm(K, W, xp, w, M, &a0, &a1, &a2, &a3);
            w += 4 * W;
        } else {
            for (int32_t c = 0; c < W; c++) {
                LX(0); LX(1); LX(2); LX(3); LX(4); LX(5); LX(6); LX(7);
                xp += F;
                uint32_t v0 = w[0], v1 = w[1], v2 = w[2], v3 = w[3];
                w += 4;
                LANE_MAC(a0, v0);
                LANE_MAC(a1, v1);
                LANE_MAC(a2, v2);
                LANE_MAC(a3, v3);
            }
        }
        SUM(o, a0, corr);
        SUM(o + 1, a1, corr);
        SUM(o + 2, a2, corr);
        SUM(o + 3, a3, corr);
    }
    /* last group of G < 4 rows: its words are interleaved G-wise */
    const int32_t G = out_n - o;
    for (int32_t r = 0; r < G; r++) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        const uint32_t *wr = w + r;
        int32_t a = 0;
        for (int32_t c = 0; c < W; c++, xp += F, wr += G) {
            LX(0); LX(1); LX(2); LX(3); LX(4); LX(5); LX(6); LX(7);
            LANE_MAC(a, *wr);
        }
        SUM(o + r, a, corr);
    }
    requant_layer(p, ctx, bias, acc, off, y);
}

KWS_NO_VECTORIZE static void fc_k2(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(2, p, c, x, w, b, y); }
KWS_NO_VECTORIZE static void fc_k3(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(3, p, c, x, w, b, y); }
KWS_NO_VECTORIZE static void fc_k4(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(4, p, c, x, w, b, y); }
KWS_NO_VECTORIZE static void fc_k5(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(5, p, c, x, w, b, y); }
KWS_NO_VECTORIZE static void fc_k6(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(6, p, c, x, w, b, y); }
KWS_NO_VECTORIZE static void fc_k7(const kws_fc_params *p, const kws_fc_opt_ctx *c, const int8_t *x, const uint32_t *w, const int32_t *b, int8_t *y) { fc_lanes_k(7, p, c, x, w, b, y); }

/* ---------------- k = 1, layout 2: UADD8 / SEL / USADA8 ---------------- */

/* x' = x + 128 as bytes in natural order, zero padded to whole columns; returns sum x' */
KWS_NO_VECTORIZE
static int32_t bias_bytes(const int8_t *x, int32_t in_n, int32_t W, uint8_t *xs)
{
    uint32_t s = 0;
    int32_t i = 0;
    for (; i + 4 <= in_n; i += 4) {
        uint32_t v = load32(x + i) ^ 0x80808080u;
        memcpy(xs + i, &v, 4);
        s = __usada8(v, 0, s);
    }
    for (; i < in_n; i++) { xs[i] = (uint8_t)(x[i] + 128); s += xs[i]; }
    for (; i < W * 32; i++) xs[i] = 0;
    return (int32_t)s;
}

/* one column (32 inputs) of a group of four rows */
#define BIT_STEP                                                              \
    "ldr   %[xv], [%[xp]], #4\n\t"                                           \
    "uadd8 %[t0], %[t0], %[t0]\n\tsel %[s], %[xv], %[z]\n\tusada8 %[a0], %[s], %[z], %[a0]\n\t" \
    "uadd8 %[t1], %[t1], %[t1]\n\tsel %[s], %[xv], %[z]\n\tusada8 %[a1], %[s], %[z], %[a1]\n\t" \
    "uadd8 %[t2], %[t2], %[t2]\n\tsel %[s], %[xv], %[z]\n\tusada8 %[a2], %[s], %[z], %[a2]\n\t" \
    "uadd8 %[t3], %[t3], %[t3]\n\tsel %[s], %[xv], %[z]\n\tusada8 %[a3], %[s], %[z], %[a3]\n\t"

KWS_NO_VECTORIZE
static void fc_k1(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint32_t *w,
                  const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t W = (in_n + 31) >> 5;
    uint8_t *xs = ctx->scratch;
    const int32_t sx = bias_bytes(x, in_n, W, xs);
    /* sum (x+off)*w = 2T - sum x' + (off - 128) * sum w */
    const int32_t corr = -sx, off2 = off - 128;
    int32_t *acc = acc_buf(ctx, in_n);
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        /* W >= 1 always (in_features >= 1) */
        uint32_t t0, t1, t2, t3, xv, sv, z = 0;
        int32_t cnt = W;
        __asm__ volatile("1:\n\t"
                         "ldr %[t0], [%[wp]], #4\n\tldr %[t1], [%[wp]], #4\n\t"
                         "ldr %[t2], [%[wp]], #4\n\tldr %[t3], [%[wp]], #4\n\t"
                         BIT_STEP BIT_STEP BIT_STEP BIT_STEP BIT_STEP BIT_STEP BIT_STEP BIT_STEP
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [a0] "+r"(a0), [a1] "+r"(a1),
                           [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(w), [cnt] "+r"(cnt),
                           [xv] "=&r"(xv), [s] "=&r"(sv), [z] "+r"(z) /* in-out: never shares a0's zero */
                         :
                         : "cc", "memory");
        SUM(o, (int32_t)(2 * a0), corr);
        SUM(o + 1, (int32_t)(2 * a1), corr);
        SUM(o + 2, (int32_t)(2 * a2), corr);
        SUM(o + 3, (int32_t)(2 * a3), corr);
    }
    const int32_t G = out_n - o;
    for (int32_t r = 0; r < G; r++) {
        uint32_t a = 0;
        for (int32_t c = 0; c < W; c++) {
            uint32_t t = w[c * G + r];
            for (int32_t i = 0; i < 32; i++)
                if ((t >> (8 * (i & 3) + 7 - (i >> 2))) & 1u) a += xs[32 * c + i];
        }
        SUM(o + r, (int32_t)(2 * a), corr);
    }
    requant_layer(p, ctx, bias, acc, off2, y);
}

/* ---------------- layout 8 (lanes16): k = 4, 2, 1 ---------------- */

/* The layout-8 kernels store complete sums (offset * row sum and bias included) so that the requant
 * loop keeps everything in registers: acc -> int8, the arithmetic of requant_layer. */
INLINE void requant_loop(const kws_fc_params *p, const int32_t *acc, int8_t *y, const int full, const int pt)
{
    const int32_t ooff = p->act.output_offset, lo = p->act.act_min, hi = p->act.act_max;
    const int32_t *mp = p->multiplier, *sp = p->shift, *ap = acc;
    const int32_t m0 = mp[0], sh0 = sp[0];
    int8_t *yp = y, *const end = y + p->out_features;
    while (yp < end) {
        const int32_t sh = pt ? sh0 : *sp++;
        const int32_t mul = pt ? m0 : *mp++;
        *yp++ = requant_one((uint32_t)*ap++, mul, sh, ooff, lo, hi, full);
    }
}

KWS_NO_VECTORIZE
static void requant_sums(const kws_fc_params *p, const int32_t *acc, int8_t *y)
{
    const int full = p->act.act_min == -128 && p->act.act_max == 127;
    if (p->per_tensor) { if (full) requant_loop(p, acc, y, 1, 1); else requant_loop(p, acc, y, 0, 1); }
    else if (full) requant_loop(p, acc, y, 1, 0);
    else requant_loop(p, acc, y, 0, 0);
}

/* acc[o] = sum + corr + off * row_sums[o] + bias[o] (mod 2^32) */
#define DONE(o, a, corr) acc[o] = (int32_t)((uint32_t)(a) + (uint32_t)(corr) + (uint32_t)off * (uint32_t)rs[o] \
                                            + (bias ? (uint32_t)bias[o] : 0u))

/* Weights are read two words at a time: LDRD where the packed matrix is word aligned (the runtime's
 * flatbuffer buffers are), two LDRs otherwise (LDRD faults on unaligned addresses). */
#define LDW2_AL "ldrd %[wa], %[wb], [%[wp]], #8\n\t"
#define LDW2_UN "ldr %[wa], [%[wp]], #4\n\tldr %[wb], [%[wp]], #4\n\t"

/* k = 4: a lane is L = u0 + 16 u1 + 256 u2 + 4096 w3 (one input, the group's four rows). Per word
 * (2 inputs x 4 rows) four sums: the word itself (a0 = sum x L), its high bytes (SXTB16 ror 8:
 * a1 = sum x (u2 + 16 w3)) and two nibbles (AND with 0x000F000F: a2 = sum x u0; the same after LSR 8:
 * a3 = sum x u2). Rows: u0 = a2, u2 = a3, w3 = (a1 - a3) / 16, u1 = (a0 - 256 a1 - a2) / 16, each exact
 * in 32 bits: 7 instructions per 8 MACs, one activation pair per word. */
#define Q4(W, X) "smlad %[a0], %[" W "], %[" X "], %[a0]\n\t"                                  \
    "sxtb16 %[t], %[" W "], ror #8\n\tsmlad %[a1], %[t], %[" X "], %[a1]\n\t"                 \
    "and %[t], %[m], %[" W "]\n\tsmlad %[a2], %[t], %[" X "], %[a2]\n\t"                       \
    "and %[t], %[m], %[" W "], lsr #8\n\tsmlad %[a3], %[t], %[" X "], %[a3]\n\t"
#define U4(LD) "ldrd %[x0], %[x1], [%[xp]], #8\n\t" LD Q4("wa", "x0") Q4("wb", "x1")
#define Q4_OPS : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [xp] "+r"(xp), [wp] "+r"(wp),  \
                 [cnt] "+r"(cnt), [x0] "=&r"(x0), [x1] "=&r"(x1), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t) \
               : [m] "r"(m) : "cc", "memory"
#define LOOP4(LD) __asm__ volatile("1:\n\t" U4(LD) U4(LD) U4(LD) U4(LD) "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" Q4_OPS)

/* the four rows of a group from its four sums (see above) */
#define ROWS4(a0, a1, a2, a3, r0, r1, r2, r3)                                                       \
    do {                                                                                           \
        r0 += (uint32_t)a2;                                                                        \
        r1 += (uint32_t)((int32_t)((uint32_t)a0 - ((uint32_t)a1 << 8) - (uint32_t)a2) >> 4);      \
        r2 += (uint32_t)a3;                                                                        \
        r3 += (uint32_t)((int32_t)((uint32_t)a1 - (uint32_t)a3) >> 4);                            \
    } while (0)

/* rows o..o+3 (those below out_n) into acc */
#define STORE4(r0, r1, r2, r3, c0, c1, c2, c3)                                                      \
    do {                                                                                           \
        if (o + 4 <= out_n) {                                                                      \
            DONE(o, r0, c0); DONE(o + 1, r1, c1); DONE(o + 2, r2, c2); DONE(o + 3, r3, c3);        \
        } else {                                                                                   \
            const uint32_t r_[4] = {r0, r1, r2, r3}, c_[4] = {c0, c1, c2, c3};                      \
            for (int32_t q = 0; o + q < out_n; q++) DONE(o + q, r_[q], c_[q]);                     \
        }                                                                                          \
    } while (0)

KWS_NO_VECTORIZE
static void fc_l8_k4(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint32_t *w,
                     const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t U = (in_n + 15) >> 4;  /* units of 16 inputs (8 words per group) */
    int16_t *xs = ctx->scratch;
    const int32_t sx = widen16(x, in_n, 16 * U, xs);
    const uint32_t corr = -((uint32_t)sx << 3);
    int32_t *acc = acc_buf(ctx, in_n);
    const int32_t *rs = ctx->row_sums;
    const int aligned = ((uintptr_t)w & 3u) == 0;
    uint32_t m = 0x000F000Fu;
    __asm__("" : "+r"(m));
    const uint32_t *wp = w;
    for (int32_t o = 0; o < out_n; o += 4) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        uint32_t r0 = 0, r1 = 0, r2 = 0, r3 = 0;
        /* blocks of <= 2048 units keep 16 * (row sum) inside 32 bits, so the divisions by 16 are exact */
        int32_t c = U;
        do {
            int32_t cnt = c < 2048 ? c : 2048;
            c -= cnt;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            uint32_t x0, x1, wa, wb, t;
            if (aligned) LOOP4(LDW2_AL);
            else LOOP4(LDW2_UN);
            ROWS4(a0, a1, a2, a3, r0, r1, r2, r3);
        } while (c > 0);
        STORE4(r0, r1, r2, r3, corr, corr, corr, 0u);
    }
    requant_sums(p, acc, y);
}

/* k = 2: a lane holds one input of a row pair, the bottom row biased (u = w + 2) at bits 0-1 and the top
 * row at bits 14-15, so AND with 0xC003C003 rotated right by s (the word's e-th input pair, s = 2 + 4e)
 * makes an SMLAD operand worth 4 MACs: sum x * (u + 16384 w_top). Every 16 inputs the bottom field
 * (|sum| < 2^13) moves out (SBFX, ADD, SUB); the top field stays scaled by 2^14 for <= 256 inputs.
 * Two row pairs per pass share the activation loads: 46 instructions per 64 MACs. */
#define E2(W, X, S, A) "and %[t], %[m], %[" W "], ror #" S "\n\tsmlad %[" A "], %[t], %[" X "], %[" A "]\n\t"
#define HALF2 "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                   \
    E2("wa", "x0", "2", "aa") E2("wb", "x0", "2", "ab") E2("wa", "x1", "6", "aa") E2("wb", "x1", "6", "ab") \
    "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                                                   \
    E2("wa", "x0", "10", "aa") E2("wb", "x0", "10", "ab") E2("wa", "x1", "14", "aa") E2("wb", "x1", "14", "ab")
#define MOVE2 "sbfx %[t], %[aa], #0, #14\n\tadd %[la], %[la], %[t]\n\tsub %[aa], %[aa], %[t]\n\t" \
              "sbfx %[t], %[ab], #0, #14\n\tadd %[lb], %[lb], %[t]\n\tsub %[ab], %[ab], %[t]\n\t"
#define LANE_OPS(A, B, LA, LB) : [aa] "+r"(A), [ab] "+r"(B), [la] "+r"(LA), [lb] "+r"(LB), [xp] "+r"(xp), \
                 [wp] "+r"(wp), [cnt] "+r"(cnt), [x0] "=&r"(x0), [x1] "=&r"(x1), [wa] "=&r"(wa), [wb] "=&r"(wb), \
                 [t] "=&r"(t) : [m] "r"(m) : "cc", "memory"
#define LOOP2(LD) __asm__ volatile("1:\n\t" LD HALF2 LD HALF2 MOVE2 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" \
                                   LANE_OPS(aa, ab, la, lb))

KWS_NO_VECTORIZE
static void fc_l8_k2(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint32_t *w,
                     const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t C = (in_n + 15) >> 4;  /* chunks of 16 inputs (4 words per group) */
    int16_t *xs = ctx->scratch;
    const int32_t sx = widen16(x, in_n, 16 * C, xs);
    const int32_t corr = -(int32_t)((uint32_t)sx << 1);
    int32_t *acc = acc_buf(ctx, in_n);
    const int32_t *rs = ctx->row_sums;
    const int aligned = ((uintptr_t)w & 3u) == 0;
    uint32_t m = 0xC003C003u;
    __asm__("" : "+r"(m));
    const uint32_t *wp = w;
    for (int32_t o = 0; o < out_n; o += 4) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        int32_t la = 0, lb = 0;
        uint32_t ha = 0, hb = 0;
        for (int32_t c = C; c > 0;) {
            int32_t cnt = c < 16 ? c : 16;
            c -= cnt;
            int32_t aa = 0, ab = 0;
            uint32_t x0, x1, wa, wb, t;
            if (aligned) LOOP2(LDW2_AL);
            else LOOP2(LDW2_UN);
            ha += (uint32_t)(aa >> 14);
            hb += (uint32_t)(ab >> 14);
        }
        STORE4((uint32_t)la, ha, (uint32_t)lb, hb, (uint32_t)corr, 0u, (uint32_t)corr, 0u);
    }
    requant_sums(p, acc, y);
}

/* k = 1: bottom row's bit at bit 0 of a lane, top row's at bit 15 (the sign: lane = b - 32768 b_top);
 * AND with 0x80018001 rotated right by s = 2e + 1 and one SMLAD per 4 MACs. The bottom sum (|.| <= 2^14
 * for 128 inputs) and the top one are split every 128 inputs. sum x*w = 2 sum x*b - sum x. */
#define Q1(S0, S1) "ldrd %[x0], %[x1], [%[xp]], #8\n\t"                                             \
    E2("wa", "x0", S0, "aa") E2("wb", "x0", S0, "ab") E2("wa", "x1", S1, "aa") E2("wb", "x1", S1, "ab")
#define HALF1 Q1("1", "3") Q1("5", "7") Q1("9", "11") Q1("13", "15")
#define LOOP1(LD) __asm__ volatile("1:\n\t" LD HALF1 LD HALF1 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t" \
                                   LANE_OPS(aa, ab, la, lb))

KWS_NO_VECTORIZE
static void fc_l8_k1(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, const int8_t *x, const uint32_t *w,
                     const int32_t *bias, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, off = p->act.input_offset;
    const int32_t U = (in_n + 31) >> 5;  /* units of 32 inputs (4 words per group) */
    int16_t *xs = ctx->scratch;
    const int32_t sx = widen16(x, in_n, 32 * U, xs);
    int32_t *acc = acc_buf(ctx, in_n);
    const int32_t *rs = ctx->row_sums;
    const int aligned = ((uintptr_t)w & 3u) == 0;
    uint32_t m = 0x80018001u;
    __asm__("" : "+r"(m));
    const uint32_t *wp = w;
    for (int32_t o = 0; o < out_n; o += 4) {
        const uint32_t *xp = (const uint32_t *)(const void *)xs;
        uint32_t sa = 0, sb = 0, ta = 0, tb = 0;
        for (int32_t c = U; c > 0;) {
            int32_t cnt = c < 4 ? c : 4;
            c -= cnt;
            int32_t aa = 0, ab = 0, la = 0, lb = 0;   /* la, lb unused here */
            uint32_t x0, x1, wa, wb, t;
            if (aligned) LOOP1(LDW2_AL);
            else LOOP1(LDW2_UN);
            /* aa = L - 32768 H with -2^14 <= L < 2^14 */
            const int32_t loa = (int32_t)((uint32_t)aa << 17) >> 17, lob = (int32_t)((uint32_t)ab << 17) >> 17;
            sa += (uint32_t)loa;
            sb += (uint32_t)lob;
            ta += (uint32_t)((int32_t)((uint32_t)loa - (uint32_t)aa) >> 15);
            tb += (uint32_t)((int32_t)((uint32_t)lob - (uint32_t)ab) >> 15);
            (void)la; (void)lb;
        }
        const uint32_t c1 = -(uint32_t)sx;
        STORE4(2u * sa, 2u * ta, 2u * sb, 2u * tb, c1, c1, c1, c1);
    }
    requant_sums(p, acc, y);
}

void kws_fully_connected_opt(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, int32_t batches,
                             const int8_t *input, const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const uint32_t *w32 = (const uint32_t *)(const void *)weights;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * p->in_features;
        int8_t *y = output + (size_t)b * p->out_features;
        if (p->layout == KWS_LAYOUT_LANES16) {
            if (p->bits == 4) fc_l8_k4(p, ctx, x, w32, bias, y);
            else if (p->bits == 2) fc_l8_k2(p, ctx, x, w32, bias, y);
            else if (p->bits == 1) fc_l8_k1(p, ctx, x, w32, bias, y);
            continue;
        }
        switch (p->layout == KWS_LAYOUT_ROW_LSB ? 8 : p->bits) {
        case 8: fc_s8(p, ctx, x, (const int8_t *)weights, bias, y); break;
        case 1: fc_k1(p, ctx, x, w32, bias, y); break;
        case 2: fc_k2(p, ctx, x, w32, bias, y); break;
        case 3: fc_k3(p, ctx, x, w32, bias, y); break;
        case 4: fc_k4(p, ctx, x, w32, bias, y); break;
        case 5: fc_k5(p, ctx, x, w32, bias, y); break;
        case 6: fc_k6(p, ctx, x, w32, bias, y); break;
        case 7: fc_k7(p, ctx, x, w32, bias, y); break;
        default: break;
        }
    }
}
