/* kws_fully_connected_a4_dsp: SUB8_FC_A4 with 4-bit activations on the Cortex-M DSP extension, and
 * layout 7 (a4_pairs) that it reads. docs/kernels.md "4-bit activations" has the design and figures.
 *
 * Layout 7 packs two output rows (r0 = 2p, r1 = 2p + 1) and four inputs (4c .. 4c+3) per 32-bit word,
 * each 16-bit lane holding one input's pair of weights at bits 0-3 (r0, biased u = w + 8) and 12-15
 * (r1, two's complement) once the word is masked with 0xF00FF00F (inputs 4c, 4c+1) or rotated by 8
 * and masked (inputs 4c+2, 4c+3):
 *
 *   nibble:  n0      n1        n2      n3        n4        n5        n6        n7
 *   holds:   u(r0,0) t(r1,3)   u(r0,2) t(r1,0)   u(r0,1)   t(r1,2)   u(r0,3)   t(r1,1)
 *
 * A lane read as int16 is u + 4096 * w1, so one SMLAD against the activation pair (16 x0, 16 x1) (the
 * activations are stored times 16, once per layer) adds 16 (x0*u0 + x1*u1) to the low 16 bits and
 * x0*w1 + x1*w1' to the top 16: four multiply-accumulates per SMLAD, two instructions (AND, SMLAD) per
 * four MACs. That needs activations below 16: with x <= 15 and u <= 15 each product is <= 225, so 16 of
 * them (four words, a block) stay below 65536 / 16. Each block starts its accumulator with SMUAD and
 * ends by moving both fields out: UXTAH (low halfword into l), ADD ..., ASR #16 (top half into h), exact
 * (the low field is never negative). Row r0 = l / 16 - 8 * sum x, row r1 = h. The assembly loop (two
 * blocks per iteration) stops at a sentinel activation word after the blocks; the last W % 4 words'
 * activations follow it.
 * Words of pairs 2g and 2g+1 are interleaved (four rows per pass); an odd last pair stands alone. */
#include <string.h>
#include "kws_fc_a4.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define SMLAD(a, b, c) ((int32_t)__smlad((a), (b), (c)))
#define ROR8(v) (((v) >> 8) | ((v) << 24))
#else   /* host build (tests): the same arithmetic in plain C */
static inline int32_t smlad_c(uint32_t a, uint32_t b, int32_t c)
{
    return (int32_t)((uint32_t)c + (uint32_t)((int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu))
                     + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16)));
}
#define SMLAD(a, b, c) smlad_c((a), (b), (c))
#define ROR8(v) (((v) >> 8) | ((v) << 24))
#endif

#define LANE_MASK 0xF00FF00Fu
#define FLUSH_WORDS 4   /* 16 products of <= 16 * 225 per 16-bit low field: < 65536 */

/* nibble position (0..7) of input j (0..3) of a word: row r0 fields, row r1 fields */
static const uint8_t POS_R0[4] = {0, 4, 2, 6};
static const uint8_t POS_R1[4] = {3, 7, 5, 1};

static inline int32_t words_per_pair(int32_t in_n) { return (in_n + 3) / 4; }

int64_t kws_fc_a4_packed_bytes(int32_t out_n, int32_t in_n)
{
    return 4 * (int64_t)words_per_pair(in_n) * (int64_t)((out_n + 1) / 2);
}

/* byte offset of word c of pair p */
static size_t word_offset(int32_t out_n, int32_t in_n, int32_t p, int32_t c)
{
    const size_t W = (size_t)words_per_pair(in_n);
    const int32_t pairs = (out_n + 1) / 2, g = p / 2;
    const size_t base = (size_t)g * 2u * W * 4u;
    if (2 * g + 1 < pairs) return base + ((size_t)c * 2u + (size_t)(p & 1)) * 4u;   /* two pairs interleaved */
    return base + (size_t)c * 4u;                                                   /* odd last pair */
}

