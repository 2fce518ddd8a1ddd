/* kws_ops.c - operator registrations (init / prepare / invoke).
 * prepare() checks every type, shape and quantization parameter and precomputes multipliers;
 * invoke() only calls the kernel. FULLY_CONNECTED and SUB8_FULLY_CONNECTED use the build's
 * optimized kernel (kernels/opt: DSP, Helium or NEON, one linked per target) when it handles the
 * weights' (bits, layout), with its row sums and scratch planned in the arena at prepare time;
 * otherwise the reference kernels. */
#include <math.h>
#include <string.h>
#include "kws_internal.h"
#include "kws_kernels_opt.h"
#include "kws_conv_opt.h"
#include "kws_sparse.h"

#define FAIL(s, msg, t) return kws_fail(m, (s), (msg), (t))
#define TIDX(t) ((int)((t) - m->tensors))

/* ---------------- shared checks ---------------- */

static int scale_ok(float s) { return s > 0.0f && isfinite(s) && s < 1e30f; }

static kws_status check_int8_act(kws_model *m, kws_tensor *t, const char *what)
{
    if (!t) FAIL(KWS_ERR_FORMAT, what, -1);
    if (t->type != KWS_INT8) FAIL(KWS_ERR_TYPE, what, TIDX(t));
    if (!t->has_quant || t->num_scales != 1) FAIL(KWS_ERR_QUANT, "int8 activation needs per-tensor quantization", TIDX(t));
    if (!scale_ok(t->scale)) FAIL(KWS_ERR_QUANT, "scale must be finite and > 0", TIDX(t));
    if (t->zero_point < -128 || t->zero_point > 127) FAIL(KWS_ERR_QUANT, "zero point outside int8", TIDX(t));
    return KWS_OK;
}

static int32_t quantize_act(const kws_tensor *t, float f)
{
    float r = roundf(f / t->scale);
    if (r > 1e6f) r = 1e6f;
    if (r < -1e6f) r = -1e6f;
    return t->zero_point + (int32_t)r;
}

static kws_status act_range(kws_model *m, int act, const kws_tensor *out, int32_t *lo, int32_t *hi)
{
    int32_t a = -128, b = 127, v;
    switch (act) {
    case ACT_NONE: break;
    case ACT_RELU: v = quantize_act(out, 0.0f); if (v > a) a = v; break;
    case ACT_RELU6: v = quantize_act(out, 0.0f); if (v > a) a = v; v = quantize_act(out, 6.0f); if (v < b) b = v; break;
    case ACT_RELU_N1_TO_1: v = quantize_act(out, -1.0f); if (v > a) a = v; v = quantize_act(out, 1.0f); if (v < b) b = v; break;
    default: FAIL(KWS_ERR_UNSUPPORTED, "fused activation not supported", -1);
    }
    if (a > b) FAIL(KWS_ERR_QUANT, "empty activation range", -1);
    *lo = a; *hi = b;
    return KWS_OK;
}

/* bias: optional constant INT32 [n], 4-byte aligned in memory */
static kws_status check_bias(kws_model *m, kws_tensor *b, int32_t n)
{
    if (!b) return KWS_OK;
    if (b->type != KWS_INT32) FAIL(KWS_ERR_TYPE, "bias must be INT32", TIDX(b));
    if (!b->is_const) FAIL(KWS_ERR_UNSUPPORTED, "bias must be constant", TIDX(b));
    if (b->elements != (uint32_t)n) FAIL(KWS_ERR_SHAPE, "bias length != output channels", TIDX(b));
    if (((uintptr_t)b->data & 3) != 0) FAIL(KWS_ERR_FORMAT, "bias data misaligned", TIDX(b));
    return KWS_OK;
}

/* per-channel (or per-tensor broadcast) multipliers for in_scale * w_scale[c] / out_scale */
/* per_tensor_ok: the kernel reads kws_fc_params.per_tensor, so a per-tensor w gets ONE element (*stored = 1) */
static kws_status channel_multipliers_n(kws_model *m, const kws_tensor *in, const kws_tensor *w, const kws_tensor *out,
                                        int32_t channels, int32_t qdim, int per_tensor_ok, int32_t **mult, int32_t **shift,
                                        int32_t *stored)
{
    if (!w->has_quant) FAIL(KWS_ERR_QUANT, "weights need quantization", TIDX(w));
    if (w->num_scales != 1 && (w->num_scales != (uint32_t)channels || w->quantized_dimension != qdim))
        FAIL(KWS_ERR_QUANT, "weight scales must be per tensor or per output channel", TIDX(w));
    const int32_t n = per_tensor_ok && w->num_scales == 1 ? 1 : channels;
    *stored = n;
    *mult = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)n);
    *shift = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)n);
    if (!*mult || !*shift) FAIL(KWS_ERR_ARENA, "arena too small for multipliers", -1);
    for (int32_t c = 0; c < n; c++) {
        uint32_t i = w->num_scales == 1 ? 0 : (uint32_t)c;
        float ws = kws_tensor_scale(m, w, i);
        if (!scale_ok(ws)) FAIL(KWS_ERR_QUANT, "weight scale must be finite and > 0", TIDX(w));
        if (kws_tensor_zero_point(m, w, i) != 0) FAIL(KWS_ERR_QUANT, "weight zero point must be 0", TIDX(w));
        double real = (double)in->scale * (double)ws / (double)out->scale;
        kws_quantize_multiplier(real, &(*mult)[c], &(*shift)[c]);
        if ((*shift)[c] > 30) FAIL(KWS_ERR_QUANT, "effective scale too large", TIDX(w));
    }
    return KWS_OK;
}

