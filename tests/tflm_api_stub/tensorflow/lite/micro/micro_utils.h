#pragma once
#include "tensorflow/lite/c/common.h"
namespace tflite { int ElementCount(const TfLiteIntArray&); }