void kws_fc_a4_pack_pairs(int32_t out_n, int32_t in_n, const int8_t *w, uint8_t *packed)
{
    memset(packed, 0, (size_t)kws_fc_a4_packed_bytes(out_n, in_n));
    const int32_t pairs = (out_n + 1) / 2, W = words_per_pair(in_n);
    for (int32_t p = 0; p < pairs; p++)
        for (int32_t c = 0; c < W; c++) {
            uint32_t v = 0;
            for (int32_t j = 0; j < 4; j++) {
                const int32_t i = 4 * c + j;
                if (i >= in_n) continue;
                v |= (uint32_t)(w[(size_t)(2 * p) * in_n + i] + 8) << (4 * POS_R0[j]);
                if (2 * p + 1 < out_n) v |= ((uint32_t)w[(size_t)(2 * p + 1) * in_n + i] & 15u) << (4 * POS_R1[j]);
            }
            uint8_t *d = packed + word_offset(out_n, in_n, p, c);
            d[0] = (uint8_t)v; d[1] = (uint8_t)(v >> 8); d[2] = (uint8_t)(v >> 16); d[3] = (uint8_t)(v >> 24);
        }
}

int32_t kws_fc_a4_weight(int32_t out_n, int32_t in_n, const uint8_t *packed, int32_t o, int32_t i)
{
    const uint8_t *d = packed + word_offset(out_n, in_n, o / 2, i / 4);
    const uint32_t v = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    if (o % 2 == 0) return (int32_t)((v >> (4 * POS_R0[i % 4])) & 15u) - 8;
    const int32_t t = (int32_t)((v >> (4 * POS_R1[i % 4])) & 15u);
    return t >= 8 ? t - 16 : t;
}

/* the activation pairs (8 bytes a word of weights) and the DSP loop's sentinel pair (8 of the 16 spare) */
size_t kws_fc_a4_scratch_bytes(int32_t in_n)
{
    return 4u * 2u * (size_t)words_per_pair(in_n) + 16u;
}

int kws_fc_a4_dsp_supported(const kws_fc_a4_params *p)
{
    return p->fc.layout == KWS_LAYOUT_A4_PAIRS && p->fc.bits >= 2 && p->fc.bits <= 4 && p->input_bits <= 4
        && p->fc.act.input_offset == 0 && p->fc.in_features >= 1 && p->fc.in_features <= KWS_FC_A4_MAX_IN;
}

/* The requantization of kws_fc_opt_requant (the reference's arithmetic for multipliers >= 0) before the
 * output offset and clamp. With h = floor((a*m + 2^30) / 2^31) and r = -shift, the reference gives
 * v = floor((h + 2^(r-1) - [h < 0]) / 2^r) (its rounding divide, ties away from zero). For r >= 2 that is
 * one 64-bit sum: v = (floor(Z / 2^32) + 2^(r-2)) >> (r-1) = ((floor(Z / 2^32) >> (r-2)) + 1) >> 1 with
 * Z = a*m + 2^30 - [a < 0] * 2^31 (nested floors; [a < 0] may stand for [h < 0]: where they differ h = 0
 * and the sum gives 0 too), so one SMLAL onto
a constant made from the sign of a, one add and one shift. Shifts >= -1 take the reference's path. */
__attribute__((noinline)) static int32_t rq_slow(int32_t a, int32_t m, int32_t sh)
{
    int32_t right = 0;
    if (sh > 0) a = (int32_t)((uint32_t)a << sh); else right = -sh;
    int32_t h = (int32_t)(((int64_t)a * m + (1LL << 30)) >> 31);
    if (right > 0) {
        const int32_t mask = (int32_t)((1LL << right) - 1), rem = h & mask;
        h = (h >> right) + (rem > (mask >> 1) + (h < 0) ? 1 : 0);
    }
    return h;
}

static inline __attribute__((always_inline)) int32_t rq(int32_t a, int32_t m, int32_t sh)
{
    const int32_t q = ~sh - 1;   /* r - 2 */
    if (__builtin_expect(q < 0, 0)) return rq_slow(a, m, sh);
    uint32_t lo = 0x40000000u ^ ((uint32_t)a & 0x80000000u);
    int32_t hi = a >> 31;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    __asm__("smlal %[l], %[h], %[a], %[m]" : [l] "+r"(lo), [h] "+r"(hi) : [a] "r"(a), [m] "r"(m));
#else
    hi = (int32_t)((uint64_t)((int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)a * m) >> 32);
#endif
    return ((hi >> q) + 1) >> 1;
}

