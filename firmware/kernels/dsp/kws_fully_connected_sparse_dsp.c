/* kws_fully_connected_sparse_dsp: Cortex-M4/M7 (DSP extension) kernel for block-compressed sparse
 * rows (SUB8 layout 5, kws_sparse.h) with k = 2, 4 or 8 and block*k a multiple of 32 bits
 * (k=8: block 4, 8, 16; k=4: block 8, 16; k=2: block 16): every stored block is whole 32-bit
 * words of k-bit fields.
 *
 * Once per batch row the activations are widened to int16 with the input offset added
 * (x + in_off, |.| <= 255) and stored, per group of F = 32/k inputs, in the lane order in which
 * one weight word yields its fields: with R = 8/k fields per byte, step s = 0..R-1 masks field s
 * of every byte into the byte's top k bits (W << (8-k(s+1)) & top mask), and SXTB16 / SXTB16 ROR 8
 * give the pairs (s, 2R+s) and (R+s, 3R+s) scaled by 2^(8-k). So a word costs 1 LDR, R ANDs,
 * 2R SXTB16, 2R LDR of x pairs and 2R SMLAD; a block adds one LDRH (its column) and an address.
 * The sum is 2^(8-k) times the exact one (|sum| < 2^31 for in_features <= 65536), shifted back
 * before the bias: bit-exact with kws_fully_connected_sparse. Zero blocks cost nothing, which is
 * where the speed over dense comes from. */
#include <arm_acle.h>
#include <string.h>
#include "kws_sparse.h"
#include "kws_kernels_opt.h"

const char kws_fc_sparse_opt_isa[] = "dsp";

static inline uint32_t rot8(uint32_t v) { return (v >> 8) | (v << 24); }

static int32_t words_per_block(const kws_sparse_params *sp) { return sp->block * sp->bits / 32; }

static int nm_supported(const kws_sparse_params *sp)
{
    return (sp->bits == 2 || sp->bits == 4 || sp->bits == 8) &&
           ((sp->n == 2 && sp->m == 4) || (sp->n == 1 && (sp->m == 4 || sp->m == 8 || sp->m == 16)));
}

int kws_fc_sparse_opt_supported(const kws_fc_params *p, const kws_sparse_params *sp)
{
    if (sp->layout == KWS_LAYOUT_NM) return nm_supported(sp);
    if (sp->layout != KWS_LAYOUT_BSR) return 0;
    if (sp->block_rows == 4)   /* 4-row lanes16 blocks: the lane sums stay exact for <= 32768 inputs */
    {
        for (int32_t o = 0; o < p->out_features; o++)   /* one multiplier and shift (SUB8: per tensor), right <= 31 */
            if (p->shift[o] < -31 || p->shift[o] != p->shift[0] || p->multiplier[o] != p->multiplier[0]) return 0;
        return sp->bits == 4 && (sp->block == 4 || sp->block == 8 || sp->block == 16) && p->in_features <= 32768 &&
               ((uintptr_t)sp->values & 3u) == 0 && ((uintptr_t)sp->cols & 1u) == 0 && ((uintptr_t)sp->row_ptr & 3u) == 0;
    }
    if (sp->block_rows != 1) return 0;
    if (sp->bits != 2 && sp->bits != 4 && sp->bits != 8) return 0;
    if ((sp->block * sp->bits) % 32 != 0 && sp->block != 1) return 0;
    return ((uintptr_t)sp->values & 3u) == 0 && ((uintptr_t)sp->cols & 1u) == 0 && ((uintptr_t)sp->row_ptr & 3u) == 0;
}

size_t kws_fc_sparse_opt_scratch_bytes(const kws_fc_params *p, const kws_sparse_params *sp)
{
    (void)p;
    if (sp->layout == KWS_LAYOUT_NM) return (size_t)sp->groups * (size_t)sp->m * sizeof(int16_t);
    if (sp->block_rows == 4) return (size_t)sp->block_cols * 4u * (size_t)sp->block;   /* see widen_r4 */
    return (size_t)sp->block_cols * (size_t)sp->block * sizeof(int16_t);
}

