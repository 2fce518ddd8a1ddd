# Self-contained UART images (no semihosting): the model and the test vectors or the audio are
# linked into flash, results go to the board's UART. What the emulator tests run is what a user
# flashes (docs/porting.md). Included by Makefile.
#
#   make -C firmware uart-selftest BOARD=netduinoplus2 MODEL=m.tflite VECTORS=v.sktv [OUT=dir] [QUIET=1]
#   make -C firmware uart-stream   BOARD=netduinoplus2 MODEL=m.tflite AUDIO=a.wav [OUT=dir]
#                                  [THRESHOLD=0.5] [SMOOTHING=10] [REFRACTORY=1.0] [QUIET=1]
#   make -C firmware uart-libs                     the board parts only (no model/data)
# -> OUT/kws_selftest.{elf,bin,hex,map} or OUT/kws_stream.{elf,bin,hex,map}; OUT defaults to
#    build/<board>/uart. An image too large for the board's flash or RAM stops the link with one
#    line saying which region and by how many bytes.
# Boards: mps2-an386 (CMSDK UART0 0x40004000), mps3-an547 (CMSDK UART0 0x59303000), netduinoplus2
# (STM32F405, USART1 0x40011000). Run under QEMU with -serial stdio (no -semihosting-config).
# UART_BOARDS, CPU_<UART-only board>, UART_LIB_<board> (the semihosted twin's libkws.a: the STM32F405 is a
# Cortex-M4F like mps2-an386, the same runtime + DSP kernels) and UART_ARENA_<board> (bytes reserved):
# boards_gen.mk, generated from tflm_port/board_table.py (UART, UART_ONLY)

BOARD ?= netduinoplus2
ARENA ?= $(UART_ARENA_$(BOARD))
OUT ?= $(BUILD)/$(BOARD)/uart
THRESHOLD ?= 0.5
SMOOTHING ?= 10
REFRACTORY ?= 1.0
UART_BOARD_SRC := boards/common/cortex_m/startup.c boards/common/cortex_m/board_uart.c
UART_OBJ := $(BUILD)/$(BOARD)/uart-obj-a$(ARENA)
UART_CFLAGS = $(CM_CFLAGS) $(CPU_$(BOARD)) -Iboards/$(BOARD) $(STREAM_CFLAGS) -DKWS_MODEL_MAX=16 -DKWS_ARENA_SIZE=$(ARENA)

.PHONY: uart-selftest uart-stream uart-libs uart-check FORCE
uart-check:
	@$(if $(filter $(BOARD),$(UART_BOARDS)),,echo "BOARD=$(BOARD): not a UART board (one of: $(UART_BOARDS))" >&2; exit 2)

$(UART_OBJ)/%.o: %.c $(HDRS) $(STREAM_HDRS) | uart-check
	@mkdir -p $(dir $@)
	$(ARM_CC) $(UART_CFLAGS) -c $< -o $@

# the blobs: always re-assembled (the paths change between calls, the files may too)
$(OUT)/blobs.o: boards/common/cortex_m/uart_blobs.S FORCE | uart-check
	@mkdir -p $(OUT)
	@test -f "$(MODEL)" || { echo "MODEL=$(MODEL): no such file" >&2; exit 2; }
	@test -f "$(DATA)" || { echo "$(DATA_VAR)=$(DATA): no such file" >&2; exit 2; }
	@printf '%s\n' "$(CMDLINE)" > $(OUT)/cmdline.txt
	$(ARM_CC) $(CPU_$(BOARD)) -c $< -o $@ -DKWS_BLOB_CMDLINE='"$(abspath $(OUT))/cmdline.txt"' \
	  -DKWS_BLOB_MODEL='"$(abspath $(MODEL))"' -DKWS_BLOB_DATA='"$(abspath $(DATA))"'

# link; on a region overflow print one line: board, image, region(s) and bytes over, input sizes
define UART_LINK
	@mkdir -p $(dir $@)
	@$(ARM_CC) $(CM_CFLAGS) $(CPU_$(BOARD)) $(CM_LDFLAGS) -Tboards/$(BOARD)/linker.ld -Wl,-Map=$(basename $@).map \
	  -o $@ $(filter %.o,$^) $(UART_LIB_$(BOARD)) -lm -lc -lgcc 2> $@.log || { \
	  over=$$(sed -n "s/.*region .\([A-Za-z_]*\). overflowed by \([0-9]*\) bytes.*/\2 bytes more \1/p" $@.log | sort -u | paste -sd, - | sed 's/,/ and /g'); \
	  if [ -n "$$over" ]; then echo "$(BOARD): $(notdir $@) does not fit: needs $$over than the board has (model $$(stat -c %s $(MODEL)) bytes, $(DATA_VAR) $$(stat -c %s $(DATA)) bytes, arena $(ARENA) bytes)" >&2; \
	  else cat $@.log >&2; fi; rm -f $@; exit 1; }
	@arm-none-eabi-objcopy -O binary $@ $(basename $@).bin
	@arm-none-eabi-objcopy -O ihex $@ $(basename $@).hex
	@arm-none-eabi-size $@
endef

uart-libs: uart-check $(UART_LIB_$(BOARD)) $(patsubst %.c,$(UART_OBJ)/%.o,$(UART_BOARD_SRC) app/kws_selftest.c $(STREAM_SRC))

ifeq ($(filter uart-selftest,$(MAKECMDGOALS)),uart-selftest)
DATA := $(VECTORS)
DATA_VAR := VECTORS
CMDLINE := kws_selftest model data$(if $(QUIET), -q)
endif
uart-selftest: $(OUT)/kws_selftest.elf
$(OUT)/kws_selftest.elf: $(patsubst %.c,$(UART_OBJ)/%.o,app/kws_selftest.c $(UART_BOARD_SRC)) $(OUT)/blobs.o \
  $(UART_LIB_$(BOARD)) boards/$(BOARD)/linker.ld
	$(UART_LINK)

ifeq ($(filter uart-stream,$(MAKECMDGOALS)),uart-stream)
DATA := $(AUDIO)
DATA_VAR := AUDIO
CMDLINE := kws_stream model data -t $(THRESHOLD) -s $(SMOOTHING) -r $(REFRACTORY)$(if $(QUIET), -q)
endif
uart-stream: $(OUT)/kws_stream.elf
$(OUT)/kws_stream.elf: $(patsubst %.c,$(UART_OBJ)/%.o,$(STREAM_SRC) $(UART_BOARD_SRC)) $(OUT)/blobs.o \
  $(UART_LIB_$(BOARD)) boards/$(BOARD)/linker.ld
	$(UART_LINK)
