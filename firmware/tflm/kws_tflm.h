// The kws kernels as TFLite Micro kernel registrations (firmware/tflm, docs/porting.md).
//
//   tflite::MicroMutableOpResolver<8> resolver;
//   resolver.AddCustom("SUB8_FULLY_CONNECTED", kws::Register_SUB8_FULLY_CONNECTED());
//   resolver.AddFullyConnected(*kws::Register_FULLY_CONNECTED_PACKED());   // instead of TFLM's FC
//   resolver.AddCustom("SUB8_FC_A4", kws::Register_SUB8_FC_A4());            // 4-bit activations
//
// Register_SUB8_FULLY_CONNECTED: the custom op of tflm_port.convert, layouts 0 (any core), 2
//   (r4_words, Cortex-M DSP build) and 3 (r4_nib32, Helium / NEON build), on the kernel the build
//   links (tflm.mk KWS_TFLM_ISA).
// Register_FULLY_CONNECTED_PACKED: builtin FULLY_CONNECTED with int8 activations and INT8 (per-tensor
//   or per-channel) or INT4 (per-tensor, TFLite packing) weights, read where they are (flash): no
//   unpacked copy in the arena. INT8 runs the optimized kernel of the build, INT4 the in-place
//   kws_fully_connected_s4. Anything else (float, int16 activations) fails Prepare: keep TFLM's FC
//   for such models.
// Register_SUB8_FC_A4: the 4-bit-activation custom op of tflm_port.fc_a4 (kws_tflm_fc_a4.cc): layout 0
//   (reference), 7 (a4_pairs, Cortex-M DSP), the build's A4 layout (6 on Helium / NEON) for <= 4-bit
//   inputs, the FC kernel's layouts for 8-bit inputs.
#ifndef KWS_TFLM_H_
#define KWS_TFLM_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace kws {
TFLMRegistration* Register_SUB8_FULLY_CONNECTED();
TFLMRegistration* Register_FULLY_CONNECTED_PACKED();
TFLMRegistration* Register_SUB8_FC_A4();
}  // namespace kws

#endif  // KWS_TFLM_H_
