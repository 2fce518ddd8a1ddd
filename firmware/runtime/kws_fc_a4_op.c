/* kws_fc_a4_op.c - the SUB8_FC_A4 operator (docs/formats.md section 9): k-bit weights and k-bit
 * activations in int8 containers. init parses the options, prepare checks every tensor, the
 * activation widths and the packed size and precomputes the multiplier and the k-bit clamp; invoke
 * calls kws_fully_connected_a4_dsp (layout 7; plain C where the core has no DSP extension), the build's
 * A4 kernel kws_fully_connected_a4_opt for <= 4-bit inputs in the layout it reads (layout 6 on Helium and
 * AArch64, kws_isa_a4_layout), the build's optimized FC kernel (kernels/opt, e.g. layout 2 on Cortex-M
 * DSP) for a layer with 8-bit inputs stored in a layout that kernel reads (its clamp is the k-bit one set
 * here), or the reference kws_fully_connected_a4 (layout 0). */
#include <math.h>
#include <string.h>
#include "kws_internal.h"
#include "kws_fb.h"
#include "kws_fc_a4.h"
#include "kws_kernels_opt.h"

#define FAIL(s, msg, t) return kws_fail(m, (s), (msg), (t))
#define TIDX(t) ((int)((t) - m->tensors))

typedef struct { kws_sub8_options o; kws_fc_a4_params p; int32_t batches; int dsp, a4opt; int32_t *row_sums; } a4_data;

static kws_status a4_init(kws_model *m, kws_node *n)
{
    a4_data *d = kws_persistent_alloc(m, sizeof(a4_data));
    if (!d) FAIL(KWS_ERR_ARENA, "arena too small for op data", -1);
    memset(d, 0, sizeof *d);
    n->user_data = d;
    const char *detail = "";
    kws_status s = kws_sub8_parse_options(n->custom_options, n->custom_options_len, &d->o, &detail);
    if (s) return kws_fail(m, s, detail, -1);
    int64_t ib, ob;
    if (kws_flex_map_int(n->custom_options, n->custom_options_len, "input_bits", &ib) || ib < 2 || ib > 8)
        FAIL(KWS_ERR_OPTIONS, "SUB8_FC_A4 custom_options.input_bits missing or not in 2..8", -1);
    if (kws_flex_map_int(n->custom_options, n->custom_options_len, "output_bits", &ob) || ob < 2 || ob > 8)
        FAIL(KWS_ERR_OPTIONS, "SUB8_FC_A4 custom_options.output_bits missing or not in 2..8", -1);
    d->p.input_bits = (int32_t)ib;
    d->p.output_bits = (int32_t)ob;
    return KWS_OK;
}

