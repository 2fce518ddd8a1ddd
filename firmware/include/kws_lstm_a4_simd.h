/* kws_lstm_a4_simd.h - the Helium (Cortex-M55) and NEON (AArch64) kernels of SUB8_LSTM_A4
 * (kernels/mve/kws_lstm_a4_mve.c, kernels/neon/kws_lstm_a4_neon.c; docs/kernels.md): 4-bit weights, any
 * in_features / units / activation widths; same bytes as kws_lstm_a4. Each file is compiled into every build;
 * available() is 0 outside its ISA and the runtime (runtime/kws_lstm_a4_op.c) picks it only where
 * kws_kernel_isa() is its family. Scratch: *_scratch_bytes(p), 4-byte aligned. */
#ifndef KWS_LSTM_A4_SIMD_H
#define KWS_LSTM_A4_SIMD_H

#include <string.h>
#include "kws_lstm_a4.h"

/* the padded length P of a threshold table: the power of two above its length, at least 16 (16 words: one
 * 64-byte table lookup on NEON) */
static inline int32_t kws_lstm_a4_vec_pow2_above(int32_t n)
{
    int32_t p = 16;
    while (p <= n) p <<= 1;
    return p;
}

/* bytes of the five padded tables of i, f, c, o, tanh(c) */
static inline size_t kws_lstm_a4_vec_tables_bytes(const kws_lstm_a4_params *p)
{
    size_t words = 0;
    for (int g = 0; g < 5; g++) words += (size_t)kws_lstm_a4_vec_pow2_above(p->n_thr[g]);
    return words * sizeof(int32_t);
}

/* the five tables, each padded with INT32_MAX to its P, one after the other at out (the runtime does this
 * once at prepare into persistent memory and points p->vec_tab at it; the kernels do it into scratch per
 * invocation where vec_tab is NULL) */
static inline void kws_lstm_a4_vec_tables(const kws_lstm_a4_params *p, int32_t *out)
{
    for (int g = 0; g < 5; g++) {
        const int32_t n = p->n_thr[g], P = kws_lstm_a4_vec_pow2_above(n);
        memcpy(out, p->thr[g], (size_t)n * sizeof(int32_t));
        for (int32_t k = n; k < P; k++) out[k] = INT32_MAX;
        out += P;
    }
}

int kws_lstm_a4_mve_available(void);
int kws_lstm_a4_mve_supported(const kws_lstm_a4_params *p);
size_t kws_lstm_a4_mve_scratch_bytes(const kws_lstm_a4_params *p);
void kws_lstm_a4_mve(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                     int32_t *scratch, int8_t *output);

int kws_lstm_a4_neon_available(void);
int kws_lstm_a4_neon_supported(const kws_lstm_a4_params *p);
size_t kws_lstm_a4_neon_scratch_bytes(const kws_lstm_a4_params *p);
void kws_lstm_a4_neon(const kws_lstm_a4_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                      int32_t *scratch, int8_t *output);

#endif
