/* kws_model.c - reads and validates the .tflite flatbuffer, builds the tensor and node tables in
 * the arena, runs init/prepare of every op, plans activation memory and invokes the graph. */
#include <string.h>
#include "kws_internal.h"

/* schema field ids (vtable slots) */
enum { MODEL_VERSION = 0, MODEL_OPCODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4 };
enum { OPC_DEPRECATED = 0, OPC_CUSTOM = 1, OPC_BUILTIN = 3 };
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
enum { T_SHAPE = 0, T_TYPE = 1, T_BUFFER = 2, T_QUANT = 4, T_SPARSITY = 6 };
enum { Q_SCALE = 2, Q_ZERO_POINT = 3, Q_DETAILS_TYPE = 4, Q_DIM = 6 };
enum { OP_OPCODE = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTS_TYPE = 3, OP_OPTS = 4, OP_CUSTOM_OPTS = 5,
       OP_CUSTOM_FORMAT = 6, OP_LARGE_CUSTOM_OFFSET = 9, OP_OPTS2_TYPE = 11 };
enum { BUF_DATA = 0, BUF_OFFSET = 1, BUF_SIZE = 2 };

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~(size_t)((a) - 1))
#define ARENA_ALIGN 16
#define MAX_TENSOR_BYTES (1u << 30)

const char *kws_strerror(kws_status s)
{
    switch (s) {
    case KWS_OK: return "ok";
    case KWS_ERR_ARG: return "invalid argument";
    case KWS_ERR_FORMAT: return "malformed flatbuffer";
    case KWS_ERR_IDENTIFIER: return "not a TFLite model (identifier != TFL3)";
    case KWS_ERR_VERSION: return "unsupported version";
    case KWS_ERR_INDEX: return "index out of range";
    case KWS_ERR_TYPE: return "unsupported or inconsistent tensor type";
    case KWS_ERR_SHAPE: return "invalid or inconsistent shape";
    case KWS_ERR_QUANT: return "missing or invalid quantization";
    case KWS_ERR_UNSUPPORTED: return "unsupported operator or option";
    case KWS_ERR_OPTIONS: return "missing or invalid operator options";
    case KWS_ERR_ARENA: return "arena too small";
    case KWS_ERR_LIMIT: return "model exceeds a runtime limit";
    case KWS_ERR_IO: return "I/O error";
    }
    return "unknown error";
}

const char *kws_model_error(const kws_model *m)
{
    if (!m) return "no model";
    if (m->status == KWS_OK) return "ok";
    return m->error_detail ? m->error_detail : kws_strerror(m->status);
}

kws_status kws_fail(kws_model *m, kws_status s, const char *detail, int tensor)
{
    m->status = s;
    m->error_detail = detail;
    m->error_tensor = tensor;
    return s;
}

void kws_request_scratch(kws_model *m, size_t bytes)
{
    if (bytes > m->scratch_bytes) m->scratch_bytes = bytes;
}

void *kws_persistent_alloc(kws_model *m, size_t bytes)
{
    size_t start = ALIGN_UP(m->persistent_used, 8);
    if (bytes > m->arena_len || start > m->arena_len - bytes) return NULL;
    m->persistent_used = start + bytes;
    memset(m->arena + start, 0, bytes);
    return m->arena + start;
}

kws_tensor *kws_node_in(kws_model *m, kws_node *n, int i)
{
    if (i >= n->num_inputs || n->inputs[i] < 0) return NULL;
    return &m->tensors[n->inputs[i]];
}

kws_tensor *kws_node_out(kws_model *m, kws_node *n, int i)
{
    if (i >= n->num_outputs || n->outputs[i] < 0) return NULL;
    return &m->tensors[n->outputs[i]];
}

int kws_node_options(kws_model *m, kws_node *n, int expected_type, kws_fb_table *t)
{
    if (n->builtin_options_pos == 0) return 1;
    if (n->builtin_options_type != expected_type) return -1;
    return kws_fb_table_at(m->fb, (uint32_t)m->fb_len, n->builtin_options_pos, t) ? -1 : 0;
}

