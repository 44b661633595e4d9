#!/usr/bin/env bash
# Peer cross-check of the bundled guest's virtio drivers: the same guest
# image drives QEMU's own virtio-mmio devices (microvm), so a driver bug
# shows up here without rackvm's device side being involved.
#
# QEMU facts this relies on (QEMU 7.2):
#   - virtio-mmio transports are legacy (version 1) unless
#     "-global virtio-mmio.force-legacy=false"; the guest refuses legacy.
#   - microvm appends "virtio_mmio.device=512@0xfeb00e00:12" style entries
#     to the command line (auto-kernel-cmdline) only without ACPI, hence
#     "-M microvm,acpi=off".
#
# isa-debug-exit at 0xf4: QEMU exits 1 when the guest passes, 3 when it
# fails.
source "$(dirname "$0")/lib.sh"

QEMU=qemu-system-x86_64
TIMEOUT=180

if ! command -v "$QEMU" > /dev/null 2>&1; then
	skip virtio_qemu "$QEMU not installed"
	exit 0
fi
if ! have_kvm; then
	skip virtio_qemu "/dev/kvm not usable"
	exit 0
fi
if [ ! -f "$GUEST_ELF" ]; then
	fail virtio_qemu "no guest image at $GUEST_ELF (make guest)"
	exit 0
fi

DISK="$TEST_TMP/disk.img"
SERIAL=rackvm-serial-42
OPS=512
SEED=1234

# boot NAME CMDLINE [QEMU ARGS...]: output in $out, status in $status.
boot() {
	local name=$1 cmdline=$2
	shift 2
	out="$TEST_TMP/$name.out"
	run_cmd "$TIMEOUT" "$out" "$QEMU" -M microvm,acpi=off -enable-kvm \
		-cpu host -m 256 -nodefaults -no-user-config -nographic \
		-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-global virtio-mmio.force-legacy=false \
		-kernel "$GUEST_ELF" -append "$cmdline" "$@"
}

disk_args() {
	echo -drive "id=d0,file=$DISK,format=raw,if=none$1" \
		-device "virtio-blk-device,drive=d0,serial=$SERIAL"
}

passed() { [ "$status" -eq 1 ]; }
failed() { [ "$status" -eq 3 ]; }
has() { grep -Eq -- "$1" "$out"; }
field() { grep -m1 '^result: ' "$out" | grep -o " $1=[^ ]*" | cut -d= -f2; }

truncate -s 64M "$DISK"

# shellcheck disable=SC2046
boot verify "blkbench mode=verify ops=$OPS seed=$SEED depth=16" $(disk_args)
check virtio_qemu_blk_verify eval 'passed &&
	has "^virtio: virtio_mmio\.device=[0-9]+@0x[0-9a-f]+:[0-9]+: device 2 version 2 " &&
	has "^result: blkbench mode=verify ops=$OPS seconds=[0-9.]+ iops=[1-9][0-9]* mb_per_s=[0-9.]+ .* valid=$OPS sum=0x[0-9a-f]{16} "'
verify_sum=$(field sum)

# The host's view of what the guest wrote: every block's header, words
# and checksum, and the sum of the checksums, recomputed here.
out="$TEST_TMP/hostcheck.out"
python3 - "$DISK" "$OPS" "$SEED" 4096 > "$out" 2>&1 <<'EOF'
import struct, sys
path, ops, seed, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
M = (1 << 64) - 1
GOLDEN = 0x9e3779b97f4a7c15
def splitmix(x):
    x = (x + GOLDEN) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
