// TFLite Micro registration of the SUB8_FULLY_CONNECTED custom op, calling the same C code the
// kws runtime uses (kws_sub8_parse_options / kws_sub8_prepare / kws_fully_connected_sub8).
//
//   tflite::MicroMutableOpResolver<8> resolver;
//   resolver.AddCustom("SUB8_FULLY_CONNECTED", kws::Register_SUB8_FULLY_CONNECTED());
//
// Built only when TFLM_DIR points at a tflite-micro checkout (see tflm.mk); no package registry
// available to this project ships TFLM sources, so this file is not compiled in CI.
#include <cstdint>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_utils.h"

extern "C" {
#include "kws_kernels.h"
}

namespace kws {
namespace {

struct OpData {
  kws_sub8_options options;
  kws_fc_params params;
  int32_t batches;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  const char* detail = "";
  if (kws_sub8_parse_options(reinterpret_cast<const uint8_t*>(buffer), static_cast<uint32_t>(length),
                             &data->options, &detail) != KWS_OK) {
    MicroPrintf("SUB8_FULLY_CONNECTED: %s", detail);
    data->options.version = 0;  // Prepare reports the error
  }
  return data;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TF_LITE_ENSURE(context, data != nullptr && data->options.version == 1);
  TF_LITE_ENSURE(context, node->inputs->size == 2 || node->inputs->size == 3);
  TF_LITE_ENSURE_EQ(context, node->outputs->size, 1);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* weights = mc->AllocateTempInputTensor(node, 1);
  // optional bias: index -1 makes AllocateTempInputTensor return nullptr
  TfLiteTensor* bias = node->inputs->size == 3 ? mc->AllocateTempInputTensor(node, 2) : nullptr;
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, 0);
  TF_LITE_ENSURE(context, input != nullptr && weights != nullptr && output != nullptr);
  TF_LITE_ENSURE_TYPES_EQ(context, input->type, kTfLiteInt8);
  TF_LITE_ENSURE_TYPES_EQ(context, output->type, kTfLiteInt8);
  TF_LITE_ENSURE_TYPES_EQ(context, weights->type, kTfLiteUInt8);
  if (bias != nullptr) TF_LITE_ENSURE_TYPES_EQ(context, bias->type, kTfLiteInt32);
  const auto* wq = static_cast<const TfLiteAffineQuantization*>(weights->quantization.params);
  TF_LITE_ENSURE(context, weights->quantization.type == kTfLiteAffineQuantization && wq != nullptr &&
                              wq->scale != nullptr && wq->scale->size == 1);
  const int32_t out_n = data->options.out_features;
  auto* mult = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  auto* shift = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  TF_LITE_ENSURE(context, mult != nullptr && shift != nullptr);
  const char* detail = "";
  kws_status s = kws_sub8_prepare(&data->options, input->params.scale, input->params.zero_point, wq->scale->data[0],
                                  wq->zero_point ? wq->zero_point->data[0] : 0, output->params.scale,
                                  output->params.zero_point, static_cast<uint32_t>(weights->bytes), mult, shift,
                                  &data->params, &detail);
  if (s == KWS_OK && data->options.layout != 0) {  // layouts 2/3/4 need kernels/opt, not wired into this adapter
    MicroPrintf("SUB8_FULLY_CONNECTED: layout %d needs the kws runtime's optimized kernels; convert with --layout 0",
                static_cast<int>(data->options.layout));
    s = KWS_ERR_UNSUPPORTED;
  }
  if (s != KWS_OK) MicroPrintf("SUB8_FULLY_CONNECTED: %s", detail);
  const int in_elems = tflite::ElementCount(*input->dims);
  const int out_elems = tflite::ElementCount(*output->dims);
  data->batches = in_elems / data->options.in_features;
  const bool shapes_ok = in_elems % data->options.in_features == 0 && data->batches * out_n == out_elems &&
                         (bias == nullptr || tflite::ElementCount(*bias->dims) == out_n);
  mc->DeallocateTempTfLiteTensor(input);
  mc->DeallocateTempTfLiteTensor(weights);
  if (bias != nullptr) mc->DeallocateTempTfLiteTensor(bias);
  mc->DeallocateTempTfLiteTensor(output);
  TF_LITE_ENSURE(context, s == KWS_OK && shapes_ok);
  return kTfLiteOk;
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* weights = tflite::micro::GetEvalInput(context, node, 1);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 ? tflite::micro::GetEvalInput(context, node, 2) : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  kws_fully_connected_sub8(&data->params, data->batches, tflite::micro::GetTensorData<int8_t>(input),
                           tflite::micro::GetTensorData<uint8_t>(weights),
                           bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr,
                           tflite::micro::GetTensorData<int8_t>(output));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_SUB8_FULLY_CONNECTED() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Invoke);
  return &r;
}

}  // namespace kws