float kws_tensor_scale(const kws_model *m, const kws_tensor *t, uint32_t i)
{
    if (i >= t->num_scales) return 0.0f;
    return kws_rd_f32(m->fb + t->scales_pos + 4u * i);
}

int64_t kws_tensor_zero_point(const kws_model *m, const kws_tensor *t, uint32_t i)
{
    if (i >= t->num_scales || t->zps_pos == 0) return 0;
    return (int64_t)kws_rd_u64(m->fb + t->zps_pos + 8u * i);
}

static kws_status read_index_list(kws_model *m, const kws_fb_table *t, unsigned id, int16_t *out, uint8_t *count,
                                  unsigned max, int allow_absent_entries, const char *what)
{
    kws_fb_vec v;
    int r = kws_fb_vector(t, id, 4, &v);
    if (r < 0) return kws_fail(m, KWS_ERR_FORMAT, what, -1);
    if (v.count > max) return kws_fail(m, KWS_ERR_LIMIT, what, -1);
    for (uint32_t i = 0; i < v.count; i++) {
        int32_t idx = kws_rd_i32(m->fb + v.pos + 4u * i);
        if (idx == -1 && allow_absent_entries) { out[i] = -1; continue; }
        if (idx < 0 || idx >= m->num_tensors) return kws_fail(m, KWS_ERR_INDEX, what, idx);
        out[i] = (int16_t)idx;
    }
    *count = (uint8_t)v.count;
    return KWS_OK;
}

