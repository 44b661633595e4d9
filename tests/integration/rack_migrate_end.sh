#!/usr/bin/env bash
# One host of tests/integration/test_rack_migrate.sh, inside a test host:
#   rack_migrate_end.sh ME SHARE
# ME is a or b; a is 10.77.0.1, b 10.77.0.2.  One Linux guest hops from
# host to host, one hop per mode in $MIGRATE_MODES (a to b, b to a, a to
# b, ...), and the two hosts meet through files in SHARE (a directory
# both see, uncached).  Hop I, from host X to host Y:
#   Y  rackvm run --incoming tcp:Y:PORT+I listening     -> SHARE/listening.I
#   X  PUT /vm/migrate, follows it, its rackvm ends     -> SHARE/sent.I
#   Y  the guest beats on Y's console (it runs there)   -> SHARE/running.I
# Host a starts the guest (hop 0's source); the host that holds it after
# the last hop tells it to stop, waits for the case to end and checks it.  Every console
# lands in SHARE/console.I (I: the hop that ended there).  Each host
# prints its own check lines; a wait that times out is a FAIL.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

me=$1
share=$2
PORT=47510
sock=$TEST_TMP/vm.sock
read -r -a modes <<< "${MIGRATE_MODES:-precopy}"
nhops=${#modes[@]}

addr_of() { [ "$1" = a ] && echo 10.77.0.1 || echo 10.77.0.2; }
# the host that holds the guest before hop I
holder() { [ $(($1 % 2)) = 0 ] && echo a || echo b; }

# wait_file PATH SECONDS
wait_file() {
	for _ in $(seq $(($2 * 5))); do
		[ -e "$1" ] && return 0
		sleep 0.2
	done
	return 1
}

api() {
	curl -s -m 60 --unix-socket "$sock" -o "$TEST_TMP/reply" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}

# becomes_destination I: rackvm run --incoming for hop I, in the background
become_destination() {
	local hop=$1 port=$((PORT + $1))
	linux_name=rack_migrate_${modes[$hop]}
	linux_raw=$TEST_TMP/console.$((hop + 1))
	out=$TEST_TMP/$linux_name.out
	err=$TEST_TMP/$linux_name.err
	: > "$linux_raw"
	rm -f "$sock"
	linux_started=$SECONDS
	timeout -k 5 "${LINUX_TIMEOUT:-900}" "$RACKVM" run \
		--incoming "tcp:$(addr_of "$me"):$port" --console "$linux_raw" \
		--api-socket "$sock" < /dev/null > "$err" 2>&1 &
	linux_pid=$!
	for _ in $(seq 300); do
		ss -ltn "sport = :$port" 2> /dev/null | grep -q LISTEN && break
		sleep 0.1
	done
	: > "$share/listening.$hop"
	# it runs once a beat reaches its console
	if wait_file "$share/sent.$hop" 600 && linux_wait_console '^beat [0-9]+$' 120; then
		ok "${linux_name}_guest_runs_on_$me"
	else
		fail "${linux_name}_guest_runs_on_$me" "$(linux_tail)"
	fi
	: > "$share/running.$hop"
}

# migrate_away I: moves the guest this host holds to the other host
migrate_away() {
	local hop=$1 mode=${modes[$1]} to uri code phase src_status
	local name=rack_migrate_${modes[$1]}
	to=$([ "$me" = a ] && echo b || echo a)
	uri=tcp:$(addr_of "$to"):$((PORT + hop))
	if ! wait_file "$share/listening.$hop" 600; then
		fail "${name}_source_ended_migrated" "host $to never listened"
		return 1
	fi
	wait_sock "$sock"
	# a budget the emulated rack network can meet: this checks that
	# the guest arrives whole, bench/migrate measures the downtime
	code=$(api PUT /vm/migrate "{\"uri\": \"$uri\", \"mode\": \"$mode\", \"max_downtime_ms\": 20000, \"compress\": true}")
	phase=
	if [ "$code" = 202 ] || [ "$code" = 200 ]; then
		while kill -0 "$linux_pid" 2> /dev/null; do
			[ "$(api GET /vm/migrate)" = 200 ] &&
				phase=$(sed -nE 's/.*"phase": *"([a-z_-]+)".*/\1/p' "$TEST_TMP/reply")
			case $phase in failed|unconfirmed|lost) break ;; esac
			sleep 0.5
		done
	fi
	wait "$linux_pid"
	src_status=$?
	LC_ALL=C tr -cd '\11\12\40-\176' < "$linux_raw" > "$share/console.$hop"
	: > "$share/sent.$hop"
	if [ "$src_status" -eq 0 ] && grep -q "migrated to $uri" "$err"; then
		ok "${name}_source_ended_migrated"
		grep '^rackvm: migration' "$err" | sed "s/^/# $name: /"
	else
		fail "${name}_source_ended_migrated" "PUT $code, phase ${phase:-?}, source status $src_status: $(head -c 300 "$TEST_TMP/reply"); $(tail -n 2 "$err" | tr '\n' '|')"
		return 1
	fi
	wait_file "$share/running.$hop" 900
}

# every beat once, in order, across the consoles of every hop
beats_once_in_order() {
	local i
	for i in $(seq 0 "$nhops"); do cat "$share/console.$i"; done |
		grep -Eo '^beat [0-9]+$' |
		awk '{ if ($2 != n) exit 1; n++ } END { exit !(n > 3) }'
}

# the guest: case hops.sh (memfill writing and checking 16 MiB while it
# beats once a second to console and disk) until told to stop
if [ "$me" = a ]; then
	truncate -s 16M "$share/disk.img"
	LINUX_MEM=256M LINUX_TIMEOUT=900 linux_start rack_migrate_guest hops 16 -- \
		--api-socket "$sock" --disk "$share/disk.img"
	if linux_wait_console '^beat 3$' 400; then
		ok rack_migrate_guest_working
	else
		fail rack_migrate_guest_working "no beat 3 on the console; $(linux_tail)"
	fi
fi
for hop in $(seq 0 $((nhops - 1))); do
	if [ "$(holder "$hop")" = "$me" ]; then
		migrate_away "$hop" || break
	else
		become_destination "$hop"
	fi
done
# the holder after the last hop tells the guest to stop (block 4096 of
# its disk), waits for the case to end and checks it
if [ "$(holder "$nhops")" = "$me" ] && [ -e "$share/running.$((nhops - 1))" ]; then
	printf stop | dd of="$share/disk.img" bs=512 seek=4096 conv=notrunc 2> /dev/null
	linux_case=hops
	: > "$TEST_TMP/$linux_name.stacks"
	sleep 0 & linux_watch=$!
	linux_finish
	linux_check_status rack_migrate_last_poweroff 0
	LC_ALL=C tr -cd '\11\12\40-\176' < "$linux_raw" > "$share/console.$nhops"
	if beats_once_in_order; then
		ok rack_migrate_console_continues
	else
		fail rack_migrate_console_continues "beats: $(for i in $(seq 0 "$nhops"); do echo "[$i]"; grep -Eo '^beat [0-9]+' "$share/console.$i" | awk '{print $2}'; done | tr '\n' ' ')"
	fi
fi
exit 0
