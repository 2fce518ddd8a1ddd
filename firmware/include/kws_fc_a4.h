/*
 * kws_fc_a4.h - SUB8_FC_A4: fully connected with k-bit weights and k-bit activations
 * (docs/formats.md section 9, docs/kernels.md "4-bit activations").
 *
 * Activations below 8 bits are int8 containers holding the unsigned grid value 0..2^k-1 (zero
 * point 0); the operator clamps its output to [zp_out, zp_out + 2^output_bits - 1] through
 * p->fc.act (act_max set at prepare). The arithmetic is SUB8_FULLY_CONNECTED's.
 *
 *   kws_fully_connected_a4      reference, weights in layout 0 (row_lsb), any k = 1..8, any input
 *   kws_fully_connected_a4_dsp  Cortex-M DSP (SMLAD), weights in layout 7 (a4_pairs, k = 2..4),
 *                               input_bits <= 4, in_features <= KWS_FC_A4_MAX_IN; plain C elsewhere
 *                               (same arithmetic, for host tests)
 *   kws_fully_connected_a4_opt  the build's A4 kernel for <= 4-bit inputs, exactly one per image, in the
 *                               layout kws_isa_a4_layout (kws_layout_table.h) gives its family:
 *                               Cortex-M DSP / host: layout 7 (kws_fully_connected_a4_dsp),
 *                               Helium: layout 6 (kernels/mve/kws_fully_connected_a4_mve.c),
 *                               AArch64: layout 6 (kernels/neon/kws_fully_connected_a4_neon.c, SDOT with
 *                               dotprod, SMLAL into int16 lanes without)
 */
#ifndef KWS_FC_A4_H
#define KWS_FC_A4_H

#include <stddef.h>
#include <stdint.h>
#include "kws_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KWS_LAYOUT_A4_PAIRS 7
#define KWS_FC_A4_MAX_IN 4096   /* the DSP kernel's contract (layout 7), tested at the limit */

typedef struct {
    kws_fc_params fc;         /* fc.layout: 0 (reference) or 7 (DSP) */
    int32_t input_bits;       /* 2..8; < 8: input values in 0..2^input_bits-1, fc.act.input_offset 0 */
    int32_t output_bits;      /* 2..8; < 8: fc.act.act_max = act_min + 2^output_bits - 1 */
} kws_fc_a4_params;

void kws_fully_connected_a4(const kws_fc_a4_params *p, int32_t batches, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias, int8_t *output);

/* ---- layout 7 a4_pairs (docs/formats.md section 9) ---- */
int64_t kws_fc_a4_packed_bytes(int32_t out_features, int32_t in_features);
/* w[out][in] on the k-bit grid (|w| <= 7) -> packed bytes; padding 0 */
void kws_fc_a4_pack_pairs(int32_t out_features, int32_t in_features, const int8_t *w, uint8_t *packed);
/* integer weight w[o][i] of a layout-7 matrix (slow; tests) */
int32_t kws_fc_a4_weight(int32_t out_features, int32_t in_features, const uint8_t *packed, int32_t o, int32_t i);
size_t kws_fc_a4_scratch_bytes(int32_t in_features);
/* 1 when the DSP kernel takes these parameters */
int kws_fc_a4_dsp_supported(const kws_fc_a4_params *p);
void kws_fully_connected_a4_dsp(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output);

/* ---- the build's A4 kernel (one ISA file per image defines these) ---- */
extern const int kws_fc_a4_opt_isa;   /* KWS_ISA_* of kws_layout_table.h */
/* 1 when kws_fully_connected_a4_opt takes p (its layout, bits, input_bits <= 4, input offset 0) */
int kws_fc_a4_opt_supported(const kws_fc_a4_params *p);
size_t kws_fc_a4_opt_scratch_bytes(const kws_fc_a4_params *p);
void kws_fully_connected_a4_opt(const kws_fc_a4_params *p, void *scratch, int32_t batches, const int8_t *input,
                                const uint8_t *weights, const int32_t *bias, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
