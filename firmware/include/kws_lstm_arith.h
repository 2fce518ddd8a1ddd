/*
 * kws_lstm_arith.h - the scalar arithmetic of TFLite's integer LSTM that every LSTM kernel shares
 * (kernels/reference/kws_lstm_s8.c, kernels/dsp/kws_lstm_dsp.c): saturation to int16, the table
 * sigmoid / tanh, one gate's activation from its two accumulators, and the cell / hidden update of one
 * unit. Written once here so the kernels cannot drift apart; docs/formats.md section 10 has the
 * arithmetic, tflm_port/lstm.py the same in numpy. static inline: each kernel keeps its own copy in
 * its own loop. A kernel may define KWS_LSTM_MBQM before including this to an equal but faster
 * MultiplyByQuantizedMultiplier (the DSP kernel uses kws_fc_opt_mbqm: one SMULL, proven equal for every
 * multiplier QuantizeMultiplier gives and checked by kws_kbench's self-test).
 */
#ifndef KWS_LSTM_ARITH_H
#define KWS_LSTM_ARITH_H

#include <stdint.h>
#include "kws_kernels.h"

#ifndef KWS_LSTM_MBQM
#define KWS_LSTM_MBQM kws_multiply_by_quantized_multiplier
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t kws_lstm_sat16(int32_t v) { return __ssat(v, 16); }
static inline int8_t kws_lstm_sat8(int32_t v) { return (int8_t)__ssat(v, 8); }
#else
static inline int32_t kws_lstm_sat16(int32_t v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
static inline int8_t kws_lstm_sat8(int32_t v) { return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v); }
#endif

/* Q3.12 -> Q0.15 */
static inline int16_t kws_lstm_sigmoid16(int32_t g)
{
    int32_t v = g * 3;
    uint32_t a = (uint32_t)(v < 0 ? -v : v), k = a >> 9, r;
    if (k >= 255) {
        r = 0x7FFFu << 10;
    } else {
        uint32_t ua = kws_sigmoid_table_u16[k], ub = kws_sigmoid_table_u16[k + 1];
        r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(r >> 10);
}

/* Q(n).(15-n) -> Q0.15 through tanh(x) = 2 sigmoid(2x) - 1 */
static inline int16_t kws_lstm_tanh16(int32_t x, int32_t int_bits)
{
    int32_t v;
    if (int_bits >= 3) {
        v = x * (3 << (int_bits - 3));
    } else {
        int32_t s = 3 - int_bits;
        v = (x * 3 + (1 << (s - 1))) >> s;
    }
    uint32_t a = (uint32_t)(v < 0 ? -v : v), k = a >> 8;
    int32_t r;
    if (k >= 255) {
        r = 0xFFFF << 8;
    } else {
        uint32_t ua = kws_sigmoid_table_u16[k], ub = kws_sigmoid_table_u16[k + 1];
        r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

/* gate g of one unit from its input and recurrent accumulators (bias and zero points included) */
static inline int16_t kws_lstm_gate(const kws_lstm_params *p, int g, int32_t acc_in, int32_t acc_rec)
{
    int32_t s = kws_lstm_sat16(kws_lstm_sat16(KWS_LSTM_MBQM(acc_in, p->in_mult[g], p->in_shift[g])) +
                               kws_lstm_sat16(KWS_LSTM_MBQM(acc_rec, p->rec_mult[g], p->rec_shift[g])));
    return g == KWS_LSTM_GATE_C ? kws_lstm_tanh16(s, 3) : kws_lstm_sigmoid16(s);
}

/* unit j's cell update from its four gates: c[j] updated in place, the new hidden value returned */
static inline int8_t kws_lstm_cell(const kws_lstm_params *p, int16_t gi, int16_t gf, int16_t gc, int16_t go, int16_t *cj_io)
{
    int32_t cj = kws_lstm_sat16(KWS_LSTM_MBQM((int32_t)gf * *cj_io, p->fc_mult, p->fc_shift));
    int32_t ig = kws_lstm_sat16(KWS_LSTM_MBQM((int32_t)gi * gc, p->ig_mult, p->ig_shift));
    cj = kws_lstm_sat16(cj + ig);
    if (p->cell_clip > 0) cj = cj > p->cell_clip ? p->cell_clip : cj < -p->cell_clip ? -p->cell_clip : cj;
    *cj_io = (int16_t)cj;
    int32_t hv = KWS_LSTM_MBQM((int32_t)go * kws_lstm_tanh16(cj, p->cell_int_bits),
                                                     p->h_mult, p->h_shift) + p->zp_h;
    return kws_lstm_sat8(hv);
}

#endif
