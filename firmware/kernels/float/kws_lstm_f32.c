/* kws_lstm_f32: one hop of a float32 LSTM layer (gates i, f, c, o, TFLite's order; no peepholes, no
 * projection), the float baseline of the integer LSTMs' per-hop figures (docs/kernels.md, "Float LSTM
 * baseline"; app/kws_kbench.c "lstm"). Written as a careful engineer would for these cores:
 *   - the eight gate products (input and recurrent kernels, [4u][n_in] and [4u][u] row-major) run through
 *     kws_fully_connected_f32, the project's float FC (four rows per pass, VLDM / VFMA on M4F/M7, Helium
 *     VFMA on the M55, four-register FMLA on AArch64);
 *   - sigmoid and tanh through one exp each, kws_lstm_f32_exp: 2^n by the exponent bits and a degree-6
 *     polynomial on the reduced argument (relative error about 2e-7 over the float range), no libm (the
 *     bare-metal AArch64 images have none, and a libm expf costs more than this).
 * scratch: 8 u floats (the two gate products). */
#include <stdint.h>
#include <string.h>
#include "kws_kernels_opt.h"

float kws_lstm_f32_exp(float x)
{
    if (x > 88.0f) x = 88.0f;
    if (x < -87.0f) x = -87.0f;
    const float n = (float)(int32_t)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));   /* round(x / ln 2) */
    const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;                        /* ln 2 in two parts */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; uint32_t u; } s;
    s.u = (uint32_t)((int32_t)n + 127) << 23;
    return p * s.f;
}

static inline float sigm(float x) { return 1.0f / (1.0f + kws_lstm_f32_exp(-x)); }
static inline float tanh_(float x) { return 1.0f - 2.0f / (1.0f + kws_lstm_f32_exp(2.0f * x)); }

void kws_lstm_f32(int32_t n_in, int32_t units, const float *x, const float *w, const float *r, const float *bias,
                  float *h, float *c, float *scratch)
{
    const int32_t u = units;
    float *a = scratch, *b = scratch + 4 * u;
    kws_fully_connected_f32(n_in, 4 * u, x, w, bias, 0, a);
    kws_fully_connected_f32(u, 4 * u, h, r, NULL, 0, b);   /* reads the old h: every gate does */
    for (int32_t j = 0; j < u; j++) {
        const float i = sigm(a[j] + b[j]), f = sigm(a[u + j] + b[u + j]);
        const float g = tanh_(a[2 * u + j] + b[2 * u + j]), o = sigm(a[3 * u + j] + b[3 * u + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * tanh_(c[j]);
    }
}
