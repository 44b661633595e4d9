#!/bin/sh
# idle.sh MIB WAIT_S HOLD_S: a guest that used MIB of memory once and then idles,
# as tests/integration/test_linux_hostd.sh drives it under hostd: memfill
# writes and checks MIB once ("# freed" when that memory is free again, so
# free page reporting hands it back), then the guest does nothing while
# hostd's balancer, seeing it idle, asks its balloon for memory: Linux's
# own virtio_balloon driver inflates (counted by /proc/vmstat's
# balloon_inflate/balloon_deflate: with deflate-on-oom, which hostd asks
# for, Linux leaves MemTotal alone).  Waits at most WAIT_S seconds for
# that, reports how far it went, idles HOLD_S seconds more (the host
# watches its memory fall) and powers off.
. /lib/rackvm.sh

mib=$1 wait_s=$2 hold_s=${3:-0}
memtotal() { awk '/^MemTotal:/ { print $2 }' /proc/meminfo; }
# ballooned_kib: what the balloon holds now.
ballooned_kib() {
	awk '/^balloon_inflate / { i = $2 } /^balloon_deflate / { d = $2 }
	     END { print (i - d) * 4 }' /proc/vmstat
}
ballooned_at_least() { [ "$(ballooned_kib)" -ge "$1" ]; }

# the most the balloon held so far: hostd may inflate it while memfill
# runs (the guest is busy then, not idle) and let it go when the budget
# frees up, so it is watched throughout, not only at the end
most=/tmp/balloon.most
echo 0 > "$most"
(
	while :; do
		b=$(ballooned_kib)
		[ "$b" -gt "$(cat "$most")" ] && echo "$b" > "$most"
		sleep 0.5
	done
) &
watcher=$!
held_at_least() { [ "$(cat "$most")" -ge "$1" ]; }

total0=$(memtotal)
note "memtotal_kib=$total0"
memfill "$mib" 1 > /tmp/fill.out
check fill_intact grep -q "^memfill: done mib=$mib passes=1 bad=0 " /tmp/fill.out
note "freed"
if wait_for "$wait_s" held_at_least $((64 * 1024)); then
	ok balloon_inflated_by_hostd
else
	fail balloon_inflated_by_hostd "the balloon held at most $(cat "$most") kB in $wait_s s after the fill"
fi
note "ballooned_kib=$(ballooned_kib) most_kib=$(cat "$most")"
sleep "$hold_s"
kill "$watcher" 2> /dev/null
