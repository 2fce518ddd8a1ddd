/* kws_lstm_a4_dsp.c - SUB8_LSTM_A4 for Cortex-M cores with the DSP extension (M4, M7), byte-exact with
 * kernels/reference/kws_lstm_a4.c (docs/formats.md section 13, docs/kernels.md "w4a4 LSTM").
 *
 * 4-bit weights in layout 0 hold eight weights of one row per 32-bit word (nibble n = input n, two's
 * complement). Two dot-product paths, chosen per step and per operand from the values themselves:
 *
 * Small activations (every value of the widened operand in -8..8: the hidden state of a <= 4-bit LSTM, and
 * the input of a layer fed by one): two rows r0, r1 share every SMLAD. With A' = word(r0) ^ 0x88888888
 * (nibbles u = w + 8, 0..15) and B = word(r1), D = ror(B, 20) and E = (A' ^ D) & 0xF0F0F0F0 give
 * C0 = A' ^ E and C1 = D ^ E, two permutations of the sixteen nibbles in which C0 & M, ror(C0, 8) & M,
 * ror(C1, 4) & M and ror(C1, 12) & M (M = 0xF00FF00F) are, lane by lane, u(r0, i) + 4096 w(r1, i) for the
 * input pairs (0,4) (2,6) (1,5) (3,7): one SMLAD against (x_i, x_j) adds the r0 products to the low 12
 * bits and the r1 products, times 4096, above them. Five instructions build C0 / C1 per word pair, then
 * one AND (shifted operand) and one SMLAD per four MACs: 17 instructions per 16 MACs with the loads. Each
 * r0 product is at most 15 * 8 = 120 in magnitude, so the low field of 16 products stays in -2047..2047:
 * every two words SBFX takes it out exactly (add it to r0's total, subtract it from the accumulator).
 * r0 = (low total) - 8 sum x, r1 = accumulator / 4096 (exact shift). This is what 4-bit activations buy:
 * with 8-bit ones a single product would overflow the 12-bit field.
 *
 * Other operands (the 8-bit model input of the first layer): XOR 0x88888888 makes every nibble u = w + 8,
 * one AND / one shift-and-AND split even and odd nibbles and UXTB16 / UXTB16 ROR 8 widen them to int16 pairs
 * (u0,u4)(u2,u6)(u1,u5)(u3,u7); four SMLAD per row do eight MACs; sum (x - zp) (u - 8) = acc - 8 sum (x - zp).
 *
 * Both read the operand widened once per step to int16 pairs in that order. Gate levels, cell and hidden
 * update: the reference's arithmetic (kws_lstm_a4.h) with the rescales specialised for shifts below and
 * above 32 and the threshold searches of 4- and 8-bit operands unrolled.
 * Compiled into every build; the runtime picks it where it exists (__ARM_FEATURE_DSP) and the build's
 * optimized kernels are the DSP ones (kws_runner_ref.elf keeps the reference). */
#include <string.h>
#include "kws_kernels.h"
#include "kws_lstm_a4.h"

int kws_lstm_a4_dsp_supported(const kws_lstm_a4_params *p)
{
    return p->weight_bits == 4 && p->n_in % 8 == 0 && p->units % 8 == 0 && ((uintptr_t)p->w & 3) == 0 &&
           ((uintptr_t)p->r & 3) == 0;
}