static inline uint32_t load32(const int8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint32_t pk_lo(uint32_t a, uint32_t b) { return (a & 0xFFFFu) | (b << 16); }     /* PKHBT */
static inline uint32_t pk_hi(uint32_t a, uint32_t b) { return (a >> 16) | (b & 0xFFFF0000u); } /* PKHTB */

/* xs[g*F/2 + 2s], xs[g*F/2 + 2s + 1] = pairs (s, 2R+s), (R+s, 3R+s) of group g (x + in_off, int16).
 * Whole groups: word loads, SXTB16, PKHBT/PKHTB, SADD16 (about 2 instructions per input); the
 * tail group (inputs past in_features read as 0) element by element. */
static void widen(const int8_t *x, int32_t in_n, int32_t padded, int32_t k, int32_t in_off, uint32_t *xs)
{
    const int32_t F = 32 / k, R = 8 / k;
    const uint32_t off = (uint32_t)(uint16_t)in_off * 0x00010001u;
    int32_t g = 0;
    for (; g + F <= in_n; g += F, x += F) {
        if (k == 8) {
            uint32_t w = load32(x);
            *xs++ = __sadd16(__sxtb16(w), off);
            *xs++ = __sadd16(__sxtb16(rot8(w)), off);
        } else if (k == 4) {
            uint32_t w0 = load32(x), w1 = load32(x + 4);
            uint32_t a = __sxtb16(w0), b = __sxtb16(w1), c = __sxtb16(rot8(w0)), d = __sxtb16(rot8(w1));
            *xs++ = __sadd16(pk_lo(a, b), off);     /* (0, 4) */
            *xs++ = __sadd16(pk_hi(a, b), off);     /* (2, 6) */
            *xs++ = __sadd16(pk_lo(c, d), off);     /* (1, 5) */
            *xs++ = __sadd16(pk_hi(c, d), off);     /* (3, 7) */
        } else {
            uint32_t w0 = load32(x), w1 = load32(x + 4), w2 = load32(x + 8), w3 = load32(x + 12);
            uint32_t a = __sxtb16(w0), b = __sxtb16(w2), c = __sxtb16(rot8(w0)), d = __sxtb16(rot8(w2));
            uint32_t e = __sxtb16(w1), f = __sxtb16(w3), h = __sxtb16(rot8(w1)), i = __sxtb16(rot8(w3));
            *xs++ = __sadd16(pk_lo(a, b), off);     /* s=0: (0, 8)   (4, 12) */
            *xs++ = __sadd16(pk_lo(e, f), off);
            *xs++ = __sadd16(pk_lo(c, d), off);     /* s=1: (1, 9)   (5, 13) */
            *xs++ = __sadd16(pk_lo(h, i), off);
            *xs++ = __sadd16(pk_hi(a, b), off);     /* s=2: (2, 10)  (6, 14) */
            *xs++ = __sadd16(pk_hi(e, f), off);
            *xs++ = __sadd16(pk_hi(c, d), off);     /* s=3: (3, 11)  (7, 15) */
            *xs++ = __sadd16(pk_hi(h, i), off);
        }
    }
    for (; g < padded; g += F, x += F) {
        for (int32_t s = 0; s < R; s++) {
            int32_t i0 = s, i1 = 2 * R + s, i2 = R + s, i3 = 3 * R + s, rem = in_n - g;
            int32_t a = i0 < rem ? x[i0] + in_off : 0, b = i1 < rem ? x[i1] + in_off : 0;
            int32_t c = i2 < rem ? x[i2] + in_off : 0, d = i3 < rem ? x[i3] + in_off : 0;
            *xs++ = (uint32_t)(uint16_t)a | (uint32_t)b << 16;
            *xs++ = (uint32_t)(uint16_t)c | (uint32_t)d << 16;
        }
    }
}

#define PAIR(acc, part, xp) do { (acc) = __smlad(__sxtb16(part), (xp)[0], (acc)); \
                                 (acc) = __smlad(__sxtb16(rot8(part)), (xp)[1], (acc)); } while (0)

static inline int32_t word8(int32_t acc, uint32_t w, const uint32_t *xp) { PAIR(acc, w, xp); return acc; }

static inline int32_t word4(int32_t acc, uint32_t w, const uint32_t *xp)
{
    const uint32_t top = 0xF0F0F0F0u;
    uint32_t lo = (w << 4) & top, hi = w & top;
    PAIR(acc, lo, xp);
    PAIR(acc, hi, xp + 2);
    return acc;
}

static inline int32_t word2(int32_t acc, uint32_t w, const uint32_t *xp)
{
    const uint32_t top = 0xC0C0C0C0u;
    uint32_t f0 = (w << 6) & top, f1 = (w << 4) & top, f2 = (w << 2) & top, f3 = w & top;
    PAIR(acc, f0, xp);
    PAIR(acc, f1, xp + 2);
    PAIR(acc, f2, xp + 4);
    PAIR(acc, f3, xp + 6);
    return acc;
}

/* Hand-scheduled block loops (n >= 1 blocks) for the formats the converter's block:B choices give:
 * k=4 block 8 (17 instructions / 8 weights), k=8 block 8 (15 / 8), k=8 block 4 (10 / 4),
 * k=2 block 16 (29 / 16). The C loops below do the other word counts. */
