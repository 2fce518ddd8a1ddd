#pragma once
#include "tensorflow/lite/c/common.h"
struct TFLMRegistration { void* (*init)(TfLiteContext*, const char*, size_t); TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*); TfLiteStatus (*invoke)(TfLiteContext*, TfLiteNode*); };
