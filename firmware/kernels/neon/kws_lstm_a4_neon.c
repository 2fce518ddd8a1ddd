/* kws_lstm_a4_neon.c - SUB8_LSTM_A4 on AArch64 NEON, byte-exact with kernels/reference/kws_lstm_a4.c
 * (docs/formats.md section 13, docs/kernels.md). 4-bit weights; any sizes and activation widths. Two builds:
 *   armv8.2-a+dotprod (Cortex-A76): per 16 weight bytes (32 weights) one LD1, SHL #4 (16 w of the even
 *     columns), AND 0xF0 (16 w of the odd columns) and two SDOT against the activations split once per hop
 *     into even / odd columns (kernels/opt/kws_lstm_a4_vec.h): 16 times the dot product, any int8 inputs.
 *   armv8.0-a (Cortex-A53): where every activation of the hop is within +-7 (the k-bit hidden state of a
 *     4-bit LSTM; checked per hop, one LD1 / ABS / UMAX per 16 bytes), the 4-bit activations buy the
 *     narrow path: the nibbles sign-extended in place (SHL + SSHR, SSHR), MUL + MLA of both halves in int8
 *     lanes (|w a| <= 56, a pair <= 112: exact) and one SADALP into int16 lanes (<= 224 per 32 columns, so
 *     4096 columns fit): 7 instructions per 32 weights. Wider activations (8-bit frames) take SMULL /
 *     SMULL2 of the 16 w vectors (|16 w x| <= 2^14) and SADALP into int32: 11 per 32.
 * Four rows per pass share the activation loads. A zero point on the layer input: the same rows dotted with
 * 0/1 masks of the valid columns give sum w (sum (x - zp) w = acc - zp sum w). The gate rescales run four
 * rows at a time in 64-bit lanes (SMULL, SRSHL by -S is exactly floor((v M + 2^(S-1)) / 2^S), SQXTN, then
 * the +-2^29 clamp), the threshold counts as a branch-free binary search whose probes are one TBL of the
 * 64-byte table (tables of more than 16 entries, 8-bit activations: that search on every (P / 16)-th
 * threshold picks each lane's block, a branch-free scalar search finishes it), the cell and hidden updates likewise four
 * units at a time. Rows past a multiple of four and bytes past a multiple of 16 take scalar code.
 * Compiled into every build; a stub outside AArch64. */
#include "kws_kernels.h"
#include "kws_lstm_a4_simd.h"
#include "kws_lstm_a4_vec.h"

int kws_lstm_a4_neon_supported(const kws_lstm_a4_params *p)
{
    return p->weight_bits == 4;
}

size_t kws_lstm_a4_neon_scratch_bytes(const kws_lstm_a4_params *p)
{
    return kws_lstm_a4_vec_bytes(p);
}

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>

int kws_lstm_a4_neon_available(void) { return 1; }

/* the scalar part of four rows: bytes [from, rb) of each row */
static inline int32x4_t tail4(int32x4_t acc, const uint8_t *w, int32_t rb, int32_t from, const int8_t *ae,
                              const int8_t *ao)
{
    int32_t s[4];
    vst1q_s32(s, acc);
    for (int i = 0; i < 4; i++)
        for (int32_t k = from; k < rb; k++) {
            const uint8_t b = w[i * rb + k];
            s[i] += ((int8_t)(b << 4) >> 4) * ae[k] + ((int8_t)b >> 4) * ao[k];
        }
    return vld1q_s32(s);
}

#if defined(__ARM_FEATURE_DOTPROD)
static inline int32x4_t dot16(int32x4_t a, uint8x16_t v, int8x16_t e, int8x16_t o)
{
    a = vdotq_s32(a, vreinterpretq_s8_u8(vshlq_n_u8(v, 4)), e);
    return vdotq_s32(a, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0xF0))), o);
}

/* sum_k w[r][k] a[k] of the four rows at w (row bytes rb) */
static int32x4_t dot_rows4(const uint8_t *w, int32_t rb, const int8_t *ae, const int8_t *ao, int narrow)
{
    (void)narrow;
    const uint8_t *w0 = w, *w1 = w + rb, *w2 = w1 + rb, *w3 = w2 + rb;
    const int32_t full = rb & ~15;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    for (int32_t k = 0; k < full; k += 16) {
        const int8x16_t e = vld1q_s8(ae + k), o = vld1q_s8(ao + k);
        a0 = dot16(a0, vld1q_u8(w0 + k), e, o);
        a1 = dot16(a1, vld1q_u8(w1 + k), e, o);
        a2 = dot16(a2, vld1q_u8(w2 + k), e, o);
        a3 = dot16(a3, vld1q_u8(w3 + k), e, o);
    }
    const int32x4_t s = vshrq_n_s32(vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)), 4);
    return full < rb ? tail4(s, w, rb, full, ae, ao) : s;
}

