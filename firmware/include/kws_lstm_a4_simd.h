/* kws_lstm_a4_simd.h - the Helium (Cortex-M55) and NEON (AArch64) kernels of SUB8_LSTM_A4
 * (kernels/mve/kws_lstm_a4_mve.c, kernels/neon/kws_lstm_a4_neon.c; docs/kernels.md): 4-bit weights, any
 * in_features / units / activation widths; same bytes as kws_lstm_a4. Each file is compiled into every build;
 * available() is 0 outside its ISA and the runtime (runtime/kws_lstm_a4_op.c) picks it only where
 * kws_kernel_isa() is its family. Scratch: *_scratch_bytes(p), 4-byte aligned. */
#ifndef KWS_LSTM_A4_SIMD_H
#define KWS_LSTM_A4_SIMD_H

#include "kws_lstm_a4.h"

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
