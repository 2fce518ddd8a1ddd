// TFLite Micro registration of the SUB8_FULLY_CONNECTED custom op, calling the same C code the
// kws runtime uses (kws_sub8_parse_options / kws_sub8_prepare / kws_fully_connected_sub8, and for
// layouts 2/3/6 the optimized kernel the build links: kws_fully_connected_opt, kws_tflm_opt.h).
//
//   tflite::MicroMutableOpResolver<8> resolver;
//   resolver.AddCustom("SUB8_FULLY_CONNECTED", kws::Register_SUB8_FULLY_CONNECTED());
//
// Layout 0 runs the bit-serial reference on any core; layout 2 needs the Cortex-M DSP build
// (KWS_TFLM_ISA=dsp), layouts 3 and 6 (rows_per_byte) the Helium / NEON build (mve, neon); the sparse layouts 4/5 and any layout
// the build cannot run
// fails Prepare with a message. Convert with `tflm_port.convert --target <board>` for 2/3/6.
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

#include "kws_tflm.h"
#include "kws_tflm_opt.h"

namespace kws {
namespace {

struct OpData {
  kws_sub8_options options;
  kws_fc_params params;
  int32_t batches;
  OptState opt;
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
  TfLiteStatus opt_status = kTfLiteOk;
  if (s == KWS_OK) {
    // row sums + scratch when the linked ISA runs this bits/layout (layout 0 at k < 8: reference)
    opt_status = PrepareOpt(context, &data->params, weights->data.uint8, &data->opt);
    if (!data->opt.use && data->options.layout != 0) {
      MicroPrintf("SUB8_FULLY_CONNECTED: layout %d needs the %s kernel, this build links '%s' (tflm.mk KWS_TFLM_ISA)",
                  static_cast<int>(data->options.layout), data->options.layout == 2 ? "Cortex-M DSP" : "Helium / NEON",
                  kws_fc_opt_isa);
      s = KWS_ERR_UNSUPPORTED;
    }
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
  return opt_status;
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* weights = tflite::micro::GetEvalInput(context, node, 1);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 ? tflite::micro::GetEvalInput(context, node, 2) : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  const int8_t* in = tflite::micro::GetTensorData<int8_t>(input);
  const uint8_t* w = tflite::micro::GetTensorData<uint8_t>(weights);
  const int32_t* b = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  if (data->opt.use)
    InvokeOpt(context, &data->params, &data->opt, data->batches, in, w, b, out);
  else
    kws_fully_connected_sub8(&data->params, data->batches, in, w, b, out);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_SUB8_FULLY_CONNECTED() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Invoke);
  return &r;
}

}  // namespace kws
