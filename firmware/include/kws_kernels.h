/*
 * kws_kernels.h - kernel signatures, parameter structs and the integer arithmetic they share.
 *
 * Convention (one for every kernel): params struct, dims, then data pointers; all
 * multipliers/shifts are precomputed at prepare time; kernels only compute and never fail.
 * Reference kernels live in kernels/reference/, one per file, named after the function.
 */
#ifndef KWS_KERNELS_H
#define KWS_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "kws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scalar reference loops must stay scalar: GCC auto-vectorises them with MVE/dotprod on. */
#if defined(__GNUC__) && !defined(__clang__)
#define KWS_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define KWS_NO_VECTORIZE
#endif

/* ---- fixed-point arithmetic (the public TFLite/gemmlowp integer semantics) ---- */

/* real = multiplier * 2^(shift-31), multiplier in [2^30, 2^31) or 0. Same as TFLite's QuantizeMultiplier. */
void kws_quantize_multiplier(double real, int32_t *multiplier, int32_t *shift);

static inline int32_t kws_srdhm(int32_t a, int32_t b)
{
    /* saturating rounding doubling high multiply */
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t kws_rounding_divide_by_pot(int32_t x, int exponent)
{
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t kws_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return kws_rounding_divide_by_pot(kws_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* ---- parameter structs ---- */

typedef struct {
    int32_t input_offset;     /* -zp_in */
    int32_t output_offset;    /* zp_out */
    int32_t act_min, act_max;
} kws_act_params;

/* The epilogue of every int8 kernel: output offset, then the fused activation's clamp. */
static inline int8_t kws_clamp_s8(int32_t v, const kws_act_params *a)
{
    if (v < a->act_min) v = a->act_min;
    if (v > a->act_max) v = a->act_max;
    return (int8_t)v;
}

/* acc (int32, bias included) -> int8 output: the reference kernels' requantize-and-clamp (the
 * optimized kernels use kws_fc_opt_requant, the same arithmetic with a cheaper high multiply). */
static inline int8_t kws_requantize_clamp_s8(int32_t acc, int32_t multiplier, int32_t shift, const kws_act_params *a)
{
    return kws_clamp_s8(kws_multiply_by_quantized_multiplier(acc, multiplier, shift) + a->output_offset, a);
}

typedef struct {
    kws_act_params act;
    int32_t in_features, out_features;
    const int32_t *multiplier; /* [out_features] (per-tensor: all equal), or [1] when per_tensor */
    const int32_t *shift;      /* [out_features], or [1] when per_tensor */
    /* 1: multiplier/shift hold ONE element for every row. Only set for the optimized kernels that say
     * they read it (kws_fc_opt_per_tensor, kernels/opt/kws_kernels_opt.h); everything else gets 0. */
    int32_t per_tensor;
    /* sub-8-bit packing (kws_fully_connected_sub8 only) */
    int32_t bits;              /* 1..8 */
    int32_t layout;            /* 0 = row_lsb, 2 = r4_words, 3 = r4_nib32, 6 = rows_per_byte (docs/formats.md) */
    int32_t row_bytes;         /* bytes per output row in that layout (layout 0: ceil(in_features*bits/8)) */
} kws_fc_params;

typedef struct {
    kws_act_params act;
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int32_t depth_multiplier;  /* depthwise only */
    const int32_t *multiplier; /* [out_c] */
    const int32_t *shift;      /* [out_c] */
} kws_conv_params;

typedef struct {
    kws_act_params act;
    int32_t batches;
    int32_t in_h, in_w, c, out_h, out_w;
    int32_t f_h, f_w, stride_h, stride_w, pad_h, pad_w;
} kws_pool_params;

typedef struct {
    int32_t input_multiplier, input_left_shift, diff_min;
} kws_softmax_params;

/* ---- reference kernels (kernels/reference/<name>.c) ---- */
void kws_fully_connected_s8(const kws_fc_params *p, int32_t batches, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, int8_t *output);
/* weights: INT4, two per byte, low nibble first, packed over the whole [out][in] tensor */
void kws_fully_connected_s4(const kws_fc_params *p, int32_t batches, const int8_t *input,
                            const uint8_t *weights, const int32_t *bias, int8_t *output);
/* weights: SUB8 layout 0 "row_lsb" (see docs/firmware.md) */
void kws_fully_connected_sub8(const kws_fc_params *p, int32_t batches, const int8_t *input,
                              const uint8_t *weights, const int32_t *bias, int8_t *output);
void kws_conv_s8(const kws_conv_params *p, const int8_t *input, const int8_t *filter,
                 const int32_t *bias, int8_t *output);
void kws_depthwise_conv_s8(const kws_conv_params *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output);
void kws_avgpool_s8(const kws_pool_params *p, const int8_t *input, int8_t *output);
void kws_softmax_s8(const kws_softmax_params *p, int32_t rows, int32_t depth, const int8_t *input,
                    int8_t *output);
void kws_quantize_f32_s8(float scale, int32_t zero_point, int32_t n, const float *input, int8_t *output);
void kws_requantize_s8(int32_t in_zp, int32_t out_zp, int32_t multiplier, int32_t shift, int32_t n,
                       const int8_t *input, int8_t *output);
void kws_dequantize_s8_f32(float scale, int32_t zero_point, int32_t n, const int8_t *input, float *output);

/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 x int8 -> int16 cell (kernels/reference/kws_lstm_s8.c, docs/formats.md 9).
 * Gate index = TFLite's input order: 0 input (i), 1 forget (f), 2 cell (g), 3 output (o). */
enum { KWS_LSTM_GATE_I = 0, KWS_LSTM_GATE_F = 1, KWS_LSTM_GATE_C = 2, KWS_LSTM_GATE_O = 3 };
typedef struct {
    int32_t n_in, units;
    int32_t zp_x, zp_h;
    int32_t in_mult[4], in_shift[4];   /* s_x s_W / 2^-12 */
    int32_t rec_mult[4], rec_shift[4]; /* s_h s_R / 2^-12 */
    int32_t fc_mult, fc_shift;         /* 2^-15 (forget x cell) */
    int32_t ig_mult, ig_shift;         /* 2^-30 / s_c (input gate x cell gate) */
    int32_t h_mult, h_shift;           /* 2^-30 / s_h (output gate x tanh(cell)) */
    int32_t cell_int_bits;             /* 15 + log2(s_c) */
    int32_t cell_clip;                 /* quantized cell clip, 0 = none */
    const int8_t *w[4];                /* [units][n_in] */
    const int8_t *r[4];                /* [units][units] */
    const int32_t *b[4];               /* [units] */
} kws_lstm_params;
extern const uint16_t kws_sigmoid_table_u16[256];
/* steps time steps of one stream; h [units] int8 and c [units] int16 are the state, updated in place;
 * scratch: 4 * units int16; output [steps][units] = h after each step. */
void kws_lstm_s8(const kws_lstm_params *p, int32_t steps, const int8_t *input, int8_t *h, int16_t *c,
                 int16_t *scratch, int8_t *output);

/* DSP version (kernels/dsp/kws_lstm_dsp.c, Cortex-M4/M7): same bytes; available() is 0 in builds without the
 * DSP extension. eff: [8][units] per-row biases with the zero points folded in (kws_lstm_fold_bias);
 * scratch: kws_lstm_dsp_scratch_bytes(). */
int kws_lstm_dsp_available(void);
void kws_lstm_fold_bias(const kws_lstm_params *p, int32_t *eff);
size_t kws_lstm_dsp_scratch_bytes(const kws_lstm_params *p);
void kws_lstm_s8_dsp(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output);
/* Helium (kernels/mve/kws_lstm_mve.c, M55) and NEON (kernels/neon/kws_lstm_neon.c, AArch64; SDOT in the
 * armv8.2+dotprod build) versions: same bytes, same eff; available() is 0 in builds without the ISA;
 * scratch: kws_lstm_vec_scratch_bytes() (the eight gate sums and the four gates of each unit). */
int kws_lstm_mve_available(void);
void kws_lstm_s8_mve(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                     int16_t *c, void *scratch, int8_t *output);
int kws_lstm_neon_available(void);
void kws_lstm_s8_neon(const kws_lstm_params *p, const int32_t *eff, int32_t steps, const int8_t *input, int8_t *h,
                      int16_t *c, void *scratch, int8_t *output);
static inline size_t kws_lstm_vec_scratch_bytes(const kws_lstm_params *p)
{
    return (size_t)p->units * (8u * sizeof(int32_t) + 4u * sizeof(int16_t));
}

/* Softmax prepare arithmetic (TFLite's PreprocessSoftmaxScaling + input radius, 5 integer bits). */
kws_status kws_softmax_prepare_s8(double beta, double input_scale, kws_softmax_params *p);

/* ---- SUB8_FULLY_CONNECTED custom op, usable on its own (TFLite Micro adapter uses these) ---- */
/* Every SUB8 weight layout number, in one place (docs/formats.md): 0 row_lsb, 2 r4_words, 3 r4_nib32
 * (kernels/opt), 4 nm and 5 bsr (sparse, kws_sparse.h), 6 rows_per_byte (kernels/opt, 1/2/4 bits);
 * 1 (row_bitplane) is retired. Defined once in tflm_port/layout_table.py, generated into: */
#include "kws_layout_table.h"   /* KWS_LAYOUT_* and the packed sizes, generated from tflm_port/layout_table.py */
typedef struct {
    int32_t version, bits, layout, in_features, out_features;
    int32_t activation;       /* 0 NONE, 1 RELU */
    int32_t nm_n, nm_m;       /* layout 4 (N:M) only, kws_sparse.h */
    int32_t block, nnz_blocks; /* layout 5 (block-compressed rows) only */
    int32_t block_rows;       /* layout 5: 1, or 4 (4 x block blocks in the lanes16 arrangement, 4-bit) */
} kws_sub8_options;

/* Parse the FlexBuffer map of custom_options; checks every value's range. */
kws_status kws_sub8_parse_options(const uint8_t *buf, uint32_t len, kws_sub8_options *o, const char **detail);
/* Bytes per output row of a SUB8 layout (0 row_lsb, 2 r4_words, 3 r4_nib32, 6 rows_per_byte: per row of a
 * full group of 8/k rows; docs/formats.md),
 * -1 when the layout is unknown or cannot hold k-bit weights. */
int64_t kws_sub8_row_bytes(int32_t layout, int32_t bits, int32_t in_features);
/* Checks layout 0, 2, 3 or 6 (only layout 0 runs on kws_fully_connected_sub8; layouts 2/3/6 need the
 * optimized kernels of kernels/opt, which the caller must check: kws_fc_opt_supported).
 * Fill p (except multiplier/shift pointers' storage, given by the caller: 1 element each is enough
 * for per-tensor; p->multiplier/p->shift must point to out_features elements). */
kws_status kws_sub8_prepare(const kws_sub8_options *o, float s_in, int32_t zp_in, float s_w, int32_t zp_w,
                            float s_out, int32_t zp_out, uint32_t packed_bytes, int32_t *mult_storage,
                            int32_t *shift_storage, kws_fc_params *p, const char **detail);
/* The same with storage_n elements of storage: out_features, or 1 for one multiplier/shift for every
 * row (sets p->per_tensor; only for a kernel with kws_fc_opt_per_tensor). */
kws_status kws_sub8_prepare_n(const kws_sub8_options *o, float s_in, int32_t zp_in, float s_w, int32_t zp_w,
                              float s_out, int32_t zp_out, uint32_t packed_bytes, int32_t *mult_storage,
                              int32_t *shift_storage, int32_t storage_n, kws_fc_params *p, const char **detail);

#ifdef __cplusplus
}
#endif
#endif
