/* kws_frontend.c - streaming LFBE front end in float32 (see kws_frontend.h).
 *
 * Float, not fixed point: every core this project targets (Cortex-M4F, M7, M55, AArch64) has a
 * single-precision FPU, and float32 lets training/frontend_mirror.py reproduce the result bit for
 * bit. Built with -ffp-contract=off: a fused multiply-add would round differently from the
 * mirror. The operation order of every expression below is part of the contract with the mirror. */
#include <math.h>
#include <string.h>
#include "kws_frontend.h"
#include "kws_frontend_tables.h"

#if defined(__GNUC__)
#define KWS_FE_INLINE static inline __attribute__((always_inline))
#else
#define KWS_FE_INLINE static inline
#endif

int kws_frontend_init(kws_frontend *fe, const kws_fe_config *cfg)
{
    if (!fe || !cfg || cfg->context == 0 || cfg->stride == 0 || !(cfg->in_scale > 0.0f)) return -1;
    uint32_t span = (uint32_t)(cfg->context - 1) * cfg->stride + 1;
    if (span > KWS_FE_MAX_SPAN) return -1;
    for (int b = 0; b < KWS_FE_BINS; b++)
        if (!(cfg->std[b] > 0.0f) || cfg->mean[b] != cfg->mean[b]) return -1;
    memset(fe, 0, sizeof *fe);
    fe->cfg = *cfg;
    fe->span = (uint16_t)span;
    return 0;
}

/* Radix-2 decimation in time, 256 complex points, input already in bit-reversed order: 8 stages
 * of butterflies t = v * W256^j, (u, v) -> (u + t, u - t), W256^j = cos(2 pi j/256) - i sin(2 pi j/256). */
static void fft256_bitrev_in(float *re, float *im)
{
    for (int half = 1; half < KWS_FE_FFT; half *= 2) {
        int tw_step = KWS_FE_FFT / half; /* W256^j = W512^(2j): table index j * 2 * (256 / (2 half)) */
        for (int j = 0; j < half; j++) {
            float wr = kws_fe_cos[j * tw_step];
            float wi = -kws_fe_sin[j * tw_step];
            for (int b = j; b < KWS_FE_FFT; b += 2 * half) {
                float vr = re[b + half], vi = im[b + half];
                float tr = vr * wr - vi * wi;
                float ti = vr * wi + vi * wr;
                float ur = re[b], ui = im[b];
                re[b] = ur + tr;
                im[b] = ui + ti;
                re[b + half] = ur - tr;
                im[b + half] = ui - ti;
            }
        }
    }
}

void kws_fft256(float *re, float *im)
{
    for (int i = 0; i < KWS_FE_FFT; i++) {
        int j = kws_fe_bitrev[i];
        if (j > i) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    fft256_bitrev_in(re, im);
}

/* ln x = e ln2 + 2 atanh(s), x = m 2^e with m in (sqrt(1/2), sqrt(2)], s = (m - 1) / (m + 1),
 * |s| < 0.172: the series to s^9 is below float32 resolution. Within 1e-6 of logf for our range. */
KWS_FE_INLINE float log_f32(float x)
{
    union { float f; uint32_t u; } v;
    v.f = x;
    int32_t e = (int32_t)(v.u >> 23) - 127;
    v.u = (v.u & 0x7FFFFFu) | 0x3F800000u;
    float m = v.f;
    if (m > kws_fe_sqrt2) { m = m * 0.5f; e += 1; }
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    const float *c = kws_fe_log_c;
    float p = s * (c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * c[4]))));
    return p + (float)e * kws_fe_ln2;
}

float kws_log_f32(float x) { return log_f32(x); }

/* The FFT of the frame, two radix-2 stages per pass over the data ("radix-2 squared"): every
 * element goes through exactly the butterflies of the plain radix-2 FFT (fft256_bitrev_in), in the
 * same order and with the same twiddles, so the result is the same float32 values; only the loads
 * and stores between the two stages of a pass disappear. A twiddle of exactly 1 (j = 0) skips its
 * multiplications: v * 1 - vi * (-0) is v (up to the sign of a zero, which the power spectrum
 * squares away). */
