/* kws_fully_connected_f32: float32 FULLY_CONNECTED (y = W x + b, optional ReLU), our own
 * baseline for the "x times less CPU than float" figures. Written to be fast, not to lose:
 * four rows per pass so each activation load feeds four FMAs;
 *   AArch64: NEON FMLA on 4 lanes, 16 inputs per step (LD1 of four registers);
 *   Cortex-M55: Helium VFMA on 4 lanes;
 *   Cortex-M4F/M7: scalar VFMA (the FPU has no SIMD). */
#include "kws_kernels_opt.h"
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define F32_NEON 1
#elif defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#include <arm_mve.h>
#define F32_MVE 1
#endif

static inline float finish(float acc, const float *bias, int32_t o, int relu)
{
    if (bias) acc += bias[o];
    return relu && acc < 0.0f ? 0.0f : acc;
}

KWS_NO_VECTORIZE
void kws_fully_connected_f32(int32_t in_n, int32_t out_n, const float *x, const float *w, const float *bias,
                             int relu, float *y)
{
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const float *w0 = w + (size_t)o * in_n, *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n;
        float s0, s1, s2, s3;
        int32_t i = 0;
#if F32_NEON
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 16 <= in_n; i += 16) {
            float32x4x4_t xv = vld1q_f32_x4(x + i), v;
            v = vld1q_f32_x4(w0 + i);
            a0 = vfmaq_f32(a0, v.val[0], xv.val[0]); a0 = vfmaq_f32(a0, v.val[1], xv.val[1]);
            a0 = vfmaq_f32(a0, v.val[2], xv.val[2]); a0 = vfmaq_f32(a0, v.val[3], xv.val[3]);
            v = vld1q_f32_x4(w1 + i);
            a1 = vfmaq_f32(a1, v.val[0], xv.val[0]); a1 = vfmaq_f32(a1, v.val[1], xv.val[1]);
            a1 = vfmaq_f32(a1, v.val[2], xv.val[2]); a1 = vfmaq_f32(a1, v.val[3], xv.val[3]);
            v = vld1q_f32_x4(w2 + i);
            a2 = vfmaq_f32(a2, v.val[0], xv.val[0]); a2 = vfmaq_f32(a2, v.val[1], xv.val[1]);
            a2 = vfmaq_f32(a2, v.val[2], xv.val[2]); a2 = vfmaq_f32(a2, v.val[3], xv.val[3]);
            v = vld1q_f32_x4(w3 + i);
            a3 = vfmaq_f32(a3, v.val[0], xv.val[0]); a3 = vfmaq_f32(a3, v.val[1], xv.val[1]);
            a3 = vfmaq_f32(a3, v.val[2], xv.val[2]); a3 = vfmaq_f32(a3, v.val[3], xv.val[3]);
        }
        s0 = vaddvq_f32(a0); s1 = vaddvq_f32(a1); s2 = vaddvq_f32(a2); s3 = vaddvq_f32(a3);
#elif F32_MVE
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        for (; i + 4 <= in_n; i += 4) {
            float32x4_t xv = vld1q_f32(x + i);
            a0 = vfmaq_f32(a0, vld1q_f32(w0 + i), xv);
            a1 = vfmaq_f32(a1, vld1q_f32(w1 + i), xv);
            a2 = vfmaq_f32(a2, vld1q_f32(w2 + i), xv);
            a3 = vfmaq_f32(a3, vld1q_f32(w3 + i), xv);
        }
        s0 = (vgetq_lane_f32(a0, 0) + vgetq_lane_f32(a0, 1)) + (vgetq_lane_f32(a0, 2) + vgetq_lane_f32(a0, 3));
        s1 = (vgetq_lane_f32(a1, 0) + vgetq_lane_f32(a1, 1)) + (vgetq_lane_f32(a1, 2) + vgetq_lane_f32(a1, 3));
        s2 = (vgetq_lane_f32(a2, 0) + vgetq_lane_f32(a2, 1)) + (vgetq_lane_f32(a2, 2) + vgetq_lane_f32(a2, 3));
        s3 = (vgetq_lane_f32(a3, 0) + vgetq_lane_f32(a3, 1)) + (vgetq_lane_f32(a3, 2) + vgetq_lane_f32(a3, 3));
#else
        s0 = s1 = s2 = s3 = 0.0f;
#endif
        for (; i < in_n; i++) {
            float xi = x[i];
            s0 = __builtin_fmaf(w0[i], xi, s0); s1 = __builtin_fmaf(w1[i], xi, s1);
            s2 = __builtin_fmaf(w2[i], xi, s2); s3 = __builtin_fmaf(w3[i], xi, s3);
        }
        y[o] = finish(s0, bias, o, relu); y[o + 1] = finish(s1, bias, o + 1, relu);
        y[o + 2] = finish(s2, bias, o + 2, relu); y[o + 3] = finish(s3, bias, o + 3, relu);
    }
    for (; o < out_n; o++) {
        const float *w0 = w + (size_t)o * in_n;
        float s = 0.0f;
        for (int32_t i = 0; i < in_n; i++) s = __builtin_fmaf(w0[i], x[i], s);
        y[o] = finish(s, bias, o, relu);
    }
}
