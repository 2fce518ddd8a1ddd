/* kws_sparse.c - the C reader of the sparse SUB8_FULLY_CONNECTED layouts 4 (N:M) and 5
 * (block-compressed rows): options, sizes and a full validation of the packed tensor at prepare
 * time (docs/formats.md section 8). tflm_port/sparse.py is the Python packer / unpacker. */
#include <string.h>
#include "kws_sparse.h"
#include "kws_fb.h"

static int opt_int(const uint8_t *b, uint32_t len, const char *key, int32_t lo, int32_t hi, int32_t *out)
{
    int64_t v;
    if (kws_flex_map_int(b, len, key, &v) != 0 || v < lo || v > hi) return -1;
    *out = (int32_t)v;
    return 0;
}

kws_status kws_sparse_parse_options(const uint8_t *buf, uint32_t len, kws_sub8_options *o, const char **detail)
{
    if (o->bits < 2) { *detail = "sparse layouts hold 2..8-bit weights"; return KWS_ERR_UNSUPPORTED; }
    if (o->layout == KWS_LAYOUT_NM) {
        if (opt_int(buf, len, "nm_m", 2, 16, &o->nm_m) || (o->nm_m & (o->nm_m - 1)))
            { *detail = "custom_options.nm_m missing or not 2, 4, 8 or 16"; return KWS_ERR_OPTIONS; }
        if (opt_int(buf, len, "nm_n", 1, o->nm_m - 1, &o->nm_n))
            { *detail = "custom_options.nm_n missing or not in 1..nm_m-1"; return KWS_ERR_OPTIONS; }
    } else {
        if (opt_int(buf, len, "block", 1, 16, &o->block) || (o->block & (o->block - 1)))
            { *detail = "custom_options.block missing or not 1, 2, 4, 8 or 16"; return KWS_ERR_OPTIONS; }
        if (opt_int(buf, len, "nnz_blocks", 0, INT32_MAX, &o->nnz_blocks))
            { *detail = "custom_options.nnz_blocks missing or negative"; return KWS_ERR_OPTIONS; }
        int64_t br;
        int r = kws_flex_map_int(buf, len, "block_rows", &br);
        if (r != 0 && r != 1) { *detail = "custom_options.block_rows not an integer"; return KWS_ERR_OPTIONS; }
        o->block_rows = r == 1 ? 1 : (int32_t)(br == 1 || br == 4 ? br : -1);
        if (o->block_rows < 0) { *detail = "custom_options.block_rows not 1 or 4"; return KWS_ERR_OPTIONS; }
        if (o->block_rows == 4 && (o->bits != 4 || o->block < 4))
            { *detail = "4-row blocks (block_rows 4) need 4-bit weights and block 4, 8 or 16"; return KWS_ERR_OPTIONS; }
    }
    return KWS_OK;
}

static int32_t log2i(int32_t m) { int32_t b = 0; while ((1 << b) < m) b++; return b; }

static int64_t nm_row_bytes(const kws_sub8_options *o)
{
    int64_t slots = (int64_t)((o->in_features + o->nm_m - 1) / o->nm_m) * o->nm_n;
    return (slots * log2i(o->nm_m) + 7) / 8 + (slots * o->bits + 7) / 8;
}

/* layout 5: column array at 4*(out+1), values at the next multiple of 4 after the columns */
static int64_t bsr_values_offset(const kws_sub8_options *o)
{
    int64_t off = 4 * ((int64_t)o->out_features + 1) + 2 * (int64_t)o->nnz_blocks;
    return (off + 3) & ~(int64_t)3;
}

int64_t kws_sparse_packed_bytes(const kws_sub8_options *o)
{
    if (o->in_features < 1 || o->out_features < 1 || o->bits < 2 || o->bits > 8) return -1;
    if (o->layout == KWS_LAYOUT_NM) return o->nm_m >= 2 ? nm_row_bytes(o) * o->out_features : -1;
    if (o->layout != KWS_LAYOUT_BSR || o->block < 1) return -1;
    int64_t cols = (o->in_features + o->block - 1) / o->block;
    if (o->block_rows == 4) {   /* group pointers, columns, then nnz_blocks x 2*block bytes of lanes */
        int64_t groups = (o->out_features + 3) / 4, off = 4 * (groups + 1) + 2 * (int64_t)o->nnz_blocks;
        if (o->bits != 4 || o->nnz_blocks < 0 || (int64_t)o->nnz_blocks > cols * groups) return -1;
        return ((off + 3) & ~(int64_t)3) + (int64_t)o->nnz_blocks * 2 * o->block;
    }
    if (o->block_rows > 1) return -1;
    if (o->nnz_blocks < 0 || (int64_t)o->nnz_blocks > cols * o->out_features) return -1;
    return bsr_values_offset(o) + ((int64_t)o->nnz_blocks * o->block * o->bits + 7) / 8;
}