#define BFLY(ur, ui, vr, vi, wr, wi) do { \
        float tr_ = vr * wr - vi * wi, ti_ = vr * wi + vi * wr; \
        vr = ur - tr_; vi = ui - ti_; ur = ur + tr_; ui = ui + ti_; } while (0)
#define BFLY1(ur, ui, vr, vi) do { \
        float tr_ = vr, ti_ = vi; \
        vr = ur - tr_; vi = ui - ti_; ur = ur + tr_; ui = ui + ti_; } while (0)

/* one group of stages h and 2h: elements b, b + h, b + 2h, b + 3h (b mod 4h = j < h), with the stage-h
 * twiddle w1 for (b, b+h) and (b+2h, b+3h), the stage-2h twiddles wa for (b, b+2h), wb for (b+h, b+3h) */
KWS_FE_INLINE void group2(float *r, float *i, int h, int trivial, float w1r, float w1i, float war, float wai,
                          float wbr, float wbi)
{
    float r0 = r[0], i0 = i[0], r1 = r[h], i1 = i[h], r2 = r[2 * h], i2 = i[2 * h], r3 = r[3 * h], i3 = i[3 * h];
    if (trivial) { /* j = 0: w1 = wa = 1 */
        BFLY1(r0, i0, r1, i1);
        BFLY1(r2, i2, r3, i3);
        BFLY1(r0, i0, r2, i2);
    } else {
        BFLY(r0, i0, r1, i1, w1r, w1i);
        BFLY(r2, i2, r3, i3, w1r, w1i);
        BFLY(r0, i0, r2, i2, war, wai);
    }
    BFLY(r1, i1, r3, i3, wbr, wbi);
    r[0] = r0; i[0] = i0; r[h] = r1; i[h] = i1; r[2 * h] = r2; i[2 * h] = i2; r[3 * h] = r3; i[3 * h] = i3;
}

/* stages h and 2h (h = 4, 16, 64) over the data in place. Stage h, butterfly j: W256^(j 128/h) =
 * W512^(j step), step = 256/h; stage 2h, butterflies j and j + h: W512^(j step/2) and W512^(j step/2 + 128). */
KWS_FE_INLINE void fft_pass2(float *re, float *im, const int h)
{
    const int step = KWS_FE_FFT / h, half = KWS_FE_FFT / 2;
    const float wbr0 = kws_fe_cos[half], wbi0 = -kws_fe_sin[half];
    for (int b = 0; b < KWS_FE_FFT; b += 4 * h)
        group2(re + b, im + b, h, 1, 0.0f, 0.0f, 0.0f, 0.0f, wbr0, wbi0);
    for (int j = 1; j < h; j++) {
        int k2 = j * (step / 2);
        float w1r = kws_fe_cos[j * step], w1i = -kws_fe_sin[j * step];
        float war = kws_fe_cos[k2], wai = -kws_fe_sin[k2];
        float wbr = kws_fe_cos[k2 + half], wbi = -kws_fe_sin[k2 + half];
        for (int b = j; b < KWS_FE_FFT; b += 4 * h)
            group2(re + b, im + b, h, 0, w1r, w1i, war, wai, wbr, wbi);
    }
}

/* Pass 1 = stages 1 and 2 straight from the samples, for n0 in [lo, hi): the output group at
 * 4m = bitrev(n0) (bit-reversed input order) is z[n0], z[n0 + 128], z[n0 + 64], z[n0 + 192], where
 * z[n] = (x[2n] + i x[2n+1]) * window (zero for n >= 200). x0, x1, x2, x3 point at the samples of
 * z[lo], z[lo + 128], z[lo + 64], z[lo + 192] (x3 NULL: beyond the 400-sample window, zero). */
