/* kws_lstm.c - UNIDIRECTIONAL_SEQUENCE_LSTM registration (int8, TFLite's standard integer LSTM).
 *
 * The state is kept by the runtime between invocations: inputs 18 (hidden state, int8) and 19 (cell
 * state, int16) are the model's variable tensors; prepare gives them persistent arena memory (they are
 * never planned with the activations) and sets them to the start of a stream (h = zero point, c = 0);
 * kws_reset_state() does that again. The reader passes the op's 24 inputs through user_data
 * (kws_model.c), node->inputs holds the first KWS_MAX_OP_INPUTS of them. */
#include <math.h>
#include <string.h>
#include "kws_internal.h"

#define FAIL(s, msg, t) return kws_fail(m, (s), (msg), (t))
#define TIDX(t) ((int)((t) - m->tensors))

enum { IN_X = 0, IN_W = 1, IN_R = 5, IN_PEEP = 9, IN_BIAS = 12, IN_PROJ = 16, IN_H = 18, IN_C = 19, IN_LN = 20 };
enum { LSTM_CELL_CLIP = 1, LSTM_TIME_MAJOR = 3, ACT_TANH = 4, FUSED_ACT = 0 };

typedef void (*kws_lstm_opt_fn)(const kws_lstm_params *, const int32_t *, int32_t, const int8_t *, int8_t *,
                                int16_t *, void *, int8_t *);

typedef struct {
    int16_t inputs[KWS_LSTM_INPUTS];
    kws_lstm_params p;
    int32_t steps;
    float cell_clip;
    const int32_t *eff_bias;   /* [8][units], optimized kernels only (NULL: reference kernel) */
    kws_lstm_opt_fn opt;       /* the build's optimized LSTM kernel (DSP, MVE or NEON), or NULL */
} lstm_data;

static kws_tensor *in_at(kws_model *m, const lstm_data *d, int i)
{
    return d->inputs[i] < 0 ? NULL : &m->tensors[d->inputs[i]];
}

static kws_status lstm_init(kws_model *m, kws_node *n)
{
    const int16_t *all = (const int16_t *)n->user_data;
    if (!all) FAIL(KWS_ERR_FORMAT, "LSTM needs 24 inputs", -1);
    lstm_data *d = kws_persistent_alloc(m, sizeof *d);
    if (!d) FAIL(KWS_ERR_ARENA, "arena too small for LSTM data", -1);
    memcpy(d->inputs, all, sizeof d->inputs);
    n->user_data = d;
    kws_fb_table t;
    int r = kws_node_options(m, n, OPT_UNIDIRECTIONAL_SEQUENCE_LSTM, &t);
    if (r) FAIL(KWS_ERR_OPTIONS, "UnidirectionalSequenceLSTMOptions missing or invalid", -1);
    if (kws_fb_u8(&t, FUSED_ACT, 0) != ACT_TANH) FAIL(KWS_ERR_UNSUPPORTED, "LSTM cell activation must be TANH", -1);
    if (kws_fb_u8(&t, LSTM_TIME_MAJOR, 0) != 0) FAIL(KWS_ERR_UNSUPPORTED, "time-major LSTM not supported", -1);
    d->cell_clip = kws_fb_f32(&t, LSTM_CELL_CLIP, 0.0f);
    if (!(d->cell_clip >= 0.0f) || !isfinite(d->cell_clip)) FAIL(KWS_ERR_OPTIONS, "LSTM cell_clip invalid", -1);
    return KWS_OK;
}

static int scale_ok(float s) { return s > 0.0f && isfinite(s) && s < 1e30f; }

static kws_status per_tensor(kws_model *m, kws_tensor *t, int type, const char *what)
{
    if (t->type != type) FAIL(KWS_ERR_TYPE, what, TIDX(t));
    if (!t->has_quant || t->num_scales != 1 || !scale_ok(t->scale)) FAIL(KWS_ERR_QUANT, what, TIDX(t));
    return KWS_OK;
}

