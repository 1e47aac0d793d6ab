# Manifold — build, run, test and benchmark.
#   make run     install what is missing, build, start the server on ./var/manifold.db
#   make test    install what is missing, build with ASan+UBSan, run every test
#   make bench   run the benchmarks in bench/ (see docs/benchmarks.md)
#
# Sources are discovered, not listed: every src/**/*.c except src/main.c goes into
# libmanifold.a; every tests/unit/test_*.c becomes a unit-test binary; every
# fuzz/fuzz_*.c becomes a libFuzzer target.

SANFLAGS := -fsanitize=address,undefined
PKGS    := libmicrohttpd jansson sqlite3 libsodium libpq libcurl libpcre2-8 zlib
BUILD   ?= build
OPT     ?= -O2
ifeq ($(SAN),1)
BUILD   := build/asan
OPT     := -O1 -fno-omit-frame-pointer $(SANFLAGS) -fno-sanitize-recover=all
endif
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0-dev)
CFLAGS  := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -Isrc -DMANIFOLD_VERSION='"$(VERSION)"' \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := $(if $(filter 1,$(SAN)),$(SANFLAGS))
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

# The dashboard's files (ui/) are compiled in: scripts/embed.c, built with the host compiler,
# turns them into build/gen/ui_assets.c (docs/dashboard.md). Any change under ui/ regenerates it.
UI_FILES := $(sort $(wildcard ui/*))
UI_GEN  := build/gen/ui_assets.c
LIB_SRC := $(sort $(shell find src -name '*.c' ! -path src/main.c)) $(UI_GEN)
# The JSON Schema interpreter and the views it reads are the data plane's hot loop:
# -O3 (more inlining and unrolling) measured about 5% faster there in bench/schema.
HOT_SRC := src/schema/validate.c src/util/jview.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
FUZZ    := $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/fuzz_*.c))

.PHONY: all run test bench fuzz deps clean unit
all: $(BUILD)/manifold

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

build/gen/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O1 -Wall -Wextra -Werror -o $@ $<

# ui/ itself is a prerequisite too, so adding or removing a file regenerates the table.
$(UI_GEN): build/gen/embed $(UI_FILES) ui
	build/gen/embed $@ $(UI_FILES)

ifneq ($(SAN),1)
$(HOT_SRC:%.c=$(BUILD)/obj/%.o): CFLAGS += -O3
endif
# The Functions runtime finds runtime/worker.js beside the binary; this is the fallback for a
# binary copied elsewhere (docs/functions-runtime.md).
$(BUILD)/obj/src/functions/runtime.o: CFLAGS += -DMANIFOLD_RUNTIME_DIR='"$(CURDIR)/runtime"'

$(BUILD)/libmanifold.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/manifold: $(BUILD)/obj/src/main.o $(BUILD)/libmanifold.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmanifold.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmanifold.a $(LDLIBS) -lcmocka

unit: $(UNIT)

# Fuzz targets: the library is compiled once with clang's coverage instrumentation
# (fuzzer-no-link) and sanitizers; each target links it with libFuzzer's main.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
               -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

build/fuzz/%: fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

fuzz: $(FUZZ)

deps:
	scripts/install-deps.sh run

run:
	scripts/install-deps.sh run
	$(MAKE) --no-print-directory all
	$(BUILD)/manifold serve

test:
	scripts/install-deps.sh test
	$(MAKE) --no-print-directory -j2 SAN=1 all unit
	$(MAKE) --no-print-directory -j2 fuzz
	tests/run.sh

bench:
	scripts/install-deps.sh bench
	$(MAKE) --no-print-directory all
	bench/run.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(BUILD)/obj/src/main.d $(FUZZ_OBJ:.o=.d)