static int narrow_ok(const int8_t *e, const int8_t *o, int32_t bytes) { (void)e; (void)o; (void)bytes; return 0; }
#else
static inline int32x4_t wide16(int32x4_t a, int8x16_t w16, int8x16_t x)
{
    a = vpadalq_s16(a, vmull_s8(vget_low_s8(w16), vget_low_s8(x)));
    return vpadalq_s16(a, vmull_high_s8(w16, x));
}

static inline int16x8_t narrow16(int16x8_t a, uint8x16_t v, int8x16_t e, int8x16_t o)
{
    const int8x16_t s = vreinterpretq_s8_u8(v);
    const int8x16_t lo = vshrq_n_s8(vshlq_n_s8(s, 4), 4), hi = vshrq_n_s8(s, 4);
    return vpadalq_s8(a, vmlaq_s8(vmulq_s8(lo, e), hi, o));
}

/* sum_k w[r][k] a[k] of the four rows at w (row bytes rb); narrow: every activation within +-7 */
static int32x4_t dot_rows4(const uint8_t *w, int32_t rb, const int8_t *ae, const int8_t *ao, int narrow)
{
    const uint8_t *w0 = w, *w1 = w + rb, *w2 = w1 + rb, *w3 = w2 + rb;
    const int32_t full = rb & ~15;
    int32x4_t s;
    if (narrow) {
        int16x8_t a0 = vdupq_n_s16(0), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t k = 0; k < full; k += 16) {
            const int8x16_t e = vld1q_s8(ae + k), o = vld1q_s8(ao + k);
            a0 = narrow16(a0, vld1q_u8(w0 + k), e, o);
            a1 = narrow16(a1, vld1q_u8(w1 + k), e, o);
            a2 = narrow16(a2, vld1q_u8(w2 + k), e, o);
            a3 = narrow16(a3, vld1q_u8(w3 + k), e, o);
        }
        s = vpaddq_s32(vpaddq_s32(vpaddlq_s16(a0), vpaddlq_s16(a1)), vpaddq_s32(vpaddlq_s16(a2), vpaddlq_s16(a3)));
    } else {
        const uint8x16_t mhi = vdupq_n_u8(0xF0);
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int32_t k = 0; k < full; k += 16) {
            const int8x16_t e = vld1q_s8(ae + k), o = vld1q_s8(ao + k);
            const uint8x16_t v0 = vld1q_u8(w0 + k), v1 = vld1q_u8(w1 + k), v2 = vld1q_u8(w2 + k), v3 = vld1q_u8(w3 + k);
            a0 = wide16(wide16(a0, vreinterpretq_s8_u8(vshlq_n_u8(v0, 4)), e), vreinterpretq_s8_u8(vandq_u8(v0, mhi)), o);
            a1 = wide16(wide16(a1, vreinterpretq_s8_u8(vshlq_n_u8(v1, 4)), e), vreinterpretq_s8_u8(vandq_u8(v1, mhi)), o);
            a2 = wide16(wide16(a2, vreinterpretq_s8_u8(vshlq_n_u8(v2, 4)), e), vreinterpretq_s8_u8(vandq_u8(v2, mhi)), o);
            a3 = wide16(wide16(a3, vreinterpretq_s8_u8(vshlq_n_u8(v3, 4)), e), vreinterpretq_s8_u8(vandq_u8(v3, mhi)), o);
        }
        s = vshrq_n_s32(vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)), 4);
    }
    return full < rb ? tail4(s, w, rb, full, ae, ao) : s;
}

/* every value of the two arrays within +-7 */
static int narrow_ok(const int8_t *e, const int8_t *o, int32_t bytes)
{
    uint8x16_t m = vdupq_n_u8(0);
    for (int32_t k = 0; k < bytes; k += 16)
        m = vmaxq_u8(m, vmaxq_u8(vreinterpretq_u8_s8(vabsq_s8(vld1q_s8(e + k))), vreinterpretq_u8_s8(vabsq_s8(vld1q_s8(o + k)))));
    return vmaxvq_u8(m) <= 7;
}
#endif

