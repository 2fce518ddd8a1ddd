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
 * A lane read as int16 is u + 4096 * w1, so one SMLAD against the activation pair (x0, x1) adds
 * x0*u0 + x1*u1 to the low 12 bits and x0*w1 + x1*w1' to the bits above: four multiply-accumulates
 * per SMLAD, two instructions (AND, SMLAD) per four MACs. That needs activations below 16: with
 * x <= 15 and u <= 15 each product is <= 225, so 16 of them (four words) stay below 4096 before the
 * low field is moved out (AND #0xFFF, add, subtract: exact, the field is never negative).
 * Row r0 = sum x*u - 8 * sum x, row r1 = (acc - low) / 4096 (exact arithmetic shift).
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
#define FLUSH_WORDS 4   /* 16 products of <= 225 per low field: < 4096 */

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

size_t kws_fc_a4_scratch_bytes(int32_t in_n)
{
    return 4u * 2u * (size_t)words_per_pair(in_n) + 16u;
}

int kws_fc_a4_dsp_supported(const kws_fc_a4_params *p)
{
    return p->fc.layout == KWS_LAYOUT_A4_PAIRS && p->fc.bits >= 2 && p->fc.bits <= 4 && p->input_bits <= 4
        && p->fc.act.input_offset == 0 && p->fc.in_features >= 1 && p->fc.in_features <= KWS_FC_A4_MAX_IN;
}

/* kws_fc_opt_requant's arithmetic (the reference requantization) with the left and right shifts apart,
 * so that each output pays one SMLAL and the rounding divide only where the shift is negative */
static inline int8_t requant(int32_t a, int32_t m, int32_t sh, const kws_act_params *act)
{
    int32_t right = 0;
    if (sh > 0) a = (int32_t)((uint32_t)a << sh); else right = -sh;
    int32_t h = (int32_t)(((int64_t)a * m + (1LL << 30)) >> 31);
    if (right > 0) {
        const int32_t mask = (int32_t)((1LL << right) - 1), rem = h & mask;
        h = (h >> right) + (rem > (mask >> 1) + (h < 0) ? 1 : 0);
    }
    h += act->output_offset;
    return (int8_t)(h < act->act_min ? act->act_min : h > act->act_max ? act->act_max : h);
}

/* one output pair's result: r0 from its low-field total, r1 from the accumulator */
static inline void finish(const kws_fc_params *f, const int32_t *bias, int32_t o, int32_t acc, int32_t lo,
                          int32_t corr, int8_t *y, int32_t out_n)
{
    const int32_t low = acc & 0xFFF;
    int32_t r0 = lo + low + corr, r1 = (acc - low) >> 12;
    if (bias) {
        r0 = (int32_t)((uint32_t)r0 + (uint32_t)bias[o]);
        if (o + 1 < out_n) r1 = (int32_t)((uint32_t)r1 + (uint32_t)bias[o + 1]);
    }
    y[o] = requant(r0, f->multiplier[o], f->shift[o], &f->act);
    if (o + 1 < out_n) y[o + 1] = requant(r1, f->multiplier[o + 1], f->shift[o + 1], &f->act);
}

#define STEP(acc, w, xa, xb)                                   \
    do {                                                       \
        acc = SMLAD((w) & LANE_MASK, (xa), acc);               \
        acc = SMLAD(ROR8(w) & LANE_MASK, (xb), acc);           \
    } while (0)
/* one word of both pairs: LDRD activations, LDRD weights, AND + SMLAD per lane pair */
#define A4_WORD "ldrd %[xa], %[xb], [%[xp]], #8\n\tldrd %[w0], %[w1], [%[wp]], #8\n\t"                     \
    "and %[t], %[m], %[w0]\n\tsmlad %[a0], %[t], %[xa], %[a0]\n\t"                                         \
    "and %[t], %[m], %[w0], ror #8\n\tsmlad %[a0], %[t], %[xb], %[a0]\n\t"                                 \
    "and %[t], %[m], %[w1]\n\tsmlad %[a1], %[t], %[xa], %[a1]\n\t"                                         \
    "and %[t], %[m], %[w1], ror #8\n\tsmlad %[a1], %[t], %[xb], %[a1]\n\t"
#define MOVE_LOW(acc, lo) do { int32_t f_ = (acc) & 0xFFF; lo += f_; acc -= f_; } while (0)

KWS_NO_VECTORIZE
void kws_fully_connected_a4_dsp(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output)
{
    const kws_fc_params *f = &p->fc;
    const int32_t in_n = f->in_features, out_n = f->out_features, W = words_per_pair(in_n);
    const int32_t pairs = (out_n + 1) / 2;
    uint32_t *xs = scratch;
    uint32_t mask = LANE_MASK;
    __asm__("" : "+r"(mask));   /* a register operand: AND Rd, Rmask, Rw, ROR #8 is one instruction */
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * (size_t)in_n;
        int8_t *y = output + (size_t)b * (size_t)out_n;
        /* activations -> int16 pairs (x0, x1) (x2, x3) per word of weights, once per layer */
        int32_t sx = 0, c0 = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        for (; c0 < in_n / 4; c0++) {   /* 4 inputs: UXTB16 (x0, x2), (x1, x3), PKHBT / PKHTB to (x0, x1), (x2, x3) */
            uint32_t v, e, od, lo, hi;
            memcpy(&v, x + 4 * c0, 4);
            __asm__("uxtb16 %[e], %[v]\n\tuxtb16 %[o], %[v], ror #8\n\t"
                    "pkhbt %[lo], %[e], %[o], lsl #16\n\tpkhtb %[hi], %[o], %[e], asr #16"
                    : [e] "=&r"(e), [o] "=&r"(od), [lo] "=&r"(lo), [hi] "=r"(hi) : [v] "r"(v));
            xs[2 * c0] = lo;
            xs[2 * c0 + 1] = hi;
            sx = (int32_t)__usada8(v, 0u, (uint32_t)sx);
        }
#endif
        for (int32_t c = c0; c < W; c++) {
            uint32_t v[4];
            for (int32_t j = 0; j < 4; j++) {
                const int32_t i = 4 * c + j;
                v[j] = i < in_n ? (uint32_t)(uint8_t)x[i] : 0u;
                sx += (int32_t)v[j];
            }
            xs[2 * c] = v[0] | v[1] << 16;
            xs[2 * c + 1] = v[2] | v[3] << 16;
        }
        const int32_t corr = -8 * sx;
        const uint32_t *wp = (const uint32_t *)(const void *)weights;
        int32_t pr = 0;
        for (; pr + 2 <= pairs; pr += 2) {   /* four rows: two interleaved pairs */
            int32_t a0 = 0, a1 = 0, l0 = 0, l1 = 0;
            const uint32_t *xp = xs;
            int32_t c = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
            if (W >= FLUSH_WORDS) {   /* the same steps in assembly: 46 instructions per 64 MACs + the loop */
                int32_t cnt = W / FLUSH_WORDS;
                uint32_t xa, xb, w0, w1, t;
                c = cnt * FLUSH_WORDS;
                __asm__ volatile("1:\n\t" A4_WORD A4_WORD A4_WORD A4_WORD
                                 "ubfx %[t], %[a0], #0, #12\n\tadd %[l0], %[l0], %[t]\n\tsub %[a0], %[a0], %[t]\n\t"
                                 "ubfx %[t], %[a1], #0, #12\n\tadd %[l1], %[l1], %[t]\n\tsub %[a1], %[a1], %[t]\n\t"
                                 "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                                 : [a0] "+r"(a0), [a1] "+r"(a1), [l0] "+r"(l0), [l1] "+r"(l1), [xp] "+r"(xp),
                                   [wp] "+r"(wp), [cnt] "+r"(cnt), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0),
                                   [w1] "=&r"(w1), [t] "=&r"(t)
                                 : [m] "r"(mask)
                                 : "cc", "memory");
            }
#endif
            for (; c + FLUSH_WORDS <= W; c += FLUSH_WORDS) {
                for (int32_t u = 0; u < FLUSH_WORDS; u++) {
                    const uint32_t xa = xp[0], xb = xp[1], w0 = wp[0], w1 = wp[1];
                    xp += 2;
                    wp += 2;
                    STEP(a0, w0, xa, xb);
                    STEP(a1, w1, xa, xb);
                }
                MOVE_LOW(a0, l0);
                MOVE_LOW(a1, l1);
            }
            for (; c < W; c++) {
                const uint32_t xa = xp[0], xb = xp[1], w0 = wp[0], w1 = wp[1];
                xp += 2;
                wp += 2;
                STEP(a0, w0, xa, xb);
                STEP(a1, w1, xa, xb);
            }
            finish(f, bias, 4 * (pr / 2), a0, l0, corr, y, out_n);
            finish(f, bias, 4 * (pr / 2) + 2, a1, l1, corr, y, out_n);
        }
        if (pr < pairs) {   /* odd last pair */
            int32_t a0 = 0, l0 = 0;
            const uint32_t *xp = xs;
            for (int32_t c = 0; c < W; c++) {
                STEP(a0, wp[0], xp[0], xp[1]);
                xp += 2;
                wp += 1;
                if ((c + 1) % FLUSH_WORDS == 0) MOVE_LOW(a0, l0);
            }
            finish(f, bias, 2 * pr, a0, l0, corr, y, out_n);
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
