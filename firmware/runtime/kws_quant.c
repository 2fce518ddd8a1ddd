/* kws_quant.c - prepare-time arithmetic: float scales -> integer multipliers, softmax scaling. */
#include <math.h>
#include "kws_kernels.h"

void kws_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift)
{
    if (!(real > 0.0) || !isfinite(real)) { *multiplier = 0; *shift = 0; return; }
    int e;
    double q = frexp(real, &e);                 /* real = q * 2^e, q in [0.5, 1) */
    int64_t qf = (int64_t)round(q * 2147483648.0);
    if (qf == (1LL << 31)) { qf /= 2; e++; }
    if (e < -31) { e = 0; qf = 0; }
    *multiplier = (int32_t)qf;
    *shift = e;
}

kws_status kws_softmax_prepare_s8(double beta, double input_scale, kws_softmax_params *p)
{
    double real = beta * input_scale * (double)(1 << (31 - 5));
    if (!(real > 0.0) || !isfinite(real)) return KWS_ERR_QUANT;
    if (real > 2147483647.0) real = 2147483647.0;
    int32_t m, s;
    kws_quantize_multiplier(real, &m, &s);
    if (s < 0 || s > 31) return KWS_ERR_QUANT;
    p->input_multiplier = m;
    p->input_left_shift = s;
    double radius = 1.0 * ((1 << 5) - 1) * (double)(1LL << (31 - 5)) / (double)(1LL << s);
    p->diff_min = -(int32_t)floor(radius);
    return KWS_OK;
}