static int off_grid(int32_t v, int32_t bits) { return bits < 8 && (v > (1 << (bits - 1)) - 1 || v < -((1 << (bits - 1)) - 1)); }

static kws_status check_nm(const kws_sub8_options *o, kws_sparse_params *sp, const char **detail)
{
    const int32_t n = o->nm_n, m = o->nm_m, ib = log2i(m);
    sp->n = n; sp->m = m; sp->idx_bits = ib;
    sp->groups = (o->in_features + m - 1) / m;
    sp->index_bytes = (int32_t)(((int64_t)sp->groups * n * ib + 7) / 8);
    sp->row_bytes = (int32_t)nm_row_bytes(o);
    for (int32_t r = 0; r < o->out_features; r++) {
        const uint8_t *row = sp->weights + (size_t)r * (size_t)sp->row_bytes, *val = row + sp->index_bytes;
        uint32_t s = 0;
        for (int32_t g = 0; g < sp->groups; g++) {
            int32_t prev = -1;
            for (int32_t t = 0; t < n; t++, s++) {
                int32_t idx = (int32_t)kws_sparse_field(row, s * (uint32_t)ib, (uint32_t)ib);
                int32_t v = kws_sparse_value(kws_sparse_field(val, s * (uint32_t)o->bits, (uint32_t)o->bits), (uint32_t)o->bits);
                if (idx <= prev) { *detail = "N:M indices of a group not strictly increasing"; return KWS_ERR_FORMAT; }
                prev = idx;
                if (v != 0 && g * m + idx >= o->in_features) { *detail = "N:M non-zero weight past in_features"; return KWS_ERR_FORMAT; }
                if (off_grid(v, o->bits)) { *detail = "N:M weight off the k-bit grid"; return KWS_ERR_FORMAT; }
            }
        }
    }
    return KWS_OK;
}

static kws_status check_bsr(const kws_sub8_options *o, kws_sparse_params *sp, const char **detail)
{
    const int32_t B = o->block, nb = o->nnz_blocks, out = o->out_features;
    sp->block = B; sp->nnz_blocks = nb;
    sp->block_cols = (o->in_features + B - 1) / B;
    sp->row_ptr = sp->weights;
    sp->cols = sp->weights + 4 * ((size_t)out + 1);
    sp->values = sp->weights + bsr_values_offset(o);
    if (kws_sparse_u32(sp->row_ptr) != 0) { *detail = "block-sparse row pointer 0 is not 0"; return KWS_ERR_FORMAT; }
    if (kws_sparse_u32(sp->row_ptr + 4 * (size_t)out) != (uint32_t)nb) { *detail = "block-sparse row pointers do not add up to nnz_blocks"; return KWS_ERR_FORMAT; }
    uint32_t prev_end = 0;
    for (int32_t r = 0; r < out; r++) {
        uint32_t a = kws_sparse_u32(sp->row_ptr + 4 * (size_t)r), e = kws_sparse_u32(sp->row_ptr + 4 * (size_t)r + 4);
        if (a != prev_end || e < a || e > (uint32_t)nb) { *detail = "block-sparse row pointers decrease or exceed nnz_blocks"; return KWS_ERR_FORMAT; }
        prev_end = e;
        int32_t prev = -1;
        for (uint32_t j = a; j < e; j++) {
            int32_t c = (int32_t)kws_sparse_u16(sp->cols + 2 * (size_t)j);
            if (c >= sp->block_cols) { *detail = "block-sparse column index out of range"; return KWS_ERR_FORMAT; }
            if (c <= prev) { *detail = "block-sparse column indices of a row unsorted or duplicate"; return KWS_ERR_FORMAT; }
            prev = c;
            for (int32_t t = 0; t < B; t++) {
                uint32_t pos = (j * (uint32_t)B + (uint32_t)t) * (uint32_t)o->bits;
                int32_t v = kws_sparse_value(kws_sparse_field(sp->values, pos, (uint32_t)o->bits), (uint32_t)o->bits);
                if (v != 0 && c * B + t >= o->in_features) { *detail = "block-sparse non-zero weight past in_features"; return KWS_ERR_FORMAT; }
                if (off_grid(v, o->bits)) { *detail = "block-sparse weight off the k-bit grid"; return KWS_ERR_FORMAT; }
            }
        }
    }
    return KWS_OK;
}

