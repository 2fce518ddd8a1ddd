# a4.mk - SUB8_FC_A4 kernel bench / self-test image (4-bit activations) for the Cortex-M DSP boards.
# Additive, like kernels/optimized.mk:  make -C firmware -f Makefile -f a4.mk a4bench
#   build/<board>/kws_a4bench.elf   test <trials> <seed> | bench   (app/kws_a4bench.c)
A4_BOARDS := mps2-an386 mps2-an500
A4_SRC := app/kws_a4bench.c kernels/reference/kws_fully_connected_a4.c kernels/dsp/kws_fully_connected_a4_dsp.c \
  kernels/opt/kws_fc_opt_layouts.c kernels/dsp/kws_fully_connected_dsp.c kernels/float/kws_fully_connected_f32.c \
  kernels/reference/kws_fully_connected_s8.c kernels/reference/kws_fully_connected_sub8.c runtime/kws_quant.c

.PHONY: a4bench $(addprefix a4bench-,$(A4_BOARDS))
a4bench: $(addprefix a4bench-,$(A4_BOARDS))

define A4BENCH_CM
a4bench-$(1): $(BUILD)/$(1)/kws_a4bench.elf
$(BUILD)/$(1)/kws_a4bench.elf: $(A4_SRC) $(CM_BOARD_SRC) $(HDRS) boards/$(1)/linker.ld
	@mkdir -p $$(dir $$@)
	$(ARM_CC) $(CM_CFLAGS) -Ikernels/opt $(CPU_$(1)) -Iboards/$(1) $(CM_LDFLAGS) -Tboards/$(1)/linker.ld \
	  -o $$@ $(A4_SRC) $(CM_BOARD_SRC) -lm -lc -lgcc
endef
$(foreach b,$(A4_BOARDS),$(eval $(call A4BENCH_CM,$(b))))
