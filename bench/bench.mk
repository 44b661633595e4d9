# Benchmarks (bench/): included by the top-level Makefile.
#   make bench-bins   the standalone benchmark programs in build/bench/
#   make bench        those, rackvm and the guest, then runs bench/boot and
#                     bench/blk (virtio-blk against QEMU's) and bench/wss
#                     (working-set estimation: accuracy, guest slowdown,
#                     estimator CPU)
BENCH_BINS := $(BUILD)/bench/pio_bare

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS_RELEASE) -o $@ $<

.PHONY: bench bench-bins
bench-bins: $(BENCH_BINS)

bench: $(BUILD)/rackvm guest $(BENCH_BINS)
	bench/boot
	bench/blk
	bench/wss
