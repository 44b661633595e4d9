#!/bin/sh
# devices.sh NDEV CPUS TOKEN: Linux's own drivers on rackvm's virtio
# devices, started as tests/integration/test_linux_devices.sh does:
#   --disk A (writable, >= 8 MiB) --disk B,ro --rng --vconsole FILE,in=FIFO
# so vda, vdb, the rng and the console are virtio-mmio devices 0-3.
#   NDEV   how many virtio-mmio devices rackvm gave the guest
#   CPUS   how many vCPUs
#   TOKEN  a word the host looks for on the console device, both ways
# Lines for the host: "# vda_sha256=H" (what was written to vda's first
# 4 MiB), "# vdb_sha256=H" (vdb's first MiB as read), and
# "# hvc0 ready" before waiting for "TOKEN-in" on /dev/hvc0.
. /lib/rackvm.sh

ndev=$1 cpus=$2 token=$3
# where the time goes: guest uptime at each section
stamp() { note "t=$(cut -d' ' -f1 /proc/uptime) $1"; }
stamp start

# --- the devices come from the ACPI DSDT ----------------------------------
# Debian's kernel has no VIRTIO_MMIO_CMDLINE_DEVICES: every device bound
# here was found through its LNRO0005 description.
bound=0
for d in /sys/bus/platform/devices/LNRO0005:*; do
	[ "$(basename "$(readlink "$d/driver" 2> /dev/null)")" = virtio-mmio ] &&
		bound=$((bound + 1))
done
if [ "$bound" -eq "$ndev" ]; then
	ok acpi_virtio_bound
else
	fail acpi_virtio_bound "want $ndev LNRO0005 devices bound to virtio-mmio, got $bound: $(ls /sys/bus/platform/devices/ | tr '\n' ' ')"
fi
# Each on its GSI (5 + index), edge-triggered, as the DSDT says.
irqs_ok=1
i=0
while [ "$i" -lt "$ndev" ]; do
	if ! grep -Eq "IO-APIC +$((5 + i))-edge +virtio" /proc/interrupts; then
		irqs_ok=0
		fail acpi_virtio_irq "no 'IO-APIC $((5 + i))-edge virtio' in /proc/interrupts: $(grep -E 'virtio|IO-APIC' /proc/interrupts | tr -s ' ' | tr '\n' '|')"
	fi
	i=$((i + 1))
done
[ "$irqs_ok" = 1 ] && ok acpi_virtio_irq
if [ "$(nproc)" = "$cpus" ]; then
	ok cpus
else
	fail cpus "want $cpus CPUs, nproc says $(nproc)"
fi

# --- virtio-blk --------------------------------------------------------------
stamp blk
if [ -b /dev/vda ] && [ -b /dev/vdb ]; then
	ok blk_devices
else
	fail blk_devices "no /dev/vda and /dev/vdb: $(ls /dev | tr '\n' ' ')"
fi
check blk_vda_writable [ "$(cat /sys/block/vda/ro)" = 0 ]
check blk_vdb_read_only [ "$(cat /sys/block/vdb/ro)" = 1 ]

# 4 MiB of random data through the page cache, flushed, dropped from the
# cache and read back from the device.
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2> /dev/null
want=$(sha256sum < /tmp/pattern | cut -d' ' -f1)
note "vda_sha256=$want"
if dd if=/tmp/pattern of=/dev/vda bs=1M conv=fsync 2> /tmp/dd.err; then
	ok blk_write
else
	fail blk_write "dd to /dev/vda: $(tr '\n' '|' < /tmp/dd.err)"
fi
sync
echo 3 > /proc/sys/vm/drop_caches
got=$(dd if=/dev/vda bs=1M count=4 2> /dev/null | sha256sum | cut -d' ' -f1)
if [ "$got" = "$want" ]; then
	ok blk_read_back
else
	fail blk_read_back "read back $got, wrote $want"
fi
# Direct I/O in 4 KiB requests, 8 of them in flight from separate
# writers: the pattern's first 2 MiB at 4 MiB.
dd if=/tmp/pattern of=/tmp/pattern2 bs=1M count=2 2> /dev/null
want2=$(sha256sum < /tmp/pattern2 | cut -d' ' -f1)
i=0
while [ "$i" -lt 8 ]; do
	dd if=/tmp/pattern2 of=/dev/vda bs=4K count=64 skip=$((i * 64)) \
		seek=$((1024 + i * 64)) oflag=direct conv=notrunc 2> /dev/null &
	i=$((i + 1))
done
wait
got=$(dd if=/dev/vda bs=1M skip=4 count=2 iflag=direct 2> /dev/null |
	sha256sum | cut -d' ' -f1)
if [ "$got" = "$want2" ]; then
	ok blk_direct_parallel
else
	fail blk_direct_parallel "read back $got at 4 MiB, wrote $want2"
fi
note "vda_direct_sha256=$want2"