static inline __attribute__((always_inline)) int32_t blocks_k4w1(int32_t acc, const uint16_t *c, const uint32_t *v, uint32_t n, const uint32_t *xs)
{
    uint32_t col, w, part, t, x0, x1;
    const uint32_t top = 0xF0F0F0F0u;
    __asm__ volatile(
        "1:\n\t"
        "ldrh %[col], [%[c]], #2\n\t"
        "ldr %[w], [%[v]], #4\n\t"
        "add %[col], %[xs], %[col], lsl #4\n\t"
        "ldrd %[x0], %[x1], [%[col]]\n\t"
        "and %[part], %[top], %[w], lsl #4\n\t"
        "sxtb16 %[t], %[part]\n\t"
        "smlad %[acc], %[t], %[x0], %[acc]\n\t"
        "sxtb16 %[t], %[part], ror #8\n\t"
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
        "ldrd %[x0], %[x1], [%[col], #8]\n\t"
        "and %[part], %[top], %[w]\n\t"
        "sxtb16 %[t], %[part]\n\t"
        "smlad %[acc], %[t], %[x0], %[acc]\n\t"
        "sxtb16 %[t], %[part], ror #8\n\t"
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [acc] "+r"(acc), [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [col] "=&r"(col), [w] "=&r"(w),
          [part] "=&r"(part), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [xs] "r"(xs), [top] "r"(top)
        : "cc", "memory");
    return acc;
}

static inline __attribute__((always_inline)) int32_t blocks_k4w2(int32_t acc, const uint16_t *c, const uint32_t *v, uint32_t n, const uint32_t *xs)
{
    uint32_t col, w, part, t, x0, x1;
    const uint32_t top = 0xF0F0F0F0u;
#define K4_WORD(OFF) \
        "ldr %[w], [%[v]], #4\n\t" \
        "ldrd %[x0], %[x1], [%[col], #" #OFF "]\n\t" \
        "and %[part], %[top], %[w], lsl #4\n\t" \
        "sxtb16 %[t], %[part]\n\t" \
        "smlad %[acc], %[t], %[x0], %[acc]\n\t" \
        "sxtb16 %[t], %[part], ror #8\n\t" \
        "smlad %[acc], %[t], %[x1], %[acc]\n\t" \
        "ldrd %[x0], %[x1], [%[col], #" #OFF "+8]\n\t" \
        "and %[part], %[top], %[w]\n\t" \
        "sxtb16 %[t], %[part]\n\t" \
        "smlad %[acc], %[t], %[x0], %[acc]\n\t" \
        "sxtb16 %[t], %[part], ror #8\n\t" \
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldrh %[col], [%[c]], #2\n\t"
        "add %[col], %[xs], %[col], lsl #5\n\t"
        K4_WORD(0) K4_WORD(16)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [acc] "+r"(acc), [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [col] "=&r"(col), [w] "=&r"(w),
          [part] "=&r"(part), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [xs] "r"(xs), [top] "r"(top)
        : "cc", "memory");
#undef K4_WORD
    return acc;
}

/* block 1 (CSR, unstructured): x as a plain int16 array (x + in_off); per stored weight one LDRH
 * (its column), one LDRSH (the activation), one SBFX (the field out of a word of 32/k values) and
 * one MLA: about 4 instructions per non-zero. Leading / trailing fields of a row one by one. */
#define CSR_T(t) acc += x16[c[t]] * ((int32_t)(w << (32 - K * ((t) + 1))) >> (32 - K));
#define CSR_ROW(K, UNROLL)                                                                          \
    do {                                                                                            \
        uint32_t j = a;                                                                             \
        for (; j < e && (j % (32 / (K))); j++)                                                      \
            acc += x16[cols[j]] * kws_sparse_value(kws_sparse_field(sp->values, j * (K), (K)), (K)); \
        for (; j + 32 / (K) <= e; j += 32 / (K)) {                                                  \
            const uint32_t w = vals[j / (32 / (K))];                                                \
            const uint16_t *c = cols + j;                                                           \
            UNROLL                                                                                  \
        }                                                                                           \
        for (; j < e; j++)                                                                          \
            acc += x16[cols[j]] * kws_sparse_value(kws_sparse_field(sp->values, j * (K), (K)), (K)); \
    } while (0)
#define U4 CSR_T(0) CSR_T(1) CSR_T(2) CSR_T(3)
#define U8 U4 CSR_T(4) CSR_T(5) CSR_T(6) CSR_T(7)
#define U16 U8 CSR_T(8) CSR_T(9) CSR_T(10) CSR_T(11) CSR_T(12) CSR_T(13) CSR_T(14) CSR_T(15)

static void csr_rows(const kws_fc_params *p, const kws_sparse_params *sp, const int8_t *x, const int32_t *bias,
                     int16_t *x16, int8_t *y)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, in_off = p->act.input_offset, K0 = sp->bits;
    const uint32_t *row_ptr = (const uint32_t *)(const void *)sp->row_ptr;
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const uint32_t *vals = (const uint32_t *)(const void *)sp->values;
    for (int32_t i = 0; i < in_n; i++) x16[i] = (int16_t)(x[i] + in_off);
    for (int32_t o = 0; o < out_n; o++) {
        const uint32_t a = row_ptr[o], e = row_ptr[o + 1];
        int32_t acc = 0;
        if (K0 == 4) { enum { K = 4 }; CSR_ROW(4, U8); }
        else if (K0 == 8) { enum { K = 8 }; CSR_ROW(8, U4); }
        else { enum { K = 2 }; CSR_ROW(2, U16); }
        if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
        y[o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);
    }
}

