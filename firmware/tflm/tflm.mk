# Makefile fragment: the kws kernels for TFLite Micro applications (kws_tflm.h):
# SUB8_FULLY_CONNECTED (layouts 0/2/3), SUB8_FC_A4 (4-bit activations) and a FULLY_CONNECTED variant
# reading INT4 weights in place.
#
#   include path/to/firmware/tflm/tflm.mk      (with TFLM_DIR=/path/to/tflite-micro [KWS_TFLM_ISA=dsp])
# KWS_TFLM_ISA: the optimized kernel linked (kernels/optimized.mk): dsp (Cortex-M4/M7/M33 with DSP),
# mve (Cortex-M55/M85), neon (AArch64), none (reference only; layouts 2/3 then fail Prepare).
# Compile flags for the target (-mcpu=..., -mfloat-abi=...) come from the application's CFLAGS.
#   ... add $(KWS_TFLM_SRCS) to your sources and $(KWS_TFLM_INCLUDES) to your include flags,
#   or: make -f firmware/tflm/tflm.mk TFLM_DIR=... kws_tflm_objs
#
# Nothing is compiled unless TFLM_DIR is set: TFLM sources come from a tflite-micro checkout
# (no package registry reachable here ships them), so CI does not build this.
KWS_FW := $(patsubst %/tflm/,%,$(dir $(lastword $(MAKEFILE_LIST))))
ifneq ($(TFLM_DIR),)
KWS_TFLM_ISA ?= none
KWS_TFLM_ISA_SRC_dsp := $(KWS_FW)/kernels/dsp/kws_fully_connected_dsp.c
KWS_TFLM_ISA_SRC_mve := $(KWS_FW)/kernels/mve/kws_fully_connected_mve.c
KWS_TFLM_ISA_SRC_neon := $(KWS_FW)/kernels/neon/kws_fully_connected_neon.c
KWS_TFLM_ISA_SRC_none := $(KWS_FW)/kernels/opt/kws_fc_opt_none.c
KWS_TFLM_SRCS := $(KWS_FW)/tflm/kws_tflm_sub8.cc $(KWS_FW)/tflm/kws_tflm_fc_packed.cc $(KWS_FW)/tflm/kws_tflm_fc_a4.cc \
                 $(KWS_FW)/kernels/reference/kws_fully_connected_a4.c $(KWS_FW)/kernels/dsp/kws_fully_connected_a4_dsp.c \
                 $(KWS_FW)/kernels/mve/kws_fully_connected_a4_mve.c $(KWS_FW)/kernels/neon/kws_fully_connected_a4_neon.c \
                 $(KWS_FW)/runtime/kws_sub8.c $(KWS_FW)/runtime/kws_fb.c $(KWS_FW)/runtime/kws_quant.c \
                 $(KWS_FW)/runtime/kws_sparse.c \
                 $(KWS_FW)/kernels/reference/kws_fully_connected_sub8.c $(KWS_FW)/kernels/reference/kws_fully_connected_s4.c \
                 $(KWS_FW)/kernels/reference/kws_fully_connected_s8.c $(KWS_FW)/kernels/opt/kws_fc_opt_layouts.c \
                 $(KWS_TFLM_ISA_SRC_$(KWS_TFLM_ISA))
KWS_TFLM_INCLUDES := -I$(KWS_FW)/include -I$(KWS_FW)/runtime -I$(KWS_FW)/kernels/opt -I$(KWS_FW)/tflm -I$(TFLM_DIR) \
                     -I$(TFLM_DIR)/tensorflow/lite/micro/tools/make/downloads/flatbuffers/include \
                     -I$(TFLM_DIR)/tensorflow/lite/micro/tools/make/downloads/gemmlowp
KWS_TFLM_OBJDIR ?= $(KWS_FW)/build/tflm
KWS_TFLM_OBJS := $(patsubst $(KWS_FW)/%,$(KWS_TFLM_OBJDIR)/%.o,$(KWS_TFLM_SRCS))
TFLM_CXX ?= $(CXX)
TFLM_CC ?= $(CC)

.PHONY: kws_tflm_objs
kws_tflm_objs: $(KWS_TFLM_OBJS)
$(KWS_TFLM_OBJDIR)/%.cc.o: $(KWS_FW)/%.cc
	@mkdir -p $(dir $@)
	$(TFLM_CXX) -std=c++17 -O2 -DTF_LITE_STATIC_MEMORY $(KWS_TFLM_CFLAGS) $(KWS_TFLM_INCLUDES) -c $< -o $@
$(KWS_TFLM_OBJDIR)/%.c.o: $(KWS_FW)/%.c
	@mkdir -p $(dir $@)
	$(TFLM_CC) -std=c99 -O2 $(KWS_TFLM_CFLAGS) $(KWS_TFLM_INCLUDES) -c $< -o $@
endif