/* floor((v M + 2^(S-1)) / 2^S) on four lanes, saturated to int32 */
static inline int32x4_t rs4(int32x4_t v, int32_t m, int32_t s)
{
    const int64x2_t sh = vdupq_n_s64(-(int64_t)s);
    const int64x2_t lo = vrshlq_s64(vmull_n_s32(vget_low_s32(v), m), sh), hi = vrshlq_s64(vmull_high_n_s32(v, m), sh);
    return vqmovn_high_s64(vqmovn_s64(lo), hi);
}

static inline int32x4_t clamp4(int32x4_t v, int32_t n)
{
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(-n)), vdupq_n_s32(n));
}

/* #{T <= c} on four lanes of a sorted 16-entry table (64 bytes): a branch-free binary search, each probe
 * one TBL (byte indices 4 (pos + step - 1) + {0, 1, 2, 3}) */
static inline int32x4_t count16(const int32_t *tab, int32x4_t z)
{
    const uint8x16x4_t tb = vld1q_u8_x4((const uint8_t *)(const void *)tab);
    int32x4_t pos = vdupq_n_s32(0);
    for (int32_t step = 8; step; step >>= 1) {
        const int32x4_t idx = vmlaq_n_s32(vdupq_n_s32((step - 1) * 0x04040404 + 0x03020100), pos, 0x04040404);
        const int32x4_t t = vreinterpretq_s32_u8(vqtbl4q_u8(tb, vreinterpretq_u8_s32(idx)));
        pos = vaddq_s32(pos, vandq_s32(vreinterpretq_s32_u32(vcleq_s32(t, z)), vdupq_n_s32(step)));
    }
    return pos;
}

/* #{T <= z} on four lanes; tab padded with INT32_MAX to P (a power of two, >= 16) entries. P > 16 (gates
 * and tanh above 4 bits: 255 / 254 thresholds at 8 bits) in two levels: coarse (16 entries, every
 * (P / 16)-th threshold: tab[(k + 1) P / 16 - 1]) gives each lane its block b by TBL, then a branch-free
 * scalar search of the block's P / 16 - 1 entries below its last: b P / 16 + that count. */
static inline int32x4_t count4(const int32_t *tab, int32_t P, const int32_t *coarse, int32x4_t z)
{
    if (P == 16) return count16(tab, z);
    const int32_t stride = P >> 4;
    int32_t zz[4], bb[4];
    vst1q_s32(zz, z);
    vst1q_s32(bb, vmulq_n_s32(count16(coarse, z), stride));
    if (stride == 16) {   /* 8-bit operands: the block's first 15 entries, four probes unrolled */
        for (int i = 0; i < 4; i++) {
            const int32_t *t = tab + bb[i], zi = zz[i];
            int32_t pos = t[7] <= zi ? 8 : 0;
            pos += t[pos + 3] <= zi ? 4 : 0;
            pos += t[pos + 1] <= zi ? 2 : 0;
            bb[i] += pos + (t[pos] <= zi);
        }
        return vld1q_s32(bb);
    }
    for (int i = 0; i < 4; i++) {
        const int32_t *t = tab + bb[i];
        int32_t pos = 0;
        for (int32_t step = stride >> 1; step; step >>= 1) pos += t[pos + step - 1] <= zz[i] ? step : 0;
        bb[i] += pos;
    }
    return vld1q_s32(bb);
}