KWS_FE_INLINE void fft_pass1(float *re, float *im, int lo, int hi, const int16_t *x0, const int16_t *x1,
                             const int16_t *x2, const int16_t *x3)
{
    const float w2r = kws_fe_cos[KWS_FE_FFT / 2], w2i = -kws_fe_sin[KWS_FE_FFT / 2];
    const float *h0 = kws_fe_hann_q15 + 2 * lo; /* window / 32768: (x * 2^-15) * w == x * (w * 2^-15) exactly */
    for (int n = lo; n < hi; n++, x0 += 2, x1 += 2, x2 += 2, h0 += 2) {
        float r0 = (float)x0[0] * h0[0], i0 = (float)x0[1] * h0[1];
        float r1 = (float)x1[0] * h0[256], i1 = (float)x1[1] * h0[257];
        float r2 = (float)x2[0] * h0[128], i2 = (float)x2[1] * h0[129];
        float r3, i3;
        BFLY1(r0, i0, r1, i1);
        if (x3) {
            r3 = (float)x3[0] * h0[384];
            i3 = (float)x3[1] * h0[385];
            x3 += 2;
            BFLY1(r2, i2, r3, i3);
        } else { /* z[n + 192] = 0: the butterfly gives (z2, z2) */
            r3 = r2;
            i3 = i2;
        }
        BFLY1(r0, i0, r2, i2);
        BFLY(r1, i1, r3, i3, w2r, w2i);
        int d = kws_fe_bitrev[n];
        float *r = re + d, *i = im + d;
        r[0] = r0; i[0] = i0; r[1] = r1; i[1] = i1; r[2] = r2; i[2] = i2; r[3] = r3; i[3] = i3;
    }
}

void kws_lfbe_frame(kws_frontend *fe, kws_fe_work *work, const int16_t *a, const int16_t *b, const int16_t *c)
{
    /* re, im: the FFT; pw: the power spectrum, written over re[0..256] (re[256] = im[0]) in place */
    float *re = work->z, *im = work->z + KWS_FE_FFT, *pw = work->z;
    /* sample s lies in a (s < 160), b (s < 320) or c: n0 = 0..63 in four runs where the parts of
     * z[n0 + 128], z[n0 + 64], z[n0 + 192] stay the same */
    fft_pass1(re, im, 0, 8, a, b + 96, a + 128, c + 64);
    fft_pass1(re, im, 8, 16, a + 16, b + 112, a + 144, NULL);
    fft_pass1(re, im, 16, 32, a + 32, b + 128, b, NULL);
    fft_pass1(re, im, 32, 64, a + 64, c, b + 32, NULL);
    fft_pass2(re, im, 4);
    fft_pass2(re, im, 16);
    fft_pass2(re, im, 64);
    /* split: X[k] = E[k] + W512^k O[k], E = (Z[k] + conj Z[256-k]) / 2, O = (Z[k] - conj Z[256-k]) / 2i.
     * Bins k and 256 - k share their terms (cos[256 - k] = -cos[k], sin[256 - k] = sin[k] exactly in
     * the tables, k != 128): E, O of 256 - k are (E, -Ei), (Or, -Oi) of k, so
     * X[256-k] = (Er - A) + i (B - Ei) with A = c Or + s Oi, B = c Oi - s Or - the same float32
     * values as computing bin 256 - k on its own (up to zero signs, squared away). In place: bins 0
     * and 256 overwrite re[0] and im[0] = re[256] once read; the pair k, 256 - k overwrites re[k] and
     * re[256 - k] after the last read of them. */
    float x0 = re[0] + im[0], xn = re[0] - im[0];
    pw[0] = x0 * x0;
    pw[KWS_FE_FFT] = xn * xn;
    for (int k = 1; k <= KWS_FE_FFT / 2; k++) {
        float rk = re[k], ik = im[k], rc = re[KWS_FE_FFT - k], ic = im[KWS_FE_FFT - k];
        float er = 0.5f * (rk + rc);
        float ei = 0.5f * (ik - ic);
        float orr = 0.5f * (ik + ic);
        float oi = -(0.5f * (rk - rc));
        float cs = kws_fe_cos[k], sn = kws_fe_sin[k];
        float A = cs * orr + sn * oi;
        float B = cs * oi - sn * orr;
        float xr = er + A;
        float xi = ei + B;
        pw[k] = xr * xr + xi * xi;
        if (k < KWS_FE_FFT / 2) {
            float yr = er - A;
            float yi = B - ei;
            pw[KWS_FE_FFT - k] = yr * yr + yi * yi;
        }
    }
    for (int j = 0; j < KWS_FE_BINS; j++) {
        const float *w = kws_fe_mel_weights + kws_fe_mel_offset[j];
        const float *p = pw + kws_fe_mel_start[j];
        int n = kws_fe_mel_len[j], o = 0;
        float acc = 0.0f;
        for (; o + 1 < n; o += 2) { /* bins in increasing order, as the mirror sums them */
            acc = acc + w[o] * p[o];
            acc = acc + w[o + 1] * p[o + 1];
        }
        if (o < n) acc = acc + w[o] * p[o];
        fe->lfbe[j] = log_f32(acc + 1e-6f);
    }
}

