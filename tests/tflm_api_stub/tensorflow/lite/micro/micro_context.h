#pragma once
#include "tensorflow/lite/c/common.h"
namespace tflite { class MicroContext { public: TfLiteTensor* AllocateTempInputTensor(const TfLiteNode*, int); TfLiteTensor* AllocateTempOutputTensor(const TfLiteNode*, int); void DeallocateTempTfLiteTensor(TfLiteTensor*); }; MicroContext* GetMicroContext(const TfLiteContext*); }
