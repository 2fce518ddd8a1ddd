# Streaming app (audio in -> detections out): kws_stream for every board. Included by Makefile.
#   make -C firmware stream                 every board + host
#   make -C firmware stream-mps2-an386      one board
# The front end and the detector are built with -ffp-contract=off: training/frontend_mirror.py
# reproduces their float32 arithmetic only without fused multiply-adds.
STREAM_SRC := app/kws_stream.c frontend/kws_frontend.c frontend/kws_frontend_meta.c \
              frontend/kws_frontend_tables.c detect/kws_detect.c
STREAM_HDRS := $(wildcard frontend/*.h detect/*.h)
STREAM_CFLAGS := -Ifrontend -Idetect -ffp-contract=off

.PHONY: stream stream-host stream-aarch64 $(addprefix stream-,$(CM_BOARDS))
stream: $(addprefix stream-,$(CM_BOARDS)) stream-host

define CM_STREAM
stream-$(1): $(BUILD)/$(1)/kws_stream.elf
$(BUILD)/$(1)/stream/%.o: %.c $(HDRS) $(STREAM_HDRS)
	@mkdir -p $$(dir $$@)
	$(ARM_CC) $(CM_CFLAGS) $(CPU_$(1)) -Iboards/$(1) $(STREAM_CFLAGS) -c $$< -o $$@
$(BUILD)/$(1)/kws_stream.elf: $(patsubst %.c,$(BUILD)/$(1)/stream/%.o,$(STREAM_SRC)) \
  $(patsubst %.c,$(BUILD)/$(1)/lib/%.o,$(CM_BOARD_SRC)) $(BUILD)/$(1)/libkws.a boards/$(1)/linker.ld
	$(ARM_CC) $(CM_CFLAGS) $(CPU_$(1)) $(CM_LDFLAGS) -Tboards/$(1)/linker.ld -Wl,-Map=$(BUILD)/$(1)/kws_stream.map \
	  -o $$@ $$(filter %.o,$$^) $(BUILD)/$(1)/libkws.a -lm -lc -lgcc
endef
$(foreach b,$(CM_BOARDS),$(eval $(call CM_STREAM,$(b))))

stream-host: $(BUILD)/host/kws_stream
$(BUILD)/host/kws_stream: $(LIB_SRC) $(STREAM_SRC) boards/linux/board_linux.c $(HDRS) $(STREAM_HDRS)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $(STREAM_CFLAGS) -o $@ $(filter %.c,$^) -lm

stream-aarch64: $(BUILD)/aarch64/kws_stream
$(BUILD)/aarch64/kws_stream: $(BASE_SRC) $(OPT_ISA_aarch64) $(A4_ISA_aarch64) $(SPARSE_ISA_aarch64) $(STREAM_SRC) boards/linux/board_linux.c $(HDRS) $(STREAM_HDRS)
	@mkdir -p $(dir $@)
	$(A64_CC) $(A64_CFLAGS) $(STREAM_CFLAGS) -static -o $@ $(filter %.c,$^) -lm
