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
BENCH_BINS := $(BUILD)/bench/pio_bare $(BUILD)/bench/farmem_floor

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $<

# Two threads: the fault (or request) and the one serving it.
$(BUILD)/bench/farmem_floor: bench/farmem_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $< -lpthread

.PHONY: bench bench-bins farmem
bench-bins: $(BENCH_BINS)

bench: $(BUILD)/rackvm guest $(BENCH_BINS)
	bench/boot
	bench/blk
	bench/wss

farmem: $(BUILD)/rackvm guest $(BUILD)/bench/farmem_floor
	RACKVM=$(BUILD)/rackvm GUEST_ELF=$(GUEST_ELF) \
		FLOOR=$(BUILD)/bench/farmem_floor bench/farmem