/* block_rows 4: every nibble on the 4-bit grid (rows 0..2 biased: u = w + 8 in 1..15; row 3 not -8),
 * padding rows and inputs past in_features zero */
static kws_status check_bsr4(const kws_sub8_options *o, kws_sparse_params *sp, const char **detail)
{
    const int32_t B = o->block, nb = o->nnz_blocks, G = (o->out_features + 3) / 4;
    sp->block = B; sp->nnz_blocks = nb; sp->block_rows = 4; sp->row_groups = G;
    sp->block_cols = (o->in_features + B - 1) / B;
    sp->row_ptr = sp->weights;
    sp->cols = sp->weights + 4 * ((size_t)G + 1);
    size_t voff = (4 * ((size_t)G + 1) + 2 * (size_t)nb + 3) & ~(size_t)3;
    sp->values = sp->weights + voff;
    if (kws_sparse_u32(sp->row_ptr) != 0) { *detail = "block-sparse group pointer 0 is not 0"; return KWS_ERR_FORMAT; }
    if (kws_sparse_u32(sp->row_ptr + 4 * (size_t)G) != (uint32_t)nb) { *detail = "block-sparse group pointers do not add up to nnz_blocks"; return KWS_ERR_FORMAT; }
    uint32_t prev_end = 0;
    for (int32_t g = 0; g < G; g++) {
        uint32_t a = kws_sparse_u32(sp->row_ptr + 4 * (size_t)g), e = kws_sparse_u32(sp->row_ptr + 4 * (size_t)g + 4);
        if (a != prev_end || e < a || e > (uint32_t)nb) { *detail = "block-sparse group pointers decrease or exceed nnz_blocks"; return KWS_ERR_FORMAT; }
        prev_end = e;
        int32_t prev = -1;
        for (uint32_t j = a; j < e; j++) {
            int32_t c = (int32_t)kws_sparse_u16(sp->cols + 2 * (size_t)j);
            if (c >= sp->block_cols) { *detail = "block-sparse column index out of range"; return KWS_ERR_FORMAT; }
            if (c <= prev) { *detail = "block-sparse column indices of a row group unsorted or duplicate"; return KWS_ERR_FORMAT; }
            prev = c;
            for (int32_t t = 0; t < B; t++) {
                uint32_t h = kws_sparse_u16(sp->values + 2 * ((size_t)j * (size_t)B + (size_t)t));
                for (int32_t q = 0; q < 4; q++) {
                    uint32_t f = (h >> (4 * q)) & 15u;
                    int32_t v = q < 3 ? (int32_t)f - 8 : kws_sparse_value(f, 4);
                    if ((q < 3 && f == 0) || (q == 3 && f == 8)) { *detail = "block-sparse weight off the k-bit grid"; return KWS_ERR_FORMAT; }
                    if (v != 0 && (4 * g + q >= o->out_features || c * B + t >= o->in_features))
                        { *detail = "block-sparse non-zero weight past out_features or in_features"; return KWS_ERR_FORMAT; }
                }
            }
        }
    }
    return KWS_OK;
}

kws_status kws_sparse_prepare(const kws_sub8_options *o, const uint8_t *weights, uint32_t bytes,
                              kws_sparse_params *sp, const char **detail)
{
    memset(sp, 0, sizeof *sp);
    int64_t want = kws_sparse_packed_bytes(o);
    if (want < 0) { *detail = "sparse options inconsistent (nnz_blocks > out x block columns?)"; return KWS_ERR_OPTIONS; }
    if (want != (int64_t)bytes) { *detail = "sparse packed weight size does not match its options"; return KWS_ERR_SHAPE; }
    if ((int64_t)bytes >= (1LL << 28)) { *detail = "sparse weights larger than 256 MiB"; return KWS_ERR_LIMIT; }
    sp->layout = o->layout;
    sp->bits = o->bits;
    sp->weights = weights;
    sp->block_rows = 1;
    if (o->layout == KWS_LAYOUT_BSR && o->block_rows == 4) return check_bsr4(o, sp, detail);
    return o->layout == KWS_LAYOUT_NM ? check_nm(o, sp, detail) : check_bsr(o, sp, detail);
}