static kws_status channel_multipliers(kws_model *m, const kws_tensor *in, const kws_tensor *w, const kws_tensor *out,
                                      int32_t channels, int32_t qdim, int32_t **mult, int32_t **shift)
{
    int32_t stored;
    return channel_multipliers_n(m, in, w, out, channels, qdim, 0, mult, shift, &stored);
}

static int same_shape(const kws_tensor *a, const kws_tensor *b)
{
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++) if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

/* ---------------- FULLY_CONNECTED (INT8 / INT4 weights) ---------------- */

/* Optimized-kernel state of one FC-like node: prepared when kws_fc_opt_supported(bits, layout). */
typedef struct { int use; int32_t *row_sums; } fc_opt_state;

/* p fully prepared (bits, layout, dims): decide the kernel; row sums + scratch from the arena */
static kws_status fc_opt_prepare(kws_model *m, const kws_fc_params *p, const uint8_t *weights, fc_opt_state *st)
{
    st->use = 0;
    if (!kws_fc_opt_supported(p->bits, p->layout)) return KWS_OK;
    st->row_sums = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)p->out_features);
    if (!st->row_sums) return kws_fail(m, KWS_ERR_ARENA, "arena too small for row sums", -1);
    kws_fc_opt_row_sums(p, weights, st->row_sums);
    kws_request_scratch(m, kws_fc_opt_scratch_bytes(p));
    st->use = 1;
    m->num_opt_ops++;
    return KWS_OK;
}

const char *kws_kernel_isa(void) { return kws_fc_opt_isa; }

static void fc_opt_invoke(kws_model *m, const kws_fc_params *p, const fc_opt_state *st, int32_t batches,
                          const int8_t *in, const uint8_t *w, const int32_t *bias, int8_t *out)
{
    kws_fc_opt_ctx ctx = {m->scratch, st->row_sums};
    kws_fully_connected_opt(p, &ctx, batches, in, w, bias, out);
}

typedef struct { kws_fc_params p; int32_t batches; fc_opt_state opt; } fc_data;

static kws_status fc_init(kws_model *m, kws_node *n)
{
    n->user_data = kws_persistent_alloc(m, sizeof(fc_data));
    return n->user_data ? KWS_OK : kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
}

