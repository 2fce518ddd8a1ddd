// Shared by the adapter's kernels: prepare-time state of the optimized FULLY_CONNECTED kernel of
// kernels/opt (row sums in a persistent buffer, the kernel's scratch requested from TFLM's planner).
#ifndef KWS_TFLM_OPT_H_
#define KWS_TFLM_OPT_H_

#include "tensorflow/lite/c/common.h"

extern "C" {
#include "kws_kernels.h"
#include "kws_kernels_opt.h"
}

namespace kws {

struct OptState {
  bool use = false;
  int32_t* row_sums = nullptr;
  int scratch_index = -1;
};

// In Prepare, with the weights' bytes (constant, in the model): true when the linked ISA runs
// p->bits / p->layout; then computes the row sums and requests the scratch.
inline TfLiteStatus PrepareOpt(TfLiteContext* context, const kws_fc_params* p, const uint8_t* weights,
                               OptState* st) {
  st->use = kws_fc_opt_supported(p->bits, p->layout) != 0;
  if (!st->use) return kTfLiteOk;
  st->row_sums = static_cast<int32_t*>(
      context->AllocatePersistentBuffer(context, sizeof(int32_t) * static_cast<size_t>(p->out_features)));
  if (st->row_sums == nullptr) return kTfLiteError;
  kws_fc_opt_row_sums(p, weights, st->row_sums);
  const size_t scratch = kws_fc_opt_scratch_bytes(p);
  if (scratch > 0) return context->RequestScratchBufferInArena(context, scratch, &st->scratch_index);
  return kTfLiteOk;
}

inline void InvokeOpt(TfLiteContext* context, const kws_fc_params* p, const OptState* st, int32_t batches,
                      const int8_t* input, const uint8_t* weights, const int32_t* bias, int8_t* output) {
  kws_fc_opt_ctx ctx = {st->scratch_index >= 0 ? context->GetScratchBuffer(context, st->scratch_index) : nullptr,
                        st->row_sums};
  kws_fully_connected_opt(p, &ctx, batches, input, weights, bias, output);
}

}  // namespace kws

#endif  // KWS_TFLM_OPT_H_