static kws_status mult(kws_model *m, double real, int32_t *q, int32_t *s)
{
    if (!(real > 0.0) || real > 1e6) FAIL(KWS_ERR_QUANT, "LSTM effective scale out of range", -1);
    kws_quantize_multiplier(real, q, s);
    if (*s > 30 || *s < -31) FAIL(KWS_ERR_QUANT, "LSTM effective scale out of range", -1);
    return KWS_OK;
}

static void reset_one(kws_model *m, lstm_data *d)
{
    kws_tensor *h = in_at(m, d, IN_H), *c = in_at(m, d, IN_C);
    memset(h->data, (int8_t)d->p.zp_h, h->bytes);
    memset(c->data, 0, c->bytes);
}

static kws_status lstm_prepare(kws_model *m, kws_node *n)
{
    lstm_data *d = (lstm_data *)n->user_data;
    kws_lstm_params *p = &d->p;
    kws_tensor *x = in_at(m, d, IN_X), *h = in_at(m, d, IN_H), *c = in_at(m, d, IN_C), *o = kws_node_out(m, n, 0);
    kws_status s;
    if (!x) FAIL(KWS_ERR_FORMAT, "LSTM input missing", -1);
    if (!h || !c) FAIL(KWS_ERR_UNSUPPORTED, "stateful LSTM without its state tensors (inputs 18/19)", -1);
    for (int i = IN_PEEP; i < IN_PEEP + 3; i++) if (in_at(m, d, i)) FAIL(KWS_ERR_UNSUPPORTED, "LSTM peepholes not supported", -1);
    for (int i = IN_PROJ; i < IN_PROJ + 2; i++) if (in_at(m, d, i)) FAIL(KWS_ERR_UNSUPPORTED, "LSTM projection not supported", -1);
    for (int i = IN_LN; i < IN_LN + 4; i++) if (in_at(m, d, i)) FAIL(KWS_ERR_UNSUPPORTED, "LSTM layer norm not supported", -1);
    if ((s = per_tensor(m, x, KWS_INT8, "LSTM input must be per-tensor INT8"))) return s;
    if ((s = per_tensor(m, h, KWS_INT8, "LSTM hidden state must be per-tensor INT8"))) return s;
    if ((s = per_tensor(m, c, KWS_INT16, "LSTM cell state must be per-tensor INT16"))) return s;
    if ((s = per_tensor(m, o, KWS_INT8, "LSTM output must be per-tensor INT8"))) return s;
    if (x->rank != 3 || x->dims[0] != 1) FAIL(KWS_ERR_SHAPE, "LSTM input must be [1, steps, features]", TIDX(x));
    /* the state belongs to this op: constant, a graph input or another op's output is not a state */
    for (kws_tensor *st = h; st; st = st == h ? c : NULL) {
        int is_input = 0;
        for (int g = 0; g < m->num_inputs; g++) is_input |= &m->tensors[m->inputs[g]] == st;
        if (st->is_const || is_input || st->first_use >= 0 || st->data)
            FAIL(KWS_ERR_FORMAT, "LSTM state must be a variable tensor of this operator", TIDX(st));
    }
    kws_tensor *w0 = in_at(m, d, IN_W);
    if (!w0 || w0->rank != 2) FAIL(KWS_ERR_SHAPE, "LSTM input weights must be [units, features]", -1);
    p->units = w0->dims[0];
    p->n_in = w0->dims[1];
    if (x->dims[2] != p->n_in) FAIL(KWS_ERR_SHAPE, "LSTM input features != weight columns", TIDX(x));
    if (h->elements != (uint32_t)p->units || c->elements != (uint32_t)p->units)
        FAIL(KWS_ERR_SHAPE, "LSTM state size != units", h->elements != (uint32_t)p->units ? TIDX(h) : TIDX(c));
    if (o->rank != 3 || o->dims[0] != 1 || o->dims[1] != x->dims[1] || o->dims[2] != p->units)
        FAIL(KWS_ERR_SHAPE, "LSTM output must be [1, steps, units]", TIDX(o));
    if (o->scale != h->scale || o->zero_point != h->zero_point)
        FAIL(KWS_ERR_QUANT, "LSTM output quantization != hidden state's", TIDX(o));
    if (x->zero_point < -128 || x->zero_point > 127 || h->zero_point < -128 || h->zero_point > 127 || c->zero_point != 0)
        FAIL(KWS_ERR_QUANT, "LSTM zero point out of range", -1);
    int e2;
    double fr = frexp((double)c->scale, &e2);
    if (fr != 0.5) FAIL(KWS_ERR_QUANT, "LSTM cell state scale must be a power of two", TIDX(c));
    p->cell_int_bits = 15 + (e2 - 1);
    if (p->cell_int_bits < -8 || p->cell_int_bits > 8) FAIL(KWS_ERR_QUANT, "LSTM cell state scale out of range", TIDX(c));
    p->zp_x = x->zero_point;
    p->zp_h = h->zero_point;
    const double gate_scale = 1.0 / 4096.0, act = 1.0 / 32768.0;
    for (int g = 0; g < 4; g++) {
        kws_tensor *w = in_at(m, d, IN_W + g), *r = in_at(m, d, IN_R + g), *b = in_at(m, d, IN_BIAS + g);
        if (!w || !r || !b) FAIL(KWS_ERR_UNSUPPORTED, "LSTM without all four gates (CIFG) not supported", -1);
        if (!w->is_const || !r->is_const || !b->is_const) FAIL(KWS_ERR_UNSUPPORTED, "LSTM weights must be constant", -1);
        if ((s = per_tensor(m, w, KWS_INT8, "LSTM weights must be per-tensor INT8"))) return s;
        if ((s = per_tensor(m, r, KWS_INT8, "LSTM weights must be per-tensor INT8"))) return s;
        if (w->zero_point != 0 || r->zero_point != 0) FAIL(KWS_ERR_QUANT, "LSTM weight zero point != 0", TIDX(w));
        if (w->rank != 2 || w->dims[0] != p->units || w->dims[1] != p->n_in) FAIL(KWS_ERR_SHAPE, "LSTM input weights shape", TIDX(w));
        if (r->rank != 2 || r->dims[0] != p->units || r->dims[1] != p->units) FAIL(KWS_ERR_SHAPE, "LSTM recurrent weights shape", TIDX(r));
        if (b->type != KWS_INT32 || b->elements != (uint32_t)p->units) FAIL(KWS_ERR_TYPE, "LSTM bias must be INT32 [units]", TIDX(b));
        if (((uintptr_t)b->data & 3) != 0) FAIL(KWS_ERR_FORMAT, "bias data misaligned", TIDX(b));
        /* int32 accumulators: |bias| + 2^15 * depth must stay below 2^31 (also with the zero points folded) */
        if (p->n_in > 65535 || p->units > 65535) FAIL(KWS_ERR_LIMIT, "LSTM accumulation depth above 65,535", -1);
        for (int32_t j = 0; j < p->units; j++) {
            int32_t bj = (int32_t)kws_rd_u32(b->data + 4u * (uint32_t)j);
            int64_t mag = (bj < 0 ? -(int64_t)bj : (int64_t)bj) + 32768LL * (p->n_in > p->units ? p->n_in : p->units);
            if (mag > INT32_MAX) FAIL(KWS_ERR_LIMIT, "LSTM bias + accumulation could overflow int32", TIDX(b));
        }
        p->w[g] = (const int8_t *)w->data;
        p->r[g] = (const int8_t *)r->data;
        p->b[g] = (const int32_t *)(const void *)b->data;
        if ((s = mult(m, (double)x->scale * (double)w->scale / gate_scale, &p->in_mult[g], &p->in_shift[g]))) return s;
        if ((s = mult(m, (double)h->scale * (double)r->scale / gate_scale, &p->rec_mult[g], &p->rec_shift[g]))) return s;
    }
    if ((s = mult(m, act * (double)c->scale / (double)c->scale, &p->fc_mult, &p->fc_shift))) return s;
    if ((s = mult(m, act * act / (double)c->scale, &p->ig_mult, &p->ig_shift))) return s;
    if ((s = mult(m, act * act / (double)h->scale, &p->h_mult, &p->h_shift))) return s;
    p->cell_clip = 0;
    if (d->cell_clip > 0.0f) {
        double q = (double)d->cell_clip / (double)c->scale;
        p->cell_clip = (int32_t)(q > 32767.0 ? 32767.0 : q);
    }
    d->steps = x->dims[1];
    /* the state: persistent memory, outside the activation plan */
    h->data = kws_persistent_alloc(m, h->bytes);
    c->data = kws_persistent_alloc(m, c->bytes);
    if (!h->data || !c->data) FAIL(KWS_ERR_ARENA, "arena too small for the LSTM state", -1);
    reset_one(m, d);
    d->eff_bias = NULL;
    d->opt = NULL;
    /* the optimized LSTM of the build's kernel family (reference-only images: kws_kernel_isa() "reference") */
    const char *isa = kws_kernel_isa();   /* no strcmp: the bare-metal boards' mini libc has none */
    size_t opt_scratch = 0;
    if (kws_lstm_dsp_available() && isa[0] == 'd' && isa[1] == 's' && isa[2] == 'p' && isa[3] == 0) {
        d->opt = kws_lstm_s8_dsp;
        opt_scratch = kws_lstm_dsp_scratch_bytes(p);
    } else if (kws_lstm_mve_available() && isa[0] == 'm' && isa[1] == 'v' && isa[2] == 'e' && isa[3] == 0) {
        d->opt = kws_lstm_s8_mve;
        opt_scratch = kws_lstm_vec_scratch_bytes(p);
    } else if (kws_lstm_neon_available() && isa[0] == 'n' && isa[1] == 'e' && isa[2] == 'o' && isa[3] == 'n') {
        d->opt = kws_lstm_s8_neon;
        opt_scratch = kws_lstm_vec_scratch_bytes(p);
    }
    if (d->opt) {
        int32_t *eff = kws_persistent_alloc(m, sizeof(int32_t) * 8u * (size_t)p->units);
        if (!eff) FAIL(KWS_ERR_ARENA, "arena too small for the LSTM row sums", -1);
        kws_lstm_fold_bias(p, eff);
        d->eff_bias = eff;
        kws_request_scratch(m, opt_scratch);
        m->num_opt_ops++;
    }
    kws_request_scratch(m, (size_t)p->units * 4u * sizeof(int16_t));
    return KWS_OK;
}