static kws_status read_tensor(kws_model *m, const kws_fb_table *tt, const kws_fb_vec *buffers, kws_tensor *t, int ti)
{
    const uint32_t len = (uint32_t)m->fb_len;
    kws_fb_vec shape;
    int r = kws_fb_vector(tt, T_SHAPE, 4, &shape);
    if (r < 0) return kws_fail(m, KWS_ERR_FORMAT, "tensor shape vector out of buffer", ti);
    if (shape.count > KWS_MAX_RANK) return kws_fail(m, KWS_ERR_LIMIT, "tensor rank above KWS_MAX_RANK", ti);
    uint64_t elements = 1;
    t->rank = (uint8_t)shape.count;
    for (uint32_t d = 0; d < shape.count; d++) {
        int32_t dim = kws_rd_i32(m->fb + shape.pos + 4u * d);
        /* 0 is allowed only on tensors no operator uses (an LSTM's intermediates): checked in read_graph */
        if (dim < 0) return kws_fail(m, KWS_ERR_SHAPE, "tensor dimension < 1", ti);
        t->dims[d] = dim;
        elements *= (uint64_t)dim;
        if (elements > MAX_TENSOR_BYTES) return kws_fail(m, KWS_ERR_SHAPE, "tensor element count overflows", ti);
    }
    t->elements = (uint32_t)elements;
    t->type = kws_fb_u8(tt, T_TYPE, 0);
    uint64_t bytes;
    switch (t->type) {
    case KWS_FLOAT32: case KWS_INT32: bytes = elements * 4; break;
    case KWS_INT64: bytes = elements * 8; break;
    case KWS_INT16: bytes = elements * 2; break;
    case KWS_INT8: case KWS_UINT8: bytes = elements; break;
    case KWS_INT4: bytes = (elements + 1) / 2; break;
    default: return kws_fail(m, KWS_ERR_TYPE, "tensor type not supported by this runtime", ti);
    }
    if (bytes > MAX_TENSOR_BYTES) return kws_fail(m, KWS_ERR_SHAPE, "tensor bytes overflow", ti);
    t->bytes = (uint32_t)bytes;
    kws_fb_table sp;
    if (kws_fb_subtable(tt, T_SPARSITY, &sp) != 1) return kws_fail(m, KWS_ERR_UNSUPPORTED, "sparse tensors not supported", ti);

    /* constant data */
    uint32_t bi = kws_fb_u32(tt, T_BUFFER, 0);
    if (bi >= buffers->count) return kws_fail(m, KWS_ERR_INDEX, "tensor buffer index out of range", ti);
    kws_fb_table bt;
    if (kws_fb_vec_table(&(kws_fb_table){.buf = m->fb, .len = len}, buffers, bi, &bt))
        return kws_fail(m, KWS_ERR_FORMAT, "buffer table out of buffer", ti);
    kws_fb_vec data;
    if (kws_fb_vector(&bt, BUF_DATA, 1, &data) < 0) return kws_fail(m, KWS_ERR_FORMAT, "buffer data out of buffer", ti);
    uint64_t ext_off = kws_fb_u64(&bt, BUF_OFFSET, 0), ext_size = kws_fb_u64(&bt, BUF_SIZE, 0);
    const uint8_t *cdata = NULL;
    uint64_t csize = 0;
    if (data.count > 0) { cdata = m->fb + data.pos; csize = data.count; }
    else if (ext_off > 1) {
        if (ext_off > len || ext_size > len - ext_off) return kws_fail(m, KWS_ERR_FORMAT, "external buffer outside the file", ti);
        cdata = m->fb + ext_off; csize = ext_size;
    }
    t->is_const = cdata != NULL;
    if (t->is_const) {
        if (csize != bytes) return kws_fail(m, KWS_ERR_SHAPE, "constant buffer size != shape x type size", ti);
        t->data = (uint8_t *)(uintptr_t)cdata;  /* never written: ops reject constant outputs */
    }

    /* quantization */
    kws_fb_table qt;
    r = kws_fb_subtable(tt, T_QUANT, &qt);
    if (r < 0) return kws_fail(m, KWS_ERR_FORMAT, "quantization table out of buffer", ti);
    if (r == 0) {
        kws_fb_vec sc, zp;
        if (kws_fb_vector(&qt, Q_SCALE, 4, &sc) < 0 || kws_fb_vector(&qt, Q_ZERO_POINT, 8, &zp) < 0)
            return kws_fail(m, KWS_ERR_FORMAT, "quantization vectors out of buffer", ti);
        if (kws_fb_u8(&qt, Q_DETAILS_TYPE, 0) != 0) return kws_fail(m, KWS_ERR_UNSUPPORTED, "custom quantization details", ti);
        if (sc.count > 0) {
            if (zp.count != sc.count) return kws_fail(m, KWS_ERR_QUANT, "zero_point count != scale count", ti);
            t->has_quant = 1;
            t->num_scales = sc.count;
            t->scales_pos = sc.pos;
            t->zps_pos = zp.pos;
            t->scale = kws_rd_f32(m->fb + sc.pos);
            int64_t z = (int64_t)kws_rd_u64(m->fb + zp.pos);
            if (z < INT32_MIN || z > INT32_MAX) return kws_fail(m, KWS_ERR_QUANT, "zero point out of int32", ti);
            t->zero_point = (int32_t)z;
            t->quantized_dimension = kws_fb_i32(&qt, Q_DIM, 0);
            if (sc.count > 1 && (t->quantized_dimension < 0 || t->quantized_dimension >= t->rank ||
                                 (uint32_t)t->dims[t->quantized_dimension] != sc.count))
                return kws_fail(m, KWS_ERR_QUANT, "per-channel scale count != quantized dimension", ti);
        }
    }
    t->first_use = -1;
    t->last_use = -1;
    return KWS_OK;
}

