// Stub for tests/test_tflm_adapter.py: declarations only, not TFLM (see ../../../README.md).
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType=0, kTfLiteFloat32=1, kTfLiteInt32=2, kTfLiteUInt8=3, kTfLiteInt8=9, kTfLiteInt4=18 } TfLiteType;
typedef struct { int size; int data[1]; } TfLiteIntArray;
typedef struct { int size; float data[1]; } TfLiteFloatArray;
typedef enum { kTfLiteNoQuantization=0, kTfLiteAffineQuantization=1 } TfLiteQuantizationType;
typedef struct { TfLiteQuantizationType type; void* params; } TfLiteQuantization;
typedef struct { TfLiteFloatArray* scale; TfLiteIntArray* zero_point; int32_t quantized_dimension; } TfLiteAffineQuantization;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union { int32_t* i32; uint8_t* uint8; int8_t* int8; float* f; char* raw; const char* raw_const; void* data; } TfLitePtrUnion;
typedef struct { TfLiteType type; TfLitePtrUnion data; TfLiteIntArray* dims; TfLiteQuantizationParams params; size_t bytes; TfLiteQuantization quantization; } TfLiteTensor;
typedef struct { TfLitePtrUnion data; TfLiteIntArray* dims; TfLiteType type; } TfLiteEvalTensor;
typedef struct { TfLiteIntArray* inputs; TfLiteIntArray* outputs; void* user_data; void* builtin_data; } TfLiteNode;
typedef struct TfLiteContext { void* (*AllocatePersistentBuffer)(struct TfLiteContext*, size_t); TfLiteStatus (*RequestScratchBufferInArena)(struct TfLiteContext*, size_t, int*); void* (*GetScratchBuffer)(struct TfLiteContext*, int); } TfLiteContext;
#define TF_LITE_ENSURE(context, a) do { if (!(a)) return kTfLiteError; } while (0)
#define TF_LITE_ENSURE_EQ(context, a, b) TF_LITE_ENSURE(context, (a) == (b))
#define TF_LITE_ENSURE_TYPES_EQ(context, a, b) TF_LITE_ENSURE(context, (a) == (b))
#define TF_LITE_ENSURE_STATUS(a) do { TfLiteStatus s_ = (a); if (s_ != kTfLiteOk) return s_; } while (0)