static kws_status lstm_invoke(kws_model *m, kws_node *n)
{
    lstm_data *d = (lstm_data *)n->user_data;
    if (d->opt) {
        d->opt(&d->p, d->eff_bias, d->steps, (const int8_t *)in_at(m, d, IN_X)->data,
               (int8_t *)in_at(m, d, IN_H)->data, (int16_t *)(void *)in_at(m, d, IN_C)->data, m->scratch,
               (int8_t *)kws_node_out(m, n, 0)->data);
        return KWS_OK;
    }
    kws_lstm_s8(&d->p, d->steps, (const int8_t *)in_at(m, d, IN_X)->data, (int8_t *)in_at(m, d, IN_H)->data,
                (int16_t *)(void *)in_at(m, d, IN_C)->data, (int16_t *)m->scratch,
                (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

const kws_op kws_op_unidirectional_sequence_lstm = {"UNIDIRECTIONAL_SEQUENCE_LSTM", lstm_init, lstm_prepare, lstm_invoke};

kws_status kws_reset_state(kws_model *m)
{
    if (!m || !m->ready) return KWS_ERR_ARG;
    for (int i = 0; i < m->num_nodes; i++)
        if (m->nodes[i].op == &kws_op_unidirectional_sequence_lstm) reset_one(m, (lstm_data *)m->nodes[i].user_data);
        else if (m->nodes[i].op == &kws_op_sub8_lstm_a4) kws_lstm_a4_reset(m, &m->nodes[i]);
    return KWS_OK;
}
