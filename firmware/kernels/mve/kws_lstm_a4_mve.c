/* kws_lstm_a4_mve.c - SUB8_LSTM_A4 on Helium (MVE, Cortex-M55), byte-exact with kernels/reference/kws_lstm_a4.c
 * (docs/formats.md section 13, docs/kernels.md). 4-bit weights; any sizes and activation widths.
 *
 * Per hop the layer input and the previous h are split once into even / odd columns (kernels/opt/
 * kws_lstm_a4_vec.h). The products run four rows per pass: per 16 weight bytes (32 weights) one VLDRB, one
 * VSHL #4 (16 w of the even columns), one VAND 0xF0 (16 w of the odd columns) and two VMLADAVA.S8 into the
 * row's 32-bit sum; the two activation vectors are loaded once for the four rows. A row length that is not
 * a multiple of 16 bytes ends with one tail-predicated block. With a zero point on the layer input, two
 * more VMLADAVA against 0/1 column masks give 16 sum w for the correction. The gate and hidden rescales
 * run four rows at a time in 32-bit lanes, exact (rs4 below: VQSHL + VRMULH, or VMULH + VRSHL); the
 * threshold counts (gate levels, tanh(c)) likewise as a branch-free binary search: per probe one gather
 * load (VLDRW with offsets), one compare and one predicated add. The cell update (a sum of two 64-bit
 * products, one rounding) is the reference's scalar code. Rows past a multiple of four take scalar code.
 * Compiled into every build; a stub outside MVE builds. */
#include "kws_kernels.h"
#include "kws_lstm_a4_simd.h"
#include "kws_lstm_a4_vec.h"

int kws_lstm_a4_mve_supported(const kws_lstm_a4_params *p)
{
    return p->weight_bits == 4;
}

size_t kws_lstm_a4_mve_scratch_bytes(const kws_lstm_a4_params *p)
{
    return kws_lstm_a4_vec_bytes(p);
}

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

int kws_lstm_a4_mve_available(void) { return 1; }

/* 32 MACs of one row: 16 bytes v of packed weights against the even / odd activations */
static inline __attribute__((always_inline)) int32_t mac32(int32_t a, uint8x16_t v, int8x16_t e, int8x16_t o)
{
    a = vmladavaq_s8(a, vreinterpretq_s8_u8(vshlq_n_u8(v, 4)), e);
    return vmladavaq_s8(a, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0xF0))), o);
}

/* acc[r] = 16 sum_k w[r][k] a[k] for the four rows at w (row bytes rb); with masks (me != NULL) also
 * sum[r] = 16 sum_k w[r][k] over the valid columns */