static kws_status read_graph(kws_model *m)
{
    kws_fb_table root, sg, t;
    int r = kws_fb_root(m->fb, m->fb_len, "TFL3", &root);
    if (r == -2) return kws_fail(m, KWS_ERR_IDENTIFIER, "file identifier is not TFL3", -1);
    if (r) return kws_fail(m, KWS_ERR_FORMAT, "root table out of buffer", -1);
    if (kws_fb_u32(&root, MODEL_VERSION, 0) != 3) return kws_fail(m, KWS_ERR_VERSION, "model schema version != 3", -1);

    kws_fb_vec opcodes, subgraphs, buffers, tensors, operators;
    if (kws_fb_vector(&root, MODEL_OPCODES, 4, &opcodes) < 0 || kws_fb_vector(&root, MODEL_SUBGRAPHS, 4, &subgraphs) < 0 ||
        kws_fb_vector(&root, MODEL_BUFFERS, 4, &buffers) < 0)
        return kws_fail(m, KWS_ERR_FORMAT, "model vectors out of buffer", -1);
    if (subgraphs.count < 1) return kws_fail(m, KWS_ERR_FORMAT, "model has no subgraph", -1);
    if (subgraphs.count > 1) return kws_fail(m, KWS_ERR_UNSUPPORTED, "more than one subgraph", -1);
    if (kws_fb_vec_table(&root, &subgraphs, 0, &sg)) return kws_fail(m, KWS_ERR_FORMAT, "subgraph table out of buffer", -1);
    if (kws_fb_vector(&sg, SG_TENSORS, 4, &tensors) < 0 || kws_fb_vector(&sg, SG_OPERATORS, 4, &operators) < 0)
        return kws_fail(m, KWS_ERR_FORMAT, "subgraph vectors out of buffer", -1);
    if (tensors.count > KWS_MAX_TENSORS) return kws_fail(m, KWS_ERR_LIMIT, "more tensors than KWS_MAX_TENSORS", -1);
    if (operators.count > KWS_MAX_OPS) return kws_fail(m, KWS_ERR_LIMIT, "more operators than KWS_MAX_OPS", -1);
    if (operators.count == 0) return kws_fail(m, KWS_ERR_FORMAT, "subgraph has no operators", -1);
    /* Name an unsupported operator before its tensors or inputs hit a limit (an LSTM has more inputs
     * than KWS_MAX_OP_INPUTS, a CONV_3D a rank-5 shape): "unsupported operator LSTM" says what to change.
     * SHAPE / STRIDED_SLICE / PACK only feed RESHAPE's (unused) shape input and are dropped below. */
    for (uint32_t i = 0; i < operators.count; i++) {
        kws_fb_table ot, oc;
        if (kws_fb_vec_table(&sg, &operators, i, &ot)) return kws_fail(m, KWS_ERR_FORMAT, "operator table out of buffer", -1);
        uint32_t ci = kws_fb_u32(&ot, OP_OPCODE, 0);
        if (ci >= opcodes.count) continue; /* reported with its index below */
        if (kws_fb_vec_table(&root, &opcodes, ci, &oc)) return kws_fail(m, KWS_ERR_FORMAT, "operator code table out of buffer", -1);
        int32_t code = kws_fb_i32(&oc, OPC_BUILTIN, 0);
        int32_t dep = (int8_t)kws_fb_u8(&oc, OPC_DEPRECATED, 0);
        if (dep > code) code = dep;
        if (code == OP_CUSTOM || kws_find_builtin(code) || code == OP_SHAPE || code == OP_STRIDED_SLICE || code == OP_PACK)
            continue;
        const char *name = kws_builtin_op_name(code);
        size_t k = 0;
        for (const char *p = "unsupported operator "; *p; p++) m->error_text[k++] = *p;
        for (; *name && k + 1 < sizeof m->error_text; name++) m->error_text[k++] = *name;
        m->error_text[k] = 0;
        m->error_op = (int32_t)i;
        return kws_fail(m, KWS_ERR_UNSUPPORTED, m->error_text, -1);
    }
    m->num_tensors = (uint16_t)tensors.count;
    m->num_nodes = (uint16_t)operators.count;
    m->tensors = kws_persistent_alloc(m, sizeof(kws_tensor) * (tensors.count ? tensors.count : 1));
    m->nodes = kws_persistent_alloc(m, sizeof(kws_node) * operators.count);
    if (!m->tensors || !m->nodes) return kws_fail(m, KWS_ERR_ARENA, "arena too small for tensor/node tables", -1);

    for (uint32_t i = 0; i < tensors.count; i++) {
        if (kws_fb_vec_table(&sg, &tensors, i, &t)) return kws_fail(m, KWS_ERR_FORMAT, "tensor table out of buffer", (int)i);
        kws_status s = read_tensor(m, &t, &buffers, &m->tensors[i], (int)i);
        if (s) return s;
    }
    kws_status s = read_index_list(m, &sg, SG_INPUTS, m->inputs, &m->num_inputs, 4, 0, "subgraph inputs");
    if (s) return s;
    s = read_index_list(m, &sg, SG_OUTPUTS, m->outputs, &m->num_outputs, 4, 0, "subgraph outputs");
    if (s) return s;
    if (m->num_inputs == 0 || m->num_outputs == 0) return kws_fail(m, KWS_ERR_FORMAT, "subgraph without inputs or outputs", -1);

    for (uint32_t i = 0; i < operators.count; i++) {
        kws_node *n = &m->nodes[i];
        kws_fb_table ot, oc;
        m->error_op = (int32_t)i;
        if (kws_fb_vec_table(&sg, &operators, i, &ot)) return kws_fail(m, KWS_ERR_FORMAT, "operator table out of buffer", -1);
        uint32_t ci = kws_fb_u32(&ot, OP_OPCODE, 0);
        if (ci >= opcodes.count) return kws_fail(m, KWS_ERR_INDEX, "opcode index out of range", -1);
        if (kws_fb_vec_table(&root, &opcodes, ci, &oc)) return kws_fail(m, KWS_ERR_FORMAT, "operator code table out of buffer", -1);
        int32_t code = kws_fb_i32(&oc, OPC_BUILTIN, 0);
        int32_t dep = (int8_t)kws_fb_u8(&oc, OPC_DEPRECATED, 0);
        if (dep > code) code = dep;
        if (code == OP_CUSTOM) {
            kws_fb_vec name;
            if (kws_fb_vector(&oc, OPC_CUSTOM, 1, &name) != 0) return kws_fail(m, KWS_ERR_FORMAT, "custom op without custom_code", -1);
            n->op = kws_find_custom((const char *)m->fb + name.pos, name.count);
        } else {
            n->op = kws_find_builtin(code);
        }
        for (int k = 0; k < KWS_MAX_OP_INPUTS; k++) n->inputs[k] = -1;
#ifndef KWS_NO_LSTM
        if (n->op == &kws_op_unidirectional_sequence_lstm || n->op == &kws_op_sub8_lstm_a4) {
            /* 24 inputs: all of them to the op's init through user_data, the first KWS_MAX_OP_INPUTS in
             * node->inputs (data flow and liveness see input 0; the state, 18/19, belongs to the op) */
            int16_t *all = kws_persistent_alloc(m, sizeof(int16_t) * KWS_LSTM_INPUTS);
            uint8_t cnt = 0;
            if (!all) return kws_fail(m, KWS_ERR_ARENA, "arena too small for LSTM inputs", -1);
            for (int k = 0; k < KWS_LSTM_INPUTS; k++) all[k] = -1;
            s = read_index_list(m, &ot, OP_INPUTS, all, &cnt, KWS_LSTM_INPUTS, 1, "operator inputs");
            if (s) return s;
            if (n->op == &kws_op_sub8_lstm_a4) {   /* SUB8_LSTM_A4: 7 inputs (kws_lstm_a4.h) */
                if (cnt != 7) return kws_fail(m, KWS_ERR_FORMAT, "SUB8_LSTM_A4 needs 7 inputs", -1);
            } else if (cnt != KWS_LSTM_INPUTS) return kws_fail(m, KWS_ERR_FORMAT, "LSTM needs 24 inputs", -1);
            for (int k = 0; k < KWS_MAX_OP_INPUTS; k++) n->inputs[k] = all[k];
            n->num_inputs = KWS_MAX_OP_INPUTS;
            n->user_data = all;
        } else
#endif
        {
            s = read_index_list(m, &ot, OP_INPUTS, n->inputs, &n->num_inputs, KWS_MAX_OP_INPUTS, 1, "operator inputs");
        }
        if (s) return s;
        s = read_index_list(m, &ot, OP_OUTPUTS, n->outputs, &n->num_outputs, KWS_MAX_OP_OUTPUTS, 0, "operator outputs");
        if (s) return s;
        if (n->num_outputs != 1) return kws_fail(m, KWS_ERR_FORMAT, "operator must have one output", -1);
        n->builtin_options_type = kws_fb_u8(&ot, OP_OPTS_TYPE, 0);
        kws_fb_table bo;
        r = kws_fb_subtable(&ot, OP_OPTS, &bo);
        if (r < 0) return kws_fail(m, KWS_ERR_FORMAT, "builtin options out of buffer", -1);
        n->builtin_options_pos = r == 0 ? bo.pos : 0;
        if (kws_fb_u8(&ot, OP_OPTS2_TYPE, 0) != 0) return kws_fail(m, KWS_ERR_UNSUPPORTED, "builtin_options_2 not supported", -1);
        if (kws_fb_u64(&ot, OP_LARGE_CUSTOM_OFFSET, 0) != 0) return kws_fail(m, KWS_ERR_UNSUPPORTED, "large custom options not supported", -1);
        kws_fb_vec co;
        r = kws_fb_vector(&ot, OP_CUSTOM_OPTS, 1, &co);
        if (r < 0) return kws_fail(m, KWS_ERR_FORMAT, "custom options out of buffer", -1);
        n->custom_options = r == 0 ? m->fb + co.pos : NULL;
        n->custom_options_len = r == 0 ? co.count : 0;

    }
    /* Liveness: RESHAPE takes its shape from the output tensor, so the shape arithmetic that feeds
     * its second input (SHAPE, STRIDED_SLICE, PACK from Keras' Reshape) is dead and is dropped.
     * Only live operators have to be supported. */
    {
        uint8_t live_t[KWS_MAX_TENSORS];
        memset(live_t, 0, sizeof live_t);
        for (int k = 0; k < m->num_outputs; k++) live_t[m->outputs[k]] = 1;
        uint16_t kept = 0;
        for (int i = m->num_nodes - 1; i >= 0; i--) {
            kws_node *n = &m->nodes[i];
            if (!live_t[n->outputs[0]]) { n->num_outputs = 0; continue; }
            for (int k = 0; k < n->num_inputs; k++) {
                if (n->inputs[k] < 0) continue;
                if (k == 1 && n->op == kws_find_builtin(OP_RESHAPE)) continue;
                live_t[n->inputs[k]] = 1;
            }
            kept++;
        }
        uint16_t j = 0;
        for (int i = 0; i < m->num_nodes; i++) {
            if (m->nodes[i].num_outputs == 0) continue;
            if (!m->nodes[i].op) { m->error_op = i; return kws_fail(m, KWS_ERR_UNSUPPORTED, "operator not supported by this runtime", -1); }
            m->nodes[j++] = m->nodes[i];
        }
        m->num_nodes = kept;
        if (kept == 0) return kws_fail(m, KWS_ERR_FORMAT, "no operator computes a graph output", -1);
    }

    for (uint32_t i = 0; i < m->num_nodes; i++) {
        kws_node *n = &m->nodes[i];
        m->error_op = (int32_t)i;
        /* data flow: outputs must be writable; non-constant inputs must already exist */
        kws_tensor *out = &m->tensors[n->outputs[0]];
        if (out->is_const) return kws_fail(m, KWS_ERR_FORMAT, "operator output is a constant tensor", n->outputs[0]);
        for (int k = 0; k < m->num_inputs; k++)
            if (m->inputs[k] == n->outputs[0]) return kws_fail(m, KWS_ERR_FORMAT, "operator writes a graph input", n->outputs[0]);
        if (out->first_use >= 0) return kws_fail(m, KWS_ERR_FORMAT, "tensor written twice", n->outputs[0]);
        for (int k = 0; k < n->num_inputs; k++) {
            if (n->inputs[k] < 0) continue;
            if (k == 1 && n->op == kws_find_builtin(OP_RESHAPE)) continue; /* shape comes from the output */
            kws_tensor *in = &m->tensors[n->inputs[k]];
            if (in->is_const) continue;
            if (in->first_use < 0) {
                int is_graph_input = 0;
                for (int g = 0; g < m->num_inputs; g++) is_graph_input |= m->inputs[g] == n->inputs[k];
                if (!is_graph_input) return kws_fail(m, KWS_ERR_FORMAT, "tensor read before it is written", n->inputs[k]);
                in->first_use = 0;
            }
            if (n->inputs[k] == n->outputs[0]) return kws_fail(m, KWS_ERR_FORMAT, "operator reads its own output", n->inputs[k]);
            in->last_use = (int32_t)i;
        }
        out->first_use = (int32_t)i;
        if (out->last_use < (int32_t)i) out->last_use = (int32_t)i;
    }
    m->error_op = -1;
    for (int k = 0; k < m->num_inputs; k++) {
        kws_tensor *gt = &m->tensors[m->inputs[k]];
        if (gt->is_const) return kws_fail(m, KWS_ERR_FORMAT, "graph input is constant", m->inputs[k]);
        if (gt->first_use < 0) { gt->first_use = 0; gt->last_use = 0; }
        gt->first_use = 0;
    }
    for (int k = 0; k < m->num_outputs; k++) {
        kws_tensor *gt = &m->tensors[m->outputs[k]];
        if (gt->is_const) return kws_fail(m, KWS_ERR_FORMAT, "graph output is constant", m->outputs[k]);
        if (gt->first_use < 0) return kws_fail(m, KWS_ERR_FORMAT, "graph output never written", m->outputs[k]);
        gt->last_use = m->num_nodes;
    }
    for (int i = 0; i < m->num_tensors; i++)
        if (m->tensors[i].elements == 0 && (m->tensors[i].first_use >= 0 || m->tensors[i].is_const))
            return kws_fail(m, KWS_ERR_SHAPE, "tensor dimension < 1", i);
    return KWS_OK;
}

