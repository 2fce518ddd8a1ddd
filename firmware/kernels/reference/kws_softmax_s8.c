/* kws_softmax_s8: int8 -> int8 softmax with the integer fixed-point exp and reciprocal that
 * TFLite Micro's reference kernel uses (input diff in Q5.26, sum of exps in Q12.19, output scale
 * 1/256, zero point -128). Helpers below implement the public gemmlowp fixed-point arithmetic. */
#include "kws_kernels.h"

#define SCALED_DIFF_INT_BITS 5
#define ACCUM_INT_BITS 12

static int32_t sat_shl(int32_t x, int e) /* saturating x * 2^e, e > 0 */
{
    const int32_t threshold = (int32_t)((1LL << (31 - e)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

static int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* exp(a) for a in [-1/4, 0), Q0.31 in and out */
static int32_t exp_quarter(int32_t a)
{
    const int32_t c_exp_m1_8 = 1895147668;   /* exp(-1/8) in Q0.31 */
    const int32_t c_one_third = 715827883;   /* 1/3 in Q0.31 */
    int32_t x = wrap_add(a, 1 << 28);        /* a + 1/8 */
    int32_t x2 = kws_srdhm(x, x);
    int32_t x3 = kws_srdhm(x2, x);
    int32_t x4 = kws_srdhm(x2, x2);
    int32_t x4_4 = kws_rounding_divide_by_pot(x4, 2);
    int32_t poly = kws_rounding_divide_by_pot(wrap_add(kws_srdhm(wrap_add(x4_4, x3), c_one_third), x2), 1);
    return wrap_add(c_exp_m1_8, kws_srdhm(c_exp_m1_8, wrap_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26, result Q0.31 */
static int32_t exp_on_negative(int32_t a)
{
    static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    int32_t a_mod = wrap_sub(a & (quarter - 1), quarter);  /* in [-1/4, 0) */
    int32_t result = exp_quarter(sat_shl(a_mod, SCALED_DIFF_INT_BITS));
    int32_t remainder = wrap_sub(a_mod, a);
    for (int e = -2; e <= 4; e++) {
        if (remainder & (1 << (26 + e)))
            result = kws_srdhm(result, mult[e + 2]);
    }
    if (a == 0) result = INT32_MAX;
    return result;
}

/* 1/(1+x) for x in [0,1): Newton-Raphson in Q2.29, result Q0.31 */
static int32_t one_over_one_plus_x(int32_t a)
{
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810, cm32_17 = -1010580540;
    int32_t x = wrap_add(c48_17, kws_srdhm(half_den, cm32_17));
    for (int i = 0; i < 3; i++) {
        int32_t hdx = kws_srdhm(half_den, x);
        int32_t one_minus = wrap_sub(1 << 29, hdx);
        x = wrap_add(x, sat_shl(kws_srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1);
}

/* rounding divide by 2^e for any e in [0, 62] (the output step can need e > 31) */
static int32_t rdbp_wide(int32_t x, int e)
{
    int64_t mask = (int64_t)((1ULL << e) - 1);
    int64_t rem = (int64_t)x & mask;
    int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (rem > threshold ? 1 : 0));
}

static int clz32(uint32_t x)
{
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) { x <<= 1; n++; }
    return n;
}

KWS_NO_VECTORIZE
void kws_softmax_s8(const kws_softmax_params *p, int32_t rows, int32_t depth, const int8_t *input,
                    int8_t *output)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *in = input + (size_t)r * depth;
        int8_t *out = output + (size_t)r * depth;
        int32_t max_v = -128;
        for (int32_t c = 0; c < depth; c++)
            if (in[c] > max_v) max_v = in[c];
        int32_t sum = 0;
        for (int32_t c = 0; c < depth; c++) {
            int32_t diff = (int32_t)in[c] - max_v;
            if (diff >= p->diff_min) {
                int32_t scaled = kws_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum = wrap_add(sum, kws_rounding_divide_by_pot(exp_on_negative(scaled), ACCUM_INT_BITS));
            }
        }
        int headroom = clz32((uint32_t)sum);
        int bits_over_unit = ACCUM_INT_BITS - headroom;
        int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
        int32_t scale = one_over_one_plus_x(shifted_minus_one);
        for (int32_t c = 0; c < depth; c++) {
            int32_t diff = (int32_t)in[c] - max_v;
            int32_t v = -128;
            if (diff >= p->diff_min) {
                int32_t scaled = kws_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                int32_t e = exp_on_negative(scaled);
                v = rdbp_wide(kws_srdhm(scale, e), bits_over_unit + 31 - 8) - 128;
                if (v < -128) v = -128;
                if (v > 127) v = 127;
            }
            out[c] = (int8_t)v;
        }
    }
}
