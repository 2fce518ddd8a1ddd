/*
 * kws.h - public API of the tiny keyword-spotting runtime.
 *
 * The runtime reads a .tflite flatbuffer in place (no copy, no malloc), checks every
 * offset, index, type and shape before use, plans the caller's arena and runs the graph.
 *
 *   kws_model m;
 *   if (kws_model_init(&m, tflite, tflite_len, arena, sizeof arena) != KWS_OK)
 *       puts(kws_model_error(&m));
 *   memcpy(kws_input(&m, 0)->data, features, kws_input(&m, 0)->bytes);
 *   kws_invoke(&m);
 *   const int8_t *scores = (const int8_t *)kws_output(&m, 0)->data;
 */
#ifndef KWS_H
#define KWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KWS_OK = 0,
    KWS_ERR_ARG = 1,          /* NULL pointer, misaligned buffer, bad call order */
    KWS_ERR_FORMAT = 2,       /* flatbuffer structure broken: offset/vtable/vector out of the buffer */
    KWS_ERR_IDENTIFIER = 3,   /* not a TFLite file ("TFL3") */
    KWS_ERR_VERSION = 4,      /* schema version != 3 or op version unsupported */
    KWS_ERR_INDEX = 5,        /* tensor/buffer/opcode index out of range */
    KWS_ERR_TYPE = 6,         /* tensor type not supported for this op */
    KWS_ERR_SHAPE = 7,        /* shape invalid, inconsistent, or size overflow */
    KWS_ERR_QUANT = 8,        /* quantization parameters missing or invalid */
    KWS_ERR_UNSUPPORTED = 9,  /* operator or option not supported */
    KWS_ERR_OPTIONS = 10,     /* builtin/custom options missing or invalid */
    KWS_ERR_ARENA = 11,       /* arena too small */
    KWS_ERR_LIMIT = 12,       /* model exceeds a compile-time limit (tensors, ops, rank) */
    KWS_ERR_IO = 13           /* board I/O failed (runner only) */
} kws_status;

/* Tensor types: the values of the TFLite schema's TensorType enum. */
enum {
    KWS_FLOAT32 = 0, KWS_INT32 = 2, KWS_UINT8 = 3, KWS_INT64 = 4, KWS_INT16 = 7,
    KWS_INT8 = 9, KWS_INT4 = 17
};

#ifndef KWS_MAX_RANK
#define KWS_MAX_RANK 5
#endif
#ifndef KWS_MAX_TENSORS
#define KWS_MAX_TENSORS 256
#endif
#ifndef KWS_MAX_OPS
#define KWS_MAX_OPS 128
#endif
#define KWS_MAX_OP_INPUTS 4
#define KWS_MAX_OP_OUTPUTS 1

typedef struct kws_tensor {
    uint8_t *data;             /* arena pointer (activations) or into the model (constants) */
    uint32_t bytes;            /* storage size in bytes */
    uint32_t elements;         /* product of dims */
    int32_t dims[KWS_MAX_RANK];
    uint8_t rank;
    uint8_t type;              /* KWS_INT8 ... */
    uint8_t is_const;
    uint8_t has_quant;
    float scale;               /* first (or only) scale */
    int32_t zero_point;        /* first (or only) zero point */
    uint32_t num_scales;       /* 1 = per tensor, >1 = per channel */
    int32_t quantized_dimension;
    uint32_t scales_pos;       /* byte position of the scale vector data in the model (per channel) */
    uint32_t zps_pos;          /* byte position of the zero_point (int64) vector data */
    int32_t first_use, last_use; /* planner: op index range, -1 = unused */
} kws_tensor;

struct kws_model;
struct kws_node;

/* An operator registration, shaped like a TFLite Micro TFLMRegistration. */
typedef struct kws_op {
    const char *name;
    kws_status (*init)(struct kws_model *m, struct kws_node *n);    /* parse options, allocate op data */
    kws_status (*prepare)(struct kws_model *m, struct kws_node *n); /* check types/shapes, precompute */
    kws_status (*invoke)(struct kws_model *m, struct kws_node *n);  /* compute only */
} kws_op;

typedef struct kws_node {
    const kws_op *op;
    int16_t inputs[KWS_MAX_OP_INPUTS];   /* -1 = optional input absent */
    int16_t outputs[KWS_MAX_OP_OUTPUTS];
    uint8_t num_inputs, num_outputs;
    uint8_t builtin_options_type;
    uint32_t builtin_options_pos;        /* table position, 0 = none */
    const uint8_t *custom_options;       /* FlexBuffer bytes (validated range) */
    uint32_t custom_options_len;
    void *user_data;                     /* op data from the persistent arena */
} kws_node;

typedef struct kws_model {
    const uint8_t *fb;         /* the .tflite bytes */
    size_t fb_len;
    uint8_t *arena;
    size_t arena_len;
    size_t persistent_used;    /* bytes from the arena front (tables, op data) */
    size_t activations_used;   /* bytes of planned activation memory */
    kws_tensor *tensors;
    kws_node *nodes;
    uint16_t num_tensors, num_nodes;
    int16_t inputs[4], outputs[4];
    uint8_t num_inputs, num_outputs;
    uint8_t ready;
    kws_status status;         /* last error */
    const char *error_detail;  /* static string (or error_text) saying what failed */
    char error_text[64];       /* error_detail with a name in it ("unsupported operator LSTM") */
    int32_t error_op;          /* op index of the failure, -1 = model level */
    int32_t error_tensor;      /* tensor index of the failure, -1 = none */
    void *scratch;             /* shared kernel scratch (16-byte aligned), sized at prepare, NULL if none */
    size_t scratch_bytes;      /* the largest request of any op's prepare */
    uint16_t num_opt_ops;      /* FC-like ops that run the build's optimized kernel (the rest: reference) */
} kws_model;

/* "dsp", "mve", "neon", "neon_dotprod" or "reference": the optimized FC kernels linked in this build */
const char *kws_kernel_isa(void);

/* Parse, validate, plan and prepare. The model bytes and the arena must outlive the model.
 * The model buffer must be 4-byte aligned (flatbuffers align scalars relative to the start). */
kws_status kws_model_init(kws_model *m, const uint8_t *tflite, size_t len, uint8_t *arena, size_t arena_len);
kws_status kws_invoke(kws_model *m);
kws_tensor *kws_input(kws_model *m, int index);   /* NULL if out of range or model not ready */
kws_tensor *kws_output(kws_model *m, int index);
size_t kws_arena_used(const kws_model *m);
/* The arena bytes that hold nothing from one kws_invoke to the next: the kernel scratch and the planned
 * activations (graph input and output included), one contiguous block. An application may use them as
 * a temporary between invocations (kws_stream: the front end's FFT work area), provided it reads the
 * outputs before and writes the inputs after. NULL (and *bytes = 0) if the model is not ready. */
uint8_t *kws_arena_temp(kws_model *m, size_t *bytes);
/* Start every stateful operator (UNIDIRECTIONAL_SEQUENCE_LSTM) on a new stream: hidden state = its zero
 * point, cell state = 0. kws_model_init does this too; between invocations the state is kept. */
kws_status kws_reset_state(kws_model *m);

const char *kws_strerror(kws_status s);
/* "<status text>: <detail> (op N, tensor M)" into a static per-model buffer-free form: returns the detail
 * string; kws_strerror(m->status) gives the class. */
const char *kws_model_error(const kws_model *m);

#ifdef __cplusplus
}
#endif
#endif
