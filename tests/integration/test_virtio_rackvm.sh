#!/usr/bin/env bash
# rackvm's virtio-mmio devices (virtio-blk, virtio-rng) through the CLI:
# option checking, device setup and teardown on a real VM (ioeventfd,
# irqfd, I/O threads), and the bundled guest's virtio drivers against
# them when the guest has the workloads (blkid, blkbench, blkro, rng).
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out
img=$TEST_TMP/disk.img
truncate -s 16M "$img"

# --- options ---------------------------------------------------------------
run_cmd 10 "$out" "$RACKVM" run --disk "$img,rw"
check virtio_cli_rejects_bad_disk_flag bash -c "[ $status -eq 2 ] && grep -q \"invalid --disk flag 'rw'\" '$out'"

run_cmd 10 "$out" "$RACKVM" run --disk ""
check virtio_cli_rejects_empty_disk bash -c "[ $status -eq 2 ] && grep -q 'needs a file name' '$out'"

args=()
for i in $(seq 16); do args+=(--disk "$img"); done
run_cmd 10 "$out" "$RACKVM" run "${args[@]}" --rng
check virtio_cli_rejects_17_devices bash -c "[ $status -eq 2 ] && grep -q 'at most 16' '$out'"

if ! have_kvm; then
	skip virtio_guest_tests "no usable /dev/kvm"
	exit 0
fi

run_cmd 30 "$out" "$RACKVM" run --disk "$TEST_TMP/missing.img"
check virtio_missing_disk_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'disk .*missing.img: No such file' '$out'"

# 15 disks and an rng: every ioeventfd/irqfd is set up and torn down
args=()
for i in $(seq 15); do args+=(--disk "$img,ro"); done
run_cmd 60 "$out" "$RACKVM" run "${args[@]}" --rng --cmdline hello
check virtio_16_devices_boot_and_tear_down bash -c "[ $status -eq 0 ] && grep -q 'Hello from the rackvm guest' '$out'"

# --- the bundled guest's drivers -------------------------------------------
run_cmd 30 "$out" "$RACKVM" run --cmdline nosuchworkload
workloads=$(cat "$out")
for w in blkid blkbench blkro rng; do
	if ! grep -q "^  $w " <<< "$workloads"; then
		for t in blkid blkbench_write_verify blkbench_direct blkro rng; do
			skip "virtio_guest_$t" "the bundled guest has no '$w' workload yet"
		done
		exit 0
	fi
done

run_cmd 60 "$out" "$RACKVM" run --disk "$img" --rng --cmdline "blkid expect=disk.img"
check virtio_guest_blkid bash -c "[ $status -eq 0 ] && grep -q 'id=disk.img capacity=32768 blk_size=512 ro=0 flush=1' '$out'"

# what the guest was told is written is in the file, and reads back
run_cmd 120 "$out" "$RACKVM" run --disk "$img" --exit-stats --cmdline "blkbench ops=512 mode=seqwrite"
written=$(tr -d '\0' < "$img" | head -c 1 | wc -c)
# --exit-stats counts the device's side: every write is one completed
# request on queue 0 (plus the guest's identify and flush requests)
reqs=$(sed -n 's/^rackvm: virtio-blk0: kicks=[0-9]* interrupts=[0-9]* q0=\([0-9]*\)\/.*/\1/p' "$out")
check virtio_exit_stats_count_requests bash -c "[ '${reqs:-0}' -ge 512 ]"
run_cmd 120 "$TEST_TMP/verify" "$RACKVM" run --disk "$img" --cmdline "blkbench ops=512 mode=verify"
vstatus=$status
check virtio_guest_blkbench_write_verify bash -c "[ $status -eq 0 ] && [ $vstatus -eq 0 ] && [ $written -eq 1 ] && grep -q 'valid=512' '$TEST_TMP/verify'"

# O_DIRECT where the file system has it (tmpfs does not; the test host
# offers its scratch disk)
direct_img=${RACK_SCRATCH:-$PWD/build}/virtio-direct-test.img
truncate -s 16M "$direct_img"
run_cmd 120 "$out" "$RACKVM" run --disk "$direct_img,direct" --cmdline "blkbench ops=256 mode=randwrite"
if grep -q 'does not support O_DIRECT' "$out"; then
	skip virtio_guest_blkbench_direct "the build directory's file system has no O_DIRECT"
else
	check virtio_guest_blkbench_direct bash -c "[ $status -eq 0 ] && grep -q 'result: blkbench mode=randwrite ops=256' '$out'"
fi
rm -f "$direct_img"

cp "$img" "$TEST_TMP/before.img"
run_cmd 60 "$out" "$RACKVM" run --disk "$img,ro" --cmdline blkro
check virtio_guest_blkro bash -c "[ $status -eq 0 ] && grep -q 'write_status=IOERR' '$out' && cmp -s '$img' '$TEST_TMP/before.img'"

run_cmd 60 "$out" "$RACKVM" run --disk "$img" --rng --cmdline "rng bytes=4096"
check virtio_guest_rng bash -c "[ $status -eq 0 ] && grep -q 'result: rng bytes=4096' '$out'"
