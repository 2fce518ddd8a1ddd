/* kws_internal.h - shared between the model reader (kws_model.c) and the op registrations (kws_ops.c). */
#ifndef KWS_INTERNAL_H
#define KWS_INTERNAL_H

#include "kws.h"
#include "kws_fb.h"
#include "kws_kernels.h"

/* TFLite schema enum values we use */
enum {
    OP_AVERAGE_POOL_2D = 1, OP_CONV_2D = 3, OP_DEPTHWISE_CONV_2D = 4, OP_DEQUANTIZE = 6,
    OP_FULLY_CONNECTED = 9, OP_RESHAPE = 22, OP_SOFTMAX = 25, OP_CUSTOM = 32, OP_STRIDED_SLICE = 45,
    OP_SHAPE = 77, OP_PACK = 83, OP_QUANTIZE = 114,
    OP_UNIDIRECTIONAL_SEQUENCE_LSTM = 44
};
enum { OPT_CONV2D = 1, OPT_DEPTHWISE = 2, OPT_POOL2D = 5, OPT_FC = 8, OPT_SOFTMAX = 9, OPT_RESHAPE = 17,
       OPT_UNIDIRECTIONAL_SEQUENCE_LSTM = 71 };
#define KWS_LSTM_INPUTS 24  /* the LSTM reads all 24 inputs from user_data (kws_model.c, kws_lstm.c) */
extern const kws_op kws_op_unidirectional_sequence_lstm;
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU_N1_TO_1 = 2, ACT_RELU6 = 3 };

kws_status kws_fail(kws_model *m, kws_status s, const char *detail, int tensor);
void *kws_persistent_alloc(kws_model *m, size_t bytes);
/* prepare: the op's invoke needs m->scratch of at least bytes (one buffer for all ops, allocated
 * from the arena after every prepare, 16-byte aligned) */
void kws_request_scratch(kws_model *m, size_t bytes);
/* input i of node n, or NULL when absent (optional input = -1) */
kws_tensor *kws_node_in(kws_model *m, kws_node *n, int i);
kws_tensor *kws_node_out(kws_model *m, kws_node *n, int i);
/* builtin options table of the node, 0 = present (and of the expected type), 1 absent, -1 corrupt */
int kws_node_options(kws_model *m, kws_node *n, int expected_type, kws_fb_table *t);
/* scale / zero point i of a per-channel tensor (index range checked by caller) */
float kws_tensor_scale(const kws_model *m, const kws_tensor *t, uint32_t i);
int64_t kws_tensor_zero_point(const kws_model *m, const kws_tensor *t, uint32_t i);

const kws_op *kws_find_builtin(int32_t code);
const kws_op *kws_find_custom(const char *name, uint32_t len);
extern const kws_op kws_op_sub8_fc_a4;   /* SUB8_FC_A4, runtime/kws_fc_a4_op.c */
extern const kws_op kws_op_sub8_lstm_a4; /* SUB8_LSTM_A4, runtime/kws_lstm_a4_op.c: 7 inputs through user_data */
void kws_lstm_a4_reset(kws_model *m, kws_node *n);
/* TFLite builtin operator name (kws_opnames.c, generated from the schema) */
const char *kws_builtin_op_name(int32_t code);

#endif
