/* kws_lstm_a4_op.c - the SUB8_LSTM_A4 operator (docs/formats.md section 13): init parses the custom options,
 * prepare checks every tensor, the bit widths, the packed sizes, the params tensor (rescales in range,
 * thresholds non-decreasing) and the accumulator bound, gives the state (inputs 5 and 6, variable tensors)
 * persistent arena memory and starts the stream (h = 0, c = 0); invoke runs kws_lstm_a4. The reader passes
 * the op's 7 inputs through user_data (kws_model.c), node->inputs holds the first KWS_MAX_OP_INPUTS. */
#include <math.h>
#include <string.h>
#include "kws_internal.h"
#include "kws_fb.h"
#include "kws_lstm_a4.h"
#include "kws_lstm_a4_simd.h"

#define FAIL(s, msg, t) return kws_fail(m, (s), (msg), (t))
#define TIDX(t) ((int)((t) - m->tensors))

enum { IN_X = 0, IN_W = 1, IN_R = 2, IN_BIAS = 3, IN_PARAMS = 4, IN_H = 5, IN_C = 6 };

typedef struct {
    int16_t inputs[KWS_LSTM_A4_INPUTS];
    kws_lstm_a4_params p;
    int32_t steps, input_bits, gate_bits, tanh_bits, hidden_bits, cell_bits, dsp;
    void (*simd)(const kws_lstm_a4_params *, int32_t, const int8_t *, int8_t *, int16_t *, int32_t *, int8_t *);
} lstm_a4_data;

static kws_tensor *in_at(kws_model *m, const lstm_a4_data *d, int i)
{
    return d->inputs[i] < 0 ? NULL : &m->tensors[d->inputs[i]];
}

static kws_status a4l_init(kws_model *m, kws_node *n)
{
    const int16_t *all = (const int16_t *)n->user_data;
    if (!all) FAIL(KWS_ERR_FORMAT, "SUB8_LSTM_A4 needs 7 inputs", -1);
    lstm_a4_data *d = kws_persistent_alloc(m, sizeof *d);
    if (!d) FAIL(KWS_ERR_ARENA, "arena too small for LSTM data", -1);
    memset(d, 0, sizeof *d);
    memcpy(d->inputs, all, sizeof d->inputs);
    n->user_data = d;
    static const char *const keys[] = {"version", "weight_bits", "layout", "in_features", "units", "input_bits",
                                       "gate_bits", "tanh_bits", "hidden_bits", "cell_bits"};
    static const int32_t lo[] = {1, 2, 0, 1, 1, 2, 2, 2, 2, 8}, hi[] = {1, 8, 0, 4096, 4096, 8, 8, 8, 8, 16};
    int64_t v[10];
    for (int i = 0; i < 10; i++) {
        if (kws_flex_map_int(n->custom_options, n->custom_options_len, keys[i], &v[i]))
            FAIL(KWS_ERR_OPTIONS, "SUB8_LSTM_A4 custom_options incomplete", -1);
        if (v[i] < lo[i] || v[i] > hi[i]) {
            if (i == 0) FAIL(KWS_ERR_VERSION, "SUB8_LSTM_A4 version not supported (1)", -1);
            FAIL(KWS_ERR_UNSUPPORTED, "SUB8_LSTM_A4: unsupported bit width, layout or size", -1);
        }
    }
    d->p.weight_bits = (int32_t)v[1];
    d->p.n_in = (int32_t)v[3];
    d->p.units = (int32_t)v[4];
    d->input_bits = (int32_t)v[5];
    d->gate_bits = (int32_t)v[6];
    d->tanh_bits = (int32_t)v[7];
    d->hidden_bits = (int32_t)v[8];
    d->cell_bits = (int32_t)v[9];
    return KWS_OK;
}

static int scale_ok(float s) { return s > 0.0f && isfinite(s) && s < 1e30f; }

static void reset_one(kws_model *m, lstm_a4_data *d)
{
    kws_tensor *h = in_at(m, d, IN_H), *c = in_at(m, d, IN_C);
    memset(h->data, 0, h->bytes);
    memset(c->data, 0, c->bytes);
}