static inline __attribute__((always_inline)) int32_t blocks_k8w2(int32_t acc, const uint16_t *c, const uint32_t *v, uint32_t n, const uint32_t *xs)
{
    uint32_t col, w0, w1, t, x0, x1;
    __asm__ volatile(
        "1:\n\t"
        "ldrh %[col], [%[c]], #2\n\t"
        "ldrd %[w0], %[w1], [%[v]], #8\n\t"
        "add %[col], %[xs], %[col], lsl #4\n\t"
        "ldrd %[x0], %[x1], [%[col]]\n\t"
        "sxtb16 %[t], %[w0]\n\t"
        "smlad %[acc], %[t], %[x0], %[acc]\n\t"
        "sxtb16 %[t], %[w0], ror #8\n\t"
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
        "ldrd %[x0], %[x1], [%[col], #8]\n\t"
        "sxtb16 %[t], %[w1]\n\t"
        "smlad %[acc], %[t], %[x0], %[acc]\n\t"
        "sxtb16 %[t], %[w1], ror #8\n\t"
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [acc] "+r"(acc), [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [col] "=&r"(col), [w0] "=&r"(w0),
          [w1] "=&r"(w1), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [xs] "r"(xs)
        : "cc", "memory");
    return acc;
}

static inline __attribute__((always_inline)) int32_t blocks_k8w1(int32_t acc, const uint16_t *c, const uint32_t *v, uint32_t n, const uint32_t *xs)
{
    uint32_t col, w, t, x0, x1;
    __asm__ volatile(
        "1:\n\t"
        "ldrh %[col], [%[c]], #2\n\t"
        "ldr %[w], [%[v]], #4\n\t"
        "add %[col], %[xs], %[col], lsl #3\n\t"
        "ldrd %[x0], %[x1], [%[col]]\n\t"
        "sxtb16 %[t], %[w]\n\t"
        "smlad %[acc], %[t], %[x0], %[acc]\n\t"
        "sxtb16 %[t], %[w], ror #8\n\t"
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [acc] "+r"(acc), [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [col] "=&r"(col), [w] "=&r"(w),
          [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [xs] "r"(xs)
        : "cc", "memory");
    return acc;
}

static inline __attribute__((always_inline)) int32_t blocks_k2w1(int32_t acc, const uint16_t *c, const uint32_t *v, uint32_t n, const uint32_t *xs)
{
    uint32_t col, w, part, t, x0, x1;
    const uint32_t top = 0xC0C0C0C0u;
#define K2_STEP(SHIFT, OFF) \
        "and %[part], %[top], %[w], lsl #" #SHIFT "\n\t" \
        "ldrd %[x0], %[x1], [%[col], #" #OFF "]\n\t" \
        "sxtb16 %[t], %[part]\n\t" \
        "smlad %[acc], %[t], %[x0], %[acc]\n\t" \
        "sxtb16 %[t], %[part], ror #8\n\t" \
        "smlad %[acc], %[t], %[x1], %[acc]\n\t"
    __asm__ volatile(
        "1:\n\t"
        "ldrh %[col], [%[c]], #2\n\t"
        "ldr %[w], [%[v]], #4\n\t"
        "add %[col], %[xs], %[col], lsl #5\n\t"
        K2_STEP(6, 0) K2_STEP(4, 8) K2_STEP(2, 16) K2_STEP(0, 24)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [acc] "+r"(acc), [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [col] "=&r"(col), [w] "=&r"(w),
          [part] "=&r"(part), [t] "=&r"(t), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [xs] "r"(xs), [top] "r"(top)
        : "cc", "memory");
#undef K2_STEP
    return acc;
}

/* one row's scaled sum over its stored blocks; WB words per block, WORD the field extractor */
#define ROW_LOOP(WORD, WB, XW)                                                           \
    for (uint32_t j = a; j < e; j++) {                                                   \
        const uint32_t *xp = xs + (uint32_t)cols[j] * ((WB) * (XW));                     \
        const uint32_t *wp = vals + j * (WB);                                            \
        for (int32_t t = 0; t < (WB); t++) acc = WORD(acc, wp[t], xp + t * (XW));        \
    }

/* N:M (layout 4), k = 2, 4, 8 with 2:4, 1:4, 1:8, 1:16: x as int16 (x + in_off), zero-padded to
 * groups*M; per row, 8 slots at a time: one unaligned word of indices (8 x log2 M bits), one or two of
 * values (8 x k bits), then per slot UBFX (index), LDRSH (activation of its group), SBFX (value), MLA:
 * about 5 instructions per stored slot. Specialised per (k, N, M) by constant arguments. */
/* the first nb (constant) bytes at b, little-endian, never reading past them */
static inline __attribute__((always_inline)) uint32_t ldn(const uint8_t *b, const int nb)
{
    uint32_t v = 0;
    memcpy(&v, b, (size_t)nb);
    return v;
}

static inline __attribute__((always_inline)) int32_t nm_row(const uint8_t *row, int32_t index_bytes, int32_t S,
                                                           const int16_t *x16, const int K, const int N, const int M)
{
    const int IB = M == 4 ? 2 : (M == 8 ? 3 : 4);
    const uint8_t *val = row + index_bytes;
    int32_t acc = 0, s = 0;
    const int16_t *base = x16;                      /* activations of the chunk's first group */
    const uint8_t *ip = row, *vp = val;
    for (; s + 8 <= S; s += 8, base += (8 / N) * M, ip += IB, vp += K) {
        const uint32_t iw = ldn(ip, IB);                                     /* 8 indices = IB bytes */
        const uint32_t v0 = ldn(vp, K == 2 ? 2 : 4), v1 = K == 8 ? ldn(vp + 4, 4) : 0;
#pragma GCC unroll 8
        for (int t = 0; t < 8; t++) {
            const int32_t idx = (int32_t)((iw >> (t * IB)) & ((1u << IB) - 1u)) + (t / N) * M;
            const uint32_t vw = (K == 8 && t >= 4) ? v1 : v0;
            const int tt = (K == 8 && t >= 4) ? t - 4 : t;
            const int32_t v = (int32_t)(vw << (32 - K * (tt + 1))) >> (32 - K);
            acc += base[idx] * v;
        }
    }
    for (; s < S; s++) {
        const int32_t idx = (int32_t)kws_sparse_field(row, (uint32_t)(s * IB), (uint32_t)IB);
        const int32_t v = kws_sparse_value(kws_sparse_field(val, (uint32_t)(s * K), (uint32_t)K), (uint32_t)K);
        acc += x16[(s / N) * M + idx] * v;
    }
    return acc;
}

static void nm_rows(const kws_fc_params *p, const kws_sparse_params *sp, const int8_t *x, const int32_t *bias,
                    int16_t *x16, int8_t *y)
{
    const int32_t in_n = p->in_features, padded = sp->groups * sp->m, S = sp->groups * sp->n;
    for (int32_t i = 0; i < padded; i++) x16[i] = (int16_t)(i < in_n ? x[i] + p->act.input_offset : 0);
    const int code = sp->bits * 1000 + sp->n * 100 + sp->m;
    for (int32_t o = 0; o < p->out_features; o++) {
        const uint8_t *row = sp->weights + (size_t)o * (size_t)sp->row_bytes;
        int32_t acc;
        switch (code) {
        case 4204: acc = nm_row(row, sp->index_bytes, S, x16, 4, 2, 4); break;
        case 4104: acc = nm_row(row, sp->index_bytes, S, x16, 4, 1, 4); break;
        case 4108: acc = nm_row(row, sp->index_bytes, S, x16, 4, 1, 8); break;
        case 4116: acc = nm_row(row, sp->index_bytes, S, x16, 4, 1, 16); break;
        case 8204: acc = nm_row(row, sp->index_bytes, S, x16, 8, 2, 4); break;
        case 8104: acc = nm_row(row, sp->index_bytes, S, x16, 8, 1, 4); break;
        case 8108: acc = nm_row(row, sp->index_bytes, S, x16, 8, 1, 8); break;
        case 8116: acc = nm_row(row, sp->index_bytes, S, x16, 8, 1, 16); break;
        case 2204: acc = nm_row(row, sp->index_bytes, S, x16, 2, 2, 4); break;
        case 2104: acc = nm_row(row, sp->index_bytes, S, x16, 2, 1, 4); break;
        case 2108: acc = nm_row(row, sp->index_bytes, S, x16, 2, 1, 8); break;
        default:   acc = nm_row(row, sp->index_bytes, S, x16, 2, 1, 16); break;
        }
        if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
        y[o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);
    }
}

/* ---------------- layout 5 with 4-row blocks (k = 4, layout 8's lanes) ----------------
 * A block is 4 rows x B inputs, B/2 words; word t holds inputs 2t, 2t+1 (low, high half), a half is
 * L = u0 + 16 u1 + 256 u2 + 4096 w3 (rows 0..2 biased, u = w + 8). Per word and activation pair x (int16,
 * x + in_off) four sums as in the dense layout-8 kernel: a0 = sum x L (SMLAD on the word), a1 = sum x
 * (u2 + 16 w3) (SXTB16 ror 8), a3 = sum x u2 (that AND 0x000F000F), a2 = sum x u0 (word AND 0x000F000F):
 * with one LDRD of two activation pairs per two words and an LDR per word, 17 instructions per 16 MACs. Rows: u0 = a2, u1 = (a0 - 256 a1 - a2) / 16, u2 = a3,
 * w3 = (a1 - a3) / 16, exact in 32 bits for <= 32768 inputs; the bias of rows 0..2 is 8 x (sum of the
 * activations under the group's stored blocks): each block column's sum sits in the scratch slot after
 * its activations and one LDR + ADD per block collect it. Absent blocks cost nothing. */

/* scratch slot of block column c: 4*B bytes at 4*B*c, the B int16 activations (x + in_off, 0 past in_n),
 * then their int32 sum at byte 2*B */
static inline uint32_t pkhbt16(uint32_t a, uint32_t b) { uint32_t r; __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b)); return r; }
static inline uint32_t pkhtb16(uint32_t a, uint32_t b) { uint32_t r; __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b)); return r; }

