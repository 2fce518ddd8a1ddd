#pragma once
#include "tensorflow/lite/micro/micro_common.h"
namespace tflite { namespace micro {
const TfLiteEvalTensor* GetEvalInput(const TfLiteContext*, const TfLiteNode*, int);
TfLiteEvalTensor* GetEvalOutput(const TfLiteContext*, const TfLiteNode*, int);
template <typename T> T* GetTensorData(TfLiteEvalTensor* t) { return reinterpret_cast<T*>(t->data.raw); }
template <typename T> const T* GetTensorData(const TfLiteEvalTensor* t) { return reinterpret_cast<const T*>(t->data.raw); }
TFLMRegistration RegisterOp(void* (*init)(TfLiteContext*, const char*, size_t), TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*), TfLiteStatus (*invoke)(TfLiteContext*, TfLiteNode*));
} }
