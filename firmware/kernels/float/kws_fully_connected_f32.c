/* kws_fully_connected_f32: float32 FULLY_CONNECTED (y = W x + b, optional ReLU), our own
 * baseline for the "x times less CPU than float" figures. Written to be as fast as a careful
 * engineer would make it, so that the integer kernels are compared with a fair float kernel
 * (docs/kernels.md, "Float baselines"): four rows per pass so each activation load feeds four
 * rows, multi-register loads with post-increment, counted loops without address arithmetic.
 *   Cortex-M4F/M7 (FPv4/FPv5, no SIMD): per 16 inputs one VLDM of 16 activations (s0-s15), per
 *          row VLDM of 12 + VLDM of 4 weights and 16 scalar VFMA: 75 instructions per 64 MACs;
 *   Cortex-M55 (Helium): per 4 inputs one VLDRW of activations, per row one VLDRW of weights and
 *          one VFMA of 4 lanes, unrolled four times under a low-overhead loop (LE);
 *   AArch64: per 16 inputs LD1 of four registers for the activations and for each row, 16 FMLA
 *          of 4 lanes, post-increment addressing.
 * The in_features tail (in % 16, or % 4 on M55) and the out_features tail (out % 4) are plain C. */
#include "kws_kernels_opt.h"
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define F32_NEON 1
#elif defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 2)
#define F32_MVE 1
#elif defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
#define F32_VFP 1
#endif

static inline float finish(float acc, const float *bias, int32_t o, int relu)
{
    if (bias) acc += bias[o];
    return relu && acc < 0.0f ? 0.0f : acc;
}

/* s[0..3] = dot products of rows w0..w3 (stride in_n) with x over the first n16 inputs (n16 % 16 == 0,
 * n16 > 0); the pointers come back advanced by n16 */
#if F32_VFP
static inline void dot4(int32_t n16, const float **px, const float **pw0, const float **pw1, const float **pw2,
                        const float **pw3, float *s)
{
    const float *x = *px, *w0 = *pw0, *w1 = *pw1, *w2 = *pw2, *w3 = *pw3;
    int32_t cnt = n16 >> 4;
    const uint32_t zero = 0;
#define ROW16(W, A) "vldmia %[" W "]!, {s20-s31}\n\t"                                        \
    "vfma.f32 " A ", s0, s20\n\tvfma.f32 " A ", s1, s21\n\tvfma.f32 " A ", s2, s22\n\t"   \
    "vfma.f32 " A ", s3, s23\n\tvfma.f32 " A ", s4, s24\n\tvfma.f32 " A ", s5, s25\n\t"   \
    "vfma.f32 " A ", s6, s26\n\tvfma.f32 " A ", s7, s27\n\tvfma.f32 " A ", s8, s28\n\t"   \
    "vfma.f32 " A ", s9, s29\n\tvfma.f32 " A ", s10, s30\n\tvfma.f32 " A ", s11, s31\n\t" \
    "vldmia %[" W "]!, {s20-s23}\n\t"                                                     \
    "vfma.f32 " A ", s12, s20\n\tvfma.f32 " A ", s13, s21\n\tvfma.f32 " A ", s14, s22\n\t" \
    "vfma.f32 " A ", s15, s23\n\t"
    __asm__ volatile("vmov s16, %[z]\n\tvmov s17, %[z]\n\tvmov s18, %[z]\n\tvmov s19, %[z]\n\t"
                     "1:\n\t"
                     "vldmia %[x]!, {s0-s15}\n\t"
                     ROW16("w0", "s16") ROW16("w1", "s17") ROW16("w2", "s18") ROW16("w3", "s19")
                     "subs %[cnt], %[cnt], #1\n\t"
                     "bne 1b\n\t"
                     "vstmia %[s], {s16-s19}\n\t"
                     : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [cnt] "+r"(cnt)
                     : [z] "r"(zero), [s] "r"(s)
                     : "cc", "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
                       "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24",
                       "s25", "s26", "s27", "s28", "s29", "s30", "s31");
#undef ROW16
    *px = x; *pw0 = w0; *pw1 = w1; *pw2 = w2; *pw3 = w3;
}
#define DOT4_STEP 16
#elif F32_MVE
static inline void dot4(int32_t n16, const float **px, const float **pw0, const float **pw1, const float **pw2,
                        const float **pw3, float *s)
{
    const float *x = *px, *w0 = *pw0, *w1 = *pw1, *w2 = *pw2, *w3 = *pw3;
    int32_t cnt = n16 >> 4;
    float acc[16] __attribute__((aligned(16)));
#define STEP4 "vldrw.32 q0, [%[x]], #16\n\t"                                                        \
    "vldrw.32 q1, [%[w0]], #16\n\tvfma.f32 q4, q0, q1\n\tvldrw.32 q2, [%[w1]], #16\n\tvfma.f32 q5, q0, q2\n\t" \
    "vldrw.32 q3, [%[w2]], #16\n\tvfma.f32 q6, q0, q3\n\tvldrw.32 q1, [%[w3]], #16\n\tvfma.f32 q7, q0, q1\n\t"
    __asm__ volatile("vmov.i32 q4, #0\n\tvmov.i32 q5, #0\n\tvmov.i32 q6, #0\n\tvmov.i32 q7, #0\n\t"
                     "dls lr, %[cnt]\n\t"
                     "1:\n\t"
                     STEP4 STEP4 STEP4 STEP4
                     "le lr, 1b\n\t"
                     /* four lane sums at once: store the accumulators, reload them transposed (VLD4) */
                     "vstrw.32 q4, [%[a]]\n\tvstrw.32 q5, [%[a], #16]\n\tvstrw.32 q6, [%[a], #32]\n\tvstrw.32 q7, [%[a], #48]\n\t"
                     "vld40.32 {q0, q1, q2, q3}, [%[a]]\n\tvld41.32 {q0, q1, q2, q3}, [%[a]]\n\t"
                     "vld42.32 {q0, q1, q2, q3}, [%[a]]\n\tvld43.32 {q0, q1, q2, q3}, [%[a]]\n\t"
                     "vadd.f32 q0, q0, q1\n\tvadd.f32 q2, q2, q3\n\tvadd.f32 q0, q0, q2\n\tvstrw.32 q0, [%[s]]\n\t"
                     : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)
                     : [cnt] "r"(cnt), [a] "r"(acc), [s] "r"(s)
                     : "cc", "memory", "lr", "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7");
