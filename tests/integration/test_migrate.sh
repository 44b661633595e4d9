#!/usr/bin/env bash
# Live migration, pre-copy, on loopback (PUT /vm/migrate, rackvm run
# --incoming): one source VM (the bundled guest's ticker on 2 vCPUs: a
# console line and memory writes per tick, the LAPIC timer between)
# goes through migrations that fail on purpose, then one that succeeds:
#   - nobody listening: the source keeps running;
#   - the stream cut after N bytes (several N) and a byte flipped, by a
#     proxy: the destination exits with the reason and never runs the
#     guest, the source resumes as if nothing happened;
#   - a destination takes one stream only: garbage first, and it is gone;
#   - then the real move: the source ends ("migrated to"), the
#     destination finishes with the checksum of a run never moved, and
#     the two consoles together hold every tick exactly once.
. "$(dirname "$0")/lib.sh"

sock=$TEST_TMP/api.sock
body=$TEST_TMP/body
out=$TEST_TMP/out
PY=/usr/bin/python3
PROXY=$(dirname "$0")/stream_proxy.py
# long enough for every failed attempt before the real move (~50 s);
# the reference, whose ticks and checksum do not depend on the wait
# between ticks, runs without waiting
TICKS=500
WORK="ticker ticks=$TICKS ms=100 mib=8"
REF_WORK="ticker ticks=$TICKS ms=0 mib=8"
PORT=47310

api() {
	curl -s -m 60 --unix-socket "$sock" -o "$body" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}
field() {
	$PY -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
		"$body" "$1" 2> /dev/null
}

# --- the command line and the request, without a VM -----------------------
run_cmd 30 "$out" "$RACKVM" run --incoming 127.0.0.1:5
check incoming_bad_uri_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'tcp:HOST:PORT' '$out'"
run_cmd 30 "$out" "$RACKVM" run --incoming tcp:127.0.0.1:5 --mem 1G
check incoming_refuses_machine_flags bash -c "[ $status -eq 2 ] && grep -q -- '--mem cannot be given' '$out'"

if ! have_kvm; then
	skip migrate_guest_tests "no usable /dev/kvm"
	exit 0
fi

run_cmd 300 "$TEST_TMP/ref.out" "$RACKVM" run --cpus 2 --mem 128M --cmdline "$REF_WORK"
ref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/ref.out")
out=$TEST_TMP/ref.out check migrate_reference_run bash -c "[ $status -eq 0 ] && [ -n '$ref' ]"

"$RACKVM" run --cpus 2 --mem 128M --api-socket "$sock" --cmdline "$WORK" \
	< /dev/null > "$TEST_TMP/src.console" 2> "$TEST_TMP/src.err" &
src=$!
wait_sock "$sock" && wait_for "$TEST_TMP/src.console" '^tick 3/' 120

expect migrate_postcopy_not_yet 409 'not there yet' PUT /vm/migrate '{"uri": "tcp:127.0.0.1:1", "mode": "postcopy"}'
expect migrate_bad_uri_400 400 'tcp:HOST:PORT' PUT /vm/migrate '{"uri": "udp:1.2.3.4:5"}'
expect migrate_status_before_any 200 '"phase": *"none"' GET /vm/migrate

# wait_migration: until GET /vm/migrate says it ended; its phase
wait_migration() {
	local phase
	for _ in $(seq 600); do
		api GET /vm/migrate > /dev/null
		phase=$(field phase)
		case $phase in completed | failed | unconfirmed) echo "$phase"; return ;; esac
		kill -0 "$src" 2> /dev/null || { echo "source gone"; return; }
		sleep 0.1
	done
	echo timeout
}
src_running() {
	kill -0 "$src" 2> /dev/null && api GET /vm > /dev/null && [ "$(field state)" = running ]
}

# nobody listening
api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$((PORT + 9))\"}" > /dev/null
phase=$(wait_migration)
out=$body check migrate_nobody_listening_fails bash -c "[ '$phase' = failed ] && grep -q 'cannot connect' '$body'"
check migrate_nobody_listening_source_runs src_running