static kws_status fc_prepare(kws_model *m, kws_node *n)
{
    fc_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs < 2 || n->num_inputs > 3) FAIL(KWS_ERR_FORMAT, "FULLY_CONNECTED needs 2 or 3 inputs", -1);
    if ((s = check_int8_act(m, in, "FULLY_CONNECTED input must be INT8")) || (s = check_int8_act(m, out, "FULLY_CONNECTED output must be INT8"))) return s;
    if (!w) FAIL(KWS_ERR_FORMAT, "FULLY_CONNECTED without weights", -1);
    if (w->type != KWS_INT8 && w->type != KWS_INT4) FAIL(KWS_ERR_TYPE, "FULLY_CONNECTED weights must be INT8 or INT4", TIDX(w));
    if (!w->is_const) FAIL(KWS_ERR_UNSUPPORTED, "non-constant weights", TIDX(w));
    if (w->rank != 2) FAIL(KWS_ERR_SHAPE, "weights must be [out, in]", TIDX(w));
    int32_t out_n = w->dims[0], in_n = w->dims[1];
    if (in_n > 65536) FAIL(KWS_ERR_LIMIT, "in_features too large for int32 accumulation", TIDX(w));
    if (in->elements % (uint32_t)in_n) FAIL(KWS_ERR_SHAPE, "input size not a multiple of in_features", TIDX(in));
    uint32_t batches = in->elements / (uint32_t)in_n;
    if ((uint64_t)batches * (uint64_t)out_n != out->elements) FAIL(KWS_ERR_SHAPE, "output size != batches x out_features", TIDX(out));
    if ((s = check_bias(m, b, out_n))) return s;
    kws_fb_table o;
    int act = ACT_NONE;
    int r = kws_node_options(m, n, OPT_FC, &o);
    if (r < 0) FAIL(KWS_ERR_OPTIONS, "FullyConnectedOptions invalid", -1);
    if (r == 0) {
        act = kws_fb_u8(&o, 0, 0);
        if (kws_fb_u8(&o, 1, 0) != 0) FAIL(KWS_ERR_UNSUPPORTED, "shuffled weights format", -1);
        if (kws_fb_u8(&o, 3, 0) != 0) FAIL(KWS_ERR_UNSUPPORTED, "asymmetric_quantize_inputs (hybrid) not supported", -1);
    }
    int32_t *mult, *shift, stored;
    /* INT8 on an optimized kernel that reads per_tensor (fc_opt_prepare's condition): one multiplier */
    const int pt_ok = w->type == KWS_INT8 && kws_fc_opt_per_tensor && kws_fc_opt_supported(8, 0);
    if ((s = channel_multipliers_n(m, in, w, out, out_n, 0, pt_ok, &mult, &shift, &stored))) return s;
    memset(&d->p, 0, sizeof d->p);
    d->p.per_tensor = stored == 1;
    if ((s = act_range(m, act, out, &d->p.act.act_min, &d->p.act.act_max))) return s;
    d->p.act.input_offset = -in->zero_point;
    d->p.act.output_offset = out->zero_point;
    d->p.in_features = in_n;
    d->p.out_features = out_n;
    d->p.multiplier = mult;
    d->p.shift = shift;
    d->p.bits = w->type == KWS_INT4 ? 4 : 8;
    d->p.layout = 0;
    d->batches = (int32_t)batches;
    /* INT8: the optimized kernels read TFLite's [out][in] int8 directly. INT4 (TFLite's packing,
     * two per byte over the whole tensor) stays on the reference: the optimized 4-bit kernels need
     * layout 2/3, and a repack would move the weights from flash into the arena (FFNN-250K: 123 KB
     * of RAM for a 7 KB arena). Convert with --target for the fast custom-op form instead. */
    if (w->type == KWS_INT8) return fc_opt_prepare(m, &d->p, w->data, &d->opt);
    return KWS_OK;
}

static kws_status fc_invoke(kws_model *m, kws_node *n)
{
    fc_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
    if (d->opt.use)
        fc_opt_invoke(m, &d->p, &d->opt, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    else if (w->type == KWS_INT4)
        kws_fully_connected_s4(&d->p, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    else
        kws_fully_connected_s8(&d->p, d->batches, (const int8_t *)in->data, (const int8_t *)w->data, bias, (int8_t *)out->data);
    return KWS_OK;
}

static const kws_op op_fully_connected = {"FULLY_CONNECTED", fc_init, fc_prepare, fc_invoke};

/* ---------------- SUB8_FULLY_CONNECTED (custom) ---------------- */

typedef struct { kws_sub8_options o; kws_fc_params p; int32_t batches; fc_opt_state opt;
                 kws_sparse_params sp; int sparse_opt; } sub8_data;

static kws_status sub8_init(kws_model *m, kws_node *n)
{
    sub8_data *d = kws_persistent_alloc(m, sizeof(sub8_data));
    if (!d) FAIL(KWS_ERR_ARENA, "arena too small for op data", -1);
    n->user_data = d;
    const char *detail = "";
    kws_status s = kws_sub8_parse_options(n->custom_options, n->custom_options_len, &d->o, &detail);
    return s ? kws_fail(m, s, detail, -1) : KWS_OK;
}

static kws_status sub8_prepare(kws_model *m, kws_node *n)
{
    sub8_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs < 2 || n->num_inputs > 3) FAIL(KWS_ERR_FORMAT, "SUB8_FULLY_CONNECTED needs 2 or 3 inputs", -1);
    if ((s = check_int8_act(m, in, "SUB8_FULLY_CONNECTED input must be INT8")) || (s = check_int8_act(m, out, "SUB8_FULLY_CONNECTED output must be INT8"))) return s;
    if (!w || w->type != KWS_UINT8) FAIL(KWS_ERR_TYPE, "SUB8_FULLY_CONNECTED weights must be UINT8 packed bytes", w ? TIDX(w) : -1);
    if (!w->is_const) FAIL(KWS_ERR_UNSUPPORTED, "non-constant weights", TIDX(w));
    if (!w->has_quant || w->num_scales != 1) FAIL(KWS_ERR_QUANT, "packed weights need one scale", TIDX(w));
    const int32_t in_n = d->o.in_features, out_n = d->o.out_features;
    if (in->elements % (uint32_t)in_n) FAIL(KWS_ERR_SHAPE, "input size not a multiple of in_features", TIDX(in));
    uint32_t batches = in->elements / (uint32_t)in_n;
    if ((uint64_t)batches * (uint64_t)out_n != out->elements) FAIL(KWS_ERR_SHAPE, "output size != batches x out_features", TIDX(out));
    if ((s = check_bias(m, b, out_n))) return s;
    /* one scale for the whole tensor: a kernel that reads p->per_tensor gets ONE multiplier/shift
     * (fc_opt_prepare takes the optimized kernel exactly when kws_fc_opt_supported says so) */
    const int32_t store_n = kws_fc_opt_per_tensor && !kws_sparse_layout(d->o.layout) &&
                            kws_fc_opt_supported(d->o.bits, d->o.layout) ? 1 : out_n;
    int32_t *mult = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)store_n);
    int32_t *shift = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)store_n);
    if (!mult || !shift) FAIL(KWS_ERR_ARENA, "arena too small for multipliers", -1);
    const char *detail = "";
    s = kws_sub8_prepare_n(&d->o, in->scale, in->zero_point, w->scale, w->zero_point, out->scale, out->zero_point,
                           w->bytes, mult, shift, store_n, &d->p, &detail);
    if (s) return kws_fail(m, s, detail, TIDX(w));
    d->batches = (int32_t)batches;
    if (kws_sparse_layout(d->p.layout)) {   /* layouts 4/5: validate once, pick the kernel (kws_sparse.h) */
        if ((s = kws_sparse_prepare(&d->o, w->data, w->bytes, &d->sp, &detail))) return kws_fail(m, s, detail, TIDX(w));
        d->sparse_opt = kws_fc_sparse_opt_supported(&d->p, &d->sp);
        if (d->sparse_opt) { kws_request_scratch(m, kws_fc_sparse_opt_scratch_bytes(&d->p, &d->sp)); m->num_opt_ops++; }
        return KWS_OK;
    }
    if ((s = fc_opt_prepare(m, &d->p, w->data, &d->opt))) return s;
    if (!d->opt.use && d->p.layout != 0)
        FAIL(KWS_ERR_UNSUPPORTED, d->p.layout == 2 ? "SUB8_FULLY_CONNECTED layout 2 (r4_words) needs an optimized kernel this build lacks (Cortex-M DSP)"
                                : d->p.layout == 8 ? "SUB8_FULLY_CONNECTED layout 8 (lanes16) needs an optimized kernel this build lacks (Cortex-M DSP)"
                                : d->p.layout == 3 ? "SUB8_FULLY_CONNECTED layout 3 (r4_nib32) needs an optimized kernel this build lacks (Helium / NEON)"
                                : d->p.layout == 9 ? "SUB8_FULLY_CONNECTED layout 9 (rows24) needs an optimized kernel this build lacks (Helium / NEON)"
                                                   : "SUB8_FULLY_CONNECTED layout 6 (rows_per_byte) needs an optimized kernel this build lacks (Helium / NEON dot product)", TIDX(w));
    return KWS_OK;
}

