// The kws kernels as TFLite Micro kernel registrations (firmware/tflm, docs/porting.md).
//
//   tflite::MicroMutableOpResolver<8> resolver;
//   resolver.AddCustom("SUB8_FULLY_CONNECTED", kws::Register_SUB8_FULLY_CONNECTED());
//   resolver.AddFullyConnected(*kws::Register_FULLY_CONNECTED_PACKED());   // instead of TFLM's FC
//
// Register_SUB8_FULLY_CONNECTED: the custom op of tflm_port.convert, layouts 0 (any core), 2
//   (r4_words, Cortex-M DSP build) and 3 (r4_nib32, Helium / NEON build), on the kernel the build
//   links (tflm.mk KWS_TFLM_ISA).
// Register_FULLY_CONNECTED_PACKED: builtin FULLY_CONNECTED with int8 activations and INT8 (per-tensor
//   or per-channel) or INT4 (per-tensor, TFLite packing) weights, read where they are (flash): no
//   unpacked copy in the arena. INT8 runs the optimized kernel of the build, INT4 the in-place
//   kws_fully_connected_s4. Anything else (float, int16 activations) fails Prepare: keep TFLM's FC
//   for such models.
#ifndef KWS_TFLM_H_
#define KWS_TFLM_H_

#include "tensorflow/lite/micro/micro_common.h"

namespace kws {
TFLMRegistration* Register_SUB8_FULLY_CONNECTED();
TFLMRegistration* Register_FULLY_CONNECTED_PACKED();
}  // namespace kws

#endif  // KWS_TFLM_H_
