// TFLite Micro FULLY_CONNECTED variant that reads INT4 weights where they are (packed, two per
// byte over the tensor, low nibble first: TFLite's packing) and runs INT8 weights on the build's
// optimized kernel. An application selects it instead of TFLM's own FC:
//
//   resolver.AddFullyConnected(*kws::Register_FULLY_CONNECTED_PACKED());
//
// Why: TFLM's reference INT4 FC unpacks the whole weight tensor into a temporary buffer of the
// arena (FFNN-250K 4-bit: an arena of ~200 KB, more than the STM32F405's RAM). Here the arena holds
// only the per-channel multipliers/shifts (8 bytes per output) and, for INT8 on an optimized kernel,
// the row sums (4 bytes per output) and one scratch buffer. For the fastest 4-bit path convert with
// `tflm_port.convert --target <board>`: SUB8_FULLY_CONNECTED layout 2/3 (kws_tflm_sub8.cc).
//
// Supported: int8 input/output; INT8 weights per-tensor or per-channel, INT4 per-tensor (TFLM's own
// INT4 FC rejects per-channel too); zero weight zero points; optional int32 bias; activations NONE,
// RELU, RELU_N1_TO_1, RELU6; keep_num_dims either way. Anything else fails Prepare with a message.
#include <cstdint>

#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/kernel_util.h"
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
  kws_fc_params params;
  int32_t batches;
  bool int4;
  OptState opt;
};

void* Init(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(OpData));
}

TfLiteStatus Fail(const char* what) {
  MicroPrintf("FULLY_CONNECTED (kws packed): %s", what);
  return kTfLiteError;
}

TfLiteStatus Check(TfLiteContext* context, TfLiteNode* node, OpData* data, const TfLiteTensor* input,
                   const TfLiteTensor* weights, const TfLiteTensor* bias, TfLiteTensor* output) {
  if (input->type != kTfLiteInt8 || output->type != kTfLiteInt8) return Fail("input and output must be int8");
  if (weights->type != kTfLiteInt8 && weights->type != kTfLiteInt4) return Fail("weights must be INT8 or INT4");
  if (weights->data.raw == nullptr) return Fail("weights must be constant");
  if (weights->dims->size != 2) return Fail("weights must be [out, in]");
  const int32_t out_n = weights->dims->data[0], in_n = weights->dims->data[1];
  const int in_elems = tflite::ElementCount(*input->dims), out_elems = tflite::ElementCount(*output->dims);
  if (in_n < 1 || in_n > 65536 || in_elems % in_n != 0 || (in_elems / in_n) * out_n != out_elems)
    return Fail("input/output sizes do not match the weights");
  if (bias != nullptr && (bias->type != kTfLiteInt32 || tflite::ElementCount(*bias->dims) != out_n))
    return Fail("bias must be int32 [out]");
  const auto* wq = static_cast<const TfLiteAffineQuantization*>(weights->quantization.params);
  if (weights->quantization.type != kTfLiteAffineQuantization || wq == nullptr || wq->scale == nullptr)
    return Fail("weights need affine quantization");
  const int scales = wq->scale->size;
  if (scales != 1 && (scales != out_n || weights->type == kTfLiteInt4)) return Fail("INT4 weights must be per-tensor");
  auto* mult = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  auto* shift = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  if (mult == nullptr || shift == nullptr) return Fail("arena too small");
  for (int32_t c = 0; c < out_n; c++) {
    const int i = scales == 1 ? 0 : c;
    if (wq->zero_point != nullptr && wq->zero_point->size > i && wq->zero_point->data[i] != 0)
      return Fail("weight zero point must be 0");
    const double real = static_cast<double>(input->params.scale) * static_cast<double>(wq->scale->data[i]) /
                        static_cast<double>(output->params.scale);
    kws_quantize_multiplier(real, &mult[c], &shift[c]);
    if (shift[c] > 30) return Fail("effective scale too large");
  }
  const auto* opts = static_cast<const TfLiteFullyConnectedParams*>(node->builtin_data);
  kws_fc_params* p = &data->params;
  *p = kws_fc_params{};
  TF_LITE_ENSURE_STATUS(tflite::CalculateActivationRangeQuantized(
      context, opts != nullptr ? opts->activation : kTfLiteActNone, output, &p->act.act_min, &p->act.act_max));
  p->act.input_offset = -input->params.zero_point;
  p->act.output_offset = output->params.zero_point;
  p->in_features = in_n;
  p->out_features = out_n;
  p->multiplier = mult;
  p->shift = shift;
  p->bits = weights->type == kTfLiteInt4 ? 4 : 8;
  p->layout = 0;
  data->batches = in_elems / in_n;
  data->int4 = weights->type == kTfLiteInt4;
  // INT8: the optimized kernel reads TFLite's [out][in] int8 as it is. INT4 stays on the in-place
  // reference: the optimized 4-bit kernels read layouts 2/3 (SUB8_FULLY_CONNECTED).
  data->opt = OptState{};
  if (!data->int4) return PrepareOpt(context, p, weights->data.uint8, &data->opt);
  return kTfLiteOk;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  TF_LITE_ENSURE(context, data != nullptr);
  TF_LITE_ENSURE(context, node->inputs->size == 2 || node->inputs->size == 3);
  TF_LITE_ENSURE_EQ(context, node->outputs->size, 1);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* weights = mc->AllocateTempInputTensor(node, 1);
  TfLiteTensor* bias = node->inputs->size == 3 ? mc->AllocateTempInputTensor(node, 2) : nullptr;
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, 0);
  TfLiteStatus s = (input && weights && output) ? Check(context, node, data, input, weights, bias, output)
                                                : Fail("missing input, weights or output");
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (weights) mc->DeallocateTempTfLiteTensor(weights);
  if (bias) mc->DeallocateTempTfLiteTensor(bias);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return s;
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* weights = tflite::micro::GetEvalInput(context, node, 1);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 ? tflite::micro::GetEvalInput(context, node, 2) : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  const int8_t* in = tflite::micro::GetTensorData<int8_t>(input);
  const uint8_t* w = static_cast<const uint8_t*>(weights->data.data);
  const int32_t* b = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out = tflite::micro::GetTensorData<int8_t>(output);
  if (data->int4)
    kws_fully_connected_s4(&data->params, data->batches, in, w, b, out);
  else if (data->opt.use)
    InvokeOpt(context, &data->params, &data->opt, data->batches, in, w, b, out);
  else
    kws_fully_connected_s8(&data->params, data->batches, in, reinterpret_cast<const int8_t*>(w), b, out);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_FULLY_CONNECTED_PACKED() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Invoke);
  return &r;
}

}  // namespace kws