/* Greedy placement: biggest tensor first, lowest offset that does not overlap any placed tensor
 * whose lifetime intersects. Offsets are relative to `base`. */
static kws_status plan(kws_model *m)
{
    size_t base = ALIGN_UP(m->persistent_used, ARENA_ALIGN);
    if (base > m->arena_len) return kws_fail(m, KWS_ERR_ARENA, "arena too small for op data", -1);
    size_t avail = m->arena_len - base, high = 0;
    /* data pointers of activations are NULL until placed; we keep offsets in a temporary
       encoding: data = arena + base + offset */
    for (;;) {
        int pick = -1;
        for (int i = 0; i < m->num_tensors; i++) {
            kws_tensor *t = &m->tensors[i];
            if (t->is_const || t->first_use < 0 || t->data) continue;
            if (pick < 0 || t->bytes > m->tensors[pick].bytes) pick = i;
        }
        if (pick < 0) break;
        kws_tensor *t = &m->tensors[pick];
        size_t size = ALIGN_UP((size_t)t->bytes, ARENA_ALIGN), off = 0;
        int moved = 1;
        while (moved) {
            moved = 0;
            for (int j = 0; j < m->num_tensors; j++) {
                kws_tensor *u = &m->tensors[j];
                if (u->is_const || !u->data || j == pick) continue;
                if (u->last_use < t->first_use || t->last_use < u->first_use) continue;
                size_t uo = (size_t)(u->data - (m->arena + base));
                size_t ue = uo + ALIGN_UP((size_t)u->bytes, ARENA_ALIGN);
                if (off < ue && uo < off + size) { off = ue; moved = 1; }
            }
        }
        if (size > avail || off > avail - size) return kws_fail(m, KWS_ERR_ARENA, "arena too small for activations", pick);
        t->data = m->arena + base + off;
        if (off + size > high) high = off + size;
    }
    m->activations_used = high;
    return KWS_OK;
}