static kws_status a4l_prepare(kws_model *m, kws_node *n)
{
    lstm_a4_data *d = (lstm_a4_data *)n->user_data;
    kws_lstm_a4_params *p = &d->p;
    kws_tensor *x = in_at(m, d, IN_X), *w = in_at(m, d, IN_W), *r = in_at(m, d, IN_R), *b = in_at(m, d, IN_BIAS);
    kws_tensor *pr = in_at(m, d, IN_PARAMS), *h = in_at(m, d, IN_H), *c = in_at(m, d, IN_C), *o = kws_node_out(m, n, 0);
    const int32_t u = p->units, nin = p->n_in, k = p->weight_bits;
    if (!x || !w || !r || !b || !pr) FAIL(KWS_ERR_FORMAT, "SUB8_LSTM_A4 input missing", -1);
    if (!h || !c) FAIL(KWS_ERR_UNSUPPORTED, "stateful LSTM without its state tensors (inputs 5/6)", -1);
    for (kws_tensor *st = h; st; st = st == h ? c : NULL) {
        int is_input = 0;
        for (int g = 0; g < m->num_inputs; g++) is_input |= &m->tensors[m->inputs[g]] == st;
        if (st->is_const || is_input || st->first_use >= 0 || st->data)
            FAIL(KWS_ERR_FORMAT, "LSTM state must be a variable tensor of this operator", TIDX(st));
    }
    if (x->type != KWS_INT8 || h->type != KWS_INT8 || o->type != KWS_INT8) FAIL(KWS_ERR_TYPE, "SUB8_LSTM_A4 activations must be INT8", TIDX(x));
    if (c->type != KWS_INT16) FAIL(KWS_ERR_TYPE, "SUB8_LSTM_A4 cell state must be INT16", TIDX(c));
    if (!x->has_quant || x->num_scales != 1 || !scale_ok(x->scale)) FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 input needs per-tensor quantization", TIDX(x));
    if (x->zero_point < -128 || x->zero_point > 127 || (d->input_bits < 8 && x->zero_point != 0))
        FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 input zero point invalid (k-bit inputs need 0)", TIDX(x));
    if ((h->has_quant && h->zero_point != 0) || (o->has_quant && o->zero_point != 0))
        FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 hidden state needs zero point 0", TIDX(h));
    if (x->rank != 3 || x->dims[0] != 1 || x->dims[2] != nin) FAIL(KWS_ERR_SHAPE, "SUB8_LSTM_A4 input must be [1, steps, in_features]", TIDX(x));
    if (h->elements != (uint32_t)u || c->elements != (uint32_t)u)
        FAIL(KWS_ERR_SHAPE, "LSTM state size != units", h->elements != (uint32_t)u ? TIDX(h) : TIDX(c));
    if (o->rank != 3 || o->dims[0] != 1 || o->dims[1] != x->dims[1] || o->dims[2] != u)
        FAIL(KWS_ERR_SHAPE, "SUB8_LSTM_A4 output must be [1, steps, units]", TIDX(o));
    p->w_row_bytes = (int32_t)kws_sub8_row_bytes(0, k, nin);
    p->r_row_bytes = (int32_t)kws_sub8_row_bytes(0, k, u);
    if (w->type != KWS_UINT8 || r->type != KWS_UINT8 || !w->is_const || !r->is_const)
        FAIL(KWS_ERR_TYPE, "SUB8_LSTM_A4 weights must be constant UINT8 packed bytes", TIDX(w));
    if (w->bytes != (uint32_t)(4 * u * p->w_row_bytes) || r->bytes != (uint32_t)(4 * u * p->r_row_bytes))
        FAIL(KWS_ERR_SHAPE, "SUB8_LSTM_A4 packed weight size != 4 units x row bytes (layout 0)", TIDX(w));
    if (b->type != KWS_INT32 || !b->is_const || b->elements != (uint32_t)(4 * u) || ((uintptr_t)b->data & 3))
        FAIL(KWS_ERR_TYPE, "SUB8_LSTM_A4 bias must be a constant aligned INT32 [4 x units]", TIDX(b));
    const int32_t ng = (1 << d->gate_bits) - 1, nt = (1 << (d->tanh_bits - 1)) - 1;
    const uint32_t np = (uint32_t)(KWS_LSTM_A4_N_MULT + 3 * ng + 4 * nt);
    if (pr->type != KWS_INT32 || !pr->is_const || pr->elements != np || ((uintptr_t)pr->data & 3))
        FAIL(KWS_ERR_TYPE, "SUB8_LSTM_A4 params must be a constant aligned INT32 of the documented size", TIDX(pr));
    const int32_t *q = (const int32_t *)(const void *)pr->data;
    for (int g = 0; g < 4; g++) {
        p->m_in[g] = q[4 * g]; p->s_in[g] = q[4 * g + 1]; p->m_rec[g] = q[4 * g + 2]; p->s_rec[g] = q[4 * g + 3];
        if (p->m_in[g] <= 0 || p->m_rec[g] <= 0 || p->s_in[g] < 0 || p->s_in[g] > 62 || p->s_rec[g] < 0 || p->s_rec[g] > 62)
            FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 gate rescale out of range", TIDX(pr));
    }
    p->m_fc = q[16]; p->m_ig = q[17]; p->s_c = q[18]; p->m_h = q[19]; p->s_h = q[20];
    if (p->m_fc < 0 || p->m_ig < 0 || p->s_c < 0 || p->s_c > 62 || p->m_h <= 0 || p->s_h < 0 || p->s_h > 62)
        FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 cell / hidden rescale out of range", TIDX(pr));
    const int32_t counts[5] = {ng, ng, 2 * nt, ng, 2 * nt};
    const int32_t *t = q + KWS_LSTM_A4_N_MULT;
    for (int g = 0; g < 5; g++) {
        p->thr[g] = t;
        p->n_thr[g] = counts[g];
        for (int32_t i = 1; i < counts[g]; i++)
            if (t[i] < t[i - 1]) FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 thresholds must be non-decreasing", TIDX(pr));
        t += counts[g];
    }
    p->nt = nt;
    p->nh = (1 << (d->hidden_bits - 1)) - 1;
    p->nc = (1 << (d->cell_bits - 1)) - 1;
    /* int32 accumulators: depth x 2^8 x 2^(k-1) < 2^31; |bias| <= 2^29 so the gate sum fits int32 */
    if ((int64_t)(nin > u ? nin : u) * 256 * (1 << (k - 1)) >= INT32_MAX)
        FAIL(KWS_ERR_LIMIT, "LSTM accumulation could overflow int32", TIDX(w));
    for (int32_t j = 0; j < 4 * u; j++) {
        int32_t bj = (int32_t)kws_rd_u32(b->data + 4u * (uint32_t)j);
        if (bj > KWS_LSTM_A4_Z_CLAMP || bj < -KWS_LSTM_A4_Z_CLAMP) FAIL(KWS_ERR_QUANT, "SUB8_LSTM_A4 bias out of +-2^29", TIDX(b));
    }
    p->w = w->data;
    p->r = r->data;
    p->bias = (const int32_t *)(const void *)b->data;
    p->zp_x = x->zero_point;
    d->steps = x->dims[1];
    h->data = kws_persistent_alloc(m, h->bytes);
    c->data = kws_persistent_alloc(m, c->bytes);
    if (!h->data || !c->data) FAIL(KWS_ERR_ARENA, "arena too small for the LSTM state", -1);
    reset_one(m, d);
    kws_request_scratch(m, kws_lstm_a4_scratch_bytes(p));
    const char *isa = kws_kernel_isa();   /* no strcmp: the bare-metal boards' mini libc has none */
    d->dsp = kws_lstm_a4_dsp_available() && isa[0] == 'd' && isa[1] == 's' && isa[2] == 'p' && isa[3] == 0 &&
             kws_lstm_a4_dsp_supported(p);
    if (d->dsp) {
        kws_request_scratch(m, kws_lstm_a4_dsp_scratch_bytes(p));
        m->num_opt_ops++;
    }
    /* Helium / NEON kernels (kws_lstm_a4_simd.h) where the image's kernel family is theirs */
    d->simd = NULL;
    p->vec_tab = NULL;
    if (kws_lstm_a4_mve_available() && isa[0] == 'm' && isa[1] == 'v' && isa[2] == 'e' && isa[3] == 0 &&
        kws_lstm_a4_mve_supported(p))
        d->simd = kws_lstm_a4_mve;
    else if (kws_lstm_a4_neon_available() && isa[0] == 'n' && isa[1] == 'e' && isa[2] == 'o' && isa[3] == 'n' &&
             kws_lstm_a4_neon_supported(p))
        d->simd = kws_lstm_a4_neon;
    if (d->simd) {   /* their padded threshold tables, once, in persistent memory (the scratch then omits them) */
        int32_t *tab = kws_persistent_alloc(m, kws_lstm_a4_vec_tables_bytes(p));
        if (!tab) FAIL(KWS_ERR_ARENA, "arena too small for the LSTM threshold tables", -1);
        kws_lstm_a4_vec_tables(p, tab);
        p->vec_tab = tab;
        kws_request_scratch(m, d->simd == kws_lstm_a4_mve ? kws_lstm_a4_mve_scratch_bytes(p)
                                                          : kws_lstm_a4_neon_scratch_bytes(p));
        m->num_opt_ops++;
    }
    return KWS_OK;
}

static kws_status a4l_invoke(kws_model *m, kws_node *n)
{
    lstm_a4_data *d = (lstm_a4_data *)n->user_data;
    (d->dsp ? kws_lstm_a4_dsp : d->simd ? d->simd : kws_lstm_a4)(&d->p, d->steps, (const int8_t *)in_at(m, d, IN_X)->data, (int8_t *)in_at(m, d, IN_H)->data,
                (int16_t *)(void *)in_at(m, d, IN_C)->data, (int32_t *)(void *)m->scratch,
                (int8_t *)kws_node_out(m, n, 0)->data);
    return KWS_OK;
}

void kws_lstm_a4_reset(kws_model *m, kws_node *n)
{
    reset_one(m, (lstm_a4_data *)n->user_data);
}

const kws_op kws_op_sub8_lstm_a4 = {"SUB8_LSTM_A4", a4l_init, a4l_prepare, a4l_invoke};
