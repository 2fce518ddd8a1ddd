// TFLite Micro registration of the SUB8_FC_A4 custom op (k-bit weights and k-bit activations,
// docs/formats.md section 9), calling the same C code as the kws runtime's operator
// (runtime/kws_fc_a4_op.c): kws_sub8_parse_options / kws_sub8_prepare for the options and the
// multipliers, the k-bit output clamp, then
//   layout 0                       kws_fully_connected_a4 (reference, any core),
//   layout 7 (a4_pairs)            kws_fully_connected_a4_dsp (SMLAD on Cortex-M DSP, plain C elsewhere),
//   the A4 layout of the build     kws_fully_connected_a4_opt for <= 4-bit inputs (layout 6 on Helium /
//                                  NEON, kws_isa_a4_layout; tflm.mk KWS_TFLM_ISA links it),
//   a layout of the FC kernel      kws_fully_connected_opt for a layer with 8-bit inputs (the first).
// Anything else fails Prepare with a message. Convert with `tflm_port.convert` retargeted for the board
// (fc_a4.retarget_a4(.., family=...)).
//
//   tflite::MicroMutableOpResolver<8> resolver;
//   resolver.AddCustom("SUB8_FC_A4", kws::Register_SUB8_FC_A4());
//
// Built only when TFLM_DIR points at a tflite-micro checkout (see tflm.mk); no package registry
// available to this project ships TFLM sources, so CI only checks it against the API declarations.
#include <cstdint>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_utils.h"

#include "kws_tflm.h"
#include "kws_tflm_opt.h"

extern "C" {
#include "kws_fb.h"
#include "kws_fc_a4.h"
}

