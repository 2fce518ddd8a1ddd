/* kws_fully_connected_sparse: int8 activations x sparse k-bit weights (k = 2..8), SUB8 layouts 4
 * (N:M) and 5 (block-compressed rows, 1 x B or 4 x B blocks), kws_sparse.h / docs/formats.md section 8. Only the stored
 * weights are visited; arithmetic is TFLite int8 FULLY_CONNECTED's, so the outputs equal the dense
 * reference's on the same integer matrix. The tensor was validated by kws_sparse_prepare. */
#include "kws_sparse.h"

KWS_NO_VECTORIZE
void kws_fully_connected_sparse(const kws_fc_params *p, const kws_sparse_params *sp, int32_t batches,
                                const int8_t *input, const int32_t *bias, int8_t *output)
{
    const int32_t in_n = p->in_features, out_n = p->out_features, in_off = p->act.input_offset;
    const uint32_t k = (uint32_t)sp->bits;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *x = input + (size_t)b * in_n;
        for (int32_t o = 0; o < out_n; o++) {
            int32_t acc = 0;
            if (sp->layout == KWS_LAYOUT_NM) {
                const uint8_t *row = sp->weights + (size_t)o * (size_t)sp->row_bytes, *val = row + sp->index_bytes;
                const uint32_t ib = (uint32_t)sp->idx_bits;
                uint32_t s = 0;
                for (int32_t g = 0; g < sp->groups; g++)
                    for (int32_t t = 0; t < sp->n; t++, s++) {
                        int32_t v = kws_sparse_value(kws_sparse_field(val, s * k, k), k);
                        if (v) acc += ((int32_t)x[g * sp->m + (int32_t)kws_sparse_field(row, s * ib, ib)] + in_off) * v;
                    }
            } else if (sp->block_rows == 4) {   /* 4-row blocks: row o is nibble o % 4 of its group's lanes */
                const int32_t g = o >> 2, q = o & 3;
                const uint32_t a = kws_sparse_u32(sp->row_ptr + 4 * (size_t)g), e = kws_sparse_u32(sp->row_ptr + 4 * (size_t)g + 4);
                for (uint32_t j = a; j < e; j++) {
                    const int32_t c0 = (int32_t)kws_sparse_u16(sp->cols + 2 * (size_t)j) * sp->block;
                    for (int32_t t = 0; t < sp->block; t++) {
                        uint32_t f = (kws_sparse_u16(sp->values + 2 * ((size_t)j * (size_t)sp->block + (size_t)t)) >> (4 * q)) & 15u;
                        int32_t v = q < 3 ? (int32_t)f - 8 : kws_sparse_value(f, 4);
                        if (v) acc += ((int32_t)x[c0 + t] + in_off) * v;
                    }
                }
            } else {
                const uint32_t a = kws_sparse_u32(sp->row_ptr + 4 * (size_t)o), e = kws_sparse_u32(sp->row_ptr + 4 * (size_t)o + 4);
                for (uint32_t j = a; j < e; j++) {
                    const int32_t c0 = (int32_t)kws_sparse_u16(sp->cols + 2 * (size_t)j) * sp->block;
                    for (int32_t t = 0; t < sp->block; t++) {
                        int32_t v = kws_sparse_value(kws_sparse_field(sp->values, (j * (uint32_t)sp->block + (uint32_t)t) * k, k), k);
                        if (v) acc += ((int32_t)x[c0 + t] + in_off) * v;
                    }
                }
            }
            if (bias) acc = (int32_t)((uint32_t)acc + (uint32_t)bias[o]);
            output[(size_t)b * out_n + o] = kws_requantize_clamp_s8(acc, p->multiplier[o], p->shift[o], &p->act);
        }
    }
}