# broken_migration NAME MODE N: a destination behind a proxy that cuts
# the stream after N bytes or flips byte N
broken_migration() {
	local name=$1 mode=$2 n=$3 dst proxy phase
	timeout 180 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/$name.dst" \
		< /dev/null > "$TEST_TMP/$name.dst.out" 2>&1 &
	dst=$!
	$PY "$PROXY" $((PORT + 1)) "$PORT" "$mode" "$n" > "$TEST_TMP/$name.proxy" 2>&1 &
	proxy=$!
	wait_for "$TEST_TMP/$name.proxy" listening 20
	sleep 0.3	# the destination's listen
	api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$((PORT + 1))\"}" > /dev/null
	phase=$(wait_migration)
	cp "$body" "$TEST_TMP/$name.status"
	wait "$dst"
	dst_status=$?
	kill "$proxy" 2> /dev/null
	wait "$proxy" 2> /dev/null
	out=$TEST_TMP/$name.status check "${name}_source_fails_cleanly" [ "$phase" = failed ]
	check "${name}_source_runs_on" src_running
	out=$TEST_TMP/$name.dst.out check "${name}_destination_exits_and_never_ran" \
		bash -c "[ $dst_status -eq 2 ] && [ -s '$TEST_TMP/$name.dst.out' ] && ! grep -q '^tick' '$TEST_TMP/$name.dst' 2> /dev/null"
}
broken_migration migrate_cut_early cut 100000
broken_migration migrate_cut_late cut 6000000
broken_migration migrate_flipped_byte flip 3000000
out=$TEST_TMP/migrate_flipped_byte.dst.out check migrate_flipped_byte_named bash -c "grep -Eq 'section [0-9]+' '$TEST_TMP/migrate_flipped_byte.dst.out'"

# a destination takes one stream: garbage first, then nothing listens
timeout 60 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" < /dev/null > "$TEST_TMP/once.out" 2>&1 &
dst=$!
sleep 0.5
$PY -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"x" * 4096); s.close()' "$PORT" 2> /dev/null
wait "$dst"
dst_status=$?
out=$TEST_TMP/once.out check incoming_refuses_garbage bash -c "[ $dst_status -eq 2 ] && grep -q 'not a rackvm stream' '$TEST_TMP/once.out'"
check incoming_takes_one_stream bash -c "! $PY -c 'import socket, sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])))' $PORT 2> /dev/null"

# the real move
timeout 300 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/dst.console" \
	< /dev/null > "$TEST_TMP/dst.out" 2>&1 &
dst=$!
sleep 0.5
# rackvm ctl starts it (PUT, 202) and follows it to the end
"$RACKVM" ctl --socket "$sock" migrate "tcp:127.0.0.1:$PORT" > "$TEST_TMP/ctl.out" 2>&1
ctl_status=$?
out=$TEST_TMP/ctl.out check migrate_ctl_follows_it_to_the_end bash -c "[ $ctl_status -eq 0 ] && grep -q 'migration completed' '$TEST_TMP/ctl.out'"
wait "$src"
src_status=$?
# the source may be gone before a GET sees "completed": it says so itself
out=$TEST_TMP/src.err check migrate_source_ends_migrated bash -c "[ $src_status -eq 0 ] && grep -q 'migrated to tcp:127.0.0.1:$PORT' '$TEST_TMP/src.err' && grep -q '^rackvm: migration completed: ' '$TEST_TMP/src.err'"
grep '^rackvm: migration' "$TEST_TMP/src.err" | sed 's/^/# /'
wait "$dst"
dst_status=$?
out=$TEST_TMP/dst.console check migrate_destination_finishes bash -c "[ $dst_status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/dst.console'"
same_ticks() {
	cat "$TEST_TMP/src.console" "$TEST_TMP/dst.console" | grep '^tick ' > "$TEST_TMP/ticks"
	grep '^tick ' "$TEST_TMP/ref.out" | cmp -s - "$TEST_TMP/ticks"
}
out=$TEST_TMP/ticks check migrate_console_continues_without_gap_or_repeat same_ticks
exit 0
