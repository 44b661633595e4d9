# rackvm — build rules.
#   make            build/rackvm and the guest images in build/guest/
#   make run        install the build's packages, build, boot the bundled
#                   default guest (in the emulated test host if this
#                   machine's /dev/kvm cannot)
#   make test       the whole test suite (installs what it needs)
#   make asan       the sanitizer build used by the tests: build/asan/
#   make fuzz       libFuzzer targets in build/fuzz/ (clang)
#   make bench      benchmarks against QEMU (bench/boot)
#   make chaos      the long chaos run (tests/chaos): memd servers killed,
#                   stopped and cut off under paging VMs; CHAOS_FAULTS=N
#                   (default 200), CHAOS_SEED=N to replay a run

CC      ?= cc
BUILD   := build
CFLAGS_COMMON := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
                 -Wno-missing-field-initializers -g -D_GNU_SOURCE \
                 -Isrc -Iinclude -MMD -MP
CFLAGS_RELEASE := -O2
CFLAGS_ASAN    := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                  -fno-sanitize-recover=undefined
LDLIBS  := -lpthread -lm -lmemcached -lxxhash -ljansson -lsodium -lzstd \
           $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd) \
           $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

LIB_SRCS := $(wildcard src/util/*.c src/vm/*.c src/boot/*.c src/devices/*.c \
                      src/virtio/*.c src/api/*.c src/memory/*.c \
                      src/remote/*.c src/machine/*.c src/host/*.c \
                      src/migrate/*.c src/sched/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
UNIT_SRCS := $(wildcard tests/unit/*.c)

GUEST_ELF := $(BUILD)/guest/rackvm-guest.elf

.PHONY: all run test asan fuzz clean guest chaos
all: $(BUILD)/rackvm guest

include guest/guest.mk
include tests/images/images.mk
include bench/bench.mk

# --- release build -------------------------------------------------------
REL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS) $(CLI_SRCS)) \
            $(BUILD)/obj/src/cli/bundled_guest.o
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -c $< -o $@
$(BUILD)/obj/src/cli/bundled_guest.o: src/cli/bundled_guest.S $(GUEST_ELF)
	@mkdir -p $(dir $@)
	$(CC) -c -DGUEST_ELF='"$(GUEST_ELF)"' $< -o $@
$(BUILD)/rackvm: $(REL_OBJS)
	$(CC) $(CFLAGS_RELEASE) -o $@ $^ $(LDLIBS)

# --- sanitizer build (tests) ---------------------------------------------
ASAN_LIB_OBJS := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(LIB_SRCS))
ASAN_CLI_OBJS := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(CLI_SRCS)) \
                 $(BUILD)/obj/src/cli/bundled_guest.o
ASAN_UNIT_OBJS := $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(UNIT_SRCS))
$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_ASAN) -c $< -o $@
$(BUILD)/asan/rackvm: $(ASAN_LIB_OBJS) $(ASAN_CLI_OBJS)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LDLIBS)
$(BUILD)/asan/unit-tests: $(ASAN_LIB_OBJS) $(ASAN_UNIT_OBJS)
	$(CC) $(CFLAGS_ASAN) -o $@ $^ $(LDLIBS)
asan: $(BUILD)/asan/rackvm $(BUILD)/asan/unit-tests guest images \
      $(BUILD)/chaos-proxy

# --- the chaos suite's network fault proxy (tests/chaos) -------------------
$(BUILD)/chaos-proxy: tests/chaos/chaos_proxy.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $<
chaos: asan
	RACKVM=$(BUILD)/asan/rackvm CHAOS_PROXY=$(BUILD)/chaos-proxy \
		python3 tests/chaos/chaos.py --faults $${CHAOS_FAULTS:-200}

# --- fuzzing (clang + libFuzzer) ----------------------------------------
FUZZ_SRCS := $(wildcard tests/fuzz/*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -Iinclude \
               -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all
# The library is compiled once for all targets (instrumented for
# coverage, not linked with libFuzzer's main); each target links it.
FUZZ_LIB_OBJS := $(patsubst %.c,$(BUILD)/fuzz-obj/%.o,$(LIB_SRCS))
$(BUILD)/fuzz-obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)
fuzz: $(FUZZ_BINS)
.SECONDARY: $(FUZZ_LIB_OBJS)
-include $(FUZZ_LIB_OBJS:.o=.d)

# `make run` works on a fresh Debian machine: the build's packages first,
# then the build; where this machine's /dev/kvm cannot run the guest (none,
# no permission, broken), the guest boots inside the emulated test host.
run:
	@scripts/install-deps build
	@$(MAKE) --no-print-directory all
	@if reason=$$(scripts/kvm-usable $(BUILD)/rackvm 2>&1); then \
		$(BUILD)/rackvm run; \
	else \
		echo "make run: $$reason; booting the bundled guest inside the emulated test host (tests/rack/host)"; \
		scripts/install-deps rack && tests/rack/host run -- $(BUILD)/rackvm run; \
	fi

test:
	tests/run

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