#undef STEP4
    *px = x; *pw0 = w0; *pw1 = w1; *pw2 = w2; *pw3 = w3;
}
#define DOT4_STEP 16
#elif F32_NEON
static inline void dot4(int32_t n16, const float **px, const float **pw0, const float **pw1, const float **pw2,
                        const float **pw3, float *s)
{
    const float *x = *px, *w0 = *pw0, *w1 = *pw1, *w2 = *pw2, *w3 = *pw3;
    int64_t cnt = n16 >> 4;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
#define ROWN(W, A) "ld1 {v4.4s-v7.4s}, [%[" W "]], #64\n\t"                                          \
    "fmla %[" A "].4s, v0.4s, v4.4s\n\tfmla %[" A "].4s, v1.4s, v5.4s\n\t"                            \
    "fmla %[" A "].4s, v2.4s, v6.4s\n\tfmla %[" A "].4s, v3.4s, v7.4s\n\t"
    __asm__ volatile("1:\n\t"
                     "ld1 {v0.4s-v3.4s}, [%[x]], #64\n\t"
                     ROWN("w0", "a0") ROWN("w1", "a1") ROWN("w2", "a2") ROWN("w3", "a3")
                     "subs %[cnt], %[cnt], #1\n\t"
                     "b.ne 1b\n\t"
                     : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [cnt] "+r"(cnt),
                       [a0] "+w"(a0), [a1] "+w"(a1), [a2] "+w"(a2), [a3] "+w"(a3)
                     :
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7");
#undef ROWN
    s[0] = vaddvq_f32(a0); s[1] = vaddvq_f32(a1); s[2] = vaddvq_f32(a2); s[3] = vaddvq_f32(a3);
    *px = x; *pw0 = w0; *pw1 = w1; *pw2 = w2; *pw3 = w3;
}
#define DOT4_STEP 16
#else
#define DOT4_STEP 0
#endif

KWS_NO_VECTORIZE
void kws_fully_connected_f32(int32_t in_n, int32_t out_n, const float *x, const float *w, const float *bias,
                             int relu, float *y)
{
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        const float *w0 = w + (size_t)o * in_n, *w1 = w0 + in_n, *w2 = w1 + in_n, *w3 = w2 + in_n;
        const float *xp = x;
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        int32_t i = 0;
#if DOT4_STEP
        const int32_t n16 = in_n - in_n % DOT4_STEP;
        if (n16 > 0) dot4(n16, &xp, &w0, &w1, &w2, &w3, s);
        i = n16;
#endif
        for (; i < in_n; i++) {
            float xi = *xp++;
            s[0] = __builtin_fmaf(*w0++, xi, s[0]); s[1] = __builtin_fmaf(*w1++, xi, s[1]);
            s[2] = __builtin_fmaf(*w2++, xi, s[2]); s[3] = __builtin_fmaf(*w3++, xi, s[3]);
        }
        y[o] = finish(s[0], bias, o, relu); y[o + 1] = finish(s[1], bias, o + 1, relu);
        y[o + 2] = finish(s[2], bias, o + 2, relu); y[o + 3] = finish(s[3], bias, o + 3, relu);
    }
    for (; o < out_n; o++) {
        const float *w0 = w + (size_t)o * in_n;
        float s = 0.0f;
        for (int32_t i = 0; i < in_n; i++) s = __builtin_fmaf(w0[i], x[i], s);
        y[o] = finish(s, bias, o, relu);
    }
}
