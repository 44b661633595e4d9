#!/bin/sh
# page_reporting.sh: Linux's free page reporting through virtio_balloon
# (--balloon,free-page-reporting), as tests/integration/test_linux_memory.sh
# drives it:
#   1. the guest fills nearly all its free memory (memfill), prints
#      "# filling mib=M" before and "# freed" after, when memfill's memory
#      is free again: Linux reports it (in 2 MiB and larger blocks, after
#      its 2 s delay), the host punches it out and its RSS falls;
#   2. once the host has seen that, it sets a 16 MiB balloon as the signal
#      to go on: MemTotal falls;
#   3. the reported memory is filled and checked again: pages the host
#      punched come back zeroed and usable.
. /lib/rackvm.sh

memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
memtotal_at_most() { [ "$(memtotal)" -le "$1" ]; }

total0=$(memtotal)
note "memtotal_kib=$total0"
# VIRTIO_BALLOON_F_REPORTING is feature bit 5 (the 6th character)
dev=$(ls -d /sys/bus/virtio/drivers/virtio_balloon/virtio* 2> /dev/null | head -n 1)
if [ -n "$dev" ] && [ "$(cut -c6 "$dev/features")" = 1 ]; then
	ok negotiated
else
	fail negotiated "balloon device '$dev' features: $(cat "$dev/features" 2> /dev/null)"
fi
mib=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) / 1024 - 48))
note "filling mib=$mib"
memfill "$mib" 1 > /tmp/fill.out
check first_fill grep -q "^memfill: done mib=$mib passes=1 bad=0 " /tmp/fill.out
note "freed"
if wait_for 180 memtotal_at_most $((total0 - 16 * 1024 + 4096)); then
	ok go_signal
else
	fail go_signal "MemTotal $(memtotal) kB: the host never set the balloon"
fi
memfill "$mib" 2 > /tmp/again.out
check reported_memory_usable grep -q "^memfill: done mib=$mib passes=2 bad=0 " /tmp/again.out
