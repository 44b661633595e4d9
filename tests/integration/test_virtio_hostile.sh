#!/usr/bin/env bash
# Hostile guest: the bundled guest's "hostile" workload misbehaves towards
# rackvm's virtio-blk device on purpose (descriptors outside RAM and in
# the MMIO hole, loops, chains longer than the queue, lengths summing past
# 4 GiB, indexes out of range, bad indirect tables, a used ring the device
# cannot write, an available index too far ahead, bad requests, config
# space writes; guest/workloads/hostile.c lists them).  For each case:
#   - the guest sees what virtio 1.2 asks for (DEVICE_NEEDS_RESET, or an
#     error status, or the write ignored), the entropy device still
#     answers, and after a reset the disk reads and writes again;
#   - rackvm (the ASan/UBSan build) exits 0 with no sanitizer report, so
#     it never touched host memory outside the guest's;
#   - the image file is byte for byte what it was;
#   - rackvm's log names the device that stopped and the reason.
. "$(dirname "$0")/lib.sh"

CASES="desc_outside desc_hole desc_wrap desc_edge loop chain_long
	indirect_long len_overflow head_index next_index indirect_len
	indirect_nested used_ro used_edge avail_jump bad_request config_write"

if ! have_kvm; then
	skip virtio_hostile "/dev/kvm is missing or not accessible"
	exit 0
fi

out=$TEST_TMP/out
img=$TEST_TMP/hostile.img
run_cmd 30 "$out" "$RACKVM" run --cmdline nosuchworkload
if ! grep -q '^  hostile ' "$out"; then
	skip virtio_hostile "the bundled guest has no 'hostile' workload"
	exit 0
fi

# Random contents in the blocks the guest reads, compares and rewrites.
head -c 1M /dev/urandom > "$img"
truncate -s 16M "$img"
sum_before=$(sha256sum < "$img")

sanitizer_report() {
	grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: .*Sanitizer' "$1"
}

# hostile NAME CASE [RACKVM ARGS...]
hostile() {
	local name=$1 case=$2 want
	shift 2
	out=$TEST_TMP/$name.out
	run_cmd 120 "$out" "$RACKVM" run --disk "$img" --rng "$@" \
		--cmdline "hostile case=$case"
	if sanitizer_report "$out"; then
		fail "$name" "sanitizer report: $(grep -m2 -E 'ERROR:|runtime error:' "$out" | tr '\n' '|')"
		return
	fi
	case $case in
	bad_request) want=error_status ;;
	config_write) want=ignored ;;
	*) want=needs_reset ;;
	esac
	check "$name" bash -c "[ $status -eq 0 ] &&
		grep -q '^result: hostile case=$case outcome=$want rng=ok reinit=ok' '$out'"
	# and rackvm's log says which device stopped, and why
	if [ "$want" = needs_reset ]; then
		check "${name}_logged" grep -q '^virtio-blk0: the device stopped and needs a reset ([a-z]' "$out"
	fi
}

for c in $CASES; do
	hostile "virtio_hostile_$c" "$c"
done

# 0xffffffff-byte segments need 4 GiB of RAM in one piece: 8G gives
# [4 GiB, 9 GiB).  The memfd is sparse; nothing touches that memory.
hostile virtio_hostile_len_overflow_4g len_overflow --mem 8G
if [ -f "$out" ] && ! grep -q '0xffffffff-byte segments' "$out"; then
	fail virtio_hostile_len_overflow_4g_segments "the guest did not use 0xffffffff-byte segments"
fi

out=$TEST_TMP/sum
check virtio_hostile_image_unchanged [ "$(sha256sum < "$img")" = "$sum_before" ]
exit 0
