#!/bin/sh
# hops.sh MIB: a guest the hosts migrate from one to another while it
# works (tests/integration/test_rack_migrate.sh), unaware of it, for as
# long as the hosts need: it stops when they write "stop" to block 4096
# of /dev/vda.  Meanwhile:
#   - memfill fills MIB/2 MiB once at the start and checks it at the end
#     (data that crossed every hop);
#   - memfill runs again and again on another MIB/2 MiB, each run writing
#     and checking it for 3 s, then a second's rest (memory written while
#     a hop happens, and CPU left for the host's migration thread);
#   - a loop prints "beat N" once a second on the console and writes it
#     to block N of /dev/vda through the page cache, synced.
# At the end: every run's memory intact, every beat's block read back
# from the device (not the cache), and the clock still going forward.
. /lib/rackvm.sh

half=$(($1 / 2))
stop_block=4096
memfill "$half" 1 /tmp/hold > /tmp/held.out &
held=$!
(
	while [ ! -e /tmp/hold ]; do
		memfill "$half" 3s >> /tmp/runs.out || echo "memfill: run failed" >> /tmp/runs.out
		sleep 1
	done
) &
runs=$!
start=$(cut -d' ' -f1 /proc/uptime)
n=0
while :; do
	echo "beat $n"
	printf 'beat %08d\n' "$n" |
		dd of=/dev/vda bs=512 seek="$n" conv=notrunc,fsync 2> /dev/null
	n=$((n + 1))
	[ "$(dd if=/dev/vda bs=512 skip=$stop_block count=1 iflag=direct 2> /dev/null |
		head -c 4)" = stop ] && break
	[ "$n" -lt "$stop_block" ] || break
	sleep 1
done
echo "# stop read after beat $((n - 1))"
: > /tmp/hold
wait "$held"
wait "$runs"
check memory_kept_across_hops grep -q "^memfill: done mib=$half .* bad=0 " /tmp/held.out
note "$(tail -n 1 /tmp/held.out)"
total=$(grep -c '^memfill: done ' /tmp/runs.out)
clean=$(grep -c '^memfill: done .* bad=0 ' /tmp/runs.out)
if [ "$total" -gt 0 ] && [ "$total" -eq "$clean" ] &&
   ! grep -q 'run failed' /tmp/runs.out; then
	ok memory_written_during_hops
else
	fail memory_written_during_hops "$clean of $total runs clean: $(grep -m1 'bad page\|failed' /tmp/runs.out)"
fi
note "memfill runs=$total"
check_beats_read_back "$n"
end=$(cut -d' ' -f1 /proc/uptime)
check clock_went_forward awk -v a="$start" -v b="$end" 'BEGIN { exit !(b > a) }'
note "beats=$n uptime=$end"
