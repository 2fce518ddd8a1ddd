# libFuzzer harness over the model reader + front-end config + invoke (firmware/fuzz/fuzz_model.c).
# Included by firmware/Makefile:
#   make -C firmware fuzz FUZZ_SECONDS=60       build build/fuzz/fuzz_model (clang) and run it
#   make -C firmware fuzz-cov                   line coverage of build/fuzz/corpus (llvm-cov)
# The run starts from the committed seeds (fuzz/seeds, left as they are) and the inputs of earlier
# runs (build/fuzz/corpus, where new inputs go). A crash is written to build/fuzz/crash-* and fails
# the run. The coverage build (-fprofile-instr-generate) is separate: it would slow the fuzzer.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BASE := -std=c99 -g -fno-omit-frame-pointer -Iinclude -Iruntime -Ikernels/opt -Ifrontend -Idetect -ffp-contract=off
FUZZ_FLAGS := $(FUZZ_BASE) -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_COV_FLAGS := $(FUZZ_BASE) -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping
FUZZ_SRC := fuzz/fuzz_model.c $(LIB_SRC) frontend/kws_frontend.c frontend/kws_frontend_meta.c frontend/kws_frontend_tables.c

.PHONY: fuzz fuzz-build fuzz-cov
fuzz-build: $(BUILD)/fuzz/fuzz_model
$(BUILD)/fuzz/fuzz_model: $(FUZZ_SRC) $(HDRS) $(STREAM_HDRS) fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) -lm
$(BUILD)/fuzz/fuzz_model_cov: $(FUZZ_SRC) $(HDRS) $(STREAM_HDRS) fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_COV_FLAGS) -o $@ $(filter %.c,$^) -lm

fuzz: $(BUILD)/fuzz/fuzz_model
	@mkdir -p $(BUILD)/fuzz/corpus
	cd $(BUILD)/fuzz && ./fuzz_model -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
	  -print_final_stats=1 corpus $(abspath fuzz/seeds)

fuzz-cov: $(BUILD)/fuzz/fuzz_model_cov
	@mkdir -p $(BUILD)/fuzz/corpus
	cd $(BUILD)/fuzz && rm -f cov.profraw && LLVM_PROFILE_FILE=cov.profraw ./fuzz_model_cov -runs=0 corpus $(abspath fuzz/seeds) \
	  && llvm-profdata merge -sparse cov.profraw -o cov.profdata \
	  && llvm-cov export -summary-only -instr-profile=cov.profdata fuzz_model_cov > coverage.json