kws_status kws_model_init(kws_model *m, const uint8_t *tflite, size_t len, uint8_t *arena, size_t arena_len)
{
    if (!m) return KWS_ERR_ARG;
    memset(m, 0, sizeof *m);
    m->error_op = -1;
    m->error_tensor = -1;
    if (!tflite || !arena) return kws_fail(m, KWS_ERR_ARG, "NULL model or arena", -1);
    if (((uintptr_t)tflite & 3) != 0) return kws_fail(m, KWS_ERR_ARG, "model buffer must be 4-byte aligned", -1);
    /* align the arena start */
    size_t adj = (size_t)(-(intptr_t)(uintptr_t)arena) & (ARENA_ALIGN - 1);
    if (arena_len < adj + 64) return kws_fail(m, KWS_ERR_ARENA, "arena too small", -1);
    m->fb = tflite;
    m->fb_len = len;
    m->arena = arena + adj;
    m->arena_len = arena_len - adj;
    kws_status s = read_graph(m);
    if (s) return s;
    for (int i = 0; i < m->num_nodes; i++) {
        kws_node *n = &m->nodes[i];
        m->error_op = i;
        if (n->op->init && (s = n->op->init(m, n)) != KWS_OK) return s;
    }
    for (int i = 0; i < m->num_nodes; i++) {
        kws_node *n = &m->nodes[i];
        m->error_op = i;
        if (n->op->prepare && (s = n->op->prepare(m, n)) != KWS_OK) return s;
    }
    m->error_op = -1;
    if (m->scratch_bytes) {   /* one scratch buffer shared by every op (they run one at a time) */
        uint8_t *sc = kws_persistent_alloc(m, m->scratch_bytes + 15u);
        if (!sc) return kws_fail(m, KWS_ERR_ARENA, "arena too small for kernel scratch", -1);
        m->scratch = sc + ((16u - ((uintptr_t)sc & 15u)) & 15u);
    }
    s = plan(m);
    if (s) return s;
    m->ready = 1;
    m->status = KWS_OK;
    return KWS_OK;
}

