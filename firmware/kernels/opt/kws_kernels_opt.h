/*
 * kws_kernels_opt.h - optimized FULLY_CONNECTED kernels (Cortex-M DSP, Helium/MVE, AArch64 NEON)
 * and the kernel-specific weight layouts they read (docs/formats.md, layouts 2 and 3;
 * docs/kernels.md for the design and the figures).
 *
 * One signature for every ISA: the reference kernel's (kws_fully_connected_s8 / _sub8) plus a
 * context with a scratch buffer and the per-row weight sums computed once at prepare time.
 * Exactly one ISA file is linked per target (kernels/optimized.mk), and it defines
 * kws_fully_connected_opt / kws_fc_opt_supported / kws_fc_opt_isa. Every result is bit-exact
 * with the reference: the integer sums are the same modulo 2^32 and the requantization is
 * kws_multiply_by_quantized_multiplier.
 */
#ifndef KWS_KERNELS_OPT_H
#define KWS_KERNELS_OPT_H

#include <stddef.h>
#include <stdint.h>
#include "kws_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Weight layouts (p->layout, p->bits):
 *   0 / k=8  plain int8 [out][in] (TFLite INT8 FULLY_CONNECTED weights)
 *   0 / k=1..7 row_lsb (docs/formats.md layout 0; the reference's)
 *   2 / k=1..7 r4_words: rows in groups of 4, each row cut into 32-bit words, the words of the
 *              group's rows interleaved; k>=2: biased unsigned fields in two 16-bit lanes (SMLAD)
 *   3 / k=2..4 r4_nib32: rows in groups of 4, blocks of 32 weights in 16 bytes, biased unsigned
 *              nibbles, low nibble = weight j, high nibble = weight 16+j (VMLADAV / SDOT / SMLAL)
 *   6 / k=1,2,4 rows_per_byte: byte j of a group holds input j of G = 8/k consecutive rows, row r in
 *              bits [k*r, k*r+k): lower rows biased (u = w + 2^(k-1)), the top row two's complement
 *              (k = 1: bit = +1), groups of 16*ceil(in/16) bytes; an int8 load shifted right
 *              arithmetically by k*r gives telescoping sums (VMLADAV / SDOT, no masking)
 *   8 / k=1,2,4 lanes16: rows in groups of 4, 32-bit words of two 16-bit SMLAD lanes; k = 4: a lane
 *              holds one input of the 4 rows (u0 + 16 u1 + 256 u2 + 4096 w3), k = 2, 1: one input of a
 *              row pair (bottom field at bit 0, top field ending at bit 15), read by AND with a mask
 *              rotated per input pair (kws_fc_opt_lanes16_place, docs/formats.md section 11)
 *   9 / k=3    rows24: rows in groups of 8, input j one little-endian 24-bit word of the 8 rows' fields
 *              (row r at bits 3r..3r+2, w + 4 with the bits that land on a byte's bit 7 inverted), per block
 *              of 16 inputs 48 bytes: the words' byte 0, byte 1, byte 2 (docs/formats.md section 12) */
/* the KWS_LAYOUT_* numbers are defined in kws_kernels.h (4 and 5 are the sparse layouts, kws_sparse.h) */

typedef struct {
    void *scratch;            /* kws_fc_opt_scratch_bytes(p) bytes, 16-byte aligned */
    const int32_t *row_sums;  /* [out_features]: sum of the integer weights of each row */
} kws_fc_opt_ctx;

/* ---- layouts (kernels/opt/kws_fc_opt_layouts.c) ---- */
/* Bytes per output row of a layout, or -1 when the layout cannot hold k-bit weights. */
int32_t kws_fc_opt_row_bytes(int32_t layout, int32_t bits, int32_t in_features);
/* Bytes of a whole packed matrix: out * row_bytes, except layout 6 (ceil(out / G) groups). */
int64_t kws_fc_opt_packed_bytes(int32_t layout, int32_t bits, int32_t out_features, int32_t in_features);
/* Layout 2, k = 1: bit of weight j (0..31) of a word: 8*(j%4) + 7 - j/4, so that the byte-wise
 * UADD8 t,t,t chain (GE = bit 7 of each byte, then t <<= 1) meets weights 4s..4s+3 at step s. */
static inline int32_t kws_fc_opt_bit1_pos(int32_t j) { return 8 * (j & 3) + 7 - (j >> 2); }
/* Layout 8: 32-bit word (inside its group of 4 rows) and bit of row q (0..3) of the group, input i. */
void kws_fc_opt_lanes16_place(int32_t bits, int32_t q, int32_t i, int32_t *word, int32_t *bit);
/* Layout 9: the field bits of row r (0..7) of a group stored inverted (those on a byte's bit 7). */
int32_t kws_fc_opt_rows24_flip(int32_t r);
/* Weights per 32-bit word of layout 2 (k=1: 32; k=2..7: 2*floor(16/k)). */
int32_t kws_fc_opt_words_per(int32_t bits);
/* The C reader: integer weight w[o][i] of a packed matrix (p->layout, p->bits, p->in_features,
 * p->out_features). Slow; for prepare and tests. */
int32_t kws_fc_opt_weight(const kws_fc_params *p, const uint8_t *weights, int32_t o, int32_t i);
/* The C packer (for the kernel bench and the firmware self-test; the converter's is Python):
 * w[out][in] integer weights -> packed bytes (out * row_bytes), padding 0. */
void kws_fc_opt_pack(int32_t layout, int32_t bits, int32_t out_features, int32_t in_features,
                     const int8_t *w, uint8_t *packed);
/* Prepare: row_sums[o] = sum_i w[o][i]. */
void kws_fc_opt_row_sums(const kws_fc_params *p, const uint8_t *weights, int32_t *row_sums);
/* Scratch the linked kernel needs for p (0 when none). */
size_t kws_fc_opt_scratch_bytes(const kws_fc_params *p);

/* ---- the linked ISA (kernels/dsp|mve|neon/) ---- */
extern const char kws_fc_opt_isa[];   /* "dsp", "mve", "neon", "neon_dotprod" */
int kws_fc_opt_supported(int32_t bits, int32_t layout);
/* 1 when this ISA's kws_fully_connected_opt reads p->per_tensor (one multiplier/shift for every row:
 * 8 bytes of arena per layer instead of 8 per output row); 0: the caller stores one per row. */
extern const int kws_fc_opt_per_tensor;
/* the layout this ISA's kernel wants for k-bit weights (a converter choice), -1 if none */
int32_t kws_fc_opt_preferred_layout(int32_t bits);
void kws_fully_connected_opt(const kws_fc_params *p, const kws_fc_opt_ctx *ctx, int32_t batches,
                             const int8_t *input, const uint8_t *weights, const int32_t *bias,
                             int8_t *output);

/* Shared epilogue: acc (int32, bias and offsets included) -> int8 output, bit-exact with the
 * reference's kws_multiply_by_quantized_multiplier for multipliers >= 0 (all QuantizeMultiplier
 * gives). SaturatingRoundingDoublingHighMul(a, m) = trunc((a*m + nudge) / 2^31) equals
 * floor((a*m + 2^30) / 2^31) for every sign of a*m (the negative nudge 1 - 2^30 turns truncation
 * into that floor), and it cannot saturate unless m = INT32_MIN: one SMULL, an add and a shift. */
static inline int32_t kws_fc_opt_mbqm(int32_t x, int32_t m, int32_t shift)
{
    int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t ab = (int64_t)(int32_t)((uint32_t)x << left) * m;
    int32_t h = (int32_t)((ab + (1LL << 30)) >> 31);
    return kws_rounding_divide_by_pot(h, right);
}

static inline int8_t kws_fc_opt_requant(int32_t acc, int32_t mult, int32_t shift, const kws_act_params *a)
{
    return kws_clamp_s8(kws_fc_opt_mbqm(acc, mult, shift) + a->output_offset, a);
}

/* ---- float32 kernel for the "x times less CPU than float" comparison (kernels/float/) ---- */
/* y[o] = b[o] + sum_i w[o][i] * x[i], then max(0, .) when relu; w row-major [out][in]. */
void kws_fully_connected_f32(int32_t in_features, int32_t out_features, const float *x, const float *w,
                             const float *bias, int relu, float *y);
/* one hop of a float32 LSTM layer (kernels/float/kws_lstm_f32.c): w [4u][n_in], r [4u][u] row-major, gates
 * i, f, c, o; bias [4u]; h, c [u] updated in place; scratch 8u floats. The float baseline of the LSTM
 * per-hop figures (app/kws_kbench.c "lstm"). */
void kws_lstm_f32(int32_t n_in, int32_t units, const float *x, const float *w, const float *r, const float *bias,
                  float *h, float *c, float *scratch);
float kws_lstm_f32_exp(float x);

#ifdef __cplusplus
}
#endif
#endif