static kws_status sub8_invoke(kws_model *m, kws_node *n)
{
    sub8_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
    (void)w;
    if (kws_sparse_layout(d->p.layout)) {
        if (d->sparse_opt)
            kws_fully_connected_sparse_opt(&d->p, &d->sp, m->scratch, d->batches, (const int8_t *)in->data, bias, (int8_t *)out->data);
        else
            kws_fully_connected_sparse(&d->p, &d->sp, d->batches, (const int8_t *)in->data, bias, (int8_t *)out->data);
    } else if (d->opt.use)
        fc_opt_invoke(m, &d->p, &d->opt, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    else
        kws_fully_connected_sub8(&d->p, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    return KWS_OK;
}

static const kws_op op_sub8_fully_connected = {"SUB8_FULLY_CONNECTED", sub8_init, sub8_prepare, sub8_invoke};

/* ---------------- CONV_2D / DEPTHWISE_CONV_2D ---------------- */

/* the params first (conv_common casts user_data to kws_conv_params); opt: kws_conv_opt.h's kernel runs it */
typedef struct { kws_conv_params p; int opt; int32_t *row_sums; } conv_data;

static kws_status conv_init(kws_model *m, kws_node *n)
{
    n->user_data = kws_persistent_alloc(m, sizeof(conv_data));
    return n->user_data ? KWS_OK : kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
}

static int32_t out_size(int same, int32_t in, int32_t k_eff, int32_t stride)
{
    return same ? (in + stride - 1) / stride : (in + stride - k_eff) / stride;
}

static int32_t pad_size(int32_t out, int32_t in, int32_t k_eff, int32_t stride)
{
    int32_t total = (out - 1) * stride + k_eff - in;
    return total > 0 ? total / 2 : 0;
}

/* common geometry: padding, strides, dilation from an options table; field ids differ per op */
static kws_status geometry(kws_model *m, const kws_fb_table *o, int f_pad, int f_sw, int f_sh, int f_dw, int f_dh,
                           const kws_tensor *in, const kws_tensor *out, int32_t kh, int32_t kw, kws_conv_params *p)
{
    int padding = kws_fb_u8(o, f_pad, 0);
    p->stride_w = kws_fb_i32(o, f_sw, 0);
    p->stride_h = kws_fb_i32(o, f_sh, 0);
    p->dil_w = f_dw >= 0 ? kws_fb_i32(o, f_dw, 1) : 1;
    p->dil_h = f_dh >= 0 ? kws_fb_i32(o, f_dh, 1) : 1;
    if (padding > 1) FAIL(KWS_ERR_OPTIONS, "padding must be SAME or VALID", -1);
    if (p->stride_w < 1 || p->stride_h < 1 || p->stride_w > 4096 || p->stride_h > 4096 ||
        p->dil_w < 1 || p->dil_h < 1 || p->dil_w > 4096 || p->dil_h > 4096)
        FAIL(KWS_ERR_OPTIONS, "stride/dilation out of range", -1);
    if (in->rank != 4 || out->rank != 4) FAIL(KWS_ERR_SHAPE, "input and output must be NHWC", TIDX(in));
    if (in->dims[0] != out->dims[0]) FAIL(KWS_ERR_SHAPE, "batch mismatch", TIDX(out));
    p->batches = in->dims[0];
    p->in_h = in->dims[1]; p->in_w = in->dims[2]; p->in_c = in->dims[3];
    p->out_h = out->dims[1]; p->out_w = out->dims[2]; p->out_c = out->dims[3];
    p->k_h = kh; p->k_w = kw;
    int64_t keh = (int64_t)(kh - 1) * p->dil_h + 1, kew = (int64_t)(kw - 1) * p->dil_w + 1;
    if (keh > (1 << 20) || kew > (1 << 20)) FAIL(KWS_ERR_SHAPE, "filter too large", -1);
    int32_t oh = out_size(padding == 0, p->in_h, (int32_t)keh, p->stride_h);
    int32_t ow = out_size(padding == 0, p->in_w, (int32_t)kew, p->stride_w);
    if (oh != p->out_h || ow != p->out_w) FAIL(KWS_ERR_SHAPE, "output size inconsistent with padding/stride", TIDX(out));
    p->pad_h = padding == 0 ? pad_size(oh, p->in_h, (int32_t)keh, p->stride_h) : 0;
    p->pad_w = padding == 0 ? pad_size(ow, p->in_w, (int32_t)kew, p->stride_w) : 0;
    return KWS_OK;
}

static kws_status conv_common(kws_model *m, kws_node *n, int depthwise)
{
    kws_conv_params *p = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs < 2 || n->num_inputs > 3) FAIL(KWS_ERR_FORMAT, "convolution needs 2 or 3 inputs", -1);
    if ((s = check_int8_act(m, in, "convolution input must be INT8")) || (s = check_int8_act(m, out, "convolution output must be INT8"))) return s;
    if (!w || w->type != KWS_INT8) FAIL(KWS_ERR_TYPE, "convolution filter must be INT8", w ? TIDX(w) : -1);
    if (!w->is_const) FAIL(KWS_ERR_UNSUPPORTED, "non-constant filter", TIDX(w));
    if (w->rank != 4) FAIL(KWS_ERR_SHAPE, "filter must be 4-D", TIDX(w));
    kws_fb_table o;
    int r = kws_node_options(m, n, depthwise ? OPT_DEPTHWISE : OPT_CONV2D, &o);
    if (r != 0) FAIL(KWS_ERR_OPTIONS, "convolution options missing or invalid", -1);
    int act;
    if (depthwise) {
        if ((s = geometry(m, &o, 0, 1, 2, 5, 6, in, out, w->dims[1], w->dims[2], p))) return s;
        act = kws_fb_u8(&o, 4, 0);
        if (w->dims[0] != 1 || w->dims[3] != p->out_c) FAIL(KWS_ERR_SHAPE, "depthwise filter must be [1,kh,kw,out_c]", TIDX(w));
        if (p->out_c % p->in_c) FAIL(KWS_ERR_SHAPE, "out_c not a multiple of in_c", TIDX(out));
        p->depth_multiplier = p->out_c / p->in_c;
        if ((int64_t)w->dims[1] * w->dims[2] > 65536) FAIL(KWS_ERR_LIMIT, "filter too large for int32 accumulation", TIDX(w));
    } else {
        if ((s = geometry(m, &o, 0, 1, 2, 4, 5, in, out, w->dims[1], w->dims[2], p))) return s;
        act = kws_fb_u8(&o, 3, 0);
        if (w->dims[0] != p->out_c || w->dims[3] != p->in_c) FAIL(KWS_ERR_SHAPE, "filter must be [out_c,kh,kw,in_c] (no groups)", TIDX(w));
        if ((int64_t)w->dims[1] * w->dims[2] * w->dims[3] > 65536) FAIL(KWS_ERR_LIMIT, "filter too large for int32 accumulation", TIDX(w));
    }
    if ((s = check_bias(m, b, p->out_c))) return s;
    int32_t *mult, *shift;
    if ((s = channel_multipliers(m, in, w, out, p->out_c, depthwise ? 3 : 0, &mult, &shift))) return s;
    p->multiplier = mult;
    p->shift = shift;
    p->act.input_offset = -in->zero_point;
    p->act.output_offset = out->zero_point;
    return act_range(m, act, out, &p->act.act_min, &p->act.act_max);
}

/* the optimized convolution (kws_conv_opt.h) when this build has one for the layer */
static kws_status conv_opt_prepare(kws_model *m, kws_node *n, int depthwise)
{
    conv_data *d = n->user_data;
    kws_tensor *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2);
    const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
    d->opt = kws_conv_opt_supported(&d->p, depthwise, bias);
    if (!d->opt) return KWS_OK;
    if (!depthwise) {
        d->row_sums = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)d->p.out_c);
        if (!d->row_sums) FAIL(KWS_ERR_ARENA, "arena too small for op data", -1);
        kws_conv_opt_row_sums(&d->p, (const int8_t *)w->data, d->row_sums);
    }
    kws_request_scratch(m, kws_conv_opt_scratch_bytes(&d->p, depthwise));
    m->num_opt_ops++;
    return KWS_OK;
}