kws_status kws_invoke(kws_model *m)
{
    if (!m || !m->ready) return KWS_ERR_ARG;
    for (int i = 0; i < m->num_nodes; i++) {
        kws_status s = m->nodes[i].op->invoke(m, &m->nodes[i]);
        if (s) { m->error_op = i; return kws_fail(m, s, "operator invoke failed", -1); }
    }
    return KWS_OK;
}

kws_tensor *kws_input(kws_model *m, int index)
{
    if (!m || !m->ready || index < 0 || index >= m->num_inputs) return NULL;
    return &m->tensors[m->inputs[index]];
}

kws_tensor *kws_output(kws_model *m, int index)
{
    if (!m || !m->ready || index < 0 || index >= m->num_outputs) return NULL;
    return &m->tensors[m->outputs[index]];
}

size_t kws_arena_used(const kws_model *m)
{
    return m ? ALIGN_UP(m->persistent_used, ARENA_ALIGN) + m->activations_used : 0;
}

uint8_t *kws_arena_temp(kws_model *m, size_t *bytes)
{
    *bytes = 0;
    if (!m || !m->ready) return NULL;
    /* the scratch is the last persistent allocation (kws_model_init), the activations follow it (plan) */
    uint8_t *start = m->scratch ? (uint8_t *)m->scratch : m->arena + ALIGN_UP(m->persistent_used, ARENA_ALIGN);
    uint8_t *end = m->arena + kws_arena_used(m);
    *bytes = (size_t)(end - start);
    return start;
}
