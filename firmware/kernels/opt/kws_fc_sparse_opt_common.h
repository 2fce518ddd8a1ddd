/* kws_fc_sparse_opt_common.h - what the Helium (mve/) and NEON (neon/) sparse kernels share: the
 * block formats both run, the size of their scratch (the widened activations) and the scalar tail
 * of the widening. Each ISA file keeps only its vector code. */
#ifndef KWS_FC_SPARSE_OPT_COMMON_H
#define KWS_FC_SPARSE_OPT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "kws_sparse.h"

/* block-compressed rows (layout 5) with k = 8 and blocks of 8 or 16, or k = 4 and blocks of 16 */
static inline int kws_fc_sparse_opt_block_format(const kws_sparse_params *sp)
{
    if (sp->layout != KWS_LAYOUT_BSR || sp->block_rows != 1) return 0;
    if (sp->bits == 8) return sp->block == 8 || sp->block == 16;
    return sp->bits == 4 && sp->block == 16;
}

/* int16 activations (x + in_off) of every block column, plus 16 bytes for the vector over-read */
static inline size_t kws_fc_sparse_opt_widened_bytes(const kws_sparse_params *sp)
{
    return (size_t)sp->block_cols * (size_t)sp->block * sizeof(int16_t) + 16u;
}

/* inputs i.. of the widening that the 16-wide vector loop left, zero-padded up to `padded`; with
 * deinterleave16 each group of 16 holds its even inputs first, then its odd ones (k = 4 blocks) */
static inline void kws_fc_sparse_opt_widen_tail(const int8_t *x, int32_t i, int32_t in_n, int32_t padded, int32_t in_off,
                                                int deinterleave16, int16_t *xs)
{
    for (; i < padded; i++) {
        int16_t v = (int16_t)(i < in_n ? x[i] + in_off : 0);
        int32_t pos = deinterleave16 ? (i & ~15) + ((i & 15) >> 1) + ((i & 1) << 3) : i;
        xs[pos] = v;
    }
}

#endif