static inline __attribute__((always_inline)) void dot_rows4(const uint8_t *w, int32_t rb, const int8_t *ae,
                                                            const int8_t *ao, const int8_t *me, const int8_t *mo,
                                                            int32_t *acc, int32_t *sum)
{
    const uint8_t *w0 = w, *w1 = w + rb, *w2 = w1 + rb, *w3 = w2 + rb;
    const int32_t full = rb & ~15, tail = rb - full;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const int8_t *pe = ae, *po = ao, *qe = me, *qo = mo;
    for (int32_t k = 0; k < full; k += 16) {   /* pointers stepped: VLDRB has no register offset */
        const int8x16_t e = vldrbq_s8(pe), o = vldrbq_s8(po);
        const uint8x16_t v0 = vldrbq_u8(w0), v1 = vldrbq_u8(w1), v2 = vldrbq_u8(w2), v3 = vldrbq_u8(w3);
        pe += 16; po += 16; w0 += 16; w1 += 16; w2 += 16; w3 += 16;
        a0 = mac32(a0, v0, e, o); a1 = mac32(a1, v1, e, o); a2 = mac32(a2, v2, e, o); a3 = mac32(a3, v3, e, o);
        if (me) {
            const int8x16_t ne = vldrbq_s8(qe), no = vldrbq_s8(qo);
            qe += 16; qo += 16;
            s0 = mac32(s0, v0, ne, no); s1 = mac32(s1, v1, ne, no); s2 = mac32(s2, v2, ne, no); s3 = mac32(s3, v3, ne, no);
        }
    }
    if (tail) {   /* zeroing loads: nothing is read past the row; the activations are zero there anyway */
        const mve_pred16_t pt = vctp8q((uint32_t)tail);
        const int8x16_t e = vldrbq_s8(pe), o = vldrbq_s8(po);
        const uint8x16_t v0 = vldrbq_z_u8(w0, pt), v1 = vldrbq_z_u8(w1, pt);
        const uint8x16_t v2 = vldrbq_z_u8(w2, pt), v3 = vldrbq_z_u8(w3, pt);
        a0 = mac32(a0, v0, e, o); a1 = mac32(a1, v1, e, o); a2 = mac32(a2, v2, e, o); a3 = mac32(a3, v3, e, o);
        if (me) {
            const int8x16_t ne = vldrbq_s8(qe), no = vldrbq_s8(qo);
            s0 = mac32(s0, v0, ne, no); s1 = mac32(s1, v1, ne, no); s2 = mac32(s2, v2, ne, no); s3 = mac32(s3, v3, ne, no);
        }
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    if (me) { sum[0] = s0; sum[1] = s1; sum[2] = s2; sum[3] = s3; }
}

/* #{T <= z} on four lanes; tab padded with INT32_MAX to P (a power of two) entries */
static inline int32x4_t count4(const int32_t *tab, int32_t P, int32x4_t z)
{
    uint32x4_t pos = vdupq_n_u32(0);
    for (uint32_t step = (uint32_t)P >> 1; step; step >>= 1) {
        const int32x4_t t = vldrwq_gather_shifted_offset_s32(tab, vaddq_n_u32(pos, step - 1));
        pos = vaddq_m_n_u32(pos, pos, step, vcmpleq_s32(t, z));
    }
    return vreinterpretq_s32_u32(pos);
}

/* a rescale (M, S) with M normalized to [2^30, 2^31): floor((v M + 2^(S-1)) / 2^S) is unchanged by M 2^k, S + k */
typedef struct { int32_t m, s; } rescale;

static rescale norm(int32_t m, int32_t s)
{
    rescale r = {m, s};
    while (r.m < (1 << 30)) { r.m <<= 1; r.s++; }   /* m > 0: the op's prepare checks it */
    return r;
}

/* rs(v; M, S) on four lanes, exact where the true value lies within +-2^29 and at least +-2^29 (same sign)
 * where it does not, so a clamp to +-2^29 or less afterwards is exact:
 *   S < 32: VQSHL by 32 - S, then VRMULH ((v' M + 2^31) >> 32); a saturated v' means |v M / 2^S| >= 2^29;
 *   S = 32: VRMULH;  S > 32: VMULH (floor of the high half; the low half cannot move the rounding) and a
 *   rounding shift right by S - 32;  S >= 64: 0. */
static inline int32x4_t rs4(int32x4_t v, rescale r)
{
    if (r.s < 32) return vrmulhq_s32(vqshlq_r_s32(v, 32 - r.s), vdupq_n_s32(r.m));
    if (r.s == 32) return vrmulhq_s32(v, vdupq_n_s32(r.m));
    if (r.s >= 64) return vdupq_n_s32(0);
    return vrshlq_n_s32(vmulhq_s32(v, vdupq_n_s32(r.m)), 32 - r.s);
}

static inline int32x4_t clamp4(int32x4_t v, int32_t n)
{
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(-n)), vdupq_n_s32(n));
}

static inline int32x4_t vec4(const int32_t *a)
{
    return vldrwq_s32(a);
}

