# Benchmarks (bench/): included by the top-level Makefile.
#   make bench-bins   the standalone benchmark programs in build/bench/
#   make bench        those, rackvm and the guest, then runs bench/boot and
#                     bench/blk (virtio-blk against QEMU's) and bench/wss
#                     (working-set estimation: accuracy, guest slowdown,
#                     estimator CPU)
#   make farmem       bench/farmem: the guest's kmeans with part of its
#                     memory remote (rackvm run --mem-local) on each page
#                     store, against the userfaultfd and loopback TCP
#                     floor measured by bench/farmem_floor.c; minutes,
#                     hence not part of `make bench`
#   make migrate      bench/migrate: live migration (each mode this build
#                     takes) and snapshot restore against QEMU's, the
#                     same guest on loopback; ~10 minutes in the emulated
#                     test host, hence not part of `make bench`
#   make linux-boot   bench/linux-boot: Debian's cloud kernel to a busybox
#                     /init under rackvm (PVH, bzImage) and QEMU (microvm,
#                     pc); minutes in the emulated test host, where it runs
#                     unless this machine's KVM boots Linux, hence not
#                     part of `make bench`
# Where they run: BENCH_FLAGS="--host emulated" (or direct; default auto)
# is passed to every benchmark (see bench/lib.sh).
BENCH_BINS := $(BUILD)/bench/pio_bare $(BUILD)/bench/farmem_floor \
              $(BUILD)/bench/memd_flood $(BUILD)/bench/seal_cost \
              $(BUILD)/bench/api_lat

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $<

# bench/api's client of the control API: libcurl.
$(BUILD)/bench/api_lat: bench/api_lat.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $< -lcurl

# Two threads: the fault (or request) and the one serving it.
$(BUILD)/bench/farmem_floor: bench/farmem_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $< -lpthread

# memd's page index under crafted page numbers: links the library, and
# the memd tests' helpers for the handshake.
$(BUILD)/bench/memd_flood: bench/memd_flood.c tests/unit/memd_test_util.c \
		$(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -Itests/unit -o $@ \
		$(filter %.c %.o,$^) $(LDLIBS)

# What sealing a page costs (src/remote/page_seal.c, and libsodium).
$(BUILD)/bench/seal_cost: bench/seal_cost.c $(BUILD)/obj/src/remote/page_seal.o \
		$(BUILD)/obj/src/util/errmsg.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $(filter %.c %.o,$^) \
		-lsodium -lxxhash

BENCH_FLAGS ?=
BENCH_ENV := RACKVM=$(BUILD)/rackvm GUEST_ELF=$(GUEST_ELF)

.PHONY: bench bench-bins farmem migrate linux-boot
bench-bins: $(BENCH_BINS)

bench: $(BUILD)/rackvm guest $(BENCH_BINS)
	$(BENCH_ENV) PIO_BARE=$(BUILD)/bench/pio_bare bench/boot $(BENCH_FLAGS)
	$(BENCH_ENV) bench/blk $(BENCH_FLAGS)
	$(BENCH_ENV) bench/wss $(BENCH_FLAGS)

farmem: $(BUILD)/rackvm guest $(BUILD)/bench/farmem_floor $(BUILD)/bench/seal_cost
	$(BENCH_ENV) FLOOR=$(BUILD)/bench/farmem_floor \
		SEAL_COST=$(BUILD)/bench/seal_cost bench/farmem $(BENCH_FLAGS)

migrate: $(BUILD)/rackvm guest
	$(BENCH_ENV) bench/migrate $(BENCH_FLAGS)

linux-boot: $(BUILD)/rackvm
	RACKVM=$(BUILD)/rackvm bench/linux-boot $(BENCH_FLAGS)
