# brigade — build, run and test.
#
#   make run     set up (packages, pinned llama.cpp, test deps), build, serve
#   make test    set up, build, run unit + integration tests, then again under
#                ASan+UBSan and valgrind, then the fuzz harnesses briefly
#   make asan    the whole suite under AddressSanitizer + UBSan only
#   make valgrind  the integration suite with brigade under valgrind memcheck
#   make fuzz    libFuzzer harnesses, FUZZ_SECONDS each
#   make format  clang-format every C file
#   make bench-engine  brigade vs llama-server on one model file, side by side;
#                writes bench/results/engine.md (BENCH_QUICK=1: a smoke run)

CC      ?= cc
DEPS    := deps
LLAMA_SRC := $(DEPS)/llama.cpp
LLAMA_BIN := $(DEPS)/llama-bin/bins/linux-x64
LLAMA_SONAME := libllama.v0.5.0.so
LLAMA_LIBS := $(LLAMA_BIN)/$(LLAMA_SONAME) $(LLAMA_BIN)/libggml.v0.5.0.so $(LLAMA_BIN)/libggml-base.so

BUILD   ?= build
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) $(SAN) -Isrc -I$(LLAMA_SRC)/include -I$(LLAMA_SRC)/ggml/include \
	-DBRG_LLAMA_SONAME='"$(LLAMA_SONAME)"' \
	$(shell pkg-config --cflags jansson yaml-0.1 2>/dev/null) $(EXTRA_CFLAGS)
# $ORIGIN keeps the binary runnable from any working directory without
# LD_LIBRARY_PATH; the libraries stay in the git-ignored deps/.  brigade
# does not link llama.cpp or libcurl: it dlopens them when first needed
# (src/engine/llama_lazy.h, src/core/curl_lazy.h), and dlopen searches the
# same RUNPATH, so an idle server never maps them.
LDFLAGS_ALL := $(SAN) -L$(LLAMA_BIN) -Wl,-rpath,'$$ORIGIN/../$(LLAMA_BIN)' -Wl,-rpath,'$$ORIGIN/../../$(LLAMA_BIN)' -Wl,-rpath,'$$ORIGIN/../../../$(LLAMA_BIN)'
LDLIBS_ALL := -ljansson -lyaml -lpthread -lm
# For tools and tests that call llama.cpp themselves.
LLAMA_LDLIBS := -l:$(LLAMA_SONAME) -l:libggml.v0.5.0.so -l:libggml-base.so

SRCS    := $(shell find src -name '*.c' -not -name main.c | sort)
OBJS    := $(SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 15

.PHONY: all setup run test unit integration asan valgrind fuzz format clean

all: $(BUILD)/brigade $(BUILD)/mkmodel $(UNIT_BINS)

setup:
	@bash tools/setup.sh

$(LLAMA_LIBS) $(LLAMA_SRC)/include/llama.h: | setup-once
.PHONY: setup-once
setup-once:
	@test -f $(LLAMA_SRC)/include/llama.h || bash tools/setup.sh

$(BUILD)/obj/%.o: %.c | setup-once
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libbrigade.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/brigade: $(BUILD)/obj/src/main.o $(BUILD)/libbrigade.a
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) -o $@

# tools/mkmodel: random-weight GGUF models with real shapes (tools/README.md).
$(BUILD)/mkmodel: $(BUILD)/obj/tools/mkmodel.o $(BUILD)/obj/tools/mkmodel_gguf.o
	$(CC) $(LDFLAGS_ALL) $^ -l:$(LLAMA_SONAME) -l:libggml-base.so -lm -o $@

# test_budget compares with llama.cpp's own numbers, so links it; the
# others load it as brigade does.
$(BUILD)/tests/test_budget: TEST_LDLIBS := $(LLAMA_LDLIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libbrigade.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) $^ $(LDLIBS_ALL) $(TEST_LDLIBS) -lcmocka -o $@

run: setup $(BUILD)/brigade
	./$(BUILD)/brigade serve --config config/models.yaml

unit: $(UNIT_BINS)
	@bash tools/run-unit.sh $(UNIT_BINS)

integration: $(BUILD)/brigade $(BUILD)/mkmodel
	@BRIGADE_BIN=$(abspath $(BUILD)/brigade) MKMODEL_BIN=$(abspath $(BUILD)/mkmodel) \
		bash tools/run-integration.sh

test: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit integration
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# The sanitizer build lives in its own tree so both can coexist.
ASAN_VARS := BUILD=build/asan OPT='-O1 -g -fno-omit-frame-pointer' \
	SAN='-fsanitize=address,undefined -fno-sanitize-recover=undefined'
asan: setup-once
	@$(MAKE) --no-print-directory $(ASAN_VARS) all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(abspath tools/lsan.supp) \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) --no-print-directory $(ASAN_VARS) unit integration

# The integration suite against brigade under valgrind's memcheck; any
# error or definite leak is written to build/valgrind/*.log and fails here.
valgrind: $(BUILD)/brigade $(BUILD)/mkmodel
	@rm -rf build/valgrind
	@BRIGADE_BIN=$(abspath tools/valgrind-brigade.sh) BRIGADE_TEST_TIMEOUT_MS=600000 \
		MKMODEL_BIN=$(abspath $(BUILD)/mkmodel) \
		INFERENCE_REQUEST_TIMEOUT=1800 BRIGADE_TEST_LONG_TOKENS=300 BRIGADE_TEST_DEADLINE_S=6 \
		bash tools/run-integration.sh
	@if find build/valgrind -name '*.log' -size +0 | grep -q .; then \
		cat build/valgrind/*.log; echo "valgrind: errors found"; exit 1; fi; \
		echo "valgrind: $$(ls build/valgrind | wc -l) brigade processes, 0 errors, 0 definite leaks"

fuzz: setup-once
	@bash tools/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_SRCS)

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

# What brigade adds in front of a fast fake upstream (latency, CPU per
# request), unpinned and with the client on its own CPU (bench/gateway/
# README.md, Placement); writes bench/results/gateway.md and
# gateway-split.md.  BENCH_SECONDS per run (10).
.PHONY: bench-gateway
bench-gateway: all
	@bash bench/gateway/run.sh
	@BENCH_PIN=split BENCH_OUT=bench/results/gateway-split.md bash bench/gateway/run.sh

# The memory bandwidth (a triad loop), the decode ceiling it implies per
# model, and brigade's share of it; writes bench/results/ceiling.md.
.PHONY: bench-ceiling
bench-ceiling: all
	@bash bench/engine/ceiling.sh

# A 3-member ensemble's wall time against its slowest member and the sum
# of all three, remote and local members; writes bench/results/orchestrate.md.
.PHONY: bench-orchestrate
bench-orchestrate: all
	@node bench/orchestrate/ensemble.mjs

# brigade and llama-server (built from the same llama.cpp release) on the
# same model, threads and slots: decode, concurrency, a shared system
# prompt, n, inter-token gaps, memory; writes bench/results/engine.md.
.PHONY: bench-engine
bench-engine: all
	@bash bench/engine/run.sh

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