static inline __attribute__((always_inline)) void widen_r4(const int8_t *x, int32_t in_n, int32_t cols, const int32_t B,
                                                            int32_t in_off, uint8_t *xs)
{
    const uint32_t off = (uint32_t)(uint16_t)in_off * 0x00010001u, ones = 0x00010001u;
    const int32_t whole = in_n / B;   /* block columns without a tail */
    for (int32_t c = 0; c < whole; c++, xs += 4 * B) {
        uint32_t *d = (uint32_t *)(void *)xs;
        const int8_t *xi = x + (size_t)c * (size_t)B;
        int32_t s = 0;
#pragma GCC unroll 4
        for (int32_t i = 0; i < B; i += 4, d += 2) {   /* 10 instructions per 4 inputs */
            const uint32_t w = load32(xi + i);
            const uint32_t a = __sadd16(__sxtb16(w), off), b = __sadd16(__sxtb16(rot8(w)), off);  /* (0, 2), (1, 3) */
            d[0] = pkhbt16(a, b);
            d[1] = pkhtb16(a, b);
            s = __smlad(a, ones, s);
            s = __smlad(b, ones, s);
        }
        memcpy(xs + 2 * B, &s, 4);
    }
    for (int32_t c = whole; c < cols; c++, xs += 4 * B) {
        const int32_t i0 = c * B;
        int32_t s = 0;
        {
            int16_t *h = (int16_t *)(void *)xs;
            for (int32_t i = 0; i < B; i++) {
                h[i] = (int16_t)(i0 + i < in_n ? x[i0 + i] + in_off : 0);
                s += h[i];
            }
        }
        memcpy(xs + 2 * B, &s, 4);
    }
}

