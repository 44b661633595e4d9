#!/usr/bin/env bash
# A Linux guest in userspace moved from one emulated host to another over
# the rack network, in each migration mode (MIGRATE_MODES, default
# "precopy postcopy hybrid"), unaware of it.
# One guest hops A to B, B to A, ... one hop per mode: host A (10.77.0.1)
# boots it (case hops.sh: memfill writing and checking 16 MiB while a
# beat a second goes to the console and to a disk whose image both hosts
# open, from a directory shared with both as shared storage is in a
# rack, until the last holder tells it to stop); the other host waits with rackvm run --incoming, and the holder
# migrates it there mid-work (PUT /vm/migrate).  What a user must see:
#   - at each hop the source ends "migrated to tcp:...", exit 0, and the
#     guest beats on the destination;
#   - the last holder finishes the case: memory intact, every beat's
#     block on the disk, its clock going forward; it powers off, exit 0;
#   - the consoles of every stretch, in order, hold every beat exactly
#     once, in order.
# tests/run runs this script on the machine itself (it starts two test
# hosts); each host runs tests/integration/rack_migrate_end.sh.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

log=$TEST_TMP/build-guest.log
if ! tests/linux/build-guest > "$log" 2>&1; then
	fail rack_migrate_guest_image "tests/linux/build-guest failed: $(tail -n 3 "$log" | tr '\n' '|')"
	exit 0
fi

# every mode, one hop each: a to b, b to a, a to b
MIGRATE_MODES=${MIGRATE_MODES:-precopy postcopy hybrid}

share=$TEST_TMP/share
mkdir -p "$share"
net=rack-mig-$$-$RANDOM
export MIGRATE_MODES RACK_RETRY_HUNG=1
timeout -k 10 1500 tests/rack/host run --quiet --net "$net" --addr 10.77.0.2/24 \
	--cpus 1 --name hostb --share "$share" -- \
	bash tests/integration/rack_migrate_end.sh b "$share" \
	< /dev/null > "$TEST_TMP/b.out" 2>&1 &
b_pid=$!
timeout -k 10 1500 tests/rack/host run --quiet --net "$net" --addr 10.77.0.1/24 \
	--cpus 1 --name hosta --share "$share" -- \
	bash tests/integration/rack_migrate_end.sh a "$share" \
	< /dev/null > "$TEST_TMP/a.out" 2>&1
a_status=$?
wait "$b_pid"
b_status=$?

# both hosts' check lines
cat "$TEST_TMP/a.out" "$TEST_TMP/b.out"
if [ "$a_status" -eq 0 ] && [ "$b_status" -eq 0 ]; then
	ok rack_migrate_hosts_ended
else
	fail rack_migrate_hosts_ended "host A status $a_status, host B status $b_status: $(tail -n 2 "$TEST_TMP/a.out" "$TEST_TMP/b.out" | tr '\n' '|')"
fi
exit 0