static kws_status conv_prepare(kws_model *m, kws_node *n)
{
    kws_status s = conv_common(m, n, 0);
    return s ? s : conv_opt_prepare(m, n, 0);
}
static kws_status dwconv_prepare(kws_model *m, kws_node *n)
{
    kws_status s = conv_common(m, n, 1);
    return s ? s : conv_opt_prepare(m, n, 1);
}

static void conv_opt_invoke(kws_model *m, kws_node *n, int depthwise)
{
    conv_data *d = n->user_data;
    kws_tensor *b = kws_node_in(m, n, 2);
    const kws_conv_opt_ctx ctx = {m->scratch, d->row_sums};
    kws_conv_opt(&d->p, depthwise, &ctx, (const int8_t *)kws_node_in(m, n, 0)->data,
                 (const int8_t *)kws_node_in(m, n, 1)->data, b ? (const int32_t *)(const void *)b->data : NULL,
                 (int8_t *)kws_node_out(m, n, 0)->data);
}

static kws_status conv_invoke(kws_model *m, kws_node *n)
{
    if (((conv_data *)n->user_data)->opt) { conv_opt_invoke(m, n, 0); return KWS_OK; }
    kws_tensor *b = kws_node_in(m, n, 2);
    kws_conv_s8(n->user_data, (const int8_t *)kws_node_in(m, n, 0)->data, (const int8_t *)kws_node_in(m, n, 1)->data,
                b ? (const int32_t *)(const void *)b->data : NULL, (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

static kws_status dwconv_invoke(kws_model *m, kws_node *n)
{
    if (((conv_data *)n->user_data)->opt) { conv_opt_invoke(m, n, 1); return KWS_OK; }
    kws_tensor *b = kws_node_in(m, n, 2);
    kws_depthwise_conv_s8(n->user_data, (const int8_t *)kws_node_in(m, n, 0)->data, (const int8_t *)kws_node_in(m, n, 1)->data,
                          b ? (const int32_t *)(const void *)b->data : NULL, (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

static const kws_op op_conv_2d = {"CONV_2D", conv_init, conv_prepare, conv_invoke};
static const kws_op op_depthwise_conv_2d = {"DEPTHWISE_CONV_2D", conv_init, dwconv_prepare, dwconv_invoke};

/* ---------------- AVERAGE_POOL_2D ---------------- */

static kws_status pool_init(kws_model *m, kws_node *n)
{
    n->user_data = kws_persistent_alloc(m, sizeof(kws_pool_params));
    return n->user_data ? KWS_OK : kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
}

static kws_status pool_prepare(kws_model *m, kws_node *n)
{
    kws_pool_params *p = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs != 1) FAIL(KWS_ERR_FORMAT, "AVERAGE_POOL_2D needs 1 input", -1);
    if ((s = check_int8_act(m, in, "pool input must be INT8")) || (s = check_int8_act(m, out, "pool output must be INT8"))) return s;
    if (in->zero_point != out->zero_point || in->scale != out->scale) FAIL(KWS_ERR_QUANT, "pool input/output quantization differ", TIDX(out));
    kws_fb_table o;
    if (kws_node_options(m, n, OPT_POOL2D, &o) != 0) FAIL(KWS_ERR_OPTIONS, "Pool2DOptions missing or invalid", -1);
    int32_t fw = kws_fb_i32(&o, 3, 0), fh = kws_fb_i32(&o, 4, 0);
    if (fw < 1 || fh < 1 || fw > 4096 || fh > 4096) FAIL(KWS_ERR_OPTIONS, "pool filter size out of range", -1);
    kws_conv_params g;
    memset(&g, 0, sizeof g);
    if ((s = geometry(m, &o, 0, 1, 2, -1, -1, in, out, fh, fw, &g))) return s;
    if (g.in_c != g.out_c) FAIL(KWS_ERR_SHAPE, "pool channels differ", TIDX(out));
    if ((int64_t)fw * fh > 65536) FAIL(KWS_ERR_LIMIT, "pool window too large", -1);
    p->batches = g.batches; p->in_h = g.in_h; p->in_w = g.in_w; p->c = g.in_c; p->out_h = g.out_h; p->out_w = g.out_w;
    p->f_h = fh; p->f_w = fw; p->stride_h = g.stride_h; p->stride_w = g.stride_w; p->pad_h = g.pad_h; p->pad_w = g.pad_w;
    return act_range(m, kws_fb_u8(&o, 5, 0), out, &p->act.act_min, &p->act.act_max);
}

static kws_status pool_invoke(kws_model *m, kws_node *n)
{
    kws_avgpool_s8(n->user_data, (const int8_t *)kws_node_in(m, n, 0)->data, (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

static const kws_op op_average_pool_2d = {"AVERAGE_POOL_2D", pool_init, pool_prepare, pool_invoke};

/* ---------------- SOFTMAX ---------------- */

typedef struct { kws_softmax_params p; int32_t rows, depth; } softmax_data;

static kws_status softmax_init(kws_model *m, kws_node *n)
{
    n->user_data = kws_persistent_alloc(m, sizeof(softmax_data));
    return n->user_data ? KWS_OK : kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
}

static kws_status softmax_prepare(kws_model *m, kws_node *n)
{
    softmax_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs != 1) FAIL(KWS_ERR_FORMAT, "SOFTMAX needs 1 input", -1);
    if ((s = check_int8_act(m, in, "SOFTMAX input must be INT8")) || (s = check_int8_act(m, out, "SOFTMAX output must be INT8"))) return s;
    if (!same_shape(in, out) || in->rank < 1) FAIL(KWS_ERR_SHAPE, "SOFTMAX input/output shapes differ", TIDX(out));
    if (out->zero_point != -128 || out->scale != 1.0f / 256.0f) FAIL(KWS_ERR_QUANT, "SOFTMAX output must be scale 1/256, zero point -128", TIDX(out));
    kws_fb_table o;
    float beta = 1.0f;
    int r = kws_node_options(m, n, OPT_SOFTMAX, &o);
    if (r < 0) FAIL(KWS_ERR_OPTIONS, "SoftmaxOptions invalid", -1);
    if (r == 0) beta = kws_fb_f32(&o, 0, 1.0f);
    d->depth = in->dims[in->rank - 1];
    if (d->depth > 2048) FAIL(KWS_ERR_LIMIT, "SOFTMAX depth above 2048", TIDX(in));
    d->rows = (int32_t)(in->elements / (uint32_t)d->depth);
    if (!(beta > 0.0f) || !isfinite(beta)) FAIL(KWS_ERR_OPTIONS, "SOFTMAX beta must be finite and > 0", -1);
    if (kws_softmax_prepare_s8((double)beta, (double)in->scale, &d->p)) FAIL(KWS_ERR_QUANT, "SOFTMAX scaling out of range", TIDX(in));
    return KWS_OK;
}

static kws_status softmax_invoke(kws_model *m, kws_node *n)
{
    softmax_data *d = n->user_data;
    kws_softmax_s8(&d->p, d->rows, d->depth, (const int8_t *)kws_node_in(m, n, 0)->data, (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

static const kws_op op_softmax = {"SOFTMAX", softmax_init, softmax_prepare, softmax_invoke};

/* ---------------- RESHAPE ---------------- */

static kws_status reshape_prepare(kws_model *m, kws_node *n)
{
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    if (n->num_inputs < 1 || n->num_inputs > 2 || !in) FAIL(KWS_ERR_FORMAT, "RESHAPE needs 1 or 2 inputs", -1);
    if (in->type != out->type) FAIL(KWS_ERR_TYPE, "RESHAPE changes the type", TIDX(out));
    if (in->type == KWS_INT4) FAIL(KWS_ERR_TYPE, "RESHAPE of INT4 not supported", TIDX(in));
    if (in->elements != out->elements || in->bytes != out->bytes) FAIL(KWS_ERR_SHAPE, "RESHAPE changes the element count", TIDX(out));
    return KWS_OK;
}

static kws_status reshape_invoke(kws_model *m, kws_node *n)
{
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    if (in->data != out->data) memmove(out->data, in->data, out->bytes);
    return KWS_OK;
}

static const kws_op op_reshape = {"RESHAPE", NULL, reshape_prepare, reshape_invoke};

/* ---------------- QUANTIZE / DEQUANTIZE ---------------- */

typedef struct { int32_t multiplier, shift; } requant_data;

static kws_status quantize_init(kws_model *m, kws_node *n)
{
    n->user_data = kws_persistent_alloc(m, sizeof(requant_data));
    return n->user_data ? KWS_OK : kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
}

static kws_status quantize_prepare(kws_model *m, kws_node *n)
{
    requant_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs != 1 || !in) FAIL(KWS_ERR_FORMAT, "QUANTIZE needs 1 input", -1);
    if ((s = check_int8_act(m, out, "QUANTIZE output must be INT8"))) return s;
    if (in->elements != out->elements) FAIL(KWS_ERR_SHAPE, "QUANTIZE changes the element count", TIDX(out));
    if (in->type == KWS_FLOAT32) {
        if (((uintptr_t)in->data & 3) != 0) FAIL(KWS_ERR_FORMAT, "float input misaligned", TIDX(in));
        return KWS_OK;
    }
    if ((s = check_int8_act(m, in, "QUANTIZE input must be FLOAT32 or INT8"))) return s;
    kws_quantize_multiplier((double)in->scale / (double)out->scale, &d->multiplier, &d->shift);
    if (d->shift > 30) FAIL(KWS_ERR_QUANT, "requantize scale too large", TIDX(out));
    return KWS_OK;
}

static kws_status quantize_invoke(kws_model *m, kws_node *n)
{
    requant_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    if (in->type == KWS_FLOAT32)
        kws_quantize_f32_s8(out->scale, out->zero_point, (int32_t)out->elements, (const float *)(const void *)in->data, (int8_t *)out->data);
    else
        kws_requantize_s8(in->zero_point, out->zero_point, d->multiplier, d->shift, (int32_t)out->elements,
                          (const int8_t *)in->data, (int8_t *)out->data);
    return KWS_OK;
}

static kws_status dequantize_prepare(kws_model *m, kws_node *n)
{
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    kws_status s;
    if (n->num_inputs != 1 || !in) FAIL(KWS_ERR_FORMAT, "DEQUANTIZE needs 1 input", -1);
    if ((s = check_int8_act(m, in, "DEQUANTIZE input must be INT8"))) return s;
    if (out->type != KWS_FLOAT32) FAIL(KWS_ERR_TYPE, "DEQUANTIZE output must be FLOAT32", TIDX(out));
    if (in->elements != out->elements) FAIL(KWS_ERR_SHAPE, "DEQUANTIZE changes the element count", TIDX(out));
    return KWS_OK;
}

static kws_status dequantize_invoke(kws_model *m, kws_node *n)
{
    kws_tensor *in = kws_node_in(m, n, 0), *out = kws_node_out(m, n, 0);
    kws_dequantize_s8_f32(in->scale, in->zero_point, (int32_t)in->elements, (const int8_t *)in->data, (float *)(void *)out->data);
    return KWS_OK;
}

static const kws_op op_quantize = {"QUANTIZE", quantize_init, quantize_prepare, quantize_invoke};
static const kws_op op_dequantize = {"DEQUANTIZE", NULL, dequantize_prepare, dequantize_invoke};

/* ---------------- resolver ---------------- */

const kws_op *kws_find_builtin(int32_t code)
{
    switch (code) {
    case OP_FULLY_CONNECTED: return &op_fully_connected;
    case OP_CONV_2D: return &op_conv_2d;
    case OP_DEPTHWISE_CONV_2D: return &op_depthwise_conv_2d;
    case OP_AVERAGE_POOL_2D: return &op_average_pool_2d;
    case OP_SOFTMAX: return &op_softmax;
    case OP_RESHAPE: return &op_reshape;
    case OP_QUANTIZE: return &op_quantize;
    case OP_DEQUANTIZE: return &op_dequantize;
#ifndef KWS_NO_LSTM  /* -DKWS_NO_LSTM: images without the LSTM (its ~9 KB of code are then not linked) */
    case OP_UNIDIRECTIONAL_SEQUENCE_LSTM: return &kws_op_unidirectional_sequence_lstm;
#endif
    default: return NULL;
    }
}

const kws_op *kws_find_custom(const char *name, uint32_t len)
{
    static const char sub8[] = "SUB8_FULLY_CONNECTED";
    if (len == sizeof sub8 - 1 && memcmp(name, sub8, len) == 0) return &op_sub8_fully_connected;
    static const char a4[] = "SUB8_FC_A4";   /* runtime/kws_fc_a4_op.c */
    if (len == sizeof a4 - 1 && memcmp(name, a4, len) == 0) return &kws_op_sub8_fc_a4;
    static const char lstm_a4[] = "SUB8_LSTM_A4";   /* runtime/kws_lstm_a4_op.c */
    if (len == sizeof lstm_a4 - 1 && memcmp(name, lstm_a4, len) == 0) return &kws_op_sub8_lstm_a4;
    return NULL;
}