static kws_status a4_prepare(kws_model *m, kws_node *n)
{
    a4_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    if (n->num_inputs < 2 || n->num_inputs > 3) FAIL(KWS_ERR_FORMAT, "SUB8_FC_A4 needs 2 or 3 inputs", -1);
    if (!in || !out || in->type != KWS_INT8 || out->type != KWS_INT8) FAIL(KWS_ERR_TYPE, "SUB8_FC_A4 activations must be INT8", in ? TIDX(in) : -1);
    if (!in->has_quant || !out->has_quant || in->num_scales != 1 || out->num_scales != 1)
        FAIL(KWS_ERR_QUANT, "SUB8_FC_A4 activations need per-tensor quantization", TIDX(in));
    if (!w || w->type != KWS_UINT8 || !w->is_const) FAIL(KWS_ERR_TYPE, "SUB8_FC_A4 weights must be constant UINT8 packed bytes", w ? TIDX(w) : -1);
    if (!w->has_quant || w->num_scales != 1) FAIL(KWS_ERR_QUANT, "packed weights need one scale", TIDX(w));
    if (b && (b->type != KWS_INT32 || !b->is_const || b->elements != (uint32_t)d->o.out_features || ((uintptr_t)b->data & 3)))
        FAIL(KWS_ERR_TYPE, "SUB8_FC_A4 bias must be a constant aligned INT32 [out_features]", TIDX(b));
    const int32_t in_n = d->o.in_features, out_n = d->o.out_features, ib = d->p.input_bits, ob = d->p.output_bits;
    if (in->elements % (uint32_t)in_n) FAIL(KWS_ERR_SHAPE, "input size not a multiple of in_features", TIDX(in));
    const uint32_t batches = in->elements / (uint32_t)in_n;
    if ((uint64_t)batches * (uint64_t)out_n != out->elements) FAIL(KWS_ERR_SHAPE, "output size != batches x out_features", TIDX(out));
    if (ib < 8 && (in->zero_point != 0 || TIDX(in) == m->inputs[0]))
        FAIL(KWS_ERR_QUANT, "SUB8_FC_A4 input_bits < 8 needs a k-bit producer's tensor (zero point 0, not the model input)", TIDX(in));
    if (ob < 8 && (d->o.activation != 1 || out->zero_point != 0))
        FAIL(KWS_ERR_QUANT, "SUB8_FC_A4 output_bits < 8 needs activation RELU and output zero point 0", TIDX(out));
    const int opt8 = d->o.layout != 0 && d->o.layout != KWS_LAYOUT_A4_PAIRS && ib == 8 && d->o.bits < 8
                     && kws_fc_opt_supported(d->o.bits, d->o.layout);
    /* the build's A4 kernel for <= 4-bit inputs in the layout its family reads (kws_isa_a4_layout) */
    const int a4opt = d->o.layout != 0 && d->o.layout != KWS_LAYOUT_A4_PAIRS && ib <= KWS_A4_MAX_INPUT_BITS
                      && d->o.layout == kws_isa_a4_layout_for(kws_fc_a4_opt_isa, d->o.bits);
    if (d->o.layout != 0 && d->o.layout != KWS_LAYOUT_A4_PAIRS && !opt8 && !a4opt)
        FAIL(KWS_ERR_UNSUPPORTED, "SUB8_FC_A4 layout must be 0 (row_lsb), 7 (a4_pairs), for <= 4-bit inputs the one "
                                  "this build's A4 kernel reads, or for 8-bit inputs one its optimized FC kernel reads", TIDX(w));
    /* multipliers and the int8 clamp as SUB8_FULLY_CONNECTED's prepare computes them (layout 0 size) */
    kws_sub8_options o0 = d->o;
    o0.layout = 0;
    const int64_t rb0 = kws_sub8_row_bytes(0, d->o.bits, in_n);
    uint32_t bytes0 = (uint32_t)(rb0 * out_n);
    if (d->o.layout == KWS_LAYOUT_A4_PAIRS) {
        if (d->o.bits < 2 || d->o.bits > 4) FAIL(KWS_ERR_UNSUPPORTED, "SUB8_FC_A4 layout 7 holds 2..4-bit weights", TIDX(w));
        if ((int64_t)w->bytes != kws_fc_a4_packed_bytes(out_n, in_n))
            FAIL(KWS_ERR_SHAPE, "packed weight size != 4 * ceil(in/4) * ceil(out/2) (layout 7)", TIDX(w));
    } else if (a4opt) {
        if ((int64_t)w->bytes != kws_layout_packed_bytes(d->o.layout, d->o.bits, out_n, in_n))
            FAIL(KWS_ERR_SHAPE, "packed weight size != the size the layout gives for out_features x in_features", TIDX(w));
    } else if (opt8) {
        if ((int64_t)w->bytes != kws_fc_opt_packed_bytes(d->o.layout, d->o.bits, out_n, in_n))
            FAIL(KWS_ERR_SHAPE, "packed weight size != the size the layout gives for out_features x in_features", TIDX(w));
    } else if (w->bytes != bytes0) {
        FAIL(KWS_ERR_SHAPE, "packed weight size != the size the layout gives for out_features x in_features", TIDX(w));
    }
    int32_t *mult = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)out_n);
    int32_t *shift = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)out_n);
    if (!mult || !shift) FAIL(KWS_ERR_ARENA, "arena too small for multipliers", -1);
    const char *detail = "";
    kws_status s = kws_sub8_prepare(&o0, in->scale, in->zero_point, w->scale, w->zero_point, out->scale, out->zero_point,
                                    bytes0, mult, shift, &d->p.fc, &detail);
    if (s) return kws_fail(m, s, detail, TIDX(w));
    if (ob < 8) d->p.fc.act.act_max = d->p.fc.act.act_min + (1 << ob) - 1;
    d->p.fc.layout = d->o.layout;
    if (d->o.layout == KWS_LAYOUT_A4_PAIRS) d->p.fc.row_bytes = 2 * ((in_n + 3) / 4);
    if (opt8) {   /* the w4a8 kernel: row sums once, its scratch; it clamps to p.fc.act (the k-bit range) */
        d->p.fc.row_bytes = kws_fc_opt_row_bytes(d->o.layout, d->o.bits, in_n);
        d->row_sums = kws_persistent_alloc(m, sizeof(int32_t) * (size_t)out_n);
        if (!d->row_sums) FAIL(KWS_ERR_ARENA, "arena too small for row sums", -1);
        kws_fc_opt_row_sums(&d->p.fc, w->data, d->row_sums);
        kws_request_scratch(m, kws_fc_opt_scratch_bytes(&d->p.fc));
        m->num_opt_ops++;
    }
    if (a4opt) {
        d->p.fc.row_bytes = (int32_t)kws_layout_row_bytes(d->o.layout, d->o.bits, in_n);
        if (!kws_fc_a4_opt_supported(&d->p))
            FAIL(KWS_ERR_UNSUPPORTED, "SUB8_FC_A4: this build's A4 kernel does not take this layer", TIDX(w));
        kws_request_scratch(m, kws_fc_a4_opt_scratch_bytes(&d->p));
        m->num_opt_ops++;
        d->a4opt = 1;
    }
    d->batches = (int32_t)batches;
    d->dsp = d->o.layout == KWS_LAYOUT_A4_PAIRS;
    if (d->dsp) {
        if (!kws_fc_a4_dsp_supported(&d->p))
            FAIL(KWS_ERR_UNSUPPORTED, "SUB8_FC_A4 layout 7 needs input_bits <= 4 and in_features <= 4096", TIDX(w));
        kws_request_scratch(m, kws_fc_a4_scratch_bytes(in_n));
        m->num_opt_ops++;
    }
    return KWS_OK;
}

static kws_status a4_invoke(kws_model *m, kws_node *n)
{
    a4_data *d = n->user_data;
    kws_tensor *in = kws_node_in(m, n, 0), *w = kws_node_in(m, n, 1), *b = kws_node_in(m, n, 2), *out = kws_node_out(m, n, 0);
    const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
    if (d->row_sums) {
        kws_fc_opt_ctx ctx = {m->scratch, d->row_sums};
        kws_fully_connected_opt(&d->p.fc, &ctx, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    } else if (d->a4opt)
        kws_fully_connected_a4_opt(&d->p, m->scratch, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    else if (d->dsp)
        kws_fully_connected_a4_dsp(&d->p, m->scratch, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    else
        kws_fully_connected_a4(&d->p, d->batches, (const int8_t *)in->data, w->data, bias, (int8_t *)out->data);
    return KWS_OK;
}

const kws_op kws_op_sub8_fc_a4 = {"SUB8_FC_A4", a4_init, a4_prepare, a4_invoke};
