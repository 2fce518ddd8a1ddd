#pragma once
typedef enum { kTfLiteActNone = 0, kTfLiteActRelu, kTfLiteActReluN1To1, kTfLiteActRelu6 } TfLiteFusedActivation;
typedef struct { TfLiteFusedActivation activation; int weights_format; bool keep_num_dims; bool asymmetric_quantize_inputs; } TfLiteFullyConnectedParams;
