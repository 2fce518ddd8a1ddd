# Stable interface: setup, demo, test, bench, firmware.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox libsndfile1 \
                gcc g++ libc6-dev make gcc-arm-none-eabi libnewlib-arm-none-eabi \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm qemu-user \
                clang libclang-rt-14-dev llvm
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench firmware deploy flash clean apt fuzz

setup: apt $(STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev,tts]'
	$(VPY) -m pip check
	@touch $(STAMP)

# make demo [KOKORO_VOICES=dir of Kokoro-82M voice packs]
demo: setup
	KOKORO_VOICES=$(KOKORO_VOICES) $(VPY) -m training.demo

test: setup
	$(VPY) -m pytest -q

bench: setup
	$(VPY) -m bench.run

firmware: setup
	$(MAKE) -C firmware all

# make deploy RUN=runs/<qat run> BOARD=mps2-an386 AUDIO=file.wav [THRESHOLD=0.6]
deploy: setup
	$(VPY) -m tflm_port.deploy $(RUN) --board $(or $(BOARD),mps2-an386) --audio $(AUDIO) $(if $(THRESHOLD),--threshold $(THRESHOLD))

# make flash BOARD=netduinoplus2 RUN=runs/<qat run> [AUDIO=file.wav] [THRESHOLD=0.6] [DRY=1]
# self-contained UART image (.elf/.bin/.hex); prints the board's flashing command and runs it when
# st-flash / openocd / pyocd is installed (DRY=1: print only). docs/porting.md
flash: setup
	$(VPY) -m tflm_port.flash $(RUN) --board $(or $(BOARD),netduinoplus2) $(if $(AUDIO),--audio $(AUDIO)) \
	  $(if $(THRESHOLD),--threshold $(THRESHOLD)) $(if $(DRY),--dry-run)

# libFuzzer over the C model reader + front-end config + invoke: make fuzz [FUZZ_SECONDS=60]
fuzz: apt
	$(MAKE) -C firmware fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60)

clean:
	rm -rf build firmware/build .pytest_cache
