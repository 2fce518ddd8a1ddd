# a4.mk - SUB8_FC_A4 kernel bench / self-test image (4-bit activations) for every emulated board.
# Additive, like kernels/optimized.mk:  make -C firmware -f Makefile -f a4.mk a4bench
#   build/<board>/kws_a4bench.elf   test <trials> <seed> | bench   (app/kws_a4bench.c)
#   build/a64/kws_a4bench_v80.elf, build/a64/kws_a4bench_dotprod.elf   (qemu-system-aarch64 -M virt)
# Each image links the board's FC kernel (OPT_ISA_<board>) and its A4 kernel (the DSP file on M4/M7, the
# MVE file on M55, the NEON file on AArch64; kws_fc_a4.h).
A4_BOARDS := $(CM_BOARDS)
A4_SRC := app/kws_a4bench.c kernels/reference/kws_fully_connected_a4.c kernels/dsp/kws_fully_connected_a4_dsp.c \
  kernels/mve/kws_fully_connected_a4_mve.c kernels/opt/kws_fc_opt_layouts.c kernels/float/kws_fully_connected_f32.c \
  kernels/reference/kws_fully_connected_s8.c kernels/reference/kws_fully_connected_sub8.c runtime/kws_quant.c

.PHONY: a4bench a4bench-a64 $(addprefix a4bench-,$(A4_BOARDS))
a4bench: $(addprefix a4bench-,$(A4_BOARDS)) a4bench-a64

define A4BENCH_CM
a4bench-$(1): $(BUILD)/$(1)/kws_a4bench.elf
$(BUILD)/$(1)/kws_a4bench.elf: $(A4_SRC) $(OPT_ISA_$(1)) $(CM_BOARD_SRC) $(HDRS) boards/$(1)/linker.ld
	@mkdir -p $$(dir $$@)
	$(ARM_CC) $(CM_CFLAGS) -Ikernels/opt $(CPU_$(1)) -Iboards/$(1) $(CM_LDFLAGS) -Tboards/$(1)/linker.ld \
	  -o $$@ $(A4_SRC) $(OPT_ISA_$(1)) $(CM_BOARD_SRC) -lm -lc -lgcc
endef
$(foreach b,$(A4_BOARDS),$(eval $(call A4BENCH_CM,$(b))))

# AArch64 bare metal, one image per ISA level (the kernel bench's board layer and flags, kernels/optimized.mk)
A4_A64_SRCS := $(A4_SRC) $(OPT_ISA_aarch64) $(A4_ISA_aarch64) $(A64_BM_DIR)/board_aarch64_virt.c \
  $(A64_BM_DIR)/mini_libc.c $(A64_BM_DIR)/start.S
a4bench-a64: $(foreach l,$(A64_LEVELS),$(BUILD)/a64/kws_a4bench_$(l).elf)
$(BUILD)/a64/kws_a4bench_%.elf: $(A4_A64_SRCS) $(HDRS) $(A64_BM_DIR)/linker.ld
	@mkdir -p $(dir $@)
	$(A64_CC) $(A64_BM_CFLAGS) $(A64_CPU_$*) $(A64_BM_LDFLAGS) -o $@ $(filter %.c %.S,$^) -lgcc