/* ((x - mean) / std) / scale, rounded half away from zero, + zero point, clamped to int8. For
 * |q| < 4096 and an int8 zero point, roundf(q) + zero_point is a small integer, exact in float32:
 * the integer path gives the same result without the libm call (t = q truncated toward zero,
 * d = q - t exact). Anything else (huge values, NaN, another zero point) takes the float path. */
KWS_FE_INLINE int8_t quantize(float x, float mean, float std, float scale, int32_t zero_point)
{
    float q = ((x - mean) / std) / scale;
    if (q > -4096.0f && q < 4096.0f && zero_point >= -128 && zero_point <= 127) {
        int32_t t = (int32_t)q;
        float d = q - (float)t;
        if (d >= 0.5f) t++;
        else if (d <= -0.5f) t--;
        int32_t v = t + zero_point;
        return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    float r = roundf(q); /* exact half away from zero (floorf(q + 0.5f) is not: 0.49999997f) */
    float v = r + (float)zero_point;
    if (!(v > -128.0f)) return -128; /* also NaN */
    if (v > 127.0f) return 127;
    return (int8_t)(int32_t)v;
}

int8_t kws_quantize_feature(float x, float mean, float std, float scale, int32_t zero_point)
{
    return quantize(x, mean, std, scale, zero_point);
}

int kws_frontend_push(kws_frontend *fe, const int16_t *hop, kws_fe_work *work)
{
    uint32_t h = fe->hops++;
    int16_t *slot = fe->audio + (h % 2) * KWS_FE_HOP; /* hop h - 2, no longer needed after this frame */
    if (h >= 2)
        kws_lfbe_frame(fe, work, slot, fe->audio + ((h - 1) % 2) * KWS_FE_HOP, hop);
    memcpy(slot, hop, KWS_FE_HOP * sizeof(int16_t));
    if (h < 2) return 0;
    int8_t *row = fe->ring[fe->frames % fe->span];
    const kws_fe_config *c = &fe->cfg;
    for (int b = 0; b < KWS_FE_BINS; b++)
        row[b] = quantize(fe->lfbe[b], c->mean[b], c->std[b], c->in_scale, c->in_zero_point);
    fe->frames++;
    return 1;
}

int kws_frontend_window_ready(const kws_frontend *fe) { return fe->frames >= fe->span; }

void kws_frontend_window(const kws_frontend *fe, int8_t *dst)
{
    uint32_t first = fe->frames - fe->span; /* oldest frame of the window */
    for (uint32_t j = 0; j < fe->cfg.context; j++)
        memcpy(dst + j * KWS_FE_BINS, fe->ring[(first + j * fe->cfg.stride) % fe->span], KWS_FE_BINS);
}

const int8_t *kws_frontend_frame_q(const kws_frontend *fe)
{
    return fe->ring[(fe->frames + fe->span - 1) % fe->span];
}

uint32_t kws_frontend_frame_end(const kws_frontend *fe)
{
    return (fe->frames - 1) * KWS_FE_HOP + KWS_FE_WINDOW;
}