#define R4_Q(X) "ldr %[w], [%[v]], #4\n\t"                                                          \
    "smlad %[a0], %[w], %[" X "], %[a0]\n\t"                                                         \
    "sxtb16 %[t], %[w], ror #8\n\t" "smlad %[a1], %[t], %[" X "], %[a1]\n\t"                        \
    "and %[t], %[t], #0x000F000F\n\t" "smlad %[a3], %[t], %[" X "], %[a3]\n\t"                       \
    "and %[t], %[w], #0x000F000F\n\t" "smlad %[a2], %[t], %[" X "], %[a2]\n\t"
/* two words against the activation pairs at slot offset XO (one LDRD) */
#define R4_WORD2(XO) "ldrd %[x0], %[x1], [%[xp], #" #XO "]\n\t" R4_Q("x0") R4_Q("x1")
#define R4_W4 R4_WORD2(0)
#define R4_W8 R4_W4 R4_WORD2(8)
#define R4_W16 R4_W8 R4_WORD2(16) R4_WORD2(24)

/* TFLite's requantization (kws_fc_opt_requant) with the layer's one multiplier and shift (checked at
 * prepare): the shift's masks once per layer, per row one SMLAL (rounding doubling high multiply) and a
 * branch-free rounding right shift, about 16 instructions */