total = 0
with open(path, "rb") as f:
    for b in range(ops):
        f.seek(b * bs)
        w = struct.unpack("<%dQ" % (bs // 8), f.read(bs))
        assert w[0] == 0x6b626d766b636172, "block %d: magic %x" % (b, w[0])
        assert w[1] == b and w[2] == seed, "block %d: header %r" % (b, w[1:3])
        c = 0xcbf29ce484222325
        for x in w[:-1]:
            c = ((c ^ x) * 0x100000001b3) & M
        assert w[-1] == c, "block %d: checksum" % b
        if b in (0, 1, ops // 2, ops - 1):
            for i in range(3, bs // 8 - 1):
                want = splitmix(((seed << 32 ^ b * GOLDEN) + i) & M)
                assert w[i] == want, "block %d word %d" % (b, i)
        total = (total + w[-1]) & M
    f.seek(ops * bs)
    assert f.read(bs) == bytes(bs), "block %d (not written) is not zero" % ops
print("sum=0x%016x" % total)
EOF
check virtio_qemu_blk_host_image eval '[ -n "$verify_sum" ] &&
	grep -qx "sum=$verify_sum" "$out" &&
	[ "$(od -An -c -N8 "$DISK" | tr -d " ")" = "rackvmbk" ]'

# shellcheck disable=SC2046
boot seqread "blkbench mode=seqread ops=$OPS" $(disk_args)
check virtio_qemu_blk_seqread eval 'passed &&
	has "^result: blkbench mode=seqread ops=$OPS seconds=[0-9.]+ iops=[1-9][0-9]* mb_per_s=[0-9.]+ .* valid=$OPS sum=$verify_sum "'

# Random reads within the written span: every block must check out.
# shellcheck disable=SC2046
boot randread "blkbench mode=randread ops=4000 span=$OPS seed=9" $(disk_args)
check virtio_qemu_blk_randread eval 'passed &&
	has "^result: blkbench mode=randread ops=4000 seconds=[0-9.]+ iops=[1-9][0-9]* mb_per_s=[0-9.]+ .* valid=4000 "'

# Random writes beyond the verified span, then their blocks read back.
# shellcheck disable=SC2046
boot randwrite "blkbench mode=randwrite ops=1000 span=4096 seed=$SEED" $(disk_args)
check virtio_qemu_blk_randwrite eval 'passed &&
	has "^result: blkbench mode=randwrite ops=1000 seconds=[0-9.]+ iops=[1-9][0-9]* "'

# shellcheck disable=SC2046
boot blkid "blkid expect=$SERIAL" $(disk_args)
check virtio_qemu_blk_get_id eval 'passed &&
	has "^result: blkid id=$SERIAL capacity=131072 blk_size=512 ro=0 flush=1 write_zeroes=ok discard=ok$"'

# shellcheck disable=SC2046
boot blkro "blkro" $(disk_args ",readonly=on")
check virtio_qemu_blk_readonly eval 'passed &&
	has "^result: blkro ro=1 write_status=(IOERR|UNSUPP) read_status=OK$"'

boot legacy "blkbench mode=seqread ops=1" $(disk_args) \
	-global virtio-mmio.force-legacy=true
check virtio_qemu_refuses_legacy eval 'failed &&
	has "legacy virtio-mmio \(version 1\) is not supported"'

boot rng "rng bytes=4096" -device virtio-rng-device
check virtio_qemu_rng eval 'passed &&
	has "^result: rng bytes=4096 reads=2 requests=[1-9][0-9]* "'

console="$TEST_TMP/vconsole.txt"
boot vconsole "vconsole word=peer-check" -device virtio-serial-device \
	-chardev "file,id=c0,path=$console" -device virtconsole,chardev=c0
check virtio_qemu_console eval 'passed && has "^result: vconsole wrote=" &&
	grep -qx "rackvm guest virtio-console: peer-check" "$console"'

# Host to guest: a pipe chardev (QEMU 7.2's file chardev has no input).
fifo="$TEST_TMP/vcpipe"
mkfifo "$fifo.in" "$fifo.out"
timeout 60 cat "$fifo.out" > "$TEST_TMP/vcpipe.got" &
reader=$!
timeout 60 sh -c 'echo from-the-host > "$1"' sh "$fifo.in" &
writer=$!
boot vconsole_echo "vconsole word=echo echo=1" -device virtio-serial-device \
	-chardev "pipe,id=c0,path=$fifo" -device virtconsole,chardev=c0
wait "$reader" "$writer" 2> /dev/null
check virtio_qemu_console_input eval 'passed &&
	has "^result: vconsole wrote=[0-9]+ read=from-the-host$" &&
	grep -qx "rackvm guest virtio-console: echo" "$TEST_TMP/vcpipe.got"'

# Several devices at once: each driver finds its own.
# shellcheck disable=SC2046
boot multi "blkbench mode=seqread ops=64" $(disk_args) \
	-device virtio-rng-device -device virtio-serial-device
check virtio_qemu_multi_device eval 'passed &&
	has "device 2 version 2" && has "device 4 version 2" &&
	has "device 3 version 2" &&
	has "^result: blkbench mode=seqread ops=64 .* valid=64 "'