namespace kws {
namespace {

enum class Kernel { kReference, kPairs, kA4Opt, kFcOpt };

struct OpData {
  kws_sub8_options options;
  kws_fc_a4_params params;
  int32_t batches;
  Kernel kernel;
  int scratch_index;
  OptState opt;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  *data = OpData();
  data->scratch_index = -1;
  const auto* buf = reinterpret_cast<const uint8_t*>(buffer);
  const auto len = static_cast<uint32_t>(length);
  const char* detail = "";
  int64_t ib = 0, ob = 0;
  if (kws_sub8_parse_options(buf, len, &data->options, &detail) != KWS_OK) {
    MicroPrintf("SUB8_FC_A4: %s", detail);
    data->options.version = 0;  // Prepare reports the error
  } else if (kws_flex_map_int(buf, len, "input_bits", &ib) || ib < 2 || ib > 8 ||
             kws_flex_map_int(buf, len, "output_bits", &ob) || ob < 2 || ob > 8) {
    MicroPrintf("SUB8_FC_A4: custom_options.input_bits / output_bits missing or not in 2..8");
    data->options.version = 0;
  }
  data->params.input_bits = static_cast<int32_t>(ib);
  data->params.output_bits = static_cast<int32_t>(ob);
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
  const kws_sub8_options& o = data->options;
  const int32_t in_n = o.in_features, out_n = o.out_features;
  const int32_t ib = data->params.input_bits, ob = data->params.output_bits;
  bool ok = true;
  if (ib < 8 && input->params.zero_point != 0) {
    MicroPrintf("SUB8_FC_A4: input_bits %d needs an input with zero point 0", static_cast<int>(ib));
    ok = false;
  }
  if (ob < 8 && (o.activation != 1 || output->params.zero_point != 0)) {
    MicroPrintf("SUB8_FC_A4: output_bits < 8 needs activation RELU and output zero point 0");
    ok = false;
  }
  // which kernel reads this layer's layout (the runtime operator's choice, kws_fc_a4_op.c)
  const bool a4opt = o.layout != 0 && o.layout != KWS_LAYOUT_A4_PAIRS && ib <= KWS_A4_MAX_INPUT_BITS &&
                     o.layout == kws_isa_a4_layout_for(kws_fc_a4_opt_isa, o.bits);
  const bool fcopt = o.layout != 0 && o.layout != KWS_LAYOUT_A4_PAIRS && ib == 8 && o.bits < 8 &&
                     kws_fc_opt_supported(o.bits, o.layout) != 0;
  int64_t want = -1;
  if (o.layout == 0) want = kws_sub8_row_bytes(0, o.bits, in_n) * out_n;
  else if (o.layout == KWS_LAYOUT_A4_PAIRS && o.bits >= 2 && o.bits <= 4) want = kws_fc_a4_packed_bytes(out_n, in_n);
  else if (a4opt) want = kws_layout_packed_bytes(o.layout, o.bits, out_n, in_n);
  else if (fcopt) want = kws_fc_opt_packed_bytes(o.layout, o.bits, out_n, in_n);
  if (want < 0) {
    MicroPrintf("SUB8_FC_A4: layout %d (%d-bit weights, %d-bit inputs) has no kernel in this build ('%s')",
                static_cast<int>(o.layout), static_cast<int>(o.bits), static_cast<int>(ib), kws_fc_opt_isa);
    ok = false;
  } else if (static_cast<int64_t>(weights->bytes) != want) {
    MicroPrintf("SUB8_FC_A4: packed weight size != the size layout %d gives", static_cast<int>(o.layout));
    ok = false;
  }
  auto* mult = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  auto* shift = static_cast<int32_t*>(context->AllocatePersistentBuffer(context, sizeof(int32_t) * out_n));
  TF_LITE_ENSURE(context, mult != nullptr && shift != nullptr);
  kws_sub8_options o0 = o;  // multipliers and the int8 clamp as for layout 0
  o0.layout = 0;
  const char* detail = "";
  kws_status s = kws_sub8_prepare(&o0, input->params.scale, input->params.zero_point, wq->scale->data[0],
                                  wq->zero_point ? wq->zero_point->data[0] : 0, output->params.scale,
                                  output->params.zero_point, static_cast<uint32_t>(kws_sub8_row_bytes(0, o.bits, in_n) * out_n),
                                  mult, shift, &data->params.fc, &detail);
  if (s != KWS_OK) {
    MicroPrintf("SUB8_FC_A4: %s", detail);
    ok = false;
  }
  TfLiteStatus st = kTfLiteOk;
  if (ok) {
    kws_fc_params& f = data->params.fc;
    if (ob < 8) f.act.act_max = f.act.act_min + (1 << ob) - 1;
    f.layout = o.layout;
    if (o.layout == KWS_LAYOUT_A4_PAIRS) {
      f.row_bytes = 2 * ((in_n + 3) / 4);
      data->kernel = Kernel::kPairs;
      if (!kws_fc_a4_dsp_supported(&data->params)) {
        MicroPrintf("SUB8_FC_A4: layout 7 needs input_bits <= 4 and in_features <= %d", KWS_FC_A4_MAX_IN);
        ok = false;
      } else {
        st = context->RequestScratchBufferInArena(context, kws_fc_a4_scratch_bytes(in_n), &data->scratch_index);
      }
    } else if (a4opt) {
      f.row_bytes = static_cast<int32_t>(kws_layout_row_bytes(o.layout, o.bits, in_n));
      data->kernel = Kernel::kA4Opt;
      if (!kws_fc_a4_opt_supported(&data->params)) {
        MicroPrintf("SUB8_FC_A4: this build's A4 kernel does not take this layer");
        ok = false;
      } else if (kws_fc_a4_opt_scratch_bytes(&data->params) > 0) {
        st = context->RequestScratchBufferInArena(context, kws_fc_a4_opt_scratch_bytes(&data->params),
                                                  &data->scratch_index);
      }
    } else if (fcopt) {
      f.row_bytes = kws_fc_opt_row_bytes(o.layout, o.bits, in_n);
      data->kernel = Kernel::kFcOpt;
      st = PrepareOpt(context, &f, weights->data.uint8, &data->opt);
    } else {
      data->kernel = Kernel::kReference;
    }
  }
  const int in_elems = tflite::ElementCount(*input->dims);
  const int out_elems = tflite::ElementCount(*output->dims);
  data->batches = in_elems / in_n;
  const bool shapes_ok = in_elems % in_n == 0 && data->batches * out_n == out_elems &&
                         (bias == nullptr || tflite::ElementCount(*bias->dims) == out_n);
  mc->DeallocateTempTfLiteTensor(input);
  mc->DeallocateTempTfLiteTensor(weights);
  if (bias != nullptr) mc->DeallocateTempTfLiteTensor(bias);
  mc->DeallocateTempTfLiteTensor(output);
  TF_LITE_ENSURE(context, ok && shapes_ok);
  return st;
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
  void* scratch = data->scratch_index >= 0 ? context->GetScratchBuffer(context, data->scratch_index) : nullptr;
  switch (data->kernel) {
    case Kernel::kPairs:
      kws_fully_connected_a4_dsp(&data->params, scratch, data->batches, in, w, b, out);
      break;
    case Kernel::kA4Opt:
      kws_fully_connected_a4_opt(&data->params, scratch, data->batches, in, w, b, out);
      break;
    case Kernel::kFcOpt:
      InvokeOpt(context, &data->params.fc, &data->opt, data->batches, in, w, b, out);
      break;
    default:
      kws_fully_connected_a4(&data->params, data->batches, in, w, b, out);
      break;
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration* Register_SUB8_FC_A4() {
  static TFLMRegistration r = tflite::micro::RegisterOp(Init, Prepare, Invoke);
  return &r;
}

}  // namespace kws