/* output clamp: CL_FULL [-128, 127] (SSAT), CL_U4 [0, 15] (USAT), CL_ANY [act_min, act_max] */
enum { CL_ANY, CL_FULL, CL_U4 };
static inline __attribute__((always_inline)) int8_t clamp_out(int32_t v, int32_t lo, int32_t hi, const int kind)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (kind == CL_FULL) return (int8_t)__ssat(v, 8);
    if (kind == CL_U4) return (int8_t)__usat(v, 4);
#endif
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

/* one output: sum v (mod 2^32) plus bias, requantized, offset, clamped */
#define OUT1(k, v)                                                                                    \
    y[o + (k)] = clamp_out(rq(bias ? (int32_t)((uint32_t)(v) + (uint32_t)bias[o + (k)]) : (v), mp[k], sp[k]) \
                           + ooff, lo, hi, kind)

/* the rows o..o+3 of one pass (their sums r0..r3 before bias), those below out_n */
static inline __attribute__((always_inline)) void store4(const kws_fc_params *f, const int32_t *bias, int32_t o,
                                                         int32_t out_n, int32_t r0, int32_t r1, int32_t r2,
                                                         int32_t r3, int8_t *y, const int kind)
{
    const int32_t ooff = f->act.output_offset, lo = f->act.act_min, hi = f->act.act_max;
    const int32_t *mp = f->multiplier + o, *sp = f->shift + o;
    const int32_t n = out_n - o;
    if (n >= 4) {
        OUT1(0, r0); OUT1(1, r1); OUT1(2, r2); OUT1(3, r3);
    } else {
        OUT1(0, r0);
        if (n > 1) OUT1(1, r1);
        if (n > 2) OUT1(2, r2);
    }
}

#define STORE4(r0, r1, r2, r3)                                                                         \
    do {                                                                                               \
        if (kind == CL_U4) store4(f, bias, o, out_n, r0, r1, r2, r3, y, CL_U4);                        \
        else if (kind == CL_FULL) store4(f, bias, o, out_n, r0, r1, r2, r3, y, CL_FULL);               \
        else store4(f, bias, o, out_n, r0, r1, r2, r3, y, CL_ANY);                                     \
    } while (0)

#define STEP(acc, w, xa, xb)                                   \
    do {                                                       \
        acc = SMLAD((w) & LANE_MASK, (xa), acc);               \
        acc = SMLAD(ROR8(w) & LANE_MASK, (xb), acc);           \
    } while (0)
/* a block's fields out: the low one (16 x row r0's sum) into l, the top one (row r1's sum) into h */
#define MOVE_OUT(acc, l, h) do { l += (acc) & 0xFFFF; h += (acc) >> 16; acc = 0; } while (0)

/* One word of both pairs: LDRD weights, AND + SMLAD per lane pair (SMUAD: a block's first word starts
 * its accumulators), then LDRD of the next word's activations. A block (4 words) ends by moving its
 * fields out: UXTAH adds the low halfword to l, ADD ..., ASR #16 the top one to h. */
#define A4_WORD(OP0, ACC0, OP1, ACC1) "ldrd %[w0], %[w1], [%[wp]], #8\n\t"                               \
    "and %[t], %[m], %[w0]\n\t" OP0 " %[a0], %[t], %[xa]" ACC0 "\n\t"                                      \
    "and %[t], %[m], %[w0], ror #8\n\tsmlad %[a0], %[t], %[xb], %[a0]\n\t"                                 \
    "and %[t], %[m], %[w1]\n\t" OP1 " %[a1], %[t], %[xa]" ACC1 "\n\t"                                      \
    "and %[t], %[m], %[w1], ror #8\n\tsmlad %[a1], %[t], %[xb], %[a1]\n\t"                                 \
    "ldrd %[xa], %[xb], [%[xp]], #8\n\t"
#define A4_FIRST A4_WORD("smuad", "", "smuad", "")
#define A4_NEXT A4_WORD("smlad", ", %[a0]", "smlad", ", %[a1]")
#define A4_BLOCK A4_FIRST A4_NEXT A4_NEXT A4_NEXT                                                          \
    "uxtah %[l0], %[l0], %[a0]\n\tadd %[h0], %[h0], %[a0], asr #16\n\t"                                    \
    "uxtah %[l1], %[l1], %[a1]\n\tadd %[h1], %[h1], %[a1], asr #16\n\t"
