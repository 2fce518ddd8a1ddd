/* kws_sub8.c - SUB8_FULLY_CONNECTED option parsing and prepare, independent of the interpreter
 * so that the TFLite Micro adapter (firmware/tflm/) can call the same code. */
#include <math.h>
#include <string.h>
#include "kws_kernels.h"
#include "kws_fb.h"
#include "kws_sparse.h"

static int get_i32(const uint8_t *b, uint32_t len, const char *key, int32_t lo, int32_t hi, int32_t *out)
{
    int64_t v;
    if (kws_flex_map_int(b, len, key, &v) != 0) return -1;
    if (v < lo || v > hi) return -1;
    *out = (int32_t)v;
    return 0;
}

kws_status kws_sub8_parse_options(const uint8_t *buf, uint32_t len, kws_sub8_options *o, const char **detail)
{
    memset(o, 0, sizeof *o);
    if (!buf || len == 0 || !kws_flex_is_map(buf, len)) { *detail = "custom_options is not a FlexBuffer map"; return KWS_ERR_OPTIONS; }
    if (get_i32(buf, len, "version", 1, 1, &o->version)) { *detail = "custom_options.version missing or != 1"; return KWS_ERR_VERSION; }
    if (get_i32(buf, len, "bits", 1, 8, &o->bits)) { *detail = "custom_options.bits missing or not in 1..8"; return KWS_ERR_OPTIONS; }
    if (get_i32(buf, len, "layout", INT32_MIN, INT32_MAX, &o->layout)) { *detail = "custom_options.layout missing"; return KWS_ERR_OPTIONS; }
    if (get_i32(buf, len, "in_features", 1, 1 << 20, &o->in_features)) { *detail = "custom_options.in_features missing or out of range"; return KWS_ERR_OPTIONS; }
    if (get_i32(buf, len, "out_features", 1, 1 << 20, &o->out_features)) { *detail = "custom_options.out_features missing or out of range"; return KWS_ERR_OPTIONS; }
    const char *act; uint32_t alen;
    int r = kws_flex_map_string(buf, len, "activation", &act, &alen);
    if (r == 1) o->activation = 0;
    else if (r == 0 && alen == 4 && memcmp(act, "NONE", 4) == 0) o->activation = 0;
    else if (r == 0 && alen == 4 && memcmp(act, "RELU", 4) == 0) o->activation = 1;
    else { *detail = "custom_options.activation not NONE or RELU"; return KWS_ERR_OPTIONS; }
    if (kws_sparse_layout(o->layout)) return kws_sparse_parse_options(buf, len, o, detail);
    return KWS_OK;
}

int64_t kws_sub8_row_bytes(int32_t layout, int32_t bits, int32_t in_features)
{
    return kws_layout_row_bytes(layout, bits, in_features);   /* kws_layout_table.h (generated) */
}

kws_status kws_sub8_prepare(const kws_sub8_options *o, float s_in, int32_t zp_in, float s_w, int32_t zp_w,
                            float s_out, int32_t zp_out, uint32_t packed_bytes, int32_t *mult_storage,
                            int32_t *shift_storage, kws_fc_params *p, const char **detail)
{
    return kws_sub8_prepare_n(o, s_in, zp_in, s_w, zp_w, s_out, zp_out, packed_bytes, mult_storage, shift_storage,
                              o->out_features, p, detail);
}

kws_status kws_sub8_prepare_n(const kws_sub8_options *o, float s_in, int32_t zp_in, float s_w, int32_t zp_w,
                              float s_out, int32_t zp_out, uint32_t packed_bytes, int32_t *mult_storage,
                              int32_t *shift_storage, int32_t storage_n, kws_fc_params *p, const char **detail)
{
    if (o->layout != 0 && o->layout != 2 && o->layout != 3 && o->layout != KWS_LAYOUT_ROWS_PER_BYTE &&
        o->layout != KWS_LAYOUT_LANES16 && o->layout != KWS_LAYOUT_ROWS24 && !kws_sparse_layout(o->layout)) {
        *detail = "SUB8_FULLY_CONNECTED layout unknown (" KWS_LAYOUT_NAMES_TEXT ")"; return KWS_ERR_UNSUPPORTED;
    }
    if (o->in_features > 65536) { *detail = "in_features too large for int32 accumulation"; return KWS_ERR_LIMIT; }
    /* sparse layouts (4, 5): the size and every index are checked by kws_sparse_prepare */
    int64_t row_bytes = kws_sparse_layout(o->layout) ? 0 : kws_sub8_row_bytes(o->layout, o->bits, o->in_features);
    if (row_bytes < 0) { *detail = "SUB8_FULLY_CONNECTED layout cannot hold this bit width (" KWS_LAYOUT_BITS_TEXT ")"; return KWS_ERR_UNSUPPORTED; }
    if (!kws_sparse_layout(o->layout)) {
        /* layout 6 stores ceil(out / G) groups of G = 8/k rows (kws_layout_table.h) */
        int64_t want = kws_layout_packed_bytes(o->layout, o->bits, o->out_features, o->in_features);
        if (want != (int64_t)packed_bytes) { *detail = "packed weight size != the size the layout gives for out_features x in_features"; return KWS_ERR_SHAPE; }
    }
    if (zp_w != 0) { *detail = "weight zero point must be 0"; return KWS_ERR_QUANT; }
    if (zp_in < -128 || zp_in > 127 || zp_out < -128 || zp_out > 127) { *detail = "zero point outside int8"; return KWS_ERR_QUANT; }
    if (!(s_in > 0.0f) || !(s_w > 0.0f) || !(s_out > 0.0f) || !isfinite(s_in) || !isfinite(s_w) || !isfinite(s_out)) {
        *detail = "scales must be finite and > 0"; return KWS_ERR_QUANT;
    }
    int32_t m, s;
    kws_quantize_multiplier((double)s_in * (double)s_w / (double)s_out, &m, &s);
    if (s > 30) { *detail = "effective scale too large"; return KWS_ERR_QUANT; }
    const int32_t n = storage_n == 1 ? 1 : o->out_features;   /* 1: one multiplier/shift for every row */
    for (int32_t i = 0; i < n; i++) { mult_storage[i] = m; shift_storage[i] = s; }
    memset(p, 0, sizeof *p);
    p->act.input_offset = -zp_in;
    p->act.output_offset = zp_out;
    p->act.act_min = o->activation == 1 ? (zp_out > -128 ? zp_out : -128) : -128;
    p->act.act_max = 127;
    p->in_features = o->in_features;
    p->out_features = o->out_features;
    p->multiplier = mult_storage;
    p->shift = shift_storage;
    p->per_tensor = storage_n == 1;
    p->bits = o->bits;
    p->layout = o->layout;
    p->row_bytes = (int32_t)row_bytes;
    return KWS_OK;
}
