/*
 * kws_conv_opt.h - optimized CONV_2D / DEPTHWISE_CONV_2D (int8, TFLite semantics), bit-exact with
 * kws_conv_s8 / kws_depthwise_conv_s8 (docs/kernels.md, section "DS-CNN convolutions on the Cortex-M DSP").
 *
 * kernels/dsp/kws_conv_dsp.c defines these in every build; they do something only on a Cortex-M with
 * the DSP extension and without Helium (M4, M7) and only when an optimized FULLY_CONNECTED kernel is
 * linked (kws_fc_opt_supported(8, 0): the reference-only images say no, so they stay reference-only):
 *   1x1 convolutions (stride 1, no padding)   the int8 FC kernel on the pixels (batches = pixels);
 *   other convolutions (e.g. DS-CNN's first)  im2col of one output row (padding = the input zero point),
 *                                             then the int8 FC kernel on that row's pixels;
 *   3x3 depthwise, stride 1, multiplier 1     SMLAD on tap pairs of int16 planes, four channels at a time.
 * The runtime asks kws_conv_opt_supported() at prepare time and keeps the reference kernel otherwise.
 */
#ifndef KWS_CONV_OPT_H
#define KWS_CONV_OPT_H

#include <stddef.h>
#include <stdint.h>
#include "kws_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    void *scratch;            /* kws_conv_opt_scratch_bytes(p, depthwise) bytes, 16-byte aligned */
    const int32_t *row_sums;  /* convolutions: [out_c] sums of each filter (kws_conv_opt_row_sums); depthwise: NULL */
} kws_conv_opt_ctx;

/* 1 when this build has an optimized kernel for this layer (shape, and the bias / multipliers it is exact for) */
int kws_conv_opt_supported(const kws_conv_params *p, int depthwise, const int32_t *bias);
size_t kws_conv_opt_scratch_bytes(const kws_conv_params *p, int depthwise);
/* convolutions only: the per-filter weight sums the FC kernel needs (out_c int32) */
void kws_conv_opt_row_sums(const kws_conv_params *p, const int8_t *filter, int32_t *row_sums);
void kws_conv_opt(const kws_conv_params *p, int depthwise, const kws_conv_opt_ctx *ctx, const int8_t *input,
                  const int8_t *filter, const int32_t *bias, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif
