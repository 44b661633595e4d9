#!/bin/sh
# idle.sh MIB WAIT_S: a guest that used MIB of memory once and then idles,
# as tests/integration/test_linux_hostd.sh drives it under hostd: memfill
# writes and checks MIB once ("# freed" when that memory is free again, so
# free page reporting hands it back), then the guest does nothing while
# hostd's balancer, seeing it idle, asks its balloon for memory: Linux's
# own virtio_balloon driver inflates (MemTotal falls).  Waits at most
# WAIT_S seconds for that, then reports how far it went and powers off.
. /lib/rackvm.sh

mib=$1 wait_s=$2
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
# ballooned_at_least KIB: MemTotal fell by KIB from the start.
ballooned_at_least() { [ $((total0 - $(memtotal))) -ge "$1" ]; }

total0=$(memtotal)
note "memtotal_kib=$total0"
memfill "$mib" 1 > /tmp/fill.out
check fill_intact grep -q "^memfill: done mib=$mib passes=1 bad=0 " /tmp/fill.out
note "freed"
if wait_for "$wait_s" ballooned_at_least $((64 * 1024)); then
	ok balloon_inflated_by_hostd
else
	fail balloon_inflated_by_hostd "MemTotal $(memtotal) kB of $total0 kB after $wait_s s"
fi
note "ballooned_kib=$((total0 - $(memtotal)))"