typedef struct { int32_t m, left, right, ooff, lo; uint32_t mask, half; } rq_consts;

static rq_consts rq_prepare(const kws_fc_params *p)
{
    rq_consts c;
    const int32_t sh = p->shift[0];
    c.m = p->multiplier[0];
    c.left = sh > 0 ? sh : 0;
    c.right = c.left - sh;
    c.mask = c.right ? 0xFFFFFFFFu >> (32 - c.right) : 0u;
    c.half = c.mask >> 1;
    c.ooff = p->act.output_offset;
    c.lo = p->act.act_min;
    return c;
}

static inline __attribute__((always_inline)) int8_t rq4(int32_t acc, const rq_consts *c)
{
    uint32_t l32 = 1u << 30;
    int32_t h32 = 0;
    __asm__("smlal %[l], %[h], %[a], %[m]" : [l] "+r"(l32), [h] "+r"(h32) : [a] "r"((uint32_t)acc << c->left), [m] "r"(c->m));
    const int32_t h = (int32_t)((l32 >> 31) | ((uint32_t)h32 << 1));
    const uint32_t thr = c->half + ((uint32_t)h >> 31);
    int32_t v = __ssat((h >> c->right) + (((uint32_t)h & c->mask) > thr) + c->ooff, 8);   /* act_max is 127 (SUB8) */
    return (int8_t)(v < c->lo ? c->lo : v);
}

/* n >= 1 blocks of one row group; SH = log2(4 B), XS = 2 B (the block sum's offset in the slot) */
#define R4_LOOP(SH, XS, WORDS)                                                                          \
    __asm__ volatile("1:\n\t"                                                                          \
                     "ldrh %[xp], [%[c]], #2\n\t"                                                      \
                     "add %[xp], %[xs], %[xp], lsl #" #SH "\n\t"                                        \
                     "ldr %[t], [%[xp], #" #XS "]\n\t"                                                  \
                     "add %[sx], %[sx], %[t]\n\t"                                                       \
                     WORDS                                                                              \
                     "subs %[n], %[n], #1\n\t"                                                          \
                     "bne 1b\n\t"                                                                       \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [sx] "+r"(sx),        \
                       [c] "+r"(c), [v] "+r"(v), [n] "+r"(n), [xp] "=&r"(xp), [x0] "=&r"(x0), [x1] "=&r"(x1), \
                       [w] "=&r"(w), \
                       [t] "=&r"(t)                                                                     \
                     : [xs] "r"(xs)                                                                     \
                     : "cc", "memory")

KWS_NO_VECTORIZE
static void bsr4_rows(const kws_fc_params *p, const kws_sparse_params *sp, const int8_t *x, const int32_t *bias,
                      uint8_t *xs, int8_t *y)
{
    const int32_t out_n = p->out_features, B = sp->block;
    const rq_consts rc = rq_prepare(p);
    const uint32_t *gp = (const uint32_t *)(const void *)sp->row_ptr;
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const uint32_t *vals = (const uint32_t *)(const void *)sp->values;
    if (B == 8) widen_r4(x, p->in_features, sp->block_cols, 8, p->act.input_offset, xs);
    else if (B == 16) widen_r4(x, p->in_features, sp->block_cols, 16, p->act.input_offset, xs);
    else widen_r4(x, p->in_features, sp->block_cols, 4, p->act.input_offset, xs);
    for (int32_t g = 0; g < sp->row_groups; g++) {
        uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, sx = 0;
        uint32_t n = gp[g + 1] - gp[g];
        if (n) {
            const uint16_t *c = cols + gp[g];
            const uint32_t *v = vals + (size_t)gp[g] * (size_t)(B / 2);
            uint32_t xp, x0, x1, w, t;
            if (B == 8) R4_LOOP(5, 16, R4_W8);
            else if (B == 16) R4_LOOP(6, 32, R4_W16);
            else R4_LOOP(4, 8, R4_W4);
        }
        const uint32_t corr = sx << 3;
        uint32_t r[4] = {a2 - corr, (uint32_t)((int32_t)(a0 - (a1 << 8) - a2) >> 4) - corr, a3 - corr,
                         (uint32_t)((int32_t)(a1 - a3) >> 4)};
        const int32_t o0 = 4 * g;
        if (o0 + 4 <= out_n) {
            if (bias) { r[0] += (uint32_t)bias[o0]; r[1] += (uint32_t)bias[o0 + 1]; r[2] += (uint32_t)bias[o0 + 2]; r[3] += (uint32_t)bias[o0 + 3]; }
            const int8_t y0 = rq4((int32_t)r[0], &rc), y1 = rq4((int32_t)r[1], &rc);
            const int8_t y2 = rq4((int32_t)r[2], &rc), y3 = rq4((int32_t)r[3], &rc);
            y[o0] = y0; y[o0 + 1] = y1; y[o0 + 2] = y2; y[o0 + 3] = y3;
        } else {
            for (int32_t q = 0; o0 + q < out_n; q++)
                y[o0 + q] = rq4((int32_t)(r[q] + (bias ? (uint32_t)bias[o0 + q] : 0u)), &rc);
        }
    }
}