size_t kws_lstm_a4_dsp_scratch_bytes(const kws_lstm_a4_params *p)
{
    return sizeof(int32_t) * (4u * (size_t)p->units + (size_t)p->n_in / 2u + (size_t)p->units / 2u);
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

int kws_lstm_a4_dsp_available(void) { return 1; }

static inline uint32_t pair(int32_t lo, int32_t hi) { return (uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16; }

/* v[n] + off -> per group of eight: (v0,v4)(v2,v6)(v1,v5)(v3,v7); *sum = sum of v + off; returns 1 when
 * every value lies in -8..8 (the pair path may run) */
static int widen8(const int8_t *v, int32_t n, int32_t off, uint32_t *out, int32_t *sum)
{
    int32_t s = 0;
    uint32_t big = 0;
    for (int32_t k = 0; k < n; k += 8, out += 4) {
        int32_t a[8];
        for (int i = 0; i < 8; i++) {
            a[i] = (int32_t)v[k + i] + off;
            s += a[i];
            big |= (uint32_t)(a[i] + 8) > 16u;
        }
        out[0] = pair(a[0], a[4]); out[1] = pair(a[2], a[6]); out[2] = pair(a[1], a[5]); out[3] = pair(a[3], a[7]);
    }
    *sum = s;
    return !big;
}

/* one row's word of eight 4-bit weights (nibbles u = w + 8 after the XOR) against the operand pairs x0..x3:
 * AND / LSR + AND split even and odd nibbles, UXTB16 / UXTB16 ROR 8 widen them, four SMLAD */
#define WIDE_WORD(acc, ld)                                                                               \
    ld "\n\teor %[w], %[w], #0x88888888\n\tand %[e], %[w], #0x0F0F0F0F\n\t"                              \
    "lsr %[w], %[w], #4\n\tand %[w], %[w], #0x0F0F0F0F\n\t"                                              \
    "uxtb16 %[t], %[e]\n\tsmlad %[" acc "], %[t], %[x0], %[" acc "]\n\t"                                 \
    "uxtb16 %[t], %[e], ror #8\n\tsmlad %[" acc "], %[t], %[x1], %[" acc "]\n\t"                         \
    "uxtb16 %[t], %[w]\n\tsmlad %[" acc "], %[t], %[x2], %[" acc "]\n\t"                                 \
    "uxtb16 %[t], %[w], ror #8\n\tsmlad %[" acc "], %[t], %[x3], %[" acc "]\n\t"

/* two rows per pass (row1 = row0 + off bytes), 8-bit operands: each input pair loaded once for both, two
 * LDRD per eight inputs; an assembly loop of 30 instructions per 16 MACs (not inlined: 13 registers) */
static __attribute__((noinline)) void dot4x2(const uint8_t *row0, int32_t off, const uint32_t *xp, int32_t words,
                                             int32_t *a0, int32_t *a1)
{
    int32_t s0 = 0, s1 = 0, cnt = words;
    const uint8_t *pa = row0;
    if (cnt > 0) {
        uint32_t x0, x1, x2, x3, w, e, t;
        __asm__ volatile("1:\n\t"
                         "ldrd %[x0], %[x1], [%[px]], #8\n\tldrd %[x2], %[x3], [%[px]], #8\n\t"
                         WIDE_WORD("s1", "ldr %[w], [%[pa], %[off]]")
                         WIDE_WORD("s0", "ldr %[w], [%[pa]], #4")
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [s0] "+r"(s0), [s1] "+r"(s1), [pa] "+r"(pa), [px] "+r"(xp), [cnt] "+r"(cnt),
                           [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(w), [e] "=&r"(e),
                           [t] "=&r"(t)
                         : [off] "r"(off)
                         : "cc", "memory");
    }
    *a0 = s0;
    *a1 = s1;
}

#define PAIR_MASK 0xF00FF00Fu
/* one word of each row of the pair (eight inputs, sixteen MACs); a, b, e, t scratch registers */
#define PAIR_WORD                                                                                        \
    "ldr %[b], [%[pa], %[off]]\n\tldr %[a], [%[pa]], #4\n\tldrd %[x0], %[x1], [%[px]], #8\n\t"           \
    "eor %[a], %[a], #0x88888888\n\teor %[e], %[a], %[b], ror #20\n\tand %[e], %[e], #0xF0F0F0F0\n\t"    \
    "eor %[a], %[a], %[e]\n\teor %[e], %[e], %[b], ror #20\n\t"                                          \
    "and %[b], %[m], %[a]\n\tsmlad %[acc], %[b], %[x0], %[acc]\n\t"                                      \
    "and %[b], %[m], %[a], ror #8\n\tsmlad %[acc], %[b], %[x1], %[acc]\n\t"                              \
    "ldrd %[x0], %[x1], [%[px]], #8\n\t"                                                                 \
    "and %[b], %[m], %[e], ror #4\n\tsmlad %[acc], %[b], %[x0], %[acc]\n\t"                              \
    "and %[b], %[m], %[e], ror #12\n\tsmlad %[acc], %[b], %[x1], %[acc]\n\t"

static inline uint32_t ror32(uint32_t v, unsigned r) { return (v >> r) | (v << (32u - r)); }

/* two rows r0 (row0) and r1 (row0 + off bytes) against an operand of -8..8 values widened by widen8:
 * *a0 = sum x w(r0) + c0 (c0 = -8 sum x), *a1 = sum x w(r1) */
static inline __attribute__((always_inline)) void dot_pair(const uint8_t *row0, int32_t off, const uint32_t *xp,
                                                           int32_t words, int32_t c0, int32_t *a0, int32_t *a1)
{
    int32_t acc = 0, lo = c0;
    const uint8_t *pa = row0;
    int32_t cnt = words >> 1;
    if (cnt > 0) {
        uint32_t a, b, e, x0, x1;
        uint32_t m = PAIR_MASK;
        __asm__ volatile("1:\n\t" PAIR_WORD PAIR_WORD
                         "sbfx %[b], %[acc], #0, #12\n\tadd %[lo], %[lo], %[b]\n\tsub %[acc], %[acc], %[b]\n\t"
                         "subs %[cnt], %[cnt], #1\n\tbne 1b\n\t"
                         : [acc] "+r"(acc), [lo] "+r"(lo), [pa] "+r"(pa), [px] "+r"(xp), [cnt] "+r"(cnt),
                           [a] "=&r"(a), [b] "=&r"(b), [e] "=&r"(e), [x0] "=&r"(x0), [x1] "=&r"(x1)
                         : [m] "r"(m), [off] "r"(off)
                         : "cc", "memory");
    }
    if (words & 1) {
        uint32_t wa, wb;
        memcpy(&wa, pa, 4);
        memcpy(&wb, pa + off, 4);
        wa ^= 0x88888888u;
        const uint32_t d = ror32(wb, 20), e = (wa ^ d) & 0xF0F0F0F0u, c0w = wa ^ e, c1w = d ^ e;
        acc = __smlad(c0w & PAIR_MASK, xp[0], acc);
        acc = __smlad(ror32(c0w, 8) & PAIR_MASK, xp[1], acc);
        acc = __smlad(ror32(c1w, 4) & PAIR_MASK, xp[2], acc);
        acc = __smlad(ror32(c1w, 12) & PAIR_MASK, xp[3], acc);
    }
    const int32_t low = (int32_t)((uint32_t)acc << 20) >> 20;   /* |low field| < 2048: exact */
    *a0 = lo + low;
    *a1 = (acc - low) >> 12;
}

/* clamp(rs(v; m, s), +-2^29) (kws_lstm_a4.h) with 32-bit shifts: s < 32 and s >= 32 apart */
static inline int32_t rs_z(int32_t v, int32_t m, int32_t s)
{
    const int64_t prod = (int64_t)v * m;
    int32_t r;
    if (s > 32) {   /* the rounding constant 2^(s-1) has no low word: only the high word moves */
        r = ((int32_t)(prod >> 32) + (1 << (s - 33))) >> (s - 32);
    } else if (s == 32) {
        r = (int32_t)((prod + ((int64_t)1 << 31)) >> 32);
    } else if (s > 0) {
        const int64_t q = prod + (int64_t)(1u << (s - 1));
        const uint32_t lo = (uint32_t)q;
        const int32_t hi = (int32_t)(q >> 32), rhi = hi >> s;
        const uint32_t rlo = (lo >> s) | ((uint32_t)hi << (32 - s));
        if (rhi != ((int32_t)rlo >> 31)) return rhi < 0 ? -KWS_LSTM_A4_Z_CLAMP : KWS_LSTM_A4_Z_CLAMP;
        r = (int32_t)rlo;
    } else {
        return prod > KWS_LSTM_A4_Z_CLAMP ? KWS_LSTM_A4_Z_CLAMP
             : prod < -KWS_LSTM_A4_Z_CLAMP ? -KWS_LSTM_A4_Z_CLAMP : (int32_t)prod;
    }
    return r > KWS_LSTM_A4_Z_CLAMP ? KWS_LSTM_A4_Z_CLAMP : r < -KWS_LSTM_A4_Z_CLAMP ? -KWS_LSTM_A4_Z_CLAMP : r;
}

/* #{k : t[k] <= z} for the 15 thresholds of a 4-bit gate and the 14 of a 4-bit tanh, branch-free */
static inline int32_t count15(const int32_t *t, int32_t z)
{
    int32_t i = t[7] <= z ? 8 : 0;
    i += t[i + 3] <= z ? 4 : 0;
    i += t[i + 1] <= z ? 2 : 0;
    return i + (t[i] <= z);
}

static inline int32_t count14(const int32_t *t, int32_t z)
{
    int32_t i = t[6] <= z ? 7 : 0;   /* t[0..6] for a count below 7 behaves as t[0..5]: t[6] > z */
    i += t[i + 3] <= z ? 4 : 0;
    i += t[i + 1] <= z ? 2 : 0;
    return i + (t[i] <= z);
}

/* the 255 of an 8-bit gate and the 254 of an 8-bit tanh likewise: four probes to a block of 15 (14), then
 * count15 inside it (written out: the M-profile builds optimise for size and would keep a loop) */
static inline int32_t count255(const int32_t *t, int32_t z)
{
    int32_t i = t[127] <= z ? 128 : 0;
    i += t[i + 63] <= z ? 64 : 0;
    i += t[i + 31] <= z ? 32 : 0;
    i += t[i + 15] <= z ? 16 : 0;
    return i + count15(t + i, z);
}

static inline int32_t count254(const int32_t *t, int32_t z)
{
    int32_t i = t[126] <= z ? 127 : 0;   /* below 127, t[0..126] acts as t[0..125]: t[126] > z */
    i += t[i + 63] <= z ? 64 : 0;
    i += t[i + 31] <= z ? 32 : 0;
    i += t[i + 15] <= z ? 16 : 0;
    return i + count15(t + i, z);
}

static inline int32_t count(const int32_t *t, int32_t n, int32_t z)
{
    return n == 15 ? count15(t, z) : n == 14 ? count14(t, z) : n == 255 ? count255(t, z) : n == 254 ? count254(t, z)
                                                                                                 : kws_lstm_a4_count(t, n, z);
}

/* clamp(rs(v; m, s), -n, n) for the cell and hidden updates; s > 32 (the converter's usual choice for
 * these multipliers, M in [2^30, 2^31) times a scale below 1/2) on the high word alone */
static inline int32_t rs_clamp_n(int64_t v, int32_t s, int32_t n)
{
    if (s <= 32) return kws_lstm_a4_clamp_n(kws_lstm_a4_rs(v, 1, s), n);
    const int32_t r = ((int32_t)(v >> 32) + (1 << (s - 33))) >> (s - 32);
    return r > n ? n : r < -n ? -n : r;
}

/* kws_lstm_a4_cell with the rescales above and the unrolled threshold search */
static inline void cell(const kws_lstm_a4_params *p, int32_t gi, int32_t gf, int32_t gg, int32_t go, int16_t *cj_io,
                        int8_t *hj)
{
    const int64_t v = (int64_t)(gf * *cj_io) * p->m_fc + (int64_t)(gi * gg) * p->m_ig;
    const int32_t cj = rs_clamp_n(v, p->s_c, p->nc);
    *cj_io = (int16_t)cj;
    const int32_t tc = count(p->thr[4], p->n_thr[4], cj) - p->nt;
    *hj = (int8_t)rs_clamp_n((int64_t)(go * tc) * p->m_h, p->s_h, p->nh);
}

KWS_NO_VECTORIZE
void kws_lstm_a4_dsp(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    const int32_t u = p->units, nin = p->n_in, wrb = p->w_row_bytes, rrb = p->r_row_bytes;
    int32_t *lv = scratch;
    uint32_t *xp = (uint32_t *)(scratch + 4 * u), *hp = xp + nin / 2;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + (size_t)t * (size_t)nin;
        int32_t sx, sh;
        const int small_x = widen8(x, nin, -p->zp_x, xp, &sx), small_h = widen8(h, u, 0, hp, &sh);
        const int32_t cx = 8 * sx, ch = 8 * sh;
        for (int32_t g = 0; g < 4; g++) {
            const int32_t mi = p->m_in[g], si = p->s_in[g], mr = p->m_rec[g], sr = p->s_rec[g], nthr = p->n_thr[g];
            const int32_t *thr = p->thr[g], *bias = p->bias + g * u, q0 = g == 2 ? p->nt : 0;
            int32_t *out = lv + g * u;
            for (int32_t j = 0; j < u; j += 2) {   /* units is a multiple of 8 */
                const int32_t row = g * u + j;
                const uint8_t *w = p->w + (size_t)row * (size_t)wrb;
                const uint8_t *r = p->r + (size_t)row * (size_t)rrb;
                int32_t a0, a1, b0, b1;
                if (small_x) {
                    dot_pair(w, wrb, xp, nin / 8, -cx, &a0, &a1);
                } else {
                    dot4x2(w, wrb, xp, nin / 8, &a0, &a1);
                    a0 -= cx;
                    a1 -= cx;
                }
                if (small_h) {
                    dot_pair(r, rrb, hp, u / 8, -ch, &b0, &b1);
                } else {
                    dot4x2(r, rrb, hp, u / 8, &b0, &b1);
                    b0 -= ch;
                    b1 -= ch;
                }
                /* the level of each row: #{T <= Z} (kws_lstm_a4_gate) */
                out[j] = count(thr, nthr, rs_z(a0, mi, si) + rs_z(b0, mr, sr) + bias[j]) - q0;
                out[j + 1] = count(thr, nthr, rs_z(a1, mi, si) + rs_z(b1, mr, sr) + bias[j + 1]) - q0;
            }
        }
        for (int32_t j = 0; j < u; j++)
            cell(p, lv[j], lv[u + j], lv[2 * u + j], lv[3 * u + j], &c[j], &h[j]);
        memcpy(output + (size_t)t * (size_t)u, h, (size_t)u);
    }
}

#else
int kws_lstm_a4_dsp_available(void) { return 0; }

void kws_lstm_a4_dsp(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    kws_lstm_a4(p, steps, input, h, c, scratch, output);   /* never selected without the DSP extension */
}
#endif
