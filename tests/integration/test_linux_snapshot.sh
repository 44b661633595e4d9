#!/usr/bin/env bash
# A Linux guest in userspace saved mid-work and resumed from the file
# (PUT /vm/snapshot, rackvm run --restore), with Linux's own drivers on
# the UART, the virtio-blk disk it writes and the LAPIC timer and
# kvm-clock it sleeps on.  Case snapshot.sh: memfill writes and checks
# 64 MiB for 20 s while a beat a second goes to the console and to the
# disk.  What a user must see:
#   - the resumed guest finishes its case: memory intact, every beat's
#     block on the disk, its clock going forward;
#   - the console of the saved run followed by the resumed one's holds
#     every beat exactly once, in order;
#   - the same again from a lazy restore (pages read on first touch).
# A Linux guest's live migration, in every mode, is test_rack_migrate.sh's
# (between two test hosts).
# Runs in the emulated test host (linux_prepare).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

sock=$TEST_TMP/snap.sock
disk=$TEST_TMP/disk.img
truncate -s 16M "$disk"
api() {
	curl -s -m 300 --unix-socket "$sock" -o "$TEST_TMP/reply" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}

# every beat once, in order, across the saved run ($1) and the resumed
# one ($2): 0 1 2 ... with none missing or repeated
beats_once_in_order() {
	cat "$1" "$2" | LC_ALL=C tr -cd '\11\12\40-\176' | grep -Eo '^beat [0-9]+$' |
		awk '{ if ($2 != n) exit 1; n++ } END { exit !(n > 3) }'
}

LINUX_CPUS=2 linux_start linux_saved snapshot 64 20 -- --api-socket "$sock" --disk "$disk"
saved=$linux_raw
if linux_wait_console '^beat 3$' 400; then
	ok linux_snapshot_guest_working
else
	fail linux_snapshot_guest_working "no beat 3 on the console; $(linux_tail)"
fi
api PUT /vm/state '{"state": "paused"}' > /dev/null
code=$(api PUT /vm/snapshot "{\"path\": \"$TEST_TMP/linux.snap\"}")
if [ "$code" = 200 ]; then
	ok linux_snapshot_saved
	echo "# linux_snapshot: $(cat "$TEST_TMP/reply")"
else
	fail linux_snapshot_saved "PUT /vm/snapshot -> $code $(head -c 300 "$TEST_TMP/reply")"
fi
api PUT /vm/stop > /dev/null
wait "$linux_pid"
cp "$saved" "$TEST_TMP/saved.console"

# restore_and_finish NAME [--lazy]: the snapshot resumed, reported like
# linux_finish (the case's checks come from the resumed guest)
restore_and_finish() {
	local name=$1
	shift
	linux_name=$name
	linux_raw=$TEST_TMP/$name.console
	out=$TEST_TMP/$name.out
	err=$TEST_TMP/$name.err
	linux_started=$SECONDS
	timeout -k 5 "${LINUX_TIMEOUT:-600}" "$RACKVM" run --restore "$TEST_TMP/linux.snap" \
		--console "$linux_raw" "$@" < /dev/null > "$err" 2>&1 &
	linux_pid=$!
	: > "$TEST_TMP/$name.stacks"
	sleep 0 & linux_watch=$!
	linux_finish
	linux_check_status "${name}_poweroff" 0
	if beats_once_in_order "$TEST_TMP/saved.console" "$linux_raw"; then
		ok "${name}_console_continues"
	else
		fail "${name}_console_continues" "beats: $(cat "$TEST_TMP/saved.console" "$linux_raw" | grep -Eo '^beat [0-9]+' | awk '{print $2}' | tr '\n' ' ')"
	fi
}

if [ "$code" = 200 ]; then
	restore_and_finish linux_restored
	restore_and_finish linux_restored_lazy --lazy
fi