/* all rows of one batch row with one hand-scheduled block loop (dispatch hoisted out of the row loop) */
#define ROWS_FAST(FN, WB)                                                                              \
    for (int32_t o = 0; o < out_n; o++) {                                                              \
        const uint32_t a = row_ptr[o], e = row_ptr[o + 1];                                             \
        int32_t acc = e > a ? FN(0, cols + a, vals + (WB) * a, e - a, xs) >> scale_shift : 0;          \
        if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);                                  \
        y[o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);                        \
    }

void kws_fully_connected_sparse_opt(const kws_fc_params *p, const kws_sparse_params *sp, void *scratch,
                                    int32_t batches, const int8_t *input, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, k = sp->bits;
    const int32_t wb = words_per_block(sp), scale_shift = 8 - k;
    const uint32_t *row_ptr = (const uint32_t *)(const void *)sp->row_ptr;
    const uint16_t *cols = (const uint16_t *)(const void *)sp->cols;
    const uint32_t *vals = (const uint32_t *)(const void *)sp->values;
    uint32_t *xs = scratch;
    for (int32_t b = 0; b < batches; b++) {
        if (sp->layout == KWS_LAYOUT_NM) {
            nm_rows(p, sp, input + (size_t)b * in_n, bias, (int16_t *)scratch, output + (size_t)b * out_n);
            continue;
        }
        if (sp->block_rows == 4) {
            bsr4_rows(p, sp, input + (size_t)b * in_n, bias, (uint8_t *)scratch, output + (size_t)b * out_n);
            continue;
        }
        if (sp->block > 1) widen(input + (size_t)b * in_n, in_n, sp->block_cols * sp->block, k, p->act.input_offset, xs);
        int8_t *y = output + (size_t)b * out_n;
        if (sp->block == 1) { csr_rows(p, sp, input + (size_t)b * in_n, bias, (int16_t *)scratch, y); continue; }
        if (k == 4 && wb == 2) { ROWS_FAST(blocks_k4w2, 2) continue; }
        if (k == 4 && wb == 1) { ROWS_FAST(blocks_k4w1, 1) continue; }
        if (k == 8 && wb == 2) { ROWS_FAST(blocks_k8w2, 2) continue; }
        if (k == 8 && wb == 1) { ROWS_FAST(blocks_k8w1, 1) continue; }
        if (k == 2 && wb == 1) { ROWS_FAST(blocks_k2w1, 1) continue; }
        for (int32_t o = 0; o < out_n; o++) {
            const uint32_t a = row_ptr[o], e = row_ptr[o + 1];
            int32_t acc = 0;
            if (e == a) {
                /* no stored block: the row is all zeros */
            } else if (k == 4 && wb == 1) {
                acc = blocks_k4w1(0, cols + a, vals + a, e - a, xs);
            } else if (k == 8 && wb == 2) {
                acc = blocks_k8w2(0, cols + a, vals + 2 * a, e - a, xs);
            } else if (k == 8 && wb == 1) {
                acc = blocks_k8w1(0, cols + a, vals + a, e - a, xs);
            } else if (k == 2 && wb == 1) {
                acc = blocks_k2w1(0, cols + a, vals + a, e - a, xs);
            } else if (k == 4) {
                if (wb == 1) { ROW_LOOP(word4, 1, 4) } else if (wb == 2) { ROW_LOOP(word4, 2, 4) } else { ROW_LOOP(word4, wb, 4) }
            } else if (k == 8) {
                if (wb == 1) { ROW_LOOP(word8, 1, 2) } else if (wb == 2) { ROW_LOOP(word8, 2, 2) } else { ROW_LOOP(word8, wb, 2) }
            } else {
                if (wb == 1) { ROW_LOOP(word2, 1, 8) } else { ROW_LOOP(word2, wb, 8) }
            }
            acc >>= scale_shift;
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            output[(size_t)b * out_n + o] = kws_fc_opt_requant(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
