# Makefile fragment: the SUB8_FULLY_CONNECTED kernel for TFLite Micro applications.
#
#   include path/to/firmware/tflm/tflm.mk      (with TFLM_DIR=/path/to/tflite-micro)
#   ... add $(KWS_TFLM_SRCS) to your sources and $(KWS_TFLM_INCLUDES) to your include flags,
#   or: make -f firmware/tflm/tflm.mk TFLM_DIR=... kws_tflm_objs
#
# Nothing is compiled unless TFLM_DIR is set: TFLM sources come from a tflite-micro checkout
# (no package registry reachable here ships them), so CI does not build this.
KWS_FW := $(patsubst %/tflm/,%,$(dir $(lastword $(MAKEFILE_LIST))))
ifneq ($(TFLM_DIR),)
KWS_TFLM_SRCS := $(KWS_FW)/tflm/kws_tflm_sub8.cc $(KWS_FW)/runtime/kws_sub8.c $(KWS_FW)/runtime/kws_fb.c \
                 $(KWS_FW)/runtime/kws_quant.c $(KWS_FW)/runtime/kws_sparse.c $(KWS_FW)/kernels/reference/kws_fully_connected_sub8.c
KWS_TFLM_INCLUDES := -I$(KWS_FW)/include -I$(KWS_FW)/runtime -I$(TFLM_DIR) \
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
	$(TFLM_CXX) -std=c++17 -O2 -DTF_LITE_STATIC_MEMORY $(KWS_TFLM_INCLUDES) -c $< -o $@
$(KWS_TFLM_OBJDIR)/%.c.o: $(KWS_FW)/%.c
	@mkdir -p $(dir $@)
	$(TFLM_CC) -std=c99 -O2 $(KWS_TFLM_INCLUDES) -c $< -o $@
endif