KWS_NO_VECTORIZE
void kws_lstm_a4_neon(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                      int32_t *scratch, int8_t *output)
{
    kws_lstm_a4_vec_scratch s;
    kws_lstm_a4_vec_layout(p, scratch, &s);
    kws_lstm_a4_vec_setup(p, &s);
    int32_t coarse[5][16];   /* count4's first level, for the tables of more than 16 entries */
    for (int g = 0; g < 5; g++)
        for (int32_t k = 0; k < 16 && s.pow2[g] > 16; k++) coarse[g][k] = s.tab[g][(k + 1) * (s.pow2[g] >> 4) - 1];
    const int32_t u = p->units, nin = p->n_in, zp = p->zp_x, u4 = u & ~3, wb = p->w_row_bytes, rb = p->r_row_bytes;
    int32_t *lv = s.lv;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + (size_t)t * (size_t)nin;
        kws_lstm_a4_vec_split(x, nin, s.xe, s.xo, s.xb);
        kws_lstm_a4_vec_split(h, u, s.he, s.ho, s.hb);
        const int xn = narrow_ok(s.xe, s.xo, s.xb), hn = narrow_ok(s.he, s.ho, s.hb);
        for (int32_t g = 0; g < 4; g++) {
            const int32_t off = g == 2 ? p->nt : 0;
            for (int32_t j = 0; j < u4; j += 4) {
                const int32_t row = g * u + j;
                const uint8_t *w = p->w + (size_t)row * (size_t)wb;
                int32x4_t a = dot_rows4(w, wb, s.xe, s.xo, xn);
                if (zp) a = vmlsq_n_s32(a, dot_rows4(w, wb, s.me, s.mo, 1), zp);
                const int32x4_t b = dot_rows4(p->r + (size_t)row * (size_t)rb, rb, s.he, s.ho, hn);
                const int32x4_t z = vaddq_s32(vaddq_s32(clamp4(rs4(a, p->m_in[g], p->s_in[g]), KWS_LSTM_A4_Z_CLAMP),
                                                        clamp4(rs4(b, p->m_rec[g], p->s_rec[g]), KWS_LSTM_A4_Z_CLAMP)),
                                              vld1q_s32(p->bias + row));
                vst1q_s32(lv + row, vsubq_s32(count4(s.tab[g], s.pow2[g], coarse[g], z), vdupq_n_s32(off)));
            }
            for (int32_t j = u4; j < u; j++) {
                const int32_t row = g * u + j;
                const int32_t a = kws_lstm_a4_vec_dot1(p->w + (size_t)row * (size_t)wb, x, nin, -zp);
                const int32_t b = kws_lstm_a4_vec_dot1(p->r + (size_t)row * (size_t)rb, h, u, 0);
                lv[row] = kws_lstm_a4_count(p->thr[g], p->n_thr[g], kws_lstm_a4_vec_z(p, g, row, a, b)) - off;
            }
        }
        int8_t *out = output + (size_t)t * (size_t)u;
        const int64x2_t shc = vdupq_n_s64(-(int64_t)p->s_c);
        for (int32_t j = 0; j < u4; j += 4) {
            const int32x4_t gi = vld1q_s32(lv + j), gf = vld1q_s32(lv + u + j), gg = vld1q_s32(lv + 2 * u + j);
            const int32x4_t go = vld1q_s32(lv + 3 * u + j);
            const int32x4_t fc = vmulq_s32(gf, vmovl_s16(vld1_s16(c + j))), ig = vmulq_s32(gi, gg);
            const int64x2_t lo = vrshlq_s64(vmlal_n_s32(vmull_n_s32(vget_low_s32(fc), p->m_fc), vget_low_s32(ig), p->m_ig), shc);
            const int64x2_t hi = vrshlq_s64(vmlal_high_n_s32(vmull_high_n_s32(fc, p->m_fc), ig, p->m_ig), shc);
            const int32x4_t cn = clamp4(vqmovn_high_s64(vqmovn_s64(lo), hi), p->nc);
            vst1_s16(c + j, vmovn_s32(cn));
            const int32x4_t tc = vsubq_s32(count4(s.tab[4], s.pow2[4], coarse[4], cn), vdupq_n_s32(p->nt));
            const int32x4_t hv = clamp4(rs4(vmulq_s32(go, tc), p->m_h, p->s_h), p->nh);
            int32_t hs[4];
            vst1q_s32(hs, hv);
            for (int i = 0; i < 4; i++) out[j + i] = h[j + i] = (int8_t)hs[i];
        }
        for (int32_t j = u4; j < u; j++) {
            c[j] = kws_lstm_a4_vec_cell(p, lv[j], lv[u + j], lv[2 * u + j], c[j]);
            const int32_t tc = kws_lstm_a4_count(p->thr[4], p->n_thr[4], c[j]) - p->nt;
            out[j] = h[j] = kws_lstm_a4_vec_hidden(p, lv[3 * u + j], tc);
        }
    }
}

#else
int kws_lstm_a4_neon_available(void) { return 0; }

void kws_lstm_a4_neon(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                      int32_t *scratch, int8_t *output)
{
    kws_lstm_a4(p, steps, input, h, c, scratch, output);   /* never selected outside AArch64 */
}
#endif