#define SENTINEL 0xFFFFFFFFu   /* no activation word: lanes hold 16 x <= 240 */

KWS_NO_VECTORIZE
void kws_fully_connected_a4_dsp(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const kws_fc_params *f = &p->fc;
    const int32_t in_n = f->in_features, out_n = f->out_features, W = words_per_pair(in_n);
    const int32_t pairs = (out_n + 1) / 2, NB = W / FLUSH_WORDS, WB = NB * FLUSH_WORDS;
    const int kind = f->act.act_min == -128 && f->act.act_max == 127 ? CL_FULL
                   : f->act.act_min == 0 && f->act.act_max == 15 ? CL_U4 : CL_ANY;
    /* scratch: the activation pairs of the WB words in blocks, one sentinel pair (the assembly loop's end),
     * then those of the last W - WB < 4 words */
    uint32_t *xs = scratch, *xt = xs + 2 * WB + 2;
    xs[2 * WB] = SENTINEL;
    xs[2 * WB + 1] = 0;
    uint32_t mask = LANE_MASK;
    __asm__("" : "+r"(mask));   /* a register operand: AND Rd, Rmask, Rw, ROR #8 is one instruction */
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * (size_t)in_n;
        int8_t *y = output + (size_t)b * (size_t)out_n;
        /* activations -> int16 pairs (16 x0, 16 x1) (16 x2, 16 x3) per word of weights, once per layer */
        int32_t sx = 0, c0 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        int32_t n8 = 2 * NB < in_n / 8 ? 2 * NB : in_n / 8;
        if (n8 > 0) {   /* the blocks' inputs, 8 per step (LDR: x may be unaligned): LSL #4 (x <= 15 stays in
                           its byte), UXTB16 (x0, x2), (x1, x3), PKHBT / PKHTB to (x0, x1), (x2, x3); USADA8 sums */
            const int8_t *xp = x;
            uint32_t *dp = xs, u, v, e, od, zero;
            c0 = 2 * n8;
            __asm__ volatile("mov %[z], #0\n1:\n\tldr %[u], [%[xp]], #4\n\tldr %[v], [%[xp]], #4\n\t"
                             "usada8 %[sx], %[u], %[z], %[sx]\n\tusada8 %[sx], %[v], %[z], %[sx]\n\t"
                             "lsl %[u], %[u], #4\n\tlsl %[v], %[v], #4\n\t"
                             "uxtb16 %[e], %[u]\n\tuxtb16 %[o], %[u], ror #8\n\t"
                             "pkhbt %[u], %[e], %[o], lsl #16\n\tpkhtb %[o], %[o], %[e], asr #16\n\t"
                             "strd %[u], %[o], [%[dp]], #8\n\t"
                             "uxtb16 %[e], %[v]\n\tuxtb16 %[o], %[v], ror #8\n\t"
                             "pkhbt %[v], %[e], %[o], lsl #16\n\tpkhtb %[o], %[o], %[e], asr #16\n\t"
                             "strd %[v], %[o], [%[dp]], #8\n\t"
                             "subs %[n], %[n], #1\n\tbne 1b\n\t"
                             : [sx] "+r"(sx), [xp] "+r"(xp), [dp] "+r"(dp), [n] "+r"(n8), [u] "=&r"(u), [v] "=&r"(v),
                               [e] "=&r"(e), [o] "=&r"(od), [z] "=&r"(zero)
                             :
                             : "cc", "memory");
        }
#endif
        for (int32_t c = c0; c < W; c++) {
            uint32_t v[4];
            for (int32_t j = 0; j < 4; j++) {
                const int32_t i = 4 * c + j;
                v[j] = i < in_n ? (uint32_t)(uint8_t)x[i] : 0u;
                sx += (int32_t)v[j];
            }
            uint32_t *d = c < WB ? xs + 2 * c : xt + 2 * (c - WB);
            d[0] = (v[0] | v[1] << 16) << 4;
            d[1] = (v[2] | v[3] << 16) << 4;
        }
        /* row r0 = (its low-field total) / 16 - 8 sum x; row r1 = its top-field total */
        const int32_t corr = -8 * sx;
        const uint32_t *wp = (const uint32_t *)(const void *)weights;
        int32_t pr = 0;
        for (; pr + 2 <= pairs; pr += 2) {   /* four rows: two interleaved pairs */
            int32_t a0 = 0, a1 = 0, l0 = 0, l1 = 0, h0 = 0, h1 = 0;
            if (NB > 0) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
                /* two blocks per iteration until the sentinel; an odd NB enters at the second block */
                const uint32_t *xp = xs;
                uint32_t xa, xb, w0, w1, t = (uint32_t)NB & 1u;
                __asm__ volatile("ldrd %[xa], %[xb], [%[xp]], #8\n\tcmp %[t], #0\n\tbne 2f\n\t"
                                 "1:\n\t" A4_BLOCK "2:\n\t" A4_BLOCK
                                 "cmn %[xa], #1\n\tbne 1b\n\t"
                                 : [a0] "=&r"(a0), [a1] "=&r"(a1), [l0] "+r"(l0), [l1] "+r"(l1), [h0] "+r"(h0),
                                   [h1] "+r"(h1), [xp] "+r"(xp), [wp] "+r"(wp), [xa] "=&r"(xa), [xb] "=&r"(xb),
                                   [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "+r"(t)
                                 : [m] "r"(mask)
                                 : "cc", "memory");
                a0 = a1 = 0;
#else
                const uint32_t *xp = xs;
                for (int32_t c = 0; c < WB; c++) {
                    const uint32_t xa = xp[0], xb = xp[1], w0 = wp[0], w1 = wp[1];
                    xp += 2;
                    wp += 2;
                    STEP(a0, w0, xa, xb);
                    STEP(a1, w1, xa, xb);
                    if (c % FLUSH_WORDS == FLUSH_WORDS - 1) {
                        MOVE_OUT(a0, l0, h0);
                        MOVE_OUT(a1, l1, h1);
                    }
                }
#endif
            }
            for (const uint32_t *xp = xt; xp < xt + 2 * (W - WB); xp += 2) {   /* < 4 words: 12 products a field */
                const uint32_t w0 = wp[0], w1 = wp[1];
                wp += 2;
                STEP(a0, w0, xp[0], xp[1]);
                STEP(a1, w1, xp[0], xp[1]);
            }
            MOVE_OUT(a0, l0, h0);
            MOVE_OUT(a1, l1, h1);
            const int32_t o = 2 * pr;
            STORE4((l0 >> 4) + corr, h0, (l1 >> 4) + corr, h1);
        }
        if (pr < pairs) {   /* odd last pair */
            int32_t a0 = 0, l0 = 0, h0 = 0;
            for (int32_t c = 0; c < W; c++) {
                const uint32_t *xp = c < WB ? xs + 2 * c : xt + 2 * (c - WB);
                STEP(a0, wp[0], xp[0], xp[1]);
                wp += 1;
                if (c % FLUSH_WORDS == FLUSH_WORDS - 1) MOVE_OUT(a0, l0, h0);
            }
            MOVE_OUT(a0, l0, h0);
            const int32_t o = 2 * pr;
            STORE4((l0 >> 4) + corr, h0, 0, 0);
        }
    }
}

#if !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)) && !defined(__aarch64__)
/* the build's A4 kernel (kws_fc_a4.h) on Cortex-M DSP cores and on the host: this one, layout 7.
 * Helium and AArch64 images link their own (kernels/mve, kernels/neon: layout 6). */
const int kws_fc_a4_opt_isa = KWS_ISA_DSP;

int kws_fc_a4_opt_supported(const kws_fc_a4_params *p) { return kws_fc_a4_dsp_supported(p); }

size_t kws_fc_a4_opt_scratch_bytes(const kws_fc_a4_params *p) { return kws_fc_a4_scratch_bytes(p->fc.in_features); }

void kws_fully_connected_a4_opt(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    kws_fully_connected_a4_dsp(p, scratch, batches, input, weights, bias, output);
}
#endif
