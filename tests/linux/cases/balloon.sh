#!/bin/sh
# balloon.sh HOLD_MIB BALLOON_MIB: Linux's virtio_balloon driver follows
# the size the host sets (rackvm ctl --socket SOCK balloon SIZE), as
# tests/integration/test_linux_memory.sh drives it:
#   1. the guest touches nearly all its free memory once (so the host has
#      it resident), then keeps HOLD_MIB filled (memfill ... HOLD) and
#      prints "# balloon ready";
#   2. the host inflates the balloon to BALLOON_MIB: MemTotal falls by
#      that much, the guest prints "# inflated ...";
#   3. the host deflates it to 0: MemTotal comes back, the held memory
#      still reads back right, and BALLOON_MIB can be filled again.
. /lib/rackvm.sh

hold=$1 balloon=$2
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
memavail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
memtotal_at_most() { [ "$(memtotal)" -le "$1" ]; }
memtotal_at_least() { [ "$(memtotal)" -ge "$1" ]; }

if ls -d /sys/bus/virtio/drivers/virtio_balloon/virtio* > /dev/null 2>&1; then
	ok driver_bound
else
	fail driver_bound "no device bound to virtio_balloon: $(ls /sys/bus/virtio/devices/ 2> /dev/null | tr '\n' ' ')"
	exit 0
fi
total0=$(memtotal)
note "memtotal_kib=$total0"

# every free page once through the host's memory, then freed again
touch_mib=$(($(memavail) / 1024 - hold - 48))
memfill "$touch_mib" 1 > /tmp/touch.out
check touch_all grep -q "bad=0 " /tmp/touch.out
memfill "$hold" 1 /tmp/go > /tmp/hold.out &
holder=$!
if ! wait_for 120 grep -q '^memfill: filled' /tmp/hold.out; then
	fail hold "memfill $hold did not fill: $(tr '\n' '|' < /tmp/hold.out)"
	exit 0
fi
note "balloon ready touched_mib=$touch_mib"

# within 4 MiB of the exact figure: Linux adjusts MemTotal page by page
if wait_for 180 memtotal_at_most $((total0 - balloon * 1024 + 4096)); then
	ok inflate_lowers_memtotal
else
	fail inflate_lowers_memtotal "MemTotal $(memtotal) kB, want at most $((total0 - balloon * 1024 + 4096)) kB"
fi
note "inflated memtotal_kib=$(memtotal) memfree_kib=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo)"

if wait_for 180 memtotal_at_least $((total0 - 1024)); then
	ok deflate_restores_memtotal
else
	fail deflate_restores_memtotal "MemTotal $(memtotal) kB, want $total0 kB"
fi
touch /tmp/go
wait "$holder"
check held_data_intact grep -q "^memfill: done mib=$hold passes=1 bad=0 " /tmp/hold.out
memfill "$balloon" 1 > /tmp/again.out
check returned_memory_usable grep -q "^memfill: done mib=$balloon passes=1 bad=0 " /tmp/again.out