# Discard: rackvm punches the range out of the image, so it reads zeros.
note "vda: write cache $(cat /sys/block/vda/queue/write_cache), discard up to $(cat /sys/block/vda/queue/discard_max_bytes) bytes"
dd if=/tmp/pattern of=/dev/vda bs=1M count=1 seek=8 oflag=direct 2> /dev/null
if blkdiscard -o $((8 << 20)) -l $((1 << 20)) /dev/vda 2> /tmp/discard.err; then
	zeros=$(dd if=/dev/zero bs=1M count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
	got=$(dd if=/dev/vda bs=1M skip=8 count=1 iflag=direct 2> /dev/null |
		sha256sum | cut -d' ' -f1)
	if [ "$got" = "$zeros" ]; then
		ok blk_discard
	else
		fail blk_discard "the discarded MiB at 8 MiB does not read as zeros"
	fi
else
	fail blk_discard "blkdiscard: $(tr '\n' ' ' < /tmp/discard.err)"
fi

# The driver lets go of the device (a device reset) and takes it again
# (a new negotiation): the disk must come back with the same data.
dev=$(basename "$(readlink /sys/block/vda/device)")
stamp blk_rebind
echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/unbind
echo "$dev" > /sys/bus/virtio/drivers/virtio_blk/bind
wait_for 10 test -b /dev/vda
got=$(dd if=/dev/vda bs=1M count=4 iflag=direct 2> /dev/null | sha256sum | cut -d' ' -f1)
if [ "$got" = "$want" ]; then
	ok blk_rebind
else
	fail blk_rebind "after $dev was unbound and bound again, vda reads $got, want $want"
fi

got=$(dd if=/dev/vdb bs=1M count=1 2> /dev/null | sha256sum | cut -d' ' -f1)
note "vdb_sha256=$got"
if dd if=/dev/zero of=/dev/vdb bs=4K count=1 conv=fsync 2> /tmp/dd.err; then
	fail blk_ro_write_refused "a write to the read-only /dev/vdb succeeded"
else
	ok blk_ro_write_refused
	note "vdb write: $(tr '\n' ' ' < /tmp/dd.err)"
fi

# --- virtio-rng --------------------------------------------------------------
stamp rng
current=$(cat /sys/class/misc/hw_random/rng_current 2> /dev/null)
case $current in
virtio*) ok rng_current ;;
*) fail rng_current "rng_current is '$current', available: $(cat /sys/class/misc/hw_random/rng_available 2> /dev/null)" ;;
esac
bytes=$(dd if=/dev/hwrng bs=64 count=1 2> /dev/null | od -An -v -tx1 | tr -s ' \n' '\n' | sed '/^$/d')
nbytes=$(echo "$bytes" | wc -l)
distinct=$(echo "$bytes" | sort -u | wc -l)
if [ "$nbytes" -eq 64 ] && [ "$distinct" -gt 16 ]; then
	ok rng_bytes
else
	fail rng_bytes "read $nbytes bytes from /dev/hwrng, $distinct distinct values"
fi
# the hw_random core asks for a few dozen bytes at a time: 4 KiB is
# already ~100 requests
n=$(dd if=/dev/hwrng bs=4K count=1 iflag=fullblock 2> /dev/null | wc -c)
check rng_4k [ "$n" -eq 4096 ]

# --- virtio-console ----------------------------------------------------------
stamp console
if [ -c /dev/hvc0 ]; then
	ok console_hvc0
	# no echo of what the host sends (as many writes back, slowly);
	# termios lasts only while the tty is open
	exec 3< /dev/hvc0
	stty -echo <&3
	echo "$token-out" > /dev/hvc0 && ok console_write
	# 2000 lines more (~60 KiB), in a few large writes (a line-buffered
	# writer costs a virtqueue round trip per line), counted by the host
	seq 1 2000 | sed "s/^/$token-line-/" > /tmp/lines
	cat /tmp/lines > /dev/hvc0 && ok console_write_bulk
	note "hvc0 ready"
	line=
	read -r -t 300 line <&3
	line=$(echo "$line" | tr -d '\r')
	if [ "$line" = "$token-in" ]; then
		ok console_read
	else
		fail console_read "read '$line' from /dev/hvc0, want '$token-in'"
	fi
	# then the host's 2000 lines, as one write into its FIFO
	got=$(timeout 300 head -n 2000 <&3 | tr -d '\r' | sha256sum | cut -d' ' -f1)
	exec 3<&-
	want=$(seq 1 2000 | sed "s/^/$token-in-/" | sha256sum | cut -d' ' -f1)
	if [ "$got" = "$want" ]; then
		ok console_read_bulk
	else
		fail console_read_bulk "the 2000 lines read from /dev/hvc0 hash to $got, want $want"
	fi
else
	fail console_hvc0 "no /dev/hvc0"
fi
stamp end
exit 0
