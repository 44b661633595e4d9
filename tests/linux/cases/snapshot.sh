#!/bin/sh
# snapshot.sh MIB SECONDS: a guest the host saves and resumes while it
# works (tests/integration/test_linux_snapshot.sh), unaware of it:
# memfill writes and checks MIB of memory for SECONDS seconds while a
# loop prints "beat N" once a second on the console and writes it to
# block N of /dev/vda through the page cache, synced.  At the end: the
# memory intact, every beat's block read back from the device (not the
# cache), and the clock still going forward.
. /lib/rackvm.sh

mib=$1 secs=$2
memfill "$mib" "${secs}s" > /tmp/fill.out &
fill=$!
start=$(cut -d' ' -f1 /proc/uptime)
n=0
while kill -0 "$fill" 2> /dev/null; do
	echo "beat $n"
	printf 'beat %08d\n' "$n" |
		dd of=/dev/vda bs=512 seek="$n" conv=notrunc,fsync 2> /dev/null
	n=$((n + 1))
	sleep 1
done
wait "$fill"
check memory_intact grep -q "^memfill: done mib=$mib .* bad=0 " /tmp/fill.out
note "$(tail -n 1 /tmp/fill.out)"
check_beats_read_back "$n"
end=$(cut -d' ' -f1 /proc/uptime)
check clock_went_forward awk -v a="$start" -v b="$end" 'BEGIN { exit !(b > a) }'
note "beats=$n uptime=$end"