KWS_NO_VECTORIZE
void kws_lstm_a4_mve(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    kws_lstm_a4_vec_scratch s;
    kws_lstm_a4_vec_layout(p, scratch, &s);
    kws_lstm_a4_vec_setup(p, &s);
    const int32_t u = p->units, nin = p->n_in, zp = p->zp_x, u4 = u & ~3, wb = p->w_row_bytes, rb = p->r_row_bytes;
    rescale ri[4], rr[4];
    for (int g = 0; g < 4; g++) {
        ri[g] = norm(p->m_in[g], p->s_in[g]);
        rr[g] = norm(p->m_rec[g], p->s_rec[g]);
    }
    const rescale rh = norm(p->m_h, p->s_h);
    int32_t *lv = s.lv;
    for (int32_t t = 0; t < steps; t++) {
        const int8_t *x = input + (size_t)t * (size_t)nin;
        kws_lstm_a4_vec_split(x, nin, s.xe, s.xo, s.xb);
        kws_lstm_a4_vec_split(h, u, s.he, s.ho, s.hb);
        for (int32_t g = 0; g < 4; g++) {
            const int32_t off = g == 2 ? p->nt : 0;
            for (int32_t j = 0; j < u4; j += 4) {
                const int32_t row = g * u + j;
                int32_t a[4], sw[4], b[4];
                const uint8_t *w = p->w + (size_t)row * (size_t)wb;
                if (zp) {
                    dot_rows4(w, wb, s.xe, s.xo, s.me, s.mo, a, sw);
                    for (int i = 0; i < 4; i++) a[i] -= zp * sw[i];
                } else {
                    dot_rows4(w, wb, s.xe, s.xo, NULL, NULL, a, sw);
                }
                dot_rows4(p->r + (size_t)row * (size_t)rb, rb, s.he, s.ho, NULL, NULL, b, NULL);
                const int32x4_t z = vaddq_s32(vaddq_s32(clamp4(rs4(vshrq_n_s32(vec4(a), 4), ri[g]), KWS_LSTM_A4_Z_CLAMP),
                                                        clamp4(rs4(vshrq_n_s32(vec4(b), 4), rr[g]), KWS_LSTM_A4_Z_CLAMP)),
                                              vldrwq_s32(p->bias + row));
                vstrwq_s32(lv + row, vsubq_n_s32(count4(s.tab[g], s.pow2[g], z), off));
            }
            for (int32_t j = u4; j < u; j++) {
                const int32_t row = g * u + j;
                const int32_t a = kws_lstm_a4_vec_dot1(p->w + (size_t)row * (size_t)wb, x, nin, -zp);
                const int32_t b = kws_lstm_a4_vec_dot1(p->r + (size_t)row * (size_t)rb, h, u, 0);
                lv[row] = kws_lstm_a4_count(p->thr[g], p->n_thr[g], kws_lstm_a4_vec_z(p, g, row, a, b)) - off;
            }
        }
        for (int32_t j = 0; j < u; j++) c[j] = kws_lstm_a4_vec_cell(p, lv[j], lv[u + j], lv[2 * u + j], c[j]);
        int8_t *out = output + (size_t)t * (size_t)u;
        for (int32_t j = 0; j < u; j += 4) {
            const mve_pred16_t pj = vctp32q((uint32_t)(u - j));
            const int32x4_t tc = vsubq_n_s32(count4(s.tab[4], s.pow2[4], vldrhq_z_s32(c + j, pj)), p->nt);
            const int32x4_t hv = clamp4(rs4(vmulq_s32(vldrwq_z_s32(lv + 3 * u + j, pj), tc), rh), p->nh);
            vstrbq_p_s32(h + j, hv, pj);
            vstrbq_p_s32(out + j, hv, pj);
        }
    }
}

#else
int kws_lstm_a4_mve_available(void) { return 0; }

void kws_lstm_a4_mve(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output)
{
    kws_lstm_a4(p, steps, input, h, c, scratch, output);   /* never selected outside Helium builds */
}
#endif
