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
float kws_log_f32(float x)
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

void kws_lfbe_frame(kws_frontend *fe, const int16_t *a, const int16_t *b, const int16_t *c)
{
    const float to_f = 1.0f / 32768.0f;
    float *re = fe->re, *im = fe->im, *pw = fe->power;
    /* z[n] = x[2n] + i x[2n+1] of the windowed, zero-padded 512-sample frame, written straight
     * to its bit-reversed FFT position. Sample pairs never straddle the 160-sample parts. */
    const int16_t *part[3] = {a, b, c};
    for (int seg = 0; seg < 3; seg++) {
        const int16_t *src = part[seg];
        const float *win = kws_fe_hann + seg * KWS_FE_HOP;
        int pairs = seg < 2 ? KWS_FE_HOP / 2 : (KWS_FE_WINDOW - 2 * KWS_FE_HOP) / 2;
        int n0 = seg * (KWS_FE_HOP / 2);
        for (int i = 0; i < pairs; i++) {
            int d = kws_fe_bitrev[n0 + i];
            re[d] = ((float)src[2 * i] * to_f) * win[2 * i];
            im[d] = ((float)src[2 * i + 1] * to_f) * win[2 * i + 1];
        }
    }
    for (int n = KWS_FE_WINDOW / 2; n < KWS_FE_FFT; n++) {
        int d = kws_fe_bitrev[n];
        re[d] = 0.0f;
        im[d] = 0.0f;
    }
    fft256_bitrev_in(re, im);
    /* split: X[k] = E[k] + W512^k O[k], E = (Z[k] + conj Z[256-k]) / 2, O = (Z[k] - conj Z[256-k]) / 2i */
    float x0 = re[0] + im[0], xn = re[0] - im[0];
    pw[0] = x0 * x0;
    pw[KWS_FE_FFT] = xn * xn;
    for (int k = 1; k < KWS_FE_FFT; k++) {
        float rk = re[k], ik = im[k], rc = re[KWS_FE_FFT - k], ic = im[KWS_FE_FFT - k];
        float er = 0.5f * (rk + rc);
        float ei = 0.5f * (ik - ic);
        float orr = 0.5f * (ik + ic);
        float oi = -(0.5f * (rk - rc));
        float cs = kws_fe_cos[k], sn = kws_fe_sin[k];
        float xr = er + (cs * orr + sn * oi);
        float xi = ei + (cs * oi - sn * orr);
        pw[k] = xr * xr + xi * xi;
    }
    for (int j = 0; j < KWS_FE_BINS; j++) {
        const float *w = kws_fe_mel_weights + kws_fe_mel_offset[j];
        const float *p = pw + kws_fe_mel_start[j];
        float acc = 0.0f;
        for (int o = 0; o < kws_fe_mel_len[j]; o++) acc = acc + w[o] * p[o];
        fe->lfbe[j] = kws_log_f32(acc + 1e-6f);
    }
}

int8_t kws_quantize_feature(float x, float mean, float std, float scale, int32_t zero_point)
{
    float q = ((x - mean) / std) / scale;
    float r = roundf(q); /* exact half away from zero (floorf(q + 0.5f) is not: 0.49999997f) */
    float v = r + (float)zero_point;
    if (!(v > -128.0f)) return -128; /* also NaN */
    if (v > 127.0f) return 127;
    return (int8_t)(int32_t)v;
}

int kws_frontend_push(kws_frontend *fe, const int16_t *hop)
{
    uint32_t h = fe->hops++;
    memcpy(fe->audio + (h % 3) * KWS_FE_HOP, hop, KWS_FE_HOP * sizeof(int16_t));
    if (h < 2) return 0;
    kws_lfbe_frame(fe, fe->audio + ((h - 2) % 3) * KWS_FE_HOP, fe->audio + ((h - 1) % 3) * KWS_FE_HOP,
                   fe->audio + (h % 3) * KWS_FE_HOP);
    int8_t *row = fe->ring[fe->frames % fe->span];
    const kws_fe_config *c = &fe->cfg;
    for (int b = 0; b < KWS_FE_BINS; b++)
        row[b] = kws_quantize_feature(fe->lfbe[b], c->mean[b], c->std[b], c->in_scale, c->in_zero_point);
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
