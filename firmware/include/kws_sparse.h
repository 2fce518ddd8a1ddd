/*
 * kws_sparse.h - sparse k-bit weights of SUB8_FULLY_CONNECTED (docs/formats.md section 8):
 * layout 4 "nm" (N:M: at most N non-zeros in every group of M inputs, packed indices + values)
 * and layout 5 "bsr" (block-compressed sparse rows: row pointers, block columns, packed block
 * values; block = 1 is CSR). k = 2..8, values in layout 0's field encoding.
 *
 * kws_sparse_prepare() checks every index, count and size of the packed tensor once (a hostile
 * model gets a status and a one-line detail, never an out-of-bounds read at invoke); the kernels
 * then trust it. Kernel choice at prepare time: the build's optimized sparse kernel
 * (kernels/dsp/ on Cortex-M4/M7, kernels/mve/ on M55, kernels/neon/ on AArch64:
 * kws_fully_connected_sparse_<isa>.c) when it handles (layout, bits, block), else the reference
 * kws_fully_connected_sparse (kernels/reference/).
 */
#ifndef KWS_SPARSE_H
#define KWS_SPARSE_H

#include <stddef.h>
#include <stdint.h>
#include "kws_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* KWS_LAYOUT_NM = 4, KWS_LAYOUT_BSR = 5: kws_kernels.h holds every layout number */

typedef struct {
    int32_t layout;           /* 4 or 5 */
    int32_t bits;             /* 2..8 */
    /* layout 4 */
    int32_t n, m, idx_bits;   /* N, M, log2(M) */
    int32_t groups;           /* ceil(in / M) */
    int32_t index_bytes;      /* bytes of a row's index stream; values follow in the row */
    int32_t row_bytes;
    /* layout 5 */
    int32_t block, nnz_blocks, block_cols;
    int32_t block_rows;       /* 1, or 4: row_ptr indexes row groups of 4 and a block is 4 x block */
    int32_t row_groups;       /* block_rows 4: ceil(out / 4) */
    const uint8_t *row_ptr;   /* (out+1) u32 little-endian; block_rows 4: (row_groups+1) */
    const uint8_t *cols;      /* nnz_blocks u16 little-endian */
    const uint8_t *values;    /* nnz_blocks*block k-bit fields, LSB-first stream; block_rows 4: per
                               * block block/2 u32 words in layout 8's k = 4 lanes (docs/formats.md 8) */
    const uint8_t *weights;   /* the packed tensor */
} kws_sparse_params;

static inline int kws_sparse_layout(int32_t layout) { return layout == KWS_LAYOUT_NM || layout == KWS_LAYOUT_BSR; }

/* Parse layout 4/5's extra custom options (nm_n, nm_m / block, nnz_blocks) into o. */
kws_status kws_sparse_parse_options(const uint8_t *buf, uint32_t len, kws_sub8_options *o, const char **detail);
/* Expected packed bytes of a layout 4/5 tensor, -1 when the options are inconsistent. */
int64_t kws_sparse_packed_bytes(const kws_sub8_options *o);
/* Validate the packed tensor (sizes, row pointers, indices sorted and in range, values on the
 * k-bit grid, no non-zero weight past in_features) and fill sp. */
kws_status kws_sparse_prepare(const kws_sub8_options *o, const uint8_t *weights, uint32_t bytes,
                              kws_sparse_params *sp, const char **detail);

/* Reference kernel (kernels/reference/kws_fully_connected_sparse.c): p as from kws_sub8_prepare. */
void kws_fully_connected_sparse(const kws_fc_params *p, const kws_sparse_params *sp, int32_t batches,
                                const int8_t *input, const int32_t *bias, int8_t *output);

/* Optimized sparse kernel of the build (kernels/{dsp,mve,neon}/kws_fully_connected_sparse_*.c, or
 * kernels/opt/kws_fc_sparse_none.c). */
extern const char kws_fc_sparse_opt_isa[];    /* "dsp", "mve", "neon" or "none" */
int kws_fc_sparse_opt_supported(const kws_fc_params *p, const kws_sparse_params *sp);
size_t kws_fc_sparse_opt_scratch_bytes(const kws_fc_params *p, const kws_sparse_params *sp);
void kws_fully_connected_sparse_opt(const kws_fc_params *p, const kws_sparse_params *sp, void *scratch,
                                    int32_t batches, const int8_t *input, const int32_t *bias, int8_t *output);

/* LSB-first bit stream: the width-bit field at bit offset pos (width <= 8). */
static inline uint32_t kws_sparse_field(const uint8_t *s, uint32_t pos, uint32_t width)
{
    const uint8_t *b = s + (pos >> 3);
    uint32_t sh = pos & 7u, v = b[0];
    if (sh + width > 8u) v |= (uint32_t)b[1] << 8;
    return (v >> sh) & ((1u << width) - 1u);
}

static inline int32_t kws_sparse_value(uint32_t field, uint32_t bits)
{
    return (int32_t)(field << (32u - bits)) >> (32u - bits);
}

static inline uint32_t kws_sparse_u32(const uint8_t *b) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }
static inline uint32_t kws_sparse_u16(const uint8_t *b) { return b[0] | (uint32_t)b[1] << 8; }

#ifdef __cplusplus
}
#endif
#endif
