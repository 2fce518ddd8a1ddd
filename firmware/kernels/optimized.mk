# kernels/optimized.mk - the optimized FULLY_CONNECTED kernels and the kernel bench per target.
# Included by firmware/Makefile; everything here is additive (own variables and targets).
#   make -C firmware kbench           kws_kbench.elf for every Cortex-M board + the AArch64 bare-metal images
#   make -C firmware kbench-mps2-an386
# OPT_SRC_<board>: the ISA file linked for that board (exactly one defines kws_fully_connected_opt).

OPT_COMMON_SRC := kernels/opt/kws_fc_opt_layouts.c kernels/float/kws_fully_connected_f32.c kernels/float/kws_lstm_f32.c
# OPT_ISA_<Cortex-M board>: firmware/boards_gen.mk (tflm_port/board_table.py)
$(foreach b,$(CM_BOARDS),$(eval OPT_SRC_$(b) := $(OPT_COMMON_SRC) $(OPT_ISA_$(b))))
OPT_ISA_aarch64 := kernels/neon/kws_fully_connected_neon.c
OPT_HDRS := kernels/opt/kws_kernels_opt.h $(wildcard kernels/neon/*.h kernels/mve/*.h)
OPT_CFLAGS := -Ikernels/opt
KBENCH_REF_SRC := kernels/reference/kws_fully_connected_s8.c kernels/reference/kws_fully_connected_sub8.c runtime/kws_quant.c

.PHONY: kbench kbench-a64 $(addprefix kbench-,$(CM_BOARDS))
kbench: $(addprefix kbench-,$(CM_BOARDS)) kbench-a64

define KBENCH_CM
kbench-$(1): $(BUILD)/$(1)/kws_kbench.elf
$(BUILD)/$(1)/kws_kbench.elf: app/kws_kbench.c $(OPT_SRC_$(1)) $(KBENCH_REF_SRC) $(CM_BOARD_SRC) $(HDRS) $(OPT_HDRS) boards/$(1)/linker.ld
	@mkdir -p $$(dir $$@)
	$(ARM_CC) $(CM_CFLAGS) $(OPT_CFLAGS) $(CPU_$(1)) -Iboards/$(1) $(CM_LDFLAGS) -Tboards/$(1)/linker.ld \
	  -o $$@ app/kws_kbench.c $(OPT_SRC_$(1)) $(KBENCH_REF_SRC) $(CM_BOARD_SRC) -lm -lc -lgcc
endef
$(foreach b,$(CM_BOARDS),$(eval $(call KBENCH_CM,$(b))))

# AArch64 bare metal (qemu-system-aarch64 -M virt -icount, PMU INST_RETIRED): the firmware's
# boards/aarch64-virt board layer, one image per ISA level (A64_LEVELS, -mcpu A64_CPU_<level>: boards_gen.mk)
A64_BM_DIR := boards/aarch64-virt
A64_BM_CFLAGS := $(COMMON_CFLAGS) $(OPT_CFLAGS) -DKBENCH_BAREMETAL -fno-stack-protector -I$(A64_BM_DIR)
A64_BM_LDFLAGS := -static -nostdlib -nostartfiles -T$(A64_BM_DIR)/linker.ld -Wl,--gc-sections
A64_BM_SRCS := app/kws_kbench.c kernels/neon/kws_fully_connected_neon.c $(OPT_COMMON_SRC) $(KBENCH_REF_SRC) \
  $(A64_BM_DIR)/board_aarch64_virt.c $(A64_BM_DIR)/mini_libc.c $(A64_BM_DIR)/start.S
kbench-a64: $(foreach l,$(A64_LEVELS),$(BUILD)/a64/kws_kbench_$(l).elf)
$(BUILD)/a64/kws_kbench_%.elf: $(A64_BM_SRCS) $(HDRS) $(OPT_HDRS) $(A64_BM_DIR)/linker.ld
	@mkdir -p $(dir $@)
	$(A64_CC) $(A64_BM_CFLAGS) $(A64_CPU_$*) $(A64_BM_LDFLAGS) -o $@ $(filter %.c %.S,$^) -lgcc

# Convolution bench / self-test (app/kws_cbench.c; kernels/dsp/kws_conv_dsp.c, docs/kernels.md "DS-CNN
# convolutions"): the Cortex-M DSP boards only
#   make -C firmware cbench           kws_cbench.elf for mps2-an386 and mps2-an500
CBENCH_BOARDS := $(foreach b,$(CM_BOARDS),$(if $(findstring /dsp/,$(OPT_ISA_$(b))),$(b)))
CBENCH_SRC := app/kws_cbench.c kernels/dsp/kws_conv_dsp.c kernels/reference/kws_conv_s8.c \
  kernels/reference/kws_depthwise_conv_s8.c kernels/opt/kws_fc_opt_layouts.c runtime/kws_quant.c
.PHONY: cbench $(addprefix cbench-,$(CBENCH_BOARDS))
cbench: $(addprefix cbench-,$(CBENCH_BOARDS))
define CBENCH_CM
cbench-$(1): $(BUILD)/$(1)/kws_cbench.elf
$(BUILD)/$(1)/kws_cbench.elf: $(CBENCH_SRC) $(OPT_ISA_$(1)) $(CM_BOARD_SRC) $(HDRS) $(OPT_HDRS) boards/$(1)/linker.ld
	@mkdir -p $$(dir $$@)
	$(ARM_CC) $(CM_CFLAGS) $(OPT_CFLAGS) $(CPU_$(1)) -Iboards/$(1) $(CM_LDFLAGS) -Tboards/$(1)/linker.ld \
	  -o $$@ $(CBENCH_SRC) $(OPT_ISA_$(1)) $(CM_BOARD_SRC) -lm -lc -lgcc
endef
$(foreach b,$(CBENCH_BOARDS),$(eval $(call CBENCH_CM,$(b))))
